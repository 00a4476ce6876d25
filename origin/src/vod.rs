//! The `/vod/{asset}/...` routes: the asset's playback token, the asset
//! itself (from the store), then one function per family — fMP4 HLS and
//! DASH manifests, MPEG-TS (`hls_ts`), subtitles, fMP4 segments and trick
//! play — and the ETag and kept-manifest handling they share.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use headwater_common::token::Scope;
use headwater_packager::manifest::{dash, hls, hls_ts};
use headwater_packager::mp4::TrackKind;
use headwater_packager::{MediaSegment, Presentation, clip, trick};

use crate::error::OriginError;
use crate::gather;
use crate::http::request::RequestHead;
use crate::reply::{Body, Caching, M3U8, MPD, Reply, Resource, Tag, VTT, manifest, mime};
use crate::route::Route;
use crate::shared::Shared;
use crate::store::{Asset, Data};

/// Answers a VOD route.
pub(crate) async fn reply(
    shared: &Shared,
    head: &RequestHead,
    route: &Route<'_>,
    query: Option<&str>,
    seg: &mut MediaSegment,
    peer: IpAddr,
) -> Result<Reply, OriginError> {
    let name = route.asset().ok_or(OriginError::NotFound)?;
    let required = shared
        .catalog
        .load()
        .assets
        .get(name)
        .is_some_and(|a| a.require_token);
    let token = crate::playback::token_param(query);
    let carry = crate::playback::check(shared, head, Scope::Asset(name), required, token, peer)?;
    let carry = carry.as_deref();
    let asset = lookup(shared, name).await?;
    // Laying out TS segments walks every sample: off the worker.
    crate::hls_ts::prepare(&asset, route, query).await?;
    // A bucket's chunks are fetched off the worker.
    crate::remote::prefetch(&shared.store, &asset, route, seg).await?;
    // A filter or a clip makes a manifest of its own, rendered per
    // request; the children it lists are the shared ones.
    if let Some((content_type, text)) = crate::query::render(&asset, route, query, carry)? {
        let etag = xxhash_rust::xxh3::xxh3_64_with_seed(&text, asset.fingerprint ^ 0x51);
        return Ok(Reply::ok(
            content_type,
            Caching::Manifest,
            Body::Text(text),
            etag,
            asset,
        ));
    }
    let r = resource(shared, &asset, route, carry, seg)?;
    Ok(finish(shared, asset, r, carry))
}

/// The resource a route names, by family.
fn resource(
    shared: &Shared,
    asset: &Arc<Asset>,
    route: &Route<'_>,
    carry: Option<&str>,
    seg: &mut MediaSegment,
) -> Result<Resource, OriginError> {
    match *route {
        Route::HlsMultivariant { .. }
        | Route::HlsMedia { .. }
        | Route::HlsIframes { .. }
        | Route::DashManifest { .. } => fmp4_manifest(asset, route, carry),
        Route::TsMultivariant { .. }
        | Route::TsMedia { .. }
        | Route::TsIframes { .. }
        | Route::TsSegment { .. }
        | Route::TsSpan { .. } => crate::hls_ts::reply(shared, asset, route, carry),
        Route::HlsSubtitles { .. }
        | Route::TsSubtitles { .. }
        | Route::VttFull { .. }
        | Route::VttSpan { .. }
        | Route::VttSegment { .. } => subtitles(asset, route, carry),
        Route::Init { .. }
        | Route::Segment { .. }
        | Route::Span { .. }
        | Route::Keyframe { .. }
        | Route::Iframes { .. } => segment(shared, asset, route, seg),
        Route::Health | Route::Ready | Route::Time | Route::Live { .. } => {
            Err(OriginError::NotFound)
        }
    }
}

/// The index of rendition `id`.
fn rendition(p: &Presentation, id: &str) -> Result<usize, OriginError> {
    p.renditions
        .iter()
        .position(|r| r.id == id)
        .ok_or(OriginError::NotFound)
}

/// The index of subtitle track `id`.
fn subtitle(p: &Presentation, id: &str) -> Result<usize, OriginError> {
    p.subtitles
        .iter()
        .position(|t| t.id == id)
        .ok_or(OriginError::NotFound)
}

