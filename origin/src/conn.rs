//! One HTTP/1.1 connection: read a head, answer it, repeat while kept alive.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use headwater_packager::{ByteRange, MediaSegment};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tracing::Instrument;

use crate::handler;
use crate::http::date;
use crate::http::range::{self, RangeRequest};
use crate::http::request::{Method, Parsed, RequestHead, etag_matches};
use crate::http::response::{Head, Status, etag_string, write_head};
use crate::io;
use crate::reply::{Body, Caching, Reply};
use crate::shared::{Closing, Shared, Slot};

/// What a response says about its body: status and the window sent.
struct Answer {
    status: Status,
    /// Bytes `start..end` of the body.
    window: (u64, u64),
    content_range: Option<(u64, u64, u64)>,
    unsatisfied: Option<u64>,
}

impl Answer {
    /// The `Content-Length`.
    fn len(&self) -> u64 {
        self.window.1 - self.window.0
    }
}

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
        let mut fresh = true;
        loop {
            let Some(head_len) = self
                .read_head(shared, fresh, keepalive, request_timeout, send_timeout)
                .await?
            else {
                return Ok(());
            };

            let span = tracing::debug_span!("request", path = %crate::route::split_target(&self.head.target).0);
            let started = std::time::Instant::now();
            let reply = handler::handle(shared, &self.head, &mut self.segment, self.peer.ip())
                .instrument(span)
                .await;
            let route = reply.route;
            let keep = self.head.keep_alive && !reply.close && !shared.shutting_down();
            self.respond(shared, reply, keep, send_timeout).await?;
            let m = &shared.metrics.data;
            m.bytes_sent.inc_by(self.last.1);
            m.record(route, self.last.0, started.elapsed().as_nanos() as u64);
            self.input.drain(..head_len);
            fresh = false;
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
    ///
    /// Shutting down closes idle keep-alive connections, but not a `fresh`
    /// one that has yet to send its first request: its client just
    /// connected and is about to ask (an upgrade's old process accepted
    /// it), so it is answered, with `Connection: close`.
    async fn read_head(
        &mut self,
        shared: &Shared,
        fresh: bool,
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
            let kept_alive = idle && !fresh;
            let closing = self.closing.notify.notified();
            let shed = self.slot.shed.notified();
            tokio::pin!(closing, shed);
            if idle {
                closing.as_mut().enable();
                shed.as_mut().enable();
                if kept_alive && self.closing.is_set() {
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
                _ = &mut closing, if kept_alive => return Ok(None),
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
        let total = match &reply.body {
            Body::Empty | Body::Growing(_) | Body::Relayed(_) => 0,
            Body::Text(b) => b.len() as u64,
            Body::Segment(_) => self.segment.len(),
            Body::Keyframes(t) => t.len(),
            Body::Kept(g) => g.len,
        };
        let last_modified = reply.asset.as_ref().map(|a| a.last_modified.clone());
        let answer = self.answer(&reply, total, last_modified.as_deref());
        self.write_head(shared, &reply, &answer, last_modified.as_deref(), keep);
        let send_body = self.head.method != Some(Method::Head)
            && !matches!(
                answer.status,
                Status::NOT_MODIFIED | Status::RANGE_NOT_SATISFIABLE | Status::NO_CONTENT
            );
        self.last = (
            answer.status.0,
            self.output.len() as u64 + if send_body { answer.len() } else { 0 },
        );
        if !send_body {
            return io::write_all(&mut self.stream, &self.output, timeout).await;
        }
        self.send_body(reply.body, answer.window, timeout).await
    }

    /// What to answer: `304` for a matching condition, `206`/`416` for a
    /// `Range` (RFC 9110 §13, §14), else the reply's status and all of it.
    fn answer(&self, reply: &Reply, total: u64, last_modified: Option<&str>) -> Answer {
        let whole = Answer {
            status: reply.status,
            window: (0, total),
            content_range: None,
            unsatisfied: None,
        };
        let Some(tag) = reply.etag.filter(|_| reply.status == Status::OK) else {
            return whole;
        };
        // Formatted only when a conditional header needs it.
        let etag = || etag_string(tag);
        let not_modified = match (&self.head.if_none_match, &self.head.if_modified_since) {
            (Some(inm), _) => etag_matches(inm, &etag()),
            (None, Some(ims)) => match (date::parse(ims), last_modified.and_then(date::parse)) {
                (Some(since), Some(lm)) => lm <= since,
                _ => false,
            },
            _ => false,
        };
        if not_modified {
            return Answer {
                status: Status::NOT_MODIFIED,
                ..whole
            };
        }
        if self.head.method != Some(Method::Get) {
            return whole;
        }
        let range_applies = match &self.head.if_range {
            None => true,
            Some(v) if v.starts_with('"') || v.starts_with("W/") => *v == etag(),
            Some(v) => last_modified.is_some_and(|lm| lm == v),
        };
        match self.head.range.as_deref().filter(|_| range_applies) {
            None => whole,
            Some(value) => match range::parse(value, total) {
                RangeRequest::Full => whole,
                RangeRequest::Partial { start, end } => Answer {
                    status: Status::PARTIAL,
                    window: (start, end),
                    content_range: Some((start, end - 1, total)),
                    unsatisfied: None,
                },
                RangeRequest::Unsatisfiable => Answer {
                    status: Status::RANGE_NOT_SATISFIABLE,
                    window: (0, 0),
                    content_range: None,
                    unsatisfied: Some(total),
                },
            },
        }
    }

    /// Writes the response head into the output buffer.
    fn write_head(
        &mut self,
        shared: &Shared,
        reply: &Reply,
        answer: &Answer,
        last_modified: Option<&str>,
        keep: bool,
    ) {
        let fixed = &shared.headers;
        let cache_control: &[u8] = match reply.caching {
            Caching::Segment => &fixed.segment_cache,
            Caching::Manifest => &fixed.manifest_cache,
            Caching::NotFound => &fixed.not_found_cache,
            Caching::NoStore => b"no-store",
            Caching::LiveManifest => b"public, max-age=1",
            Caching::LiveBlocking => b"public, max-age=60",
            Caching::LiveMedia => &fixed.live_media_cache,
        };
        let unsatisfied = answer.status == Status::RANGE_NOT_SATISFIABLE;
        self.output.clear();
        write_head(
            &mut self.output,
            answer.status,
            &Head {
                content_type: if unsatisfied { "" } else { reply.content_type },
                content_length: answer.len(),
                chunked: matches!(reply.body, Body::Growing(_) | Body::Relayed(_)),
                cache_control,
                etag: reply.etag,
                last_modified,
                content_range: answer.content_range,
                unsatisfied_range: answer.unsatisfied,
                allow: reply.allow || answer.status == Status::METHOD_NOT_ALLOWED,
                close: !keep,
                cors: &fixed.cors,
                extra: if reply.preflight {
                    &fixed.cors_preflight
                } else if matches!(
                    answer.status,
                    Status::BAD_GATEWAY | Status::UNAVAILABLE | Status::GATEWAY_TIMEOUT
                ) {
                    b"Retry-After: 2\r\n"
                } else {
                    b""
                },
            },
        );
    }

    /// Sends the head in the output buffer and bytes `start..end` of the
    /// body, each kind of body the cheapest way the kernel allows.
    async fn send_body(
        &mut self,
        body: Body,
        (start, end): (u64, u64),
        timeout: Duration,
    ) -> std::io::Result<()> {
        match body {
            Body::Empty => io::write_all(&mut self.stream, &self.output, timeout).await,
            Body::Growing(growing) => {
                io::write_all(&mut self.stream, &self.output, timeout).await?;
                let sent = growing.stream(&mut self.stream, timeout).await?;
                self.last.1 += sent;
                Ok(())
            }
            Body::Relayed(relayed) => {
                io::write_all(&mut self.stream, &self.output, timeout).await?;
                let sent = relayed.relay(&mut self.stream, timeout).await?;
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
            Body::Segment(file) => self.send_segment(&file, start, end, timeout).await,
        }
    }

    /// A planned segment: its generated header from the buffer, its
    /// payload from the source by `sendfile` (or spliced, for many ranges).
    async fn send_segment(
        &mut self,
        file: &crate::store::IndexedFile,
        start: u64,
        end: u64,
        timeout: Duration,
    ) -> std::io::Result<()> {
        let hlen = self.push_header_window(start, end);
        if end <= hlen {
            return io::write_all(&mut self.stream, &self.output, timeout).await;
        }
        let _cork = io::Cork::new(&self.stream);
        io::write_all_more(&self.stream, &self.output, timeout).await?;
        // The payload ranges clipped to the requested window.
        let pieces = self.segment.payload_window(start, end);
        match &file.data {
            crate::store::Data::Local(f) if self.segment.ranges.len() > 1 => {
                io::send_ranges(&self.stream, f, pieces, timeout).await
            }
            _ => {
                for piece in pieces {
                    io::send_source(&self.stream, file, piece, timeout).await?;
                }
                Ok(())
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
