//! Live packaging: a sans-IO state machine from access units to LL-HLS and
//! low-latency DASH, in the style of quinn-proto's `Connection`.
//!
//! Ingest calls [`LiveStream::push`] with each access unit, the origin
//! reads playlists, parts and segments out, and both drive time from the
//! outside: every call that needs the time takes `now`, and
//! [`LiveStream::poll_timeout`] / [`LiveStream::handle_timeout`] cover what
//! happens when nothing arrives. Nothing here does I/O, reads a clock,
//! spawns or locks; the caller owns the stream (one per live stream) and
//! shares what it reads out (the bytes are `Arc`s).
//!
//! ```text
//!  ingest ─ push(now, track, AccessUnit) ─►┌──────────────┐─ poll_event() ─► origin wakes
//!          discontinuity(now) ────────────►│  LiveStream  │                  blocked requests
//!  timer ── handle_timeout(now) ──────────►└──────────────┘─ hls_media_playlist / dash_mpd /
//!                                                            init / part / segment ─► origin
//! ```
//!
//! # URIs
//!
//! Relative to the playlist or MPD, so they work under any prefix (the
//! product puts them below `/live/{stream}/hls/` and `/live/{stream}/dash/`).
//! [`LiveUri`] writes and parses them, so the origin routes back exactly
//! what was written:
//!
//! | what | URI |
//! |---|---|
//! | multivariant playlist | (the origin's, e.g. `master.m3u8`) |
//! | media playlist | `{rendition}.m3u8` |
//! | init segment | `{rendition}/init.mp4`, `{rendition}/init-{generation}.mp4` |
//! | media segment | `{rendition}/{msn}.m4s` |
//! | part | `{rendition}/{msn}.{part}.m4s` |
//!
//! `{rendition}` is the track's configured name (`[A-Za-z0-9_-]{1,64}`),
//! `{msn}` the media sequence number, `{part}` the part index from 0.
//! The origin answers them with [`LiveStream::init`],
//! [`LiveStream::segment`] and [`LiveStream::part_lookup`] (which says
//! whether to hold a request for a part not yet published, as for the
//! preload hint), and holds playlist requests as
//! [`LiveStream::hls_reload`] says, waking them on [`Event`]s.
//!
//! # Timing model
//!
//! Input timestamps are in each track's timescale, on the publisher's
//! clock. The output timeline starts at 0 when the stream was created
//! ([`LiveStream::new`] gets `now` and the wall-clock time in Unix
//! milliseconds for that instant). A publisher session's first access unit
//! (of any track) is placed so that it *presents* right after the
//! previous session's last output (at 0 for the first session): a B-frame
//! source's first frame decodes its reorder delay earlier. Every track of
//! the session gets the same offset, so A/V sync is kept (except that a
//! track whose first frame would land before its own previous end is moved
//! up to it, by less than a frame for an ordinary publisher: output time
//! never goes back). The media timeline is therefore
//! continuous across reconnects: a player that crosses a discontinuity
//! finds no hole in its buffer.
//!
//! The wall clock is kept per session instead: each discontinuity
//! sequence has an offset, the wall-clock time elapsed since the stream
//! was created minus the output time, taken when its first access unit
//! arrives (it never decreases). `EXT-X-PROGRAM-DATE-TIME` is start time
//! plus offset plus output time, so it jumps forward at an
//! `EXT-X-DISCONTINUITY` by the time the publisher was away, and each DASH
//! `Period@start` is its first segment's output time plus offset, with that
//! output time as `presentationTimeOffset`: both stay true to the wall
//! clock, which DASH's `availabilityStartTime` needs. Encoder clock drift
//! within a session is not corrected.
//!
//! Video tracks also have their decode timeline moved later by their first
//! composition offset (B-frame delay), with the composition offsets lowered
//! by as much: presentation times are unchanged and a segment starts at its
//! keyframe's presentation time, as DASH's `SegmentTimeline` expects. The
//! bytes take that delay back (`part::write_chunk`): `tfdt` is the decode
//! time less the delay and the offsets are the publisher's, so the `trun`
//! is version 0 without negative offsets, which ffmpeg and GStreamer would
//! present late by the largest of them.
//!
//! Decode times must increase strictly per track: an equal or earlier one
//! is [`Error::NonMonotonicDts`], a forward jump beyond
//! [`LiveConfig::max_jump`] is [`Error::TimestampJump`]; both reject the
//! access unit and change nothing, and a caller whose publisher reset its
//! clock calls [`LiveStream::discontinuity`] and pushes again. Smaller
//! gaps stay in the timeline: an access unit without a duration lasts
//! until the next one, so a stall shows as a long frame; one with an
//! explicit duration keeps it, and a gap after it stays a hole between
//! `tfdt`s (players bridge small holes).
//!
//! `EXT-X-TARGETDURATION` is the segment target rounded, and grows (never
//! shrinks) when a segment comes out longer — an encoder whose GOP is
//! longer than the target. RFC 8216bis §4.4.3.1 wants it constant, which
//! only an encoder keyed at the target (or a larger target) gives;
//! `HOLD-BACK` and `CAN-SKIP-UNTIL` follow it.
//!
//! # Cut rules
//!
//! The *lead* track is the first video track (else the first track). Its
//! segments start at a keyframe at least [`LiveConfig::segment_target`]
//! after the segment's start, or at any frame once the segment reached
//! [`LiveConfig::max_segment`] (an encoder that sends no keyframes must
//! not hold memory forever; such a segment's first part is not
//! `INDEPENDENT`). Video before the first keyframe of a session is dropped.
//! Every other track cuts at the lead's boundaries: its segment *n* starts
//! at its first sync sample at or after the lead's segment *n*, so all
//! renditions share MSNs. A follower's frames from before the lead's first
//! keyframe of a session (audio that began a little earlier, as when the
//! keyframe's B-frame delay moved it later) join the session's first
//! segment if they are within a part target of it; earlier ones are
//! dropped, like the video before that keyframe. A follower waits (buffers) only when it cannot
//! know yet which segment a frame belongs to, and never longer than
//! [`LiveConfig::max_lead_wait`] ([`Error::TrackAhead`] beyond).
//!
//! Parts are cut within segments: a part is closed before a sample that
//! would make it longer than [`LiveConfig::part_target`], and as soon as
//! the next sample (expected to last as long as the last one) would not
//! fit. A part exceeds the target only when one sample alone does (an
//! access unit longer than the part target, e.g. a stall). When no sample
//! arrives, [`LiveStream::handle_timeout`] closes an open part after the
//! part target has elapsed on the wall clock, so blocked clients progress.
//! A part whose access unit has no duration waits for the next access unit
//! (its duration is the difference of decode times).
//!
//! # DVR window and memory
//!
//! Complete segments are evicted, oldest first, from every track at once
//! when the lead's remaining complete segments still cover
//! [`LiveConfig::dvr_window`], or while [`LiveStream::bytes_held`] exceeds
//! [`LiveConfig::max_bytes`] — but never below three target durations of
//! complete segments, the least a live playlist may hold (RFC 8216bis
//! §6.2.2). Each eviction is an [`Event::SegmentEvicted`] carrying the
//! bytes. Memory is thus bounded by the window (or the cap, or those three
//! target durations, whichever is larger) plus the open segment of each
//! track (at most `max_segment` long) plus what followers buffer (at most
//! `max_lead_wait`), plus single access units below
//! [`LiveConfig::max_access_unit_bytes`]. A follower track that stops
//! receiving frames loses its segments as they leave the window.
//!
//! # Reconnects
//!
//! [`LiveStream::discontinuity`] ends the publisher session: buffered
//! frames are placed, every open segment is closed, and the next session's
//! first segment carries `EXT-X-DISCONTINUITY` (and a new DASH `Period`).
//! MSNs continue; the output timeline continues after the last output time
//! (see the timing model), never going back. `EXT-X-DISCONTINUITY-SEQUENCE`
//! grows as discontinuities slide out of the window. A returning publisher
//! may send another codec configuration (another picture size, profile or
//! sample rate) for the same tracks: [`LiveStream::reconfigure`] gives the
//! new session init segments of their own (`init-{generation}.mp4`, a new
//! `EXT-X-MAP` after the `EXT-X-DISCONTINUITY`, the new DASH `Period`'s
//! own initialization and codecs), while the earlier segments in the
//! window keep theirs. A track keeps its timescale: input on another clock
//! rate is converted as it is pushed.

