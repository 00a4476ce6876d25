//! What discovery found: every URL of a stream with its kind, rendition and duration.
//!
//! A [`Catalog`] is a flat list of [`Resource`]s (deduplicated by URL and byte range, in
//! discovery order) plus the [`Rendition`]s that index into it. The run modes never look at
//! URLs on the hot path: [`Catalog::requests`] turns every resource into the exact request
//! bytes once, before the first request.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;

use anyhow::{Context, bail};
use url::Url;

/// What a resource is, as the player would see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// A multivariant or media playlist, or an MPD.
    Manifest,
    /// An initialization segment (`EXT-X-MAP`, DASH `Initialization`).
    Init,
    /// A media segment (or a whole single-file representation).
    Segment,
}

/// What a rendition carries, for the viewer's ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TrackKind {
    /// Video, or video and audio muxed.
    Video,
    /// Audio only.
    Audio,
    /// Subtitles, or anything not known.
    Other,
}

/// An inclusive byte range, sent as `Range: bytes=first-last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct ByteRange {
    /// First byte.
    pub(crate) first: u64,
    /// Number of bytes (at least one).
    pub(crate) len: u64,
}

impl ByteRange {
    /// Parses DASH's `first-last` (both inclusive).
    pub(crate) fn parse_dash(text: &str) -> anyhow::Result<Self> {
        let (a, b) = text
            .trim()
            .split_once('-')
            .with_context(|| format!("byte range `{text}`: expected first-last"))?;
        let first: u64 = a
            .trim()
            .parse()
            .with_context(|| format!("range `{text}`"))?;
        let last: u64 = b
            .trim()
            .parse()
            .with_context(|| format!("range `{text}`"))?;
        if last < first {
            bail!("byte range `{text}` ends before it starts");
        }
        Ok(Self {
            first,
            len: last - first + 1,
        })
    }
}

impl fmt::Display for ByteRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bytes={}-{}", self.first, self.first + self.len - 1)
    }
}

/// One URL (and byte range) of the stream.
#[derive(Debug, Clone)]
pub(crate) struct Resource {
    /// Absolute URL.
    pub(crate) url: Url,
    /// Byte range to ask for, if only part of the file is meant.
    pub(crate) range: Option<ByteRange>,
    /// Manifest, init or segment.
    pub(crate) kind: Kind,
    /// Index into [`Catalog::renditions`] (none for the top-level manifest).
    pub(crate) rendition: Option<usize>,
    /// Media duration in seconds (segments only; 0 otherwise).
    pub(crate) duration: f64,
}

/// One rendition: its playlist, init segment and media segments, by resource index.
#[derive(Debug, Clone)]
pub(crate) struct Rendition {
    /// Id: HLS playlist file stem (or `NAME`), DASH `Representation@id`.
    pub(crate) id: String,
    /// Video, audio or other.
    pub(crate) kind: TrackKind,
    /// Advertised bandwidth in bit/s (0 when unknown).
    pub(crate) bandwidth: u64,
    /// The media playlist (HLS), if it is a separate resource.
    pub(crate) playlist: Option<usize>,
    /// The initialization segment, if any.
    pub(crate) init: Option<usize>,
    /// Media segments in presentation order.
    pub(crate) segments: Vec<usize>,
}

/// Everything discovered from one manifest URL.
#[derive(Debug, Clone)]
pub(crate) struct Catalog {
    /// The URL discovery started from (resource 0).
    pub(crate) manifest: Url,
    /// Every resource, deduplicated, in discovery order; resource 0 is the manifest.
    pub(crate) resources: Vec<Resource>,
    /// Renditions, in manifest order.
    pub(crate) renditions: Vec<Rendition>,
    /// Resource index by URL and range, for deduplication.
    index: HashMap<(Url, Option<ByteRange>), usize>,
}

impl Catalog {
    /// A catalog holding only its manifest.
    pub(crate) fn new(manifest: Url) -> Self {
        let mut catalog = Self {
            manifest: manifest.clone(),
            resources: Vec::new(),
            renditions: Vec::new(),
            index: HashMap::new(),
        };
        catalog.add(Resource {
            url: manifest,
            range: None,
            kind: Kind::Manifest,
            rendition: None,
            duration: 0.0,
        });
        catalog
    }

    /// Adds a resource unless the same URL and range is already there; returns its index.
    pub(crate) fn add(&mut self, resource: Resource) -> usize {
        let key = (resource.url.clone(), resource.range);
        if let Some(&i) = self.index.get(&key) {
            return i;
        }
        self.resources.push(resource);
        self.index.insert(key, self.resources.len() - 1);
        self.resources.len() - 1
    }

    /// Adds a rendition; returns its index.
    pub(crate) fn add_rendition(&mut self, rendition: Rendition) -> usize {
        self.renditions.push(rendition);
        self.renditions.len() - 1
    }

    /// Adds every resource and rendition of `other` (another stream on the same origin)
    /// after this catalog's own.
    pub(crate) fn append(&mut self, other: Catalog) {
        let first_rendition = self.renditions.len();
        let mut moved = Vec::with_capacity(other.resources.len());
        for mut r in other.resources {
            r.rendition = r.rendition.map(|i| i + first_rendition);
            moved.push(self.add(r));
        }
        for mut r in other.renditions {
            let at = |i: usize| moved[i];
            r.playlist = r.playlist.map(at);
            r.init = r.init.map(at);
            r.segments = r.segments.iter().map(|&i| moved[i]).collect();
            self.renditions.push(r);
        }
    }

