//! The `/hls-ts/` and `/ts/` URLs: TS programs of an asset, their layouts
//! (built once per asset version, off the worker threads), playlists, and
//! segments and clip spans written from the sample bytes per request.
//!
//! The programs a URL can name are [`hls_ts::addressable`]: the ones the
//! unfiltered multivariant playlist lists, whose layouts are built with the
//! set on the first TS request, and the other video/audio pairings a
//! manifest filter can make (`audio_language=fr` muxes French into every
//! video), whose layouts are built when a request first needs them.

use std::sync::Arc;

use bytes::Bytes;
use headwater_packager::manifest::hls_ts::{self, TsVariant};
use headwater_packager::manifest::{Filter, ManifestOptions};
use headwater_packager::ts::{ReadSamples, SampleSource};

use crate::error::OriginError;
use crate::gather;
use crate::reply::{Body, Caching, M3U8, MP2T, Resource, Tag, manifest};
use crate::route::{self, Route};
use crate::shared::Shared;
use crate::store::Asset;
use crate::ts_set::TsSet;

/// The asset's TS set, built on first use and kept with the asset.
pub(crate) fn set(asset: &Asset) -> Result<&TsSet, OriginError> {
    asset
        .rendered
        .ts
        .get_or_init(|| {
            let built = TsSet::build(&asset.presentation);
            if let Err(why) = &built {
                tracing::warn!(error = %why, "asset has no MPEG-TS rendition");
            }
            built.map(Arc::new)
        })
        .as_deref()
        .map_err(|why| OriginError::Unprocessable(why.clone()))
}

/// The programs of `p` a filter in `query` keeps (none when it keeps
/// everything or does not parse: the render reports that).
fn filtered(asset: &Asset, query: Option<&str>) -> Option<Vec<TsVariant>> {
    let pairs = route::query_pairs(query?);
    let filter = Filter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).ok()?;
    let p = &asset.presentation;
    (!filter.is_empty()).then(|| hls_ts::programs_where(p, |r| filter.keeps(p, r)))
}

/// The programs whose layouts answering `route` (with `query`) needs.
fn wanted(asset: &Asset, route: &Route<'_>, query: Option<&str>) -> Vec<String> {
    match *route {
        Route::TsMultivariant { .. } => filtered(asset, query)
            .map(|v| v.into_iter().map(|v| v.name).collect())
            .unwrap_or_default(),
        Route::TsIframes { program, .. }
        | Route::TsSegment { program, .. }
        | Route::TsSpan { program, .. } => vec![program.to_owned()],
        _ => Vec::new(),
    }
}

/// Builds, off the worker thread, what a TS request needs and is not built
/// yet: the asset's TS set and the layouts of the programs it touches.
/// Laying out a program walks every one of its samples.
pub(crate) async fn prepare(
    asset: &Arc<Asset>,
    route: &Route<'_>,
    query: Option<&str>,
) -> Result<(), OriginError> {
    if !route.is_ts() {
        return Ok(());
    }
    let names = wanted(asset, route, query);
    let built = match asset.rendered.ts.get() {
        None => false,
        Some(Err(_)) => true,
        Some(Ok(set)) => names.iter().all(|n| {
            set.program(n)
                .map_or(true, |i| set.layouts[i].get().is_some())
        }),
    };
    if built {
        return Ok(());
    }
    let a = asset.clone();
    tokio::task::spawn_blocking(move || {
        if let Ok(set) = set(&a) {
            for i in names.iter().filter_map(|n| set.program(n).ok()) {
                let _ = set.layout(&a.presentation, i);
            }
        }
    })
    .await
    .map_err(|e| OriginError::Internal(format!("TS layout task failed: {e}")))
}

/// A TS manifest made for a query (a filter or a clip): `opts` carries
/// the clip, `filter` the parsed filter.
pub(crate) fn render(
    asset: &Asset,
    route: &Route<'_>,
    filter: &Filter,
    opts: &ManifestOptions<'_>,
) -> Result<Bytes, OriginError> {
    let ts = set(asset)?;
    let p = &asset.presentation;
    let mut s = String::new();
    match *route {
        Route::TsMultivariant { .. } => {
            let programs = if filter.is_empty() {
                ts.programs[..ts.listed].to_vec()
            } else {
                hls_ts::programs_where(p, |r| filter.keeps(p, r))
            };
            ts.write_multivariant(&asset.presentation, &programs, opts, &mut s)?;
        }
        Route::TsMedia { program, .. } => {
            hls_ts::media(p, &ts.programs[ts.program(program)?], opts, &mut s);
        }
        Route::TsIframes { program, .. } => {
            let i = ts.program(program)?;
            if ts.programs[i].video.is_none() {
                return Err(OriginError::NotFound);
            }
            let layout = ts.layout(&asset.presentation, i)?;
            hls_ts::iframes(p, layout, &ts.programs[i], opts, &mut s);
        }
        _ => return Err(OriginError::NotFound),
    }
    Ok(Bytes::from(s))
}