mod cut;
mod dash;
mod date;
mod hls;
mod part;
mod saved;
mod stream;
mod uri;
mod window;

pub use dash::DashOptions;
pub use date::format_unix_ms;
pub use hls::{HlsOptions, PartLookup, Reload};
pub use stream::LiveStream;
pub use uri::LiveUri;
pub use window::{EvictedSegment, SegmentBytes};

use std::time::Duration;

#[allow(unused_imports)] // for doc links
use crate::error::Error;

/// A track of a live stream: its index in [`LiveConfig::tracks`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TrackId(pub usize);

/// One track (rendition) of a live stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackConfig {
    /// Rendition name, used in URIs: `[A-Za-z0-9_-]{1,64}`, unique.
    pub name: String,
    /// The whole ISO BMFF sample-entry box (`avc1` with `avcC`, `hvc1`
    /// with `hvcC`, `mp4a` with `esds`, `Opus` with `dOps`, ...). It goes
    /// into the init segment verbatim and gives `CODECS`, size, channels.
    pub sample_entry: Vec<u8>,
    /// Ticks per second of this track's timestamps.
    pub timescale: u32,
    /// BCP 47 language tag for audio (`LANGUAGE`, DASH `lang`).
    pub language: Option<String>,
    /// Declared bit rate in bits/s (`BANDWIDTH`); measured when `None`.
    pub bandwidth: Option<u64>,
}

