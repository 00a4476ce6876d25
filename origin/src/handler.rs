//! Turning a request into a reply: the checks every request gets, routing,
//! and the hand-off to a route family (`vod`, `live`); health, readiness
//! and the clock are answered here.

use std::net::IpAddr;

use bytes::Bytes;
use headwater_common::metrics::RouteKind;
use headwater_packager::MediaSegment;

use crate::error::OriginError;
use crate::http::request::{Method, RequestHead};
use crate::http::response::Status;
use crate::reply::{Body, Caching, Reply};
use crate::route::{self, Route, RouteError};
use crate::shared::Shared;

/// Handles one request. `seg` is the connection's reusable segment buffer.
/// The reply says which kind of route it was, for the metrics.
pub(crate) async fn handle(
    shared: &Shared,
    head: &RequestHead,
    seg: &mut MediaSegment,
    peer: IpAddr,
) -> Reply {
    if head.method == Some(Method::Options) {
        return preflight().on(RouteKind::Health);
    }
    let (path, query) = route::split_target(&head.target);
    let route = match check(head).and_then(|()| parse(path)) {
        Ok(route) => route,
        Err((e, kind)) => return failed(&e, path).on(kind),
    };
    let kind = route_kind(&route);
    let outcome = match route {
        Route::Health => Ok(Reply::text(Status::OK, Caching::NoStore, "ok\n")),
        Route::Ready => Ok(ready(shared)),
        Route::Time => Ok(crate::live::time()),
        Route::Live { stream, hls, file } => {
            crate::live::reply(shared, head, stream, hls, file, query, peer).await
        }
        _ => crate::vod::reply(shared, head, &route, query, seg, peer).await,
    };
    match outcome {
        Ok(r) => r.on(kind),
        Err(e) => failed(&e, path).on(kind),
    }
}

/// The error's reply, logged (the path only: a query may hold a token).
fn failed(e: &OriginError, path: &str) -> Reply {
    e.log(path);
    Reply::error(e)
}

/// What every request must be: a method we serve, a `Host` in HTTP/1.1.
/// (A request with a body never gets here: `conn` answers and closes.)
fn check(head: &RequestHead) -> Result<(), (OriginError, RouteKind)> {
    match head.method {
        Some(Method::Get | Method::Head | Method::Options) => {}
        _ => {
            let e = OriginError::MethodNotAllowed {
                has_body: head.has_body,
            };
            return Err((e, RouteKind::BadRequest));
        }
    }
    if head.http11 && !head.host {
        let e = OriginError::BadRequest("HTTP/1.1 request without Host");
        return Err((e, RouteKind::BadRequest));
    }
    Ok(())
}

fn parse(path: &str) -> Result<Route<'_>, (OriginError, RouteKind)> {
    route::route(path).map_err(|e| match e {
        RouteError::Malformed => (
            OriginError::BadRequest("malformed path"),
            RouteKind::BadRequest,
        ),
        RouteError::NotFound => (OriginError::NotFound, RouteKind::NotFound),
    })
}

/// `/readyz`: the media root is readable.
fn ready(shared: &Shared) -> Reply {
    match shared.store.ready() {
        Ok(()) => Reply::text(Status::OK, Caching::NoStore, "ready\n"),
        Err(why) => Reply::text(Status::UNAVAILABLE, Caching::NoStore, format!("{why}\n")),
    }
}

/// The CORS preflight answer (`OPTIONS`): no body, the allowed methods
/// and headers.
fn preflight() -> Reply {
    let mut r = Reply::text(Status::NO_CONTENT, Caching::NoStore, Bytes::new());
    r.body = Body::Empty;
    r.content_type = "";
    r.allow = true;
    r.preflight = true;
    r
}

fn route_kind(route: &Route<'_>) -> RouteKind {
    match route {
        Route::HlsMultivariant { .. } | Route::TsMultivariant { .. } => RouteKind::HlsMultivariant,
        Route::HlsMedia { .. }
        | Route::HlsIframes { .. }
        | Route::HlsSubtitles { .. }
        | Route::TsMedia { .. }
        | Route::TsIframes { .. }
        | Route::TsSubtitles { .. } => RouteKind::HlsPlaylist,
        Route::DashManifest { .. } => RouteKind::DashManifest,
        Route::Init { .. } => RouteKind::Init,
        Route::Segment { .. }
        | Route::Keyframe { .. }
        | Route::Iframes { .. }
        | Route::Span { .. } => RouteKind::Segment,
        Route::TsSegment { .. } | Route::TsSpan { .. } => RouteKind::TsSegment,
        Route::VttSegment { .. } | Route::VttFull { .. } | Route::VttSpan { .. } => {
            RouteKind::Subtitles
        }
        Route::Health | Route::Ready | Route::Time => RouteKind::Health,
        Route::Live { hls, file, .. } => crate::live::route_kind(*hls, file),
    }
}
