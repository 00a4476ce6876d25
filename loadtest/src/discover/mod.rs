//! Discovery: from one manifest URL to a [`Catalog`] of every rendition and segment.
//!
//! The manifest is fetched with the crate's own client; its first bytes decide the format
//! (`#EXTM3U` → [`hls`], `<` → [`dash`]). For HLS, each media playlist of a multivariant
//! playlist is fetched in turn; a URL that is already a media playlist gives one
//! rendition. Every URL found must be on the manifest's origin (one origin per run).

pub(crate) mod dash;
pub(crate) mod hls;
pub(crate) mod template;

use std::time::Duration;

use anyhow::{Context, bail};
use m3u8_rs::Playlist;
use url::Url;

use crate::catalog::{Catalog, Kind, Origin, Resource};
use crate::client::{Conn, Sink};

/// Largest manifest accepted.
const MAX_MANIFEST: usize = 64 << 20;

/// Fetches manifests for discovery (and files for `mirror`).
pub(crate) struct Fetcher {
    origin: Origin,
    conn: Conn,
    timeout: Duration,
}

impl Fetcher {
    /// A fetcher with one keep-alive connection to `origin`.
    pub(crate) fn new(origin: Origin, timeout: Duration) -> Self {
        let conn = Conn::new(origin.addr, 64 * 1024);
        Self {
            origin,
            conn,
            timeout,
        }
    }

    /// GETs `url` (whole, no range) and returns the body; anything but a complete 200 is
    /// an error.
    pub(crate) async fn get(&mut self, url: &Url) -> anyhow::Result<Vec<u8>> {
        self.origin.check(url)?;
        let request = self.origin.request(url, None);
        let mut body = Vec::new();
        let response = self
            .conn
            .fetch(&request, Sink::Collect(&mut body), self.timeout)
            .await
            .with_context(|| format!("GET {url}"))?;
        if response.status != 200 {
            bail!("GET {url}: HTTP status {}", response.status);
        }
        match response.content_length {
            Some(cl) if cl != body.len() as u64 => {
                bail!("GET {url}: Content-Length {cl} but {} bytes", body.len())
            }
            _ => {}
        }
        Ok(body)
    }
}

/// Discovers every stream of `urls` (one origin) as one catalog: their
/// resources in the order given, renditions of the same id kept apart.
pub(crate) async fn discover_all(
    urls: &[String],
    timeout: Duration,
) -> anyhow::Result<(Origin, Catalog)> {
    let (first, rest) = urls.split_first().context("no URL")?;
    let (origin, mut catalog) = discover(first, timeout).await?;
    for url in rest {
        let (o, c) = discover(url, timeout).await?;
        if o.addr != origin.addr || o.host != origin.host {
            bail!("{url} is on another origin than {first}; one origin per run");
        }
        catalog.append(c);
    }
    Ok((origin, catalog))
}

/// Discovers the stream at `url`; returns its origin and catalog.
pub(crate) async fn discover(url: &str, timeout: Duration) -> anyhow::Result<(Origin, Catalog)> {
    let url = Url::parse(url).with_context(|| format!("`{url}` is not a URL"))?;
    let origin = Origin::resolve(&url).await?;
    let mut fetcher = Fetcher::new(origin.clone(), timeout);
    let body = fetcher.get(&url).await?;
    if body.len() > MAX_MANIFEST {
        bail!("{url}: manifest larger than {MAX_MANIFEST} bytes");
    }
    let mut catalog = Catalog::new(url.clone());
    let start = body
        .iter()
        .position(|b| !b.is_ascii_whitespace() && *b != 0xEF && *b != 0xBB && *b != 0xBF)
        .unwrap_or(0);
    if body[start..].starts_with(b"#EXTM3U") {
        discover_hls(&mut fetcher, &mut catalog, &url, &body).await?;
    } else if body[start..].starts_with(b"<") {
        let text = std::str::from_utf8(&body).context("the MPD is not UTF-8")?;
        dash::discover(&mut catalog, &url, text).with_context(|| format!("{url}"))?;
    } else {
        bail!("{url} is neither an HLS playlist (#EXTM3U) nor an MPD (XML)");
    }
    for r in &catalog.resources {
        origin.check(&r.url)?;
    }
    if !catalog.resources.iter().any(|r| r.kind == Kind::Segment) {
        bail!("{url}: no segments found");
    }
    Ok((origin, catalog))
}

async fn discover_hls(
    fetcher: &mut Fetcher,
    catalog: &mut Catalog,
    url: &Url,
    body: &[u8],
) -> anyhow::Result<()> {
    match hls::parse(body).with_context(|| format!("{url}"))? {
        Playlist::MasterPlaylist(master) => {
            let refs = hls::renditions(&master, url)?;
            if refs.is_empty() {
                bail!("{url}: the multivariant playlist names no media playlist");
            }
            for r in refs {
                let rendition = catalog.add_rendition(hls::rendition(&r, None));
                let playlist = catalog.add(Resource {
                    url: r.url.clone(),
                    range: None,
                    kind: Kind::Manifest,
                    rendition: Some(rendition),
                    duration: 0.0,
                });
                catalog.renditions[rendition].playlist = Some(playlist);
                let text = fetcher.get(&r.url).await?;
                let media = hls::parse_media(&text).with_context(|| format!("{}", r.url))?;
                hls::add_media(catalog, rendition, &r.url, &media)?;
            }
        }
        Playlist::MediaPlaylist(media) => {
            let r = hls::PlaylistRef {
                url: url.clone(),
                id: hls::stem_of(url),
                kind: crate::catalog::TrackKind::Video,
                bandwidth: 0,
            };
            let rendition = catalog.add_rendition(hls::rendition(&r, Some(0)));
            hls::add_media(catalog, rendition, url, &media)?;
        }
    }
    Ok(())
}

/// Checks that two catalogs describe the same stream, resource for resource, so that a
/// `--compare` run can replay the same positions against both.
pub(crate) fn check_pair(a: &Catalog, b: &Catalog) -> anyhow::Result<()> {
    if a.resources.len() != b.resources.len() || a.renditions.len() != b.renditions.len() {
        bail!(
            "the two streams differ: {} has {} resources in {} renditions, {} has {} in {}",
            a.manifest,
            a.resources.len(),
            a.renditions.len(),
            b.manifest,
            b.resources.len(),
            b.renditions.len()
        );
    }
    for (i, (ra, rb)) in a.resources.iter().zip(&b.resources).enumerate() {
        if ra.kind != rb.kind
            || ra.rendition != rb.rendition
            || ra.range.map(|r| r.len) != rb.range.map(|r| r.len)
            || (ra.duration - rb.duration).abs() > 0.01
        {
            bail!(
                "the two streams differ at resource {i}: {} ({:?}) vs {} ({:?})",
                ra.url,
                ra.kind,
                rb.url,
                rb.kind
            );
        }
    }
    Ok(())
}
