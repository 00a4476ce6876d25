//! One publisher's GStreamer pipeline: `appsrc` → `flvdemux` | `tsdemux` →
//! per elementary stream `queue` → `h264parse` | `h265parse` | `aacparse` →
//! `capsfilter` (length-prefixed AVC/HEVC access units, raw AAC frames) →
//! `appsink`, whose samples the [`Assembler`](crate::assemble::Assembler)
//! turns into the stream's tracks and access units.
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

use crate::StreamSettings;
use crate::assemble::{Assembler, Kind};
use crate::error::Error;
use crate::registry::Registry;

/// The bytes `appsrc` may queue before [`Ingest::push`] waits.
pub(crate) const APPSRC_MAX_BYTES: u64 = 8 << 20;
/// How long a push may wait for the pipeline before the publisher is dropped.
const STALL_LIMIT: Duration = Duration::from_secs(10);
/// How long [`Ingest::finish`] lets the pipeline drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(3);

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
        let assembler = Arc::new(Mutex::new(Assembler::new(
            stream.to_owned(),
            settings.clone(),
            registry,
        )));
        let weak = pipeline.downgrade();
        let a = assembler.clone();
        let name = stream.to_owned();
        demux.connect_pad_added(move |_, pad| {
            if let Some(pipeline) = weak.upgrade() {
                if let Err(e) = add_branch(&pipeline, pad, &a) {
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
        Ok(Ingest {
            pipeline,
            src,
            assembler,
            bus,
            stream: stream.to_owned(),
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

/// Links a new demuxer pad to a parser branch ending in an appsink, or to a
/// `fakesink` when it is no codec we pass through (or a second stream of a
/// kind we already take).
fn add_branch(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    assembler: &Arc<Mutex<Assembler>>,
) -> Result<(), Error> {
    let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
    let s = caps.structure(0).ok_or_else(|| gst_err("pad", "no caps"))?;
    let branch = match s.name().as_str() {
        "video/x-h264" => Some((
            Kind::Video,
            "h264parse",
            gst::Caps::builder("video/x-h264")
                .field("stream-format", "avc")
                .field("alignment", "au")
                .build(),
        )),
        "video/x-h265" => Some((
            Kind::Video,
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
    let capsfilter = gst::ElementFactory::make("capsfilter")
        .property("caps", &filter)
        .build()
        .map_err(|e| gst_err("capsfilter", e))?;
    let sink = gst_app::AppSink::builder().sync(false).build();
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
    let elements = [
        &queue,
        &parse,
        &capsfilter,
        sink.upcast_ref::<gst::Element>(),
    ];
    pipeline.add_many(elements).map_err(|e| gst_err("add", e))?;
    gst::Element::link_many(elements).map_err(|e| gst_err("link", e))?;
    for e in elements {
        e.sync_state_with_parent()
            .map_err(|e| gst_err("state", e))?;
    }
    let sinkpad = queue
        .static_pad("sink")
        .ok_or_else(|| gst_err("queue", "no pad"))?;
    pad.link(&sinkpad).map_err(|e| gst_err("link", e))?;
    Ok(())
}
