//! A small HTTP/1.1 client: one keep-alive connection, one request at a time.
//!
//! Built for measuring, not for browsing: requests are prebuilt bytes (see
//! [`crate::catalog::Prepared`]), the head is parsed in place with `httparse`, and a body
//! that is only counted never reaches user space: it is dropped in the kernel with
//! `recv(MSG_TRUNC)` (Linux discards TCP data with that flag instead of copying it), so the
//! generator spends its CPU on requests rather than on `memcpy`. Bodies are framed by
//! `Content-Length`, chunked transfer-encoding or connection close. A connection that the
//! server closed while idle is reopened once, transparently; any other failure drops the
//! connection so the next request starts on a fresh one.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::chunked::Chunked;

/// Read buffer size of a load connection.
pub(crate) const LOAD_BUFFER: usize = 128 * 1024;

/// Where a response body goes.
pub(crate) enum Sink<'a> {
    /// Counted and dropped.
    Discard,
    /// Appended to the vector.
    Collect(&'a mut Vec<u8>),
}

/// A complete response.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Response {
    /// Status code.
    pub(crate) status: u16,
    /// Body bytes received.
    pub(crate) body_len: u64,
    /// The `Content-Length` header, if there was one.
    pub(crate) content_length: Option<u64>,
    /// Time from the request's write to the first response byte.
    pub(crate) ttfb: Duration,
    /// Time from the request's write to the last body byte.
    pub(crate) total: Duration,
}

/// Why a request got no complete response.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FetchError {
    /// TCP connect failed.
    #[error("connect: {0}")]
    Connect(io::Error),
    /// The per-request timeout expired.
    #[error("timeout")]
    Timeout,
    /// The connection ended before `Content-Length` bytes of body arrived.
    #[error("short body: {received} of {expected} bytes")]
    ShortBody {
        /// `Content-Length`.
        expected: u64,
        /// Bytes that arrived.
        received: u64,
    },
    /// The connection ended (or was reset) before a complete response head.
    #[error("connection closed before the response")]
    Closed,
    /// A socket error after the head.
    #[error("i/o: {0}")]
    Io(io::Error),
    /// The response was not valid HTTP/1.1.
    #[error("protocol: {0}")]
    Protocol(&'static str),
}

/// One client connection to one address.
pub(crate) struct Conn {
    addr: SocketAddr,
    stream: Option<TcpStream>,
    buf: Box<[u8]>,
    /// Connections opened so far.
    pub(crate) connects: u64,
}

impl Conn {
    /// A connection (not yet open) with a read buffer of `buf_size` bytes.
    pub(crate) fn new(addr: SocketAddr, buf_size: usize) -> Self {
        Self {
            addr,
            stream: None,
            buf: vec![0; buf_size.max(1024)].into_boxed_slice(),
            connects: 0,
        }
    }

    /// True while a keep-alive connection is open.
    pub(crate) fn is_open(&self) -> bool {
        self.stream.is_some()
    }

    /// Sends `request` and reads the whole response within `timeout`.
    pub(crate) async fn fetch(
        &mut self,
        request: &[u8],
        mut sink: Sink<'_>,
        timeout: Duration,
    ) -> Result<Response, FetchError> {
        let result =
            match tokio::time::timeout(timeout, self.fetch_retrying(request, &mut sink)).await {
                Ok(result) => result,
                Err(_) => Err(FetchError::Timeout),
            };
        if result.is_err() {
            self.stream = None;
        }
        result
    }

    /// Opens the connection now (for `idle`), if it is not open.
    pub(crate) async fn connect(&mut self) -> Result<(), FetchError> {
        if self.stream.is_none() {
            let stream = TcpStream::connect(self.addr)
                .await
                .map_err(FetchError::Connect)?;
            // Requests are one small write each; never wait for Nagle.
            stream.set_nodelay(true).map_err(FetchError::Connect)?;
            self.connects += 1;
            self.stream = Some(stream);
        }
        Ok(())
    }

