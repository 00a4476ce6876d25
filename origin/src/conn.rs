//! One HTTP/1.1 connection: read a head, answer it, repeat while kept alive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_packager::{ByteRange, MediaSegment};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::handler::{self, Body, Caching, Reply};
use crate::http::date;
use crate::http::range::{self, RangeRequest};
use crate::http::request::{Method, Parsed, RequestHead, etag_matches};
use crate::http::response::{Head, Status, etag_string, write_head};
use crate::io;
use crate::server::{Closing, Shared, Slot};

/// Per-connection buffers, reused for every request on the connection.
struct Conn {
    stream: TcpStream,
    input: Vec<u8>,
    output: Vec<u8>,
    head: RequestHead,
    segment: MediaSegment,
    closing: Arc<Closing>,
    /// This connection as its worker sees it (idle or not, shed signal).
    slot: Arc<Slot>,
    peer: SocketAddr,
    /// Status and bytes of the last response, for the metrics.
    last: (u16, u64),
}

/// Serves a connection until the client closes it, it idles out, or an
/// error makes it unusable.
pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    shared: Arc<Shared>,
    closing: Arc<Closing>,
    slot: Arc<Slot>,
) {
    let _ = stream.set_nodelay(true);
    let head = RequestHead {
        ip_header: shared.config.tokens.client_ip_header.to_ascii_lowercase(),
        ..RequestHead::default()
    };
    let mut c = Conn {
        stream,
        input: Vec::with_capacity(1024),
        output: Vec::new(),
        head,
        segment: MediaSegment::default(),
        closing,
        slot,
        peer,
        last: (0, 0),
    };
    let metrics = &shared.metrics.data;
    metrics.open_connections.inc();
    let span = tracing::debug_span!("conn", client.addr = %peer);
    async {
        if let Err(e) = c.run(&shared).await {
            tracing::debug!(error = %e, "connection ended");
        }
    }
    .instrument(span)
    .await;
    metrics.open_connections.dec();
}

impl Conn {
    async fn run(&mut self, shared: &Shared) -> std::io::Result<()> {
        let cfg = &shared.config.server;
        let keepalive = Duration::from_secs(cfg.keepalive_timeout_secs);
        let request_timeout = Duration::from_secs(cfg.request_timeout_secs);
        let send_timeout = Duration::from_secs(cfg.send_timeout_secs);
        loop {
            let Some(head_len) = self
                .read_head(shared, keepalive, request_timeout, send_timeout)
                .await?
            else {
                return Ok(());
            };

            let span = tracing::debug_span!("request", path = %crate::route::split_target(&self.head.target).0);
            let started = std::time::Instant::now();
            let mut kind = 0;
            let reply = handler::handle(
                shared,
                &self.head,
                &mut self.segment,
                self.peer.ip(),
                &mut kind,
            )
            .instrument(span)
            .await;
            let keep = self.head.keep_alive && !reply.close && !shared.shutting_down();
            self.respond(shared, reply, keep, send_timeout).await?;
            let m = &shared.metrics.data;
            m.bytes_sent.inc_by(self.last.1);
            m.record(kind, self.last.0, started.elapsed().as_nanos() as u64);
            self.input.drain(..head_len);
            if !keep {
                return Ok(());
            }
        }
    }

