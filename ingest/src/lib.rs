//! headwater's live ingest: the listeners publishers push to (RTMP, SRT),
//! the GStreamer pipelines that turn what they push into access units,
//! and the [`registry`] of live streams that the origin reads from.
//!
//! ```text
//!  publisher ─RTMP/SRT─► listener (ours) ─ key check ─► appsrc ─► GStreamer ─► appsink
//!                                                                         │ access units
//!                                                 registry: Live (LiveStream) ◄┘
//!                                                     │ watch (version) wakes
//!                                                     ▼
//!                                   origin: /live/{stream}/... (blocking reloads)
//! ```

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod error;
pub mod registry;

pub use error::Error;
pub use registry::{Live, Publisher, Registry, RegistryConfig};