    /// Waits until the server closes the idle connection (or it fails); returns at once
    /// when it is not open. Stray bytes from the server are read and dropped.
    pub(crate) async fn closed(&mut self) {
        while let Some(stream) = &self.stream {
            if stream.readable().await.is_err() {
                break;
            }
            match stream.try_read(&mut self.buf) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => break,
            }
        }
        self.stream = None;
    }

    /// One exchange, repeated once on a fresh connection when a reused one turned out to be
    /// closed by the server before answering (the keep-alive race every client must handle).
    async fn fetch_retrying(
        &mut self,
        request: &[u8],
        sink: &mut Sink<'_>,
    ) -> Result<Response, FetchError> {
        let reused = self.stream.is_some();
        match self.exchange(request, sink).await {
            Err(FetchError::Closed) if reused => {
                self.stream = None;
                self.exchange(request, sink).await
            }
            other => other,
        }
    }

    async fn exchange(
        &mut self,
        request: &[u8],
        sink: &mut Sink<'_>,
    ) -> Result<Response, FetchError> {
        self.connect().await?;
        let Self { stream, buf, .. } = self;
        let Some(stream) = stream.as_mut() else {
            return Err(FetchError::Closed);
        };
        let t0 = Instant::now();
        stream
            .write_all(request)
            .await
            .map_err(|_| FetchError::Closed)?;

        let (head, ttfb) = read_head(stream, buf, t0).await?;
        let leftover = &buf[head.len..head.filled];
        let body_len = if head.no_body {
            0
        } else if head.chunked {
            read_chunked(stream, buf, head.len, head.filled, sink).await?
        } else if let Some(expected) = head.content_length {
            let first = leftover
                .len()
                .min(usize::try_from(expected).unwrap_or(usize::MAX));
            if let Sink::Collect(v) = sink {
                v.extend_from_slice(&leftover[..first]);
            }
            read_exact_len(stream, buf, first as u64, expected, sink).await?
        } else {
            if let Sink::Collect(v) = sink {
                v.extend_from_slice(leftover);
            }
            read_to_close(stream, buf, leftover.len() as u64, sink).await?
        };
        let total = t0.elapsed();
        let framed_by_close = !head.no_body && !head.chunked && head.content_length.is_none();
        if head.close || framed_by_close || head.extra {
            self.stream = None;
        }
        Ok(Response {
            status: head.status,
            body_len,
            content_length: head.content_length,
            ttfb,
            total,
        })
    }
}

/// What the response head says about the body.
struct Head {
    status: u16,
    /// Head length in the buffer.
    len: usize,
    /// Bytes in the buffer (head and the first body bytes).
    filled: usize,
    content_length: Option<u64>,
    chunked: bool,
    close: bool,
    no_body: bool,
    /// More bytes arrived than the body holds (only known for small bodies here).
    extra: bool,
}

