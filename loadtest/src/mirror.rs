//! `mirror`: crawl a stream and write it under a directory at its URL paths.
//!
//! Every manifest, playlist, init and media segment is fetched whole (byte ranges are
//! dropped: the file they point into is fetched once) and written to `DIR/<URL path>`
//! (percent-decoded; query strings dropped). A static server rooted at `DIR` then serves
//! the same bytes at the same URLs, which makes it the reference for `--compare`. Every
//! file must come back `200` with a body as long as its `Content-Length`.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde::Serialize;
use url::Url;

use crate::catalog::Origin;
use crate::discover::Fetcher;

/// What was written (the JSON of `mirror`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct MirrorSummary {
    /// The output directory.
    pub(crate) dir: PathBuf,
    /// Files written.
    pub(crate) files: u64,
    /// Bytes written.
    pub(crate) bytes: u64,
    /// Wall time, seconds.
    pub(crate) duration_s: f64,
    /// Failures, one line each.
    pub(crate) errors: Vec<String>,
}

/// Fetches every URL in `urls` with `connections` parallel fetchers into `dir`.
pub(crate) async fn run(
    origin: &Origin,
    urls: Vec<Url>,
    dir: &Path,
    connections: usize,
    timeout: Duration,
) -> MirrorSummary {
    let start = Instant::now();
    let urls: Arc<[Url]> = urls.into();
    let next = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..connections.clamp(1, urls.len().max(1)))
        .map(|_| {
            let (urls, next, dir) = (urls.clone(), next.clone(), dir.to_owned());
            let mut fetcher = Fetcher::new(origin.clone(), timeout);
            tokio::spawn(async move {
                let (mut files, mut bytes, mut errors) = (0u64, 0u64, Vec::new());
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(url) = urls.get(i) else { break };
                    match copy(&mut fetcher, url, &dir).await {
                        Ok(n) => {
                            files += 1;
                            bytes += n;
                        }
                        Err(e) => errors.push(format!("{e:#}")),
                    }
                }
                (files, bytes, errors)
            })
        })
        .collect();
    let mut summary = MirrorSummary {
        dir: dir.to_owned(),
        files: 0,
        bytes: 0,
        duration_s: 0.0,
        errors: Vec::new(),
    };
    for task in tasks {
        match task.await {
            Ok((files, bytes, errors)) => {
                summary.files += files;
                summary.bytes += bytes;
                summary.errors.extend(errors);
            }
            Err(e) => summary.errors.push(format!("mirror task failed: {e}")),
        }
    }
    summary.duration_s = start.elapsed().as_secs_f64();
    summary
}

/// The distinct files behind `urls` (ranges and queries dropped), in order.
pub(crate) fn files<'a>(urls: impl Iterator<Item = &'a Url>) -> Vec<Url> {
    let mut seen = HashSet::new();
    urls.filter_map(|u| {
        let mut u = u.clone();
        u.set_query(None);
        u.set_fragment(None);
        seen.insert(u.clone()).then_some(u)
    })
    .collect()
}

async fn copy(fetcher: &mut Fetcher, url: &Url, dir: &Path) -> anyhow::Result<u64> {
    let path = local_path(dir, url)?;
    let body = fetcher.get(url).await?;
    let len = body.len() as u64;
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &body).with_context(|| format!("writing {}", path.display()))
    })
    .await
    .context("writer task failed")??;
    Ok(len)
}

/// `dir` + the URL's decoded path; refuses anything that could leave `dir`.
pub(crate) fn local_path(dir: &Path, url: &Url) -> anyhow::Result<PathBuf> {
    let mut path = dir.to_owned();
    let segments: Vec<&str> = url.path_segments().context("URL without a path")?.collect();
    if segments.last().is_none_or(|s| s.is_empty()) {
        bail!("{url}: a directory URL cannot be mirrored as a file");
    }
    for segment in segments {
        let decoded = percent_encoding::percent_decode_str(segment)
            .decode_utf8()
            .with_context(|| format!("{url}: path is not UTF-8"))?;
        if decoded.is_empty()
            || decoded == "."
            || decoded == ".."
            || decoded.contains(['/', '\\', '\0'])
        {
            bail!("{url}: path segment `{decoded}` cannot be mirrored");
        }
        path.push(decoded.as_ref());
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let dir = Path::new("/tmp/m");
        let url = Url::parse("http://h/vod/demo/cmaf/720p-v1/3.m4s?x=1").unwrap();
        assert_eq!(
            local_path(dir, &url).unwrap(),
            Path::new("/tmp/m/vod/demo/cmaf/720p-v1/3.m4s")
        );
        let spaced = Url::parse("http://h/a%20b/c.mp4").unwrap();
        assert_eq!(
            local_path(dir, &spaced).unwrap(),
            Path::new("/tmp/m/a b/c.mp4")
        );
        // `url` normalises `..`, encoded or not, so nothing climbs out of `dir`.
        let sneaky = Url::parse("http://h/a/%2e%2e/%2e%2e/etc/passwd").unwrap();
        assert_eq!(
            local_path(dir, &sneaky).unwrap(),
            Path::new("/tmp/m/etc/passwd")
        );
        assert!(local_path(dir, &Url::parse("http://h/a/").unwrap()).is_err());
        assert!(local_path(dir, &Url::parse("http://h/a%2Fb").unwrap()).is_err());
    }

    #[test]
    fn distinct_files() {
        let urls: Vec<Url> = ["http://h/a.mp4", "http://h/a.mp4?r=1", "http://h/b.m4s"]
            .iter()
            .map(|u| Url::parse(u).unwrap())
            .collect();
        let got: Vec<String> = files(urls.iter()).into_iter().map(String::from).collect();
        assert_eq!(got, ["http://h/a.mp4", "http://h/b.m4s"]);
    }
}