/// fMP4 HLS playlists and the DASH MPD: rendered once per asset version
/// (or per request when a token is carried into them).
fn fmp4_manifest(
    asset: &Asset,
    route: &Route<'_>,
    carry: Option<&str>,
) -> Result<Resource, OriginError> {
    let p = &asset.presentation;
    let r = &asset.rendered;
    let text = |body: Bytes| Body::Text(body);
    Ok(match *route {
        Route::HlsMultivariant { .. } => {
            let t = manifest(&r.hls_multivariant, carry, |o, s| {
                hls::multivariant(p, o, s)
            });
            Resource::new(M3U8, Caching::Manifest, text(t), Tag::HlsMultivariant)
        }
        Route::HlsMedia { rendition: id, .. } => {
            let i = rendition(p, id)?;
            let t = manifest(&r.hls_media[i], carry, |o, s| {
                hls::media(p, &p.renditions[i], o, s)
            });
            let tag = Tag::HlsMedia { rendition: i };
            Resource::new(M3U8, Caching::Manifest, text(t), tag)
        }
        Route::HlsIframes { rendition: id, .. } => {
            let i = rendition(p, id)?;
            if p.renditions[i].kind != TrackKind::Video {
                return Err(OriginError::NotFound);
            }
            let t = manifest(&r.hls_iframes[i], carry, |o, s| {
                hls::iframes(p, &p.renditions[i], o, s)
            });
            let tag = Tag::HlsIframes { rendition: i };
            Resource::new(M3U8, Caching::Manifest, text(t), tag)
        }
        Route::DashManifest { .. } => {
            let t = manifest(&r.dash, carry, |o, s| dash::mpd(p, o, s));
            Resource::new(MPD, Caching::Manifest, text(t), Tag::DashManifest)
        }
        _ => return Err(OriginError::NotFound),
    })
}

/// Subtitle playlists (fMP4 and TS timelines) and WebVTT files.
fn subtitles(
    asset: &Asset,
    route: &Route<'_>,
    carry: Option<&str>,
) -> Result<Resource, OriginError> {
    let p = &asset.presentation;
    let r = &asset.rendered;
    let vtt = |s: String| Body::Text(Bytes::from(s));
    Ok(match *route {
        Route::HlsSubtitles { track, .. } => {
            let i = subtitle(p, track)?;
            let t = manifest(&r.hls_subtitles[i], carry, |o, s| {
                hls::subtitle_media_playlist(p, &p.subtitles[i], o, s)
            });
            Resource::new(
                M3U8,
                Caching::Manifest,
                Body::Text(t),
                Tag::HlsSubtitles { track: i },
            )
        }
        Route::TsSubtitles { track, .. } => {
            let i = subtitle(p, track)?;
            let t = manifest(&r.hls_ts_subtitles[i], carry, |o, s| {
                hls_ts::subtitle_media_playlist(p, &p.subtitles[i], o, s)
            });
            Resource::new(
                M3U8,
                Caching::Manifest,
                Body::Text(t),
                Tag::TsSubtitles { track: i },
            )
        }
        Route::VttFull { track, .. } => {
            let i = subtitle(p, track)?;
            let t = r.vtt_full[i].get_or_init(|| {
                let mut s = String::new();
                p.subtitles[i].write_full(p.preroll_ms(), &mut s);
                Bytes::from(s)
            });
            Resource::new(
                VTT,
                Caching::Segment,
                Body::Text(t.clone()),
                Tag::VttFull { track: i },
            )
        }
        Route::VttSpan {
            track,
            from_ms,
            to_ms,
            ..
        } => {
            let i = subtitle(p, track)?;
            let mut s = String::new();
            p.subtitles[i].write_span(from_ms, to_ms, &mut s);
            let tag = Tag::VttSpan {
                track: i,
                from_ms,
                to_ms,
            };
            Resource::new(VTT, Caching::Segment, vtt(s), tag)
        }
        Route::VttSegment {
            track, number, ts, ..
        } => {
            let i = subtitle(p, track)?;
            let windows = p.text_segments();
            let &(start, end) = number
                .checked_sub(1)
                .and_then(|n| windows.get(n as usize))
                .ok_or(OriginError::NotFound)?;
            // Cue time 0 is presentation time 0: on the media's clock, the delay.
            let mpegts = p.delay_90k() + if ts { hls_ts::SUBTITLE_MPEGTS } else { 0 };
            let mut s = String::new();
            p.subtitles[i].write_segment(start, end, mpegts, &mut s);
            let tag = if ts {
                Tag::TsVttSegment { track: i, number }
            } else {
                Tag::VttSegment { track: i, number }
            };
            Resource::new(VTT, Caching::Segment, vtt(s), tag)
        }
        _ => return Err(OriginError::NotFound),
    })
}

