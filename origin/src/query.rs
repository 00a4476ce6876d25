//! Manifests that depend on the query string: manifest filters
//! (`video_height=...`) and clips (`start=`, `end=`), on the fMP4 HLS, DASH
//! and MPEG-TS HLS manifests alike (a clip also clips the HLS subtitle
//! and I-frame playlists). They are rendered per request; the media playlists and
//! segments they point at stay shared.

use bytes::Bytes;
use headwater_packager::clip::{self, Clip};
use headwater_packager::manifest::{Filter, ManifestOptions, dash, hls, hls_ts};
use headwater_packager::mp4::TrackKind;

use crate::error::OriginError;
use crate::route::{self, Route};
use crate::store::Asset;

/// A manifest made for this query: its content type and text, or `None`
/// when the query asks for nothing special (the cached manifest applies).
pub(crate) fn render(
    asset: &Asset,
    route: &Route<'_>,
    query: Option<&str>,
    carry: Option<&str>,
) -> Result<Option<(&'static str, Bytes)>, OriginError> {
    let Some(q) = query else { return Ok(None) };
    // Media playlists (of a rendition, a subtitle track, the keyframes)
    // take a clip but no filter: they are what a filter keeps.
    let media = matches!(
        route,
        Route::HlsMedia { .. }
            | Route::TsMedia { .. }
            | Route::HlsSubtitles { .. }
            | Route::TsSubtitles { .. }
            | Route::HlsIframes { .. }
            | Route::TsIframes { .. }
    );
    let applies = media
        || matches!(
            route,
            Route::HlsMultivariant { .. }
                | Route::DashManifest { .. }
                | Route::TsMultivariant { .. }
        );
    if !applies {
        return Ok(None);
    }
    let p = &asset.presentation;
    let bad = |e: headwater_packager::Error| OriginError::BadQuery(e.to_string());
    let pairs = route::query_pairs(q);
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
    let (start, end) = (value("start")?, value("end")?);
    let clip = match (start, end) {
        (None, None) => None,
        (start, end) => Some(Clip::new(p, start.unwrap_or(0), end).map_err(bad)?),
    };
    let filter = if media {
        Filter::default()
    } else {
        let f =
            Filter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))).map_err(bad)?;
        if route.is_ts() {
            // What TS carries is what there is to keep.
            f.check_among(p, |r| headwater_packager::ts::supports(p, r))
        } else {
            f.check(p)
        }
        .map_err(bad)?;
        f
    };
    if clip.is_none() && filter.is_empty() {
        return Ok(None);
    }
    let opts = ManifestOptions {
        query: carry,
        filter: (!filter.is_empty()).then_some(&filter),
        clip: clip.as_ref(),
    };
    let mut s = String::new();
    let content_type = match *route {
        Route::DashManifest { .. } => {
            dash::mpd(p, &opts, &mut s);
            "application/dash+xml"
        }
        Route::HlsMultivariant { .. } => {
            hls::multivariant(p, &opts, &mut s);
            "application/vnd.apple.mpegurl"
        }
        Route::HlsMedia { rendition, .. } => {
            let r = p.rendition(rendition).ok_or(OriginError::NotFound)?;
            if !matches!(r.kind, TrackKind::Video | TrackKind::Audio) {
                return Err(OriginError::NotFound);
            }
            hls::media(p, r, &opts, &mut s);
            "application/vnd.apple.mpegurl"
        }
        Route::HlsIframes { rendition, .. } => {
            let r = p.rendition(rendition).ok_or(OriginError::NotFound)?;
            if r.kind != TrackKind::Video {
                return Err(OriginError::NotFound);
            }
            hls::iframes(p, r, &opts, &mut s);
            "application/vnd.apple.mpegurl"
        }
        Route::HlsSubtitles { track, .. } | Route::TsSubtitles { track, .. } => {
            let t = p
                .subtitles
                .iter()
                .find(|t| t.id == track)
                .ok_or(OriginError::NotFound)?;
            if matches!(route, Route::TsSubtitles { .. }) {
                hls_ts::subtitle_media_playlist(p, t, &opts, &mut s);
            } else {
                hls::subtitle_media_playlist(p, t, &opts, &mut s);
            }
            "application/vnd.apple.mpegurl"
        }
        Route::TsMultivariant { .. } | Route::TsMedia { .. } | Route::TsIframes { .. } => {
            let text = crate::hls_ts::render(asset, route, &filter, &opts)?;
            return Ok(Some(("application/vnd.apple.mpegurl", text)));
        }
        _ => return Ok(None),
    };
    Ok(Some((content_type, Bytes::from(s))))
}
