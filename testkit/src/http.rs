//! A raw HTTP/1.1 client: tests write exact request bytes and read exact
//! responses, so pipelining, garbage and HEAD framing can be checked.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A keep-alive connection.
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Conn {
            stream,
            buf: Vec::new(),
        }
    }

    /// Writes raw bytes.
    pub fn send(&mut self, raw: &[u8]) {
        self.stream.write_all(raw).expect("write request");
    }

    /// Sends `GET path` with extra header lines (`"Name: value"`).
    pub fn request(&mut self, method: &str, path: &str, headers: &[&str]) -> Response {
        let mut req = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for h in headers {
            req.push_str(h);
            req.push_str("\r\n");
        }
        req.push_str("\r\n");
        self.send(req.as_bytes());
        self.read_response(method == "HEAD").expect("response")
    }

    /// Reads one response; `head_only` for responses to HEAD. `None` at EOF.
    pub fn read_response(&mut self, head_only: bool) -> Option<Response> {
        let end = loop {
            if let Some(p) = find(&self.buf, b"\r\n\r\n") {
                break p + 4;
            }
            if !self.fill() {
                return None;
            }
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let headers: Vec<(String, String)> = lines
            .filter(|l| !l.is_empty())
            .filter_map(|l| {
                l.split_once(':')
                    .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
            })
            .collect();
        self.buf.drain(..end);
        let len: usize = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("numeric Content-Length"))
            .expect("every response carries Content-Length");
        let body_len = if head_only || status == 304 || status == 204 {
            0
        } else {
            len
        };
        while self.buf.len() < body_len {
            assert!(
                self.fill(),
                "connection closed before the body ended ({} of {body_len} bytes)",
                self.buf.len()
            );
        }
        let body = self.buf.drain(..body_len).collect();
        Some(Response {
            status,
            headers,
            body,
        })
    }

    /// Whether the server has closed the connection (reads EOF within 2 s).
    pub fn closed_by_peer(&mut self) -> bool {
        self.stream
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let mut b = [0u8; 1];
        matches!(self.stream.read(&mut b), Ok(0))
            || matches!(self.stream.read(&mut b), Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset)
    }

    fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 65536];
        match self.stream.read(&mut chunk) {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// One GET on a fresh connection.
pub fn get(addr: SocketAddr, path: &str) -> Response {
    Conn::open(addr).request("GET", path, &[])
}

/// Every URI a playlist names (lines and `URI="..."` attributes),
/// resolved against the playlist's path.
fn uris(playlist_path: &str, text: &str) -> Vec<String> {
    let base = &playlist_path[..playlist_path.rfind('/').unwrap() + 1];
    let mut out = Vec::new();
    for line in text.lines() {
        let mut add = |u: &str| {
            let u = u.trim();
            if u.is_empty() {
                return;
            }
            let mut parts: Vec<&str> = base.trim_end_matches('/').split('/').collect();
            for seg in u.split('/') {
                match seg {
                    ".." => {
                        parts.pop();
                    }
                    "." => {}
                    s => parts.push(s),
                }
            }
            out.push(parts.join("/"));
        };
        if !line.starts_with('#') {
            add(line);
        } else if let Some(i) = line.find("URI=\"") {
            let rest = &line[i + 5..];
            add(&rest[..rest.find('"').unwrap()]);
        }
    }
    out
}

/// Every resource reachable from an asset's HLS (fMP4 and TS) playlists,
/// plus its DASH MPD.
pub fn resources(addr: SocketAddr, asset: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![
        format!("/vod/{asset}/hls/master.m3u8"),
        format!("/vod/{asset}/hls-ts/master.m3u8"),
        format!("/vod/{asset}/dash/manifest.mpd"),
    ];
    while let Some(path) = todo.pop() {
        let path = path.split('?').next().unwrap().to_owned();
        if !seen.insert(path.clone()) {
            continue;
        }
        if path.ends_with(".m3u8") {
            let r = get(addr, &path);
            assert_eq!(r.status, 200, "{path}");
            todo.extend(uris(&path, &r.text()));
        }
    }
    seen
}
