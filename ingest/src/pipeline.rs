//! One publisher's GStreamer pipeline: `appsrc` → `flvdemux` | `tsdemux` →
//! per elementary stream `queue` → `h264parse` | `h265parse` | `aacparse` →
//! `capsfilter` (length-prefixed AVC/HEVC access units, raw AAC frames) →
//! `appsink`, whose samples the [`Assembler`](crate::assemble::Assembler)
//! turns into the stream's tracks and access units.
//!
//! A stream with a [`Ladder`] has its video decoded once instead, its frame
//! rate converted once, and a `tee` feeding one `videoscale` → `x264enc`
//! (`tune=zerolatency`, a keyframe every `keyframe_frames` frames, no
//! scene-cut keyframes) → `h264parse` → `appsink` per rung: every encoder
//! sees the same frames, so keyframes fall on the same frames in every
//! rung and the packager cuts all renditions at the same times. Audio is
//! passed through either way.
//!
//! The connection task pushes container bytes with [`Ingest::push`], which
//! waits while `appsrc` holds more than [`APPSRC_MAX_BYTES`] (so a
//! publisher faster than the pipeline is slowed down by TCP/SRT flow
//! control, not buffered without bound). Pipeline errors are read off the
//! bus on each push. Dropping an [`Ingest`] stops the pipeline and ends the
//! publisher's session.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::assemble::{Assembler, Kind};
use crate::error::Error;
use crate::registry::Registry;
use crate::{Ladder, StreamSettings};

/// The bytes `appsrc` may queue before [`Ingest::push`] waits.
pub(crate) const APPSRC_MAX_BYTES: u64 = 8 << 20;
/// How long a push may wait for the pipeline before the publisher is dropped.
const STALL_LIMIT: Duration = Duration::from_secs(10);
/// How long [`Ingest::finish`] lets the pipeline drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(3);

/// The elements a ladder's transcoding bin is made of.
const TRANSCODER_ELEMENTS: [&str; 7] = [
    "decodebin",
    "videoconvert",
    "videorate",
    "videoscale",
    "tee",
    "x264enc",
    "h264parse",
];

/// What the publisher sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Container {
    /// An FLV byte stream (made from RTMP messages).
    Flv,
    /// MPEG-TS (what SRT publishers send).
    MpegTs,
}

/// A running pipeline for one publisher.
pub(crate) struct Ingest {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    assembler: Arc<Mutex<Assembler>>,
    bus: gst::Bus,
    stream: String,
    /// On the input timeline, an MPEG-TS stream's first PCR, which
    /// `tsdemux` takes off every timestamp and the assembler adds back.
    pcr: Option<crate::pcr::FirstPcr>,
}

fn gst_err(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Pipeline(format!("{what}: {e}"))
}

fn lock(a: &Mutex<Assembler>) -> MutexGuard<'_, Assembler> {
    // The assembler's state stays consistent across a panic in a push.
    a.lock().unwrap_or_else(|p| p.into_inner())
}