/// How a live stream is packaged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LiveConfig {
    /// The tracks, in the order their [`TrackId`]s number them.
    pub tracks: Vec<TrackConfig>,
    /// Segment target duration (default 2 s).
    pub segment_target: Duration,
    /// Part target duration, `PART-TARGET` (default 333 ms).
    pub part_target: Duration,
    /// Longest segment before one is cut without a keyframe (default 4 ×
    /// the segment target).
    pub max_segment: Duration,
    /// How much of the past is kept (default 1 h).
    pub dvr_window: Duration,
    /// Optional cap on [`LiveStream::bytes_held`].
    pub max_bytes: Option<u64>,
    /// How far a follower track may run ahead of the lead track's current
    /// segment before its access units are refused (default 10 s).
    pub max_lead_wait: Duration,
    /// Largest forward jump of a track's decode time (default 10 s).
    pub max_jump: Duration,
    /// Largest access unit (default 32 MiB; never more than 4 GiB - 1).
    pub max_access_unit_bytes: usize,
    /// Which clock the output timeline and the segment numbers follow
    /// (default [`Timeline::Arrival`]).
    pub timeline: Timeline,
}

/// The clock a live stream's output follows.
///
/// [`Timeline::Input`] is for redundant ingest: two nodes fed the same
/// input (the same encoder to two ingest points, or two encoders with
/// aligned timestamps) make the same segments under the same numbers,
/// whenever each started, so a CDN may take any segment from either.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Timeline {
    /// Output time 0 is when the stream was created, and each publisher
    /// session is placed right after the previous one (the timing model
    /// above). Segment numbers count from 0.
    #[default]
    Arrival,
    /// Output time is the publisher's own decode time (plus the video's
    /// B-frame delay, as above), never rebased. The lead track's segments
    /// start at its first keyframe in each new segment-target slot of that
    /// time (slot `n` is `[n, n + 1)` × the segment target), and a stream's
    /// first segment only at a keyframe that begins a slot; its number is
    /// the slot's, and later ones follow on (equal to their slots when the
    /// encoder sends a keyframe in every slot: a GOP that divides the
    /// segment target). A publisher that returns on the same timeline
    /// continues without a discontinuity, the slots it missed listed as
    /// gaps (`EXT-X-GAP`); one whose time went back gets a discontinuity
    /// as under [`Timeline::Arrival`]. Program date-times map input time to
    /// the wall clock at the first access unit.
    Input,
}

impl LiveConfig {
    /// A configuration with the defaults and these tracks.
    pub fn new(tracks: Vec<TrackConfig>) -> Self {
        Self {
            tracks,
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(333),
            max_segment: Duration::from_secs(8),
            dvr_window: Duration::from_secs(3600),
            max_bytes: None,
            max_lead_wait: Duration::from_secs(10),
            max_jump: Duration::from_secs(10),
            max_access_unit_bytes: 32 << 20,
            timeline: Timeline::Arrival,
        }
    }
}

/// One access unit (a video frame, an audio frame) as ingest delivers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessUnit {
    /// Decode timestamp, in the track's timescale.
    pub dts: i64,
    /// Presentation timestamp (≥ `dts` with B-frames).
    pub pts: i64,
    /// Duration in ticks, if the demuxer knows it; otherwise it is the
    /// distance to the next access unit's `dts`.
    pub duration: Option<u32>,
    /// A sync sample (IDR / IRAP). Ignored for audio: every frame is one.
    pub keyframe: bool,
    /// The sample bytes as they go into `mdat` (length-prefixed NAL units
    /// for AVC/HEVC, raw frames for AAC/Opus).
    pub data: Vec<u8>,
}

/// What happened, for the origin to wake requests that wait for it.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum Event {
    /// Part `part` of segment `msn` of `track` is published.
    PartReady {
        /// The track.
        track: TrackId,
        /// Its segment's media sequence number.
        msn: u64,
        /// Its index within the segment, from 0.
        part: u32,
    },
    /// Segment `msn` of `track` is complete (it shows with `EXTINF`).
    SegmentReady {
        /// The track.
        track: TrackId,
        /// Its media sequence number.
        msn: u64,
    },
    /// A segment left the DVR window; its bytes come along.
    SegmentEvicted(EvictedSegment),
}

/// Counters for metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrackStats {
    /// Access units accepted by [`LiveStream::push`].
    pub accepted: u64,
    /// Accepted access units that never made it into a segment: video
    /// before a session's first keyframe, followers' frames before the
    /// lead's first segment or behind the DVR window.
    pub dropped: u64,
}

/// Ticks of `d` in `scale`, rounded down.
pub(crate) fn ticks(d: Duration, scale: u32) -> u64 {
    let t = d.as_nanos() * u128::from(scale) / 1_000_000_000;
    u64::try_from(t).unwrap_or(u64::MAX)
}
