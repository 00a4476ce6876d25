//! The HTTP/1.1 client that asks another node: one `GET` per call on a
//! kept-alive connection of this worker (a worker's runtime owns its
//! sockets), heads parsed by `httparse`, bodies by `Content-Length`, or
//! handed on undecoded when chunked (a live segment still being made).

use std::cell::RefCell;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Longest wait for a connection to another node.
const CONNECT_WITHIN: Duration = Duration::from_secs(2);
/// Idle connections each worker keeps.
const IDLE_PER_WORKER: usize = 32;
/// Largest response head.
const MAX_HEAD: usize = 16 << 10;
/// Largest body taken whole (a live segment of a very high bitrate).
const MAX_BODY: usize = 64 << 20;

thread_local! {
    /// This worker's idle connections, by authority, oldest first.
    static IDLE: RefCell<Vec<(String, TcpStream)>> = const { RefCell::new(Vec::new()) };
}

/// One request to another node.
pub(super) struct Ask<'a> {
    /// `HOST:PORT`.
    pub(super) authority: &'a str,
    /// Path and query, as the viewer sent them.
    pub(super) target: &'a str,
    /// The viewer's `Host` (the MPD's clock URL is written with it).
    pub(super) host: &'a str,
    /// Sent as `Headwater-Relay`.
    pub(super) relay_token: Option<String>,
    /// Whether the viewer speaks HTTP/1.1 (else the node must not chunk).
    pub(super) http11: bool,
    /// Longest wait for the answer's head, and between body reads.
    pub(super) within: Duration,
}

/// A `200`'s body.
pub(super) enum Answer {
    /// All of it.
    Full(Bytes),
    /// Chunked, still coming: passed on as it arrives.
    Chunked(Streaming),
}

