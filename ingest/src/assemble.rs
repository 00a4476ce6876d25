//! From appsink samples to the registry: each track's sample entry is
//! built from its caps, timestamps become ticks of the track's timescale
//! (90 kHz video, the sample rate for audio), and the [`Publisher`] is
//! created once every track is known — video and audio, or whichever one
//! appeared when the other has not within [`TRACK_WAIT`] of the first
//! sample. Until then samples wait here, bounded by [`PENDING_MAX_BYTES`].
//!
//! Track names: `v0` for passed-through video, the rungs' names for a
//! transcoded stream's renditions, `a0` for audio.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use gstreamer as gst;
use headwater_packager::live::{AccessUnit, TrackConfig};

use crate::StreamSettings;
use crate::registry::{Publisher, Registry};
use crate::sample_entry::{self, VideoCodec};

/// How long after the first sample a missing track is given up on.
pub(crate) const TRACK_WAIT: Duration = Duration::from_secs(1);
/// How long a transcoded stream waits for all of its rungs.
pub(crate) const LADDER_WAIT: Duration = Duration::from_secs(4);
/// Most bytes held before the publisher exists.
const PENDING_MAX_BYTES: usize = 32 << 20;
/// The video timescale.
const VIDEO_TIMESCALE: u32 = 90_000;

/// Track name of rung `i`: its own name when that is a valid, free one.
fn rung_name(i: usize, name: &str) -> String {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name != "a0"
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        name.to_owned()
    } else {
        format!("v{i}")
    }
}

/// The kind of an elementary stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Video: the input (`v0`), or rung `n` of the stream's ladder.
    Video(usize),
    /// The one audio track (`a0`).
    Audio,
}

/// One track as its caps describe it.
struct Track {
    config: TrackConfig,
    caps: gst::Caps,
    /// Audio: the decode time the next frame is expected at.
    next_audio: Option<i64>,
}

/// A publisher's samples on their way to the registry.
pub(crate) struct Assembler {
    stream: String,
    settings: StreamSettings,
    registry: Arc<Registry>,
    /// Whether the video and the audio branch exist.
    branches: [bool; 2],
    /// Video renditions first (one, or one per rung), then audio.
    tracks: Vec<Option<Track>>,
    /// Each track's index in the published tracks.
    index: Vec<Option<usize>>,
    /// The tracks' names, in the same order.
    names: Vec<String>,
    first_sample: Option<Instant>,
    pending: VecDeque<(Kind, AccessUnit)>,
    pending_bytes: usize,
    publisher: Option<Publisher>,
    refused_pushes: u64,
    warned_caps: bool,
    /// Set when this publisher must stop (the registry refused it).
    pub(crate) fatal: Option<String>,
    /// Added to every (pass-through) timestamp: the time the demuxer took
    /// off (an MPEG-TS stream's first PCR, on the input timeline).
    pub(crate) origin_ns: u64,
}

/// `t` in ticks of `scale`, rounded to the nearest tick.
fn ticks(t: gst::ClockTime, scale: u32) -> i64 {
    let n = u128::from(t.nseconds()) * u128::from(scale) + 500_000_000;
    i64::try_from(n / 1_000_000_000).unwrap_or(i64::MAX)
}

/// The sample entry and timescale of track `name` from its parser's caps.
fn track_config(kind: Kind, name: &str, caps: &gst::CapsRef) -> Result<TrackConfig, String> {
    let s = caps.structure(0).ok_or("no caps")?;
    let codec_data = s
        .get::<gst::Buffer>("codec_data")
        .map_err(|_| format!("no codec_data in {caps}"))?;
    let codec_data = codec_data
        .map_readable()
        .map_err(|_| "unreadable codec_data".to_owned())?;
    let (entry, timescale) = match kind {
        Kind::Video(_) => {
            let codec = match s.name().as_str() {
                "video/x-h264" => VideoCodec::Avc,
                "video/x-h265" => VideoCodec::Hevc,
                other => return Err(format!("unsupported video {other}")),
            };
            let dim = |f: &str| {
                s.get::<i32>(f)
                    .ok()
                    .and_then(|v| u16::try_from(v).ok())
                    .ok_or(format!("no {f} in {caps}"))
            };
            let entry =
                sample_entry::video(codec, dim("width")?, dim("height")?, codec_data.as_slice());
            (entry, VIDEO_TIMESCALE)
        }
        Kind::Audio => {
            let rate = s
                .get::<i32>("rate")
                .ok()
                .and_then(|r| u32::try_from(r).ok())
                .filter(|r| *r > 0)
                .ok_or(format!("no rate in {caps}"))?;
            let channels = s
                .get::<i32>("channels")
                .ok()
                .and_then(|c| u16::try_from(c).ok())
                .ok_or(format!("no channels in {caps}"))?;
            (
                sample_entry::aac(channels, rate, codec_data.as_slice()),
                rate,
            )
        }
    };
    headwater_packager::codec::SampleEntry::from_box(&entry)
        .map_err(|e| format!("sample entry from {caps}: {e}"))?;
    Ok(TrackConfig {
        name: name.to_owned(),
        sample_entry: entry,
        timescale,
        language: None,
        bandwidth: None,
    })
}

