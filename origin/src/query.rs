//! Manifests that depend on the query string: manifest filters
//! (`video_height=...`) and clips (`start=`, `end=`), on the fMP4 HLS, DASH
//! and MPEG-TS HLS manifests alike (a clip also clips the HLS subtitle
//! and I-frame playlists). They are rendered per request; the media playlists and
//! segments they point at stay shared.

use bytes::Bytes;
use headwater_packager::clip::{self, Clip};
use headwater_packager::manifest::{Filter, ManifestOptions, dash, hls, hls_ts};
use headwater_packager::mp4::TrackKind;

use headwater_packager::Presentation;

use crate::error::OriginError;
use crate::reply::{M3U8, MPD};
use crate::route::{self, Route};
use crate::store::Asset;

/// Which manifests a query can change.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Takes {
    /// Media playlists (of a rendition, a subtitle track, the keyframes)
    /// take a clip but no filter: they are what a filter keeps.
    Clip,
    /// Multivariant playlists and MPDs take both.
    ClipAndFilter,
}

fn takes(route: &Route<'_>) -> Option<Takes> {
    match route {
        Route::HlsMedia { .. }
        | Route::TsMedia { .. }
        | Route::HlsSubtitles { .. }
        | Route::TsSubtitles { .. }
        | Route::HlsIframes { .. }
        | Route::TsIframes { .. } => Some(Takes::Clip),
        Route::HlsMultivariant { .. }
        | Route::DashManifest { .. }
        | Route::TsMultivariant { .. } => Some(Takes::ClipAndFilter),
        _ => None,
    }
}

fn bad(e: headwater_packager::Error) -> OriginError {
    OriginError::BadQuery(e.to_string())
}

/// A manifest made for this query: its content type and text, or `None`
/// when the query asks for nothing special (the cached manifest applies).
pub(crate) fn render(
    asset: &Asset,
    route: &Route<'_>,
    query: Option<&str>,
    carry: Option<&str>,
) -> Result<Option<(&'static str, Bytes)>, OriginError> {
    let Some(q) = query else { return Ok(None) };
    let Some(takes) = takes(route) else {
        return Ok(None);
    };
    let p = &asset.presentation;
    let pairs = route::query_pairs(q);
    let clip = clip_of(p, &pairs)?;
    let filter = match takes {
        Takes::Clip => Filter::default(),
        Takes::ClipAndFilter => filter_of(p, route, &pairs)?,
    };
    if clip.is_none() && filter.is_empty() {
        return Ok(None);
    }
    let opts = ManifestOptions {
        query: carry,
        filter: (!filter.is_empty()).then_some(&filter),
        clip: clip.as_ref(),
    };
    if let Route::TsMultivariant { .. } | Route::TsMedia { .. } | Route::TsIframes { .. } = route {
        let text = crate::hls_ts::render(asset, route, &filter, &opts)?;
        return Ok(Some((M3U8, text)));
    }
    let mut s = String::new();
    let content_type = write(p, route, &opts, &mut s)?;
    Ok(Some((content_type, Bytes::from(s))))
}

/// `start=` and `end=`, each at most once.
fn clip_of(p: &Presentation, pairs: &[(String, String)]) -> Result<Option<Clip>, OriginError> {
    let value = |key: &str| -> Result<Option<u64>, OriginError> {
        let mut found = pairs.iter().filter(|(k, _)| k == key);
        let first = found.next();
        if found.next().is_some() {
            return Err(OriginError::BadQuery(format!(
                "'{key}' is given more than once"
            )));
        }
        first
            .map(|(_, v)| clip::parse_seconds(key, v))
            .transpose()
            .map_err(bad)
    };
    match (value("start")?, value("end")?) {
        (None, None) => Ok(None),
        (start, end) => Ok(Some(Clip::new(p, start.unwrap_or(0), end).map_err(bad)?)),
    }
}

/// The manifest filter the query names, checked against what the format
/// can carry (what TS carries is what there is to keep).
fn filter_of(
    p: &Presentation,
    route: &Route<'_>,
    pairs: &[(String, String)],
) -> Result<Filter, OriginError> {
    let f = Filter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(bad)?;
    if route.is_ts() {
        f.check_among(p, |r| headwater_packager::ts::supports(p, r))
    } else {
        f.check(p)
    }
    .map_err(bad)?;
    Ok(f)
}

/// Writes an fMP4 manifest of `route` with `opts`; its content type.
fn write(
    p: &Presentation,
    route: &Route<'_>,
    opts: &ManifestOptions<'_>,
    s: &mut String,
) -> Result<&'static str, OriginError> {
    match *route {
        Route::DashManifest { .. } => {
            dash::mpd(p, opts, s);
            return Ok(MPD);
        }
        Route::HlsMultivariant { .. } => hls::multivariant(p, opts, s),
        Route::HlsMedia { rendition, .. } => {
            let r = p.rendition(rendition).ok_or(OriginError::NotFound)?;
            if !matches!(r.kind, TrackKind::Video | TrackKind::Audio) {
                return Err(OriginError::NotFound);
            }
            hls::media(p, r, opts, s);
        }
        Route::HlsIframes { rendition, .. } => {
            let r = p.rendition(rendition).ok_or(OriginError::NotFound)?;
            if r.kind != TrackKind::Video {
                return Err(OriginError::NotFound);
            }
            hls::iframes(p, r, opts, s);
        }
        Route::HlsSubtitles { track, .. } | Route::TsSubtitles { track, .. } => {
            let t = p
                .subtitles
                .iter()
                .find(|t| t.id == track)
                .ok_or(OriginError::NotFound)?;
            if matches!(route, Route::TsSubtitles { .. }) {
                hls_ts::subtitle_media_playlist(p, t, opts, s);
            } else {
                hls::subtitle_media_playlist(p, t, opts, s);
            }
        }
        _ => return Err(OriginError::NotFound),
    }
    Ok(M3U8)
}
