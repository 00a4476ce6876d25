//! Turning a request into a reply: routing, asset lookup, rendering.

use std::sync::Arc;

use bytes::Bytes;
use headwater_packager::MediaSegment;
use headwater_packager::manifest::{ManifestOptions, dash, hls, hls_ts};
use headwater_packager::mp4::TrackKind;
use headwater_packager::{clip, trick};

use crate::error::OriginError;
use crate::gather::{self, Gathered};
use crate::http::request::{Method, RequestHead};
use crate::http::response::Status;
use crate::route::{self, Route, RouteError};
use crate::server::Shared;
use crate::store::{Asset, AssetError, IndexedFile};

/// Which `Cache-Control` a reply carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caching {
    Segment,
    Manifest,
    NotFound,
    NoStore,
}

/// A reply body.
pub(crate) enum Body {
    Empty,
    Text(Bytes),
    /// The header is in the connection's [`MediaSegment`]; payload from this file.
    Segment(Arc<IndexedFile>),
    /// The header is in the connection's [`MediaSegment`]; payload gathered, contiguous.
    Gathered(Arc<Gathered>),
    /// A whole body kept in a sealed memfd (an MPEG-TS segment).
    Kept(Arc<Gathered>),
}

/// A reply before conditional and range handling.
pub(crate) struct Reply {
    pub(crate) status: Status,
    pub(crate) content_type: &'static str,
    pub(crate) caching: Caching,
    pub(crate) etag: Option<u64>,
    pub(crate) asset: Option<Arc<Asset>>,
    pub(crate) body: Body,
    pub(crate) allow: bool,
    pub(crate) close: bool,
    pub(crate) preflight: bool,
}

impl Reply {
    fn text(status: Status, caching: Caching, text: impl Into<Bytes>) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            caching,
            etag: None,
            asset: None,
            body: Body::Text(text.into()),
            allow: false,
            close: false,
            preflight: false,
        }
    }

    pub(crate) fn error(e: &OriginError) -> Self {
        let caching = if e.status() == Status::NOT_FOUND {
            Caching::NotFound
        } else {
            Caching::NoStore
        };
        let mut r = Reply::text(e.status(), caching, format!("{}\n", e.public_message()));
        r.close = e.closes_connection();
        r
    }
}

const M3U8: &str = "application/vnd.apple.mpegurl";
const MPD: &str = "application/dash+xml";
const VTT: &str = "text/vtt; charset=utf-8";

/// Handles one request. `seg` is the connection's reusable segment buffer.
pub(crate) async fn handle(shared: &Shared, head: &RequestHead, seg: &mut MediaSegment) -> Reply {
    match handle_inner(shared, head, seg).await {
        Ok(r) => r,
        Err(e) => {
            // Only the path: a query may hold a playback token.
            e.log(route::split_target(&head.target).0);
            Reply::error(&e)
        }
    }
}

