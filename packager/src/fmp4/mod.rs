//! Fragmented MP4 / CMAF output (ISO/IEC 14496-12 §8.8, ISO/IEC 23000-19).
//!
//! Writers append to a caller-owned buffer and back-patch box sizes.

mod init;
mod segment;

pub use init::{InitTrack, write_init, write_init_track};
pub(crate) use segment::media_segment_len as segment_len;
pub use segment::{ByteRange, MediaSegment, media_segment};
pub(crate) use segment::{cts_field, mdat_header_len, put_mdat_header};

use crate::fourcc::FourCc;

/// Appending big-endian fields and boxes to a byte buffer.
pub(crate) trait Put {
    fn put_u16(&mut self, v: u16);
    fn put_u32(&mut self, v: u32);
    fn put_u64(&mut self, v: u64);
    fn put(&mut self, bytes: &[u8]);
    /// Writes a box whose size is back-patched after `body` has run.
    fn boxed(&mut self, fourcc: FourCc, body: impl FnOnce(&mut Self));
    /// Writes a full box (§4.2.2): version and flags, then `body`.
    fn full(&mut self, fourcc: FourCc, version: u8, flags: u32, body: impl FnOnce(&mut Self));
}

impl Put for Vec<u8> {
    fn put_u16(&mut self, v: u16) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put_u64(&mut self, v: u64) {
        self.extend_from_slice(&v.to_be_bytes());
    }
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
    fn boxed(&mut self, fourcc: FourCc, body: impl FnOnce(&mut Self)) {
        let start = self.len();
        self.put_u32(0);
        self.put(&fourcc.0);
        body(self);
        // Metadata boxes written here are far below 4 GiB.
        let size = u32::try_from(self.len() - start).expect("metadata box below 4 GiB");
        self[start..start + 4].copy_from_slice(&size.to_be_bytes());
    }
    fn full(&mut self, fourcc: FourCc, version: u8, flags: u32, body: impl FnOnce(&mut Self)) {
        self.boxed(fourcc, |b| {
            b.put_u32((u32::from(version) << 24) | (flags & 0x00ff_ffff));
            body(b);
        });
    }
}
