//! The `/hls-ts/` and `/ts/` URLs: TS programs of an asset, their layouts
//! (built once per asset version, off the worker threads), playlists, and
//! segments and clip spans written from the sample bytes per request.
//!
//! The programs a URL can name are [`hls_ts::addressable`]: the ones the
//! unfiltered multivariant playlist lists, whose layouts are built with the
//! set on the first TS request, and the other video/audio pairings a
//! manifest filter can make (`audio_language=fr` muxes French into every
//! video), whose layouts are built when a request first needs them.

use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use headwater_packager::manifest::hls_ts::{self, TsVariant};
use headwater_packager::manifest::{Filter, ManifestOptions};
use headwater_packager::ts::{ReadSamples, TsLayout};

use crate::error::OriginError;
use crate::gather;
use crate::handler::{Body, Caching, manifest};
use crate::route::{self, Route};
use crate::server::Shared;
use crate::store::Asset;

const M3U8: &str = "application/vnd.apple.mpegurl";
const MP2T: &str = "video/mp2t";

/// Everything TS about one asset version.
pub(crate) struct TsSet {
    /// Every program a TS URL can name; the first `listed` are the
    /// unfiltered multivariant playlist's.
    programs: Vec<TsVariant>,
    listed: usize,
    /// Aligned with `programs`, each built on first use.
    layouts: Vec<OnceLock<Result<TsLayout, String>>>,
    multivariant: Bytes,
    media: Vec<OnceLock<Bytes>>,
    iframes: Vec<OnceLock<Bytes>>,
}