/// Reads and parses the response head (skipping any `1xx` interim responses).
async fn read_head(
    stream: &mut TcpStream,
    buf: &mut [u8],
    t0: Instant,
) -> Result<(Head, Duration), FetchError> {
    let mut filled = 0;
    let mut ttfb = None;
    loop {
        let n = match stream.read(&mut buf[filled..]).await {
            Ok(n) => n,
            Err(_) if filled == 0 => return Err(FetchError::Closed),
            Err(e) => return Err(FetchError::Io(e)),
        };
        if n == 0 {
            return Err(if filled == 0 {
                FetchError::Closed
            } else {
                FetchError::Protocol("connection closed inside the response head")
            });
        }
        let ttfb = *ttfb.get_or_insert_with(|| t0.elapsed());
        filled += n;
        loop {
            let mut headers = [httparse::EMPTY_HEADER; 64];
            let mut response = httparse::Response::new(&mut headers);
            let len = match response.parse(&buf[..filled]) {
                Ok(httparse::Status::Complete(len)) => len,
                Ok(httparse::Status::Partial) if filled == buf.len() => {
                    return Err(FetchError::Protocol("response head too large"));
                }
                Ok(httparse::Status::Partial) => break,
                Err(_) => return Err(FetchError::Protocol("malformed response head")),
            };
            let status = response.code.unwrap_or(0);
            if (100..200).contains(&status) && status != 101 {
                buf.copy_within(len..filled, 0);
                filled -= len;
                continue;
            }
            let mut head = Head {
                status,
                len,
                filled,
                content_length: None,
                chunked: false,
                close: response.version == Some(0),
                no_body: status == 204 || status == 304,
                extra: false,
            };
            for h in response.headers.iter() {
                if h.name.eq_ignore_ascii_case("content-length") {
                    let value = std::str::from_utf8(h.value)
                        .ok()
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .ok_or(FetchError::Protocol("bad Content-Length"))?;
                    if head.content_length.is_some_and(|v| v != value) {
                        return Err(FetchError::Protocol("conflicting Content-Length"));
                    }
                    head.content_length = Some(value);
                } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
                    head.chunked = last_token_is(h.value, b"chunked");
                } else if h.name.eq_ignore_ascii_case("connection") {
                    if has_token(h.value, b"close") {
                        head.close = true;
                    } else if has_token(h.value, b"keep-alive") {
                        head.close = false;
                    }
                }
            }
            if let (Some(cl), false, false) = (head.content_length, head.chunked, head.no_body) {
                head.extra = (filled - len) as u64 > cl;
            }
            return Ok((head, ttfb));
        }
    }
}

/// Reads a `Content-Length` body of which `received` bytes are already in hand.
async fn read_exact_len(
    stream: &mut TcpStream,
    buf: &mut [u8],
    mut received: u64,
    expected: u64,
    sink: &mut Sink<'_>,
) -> Result<u64, FetchError> {
    while received < expected {
        let want = usize::try_from(expected - received)
            .unwrap_or(usize::MAX)
            .min(buf.len());
        let n = match sink {
            Sink::Discard => discard(stream, &mut buf[..want]).await,
            Sink::Collect(v) => {
                let r = stream.read(&mut buf[..want]).await;
                if let Ok(n) = r {
                    v.extend_from_slice(&buf[..n]);
                }
                r
            }
        }
        .map_err(FetchError::Io)?;
        if n == 0 {
            return Err(FetchError::ShortBody { expected, received });
        }
        received += n as u64;
    }
    Ok(received)
}

/// Reads up to `buf.len()` bytes of the stream and drops them in the kernel.
async fn discard(stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        stream.readable().await?;
        let result = stream.try_io(Interest::READABLE, || {
            rustix::net::recv(stream, &mut *buf, rustix::net::RecvFlags::TRUNC)
                .map(|(_, len)| len.min(buf.len()))
                .map_err(io::Error::from)
        });
        match result {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            other => return other,
        }
    }
}

/// Reads a chunked body; the buffer holds `filled` bytes of which the first `start` are
/// the head.
async fn read_chunked(
    stream: &mut TcpStream,
    buf: &mut [u8],
    start: usize,
    filled: usize,
    sink: &mut Sink<'_>,
) -> Result<u64, FetchError> {
    let mut decoder = Chunked::default();
    let mut received = 0u64;
    let mut feed = |decoder: &mut Chunked, bytes: &[u8]| {
        decoder.feed(bytes, &mut |data| {
            received += data.len() as u64;
            if let Sink::Collect(v) = sink {
                v.extend_from_slice(data);
            }
        })
    };
    feed(&mut decoder, &buf[start..filled]).map_err(FetchError::Protocol)?;
    while !decoder.is_done() {
        let n = stream.read(buf).await.map_err(FetchError::Io)?;
        if n == 0 {
            return Err(FetchError::Protocol(
                "connection closed inside a chunked body",
            ));
        }
        feed(&mut decoder, &buf[..n]).map_err(FetchError::Protocol)?;
    }
    Ok(received)
}

