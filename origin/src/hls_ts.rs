//! The `/hls-ts/` and `/ts/` URLs: TS programs of an asset, their layouts
//! (built once per asset version, on the first TS request), playlists, and
//! segments written from the sample bytes per request.

use std::os::unix::fs::FileExt;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use headwater_packager::manifest::ManifestOptions;
use headwater_packager::manifest::hls_ts::{self, TsVariant};
use headwater_packager::ts::TsLayout;

use crate::error::OriginError;
use crate::gather;
use crate::handler::{Body, Caching, manifest};
use crate::route::Route;
use crate::server::Shared;
use crate::store::Asset;

const M3U8: &str = "application/vnd.apple.mpegurl";
const MP2T: &str = "video/mp2t";

/// Everything TS about one asset version.
pub(crate) struct TsSet {
    programs: Vec<TsVariant>,
    layouts: Vec<TsLayout>,
    multivariant: Bytes,
    media: Vec<OnceLock<Bytes>>,
    iframes: Vec<OnceLock<Bytes>>,
}

impl TsSet {
    fn build(asset: &Asset) -> Result<Self, String> {
        let p = &asset.presentation;
        let programs = hls_ts::programs(p);
        if programs.is_empty() {
            return Err(format!(
                "no rendition can be carried in MPEG-TS (it carries H.264, HEVC, AAC, AC-3 and E-AC-3; this asset has {})",
                p.renditions
                    .iter()
                    .map(|r| r.codecs.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        let layouts = programs
            .iter()
            .map(|v| TsLayout::new(p, v.program(p)).map_err(|e| e.to_string()))
            .collect::<Result<Vec<_>, _>>()?;
        let mut text = String::new();
        let refs: Vec<&TsLayout> = layouts.iter().collect();
        hls_ts::multivariant(p, &programs, &refs, &ManifestOptions::default(), &mut text);
        let n = programs.len();
        Ok(TsSet {
            programs,
            layouts,
            multivariant: Bytes::from(text),
            media: (0..n).map(|_| OnceLock::new()).collect(),
            iframes: (0..n).map(|_| OnceLock::new()).collect(),
        })
    }

    fn program(&self, name: &str) -> Result<usize, OriginError> {
        self.programs
            .iter()
            .position(|v| v.name == name)
            .ok_or(OriginError::NotFound)
    }
}

/// Whether the asset's TS set is built (or known not to build).
pub(crate) fn ready(asset: &Asset) -> bool {
    asset.rendered.ts.get().is_some()
}

/// Builds the asset's TS set if it is not built yet (blocking).
pub(crate) fn prepare(asset: &Asset) {
    let _ = set(asset);
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
                    let refs: Vec<&TsLayout> = ts.layouts.iter().collect();
                    let opts = ManifestOptions {
                        query: Some(q),
                        ..ManifestOptions::default()
                    };
                    hls_ts::multivariant(p, &ts.programs, &refs, &opts, &mut s);
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
            let text = manifest(&ts.iframes[i], carry, |o, s| {
                hls_ts::iframes(&ts.layouts[i], &ts.programs[i], o, s)
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
            let layout = &ts.layouts[i];
            let index = number as usize - 1;
            let size = layout.size(index).map_err(|_| OriginError::NotFound)?;
            let write = || -> std::io::Result<Vec<u8>> {
                let mut out = Vec::with_capacity(size as usize);
                let mut read = |source: usize, offset: u64, buf: &mut [u8]| {
                    asset.files[source].file.read_exact_at(buf, offset)
                };
                layout.write(p, index, &mut read, &mut out).map_err(|e| {
                    std::io::Error::other(format!("TS segment {number} of {program}: {e}"))
                })?;
                Ok(out)
            };
            let key = gather::Key {
                asset: asset.id,
                rendition: i as u32,
                number,
                kind: gather::Kind::Ts,
            };
            // Written once and kept (like gathered payloads), or per request.
            let storage = |e: std::io::Error| OriginError::Storage(e.to_string());
            let body = match shared.gather.made(key, write) {
                Some(kept) => Body::Kept(kept.map_err(storage)?),
                None => Body::Text(Bytes::from(write().map_err(storage)?)),
            };
            (
                MP2T,
                Caching::Segment,
                body,
                (u64::from(number) << 16) | (i as u64) << 8 | 14,
            )
        }
        _ => return Err(OriginError::NotFound),
    })
}
