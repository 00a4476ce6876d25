//! headwater's packager: MP4 in, CMAF segments and HLS/DASH manifests out.
//!
//! This crate does no I/O. The caller passes a [`ReadAt`] callback and gets
//! back indexes, plans and bytes:
//!
//! ```text
//!  ReadAt ──► Source::index ──► Source (Movie + SampleIndex per track)
//!                                  │  (one or more per asset)
//!                                  ▼
//!                           Presentation::new ──► renditions + segment plan
//!                              │            │              │
//!                init_segment()   media_segment()   manifest::{hls, dash}
//!                  (bytes)     (header bytes + source     (text)
//!                               byte ranges: a plan)
//! ```
//!
//! A media segment is a [`MediaSegment`]: generated `styp`/`moof`/`mdat`
//! header bytes followed by byte ranges of the source file. The caller moves
//! those ranges however it likes — the origin uses `sendfile`.
//!
//! MPEG-TS segments for HLS ([`ts`]) cannot be ranges of the source (every
//! sample is reframed), so [`ts::TsLayout`] sizes them from the index and
//! writes their bytes through a read callback.
//!
//! Live streams ([`live`]) are a state machine instead: ingest pushes
//! access units into a [`live::LiveStream`] with the time, and the origin
//! reads LL-HLS playlists, a dynamic MPD, parts and segments (bytes held in
//! memory for the DVR window) out of it.
//!
//! Key types: [`Source`], [`mp4::Movie`], [`SampleIndex`], [`Presentation`],
//! [`Rendition`], [`MediaSegment`], [`ts::TsLayout`], [`live::LiveStream`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod clip;
pub mod codec;
mod error;
pub mod fmp4;
mod index;
pub mod live;
pub mod manifest;
pub mod mp4;
mod plan;
mod presentation;
mod source;
pub mod subtitles;
pub mod time;
pub mod timing;
pub mod trick;
pub mod ts;

pub use error::{Error, Result};
pub use fmp4::{ByteRange, MediaSegment};
pub use index::SampleIndex;
pub use mp4::ReadAt;
pub use plan::Segment;
pub use presentation::{NamedSource, PackagingConfig, Presentation, Rendition, is_language_tag};
pub use source::Source;

/// Bounds on what a file may make the packager allocate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest `moov` box, and largest total of `moof` boxes, in bytes.
    pub max_moov_bytes: u64,
    /// Most samples in one track.
    pub max_samples_per_track: u64,
    /// Most tracks in one file.
    pub max_tracks: usize,
    /// Most entries in one edit list.
    pub max_edits: usize,
    /// Most top-level boxes walked in one file.
    pub max_top_level_boxes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_moov_bytes: 256 << 20,
            // 24 hours at 120 frames per second.
            max_samples_per_track: 24 * 3600 * 120,
            max_tracks: 64,
            max_edits: 1024,
            max_top_level_boxes: 1 << 20,
        }
    }
}