impl Ingest {
    /// Builds and starts the pipeline for a publisher of `stream`.
    pub(crate) fn new(
        container: Container,
        stream: &str,
        settings: StreamSettings,
        registry: Arc<Registry>,
    ) -> Result<Self, Error> {
        if settings.ladder.is_some() {
            for element in TRANSCODER_ELEMENTS {
                if gst::ElementFactory::find(element).is_none() {
                    return Err(gst_err(
                        "transcoder",
                        format!("the GStreamer element {element} is not installed"),
                    ));
                }
            }
        }
        let caps = match container {
            Container::Flv => gst::Caps::builder("video/x-flv").build(),
            Container::MpegTs => gst::Caps::builder("video/mpegts")
                .field("systemstream", true)
                .build(),
        };
        let src = gst_app::AppSrc::builder()
            .caps(&caps)
            .format(gst::Format::Bytes)
            .block(false)
            .max_bytes(APPSRC_MAX_BYTES * 2)
            .build();
        let demux = gst::ElementFactory::make(match container {
            Container::Flv => "flvdemux",
            Container::MpegTs => "tsdemux",
        })
        .build()
        .map_err(|e| gst_err("demuxer", e))?;
        let pipeline = gst::Pipeline::new();
        pipeline
            .add_many([src.upcast_ref::<gst::Element>(), &demux])
            .map_err(|e| gst_err("pipeline", e))?;
        src.link(&demux).map_err(|e| gst_err("link", e))?;
        let registry_timeline = registry.timeline();
        let assembler = Arc::new(Mutex::new(Assembler::new(
            stream.to_owned(),
            settings.clone(),
            registry,
        )));
        let weak = pipeline.downgrade();
        let a = assembler.clone();
        let name = stream.to_owned();
        let ladder = settings.ladder.clone();
        demux.connect_pad_added(move |_, pad| {
            if let Some(pipeline) = weak.upgrade() {
                if let Err(e) = add_branch(&pipeline, pad, &a, ladder.as_ref()) {
                    tracing::warn!(stream = %name, error = %e, "cannot handle an elementary stream");
                }
            }
        });
        let bus = pipeline
            .bus()
            .ok_or_else(|| gst_err("pipeline", "no bus"))?;
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| gst_err("start", e))?;
        let input = registry_timeline == headwater_packager::live::Timeline::Input;
        Ok(Ingest {
            pipeline,
            src,
            assembler,
            bus,
            stream: stream.to_owned(),
            pcr: (input && matches!(container, Container::MpegTs))
                .then(crate::pcr::FirstPcr::default),
        })
    }

    /// Why this publisher must stop, if it must: a pipeline error, or the
    /// registry refusing its stream.
    fn failure(&self) -> Option<String> {
        if let Some(why) = lock(&self.assembler).fatal.clone() {
            return Some(why);
        }
        let msg = self.bus.pop_filtered(&[gst::MessageType::Error])?;
        match msg.view() {
            gst::MessageView::Error(e) => Some(format!(
                "{} ({})",
                e.error(),
                e.debug().map(|d| d.to_string()).unwrap_or_default()
            )),
            _ => None,
        }
    }

    /// Feeds container bytes to the pipeline; waits while it is behind.
    pub(crate) async fn push(&mut self, data: Bytes) -> Result<(), Error> {
        let step = Duration::from_millis(5);
        let mut waited = Duration::ZERO;
        loop {
            if let Some(why) = self.failure() {
                tracing::warn!(stream = %self.stream, error = %why, "dropping the publisher");
                return Err(Error::Pipeline(why));
            }
            if self.src.current_level_bytes() <= APPSRC_MAX_BYTES {
                break;
            }
            if waited >= STALL_LIMIT {
                tracing::warn!(stream = %self.stream, "the pipeline stalled; dropping the publisher");
                return Err(Error::Pipeline("the pipeline stalled".into()));
            }
            tokio::time::sleep(step).await;
            waited += step;
        }
        if let Some(origin) = self.pcr.as_mut().and_then(|p| p.scan(&data)) {
            lock(&self.assembler).origin_ns = origin;
        }
        self.src
            .push_buffer(gst::Buffer::from_slice(data))
            .map_err(|e| gst_err("push", e))?;
        Ok(())
    }

    /// Ends the input and lets the pipeline drain what it holds (bounded in
    /// time), then stops it.
    pub(crate) async fn finish(self) {
        if self.src.end_of_stream().is_ok() {
            let step = Duration::from_millis(20);
            let mut waited = Duration::ZERO;
            while waited < DRAIN_LIMIT {
                if self
                    .bus
                    .pop_filtered(&[gst::MessageType::Eos, gst::MessageType::Error])
                    .is_some()
                {
                    break;
                }
                tokio::time::sleep(step).await;
                waited += step;
            }
        }
        drop(self);
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        // Stop the streaming threads first, so no sample arrives after the
        // publisher's session ended.
        let _ = self.pipeline.set_state(gst::State::Null);
        lock(&self.assembler).close();
    }
}

