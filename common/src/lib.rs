//! What headwater's crates share without pulling in each other: small
//! pieces of vocabulary that the data plane (origin), ingest and the
//! control API all use.
//!
//! - [`cluster`]: which other node has a live stream on air.
//! - [`lograte`]: warnings a client can cause, at most one line per
//!   interval per call site, with the number left out.
//! - [`media_root`]: files opened relative to the media root and confined
//!   to it (`openat2` with `RESOLVE_BENEATH`), with the symlink policy.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod catalog;
pub mod cluster;
pub mod config;
pub mod lograte;
pub mod media_root;
pub mod metrics;
pub mod token;