    /// Reads until a complete head is buffered and returns its length;
    /// `None` when the connection is to close (the client left, idled out,
    /// was too slow, was shed, or sent a head that was answered and closed).
    ///
    /// The whole head must arrive within `request_timeout` of its first
    /// byte: the deadline is fixed when the head starts, so a client that
    /// trickles one byte at a time cannot hold the connection longer.
    async fn read_head(
        &mut self,
        shared: &Shared,
        keepalive: Duration,
        request_timeout: Duration,
        send_timeout: Duration,
    ) -> std::io::Result<Option<usize>> {
        let max_head = shared.config.server.max_request_head_bytes;
        // A pipelined head already started arriving with the previous one.
        let mut deadline = (!self.input.is_empty()).then(|| Instant::now() + request_timeout);
        loop {
            if !self.input.is_empty() {
                let refusal = match self.head.parse(&self.input) {
                    Parsed::Complete(n) => return Ok(Some(n)),
                    Parsed::Partial if self.input.len() >= max_head => {
                        (Status::HEAD_TOO_LARGE, "request head too large")
                    }
                    Parsed::Partial => (Status::OK, ""),
                    Parsed::Invalid => (Status::BAD_REQUEST, "malformed request"),
                    Parsed::TooManyHeaders => (Status::HEAD_TOO_LARGE, "too many header fields"),
                    Parsed::Refused(why) => (Status::BAD_REQUEST, why),
                };
                if refusal.0 != Status::OK {
                    self.reply_and_close(shared, refusal.0, refusal.1, send_timeout)
                        .await?;
                    return Ok(None);
                }
            }
            if self.input.capacity() - self.input.len() < 512 {
                self.input.reserve(1024.min(max_head));
            }
            let idle = self.input.is_empty();
            // Shutting down, or shed to make room for a new connection:
            // idle keep-alive connections close at once. Registered before
            // the flags are read, so a close between the two still wakes
            // this read.
            let closing = self.closing.notify.notified();
            let shed = self.slot.shed.notified();
            tokio::pin!(closing, shed);
            if idle {
                closing.as_mut().enable();
                shed.as_mut().enable();
                if self.closing.is_set() {
                    return Ok(None);
                }
                self.slot.set_idle(true);
            }
            let until = match deadline {
                Some(d) if !idle => d,
                _ => Instant::now() + keepalive,
            };
            let read = tokio::time::timeout_at(until.into(), self.stream.read_buf(&mut self.input));
            let n = tokio::select! {
                r = read => match r {
                    Ok(r) => r?,
                    Err(_) => return Ok(None), // idle or slow client: close quietly
                },
                _ = &mut closing, if idle => return Ok(None),
                _ = &mut shed, if idle => return Ok(None),
            };
            if n == 0 {
                return Ok(None);
            }
            if idle {
                self.slot.set_idle(false);
                deadline = Some(Instant::now() + request_timeout);
            }
        }
    }

    async fn reply_and_close(
        &mut self,
        shared: &Shared,
        status: Status,
        text: &'static str,
        timeout: Duration,
    ) -> std::io::Result<()> {
        let mut r = Reply::error(&crate::error::OriginError::BadRequest("malformed request"));
        r.status = status;
        r.body = Body::Text(bytes::Bytes::from(format!("{text}\n")));
        self.head.method = Some(Method::Get);
        self.head.range = None;
        self.head.if_none_match = None;
        self.head.if_modified_since = None;
        self.respond(shared, r, false, timeout).await
    }

