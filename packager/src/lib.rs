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
#![warn(
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss,
    clippy::cast_possible_wrap
)]

pub mod clip;
pub mod codec;
mod cursor;
mod error;
pub mod fmp4;
mod fourcc;
mod index;
mod lang;
mod limits;
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
pub use lang::is_language_tag;
pub use limits::Limits;
pub use mp4::ReadAt;
pub use plan::Segment;
pub use presentation::{NamedSource, PackagingConfig, Presentation, Rendition};
pub use source::Source;
