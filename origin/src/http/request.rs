//! Request heads, parsed by `httparse` (RFC 9112 §3).

/// Request methods the data plane distinguishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Method {
    Get,
    Head,
    Options,
    Other,
}

/// The parts of a request head the origin uses, copied out of the buffer.
#[derive(Debug, Default)]
pub(crate) struct RequestHead {
    pub(crate) method: Option<Method>,
    pub(crate) target: String,
    /// HTTP/1.0 (`false`) or HTTP/1.1 (`true`).
    pub(crate) http11: bool,
    pub(crate) host: bool,
    /// The `Host` value (for absolute URLs such as DASH's `UTCTiming`).
    pub(crate) host_value: String,
    pub(crate) keep_alive: bool,
    pub(crate) has_body: bool,
    pub(crate) range: Option<String>,
    pub(crate) if_range: Option<String>,
    pub(crate) if_none_match: Option<String>,
    pub(crate) if_modified_since: Option<String>,
    pub(crate) origin: bool,
    /// Lower-case name of the header that carries the viewer's address
    /// (`tokens.client_ip_header`), set once per connection; empty: none.
    pub(crate) ip_header: String,
    /// The first address in that header.
    pub(crate) forwarded_ip: Option<String>,
    /// `Headwater-Relay`: another node's token for a live stream it
    /// checked the viewer's token for (`relay`).
    pub(crate) relay: Option<String>,
}

/// Outcome of trying to parse a head from the start of a buffer.
pub(crate) enum Parsed {
    /// A complete head of this many bytes.
    Complete(usize),
    /// More bytes are needed.
    Partial,
    /// Not HTTP/1.x.
    Invalid,
    /// More header fields than we accept.
    TooManyHeaders,
    /// A well-formed head we refuse, for the reason given: a body we would
    /// not read (on any method: its bytes would be taken for the next
    /// request), or a header that must appear once and came twice.
    Refused(&'static str),
}

const MAX_HEADERS: usize = 64;

impl RequestHead {
    /// Parses the head at the start of `buf` into `self` (reusing its strings).
    pub(crate) fn parse(&mut self, buf: &[u8]) -> Parsed {
        let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut headers);
        let len = match req.parse(buf) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) => return Parsed::Partial,
            Err(httparse::Error::TooManyHeaders) => return Parsed::TooManyHeaders,
            Err(_) => return Parsed::Invalid,
        };
        self.method = Some(match req.method {
            Some("GET") => Method::Get,
            Some("HEAD") => Method::Head,
            Some("OPTIONS") => Method::Options,
            _ => Method::Other,
        });
        self.target.clear();
        self.target.push_str(req.path.unwrap_or(""));
        self.http11 = req.version == Some(1);
        self.host = false;
        self.has_body = false;
        self.origin = false;
        self.range = None;
        self.if_range = None;
        self.if_none_match = None;
        self.if_modified_since = None;
        self.forwarded_ip = None;
        self.relay = None;
        let mut connection_close = false;
        let mut connection_keep_alive = false;
        let mut ranges = 0;
        let mut hosts = 0;
        for h in req.headers.iter() {
            let value = match std::str::from_utf8(h.value) {
                Ok(v) => v.trim(),
                Err(_) => continue,
            };
            let name = h.name;
            if name.eq_ignore_ascii_case("host") {
                hosts += 1;
                self.host = true;
                self.host_value.clear();
                self.host_value.push_str(value);
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(',') {
                    let token = token.trim();
                    connection_close |= token.eq_ignore_ascii_case("close");
                    connection_keep_alive |= token.eq_ignore_ascii_case("keep-alive");
                }
            } else if name.eq_ignore_ascii_case("content-length") {
                self.has_body |= value != "0";
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                self.has_body = true;
            } else if name.eq_ignore_ascii_case("range") {
                ranges += 1;
                self.range = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("if-range") {
                self.if_range = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("if-none-match") {
                self.if_none_match = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("if-modified-since") {
                self.if_modified_since = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("headwater-relay") {
                self.relay = Some(value.to_owned());
            } else if name.eq_ignore_ascii_case("origin") {
                self.origin = true;
            } else if !self.ip_header.is_empty() && name.eq_ignore_ascii_case(&self.ip_header) {
                let first = value.split(',').next().unwrap_or("").trim();
                self.forwarded_ip = Some(first.to_owned());
            }
        }
        self.keep_alive = if self.http11 {
            !connection_close
        } else {
            connection_keep_alive
        };
        // RFC 9112 §3.2: a request with more than one Host is a 400. Two
        // Ranges have no meaning either: refuse rather than pick one.
        if hosts > 1 {
            return Parsed::Refused("more than one Host header");
        }
        if ranges > 1 {
            return Parsed::Refused("more than one Range header");
        }
        // Other methods get a 405 that closes the connection.
        if self.has_body && self.method != Some(Method::Other) {
            return Parsed::Refused("requests with a body are not accepted");
        }
        Parsed::Complete(len)
    }
}

/// Whether an `If-None-Match` value matches `etag` (weak comparison, RFC 9110 §13.1.2).
pub(crate) fn etag_matches(if_none_match: &str, etag: &str) -> bool {
    let strip = |t: &str| -> String { t.trim().trim_start_matches("W/").to_owned() };
    let want = strip(etag);
    if_none_match
        .split(',')
        .any(|t| t.trim() == "*" || strip(t) == want)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_keep_alive_get() {
        let mut h = RequestHead::default();
        let raw =
            b"GET /vod/a/hls/master.m3u8?x=1 HTTP/1.1\r\nHost: h\r\nRange: bytes=0-9\r\n\r\nGET";
        let Parsed::Complete(n) = h.parse(raw) else {
            panic!("incomplete")
        };
        assert_eq!(&raw[n..], b"GET");
        assert_eq!(h.method, Some(Method::Get));
        assert_eq!(h.target, "/vod/a/hls/master.m3u8?x=1");
        assert!(h.keep_alive && h.host && h.http11);
        assert_eq!(h.range.as_deref(), Some("bytes=0-9"));
    }

    #[test]
    fn http10_closes_unless_asked() {
        let mut h = RequestHead::default();
        assert!(matches!(
            h.parse(b"GET / HTTP/1.0\r\n\r\n"),
            Parsed::Complete(_)
        ));
        assert!(!h.keep_alive);
        assert!(matches!(
            h.parse(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"),
            Parsed::Complete(_)
        ));
        assert!(h.keep_alive);
    }

    #[test]
    fn garbage_is_invalid() {
        let mut h = RequestHead::default();
        assert!(matches!(
            h.parse(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            Parsed::Invalid
        ));
    }

    #[test]
    fn etags() {
        assert!(etag_matches("\"a\", W/\"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
        assert!(!etag_matches("\"a\"", "\"b\""));
    }
}