    /// Applies conditional and range logic, then writes the reply.
    async fn respond(
        &mut self,
        shared: &Shared,
        reply: Reply,
        keep: bool,
        timeout: Duration,
    ) -> std::io::Result<()> {
        let fixed = &shared.headers;
        let total = match &reply.body {
            Body::Empty => 0,
            Body::Text(b) => b.len() as u64,
            Body::Segment(_) => self.segment.len(),
            Body::Keyframes(t) => t.len(),
            Body::Kept(g) => g.len,
            Body::Growing(_) => 0,
        };
        let chunked = matches!(reply.body, Body::Growing(_));
        let last_modified = reply.asset.as_ref().map(|a| a.last_modified.as_str());
        let mut status = reply.status;
        let mut window = (0, total);
        let mut content_range = None;
        let mut unsatisfied = None;
        if status == Status::OK {
            if let Some(tag) = reply.etag {
                // Formatted only when a conditional header needs it.
                let etag = || etag_string(tag);
                let not_modified = match (&self.head.if_none_match, &self.head.if_modified_since) {
                    (Some(inm), _) => etag_matches(inm, &etag()),
                    (None, Some(ims)) => {
                        match (date::parse(ims), last_modified.and_then(date::parse)) {
                            (Some(since), Some(lm)) => lm <= since,
                            _ => false,
                        }
                    }
                    _ => false,
                };
                if not_modified {
                    status = Status::NOT_MODIFIED;
                } else if self.head.method == Some(Method::Get) {
                    let range_applies = match &self.head.if_range {
                        None => true,
                        Some(v) if v.starts_with('"') || v.starts_with("W/") => *v == etag(),
                        Some(v) => last_modified.is_some_and(|lm| lm == v),
                    };
                    if let Some(value) = self.head.range.as_deref().filter(|_| range_applies) {
                        match range::parse(value, total) {
                            RangeRequest::Full => {}
                            RangeRequest::Partial { start, end } => {
                                status = Status::PARTIAL;
                                window = (start, end);
                                content_range = Some((start, end - 1, total));
                            }
                            RangeRequest::Unsatisfiable => {
                                status = Status::RANGE_NOT_SATISFIABLE;
                                unsatisfied = Some(total);
                            }
                        }
                    }
                }
            }
        }
        let body_len = match status {
            Status::PARTIAL => window.1 - window.0,
            Status::RANGE_NOT_SATISFIABLE => 0,
            _ => total,
        };
        let send_body = self.head.method != Some(Method::Head)
            && status != Status::NOT_MODIFIED
            && status != Status::RANGE_NOT_SATISFIABLE
            && status != Status::NO_CONTENT;
        let cache_control: &[u8] = match reply.caching {
            Caching::Segment => &fixed.segment_cache,
            Caching::Manifest => &fixed.manifest_cache,
            Caching::NotFound => &fixed.not_found_cache,
            Caching::NoStore => b"no-store",
            Caching::LiveManifest => b"public, max-age=1",
            Caching::LiveBlocking => b"public, max-age=60",
            Caching::LiveMedia => &fixed.live_media_cache,
        };
        self.output.clear();
        write_head(
            &mut self.output,
            status,
            &Head {
                content_type: if status == Status::RANGE_NOT_SATISFIABLE {
                    ""
                } else {
                    reply.content_type
                },
                content_length: body_len,
                chunked,
                cache_control,
                etag: reply.etag,
                last_modified,
                content_range,
                unsatisfied_range: unsatisfied,
                allow: reply.allow || status == Status::METHOD_NOT_ALLOWED,
                close: !keep,
                cors: &fixed.cors,
                extra: if reply.preflight {
                    &fixed.cors_preflight
                } else {
                    b""
                },
            },
        );
        self.last = (
            status.0,
            self.output.len() as u64 + if send_body { body_len } else { 0 },
        );
        if !send_body {
            return io::write_all(&mut self.stream, &self.output, timeout).await;
        }
        let (start, end) = if status == Status::PARTIAL {
            window
        } else {
            (0, total)
        };
        match reply.body {
            Body::Empty => io::write_all(&mut self.stream, &self.output, timeout).await,
            Body::Growing(growing) => {
                io::write_all(&mut self.stream, &self.output, timeout).await?;
                let sent = growing.stream(&mut self.stream, timeout).await?;
                self.last.1 += sent;
                Ok(())
            }
            Body::Text(bytes) => {
                self.output
                    .extend_from_slice(&bytes[start as usize..end as usize]);
                io::write_all(&mut self.stream, &self.output, timeout).await
            }
            Body::Keyframes(trick) => {
                let output = &mut self.output;
                crate::trick::send(
                    &self.stream,
                    output,
                    &mut self.segment,
                    &trick,
                    start,
                    end,
                    timeout,
                )
                .await
            }
            Body::Kept(body) => {
                let _cork = io::Cork::new(&self.stream);
                io::write_all_more(&self.stream, &self.output, timeout).await?;
                let piece = ByteRange {
                    offset: start,
                    len: end - start,
                };
                io::send_file(&self.stream, &body.file, piece, timeout).await
            }
            Body::Segment(file) => {
                let hlen = self.push_header_window(start, end);
                if end <= hlen {
                    return io::write_all(&mut self.stream, &self.output, timeout).await;
                }
                let _cork = io::Cork::new(&self.stream);
                io::write_all_more(&self.stream, &self.output, timeout).await?;
                // The payload ranges clipped to the requested window.
                let pieces = self.segment.payload_window(start, end);
                if self.segment.ranges.len() > 1 {
                    io::send_ranges(&self.stream, &file.file, pieces, timeout).await
                } else {
                    for piece in pieces {
                        io::send_file(&self.stream, &file.file, piece, timeout).await?;
                    }
                    Ok(())
                }
            }
        }
    }

    /// Appends the part of the segment's generated header inside the window
    /// `start..end` to the output; returns the header's length.
    fn push_header_window(&mut self, start: u64, end: u64) -> u64 {
        let header = &self.segment.header;
        let hlen = header.len() as u64;
        if start < hlen {
            self.output
                .extend_from_slice(&header[start as usize..end.min(hlen) as usize]);
        }
        hlen
    }
}