/// Why the node gave no body.
#[derive(Clone, Debug, thiserror::Error)]
pub(super) enum Failure {
    /// It answered with another status (and this text).
    #[error("the node answered {0}")]
    Status(u16, String),
    /// It did not answer in time.
    #[error("the node did not answer in time")]
    Timeout,
    /// It could not be reached (another node may be asked).
    #[error("the node could not be reached: {0}")]
    Unreachable(String),
    /// The connection failed.
    #[error("the connection to the node failed: {0}")]
    Io(String),
    /// Its answer was not what this client takes.
    #[error("the node's answer was malformed: {0}")]
    Protocol(&'static str),
}

/// A chunked body still arriving: the bytes read with the head, then the
/// connection (the node was asked to close it after the body).
pub(crate) struct Streaming {
    stream: TcpStream,
    first: Vec<u8>,
    within: Duration,
}

/// Asks the node. `whole_segment` asks it to close the connection after the
/// answer, which may be a chunked segment still being made.
pub(super) async fn get(ask: &Ask<'_>, whole_segment: bool) -> Result<Answer, Failure> {
    let request = request(ask, whole_segment);
    // A kept connection the node has closed meanwhile fails before any
    // byte of the answer: then once more on a new one.
    if let Some(conn) = take_idle(ask.authority) {
        match exchange(conn, &request, ask, whole_segment).await {
            Err(Exchange::Unanswered(_)) => {}
            Err(Exchange::Failed(f)) => return Err(f),
            Ok(answer) => return Ok(answer),
        }
    }
    let conn = tokio::time::timeout(CONNECT_WITHIN, TcpStream::connect(ask.authority))
        .await
        .map_err(|_| Failure::Unreachable("no connection in time".into()))?
        .map_err(|e| Failure::Unreachable(e.to_string()))?;
    let _ = conn.set_nodelay(true);
    // A node that takes the connection and closes it without a byte of
    // an answer (it is being killed) counts as one that cannot be reached:
    // the request is idempotent, and the next node is asked.
    exchange(conn, &request, ask, whole_segment)
        .await
        .map_err(|e| match e {
            Exchange::Unanswered(Failure::Io(why)) => Failure::Unreachable(why),
            Exchange::Unanswered(f) | Exchange::Failed(f) => f,
        })
}

fn request(ask: &Ask<'_>, close: bool) -> Vec<u8> {
    let mut r = Vec::with_capacity(256);
    let version = if ask.http11 { "1.1" } else { "1.0" };
    r.extend_from_slice(
        format!(
            "GET {} HTTP/{version}\r\nHost: {}\r\n",
            ask.target, ask.host
        )
        .as_bytes(),
    );
    if let Some(t) = &ask.relay_token {
        r.extend_from_slice(format!("Headwater-Relay: {t}\r\n").as_bytes());
    }
    r.extend_from_slice(if close {
        b"Connection: close\r\n\r\n"
    } else {
        b"Connection: keep-alive\r\n\r\n"
    });
    r
}

/// How an exchange failed: before any byte of the answer (a retry may
/// help), or after.
enum Exchange {
    Unanswered(Failure),
    Failed(Failure),
}

/// What a response head says.
struct Head {
    status: u16,
    len: usize,
    content_length: Option<usize>,
    chunked: bool,
    close: bool,
}

async fn exchange(
    mut conn: TcpStream,
    request: &[u8],
    ask: &Ask<'_>,
    whole_segment: bool,
) -> Result<Answer, Exchange> {
    let io = |e: std::io::Error| Exchange::Unanswered(Failure::Io(e.to_string()));
    tokio::time::timeout(ask.within, conn.write_all(request))
        .await
        .map_err(|_| Exchange::Unanswered(Failure::Timeout))?
        .map_err(io)?;
    let mut buf = Vec::with_capacity(4096);
    let head = loop {
        let n = tokio::time::timeout(ask.within, conn.read_buf(&mut buf))
            .await
            .map_err(|_| Exchange::Failed(Failure::Timeout))?
            .map_err(|e| answered(&buf, Failure::Io(e.to_string())))?;
        if n == 0 {
            return Err(answered(&buf, Failure::Io("connection closed".into())));
        }
        if let Some(head) = parse_head(&buf).map_err(Exchange::Failed)? {
            break head;
        }
        if buf.len() > MAX_HEAD {
            return Err(Exchange::Failed(Failure::Protocol("head too large")));
        }
    };
    let mut body = buf.split_off(head.len);
    if head.chunked {
        if head.status != 200 || !whole_segment {
            return Err(Exchange::Failed(Failure::Protocol("a chunked answer")));
        }
        return Ok(Answer::Chunked(Streaming {
            stream: conn,
            first: body,
            within: ask.within,
        }));
    }
    let failed = |f| Exchange::Failed(f);
    match head.content_length {
        Some(n) if n > MAX_BODY => return Err(failed(Failure::Protocol("body too large"))),
        Some(n) => {
            body.reserve(n.saturating_sub(body.len()));
            while body.len() < n {
                read_more(&mut conn, &mut body, ask.within)
                    .await
                    .map_err(failed)?;
            }
            body.truncate(n);
        }
        // Delimited by the close.
        None => loop {
            if read_more(&mut conn, &mut body, ask.within)
                .await
                .map_err(failed)?
                == 0
            {
                break;
            }
            if body.len() > MAX_BODY {
                return Err(failed(Failure::Protocol("body too large")));
            }
        },
    }
    if head.content_length.is_some() && !head.close && !whole_segment {
        put_idle(ask.authority, conn);
    }
    if head.status != 200 {
        let text = String::from_utf8_lossy(&body)
            .trim()
            .chars()
            .take(200)
            .collect();
        return Err(failed(Failure::Status(head.status, text)));
    }
    Ok(Answer::Full(Bytes::from(body)))
}

/// A failure after some bytes of the answer arrived is not retried.
fn answered(buf: &[u8], f: Failure) -> Exchange {
    if buf.is_empty() {
        Exchange::Unanswered(f)
    } else {
        Exchange::Failed(f)
    }
}

/// Reads more of a body; 0 at the end of the stream (an error when a length
/// said there was more: the caller knows).
async fn read_more(
    conn: &mut TcpStream,
    body: &mut Vec<u8>,
    within: Duration,
) -> Result<usize, Failure> {
    let want = body.len();
    let n = tokio::time::timeout(within, conn.read_buf(body))
        .await
        .map_err(|_| Failure::Timeout)?
        .map_err(|e| Failure::Io(e.to_string()))?;
    debug_assert!(body.len() >= want);
    Ok(n)
}

fn parse_head(buf: &[u8]) -> Result<Option<Head>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Response::new(&mut headers);
    let len = match r.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err(Failure::Protocol("not an HTTP/1.x response")),
    };
    let mut head = Head {
        status: r.code.unwrap_or(0),
        len,
        content_length: None,
        chunked: false,
        close: r.version == Some(0),
    };
    for h in r.headers.iter() {
        let value = std::str::from_utf8(h.value).unwrap_or("").trim();
        if h.name.eq_ignore_ascii_case("content-length") {
            head.content_length = Some(
                value
                    .parse()
                    .map_err(|_| Failure::Protocol("Content-Length"))?,
            );
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            head.chunked = value.eq_ignore_ascii_case("chunked");
        } else if h.name.eq_ignore_ascii_case("connection") {
            head.close |= value
                .split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("close"));
        }
    }
    Ok(Some(head))
}

fn take_idle(authority: &str) -> Option<TcpStream> {
    IDLE.with_borrow_mut(|idle| {
        let i = idle.iter().rposition(|(a, _)| a == authority)?;
        Some(idle.remove(i).1)
    })
}

fn put_idle(authority: &str, conn: TcpStream) {
    IDLE.with_borrow_mut(|idle| {
        if idle.len() >= IDLE_PER_WORKER {
            idle.remove(0);
        }
        idle.push((authority.to_owned(), conn));
    });
}