/// The resource a TS route names.
pub(crate) fn reply(
    shared: &Shared,
    asset: &Asset,
    route: &Route<'_>,
    carry: Option<&str>,
) -> Result<Resource, OriginError> {
    let ts = set(asset)?;
    match *route {
        Route::TsMultivariant { .. } | Route::TsMedia { .. } | Route::TsIframes { .. } => {
            playlist(asset, ts, route, carry)
        }
        Route::TsSegment {
            program, number, ..
        } => segment(shared, asset, ts, program, number),
        Route::TsSpan {
            program,
            from_ms,
            to_ms,
            ..
        } => span(shared, asset, ts, program, from_ms, to_ms),
        _ => Err(OriginError::NotFound),
    }
}

/// A TS playlist: the kept text, or written for a request that carries a
/// token into its URIs.
fn playlist(
    asset: &Asset,
    ts: &TsSet,
    route: &Route<'_>,
    carry: Option<&str>,
) -> Result<Resource, OriginError> {
    let p = &asset.presentation;
    let (text, tag) = match *route {
        Route::TsMultivariant { .. } => {
            let text = match carry {
                None => ts.multivariant.clone(),
                Some(q) => {
                    let mut s = String::new();
                    let opts = ManifestOptions {
                        query: Some(q),
                        ..ManifestOptions::default()
                    };
                    let listed = &ts.programs[..ts.listed];
                    ts.write_multivariant(p, listed, &opts, &mut s)?;
                    Bytes::from(s)
                }
            };
            (text, Tag::TsMultivariant)
        }
        Route::TsMedia { program, .. } => {
            let i = ts.program(program)?;
            let text = manifest(&ts.media[i], carry, |o, s| {
                hls_ts::media(p, &ts.programs[i], o, s)
            });
            (text, Tag::TsMedia { program: i })
        }
        Route::TsIframes { program, .. } => {
            let i = ts.program(program)?;
            if ts.programs[i].video.is_none() {
                return Err(OriginError::NotFound);
            }
            let layout = ts.layout(p, i)?;
            let text = manifest(&ts.iframes[i], carry, |o, s| {
                hls_ts::iframes(p, layout, &ts.programs[i], o, s)
            });
            (text, Tag::TsIframes { program: i })
        }
        _ => return Err(OriginError::NotFound),
    };
    Ok(Resource::new(
        M3U8,
        Caching::Manifest,
        Body::Text(text),
        tag,
    ))
}

/// TS segment `number` of a program, written from the sample bytes.
fn segment(
    shared: &Shared,
    asset: &Asset,
    ts: &TsSet,
    program: &str,
    number: u32,
) -> Result<Resource, OriginError> {
    let p = &asset.presentation;
    let i = ts.program(program)?;
    let layout = ts.layout(p, i)?;
    let index = number as usize - 1;
    let size = layout.size(index).map_err(|_| OriginError::NotFound)?;
    let key = gather::Key {
        asset: asset.id,
        rendition: i as u32,
        number,
        kind: gather::Kind::Ts,
    };
    let body = written(shared, asset, key, size, |read, out| {
        layout
            .write(p, index, read, out)
            .map_err(|e| media_error(e, format_args!("TS segment {number} of {program}")))
    })?;
    let tag = Tag::TsSegment { program: i, number };
    Ok(Resource::new(MP2T, Caching::Segment, body, tag))
}

/// A clip's span of a program's TS segment.
fn span(
    shared: &Shared,
    asset: &Asset,
    ts: &TsSet,
    program: &str,
    from_ms: u64,
    to_ms: u64,
) -> Result<Resource, OriginError> {
    let p = &asset.presentation;
    let i = ts.program(program)?;
    let layout = ts.layout(p, i)?;
    let span = layout
        .span(p, from_ms, to_ms)
        .map_err(|_| OriginError::NotFound)?;
    let key = gather::Key {
        asset: asset.id,
        rendition: i as u32,
        number: 0,
        kind: gather::Kind::TsSpan { from_ms, to_ms },
    };
    let body = written(shared, asset, key, span.size(), |read, out| {
        layout
            .write_span(p, &span, read, out)
            .map_err(|e| media_error(e, format_args!("TS span {from_ms}-{to_ms} ms of {program}")))
    })?;
    let tag = Tag::TsSpan {
        program: i,
        from_ms,
        to_ms,
    };
    Ok(Resource::new(MP2T, Caching::Segment, body, tag))
}

/// A packager error while writing `what`, as the I/O error the segment
/// cache carries: a failed read stays what it was, anything else is the
/// media's fault (`InvalidData`, a 422).
fn media_error(e: headwater_packager::Error, what: std::fmt::Arguments<'_>) -> std::io::Error {
    match e {
        headwater_packager::Error::Read { source, .. } => source,
        other => std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{what}: {other}")),
    }
}

