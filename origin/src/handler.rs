//! Turning a request into a reply: routing, asset lookup, rendering.

use std::net::IpAddr;
use std::sync::{Arc, OnceLock};

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
    /// A live playlist or MPD: about half a segment.
    LiveManifest,
    /// A blocking playlist reload: the answer to that query does not change.
    LiveBlocking,
    /// A complete live segment or part: for as long as the DVR window.
    LiveMedia,
}

/// A reply body.
pub(crate) enum Body {
    Empty,
    Text(Bytes),
    /// The header is in the connection's [`MediaSegment`]; payload from this file.
    Segment(Arc<IndexedFile>),
    /// A trick resource: keyframe fragments planned and sent one at a time.
    Keyframes(crate::trick::Trick),
    /// A whole body kept in a sealed memfd (a gathered fMP4 segment, an
    /// MPEG-TS segment).
    Kept(Arc<Gathered>),
    /// A live segment still being made: sent with chunked transfer coding,
    /// a chunk per part as each is published.
    Growing(crate::live::Growing),
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
    pub(crate) fn text(status: Status, caching: Caching, text: impl Into<Bytes>) -> Self {
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
///
/// `kind` is set to the route's index in the data-plane metrics
/// ([`DATA_ROUTES`](headwater_control_api::metrics::DATA_ROUTES)).
pub(crate) async fn handle(
    shared: &Shared,
    head: &RequestHead,
    seg: &mut MediaSegment,
    peer: IpAddr,
    kind: &mut usize,
) -> Reply {
    *kind = KIND_BAD_REQUEST;
    match handle_inner(shared, head, seg, peer, kind).await {
        Ok(r) => r,
        Err(e) => {
            // Only the path: a query may hold a playback token.
            e.log(route::split_target(&head.target).0);
            Reply::error(&e)
        }
    }
}

/// Metrics route kinds, indexes into `DATA_ROUTES`.
const KIND_NOT_FOUND: usize = 8;
const KIND_BAD_REQUEST: usize = 9;

fn route_kind(route: &Route<'_>) -> usize {
    match route {
        Route::HlsMultivariant { .. } | Route::TsMultivariant { .. } => 0,
        Route::HlsMedia { .. }
        | Route::HlsIframes { .. }
        | Route::HlsSubtitles { .. }
        | Route::TsMedia { .. }
        | Route::TsIframes { .. }
        | Route::TsSubtitles { .. } => 1,
        Route::DashManifest { .. } => 2,
        Route::Init { .. } => 3,
        Route::Segment { .. }
        | Route::Keyframe { .. }
        | Route::Iframes { .. }
        | Route::Span { .. } => 4,
        Route::TsSegment { .. } | Route::TsSpan { .. } => 5,
        Route::VttSegment { .. } | Route::VttFull { .. } | Route::VttSpan { .. } => 6,
        Route::Health | Route::Ready | Route::Time => 7,
        Route::Live { hls, file, .. } => crate::live::route_kind(*hls, file),
    }
}

/// A manifest: the asset's cached text, or, when a query must be carried
/// into its child URIs, text rendered for this request.
pub(crate) fn manifest(
    cell: &OnceLock<Bytes>,
    carry: Option<&str>,
    render: impl Fn(&ManifestOptions<'_>, &mut String),
) -> Bytes {
    match carry {
        None => cell
            .get_or_init(|| {
                let mut s = String::new();
                render(&ManifestOptions::default(), &mut s);
                Bytes::from(s)
            })
            .clone(),
        Some(q) => {
            let mut s = String::new();
            let opts = ManifestOptions {
                query: Some(q),
                ..ManifestOptions::default()
            };
            render(&opts, &mut s);
            Bytes::from(s)
        }
    }
}

async fn handle_inner(
    shared: &Shared,
    head: &RequestHead,
    seg: &mut MediaSegment,
    peer: IpAddr,
    kind: &mut usize,
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
    if head.http11 && !head.host {
        return Err(OriginError::BadRequest("HTTP/1.1 request without Host"));
    }
    let (path, query) = route::split_target(&head.target);
    let route = route::route(path).map_err(|e| match e {
        RouteError::Malformed => OriginError::BadRequest("malformed path"),
        RouteError::NotFound => {
            *kind = KIND_NOT_FOUND;
            OriginError::NotFound
        }
    })?;
    *kind = route_kind(&route);
    let asset_name = match route {
        Route::Health => return Ok(Reply::text(Status::OK, Caching::NoStore, "ok\n")),
        Route::Time => return Ok(crate::live::time()),
        Route::Live { stream, hls, file } => {
            return crate::live::reply(shared, head, stream, hls, file, query, peer).await;
        }
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
        | Route::TsSpan { asset, .. }
        | Route::VttSegment { asset, .. }
        | Route::VttFull { asset, .. }
        | Route::VttSpan { asset, .. }
        | Route::DashManifest { asset }
        | Route::Keyframe { asset, .. }
        | Route::Iframes { asset, .. }
        | Route::Span { asset, .. }
        | Route::Init { asset, .. }
        | Route::Segment { asset, .. } => asset,
    };
    let required = shared
        .catalog
        .load()
        .assets
        .get(asset_name)
        .is_some_and(|a| a.require_token);
    let carry = crate::playback::check(
        shared,
        head,
        headwater_control_api::token::Scope::Asset(asset_name),
        required,
        crate::playback::token_param(query),
        peer,
    )?;
    let carry = carry.as_deref();
    let asset = lookup(shared, asset_name).await?;
    // Laying out TS segments walks every sample: off the worker.
    crate::hls_ts::prepare(&asset, &route, query).await?;
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
    // A filter makes a manifest of its own, rendered per request; the
    // children it lists are the shared ones.
    if let Some((content_type, text)) = crate::query::render(&asset, &route, query, carry)? {
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
            let text = manifest(&asset.rendered.hls_multivariant, carry, |o, s| {
                hls::multivariant(p, o, s)
            });
            (M3U8, Caching::Manifest, Body::Text(text), 1)
        }
        Route::HlsMedia { rendition: id, .. } => {
            let i = rendition(id)?;
            let text = manifest(&asset.rendered.hls_media[i], carry, |o, s| {
                hls::media(p, &p.renditions[i], o, s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text),
                (i as u64) << 8 | 2,
            )
        }
        Route::HlsIframes { rendition: id, .. } => {
            let i = rendition(id)?;
            if p.renditions[i].kind != TrackKind::Video {
                return Err(OriginError::NotFound);
            }
            let text = manifest(&asset.rendered.hls_iframes[i], carry, |o, s| {
                hls::iframes(p, &p.renditions[i], o, s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text),
                (i as u64) << 8 | 6,
            )
        }
        Route::HlsSubtitles { track, .. } => {
            let i = subtitle(track)?;
            let text = manifest(&asset.rendered.hls_subtitles[i], carry, |o, s| {
                hls::subtitle_media_playlist(p, &p.subtitles[i], o, s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text),
                (i as u64) << 8 | 8,
            )
        }
        Route::VttFull { track, .. } => {
            let i = subtitle(track)?;
            let text = asset.rendered.vtt_full[i].get_or_init(|| {
                let mut s = String::new();
                p.subtitles[i].write_full(p.preroll_ms(), &mut s);
                Bytes::from(s)
            });
            (
                VTT,
                Caching::Segment,
                Body::Text(text.clone()),
                (i as u64) << 8 | 9,
            )
        }
        Route::VttSpan {
            track,
            from_ms,
            to_ms,
            ..
        } => {
            let i = subtitle(track)?;
            let mut s = String::new();
            p.subtitles[i].write_span(from_ms, to_ms, &mut s);
            // Like a TS span's: the window and the track, hashed.
            let tag = xxhash_rust::xxh3::xxh3_64(
                &[from_ms, to_ms, (i as u64) << 8 | 18]
                    .map(u64::to_le_bytes)
                    .concat(),
            );
            (VTT, Caching::Segment, Body::Text(Bytes::from(s)), tag)
        }
        Route::TsMultivariant { .. }
        | Route::TsMedia { .. }
        | Route::TsIframes { .. }
        | Route::TsSegment { .. }
        | Route::TsSpan { .. } => crate::hls_ts::reply(shared, &asset, &route, carry)?,
        Route::TsSubtitles { track, .. } => {
            let i = subtitle(track)?;
            let text = manifest(&asset.rendered.hls_ts_subtitles[i], carry, |o, s| {
                hls_ts::subtitle_media_playlist(p, &p.subtitles[i], o, s)
            });
            (
                M3U8,
                Caching::Manifest,
                Body::Text(text),
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
            // Cue time 0 is presentation time 0: on the media's clock, the delay.
            let mpegts = p.delay_90k() + if ts { hls_ts::SUBTITLE_MPEGTS } else { 0 };
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
            let index = number.checked_sub(1).ok_or(OriginError::NotFound)?;
            trick::fragment(p, r, &asset.keyframes(i), index as usize, seg)
                .map_err(|_| OriginError::NotFound)?;
            (
                mime(r.kind),
                Caching::Segment,
                Body::Segment(asset.files[r.source].clone()),
                (u64::from(number) << 16) | (i as u64) << 8 | 7,
            )
        }
        Route::Iframes { rendition: id, .. } => {
            let i = rendition(id)?;
            let keys = asset.keyframes(i);
            if keys.is_empty() {
                return Err(OriginError::NotFound);
            }
            let body = Body::Keyframes(crate::trick::Trick {
                asset: asset.clone(),
                rendition: i,
                keys,
            });
            (
                mime(p.renditions[i].kind),
                Caching::Segment,
                body,
                (i as u64) << 8 | 16,
            )
        }
        Route::DashManifest { .. } => {
            let text = manifest(&asset.rendered.dash, carry, |o, s| dash::mpd(p, o, s));
            (MPD, Caching::Manifest, Body::Text(text), 3)
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
                (i as u64) << 8 | 4,
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
            let body = match shared.gather.get(key, &seg.header, &file.file, &seg.ranges) {
                Some(g) => Body::Kept(g),
                None => Body::Segment(file.clone()),
            };
            (
                mime(r.kind),
                Caching::Segment,
                body,
                (u64::from(number) << 16) | (i as u64) << 8 | 5,
            )
        }
        Route::Health | Route::Ready | Route::Time | Route::Live { .. } => {
            unreachable!("answered above")
        }
    };
    // A large manifest the same for every viewer goes out like a segment:
    // from a file in large folios, by sendfile (gather.rs, `text`).
    let body = match (body, carry, caching) {
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
    // The ETag names the content: the asset's fingerprint and what was asked
    // (and, for a manifest carrying a token, the text itself).
    let etag = match (&body, carry) {
        (Body::Text(t), Some(_)) => {
            xxhash_rust::xxh3::xxh3_64_with_seed(t, asset.fingerprint ^ tag)
        }
        _ => xxhash_rust::xxh3::xxh3_64_with_seed(&tag.to_le_bytes(), asset.fingerprint),
    };
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
