//! Finding the top-level boxes of a file through a read-at callback.
//!
//! `moov` may sit before or after `mdat`; fragmented files add `moof` boxes
//! (ISO/IEC 14496-12 §8.8.4) and optionally `sidx` (§8.16.3) and `mfra`
//! (§8.8.9), which are not needed because every `moof` is read anyway.
//! Reads go through a 64 KiB window so the usual layouts cost a few reads.

use crate::cursor::parse_header;
use crate::error::{Error, Result};
use crate::fourcc::types;
use crate::limits::Limits;

/// Random-access reads from a source: the only way the packager sees a file.
pub trait ReadAt {
    /// Reads up to `buf.len()` bytes at `offset`, returning how many were read
    /// (0 only at the end of the source).
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize>;
}

impl ReadAt for [u8] {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        let Ok(start) = usize::try_from(offset) else {
            return Ok(0);
        };
        let Some(src) = self.get(start..) else {
            return Ok(0);
        };
        let n = src.len().min(buf.len());
        buf[..n].copy_from_slice(&src[..n]);
        Ok(n)
    }
}

impl ReadAt for Vec<u8> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.as_slice().read_at(offset, buf)
    }
}

impl<T: ReadAt + ?Sized> ReadAt for &T {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        (**self).read_at(offset, buf)
    }
}

/// Reads exactly `buf.len()` bytes or fails with [`Error::Truncated`].
pub(crate) fn read_exact(
    src: &dyn ReadAt,
    offset: u64,
    buf: &mut [u8],
    what: &'static str,
) -> Result<()> {
    let mut done = 0;
    while done < buf.len() {
        let n = src
            .read_at(offset + done as u64, &mut buf[done..])
            .map_err(|source| Error::Read {
                offset,
                len: buf.len(),
                source,
            })?;
        if n == 0 {
            return Err(Error::Truncated { what });
        }
        done += n;
    }
    Ok(())
}

/// The metadata of a file: its `moov` and every `moof`, with their offsets.
#[derive(Debug, Default)]
pub struct TopLevel {
    /// The `ftyp` box, whole.
    pub ftyp: Option<Vec<u8>>,
    /// The `moov` box, whole.
    pub moov: Vec<u8>,
    /// Every `moof` box, whole, with the file offset of its first byte.
    pub moofs: Vec<(u64, Vec<u8>)>,
    /// The payload of every `mdat` box, as file offsets `start..end`, in
    /// file order (a truncated last one ends at the end of the file).
    pub mdats: Vec<(u64, u64)>,
    /// Number of reads issued to find all of the above.
    pub reads: u32,
}

const WINDOW: usize = 64 * 1024;

/// Box types an MP4 file may start with; anything else is not ISO BMFF.
const FIRST_BOXES: &[&[u8; 4]] = &[
    b"ftyp", b"styp", b"moov", b"moof", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid",
    b"sidx", b"meta", b"pdin", b"prft", b"emsg",
];

struct Window<'a> {
    src: &'a dyn ReadAt,
    size: u64,
    start: u64,
    data: Vec<u8>,
    reads: u32,
}

impl Window<'_> {
    /// Returns `len` bytes at `offset`, reading through the window.
    fn get(&mut self, offset: u64, len: usize, what: &'static str) -> Result<&[u8]> {
        let end = offset
            .checked_add(len as u64)
            .ok_or(Error::Truncated { what })?;
        if end > self.size {
            return Err(Error::Truncated { what });
        }
        let cached = offset >= self.start && end <= self.start + self.data.len() as u64;
        if !cached {
            let left = usize::try_from(self.size - offset).unwrap_or(usize::MAX);
            let want = len.max(WINDOW).min(left);
            self.data.resize(want, 0);
            self.start = offset;
            self.reads += 1;
            read_exact(self.src, offset, &mut self.data, what)?;
        }
        let from = usize::try_from(offset - self.start).expect("offset is inside the window");
        Ok(&self.data[from..from + len])
    }

    /// The whole metadata box of `box_size` bytes at `offset`, refused
    /// above `limit` bytes.
    fn metadata_box(&mut self, offset: u64, box_size: u64, limit: u64) -> Result<Vec<u8>> {
        let too_big = |limit| Error::Limit {
            what: "metadata box size",
            value: box_size,
            limit,
        };
        if box_size > limit {
            return Err(too_big(limit));
        }
        let len = usize::try_from(box_size).map_err(|_| too_big(usize::MAX as u64))?;
        if len > WINDOW {
            // Large boxes (a moov) go straight into their own buffer.
            let mut buf = vec![0; len];
            self.reads += 1;
            read_exact(self.src, offset, &mut buf, "metadata box")?;
            Ok(buf)
        } else {
            Ok(self.get(offset, len, "metadata box")?.to_vec())
        }
    }
}

/// Walks the top-level boxes of a source of `size` bytes and returns its metadata.
pub(crate) fn scan(src: &dyn ReadAt, size: u64, limits: &Limits) -> Result<TopLevel> {
    let mut w = Window {
        src,
        size,
        start: 0,
        data: Vec::new(),
        reads: 0,
    };
    let mut out = TopLevel::default();
    let mut offset = 0u64;
    let mut boxes = 0u64;
    let mut fragment_bytes = 0u64;
    while offset < size {
        boxes += 1;
        if boxes > limits.max_top_level_boxes {
            return Err(Error::Limit {
                what: "number of top-level boxes",
                value: boxes,
                limit: limits.max_top_level_boxes,
            });
        }
        let head_len = (size - offset).min(32) as usize;
        if head_len < 8 {
            // Trailing padding shorter than a box header.
            break;
        }
        let head = w.get(offset, head_len, "top-level box header")?;
        let (fourcc, header_len, declared) = parse_header(head)?;
        if offset == 0 && !FIRST_BOXES.contains(&&fourcc.0) {
            return Err(Error::NotIsoBmff);
        }
        let box_size = declared.unwrap_or(size - offset);
        if fourcc == types::MDAT {
            let end = offset.saturating_add(box_size).min(size);
            out.mdats.push((offset + header_len as u64, end));
        }
        if box_size > size - offset {
            if fourcc == types::MDAT && !out.moov.is_empty() {
                // A truncated trailing mdat after a complete moov: the samples
                // it lacks are caught when the index is checked against the size.
                break;
            }
            return Err(Error::Truncated {
                what: "top-level box",
            });
        }
        match fourcc {
            types::MOOV | types::MOOF | types::FTYP => {
                let limit = if fourcc == types::FTYP {
                    4096
                } else {
                    limits.max_moov_bytes
                };
                let bytes = w.metadata_box(offset, box_size, limit)?;
                match fourcc {
                    types::MOOV if out.moov.is_empty() => out.moov = bytes,
                    types::MOOV => {}
                    types::FTYP => out.ftyp = Some(bytes),
                    _ => {
                        fragment_bytes += box_size;
                        if fragment_bytes > limits.max_moov_bytes {
                            return Err(Error::Limit {
                                what: "total size of moof boxes",
                                value: fragment_bytes,
                                limit: limits.max_moov_bytes,
                            });
                        }
                        out.moofs.push((offset, bytes));
                    }
                }
            }
            _ => {}
        }
        offset += box_size;
    }
    out.reads = w.reads;
    if out.moov.is_empty() {
        return Err(Error::NoMovie);
    }
    Ok(out)
}
