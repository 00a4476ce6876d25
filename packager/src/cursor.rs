//! A bounded big-endian reader and box iteration (ISO/IEC 14496-12 §4.2).

use crate::error::{Error, Result, malformed};
use crate::fourcc::FourCc;

/// A big-endian reader over a slice that cannot read past the slice's end.
#[derive(Clone, Debug)]
pub struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
    what: &'static str,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`; `what` names the structure in truncation errors.
    pub fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, pos: 0, what }
    }

    /// Bytes left to read.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// The current position from the start of the slice.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// The unread bytes.
    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    /// Takes the next `n` bytes.
    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8]> {
        if n > self.remaining() {
            return Err(Error::Truncated { what: self.what });
        }
        let out = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(out)
    }

    /// Skips `n` bytes.
    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.bytes(n).map(|_| ())
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.bytes(N)?);
        Ok(out)
    }

    /// Reads one byte.
    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }
    /// Reads a big-endian `u16`.
    pub fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_be_bytes(self.array()?))
    }
    /// Reads a big-endian 24-bit unsigned integer.
    pub fn u24(&mut self) -> Result<u32> {
        let [a, b, c] = self.array()?;
        Ok(u32::from_be_bytes([0, a, b, c]))
    }
    /// Reads a big-endian `u32`.
    pub fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_be_bytes(self.array()?))
    }
    /// Reads a big-endian `i32`.
    pub fn i32(&mut self) -> Result<i32> {
        Ok(i32::from_be_bytes(self.array()?))
    }
    /// Reads a big-endian `u64`.
    pub fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_be_bytes(self.array()?))
    }
    /// Reads a big-endian `i64`.
    pub fn i64(&mut self) -> Result<i64> {
        Ok(i64::from_be_bytes(self.array()?))
    }
    /// Reads a four-character code.
    pub fn fourcc(&mut self) -> Result<FourCc> {
        Ok(FourCc(self.array()?))
    }
    /// Reads the version and flags of a full box (§4.2.2).
    pub fn version_flags(&mut self) -> Result<(u8, u32)> {
        let v = self.u32()?;
        Ok(((v >> 24) as u8, v & 0x00ff_ffff))
    }
    /// Reads a `u32` (version 0) or `u64` (version 1) field.
    pub fn u32_or_u64(&mut self, version: u8) -> Result<u64> {
        if version == 1 {
            self.u64()
        } else {
            self.u32().map(u64::from)
        }
    }
}

/// One box inside a buffer: its type, its whole bytes and its payload.
#[derive(Clone, Copy, Debug)]
pub struct RawBox<'a> {
    /// The box type.
    pub fourcc: FourCc,
    /// Header plus payload.
    pub whole: &'a [u8],
    /// The payload after the header (for `uuid` boxes, after the user type).
    pub body: &'a [u8],
    /// Offset of the box from the start of the iterated buffer.
    pub offset: usize,
}

impl<'a> RawBox<'a> {
    /// A cursor over the payload.
    pub fn cursor(&self) -> Cursor<'a> {
        Cursor::new(self.body, "box payload")
    }

    /// Iterates the payload as a sequence of child boxes.
    pub fn children(&self) -> BoxIter<'a> {
        BoxIter::new(self.body)
    }
}

/// Parses a box header at the start of `buf` (§4.2): returns the type, the
/// header length and the total size (`None` when the box runs to the end).
pub(crate) fn parse_header(buf: &[u8]) -> Result<(FourCc, usize, Option<u64>)> {
    let mut c = Cursor::new(buf, "box header");
    let size32 = c.u32()?;
    let fourcc = c.fourcc()?;
    let (size, mut header) = match size32 {
        0 => (None, 8),
        1 => (Some(c.u64()?), 16),
        n => (Some(u64::from(n)), 8),
    };
    if fourcc == crate::fourcc::types::UUID {
        c.skip(16)?;
        header += 16;
    }
    if let Some(size) = size {
        if size < header as u64 {
            return Err(malformed(fourcc, "box size smaller than its header"));
        }
    }
    Ok((fourcc, header, size))
}

/// Iterates the boxes in a buffer; a box can never extend past the buffer.
#[derive(Clone, Debug)]
pub struct BoxIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BoxIter<'a> {
    /// Iterates the boxes laid end to end in `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Finds the first child of the given type.
    pub fn find(mut self, fourcc: FourCc) -> Result<Option<RawBox<'a>>> {
        for b in self.by_ref() {
            let b = b?;
            if b.fourcc == fourcc {
                return Ok(Some(b));
            }
        }
        Ok(None)
    }
}

impl<'a> Iterator for BoxIter<'a> {
    type Item = Result<RawBox<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        // Some writers pad containers with fewer than 8 zero bytes; ignore them.
        if rest.len() < 8 && rest.iter().all(|&b| b == 0) {
            return None;
        }
        let item = parse_header(rest).and_then(|(fourcc, header, size)| {
            let size = match size.map(usize::try_from) {
                None => rest.len(),
                Some(Ok(s)) if s <= rest.len() => s,
                Some(_) => {
                    return Err(malformed(fourcc, "box extends past the end of its parent"));
                }
            };
            Ok(RawBox {
                fourcc,
                whole: &rest[..size],
                body: &rest[header..size],
                offset: self.pos,
            })
        });
        match &item {
            Ok(b) => self.pos += b.whole.len(),
            Err(_) => self.failed = true,
        }
        Some(item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn child_cannot_escape_parent() {
        // A box claiming 100 bytes inside a 12-byte buffer is an error, not followed.
        let buf = [0, 0, 0, 100, b'f', b'r', b'e', b'e', 1, 2, 3, 4];
        let mut it = BoxIter::new(&buf);
        assert!(matches!(it.next(), Some(Err(Error::Malformed { .. }))));
        assert!(it.next().is_none());
    }

    #[test]
    fn size_below_header_is_malformed() {
        let buf = [0, 0, 0, 4, b'f', b'r', b'e', b'e'];
        assert!(matches!(
            BoxIter::new(&buf).next(),
            Some(Err(Error::Malformed { .. }))
        ));
    }

    #[test]
    fn largesize_and_to_end() {
        let mut buf = vec![
            0, 0, 0, 1, b'f', b'r', b'e', b'e', 0, 0, 0, 0, 0, 0, 0, 18, 7, 7,
        ];
        buf.extend_from_slice(&[0, 0, 0, 0, b'm', b'd', b'a', b't', 9]);
        let boxes: Vec<_> = BoxIter::new(&buf).collect::<Result<_>>().unwrap();
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].body, &[7, 7]);
        assert_eq!(boxes[1].body, &[9]);
    }
}