/// Links a new demuxer pad to a parser branch ending in an appsink (or, for
/// video with a ladder, in the transcoding bin), or to a `fakesink` when it
/// is no codec we pass through (or a second stream of a kind we already
/// take).
fn add_branch(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    assembler: &Arc<Mutex<Assembler>>,
    ladder: Option<&Ladder>,
) -> Result<(), Error> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let s = caps.structure(0).ok_or_else(|| gst_err("pad", "no caps"))?;
    let branch = match s.name().as_str() {
        "video/x-h264" => Some((
            Kind::Video(0),
            "h264parse",
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "avc")
                .field("alignment", "au")
                .build(),
        )),
        "video/x-h265" => Some((
            Kind::Video(0),
            "h265parse",
            gst::Caps::builder("video/x-h265")
                .field("stream-format", "hvc1")
                .field("alignment", "au")
                .build(),
        )),
        "audio/mpeg" if matches!(s.get::<i32>("mpegversion"), Ok(2 | 4)) => Some((
            Kind::Audio,
            "aacparse",
            gst::Caps::builder("audio/mpeg")
                .field("stream-format", "raw")
                .build(),
        )),
        _ => None,
    };
    let branch = branch.filter(|(kind, ..)| lock(assembler).claim_branch(*kind));
    let Some((kind, parser, filter)) = branch else {
        tracing::info!(caps = %caps, "ignoring an elementary stream");
        let sink = gst::ElementFactory::make("fakesink")
            .property("sync", false)
            .build()
            .map_err(|e| gst_err("fakesink", e))?;
        pipeline.add(&sink).map_err(|e| gst_err("add", e))?;
        sink.sync_state_with_parent()
            .map_err(|e| gst_err("state", e))?;
        let sinkpad = sink
            .static_pad("sink")
            .ok_or_else(|| gst_err("fakesink", "no pad"))?;
        pad.link(&sinkpad).map_err(|e| gst_err("link", e))?;
        return Ok(());
    };
    let queue = gst::ElementFactory::make("queue")
        .build()
        .map_err(|e| gst_err("queue", e))?;
    let parse = gst::ElementFactory::make(parser)
        .build()
        .map_err(|e| gst_err(parser, e))?;
    let tail: Vec<gst::Element> = match (kind, ladder) {
        (Kind::Video(_), Some(ladder)) => vec![transcoder(ladder, assembler)?],
        _ => {
            let capsfilter = gst::ElementFactory::make("capsfilter")
                .property("caps", &filter)
                .build()
                .map_err(|e| gst_err("capsfilter", e))?;
            vec![capsfilter, appsink(kind, assembler).upcast()]
        }
    };
    let mut elements = vec![queue.clone(), parse];
    elements.extend(tail);
    pipeline
        .add_many(&elements)
        .map_err(|e| gst_err("add", e))?;
    gst::Element::link_many(&elements).map_err(|e| gst_err("link", e))?;
    for e in &elements {
        e.sync_state_with_parent()
            .map_err(|e| gst_err("state", e))?;
    }
    let sinkpad = queue
        .static_pad("sink")
        .ok_or_else(|| gst_err("queue", "no pad"))?;
    pad.link(&sinkpad).map_err(|e| gst_err("link", e))?;
    Ok(())
}

/// An appsink handing its samples to the assembler as `kind`.
fn appsink(kind: Kind, assembler: &Arc<Mutex<Assembler>>) -> gst_app::AppSink {
    let sink = gst_app::AppSink::builder().sync(false).build();
    feed(&sink, kind, assembler);
    sink
}

/// Hands `sink`'s samples to the assembler as `kind`.
fn feed(sink: &gst_app::AppSink, kind: Kind, assembler: &Arc<Mutex<Assembler>>) {
    let a = assembler.clone();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                lock(&a).sample(kind, &sample);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
}

/// The `gst-launch` description of a ladder's transcoding bin: parsed
/// video in, one appsink per rung (`rung0`, `rung1`, ...).
pub(crate) fn transcoder_description(ladder: &Ladder) -> String {
    let k = ladder.keyframe_frames.max(1);
    // Frames may pile up in a rung's queue while a slower encoder catches
    // up; a second of them is plenty, and bounds the memory.
    let queue = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=1000000000";
    let mut d = format!(
        "decodebin name=decode ! videoconvert ! videorate skip-to-first=true \
         ! video/x-raw,framerate={}/1 ! tee name=t",
        ladder.frame_rate.max(1)
    );
    for (i, r) in ladder.rungs.iter().enumerate() {
        d.push_str(&format!(
            " t. ! {queue} ! videoscale ! video/x-raw,format=I420,width={},height={},pixel-aspect-ratio=1/1 \
             ! x264enc tune=zerolatency speed-preset=veryfast bitrate={} key-int-max={k} \
             option-string=\"keyint={k}:min-keyint={k}:scenecut=0\" \
             ! h264parse ! video/x-h264,stream-format=avc,alignment=au ! appsink name=rung{i} sync=false",
            r.width, r.height, r.bitrate_kbps
        ));
    }
    d
}

/// The transcoding bin of `ladder`, with a sink pad for the parsed video.
/// (`ghost_unlinked_pads` does not find decodebin's sink pad, so the ghost
/// pad is made here.)
fn transcoder_bin(ladder: &Ladder) -> Result<gst::Bin, Error> {
    let bin = gst::parse::bin_from_description(&transcoder_description(ladder), false)
        .map_err(|e| gst_err("transcoder", e))?;
    let target = bin
        .by_name("decode")
        .and_then(|d| d.static_pad("sink"))
        .ok_or_else(|| gst_err("transcoder", "no decoder sink pad"))?;
    let ghost = gst::GhostPad::builder_with_target(&target)
        .map_err(|e| gst_err("transcoder", e))?
        .name("sink")
        .build();
    bin.add_pad(&ghost).map_err(|e| gst_err("transcoder", e))?;
    Ok(bin)
}

