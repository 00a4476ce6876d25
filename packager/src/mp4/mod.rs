//! ISO base media file format (ISO/IEC 14496-12) reading.
//!
//! Everything here is bounded: a [`Cursor`] cannot read past the slice it was
//! given, a child box cannot read past its parent, and counts taken from the
//! file are checked against [`crate::Limits`] before anything is allocated.

pub(crate) mod fragment;
pub(crate) mod locate;
pub(crate) mod movie;
pub(crate) mod sample_table;

pub use crate::cursor::{BoxIter, Cursor, RawBox};
pub use crate::fourcc::FourCc;
pub use locate::{ReadAt, TopLevel};
pub use movie::{Edit, Movie, Track, TrackKind};