/// Reads a body delimited by the connection's end.
async fn read_to_close(
    stream: &mut TcpStream,
    buf: &mut [u8],
    mut received: u64,
    sink: &mut Sink<'_>,
) -> Result<u64, FetchError> {
    loop {
        let n = stream.read(buf).await.map_err(FetchError::Io)?;
        if n == 0 {
            return Ok(received);
        }
        if let Sink::Collect(v) = sink {
            v.extend_from_slice(&buf[..n]);
        }
        received += n as u64;
    }
}

/// True when the comma-separated header value contains `token` (case-insensitive).
fn has_token(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .any(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

/// True when the last coding of a `Transfer-Encoding` value is `token`.
fn last_token_is(value: &[u8], token: &[u8]) -> bool {
    value
        .split(|&b| b == b',')
        .next_back()
        .is_some_and(|t| t.trim_ascii().eq_ignore_ascii_case(token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    /// Serves each canned response on one accepted connection, in order, reading one
    /// request head before each.
    async fn serve(responses: Vec<&'static [u8]>) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            for r in responses {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    if n == 0 {
                        return;
                    }
                    got.extend_from_slice(&buf[..n]);
                }
                s.write_all(r).await.unwrap();
            }
        });
        addr
    }

    const REQ: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn content_length_chunked_and_keep_alive() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
        ])
        .await;
        let mut conn = Conn::new(addr, 1024);
        let mut body = Vec::new();
        let r = conn.fetch(REQ, Sink::Collect(&mut body), T).await.unwrap();
        assert_eq!(
            (r.status, r.body_len, body.as_slice()),
            (200, 5, &b"hello"[..])
        );
        body.clear();
        let r = conn.fetch(REQ, Sink::Collect(&mut body), T).await.unwrap();
        assert_eq!(
            (r.status, r.body_len, body.as_slice()),
            (200, 5, &b"abcde"[..])
        );
        let r = conn.fetch(REQ, Sink::Discard, T).await.unwrap();
        assert_eq!((r.status, r.body_len), (404, 0));
        assert_eq!(conn.connects, 1);
    }

    #[tokio::test]
    async fn discarded_body_is_counted() {
        static BIG: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
        let big = BIG.get_or_init(|| {
            let mut v = b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n".to_vec();
            v.resize(v.len() + 300_000, 7);
            v
        });
        let addr = serve(vec![big.as_slice()]).await;
        let mut conn = Conn::new(addr, 4096);
        let r = conn.fetch(REQ, Sink::Discard, T).await.unwrap();
        assert_eq!(r.body_len, 300_000);
        assert!(conn.is_open());
    }

    #[tokio::test]
    async fn short_body_and_close() {
        let addr = serve(vec![b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"]).await;
        let mut conn = Conn::new(addr, 1024);
        let err = conn.fetch(REQ, Sink::Discard, T).await.unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::ShortBody {
                    expected: 10,
                    received: 3
                }
            ),
            "{err}"
        );
        assert!(!conn.is_open());
    }

    #[tokio::test]
    async fn close_delimited_body() {
        let addr = serve(vec![
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of it",
        ])
        .await;
        let mut conn = Conn::new(addr, 1024);
        let mut body = Vec::new();
        let r = conn.fetch(REQ, Sink::Collect(&mut body), T).await.unwrap();
        assert_eq!(body, b"all of it");
        assert_eq!(r.content_length, None);
        assert!(!conn.is_open());
    }

    #[tokio::test]
    async fn timeout_and_refused() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut conn = Conn::new(addr, 1024);
        let err = conn
            .fetch(REQ, Sink::Discard, Duration::from_millis(100))
            .await
            .unwrap_err();
        assert!(matches!(err, FetchError::Timeout), "{err}");
        drop(listener);
        let err = conn.fetch(REQ, Sink::Discard, T).await.unwrap_err();
        assert!(matches!(err, FetchError::Connect(_)), "{err}");
    }

    #[test]
    fn tokens() {
        assert!(has_token(b"keep-alive, Close", b"close"));
        assert!(!has_token(b"closed", b"close"));
        assert!(last_token_is(b"gzip, chunked", b"chunked"));
        assert!(!last_token_is(b"chunked, gzip", b"chunked"));
    }
}