/// The transcoding bin of `ladder`, its appsinks feeding the assembler.
fn transcoder(ladder: &Ladder, assembler: &Arc<Mutex<Assembler>>) -> Result<gst::Element, Error> {
    let bin = transcoder_bin(ladder)?;
    for i in 0..ladder.rungs.len() {
        let sink = bin
            .by_name(&format!("rung{i}"))
            .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
            .ok_or_else(|| gst_err("transcoder", "no appsink for a rung"))?;
        feed(&sink, Kind::Video(i), assembler);
    }
    Ok(bin.upcast())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Rung;

    /// (running time in ms, keyframe, height) of an encoded frame.
    type Frame = (u64, bool, i32);

    fn ladder() -> Ladder {
        Ladder {
            frame_rate: 25,
            keyframe_frames: 25,
            rungs: [(320, 180, 300), (160, 90, 100)]
                .iter()
                .map(|&(width, height, bitrate_kbps)| Rung {
                    name: format!("r{height}"),
                    width,
                    height,
                    bitrate_kbps,
                })
                .collect(),
        }
    }

    /// The transcoding bin links behind a parser and makes one
    /// independently decodable, keyframe-aligned H.264 stream per rung.
    #[test]
    fn the_transcoder_makes_every_rung_with_aligned_keyframes() {
        gst::init().expect("gstreamer initialises");
        let ladder = ladder();
        let bin = transcoder_bin(&ladder).expect("the transcoder builds");
        let src = gst::parse::bin_from_description(
            "videotestsrc num-buffers=100 ! video/x-raw,width=320,height=180,framerate=25/1 \
             ! x264enc key-int-max=10 ! h264parse",
            true,
        )
        .expect("the source parses");
        let pipeline = gst::Pipeline::new();
        pipeline
            .add_many([src.upcast_ref::<gst::Element>(), bin.upcast_ref()])
            .unwrap();
        src.link(&bin)
            .expect("the transcoder links behind a parser");
        let frames: Vec<Arc<Mutex<Vec<Frame>>>> =
            ladder.rungs.iter().map(|_| Arc::default()).collect();
        for (i, seen) in frames.iter().enumerate() {
            let sink = bin
                .by_name(&format!("rung{i}"))
                .and_then(|e| e.downcast::<gst_app::AppSink>().ok())
                .expect("an appsink per rung");
            let seen = seen.clone();
            sink.set_callbacks(
                gst_app::AppSinkCallbacks::builder()
                    .new_sample(move |sink| {
                        let s = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                        let b = s.buffer().expect("a buffer");
                        let seg = s
                            .segment()
                            .and_then(|g| g.downcast_ref::<gst::ClockTime>().cloned());
                        let running = |t: Option<gst::ClockTime>| {
                            seg.as_ref()
                                .and_then(|g| g.to_running_time(t?))
                                .map_or(0, |r| r.mseconds())
                        };
                        let height = s
                            .caps()
                            .and_then(|c| c.structure(0)?.get::<i32>("height").ok())
                            .unwrap_or(0);
                        seen.lock().unwrap().push((
                            running(b.pts()),
                            !b.flags().contains(gst::BufferFlags::DELTA_UNIT),
                            height,
                        ));
                        Ok(gst::FlowSuccess::Ok)
                    })
                    .build(),
            );
        }
        pipeline.set_state(gst::State::Playing).unwrap();
        let bus = pipeline.bus().unwrap();
        let msg = bus
            .timed_pop_filtered(
                gst::ClockTime::from_seconds(60),
                &[gst::MessageType::Eos, gst::MessageType::Error],
            )
            .expect("the pipeline ends");
        pipeline.set_state(gst::State::Null).unwrap();
        assert!(matches!(msg.view(), gst::MessageView::Eos(_)), "{msg:?}");
        let keyframes = |i: usize| -> Vec<u64> {
            frames[i]
                .lock()
                .unwrap()
                .iter()
                .filter(|f| f.1)
                .map(|f| f.0)
                .collect()
        };
        for (i, r) in ladder.rungs.iter().enumerate() {
            let f = frames[i].lock().unwrap();
            assert_eq!(f.len(), 100, "rung {i}");
            assert!(f.iter().all(|x| x.2 == r.height as i32), "rung {i}");
        }
        // A keyframe every 25 frames (not the source's 10), in both rungs.
        assert_eq!(keyframes(0), vec![0, 1000, 2000, 3000]);
        assert_eq!(keyframes(1), keyframes(0));
    }
}