/// An access unit from a buffer: DTS missing means DTS = PTS; keyframe is
/// the absence of `DELTA_UNIT`. Audio decode times follow the frame
/// durations while the buffers' own times (FLV's milliseconds) stay
/// within half a frame ahead of them (or up to a second behind), so
/// millisecond rounding and repeated stamps do not jitter or collide.
///
/// With `segment`, times are running times in it (signed: a B-frame's DTS
/// may come before the segment's start). A ladder's streams need that:
/// x264enc moves its output timestamps by 1000 hours and its segment with
/// them, so only the running time is still the input's. Without it,
/// `origin` is added first: what the demuxer took off (an MPEG-TS first PCR).
fn access_unit(
    track: &mut Track,
    buffer: &gst::BufferRef,
    audio: bool,
    segment: Option<&gst::FormattedSegment<gst::ClockTime>>,
    origin: gst::ClockTime,
) -> Option<AccessUnit> {
    let scale = track.config.timescale;
    let pts = buffer.pts().or(buffer.dts())?;
    let dts = buffer.dts().unwrap_or(pts);
    let time = |t: gst::ClockTime| match segment {
        None => Some(ticks(t + origin, scale)),
        Some(seg) => match seg.to_running_time_full(t)? {
            gst::Signed::Positive(r) => Some(ticks(r, scale)),
            gst::Signed::Negative(r) => Some(-ticks(r, scale)),
        },
    };
    let (mut dts, mut pts) = (time(dts)?, time(pts)?);
    let duration = buffer
        .duration()
        .and_then(|d| u32::try_from(ticks(d, scale)).ok())
        .filter(|d| *d > 0);
    if audio {
        if let (Some(expected), Some(d)) = (track.next_audio, duration) {
            // Behind (up to a second) or less than half a frame ahead:
            // contiguous frames whose stamps are rounded or repeated (some
            // muxers stamp several frames alike under load). Further ahead
            // is a gap; further behind, a clock reset: both resynchronise.
            let delta = dts - expected;
            if delta <= i64::from(d / 2) && delta >= -i64::from(scale) {
                pts += expected - dts;
                dts = expected;
            }
        }
        track.next_audio = duration.map(|d| dts + i64::from(d));
    }
    let data = buffer.map_readable().ok()?.to_vec();
    Some(AccessUnit {
        dts,
        pts,
        duration: if audio { duration } else { None },
        keyframe: audio || !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT),
        data,
    })
}

impl Assembler {
    /// An assembler for a publisher of `stream`.
    pub(crate) fn new(stream: String, settings: StreamSettings, registry: Arc<Registry>) -> Self {
        let mut names = match &settings.ladder {
            None => vec!["v0".to_owned()],
            Some(l) => l
                .rungs
                .iter()
                .enumerate()
                .map(|(i, r)| rung_name(i, &r.name))
                .collect(),
        };
        names.push("a0".to_owned());
        Assembler {
            stream,
            settings,
            registry,
            branches: [false; 2],
            tracks: names.iter().map(|_| None).collect(),
            index: names.iter().map(|_| None).collect(),
            names,
            first_sample: None,
            pending: VecDeque::new(),
            pending_bytes: 0,
            publisher: None,
            refused_pushes: 0,
            warned_caps: false,
            fatal: None,
            origin_ns: 0,
        }
    }

