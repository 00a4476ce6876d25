//! A live segment still being made (LL-DASH's chunked segment): sent with
//! chunked transfer coding, a chunk per part as each is published.

use std::time::Duration;

use headwater_ingest::Live;
use headwater_packager::live::TrackId;

/// A live segment being made, sent chunk by chunk as its parts appear.
pub(crate) struct Growing {
    pub(crate) live: std::sync::Arc<Live>,
    pub(crate) track: TrackId,
    pub(crate) msn: u64,
    /// Longest wait for the next part.
    pub(crate) limit: Duration,
}

impl Growing {
    /// Writes the segment's chunks with chunked transfer coding until it is
    /// complete (or leaves the window), then the last chunk. Returns the
    /// bytes written. An error (the next part never came) ends the
    /// connection, so the client sees an incomplete body, not a short one.
    pub(crate) async fn stream(
        &self,
        stream: &mut tokio::net::TcpStream,
        timeout: Duration,
    ) -> std::io::Result<u64> {
        let mut rx = self.live.subscribe();
        let mut next = 0;
        let mut written = 0u64;
        let mut buf = Vec::new();
        loop {
            rx.borrow_and_update();
            let (chunks, complete) = self
                .live
                .read(|l, _| match l.segment(self.track, self.msn) {
                    Some(s) => (
                        s.chunks.get(next..).unwrap_or_default().to_vec(),
                        s.complete,
                    ),
                    None => (Vec::new(), true),
                });
            for c in &chunks {
                buf.clear();
                let _ = std::io::Write::write_fmt(&mut buf, format_args!("{:x}\r\n", c.len()));
                buf.extend_from_slice(c);
                buf.extend_from_slice(b"\r\n");
                crate::io::write_all(stream, &buf, timeout).await?;
                written += buf.len() as u64;
            }
            next += chunks.len();
            if complete {
                crate::io::write_all(stream, b"0\r\n\r\n", timeout).await?;
                return Ok(written + 5);
            }
            match tokio::time::timeout(self.limit, rx.changed()).await {
                Ok(Ok(())) => {}
                _ => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "live segment stopped growing",
                    ));
                }
            }
        }
    }
}