async fn handle_inner(
    shared: &Shared,
    head: &RequestHead,
    seg: &mut MediaSegment,
) -> Result<Reply, OriginError> {
    match head.method {
        Some(Method::Get | Method::Head) => {}
        Some(Method::Options) => {
            let mut r = Reply::text(Status::NO_CONTENT, Caching::NoStore, Bytes::new());
            r.body = Body::Empty;
            r.content_type = "";
            r.allow = true;
            r.preflight = true;
            return Ok(r);
        }
        _ => {
            return Err(OriginError::MethodNotAllowed {
                has_body: head.has_body,
            });
        }
    }
    if head.has_body {
        return Err(OriginError::BadRequest(
            "GET and HEAD requests carry no body",
        ));
    }
    if head.http11 && !head.host {
        return Err(OriginError::BadRequest("HTTP/1.1 request without Host"));
    }
    let (path, query) = route::split_target(&head.target);
    let route = route::route(path).map_err(|e| match e {
        RouteError::Malformed => OriginError::BadRequest("malformed path"),
        RouteError::NotFound => OriginError::NotFound,
    })?;
    let asset_name = match route {
        Route::Health => return Ok(Reply::text(Status::OK, Caching::NoStore, "ok\n")),
        Route::Ready => {
            return Ok(if shared.store.root().is_dir() {
                Reply::text(Status::OK, Caching::NoStore, "ready\n")
            } else {
                Reply::text(
                    Status::UNAVAILABLE,
                    Caching::NoStore,
                    "media root is not a readable directory\n",
                )
            });
        }
        Route::HlsMultivariant { asset }
        | Route::HlsMedia { asset, .. }
        | Route::HlsIframes { asset, .. }
        | Route::HlsSubtitles { asset, .. }
        | Route::TsMultivariant { asset }
        | Route::TsMedia { asset, .. }
        | Route::TsIframes { asset, .. }
        | Route::TsSubtitles { asset, .. }
        | Route::TsSegment { asset, .. }
        | Route::VttSegment { asset, .. }
        | Route::VttFull { asset, .. }
        | Route::DashManifest { asset }
        | Route::Keyframe { asset, .. }
        | Route::Span { asset, .. }
        | Route::Init { asset, .. }
        | Route::Segment { asset, .. } => asset,
    };
    let asset = lookup(shared, asset_name).await?;
    if route.is_ts() && !crate::hls_ts::ready(&asset) {
        // Laying out every TS segment walks every sample: off the worker.
        let a = asset.clone();
        tokio::task::spawn_blocking(move || crate::hls_ts::prepare(&a))
            .await
            .map_err(|e| OriginError::Internal(format!("TS layout task failed: {e}")))?;
    }
    let p = &asset.presentation;
    let rendition = |id: &str| {
        p.renditions
            .iter()
            .position(|r| r.id == id)
            .ok_or(OriginError::NotFound)
    };
    let subtitle = |id: &str| {
        p.subtitles
            .iter()
            .position(|t| t.id == id)
            .ok_or(OriginError::NotFound)
    };
    let opts = ManifestOptions::default();
    // A filter makes a manifest of its own, rendered per request; the
    // children it lists are the shared ones.
    if let Some((content_type, text)) = crate::query::render(&asset, &route, query)? {
        let etag = xxhash_rust::xxh3::xxh3_64_with_seed(&text, asset.fingerprint ^ 0x51);
        return Ok(Reply {
            status: Status::OK,
            content_type,
            caching: Caching::Manifest,
            etag: Some(etag),
            asset: Some(asset.clone()),
            body: Body::Text(text),
            allow: false,
            close: false,
            preflight: false,
        });
    }
    let (content_type, caching, body, tag): (&'static str, Caching, Body, u64) = match route {
        Route::HlsMultivariant { .. } => {
            let text = asset.rendered.hls_multivariant.get_or_init(|| {
                let mut s = String::new();
                hls::multivariant(p, &opts, &mut s);
                Bytes::from(s)
            });
            (M3U8, Caching::Manifest, Body::Text(text.clone()), 1)
        }
        Route::HlsMedia { rendition: id, .. } => {
            let i = rendition(id)?;
            let text = asset.rendered.hls_media[i].get_or_init(|| {
                let mut s = String::new();
                hls::media(p, &p.renditions[i], &opts, &mut s);
                Bytes::from(s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text.clone()),
                2 + i as u64,
            )
        }
        Route::HlsIframes { rendition: id, .. } => {
            let i = rendition(id)?;
            if p.renditions[i].kind != TrackKind::Video {
                return Err(OriginError::NotFound);
            }
            let text = asset.rendered.hls_iframes[i].get_or_init(|| {
                let mut s = String::new();
                hls::iframes(p, &p.renditions[i], &opts, &mut s);
                Bytes::from(s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text.clone()),
                (i as u64) << 8 | 6,
            )
        }
        Route::HlsSubtitles { track, .. } => {
            let i = subtitle(track)?;
            let text = asset.rendered.hls_subtitles[i].get_or_init(|| {
                let mut s = String::new();
                hls::subtitle_media_playlist(p, &p.subtitles[i], &opts, &mut s);
                Bytes::from(s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text.clone()),
                (i as u64) << 8 | 8,
            )
        }
        Route::VttFull { track, .. } => {
            let i = subtitle(track)?;
            let text = asset.rendered.vtt_full[i].get_or_init(|| {
                let mut s = String::new();
                p.subtitles[i].write_full(&mut s);
                Bytes::from(s)
            });
            (
                VTT,
                Caching::Segment,
                Body::Text(text.clone()),
                (i as u64) << 8 | 9,
            )
        }
        Route::TsMultivariant { .. }
        | Route::TsMedia { .. }
        | Route::TsIframes { .. }
        | Route::TsSegment { .. } => crate::hls_ts::reply(shared, &asset, &route)?,
        Route::TsSubtitles { track, .. } => {
            let i = subtitle(track)?;
            let text = asset.rendered.hls_ts_subtitles[i].get_or_init(|| {
                let mut s = String::new();
                hls_ts::subtitle_media_playlist(p, &p.subtitles[i], &opts, &mut s);
                Bytes::from(s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text.clone()),
                (i as u64) << 8 | 15,
            )
        }
        Route::VttSegment {
            track, number, ts, ..
        } => {
            let i = subtitle(track)?;
            let windows = p.text_segments();
            let &(start, end) = windows
                .get(number as usize - 1)
                .ok_or(OriginError::NotFound)?;
            let mut s = String::new();
            let mpegts = if ts { hls_ts::SUBTITLE_MPEGTS } else { 0 };
            p.subtitles[i].write_segment(start, end, mpegts, &mut s);
            (
                VTT,
                Caching::Segment,
                Body::Text(Bytes::from(s)),
                (u64::from(number) << 16) | (i as u64) << 8 | 10 | u64::from(ts) << 4,
            )
        }
        Route::Span {
            rendition: id,
            from_ms,
            to_ms,
            ..
        } => {
            let i = rendition(id)?;
            let r = &p.renditions[i];
            clip::span_segment(p, r, from_ms, to_ms, seg).map_err(|_| OriginError::NotFound)?;
            (
                mime(r.kind),
                Caching::Segment,
                Body::Segment(asset.files[r.source].clone()),
                xxhash_rust::xxh3::xxh3_64(
                    &[
                        from_ms.to_le_bytes(),
                        to_ms.to_le_bytes(),
                        (i as u64).to_le_bytes(),
                    ]
                    .concat(),
                ),
            )
        }
        Route::Keyframe {
            rendition: id,
            number,
            ..
        } => {
            let i = rendition(id)?;
            let r = &p.renditions[i];
            trick::keyframe_segment(p, r, number, seg).map_err(|_| OriginError::NotFound)?;
            (
                mime(r.kind),
                Caching::Segment,
                Body::Segment(asset.files[r.source].clone()),
                (u64::from(number) << 16) | (i as u64) << 8 | 7,
            )
        }
        Route::DashManifest { .. } => {
            let text = asset.rendered.dash.get_or_init(|| {
                let mut s = String::new();
                dash::mpd(p, &opts, &mut s);
                Bytes::from(s)
            });
            (MPD, Caching::Manifest, Body::Text(text.clone()), 3)
        }
        Route::Init { rendition: id, .. } => {
            let i = rendition(id)?;
            let bytes = asset.rendered.init[i].get_or_init(|| {
                let mut b = Vec::new();
                p.init_segment(&p.renditions[i], &mut b);
                Bytes::from(b)
            });
            (
                mime(p.renditions[i].kind),
                Caching::Segment,
                Body::Text(bytes.clone()),
                4 + i as u64,
            )
        }
        Route::Segment {
            rendition: id,
            number,
            ..
        } => {
            let i = rendition(id)?;
            let r = &p.renditions[i];
            p.media_segment(r, number, seg)
                .map_err(|_| OriginError::NotFound)?;
            let file = &asset.files[r.source];
            let key = gather::Key {
                asset: asset.id,
                rendition: i as u32,
                number,
                kind: gather::Kind::Payload,
            };
            let body = match shared.gather.get(key, &file.file, &seg.ranges) {
                Some(g) => Body::Gathered(g),
                None => Body::Segment(file.clone()),
            };
            (
                mime(r.kind),
                Caching::Segment,
                body,
                (u64::from(number) << 16) | (i as u64) << 8 | 5,
            )
        }
        Route::Health | Route::Ready => unreachable!("answered above"),
    };
    // The ETag names the content: the asset's fingerprint and what was asked.
    let etag = xxhash_rust::xxh3::xxh3_64_with_seed(&tag.to_le_bytes(), asset.fingerprint);
    Ok(Reply {
        status: Status::OK,
        content_type,
        caching,
        etag: Some(etag),
        asset: Some(asset),
        body,
        allow: false,
        close: false,
        preflight: false,
    })
}

fn mime(kind: TrackKind) -> &'static str {
    if kind == TrackKind::Audio {
        "audio/mp4"
    } else {
        "video/mp4"
    }
}

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
    outcome.map_err(|e| match e {
        AssetError::NotFound => OriginError::NotFound,
        AssetError::Unprocessable(why) => OriginError::Unprocessable(why),
        AssetError::Storage(why) => OriginError::Storage(why),
    })
}