/// The bytes `write` makes (`size` of them) from the asset's files: written
/// once and kept (like gathered payloads), or per request with the cache off.
fn written(
    shared: &Shared,
    asset: &Asset,
    key: gather::Key,
    size: u64,
    write: impl Fn(&mut ReadSamples<'_>, &mut Vec<u8>) -> std::io::Result<()>,
) -> Result<Body, OriginError> {
    let make = || -> std::io::Result<Vec<u8>> {
        let mut out = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
        write(&mut Readahead::new(asset, size), &mut out)?;
        Ok(out)
    };
    // The media's own faults (samples that contradict their codec's
    // framing) are 422s; a read that failed is the disk's.
    let storage = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::InvalidData => OriginError::Unprocessable(e.to_string()),
        _ => crate::remote::from_io(&e).unwrap_or_else(|| OriginError::Storage(e.to_string())),
    };
    Ok(
        match shared.gather.made(key, size, make).map_err(storage)? {
            gather::Made::Kept(kept) => Body::Kept(kept),
            gather::Made::Bytes(bytes) => Body::Text(Bytes::from(bytes)),
        },
    )
}

/// Reads of a TS segment's samples, served from windows of each source file
/// read ahead in one `pread` each: a segment's samples lie close together and
/// in order (in a muxed file its audio and video are interleaved), so a 1.6 MB
/// segment is two or three reads instead of one per sample. Two windows per
/// file, so a file that keeps its audio apart from its video reads each run
/// once too. Samples are lent from the windows: the writer copies each
/// straight into its TS packets.
struct Readahead<'a> {
    asset: &'a Asset,
    /// How much one read takes: about the segment's size, at most 1 MiB.
    window: usize,
    /// Per source file: its two windows and which was used last.
    files: Vec<([Window; 2], usize)>,
    /// A sample larger than a window, read on its own.
    large: Vec<u8>,
}

/// A run of a source's bytes: where it starts, how many it holds, and a
/// buffer taken from this thread's pool (zeroed once, when first made,
/// never again: a 1 MiB `memset` per window per request showed as a tenth
/// of the TS miss path's CPU).
#[derive(Default)]
struct Window {
    start: u64,
    len: usize,
    bytes: Vec<u8>,
}

thread_local! {
    /// Window buffers of finished requests, for the next ones.
    static POOL: std::cell::RefCell<Vec<Vec<u8>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Buffers kept per worker thread.
const POOLED: usize = 8;

impl Drop for Window {
    fn drop(&mut self) {
        let bytes = std::mem::take(&mut self.bytes);
        if !bytes.is_empty() {
            POOL.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOLED {
                    p.push(bytes);
                }
            });
        }
    }
}

/// A buffer of at least `len` bytes, from the pool if one is there.
fn pooled(len: usize) -> Vec<u8> {
    let mut b = POOL.with(|p| p.borrow_mut().pop()).unwrap_or_default();
    if b.len() < len {
        b.resize(len, 0);
    }
    b
}

impl Window {
    fn holds(&self, offset: u64, len: usize) -> bool {
        offset >= self.start && offset + len as u64 <= self.start + self.len as u64
    }
}

impl<'a> Readahead<'a> {
    fn new(asset: &'a Asset, size: u64) -> Self {
        Readahead {
            asset,
            window: usize::try_from(size)
                .unwrap_or(usize::MAX)
                .clamp(64 << 10, 1 << 20),
            files: Vec::new(),
            large: Vec::new(),
        }
    }
}

impl SampleSource for Readahead<'_> {
    /// The `len` bytes of `source` at `offset`, lent from a window.
    fn read(&mut self, source: usize, offset: u64, len: usize) -> std::io::Result<&[u8]> {
        let file = &**self
            .asset
            .files
            .get(source)
            .ok_or_else(|| std::io::Error::other("a sample of an unknown source"))?;
        if len > self.window {
            self.large.resize(len, 0);
            file.read_exact_at(&mut self.large, offset)?;
            return Ok(&self.large);
        }
        if self.files.len() <= source {
            self.files.resize_with(source + 1, Default::default);
        }
        let (windows, last) = &mut self.files[source];
        let i = match windows.iter().position(|w| w.holds(offset, len)) {
            Some(i) => i,
            None => {
                // Refill the window not used last.
                let i = 1 - *last;
                let w = &mut windows[i];
                if w.bytes.len() < self.window {
                    w.bytes = pooled(self.window);
                }
                w.len = file.read_up_to(&mut w.bytes[..self.window], offset)?;
                w.start = offset;
                if w.len < len {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "source file shorter than its index",
                    ));
                }
                i
            }
        };
        *last = i;
        let w = &windows[i];
        let at = usize::try_from(offset - w.start).map_err(std::io::Error::other)?;
        Ok(&w.bytes[at..at + len])
    }
}