    /// Indexes of the resources of one kind, optionally only those of some renditions.
    pub(crate) fn select(&self, kinds: &[Kind], renditions: Option<&[String]>) -> Vec<usize> {
        self.resources
            .iter()
            .enumerate()
            .filter(|(_, r)| kinds.contains(&r.kind))
            .filter(|(_, r)| match (renditions, r.rendition) {
                (None, _) => true,
                (Some(ids), Some(i)) => ids.contains(&self.renditions[i].id),
                (Some(_), None) => false,
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Checks that every id in `ids` names a rendition.
    pub(crate) fn check_ids(&self, ids: &[String]) -> anyhow::Result<()> {
        for id in ids {
            if !self.renditions.iter().any(|r| &r.id == id) {
                let known: Vec<&str> = self.renditions.iter().map(|r| r.id.as_str()).collect();
                bail!("no rendition `{id}` (known: {})", known.join(", "));
            }
        }
        Ok(())
    }

    /// Prebuilds the request bytes of every resource for `origin`.
    pub(crate) fn requests(&self, origin: &Origin) -> Vec<Prepared> {
        self.resources
            .iter()
            .map(|r| Prepared {
                bytes: origin.request(&r.url, r.range),
                expected_len: r.range.map(|range| range.len),
            })
            .collect()
    }

    /// One line per rendition, for stderr.
    pub(crate) fn describe(&self) -> String {
        let mut out = String::new();
        let count = |k: Kind| self.resources.iter().filter(|r| r.kind == k).count();
        out.push_str(&format!(
            "{}: {} renditions, {} manifests, {} init, {} segments\n",
            self.manifest,
            self.renditions.len(),
            count(Kind::Manifest),
            count(Kind::Init),
            count(Kind::Segment),
        ));
        for r in &self.renditions {
            let seconds: f64 = r.segments.iter().map(|&i| self.resources[i].duration).sum();
            out.push_str(&format!(
                "  {:<16} {:<5} {:>6} kb/s  {:>4} segments  {:>8.2} s\n",
                r.id,
                format!("{:?}", r.kind).to_lowercase(),
                r.bandwidth / 1000,
                r.segments.len(),
                seconds
            ));
        }
        out
    }
}

/// A resource's request, built once.
#[derive(Debug, Clone)]
pub(crate) struct Prepared {
    /// `GET ... HTTP/1.1` head, ready to write.
    pub(crate) bytes: Box<[u8]>,
    /// Body length a correct answer has (for byte-range requests).
    pub(crate) expected_len: Option<u64>,
}

/// Where requests go: one `http://host:port`.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    /// Resolved address.
    pub(crate) addr: SocketAddr,
    /// `Host` header value.
    pub(crate) host: String,
    /// The URL's origin, to check that resources live here.
    origin: url::Origin,
}

impl Origin {
    /// Resolves the origin of `url` (http only).
    pub(crate) async fn resolve(url: &Url) -> anyhow::Result<Self> {
        match url.scheme() {
            "http" => {}
            "https" => bail!("{url}: https is not supported (plain HTTP/1.1 only)"),
            other => bail!("{url}: unsupported scheme `{other}`"),
        }
        let host = url.host_str().context("URL has no host")?;
        let port = url.port_or_known_default().unwrap_or(80);
        let addr = tokio::net::lookup_host((host.trim_matches(['[', ']']), port))
            .await
            .with_context(|| format!("resolving {host}"))?
            .next()
            .with_context(|| format!("{host} resolves to no address"))?;
        let host = match url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Ok(Self {
            addr,
            host,
            origin: url.origin(),
        })
    }

    /// Fails unless `url` is served by this origin.
    pub(crate) fn check(&self, url: &Url) -> anyhow::Result<()> {
        if url.origin() != self.origin {
            bail!(
                "{url} is on another origin than the manifest ({}); one origin per run",
                self.origin.ascii_serialization()
            );
        }
        Ok(())
    }

    /// The request head for `url` (path and query) with an optional `Range`.
    pub(crate) fn request(&self, url: &Url, range: Option<ByteRange>) -> Box<[u8]> {
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        let mut head = format!(
            "GET {target} HTTP/1.1\r\nHost: {}\r\nUser-Agent: headwater-loadtest\r\nAccept: */*\r\n",
            self.host
        );
        if let Some(range) = range {
            head.push_str(&format!("Range: {range}\r\n"));
        }
        head.push_str("\r\n");
        head.into_bytes().into_boxed_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dash_ranges() {
        let r = ByteRange::parse_dash("100-199").unwrap();
        assert_eq!(
            r,
            ByteRange {
                first: 100,
                len: 100
            }
        );
        assert_eq!(r.to_string(), "bytes=100-199");
        assert!(ByteRange::parse_dash("5-4").is_err());
        assert!(ByteRange::parse_dash("5").is_err());
    }

    #[tokio::test]
    async fn request_heads() {
        let url = Url::parse("http://127.0.0.1:8080/a/b.m4s?x=1").unwrap();
        let origin = Origin::resolve(&url).await.unwrap();
        let head = origin.request(&url, Some(ByteRange { first: 0, len: 10 }));
        assert_eq!(
            std::str::from_utf8(&head).unwrap(),
            "GET /a/b.m4s?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\
             User-Agent: headwater-loadtest\r\nAccept: */*\r\nRange: bytes=0-9\r\n\r\n"
        );
        let https = Url::parse("https://example.com/x.m3u8").unwrap();
        assert!(Origin::resolve(&https).await.is_err());
        let other = Url::parse("http://127.0.0.1:8081/a").unwrap();
        assert!(origin.check(&other).is_err());
        assert!(origin.check(&url).is_ok());
    }
}
