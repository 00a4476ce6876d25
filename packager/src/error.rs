//! The packager's error type.

use crate::fourcc::FourCc;

/// Everything that can go wrong while indexing a source or packaging it.
///
/// Every variant describes a property of the *input*; the packager has no
/// failure modes of its own besides the limits in [`crate::Limits`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The read-at callback failed.
    #[error("reading {len} bytes at offset {offset} failed: {source}")]
    Read {
        /// Byte offset of the failed read.
        offset: u64,
        /// Requested length.
        len: usize,
        /// The callback's error.
        #[source]
        source: std::io::Error,
    },
    /// A structure ends before its declared size (or the file ends before a box does).
    #[error("truncated {what}")]
    Truncated {
        /// What was being read.
        what: &'static str,
    },
    /// A box is structurally invalid.
    #[error("malformed '{fourcc}' box: {reason}")]
    Malformed {
        /// The box type.
        fourcc: FourCc,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A count or size from the file exceeds a configured limit.
    #[error("{what} is {value}, above the limit of {limit}")]
    Limit {
        /// What was counted.
        what: &'static str,
        /// The value found in the file.
        value: u64,
        /// The limit it exceeds.
        limit: u64,
    },
    /// The file does not start with an ISO BMFF box: it is not an MP4 file.
    #[error("not an MP4 file: it does not start with an ISO base media box")]
    NotIsoBmff,
    /// A track's samples point outside every `mdat` box's payload.
    #[error(
        "track {track} has samples outside the media data (at byte {offset}): the sample table does not describe this file"
    )]
    SampleOutsideMdat {
        /// The track's `track_ID`.
        track: u32,
        /// The first offending byte range's offset.
        offset: u64,
    },
    /// The file has no `moov` box, so it is not a playable MP4.
    #[error("no 'moov' box: not an MP4 file or the file is incomplete")]
    NoMovie,
    /// The file has neither a video nor an audio track.
    #[error("no audio or video track")]
    NoTracks,
    /// A track uses a sample entry the packager cannot pass through.
    #[error("unsupported codec in '{source_name}' track {track}: sample entry '{fourcc}'")]
    UnsupportedCodec {
        /// The source's name (its file stem).
        source_name: String,
        /// The track's `track_ID`.
        track: u32,
        /// The sample entry type.
        fourcc: FourCc,
    },
    /// A subtitle file or track cannot be read.
    #[error("subtitles: {0}")]
    BadSubtitles(String),
    /// A manifest filter's parameters are malformed or select nothing.
    #[error("{0}")]
    BadFilter(String),
    /// A rendition cannot be carried in an MPEG-TS segment.
    #[error("rendition '{rendition}' cannot be carried in MPEG-TS: {reason}")]
    TsUnsupported {
        /// The rendition's id.
        rendition: String,
        /// Why not.
        reason: &'static str,
    },
    /// A sample's bytes or size contradict its codec's framing.
    #[error("sample {sample} of rendition '{rendition}' is malformed: {reason}")]
    BadSample {
        /// The rendition's id.
        rendition: String,
        /// The sample's index in its track (decode order, from 0).
        sample: u32,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A live stream's configuration is invalid.
    #[error("live configuration: {0}")]
    LiveConfig(&'static str),
    /// A live stream's spill cannot be read back.
    #[error("live spill: {0}")]
    LiveSpill(&'static str),
    /// A live push names a track the stream does not have.
    #[error("live stream has no track {0}")]
    UnknownTrack(usize),
    /// A live push came after [`crate::live::LiveStream::finish`].
    #[error("the live stream has ended")]
    LiveEnded,
    /// A live access unit is larger than `LiveConfig::max_access_unit_bytes`
    /// (or than the 4 GiB a `trun` can give a sample, whatever the limit).
    #[error("access unit of {len} bytes on track {track} is above the limit")]
    AccessUnitTooLarge {
        /// The track index.
        track: usize,
        /// Its size.
        len: usize,
    },
    /// A live access unit's decode time is not after the previous one's
    /// (within a publisher session); it was rejected.
    #[error("decode time {dts} on track {track} is not after the previous {previous}")]
    NonMonotonicDts {
        /// The track index.
        track: usize,
        /// The rejected decode time.
        dts: i64,
        /// The previous accepted one.
        previous: i64,
    },
    /// A live access unit's decode time jumps further ahead than
    /// `LiveConfig::max_jump`; call `discontinuity` if the publisher's
    /// clock was reset.
    #[error("decode time on track {track} jumps from {from} to {to}")]
    TimestampJump {
        /// The track index.
        track: usize,
        /// The previous decode time.
        from: i64,
        /// The rejected one.
        to: i64,
    },
    /// A live access unit's timestamps cannot be represented in the output.
    #[error("timestamps on track {track}: {reason}")]
    LiveTimestamp {
        /// The track index.
        track: usize,
        /// What is out of range.
        reason: &'static str,
    },
    /// A follower track ran further ahead of the lead track than
    /// `LiveConfig::max_lead_wait`; its access unit was rejected (the lead
    /// track stalled, or ingest does not interleave the tracks).
    #[error("track {track} is too far ahead of the lead track")]
    TrackAhead {
        /// The track index.
        track: usize,
    },
    /// A request names a rendition, segment or time that does not exist.
    #[error("not found: {0}")]
    NotFound(&'static str),
}

/// Shorthand for results with [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub(crate) fn malformed(fourcc: FourCc, reason: &'static str) -> Error {
    Error::Malformed { fourcc, reason }
}
