//! ISO base media file format (ISO/IEC 14496-12) reading.
//!
//! Everything here is bounded: a [`Cursor`] cannot read past the slice it was
//! given, a child box cannot read past its parent, and counts taken from the
//! file are checked against [`crate::Limits`] before anything is allocated.

mod cursor;
pub(crate) mod fourcc;
pub(crate) mod fragment;
pub(crate) mod locate;
pub(crate) mod movie;
pub(crate) mod sample_table;

pub use cursor::{BoxIter, Cursor, RawBox};
pub use fourcc::FourCc;
pub use locate::{ReadAt, TopLevel};
pub(crate) use movie::stbl as fourcc_stbl;
pub use movie::{Edit, Movie, Track, TrackKind};