    /// Takes the branch for `kind` (all video renditions come from one
    /// branch): false when one exists already.
    pub(crate) fn claim_branch(&mut self, kind: Kind) -> bool {
        let b = usize::from(kind == Kind::Audio);
        !std::mem::replace(&mut self.branches[b], true)
    }

    /// The slot of `kind` in `tracks`; `None` for a rung the ladder lacks.
    fn slot(&self, kind: Kind) -> Option<usize> {
        let audio = self.tracks.len() - 1;
        match kind {
            Kind::Video(i) if i < audio => Some(i),
            Kind::Video(_) => None,
            Kind::Audio => Some(audio),
        }
    }

    /// The declared bit rate of the track in `slot`: a rung's, with room
    /// for the encoder's variation around its target; measured otherwise.
    fn declared_bandwidth(&self, slot: usize) -> Option<u64> {
        let rung = self.settings.ladder.as_ref()?.rungs.get(slot)?;
        Some(u64::from(rung.bitrate_kbps) * 1_200)
    }

    /// Ends the publisher's session.
    pub(crate) fn close(&mut self) {
        self.pending.clear();
        self.publisher = None;
    }

    /// One sample from the `kind` appsink.
    pub(crate) fn sample(&mut self, kind: Kind, sample: &gst::Sample) {
        if self.fatal.is_some() {
            return;
        }
        let (Some(buffer), Some(caps)) = (sample.buffer(), sample.caps()) else {
            return;
        };
        let Some(k) = self.slot(kind) else {
            return;
        };
        match &self.tracks[k] {
            Some(t) if t.caps.as_ref() == caps => {}
            Some(t) => {
                // New caps (a new SPS, say): the same entry is fine.
                let same = track_config(kind, &self.names[k], caps)
                    .is_ok_and(|c| c.sample_entry == t.config.sample_entry);
                if !same && !self.warned_caps {
                    self.warned_caps = true;
                    tracing::warn!(stream = %self.stream, %caps, "codec configuration changed mid-stream; keeping the first");
                }
                if let Some(t) = &mut self.tracks[k] {
                    t.caps = caps.to_owned();
                }
            }
            None if self.publisher.is_some() => return,
            None => match track_config(kind, &self.names[k], caps) {
                Ok(mut config) => {
                    config.bandwidth = self.declared_bandwidth(k);
                    self.tracks[k] = Some(Track {
                        config,
                        caps: caps.to_owned(),
                        next_audio: None,
                    })
                }
                Err(why) => {
                    tracing::warn!(stream = %self.stream, %why, "ignoring a track");
                    return;
                }
            },
        }
        let Some(track) = &mut self.tracks[k] else {
            return;
        };
        let segment = sample
            .segment()
            .and_then(|s| s.downcast_ref::<gst::ClockTime>())
            .filter(|_| self.settings.ladder.is_some());
        let origin = gst::ClockTime::from_nseconds(self.origin_ns);
        let Some(au) = access_unit(track, buffer, kind == Kind::Audio, segment, origin) else {
            return;
        };
        if self.publisher.is_some() {
            self.push(kind, au);
            return;
        }
        let now = Instant::now();
        let first = *self.first_sample.get_or_insert(now);
        self.pending_bytes += au.data.len();
        self.pending.push_back((kind, au));
        let all = self.tracks.iter().all(Option::is_some);
        // A ladder's encoders start a little later than audio arrives.
        let wait = if self.settings.ladder.is_some() {
            LADDER_WAIT
        } else {
            TRACK_WAIT
        };
        if all || now.duration_since(first) >= wait || self.pending_bytes > PENDING_MAX_BYTES {
            self.go_live();
        }
    }