impl Streaming {
    /// Passes the chunked body on to `to` as it arrives, undecoded (it was
    /// chunked for us as it is for our client). Ends without error only
    /// after the last chunk: a node that stops mid-body makes the caller
    /// close the viewer's connection, so the body is seen incomplete.
    pub(crate) async fn relay(
        mut self,
        to: &mut TcpStream,
        timeout: Duration,
    ) -> std::io::Result<u64> {
        let mut chunks = Chunks::default();
        let mut sent = 0u64;
        let mut buf = std::mem::take(&mut self.first);
        loop {
            if !buf.is_empty() {
                crate::io::write_all(to, &buf, timeout).await?;
                chunks.feed(&buf);
                if chunks == Chunks::Bad {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "the node's chunked coding is malformed",
                    ));
                }
                sent += buf.len() as u64;
                buf.clear();
            }
            if buf.capacity() < 16 << 10 {
                buf.reserve(16 << 10);
            }
            let n = tokio::time::timeout(self.within, self.stream.read_buf(&mut buf))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "the node stopped sending")
                })??;
            if n == 0 {
                return if chunks == Chunks::Done {
                    Ok(sent)
                } else {
                    Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the node closed mid-segment",
                    ))
                };
            }
        }
    }
}

/// Where a chunked body is (RFC 9112 §7.1), followed byte by byte so the
/// relay knows when it is whole. No trailers: our nodes send none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunks {
    /// In a chunk's size line (`ext`: past its `;` extensions).
    Size {
        size: u64,
        digits: u8,
        ext: bool,
    },
    /// After the size line's CR.
    SizeLf {
        size: u64,
    },
    /// In a chunk's data, this much left.
    Data(u64),
    /// After a chunk's data: its CR, then its LF.
    DataCr,
    DataLf,
    /// After the last chunk's size line: the final CRLF.
    LastCr,
    LastLf,
    /// Whole.
    Done,
    /// Not chunked coding.
    Bad,
}

impl Default for Chunks {
    fn default() -> Self {
        Chunks::Size {
            size: 0,
            digits: 0,
            ext: false,
        }
    }
}

impl Chunks {
    fn feed(&mut self, bytes: &[u8]) {
        let mut i = 0;
        while i < bytes.len() {
            if let Chunks::Data(left) = *self {
                let take = left.min((bytes.len() - i) as u64);
                i += take as usize;
                *self = if take == left {
                    Chunks::DataCr
                } else {
                    Chunks::Data(left - take)
                };
                continue;
            }
            *self = self.step(bytes[i]);
            i += 1;
        }
    }

    fn step(self, b: u8) -> Chunks {
        match (self, b) {
            (Chunks::Size { size, .. }, b'\r') => Chunks::SizeLf { size },
            (Chunks::Size { ext: true, .. }, _) => self,
            (Chunks::Size { size, digits, .. }, b';') if digits > 0 => Chunks::Size {
                size,
                digits,
                ext: true,
            },
            (Chunks::Size { size, digits, .. }, _) if digits < 15 => match (b as char).to_digit(16)
            {
                Some(d) => Chunks::Size {
                    size: size << 4 | u64::from(d),
                    digits: digits + 1,
                    ext: false,
                },
                None => Chunks::Bad,
            },
            (Chunks::SizeLf { size: 0 }, b'\n') => Chunks::LastCr,
            (Chunks::SizeLf { size }, b'\n') => Chunks::Data(size),
            (Chunks::DataCr, b'\r') => Chunks::DataLf,
            (Chunks::DataLf, b'\n') => Chunks::default(),
            (Chunks::LastCr, b'\r') => Chunks::LastLf,
            (Chunks::LastLf, b'\n') => Chunks::Done,
            _ => Chunks::Bad,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chunked_body_is_whole_after_its_last_chunk_only() {
        let body = b"5\r\nhello\r\n10;x=1\r\nabcdefghijk0\r\n\r\n\r\n0\r\n\r\n";
        let mut c = Chunks::default();
        c.feed(body);
        assert_eq!(c, Chunks::Done);
        // Byte by byte, and every prefix short of the whole is not done.
        let mut c = Chunks::default();
        for (i, b) in body.iter().enumerate() {
            assert_ne!(c, Chunks::Done, "done early at {i}");
            c.feed(&[*b]);
        }
        assert_eq!(c, Chunks::Done);
        for bad in [&b"x\r\n"[..], b"5\r\nhelloXX", b"0\r\nX"] {
            let mut c = Chunks::default();
            c.feed(bad);
            assert_eq!(c, Chunks::Bad, "{bad:?}");
        }
    }

    #[test]
    fn response_heads() {
        let h = parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.len, h.content_length, h.chunked, h.close),
            (200, 38, Some(5), false, false)
        );
        let h = parse_head(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert!(h.chunked && h.close);
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Le")
                .unwrap()
                .is_none()
        );
        assert!(parse_head(b"\x16\x03\x01garbage\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
    }
}