impl TsSet {
    fn build(asset: &Asset) -> Result<Self, String> {
        let p = &asset.presentation;
        let listed = hls_ts::programs(p).len();
        if listed == 0 {
            return Err(format!(
                "no rendition can be carried in MPEG-TS (it carries H.264, HEVC, AAC, AC-3 and E-AC-3; this asset has {})",
                p.renditions
                    .iter()
                    .map(|r| r.codecs.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let programs = hls_ts::addressable(p);
        let n = programs.len();
        let mut set = TsSet {
            programs,
            listed,
            layouts: (0..n).map(|_| OnceLock::new()).collect(),
            multivariant: Bytes::new(),
            media: (0..n).map(|_| OnceLock::new()).collect(),
            iframes: (0..n).map(|_| OnceLock::new()).collect(),
        };
        // The listed programs' layouts are built now: the multivariant
        // playlist's bit rates come from them.
        for (cell, v) in set.layouts.iter().zip(&set.programs).take(listed) {
            let layout = TsLayout::new(p, v.program(p)).map_err(|e| e.to_string())?;
            let _ = cell.set(Ok(layout));
        }
        let listed: Vec<TsVariant> = set.programs[..listed].to_vec();
        let mut text = String::new();
        set.write_multivariant(asset, &listed, &ManifestOptions::default(), &mut text)
            .map_err(|e| e.to_string())?;
        set.multivariant = Bytes::from(text);
        Ok(set)
    }

    fn program(&self, name: &str) -> Result<usize, OriginError> {
        self.programs
            .iter()
            .position(|v| v.name == name)
            .ok_or(OriginError::NotFound)
    }

    /// The layout of program `i`, built now if it is not yet (callers on a
    /// worker thread have had [`prepare`] build it).
    fn layout(&self, asset: &Asset, i: usize) -> Result<&TsLayout, OriginError> {
        let (Some(cell), Some(v)) = (self.layouts.get(i), self.programs.get(i)) else {
            return Err(OriginError::NotFound);
        };
        let p = &asset.presentation;
        cell.get_or_init(|| TsLayout::new(p, v.program(p)).map_err(|e| e.to_string()))
            .as_ref()
            .map_err(|why| OriginError::Unprocessable(why.clone()))
    }

    /// Writes the multivariant playlist of `programs`.
    fn write_multivariant(
        &self,
        asset: &Asset,
        programs: &[TsVariant],
        opts: &ManifestOptions<'_>,
        out: &mut String,
    ) -> Result<(), OriginError> {
        let layouts = programs
            .iter()
            .map(|v| self.layout(asset, self.program(&v.name)?))
            .collect::<Result<Vec<_>, _>>()?;
        hls_ts::multivariant(&asset.presentation, programs, &layouts, opts, out);
        Ok(())
    }
}

/// The asset's TS set, built on first use and kept with the asset.
fn set(asset: &Asset) -> Result<&TsSet, OriginError> {
    asset
        .rendered
        .ts
        .get_or_init(|| {
            let built = TsSet::build(asset);
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
                let _ = set.layout(&a, i);
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
            ts.write_multivariant(asset, &programs, opts, &mut s)?;
        }
        Route::TsMedia { program, .. } => {
            hls_ts::media(p, &ts.programs[ts.program(program)?], opts, &mut s);
        }
        Route::TsIframes { program, .. } => {
            let i = ts.program(program)?;
            if ts.programs[i].video.is_none() {
                return Err(OriginError::NotFound);
            }
            let layout = ts.layout(asset, i)?;
            hls_ts::iframes(p, layout, &ts.programs[i], opts, &mut s);
        }
        _ => return Err(OriginError::NotFound),
    }
    Ok(Bytes::from(s))
}

/// The reply parts for a TS route: content type, caching, body, ETag tag.
pub(crate) fn reply(
    shared: &Shared,
    asset: &Asset,
    route: &Route<'_>,
    carry: Option<&str>,
) -> Result<(&'static str, Caching, Body, u64), OriginError> {
    let p = &asset.presentation;
    let ts = set(asset)?;
    Ok(match *route {
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
                    ts.write_multivariant(asset, listed, &opts, &mut s)?;
                    Bytes::from(s)
                }
            };
            (M3U8, Caching::Manifest, Body::Text(text), 11)
        }
        Route::TsMedia { program, .. } => {
            let i = ts.program(program)?;
            let text = manifest(&ts.media[i], carry, |o, s| {
                hls_ts::media(p, &ts.programs[i], o, s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text),
                (i as u64) << 8 | 12,
            )
        }
        Route::TsIframes { program, .. } => {
            let i = ts.program(program)?;
            if ts.programs[i].video.is_none() {
                return Err(OriginError::NotFound);
            }
            let layout = ts.layout(asset, i)?;
            let text = manifest(&ts.iframes[i], carry, |o, s| {
                hls_ts::iframes(p, layout, &ts.programs[i], o, s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text),
                (i as u64) << 8 | 13,
            )
        }
        Route::TsSegment {
            program, number, ..
        } => {
            let i = ts.program(program)?;
            let layout = ts.layout(asset, i)?;
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
            let tag = (u64::from(number) << 16) | (i as u64) << 8 | 14;
            (MP2T, Caching::Segment, body, tag)
        }
        Route::TsSpan {
            program,
            from_ms,
            to_ms,
            ..
        } => {
            let i = ts.program(program)?;
            let layout = ts.layout(asset, i)?;
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
                layout.write_span(p, &span, read, out).map_err(|e| {
                    media_error(e, format_args!("TS span {from_ms}-{to_ms} ms of {program}"))
                })
            })?;
            let tag = xxhash_rust::xxh3::xxh3_64(
                &[from_ms, to_ms, (i as u64) << 8 | 17]
                    .map(u64::to_le_bytes)
                    .concat(),
            );
            (MP2T, Caching::Segment, body, tag)
        }
        _ => return Err(OriginError::NotFound),
    })
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
        let mut read = |source: usize, offset: u64, buf: &mut [u8]| match asset.files.get(source) {
            Some(f) => f.file.read_exact_at(buf, offset),
            None => Err(std::io::Error::other("a sample of an unknown source")),
        };
        write(&mut read, &mut out)?;
        Ok(out)
    };
    // The media's own faults (samples that contradict their codec's
    // framing) are 422s; a read that failed is the disk's.
    let storage = |e: std::io::Error| match e.kind() {
        std::io::ErrorKind::InvalidData => OriginError::Unprocessable(e.to_string()),
        _ => OriginError::Storage(e.to_string()),
    };
    Ok(match shared.gather.made(key, make) {
        Some(kept) => Body::Kept(kept.map_err(storage)?),
        None => Body::Text(Bytes::from(make().map_err(storage)?)),
    })
}