    fn go_live(&mut self) {
        let mut tracks = Vec::new();
        for (k, t) in self.tracks.iter().enumerate() {
            if let Some(t) = t {
                self.index[k] = Some(tracks.len());
                tracks.push(t.config.clone());
            }
        }
        match self.registry.publish(&self.stream, tracks, &self.settings) {
            Ok(p) => {
                let published: Vec<&str> = (self.names.iter().zip(&self.index))
                    .filter(|(_, i)| i.is_some())
                    .map(|(n, _)| n.as_str())
                    .collect();
                tracing::info!(stream = %self.stream, tracks = ?published, "publishing");
                self.publisher = Some(p);
                self.pending_bytes = 0;
                while let Some((kind, au)) = self.pending.pop_front() {
                    self.push(kind, au);
                }
            }
            Err(e) => {
                crate::guard::Refused::CodecChanged.count();
                tracing::warn!(stream = %self.stream, error = %e, "publisher refused");
                self.pending.clear();
                self.fatal = Some(e.to_string());
            }
        }
    }

    fn push(&mut self, kind: Kind, au: AccessUnit) {
        let Some(slot) = self.slot(kind) else {
            return;
        };
        let (Some(p), Some(i)) = (&self.publisher, self.index[slot]) else {
            return;
        };
        if let Err(e) = p.push(i, au) {
            self.refused_pushes += 1;
            if self.refused_pushes <= 5 || self.refused_pushes % 500 == 0 {
                tracing::warn!(stream = %self.stream, ?kind, error = %e, refused = self.refused_pushes, "access unit refused");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audio_track() -> Track {
        Track {
            config: TrackConfig {
                name: "a0".into(),
                sample_entry: vec![],
                timescale: 48_000,
                language: None,
                bandwidth: None,
            },
            caps: gst::Caps::new_empty_simple("audio/mpeg"),
            next_audio: None,
        }
    }

    fn buffer(pts_ms: u64, dur_ns: Option<u64>) -> gst::Buffer {
        let mut b = gst::Buffer::from_slice(vec![1u8, 2, 3]);
        let m = b.get_mut().expect("a new buffer is writable");
        m.set_pts(gst::ClockTime::from_mseconds(pts_ms));
        m.set_duration(dur_ns.map(gst::ClockTime::from_nseconds));
        b
    }

    /// A pass-through stream's access unit (no segment, no origin).
    fn pass_through(t: &mut Track, b: &gst::BufferRef, audio: bool) -> Option<AccessUnit> {
        access_unit(t, b, audio, None, gst::ClockTime::ZERO)
    }

    #[test]
    fn audio_times_follow_frame_durations_through_ms_rounding() {
        gst::init().expect("gstreamer initialises");
        let mut t = audio_track();
        // 1024-sample frames at 48 kHz as FLV's milliseconds round them.
        let dur = 21_333_333;
        let mut dts = Vec::new();
        for i in 0..50u64 {
            let ms = (i * 1024 * 1000 + 24_000) / 48_000;
            let au = pass_through(&mut t, &buffer(ms, Some(dur)), true).expect("has a time");
            assert_eq!(au.duration, Some(1024));
            dts.push(au.dts);
        }
        for w in dts.windows(2) {
            assert_eq!(w[1] - w[0], 1024);
        }
        // Repeated stamps still advance by a frame.
        let au = pass_through(&mut t, &buffer(1066, Some(dur)), true).expect("has a time");
        assert_eq!(au.dts, 50 * 1024);
        let au = pass_through(&mut t, &buffer(1066, Some(dur)), true).expect("has a time");
        assert_eq!(au.dts, 51 * 1024);
        // A real jump resynchronises.
        let au = pass_through(&mut t, &buffer(5_000, Some(dur)), true).expect("has a time");
        assert_eq!(au.dts, 240_000);
    }

    #[test]
    fn video_dts_defaults_to_pts_and_keyframes_are_not_delta() {
        gst::init().expect("gstreamer initialises");
        let mut t = audio_track();
        t.config.timescale = 90_000;
        let mut b = buffer(40, None);
        b.get_mut()
            .expect("writable")
            .set_flags(gst::BufferFlags::DELTA_UNIT);
        let au = pass_through(&mut t, &b, false).expect("has a time");
        assert_eq!((au.dts, au.pts, au.keyframe), (3600, 3600, false));
        let mut b = buffer(120, None);
        b.get_mut()
            .expect("writable")
            .set_dts(gst::ClockTime::from_mseconds(80));
        let au = pass_through(&mut t, &b, false).expect("has a time");
        assert_eq!((au.dts, au.pts, au.keyframe), (7200, 10_800, true));
    }
}
