//! An incremental decoder for `Transfer-Encoding: chunked` (RFC 9112 §7.1).
//!
//! Bytes arrive in whatever pieces the socket gives; [`Chunked::feed`] keeps its place
//! between calls and hands the chunk data to a callback without copying it anywhere.
//! Chunk extensions and trailer fields are skipped.

/// Decoder state between two `feed` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Reading the hex size; `digits` so far.
    Size { value: u64, digits: u32 },
    /// Skipping a chunk extension up to the line end.
    Ext { value: u64 },
    /// Saw CR after the size line; expecting LF.
    SizeLf { value: u64 },
    /// Inside chunk data, this many bytes left.
    Data { left: u64 },
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    /// At the start of a trailer line (or the final empty line).
    TrailerStart,
    /// Inside a trailer field line.
    TrailerLine,
    /// Saw CR of the final empty line; expecting LF.
    FinalLf,
    /// The message is complete.
    Done,
}

/// A chunked-body decoder.
#[derive(Debug, Clone)]
pub(crate) struct Chunked {
    state: State,
}

impl Default for Chunked {
    fn default() -> Self {
        Self {
            state: State::Size {
                value: 0,
                digits: 0,
            },
        }
    }
}

impl Chunked {
    /// True once the last chunk and the trailer have been read.
    pub(crate) fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Consumes framing and data from `input`, passing data to `out`; returns how many
    /// bytes were consumed (less than `input.len()` only once done).
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        out: &mut impl FnMut(&[u8]),
    ) -> Result<usize, &'static str> {
        let mut i = 0;
        while i < input.len() {
            let b = input[i];
            self.state = match self.state {
                State::Done => return Ok(i),
                State::Data { left } => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - i);
                    out(&input[i..i + take]);
                    i += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::Size { value, digits } => match b {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if digits >= 15 {
                            return Err("chunk size too large");
                        }
                        let d = (b as char).to_digit(16).map_or(0, u64::from);
                        State::Size {
                            value: value * 16 + d,
                            digits: digits + 1,
                        }
                    }
                    _ if digits == 0 => return Err("chunk size missing"),
                    b';' | b' ' | b'\t' => State::Ext { value },
                    b'\r' => State::SizeLf { value },
                    b'\n' => after_size(value),
                    _ => return Err("bad chunk size"),
                },
                State::Ext { value } => match b {
                    b'\r' => State::SizeLf { value },
                    b'\n' => after_size(value),
                    _ => State::Ext { value },
                },
                State::SizeLf { value } => match b {
                    b'\n' => after_size(value),
                    _ => return Err("chunk size line not ended by CRLF"),
                },
                State::DataCr => match b {
                    b'\r' => State::DataLf,
                    b'\n' => State::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err("chunk data longer than its size"),
                },
                State::DataLf => match b {
                    b'\n' => State::Size {
                        value: 0,
                        digits: 0,
                    },
                    _ => return Err("chunk data not ended by CRLF"),
                },
                State::TrailerStart => match b {
                    b'\r' => State::FinalLf,
                    b'\n' => State::Done,
                    _ => State::TrailerLine,
                },
                State::TrailerLine => match b {
                    b'\n' => State::TrailerStart,
                    _ => State::TrailerLine,
                },
                State::FinalLf => match b {
                    b'\n' => State::Done,
                    _ => return Err("chunked trailer not ended by CRLF"),
                },
            };
            i += 1;
        }
        Ok(i)
    }
}

/// The state after a complete size line.
fn after_size(value: u64) -> State {
    if value == 0 {
        State::TrailerStart
    } else {
        State::Data { left: value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decodes `input` fed in pieces of `step` bytes; returns (data, consumed, done).
    fn decode(input: &[u8], step: usize) -> Result<(Vec<u8>, usize, bool), &'static str> {
        let mut d = Chunked::default();
        let mut data = Vec::new();
        let mut consumed = 0;
        for piece in input.chunks(step) {
            let n = d.feed(piece, &mut |b| data.extend_from_slice(b))?;
            consumed += n;
            if d.is_done() {
                break;
            }
        }
        Ok((data, consumed, d.is_done()))
    }

    #[test]
    fn whole_and_split() {
        let body = b"4\r\nWiki\r\n6;name=x\r\npedia \r\nE\r\nin \r\n\r\nchunks.\r\n0\r\n\r\nEXTRA";
        for step in [1, 2, 3, 7, 100] {
            let (data, consumed, done) = decode(body, step).unwrap();
            assert_eq!(data, b"Wikipedia in \r\n\r\nchunks.");
            assert!(done);
            if step == 100 {
                assert_eq!(consumed, body.len() - 5);
            }
        }
    }

    #[test]
    fn trailers_and_bare_lf() {
        let body = b"3\nabc\n0\r\nX-Checksum: 1\r\nY: 2\r\n\r\n";
        let (data, consumed, done) = decode(body, 1).unwrap();
        assert_eq!(data, b"abc");
        assert!(done);
        assert_eq!(consumed, body.len());
    }

    #[test]
    fn incomplete_is_not_done() {
        let (data, _, done) = decode(b"5\r\nabc", 4).unwrap();
        assert_eq!(data, b"abc");
        assert!(!done);
    }

    #[test]
    fn errors() {
        assert!(decode(b"zz\r\n", 1).is_err());
        assert!(decode(b"\r\n", 1).is_err());
        assert!(decode(b"2\r\nabc\r\n", 1).is_err());
        assert!(decode(b"1000000000000000\r\n", 1).is_err());
        assert!(decode(b"2\rX", 1).is_err());
    }
}
