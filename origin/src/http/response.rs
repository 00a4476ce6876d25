//! Response heads, written straight into the connection's output buffer.

use std::io::Write;

use super::date;

/// A status line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status(pub(crate) u16, pub(crate) &'static str);

#[allow(dead_code)]
impl Status {
    pub(crate) const OK: Status = Status(200, "OK");
    pub(crate) const NO_CONTENT: Status = Status(204, "No Content");
    pub(crate) const PARTIAL: Status = Status(206, "Partial Content");
    pub(crate) const NOT_MODIFIED: Status = Status(304, "Not Modified");
    pub(crate) const BAD_REQUEST: Status = Status(400, "Bad Request");
    pub(crate) const FORBIDDEN: Status = Status(403, "Forbidden");
    pub(crate) const NOT_FOUND: Status = Status(404, "Not Found");
    pub(crate) const METHOD_NOT_ALLOWED: Status = Status(405, "Method Not Allowed");
    pub(crate) const RANGE_NOT_SATISFIABLE: Status = Status(416, "Range Not Satisfiable");
    pub(crate) const UNPROCESSABLE: Status = Status(422, "Unprocessable Content");
    pub(crate) const HEAD_TOO_LARGE: Status = Status(431, "Request Header Fields Too Large");
    pub(crate) const INTERNAL: Status = Status(500, "Internal Server Error");
    pub(crate) const BAD_GATEWAY: Status = Status(502, "Bad Gateway");
    pub(crate) const UNAVAILABLE: Status = Status(503, "Service Unavailable");
    pub(crate) const GATEWAY_TIMEOUT: Status = Status(504, "Gateway Timeout");
}

/// Header values that are the same for every response of a kind, rendered
/// once from the configuration.
pub(crate) struct FixedHeaders {
    pub(crate) segment_cache: Vec<u8>,
    pub(crate) manifest_cache: Vec<u8>,
    pub(crate) not_found_cache: Vec<u8>,
    /// Complete live segments and parts: immutable once published, kept
    /// for the DVR window.
    pub(crate) live_media_cache: Vec<u8>,
    /// `Access-Control-Allow-Origin: ...\r\n` and friends, or empty.
    pub(crate) cors: Vec<u8>,
    /// The preflight answer's extra headers, or empty.
    pub(crate) cors_preflight: Vec<u8>,
}

impl FixedHeaders {
    pub(crate) fn new(http: &crate::config::HttpConfig) -> Self {
        let cors = if http.cors_allow_origin.is_empty() {
            Vec::new()
        } else {
            format!(
                "Access-Control-Allow-Origin: {}\r\nAccess-Control-Expose-Headers: Content-Length, Content-Range, ETag, Age\r\n",
                http.cors_allow_origin
            )
            .into_bytes()
        };
        let cors_preflight = if http.cors_allow_origin.is_empty() {
            Vec::new()
        } else {
            b"Access-Control-Allow-Methods: GET, HEAD, OPTIONS\r\nAccess-Control-Allow-Headers: Range, If-None-Match, If-Modified-Since, If-Range\r\nAccess-Control-Max-Age: 86400\r\n".to_vec()
        };
        let not_found_cache = if http.not_found_max_age_secs == 0 {
            b"no-store".to_vec()
        } else {
            format!("public, max-age={}", http.not_found_max_age_secs).into_bytes()
        };
        FixedHeaders {
            segment_cache: format!("public, max-age={}, immutable", http.segment_max_age_secs)
                .into_bytes(),
            manifest_cache: format!("public, max-age={}", http.manifest_max_age_secs).into_bytes(),
            not_found_cache,
            live_media_cache: b"public, max-age=3600".to_vec(),
            cors,
            cors_preflight,
        }
    }
}

/// Everything in a response head besides the status.
pub(crate) struct Head<'a> {
    pub(crate) content_type: &'static str,
    pub(crate) content_length: u64,
    /// `Transfer-Encoding: chunked` instead of `Content-Length` (a live
    /// segment still being made).
    pub(crate) chunked: bool,
    pub(crate) cache_control: &'a [u8],
    pub(crate) etag: Option<u64>,
    pub(crate) last_modified: Option<&'a str>,
    /// `(start, end_inclusive, total)` for a 206, or `(0, 0, total)` with
    /// `unsatisfied` for a 416.
    pub(crate) content_range: Option<(u64, u64, u64)>,
    pub(crate) unsatisfied_range: Option<u64>,
    pub(crate) allow: bool,
    pub(crate) close: bool,
    pub(crate) cors: &'a [u8],
    pub(crate) extra: &'a [u8],
}

/// Writes an ETag value for a fingerprint: 16 lowercase hex digits, quoted.
pub(crate) fn write_etag(out: &mut Vec<u8>, tag: u64) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for shift in (0..16).rev() {
        out.push(HEX[((tag >> (shift * 4)) & 0xf) as usize]);
    }
    out.push(b'"');
}

/// Formats an ETag value as a string (for comparisons).
pub(crate) fn etag_string(tag: u64) -> String {
    let mut out = Vec::with_capacity(18);
    write_etag(&mut out, tag);
    String::from_utf8(out).expect("hex digits and quotes are ASCII")
}

/// Appends `n` in decimal. The head is written for every response, so its
/// numbers skip `core::fmt`.
pub(crate) fn write_u64(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Appends a status line and headers, ending with the blank line.
pub(crate) fn write_head(out: &mut Vec<u8>, status: Status, h: &Head<'_>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    write_u64(out, u64::from(status.0));
    out.push(b' ');
    out.extend_from_slice(status.1.as_bytes());
    out.extend_from_slice(b"\r\nServer: headwater\r\nDate: ");
    date::now(out);
    out.extend_from_slice(b"\r\n");
    if !h.content_type.is_empty() {
        out.extend_from_slice(b"Content-Type: ");
        out.extend_from_slice(h.content_type.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if h.chunked {
        out.extend_from_slice(b"Transfer-Encoding: chunked\r\n");
    } else {
        out.extend_from_slice(b"Content-Length: ");
        write_u64(out, h.content_length);
        out.extend_from_slice(b"\r\n");
    }
    if !h.cache_control.is_empty() {
        out.extend_from_slice(b"Cache-Control: ");
        out.extend_from_slice(h.cache_control);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(tag) = h.etag {
        out.extend_from_slice(b"ETag: ");
        write_etag(out, tag);
        out.extend_from_slice(b"\r\n");
    }
    if let Some(lm) = h.last_modified {
        out.extend_from_slice(b"Last-Modified: ");
        out.extend_from_slice(lm.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if h.etag.is_some() {
        out.extend_from_slice(b"Accept-Ranges: bytes\r\n");
    }
    if let Some((start, end, total)) = h.content_range {
        let _ = write!(out, "Content-Range: bytes {start}-{end}/{total}\r\n");
    }
    if let Some(total) = h.unsatisfied_range {
        let _ = write!(out, "Content-Range: bytes */{total}\r\n");
    }
    if h.allow {
        out.extend_from_slice(b"Allow: GET, HEAD, OPTIONS\r\n");
    }
    if h.close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(h.cors);
    out.extend_from_slice(h.extra);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_etags_are_what_fmt_would_write() {
        for n in [0, 7, 10, 99, 100, 65_535, 1_500_000, u64::MAX] {
            let mut out = Vec::new();
            write_u64(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
        for tag in [0, 1, 0xdead_beef, u64::MAX, 0x0123_4567_89ab_cdef] {
            assert_eq!(etag_string(tag), format!("\"{tag:016x}\""));
        }
    }
}