/// Init segments, media segments (sent from the source or from the
/// gathered copy), clip spans and trick play.
fn segment(
    shared: &Shared,
    asset: &Arc<Asset>,
    route: &Route<'_>,
    seg: &mut MediaSegment,
) -> Result<Resource, OriginError> {
    let p = &asset.presentation;
    let not_found = |_| OriginError::NotFound;
    Ok(match *route {
        Route::Init { rendition: id, .. } => {
            let i = rendition(p, id)?;
            let bytes = asset.rendered.init[i].get_or_init(|| {
                let mut b = Vec::new();
                p.init_segment(&p.renditions[i], &mut b);
                Bytes::from(b)
            });
            let tag = Tag::Init { rendition: i };
            let kind = mime(p.renditions[i].kind);
            Resource::new(kind, Caching::Segment, Body::Text(bytes.clone()), tag)
        }
        Route::Segment {
            rendition: id,
            number,
            ..
        } => {
            let i = rendition(p, id)?;
            let r = &p.renditions[i];
            p.media_segment(r, number, seg).map_err(not_found)?;
            let file = &asset.files[r.source];
            let key = gather::Key {
                asset: asset.id,
                rendition: i as u32,
                number,
                kind: gather::Kind::Payload,
            };
            let gathered = match &file.data {
                Data::Local(f) => shared.gather.get(key, &seg.header, f, &seg.ranges),
                // A bucket's payload is sent from its chunk files.
                Data::Remote(_) => None,
            };
            let body = match gathered {
                Some(g) => Body::Kept(g),
                None => Body::Segment(file.clone()),
            };
            let tag = Tag::Segment {
                rendition: i,
                number,
            };
            Resource::new(mime(r.kind), Caching::Segment, body, tag)
        }
        Route::Span {
            rendition: id,
            from_ms,
            to_ms,
            ..
        } => {
            let i = rendition(p, id)?;
            let r = &p.renditions[i];
            clip::span_segment(p, r, from_ms, to_ms, seg).map_err(not_found)?;
            let body = Body::Segment(asset.files[r.source].clone());
            let tag = Tag::Span {
                rendition: i,
                from_ms,
                to_ms,
            };
            Resource::new(mime(r.kind), Caching::Segment, body, tag)
        }
        Route::Keyframe {
            rendition: id,
            number,
            ..
        } => {
            let i = rendition(p, id)?;
            let r = &p.renditions[i];
            let index = number.checked_sub(1).ok_or(OriginError::NotFound)?;
            trick::fragment(p, r, &asset.keyframes(i), index as usize, seg).map_err(not_found)?;
            let body = Body::Segment(asset.files[r.source].clone());
            let tag = Tag::Keyframe {
                rendition: i,
                number,
            };
            Resource::new(mime(r.kind), Caching::Segment, body, tag)
        }
        Route::Iframes { rendition: id, .. } => {
            let i = rendition(p, id)?;
            let keys = asset.keyframes(i);
            if keys.is_empty() {
                return Err(OriginError::NotFound);
            }
            let body = Body::Keyframes(crate::trick::Trick {
                asset: asset.clone(),
                rendition: i,
                keys,
            });
            let tag = Tag::Iframes { rendition: i };
            Resource::new(mime(p.renditions[i].kind), Caching::Segment, body, tag)
        }
        _ => return Err(OriginError::NotFound),
    })
}

/// The reply of a resource: a large manifest the same for every viewer
/// kept as a file (sent like a segment, `gather.rs`), and the ETag, which
/// names the content: the asset's fingerprint and what was asked (and,
/// for a manifest carrying a token, the text itself).
fn finish(shared: &Shared, asset: Arc<Asset>, r: Resource, carry: Option<&str>) -> Reply {
    let tag = r.tag.value();
    let body = match (r.body, carry, r.caching) {
        (Body::Text(text), None, Caching::Manifest) => {
            let key = gather::Key {
                asset: asset.id,
                rendition: 0,
                number: 0,
                kind: gather::Kind::Text(tag),
            };
            match shared.gather.text(key, &text) {
                Some(kept) => Body::Kept(kept),
                None => Body::Text(text),
            }
        }
        (body, ..) => body,
    };
    let etag = match (&body, carry) {
        (Body::Text(t), Some(_)) => {
            xxhash_rust::xxh3::xxh3_64_with_seed(t, asset.fingerprint ^ tag)
        }
        _ => xxhash_rust::xxh3::xxh3_64_with_seed(&tag.to_le_bytes(), asset.fingerprint),
    };
    Reply::ok(r.content_type, r.caching, body, etag, asset)
}

/// The asset `name` from the store: cached, or built (or checked again)
/// on the blocking pool.
async fn lookup(shared: &Shared, name: &str) -> Result<Arc<Asset>, OriginError> {
    let outcome = match shared.store.get_cached(name) {
        Some(o) => o,
        None => {
            let store = shared.store.clone();
            let owned = name.to_owned();
            tokio::task::spawn_blocking(move || store.load(&owned))
                .await
                .map_err(|e| OriginError::Internal(format!("asset load task failed: {e}")))?
        }
    };
    outcome.map_err(OriginError::from)
}
