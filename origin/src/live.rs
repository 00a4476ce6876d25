//! Live streams on the data plane: `/live/{stream}/hls/...`,
//! `/live/{stream}/dash/...` and `/time`.
//!
//! Everything comes from the stream's sans-IO packager through the ingest
//! registry. Blocking playlist reloads (`_HLS_msn`, `_HLS_part`, RFC 8216bis
//! §6.2.5.2) and requests for a part not yet published (the preload hint)
//! wait on the stream's `watch` channel — no polling, no task per waiter —
//! until the packager says the answer exists, or three target durations
//! pass (then `503`). Requests too far ahead are `400`.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use headwater_common::token;
use headwater_ingest::Live;
use headwater_packager::live::{DashOptions, HlsOptions, LiveUri, PartLookup, Reload, TrackId};

use headwater_common::metrics::RouteKind;

use crate::error::OriginError;
use crate::http::request::RequestHead;
use crate::http::response::Status;
use crate::reply::{Body, Caching, Reply};
use crate::shared::Shared;

use crate::reply::{M3U8, MPD};

/// The metrics route kind of a live URL.
pub(crate) fn route_kind(hls: bool, file: &str) -> RouteKind {
    match (hls, file) {
        (true, "master.m3u8") => RouteKind::HlsMultivariant,
        (false, "manifest.mpd") => RouteKind::DashManifest,
        (_, f) if f.ends_with(".m3u8") => RouteKind::HlsPlaylist,
        (_, f) if f.ends_with(".mp4") => RouteKind::Init,
        _ => RouteKind::Segment,
    }
}

/// `/time`: the origin's clock, ISO 8601 in UTC with milliseconds.
pub(crate) fn time() -> Reply {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    let mut s = String::with_capacity(24);
    headwater_packager::live::format_unix_ms(ms, &mut s);
    Reply::text(Status::OK, Caching::NoStore, s)
}

fn ok(content_type: &'static str, caching: Caching, body: Bytes) -> Reply {
    let mut r = Reply::text(Status::OK, caching, body);
    r.content_type = content_type;
    r
}

/// The query pairs the origin acts on.
struct LiveQuery<'a> {
    msn: Option<u64>,
    part: Option<u32>,
    skip: bool,
    token: crate::playback::Token<'a>,
}

fn parse_query(query: Option<&str>) -> Result<LiveQuery<'_>, OriginError> {
    let mut q = LiveQuery {
        msn: None,
        part: None,
        skip: false,
        token: crate::playback::token_param(query),
    };
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let bad = |what: &str| OriginError::BadQuery(format!("{k}: {what}"));
        match k {
            "_HLS_msn" => q.msn = Some(v.parse().map_err(|_| bad("not a number"))?),
            "_HLS_part" => q.part = Some(v.parse().map_err(|_| bad("not a number"))?),
            "_HLS_skip" => match v {
                "YES" | "v2" => q.skip = true,
                _ => return Err(bad("must be YES or v2")),
            },
            _ => {}
        }
    }
    Ok(q)
}

/// How long a blocked request may wait: three target durations (§6.2.5.2).
fn hold_limit(live: &Live) -> Duration {
    let target = live.read(|s, _| s.config().segment_target);
    (target * 3).max(Duration::from_secs(1))
}

/// Waits until `ready` returns `Some`, re-checking after every publication.
async fn wait_for<T>(
    live: &Live,
    mut ready: impl FnMut() -> Result<Option<T>, OriginError>,
) -> Result<T, OriginError> {
    let deadline = tokio::time::Instant::now() + hold_limit(live);
    let mut rx = live.subscribe();
    loop {
        // Marked seen before the check, so a publication in between wakes us.
        rx.borrow_and_update();
        if let Some(v) = ready()? {
            return Ok(v);
        }
        match tokio::time::timeout_at(deadline, rx.changed()).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => return Err(OriginError::NotFound),
            Err(_) => return Err(OriginError::Unavailable("not published in time")),
        }
    }
}

fn track(live: &Live, rendition: &str) -> Result<TrackId, OriginError> {
    live.read(|s, _| s.track_id(rendition))
        .ok_or(OriginError::NotFound)
}

/// Answers a live URL.
pub(crate) async fn reply(
    shared: &Shared,
    head: &RequestHead,
    stream: &str,
    hls: bool,
    file: &str,
    query: Option<&str>,
    peer: std::net::IpAddr,
) -> Result<Reply, OriginError> {
    let q = parse_query(query)?;
    let carry = authorize(shared, head, stream, q.token, peer)?;
    let carry = carry.as_deref();
    let local = shared.registry.get(stream);
    if let Some(relay) = elsewhere(shared, local.as_deref(), stream, head.relay.is_some()) {
        return crate::relay::reply(shared, relay, head, stream, hls, file, query).await;
    }
    let live = local.ok_or(OriginError::NotFound)?;
    live.count_request();
    match (hls, file) {
        (true, "master.m3u8") => {
            let mut s = String::new();
            live.read(|l, _| l.hls_multivariant(carry, &mut s));
            return Ok(ok(M3U8, Caching::LiveManifest, Bytes::from(s)));
        }
        (false, "manifest.mpd") => return Ok(mpd(&live, head, carry)),
        _ => {}
    }
    match LiveUri::parse(file).ok_or(OriginError::NotFound)? {
        LiveUri::MediaPlaylist { rendition } if hls => {
            media_playlist(&live, &rendition, &q, carry).await
        }
        LiveUri::MediaPlaylist { .. } => Err(OriginError::NotFound),
        LiveUri::Init {
            rendition,
            generation,
        } => {
            let t = track(&live, &rendition)?;
            let bytes = live
                .read(|l, _| l.init_of(t, generation))
                .ok_or(OriginError::NotFound)?;
            Ok(media(&rendition, bytes))
        }
        LiveUri::Part {
            rendition,
            msn,
            part,
        } => {
            let t = track(&live, &rendition)?;
            let bytes = wait_for(&live, || {
                live.read(|l, _| match l.part_lookup(t, msn, part) {
                    PartLookup::Ready(b) => Ok(Some(b)),
                    PartLookup::Wait => Ok(None),
                    PartLookup::NotFound => Err(OriginError::NotFound),
                })
            })
            .await?;
            Ok(media(&rendition, bytes))
        }
        LiveUri::Segment { rendition, msn } => segment(&live, head, &rendition, msn).await,
    }
}

/// The relay, when `stream` is to be pulled from other nodes: this node
/// has no publisher for it and another has (the publisher moved), or this
/// node has nothing of it and another holds it (or had it lately).
fn elsewhere<'a>(
    shared: &'a Shared,
    local: Option<&Live>,
    stream: &str,
    head_relayed: bool,
) -> Option<&'a crate::relay::Relay> {
    let relay = shared.relay.as_ref()?;
    // A request another node passed on is answered here or not at all:
    // two nodes whose views disagree for a heartbeat never bounce it.
    if head_relayed {
        return None;
    }
    let pull = match local {
        Some(l) if l.on_air() => false,
        Some(_) => relay.publishing_elsewhere(stream),
        None => relay.serves(stream),
    };
    pull.then_some(relay)
}

/// The stream's playback-token check; the token to carry into child URIs.
/// A request passed on by another node that checked the viewer's token
/// carries that node's relay token instead of being checked again here
/// (the viewer's address is the other node's here).
fn authorize(
    shared: &Shared,
    head: &RequestHead,
    stream: &str,
    token: crate::playback::Token<'_>,
    peer: std::net::IpAddr,
) -> Result<Option<String>, OriginError> {
    let required = shared
        .catalog
        .load()
        .streams
        .get(stream)
        .is_some_and(|s| s.require_token);
    if required && let Some(relayed) = head.relay.as_deref() {
        return crate::playback::relayed(shared, stream, relayed, token, peer);
    }
    crate::playback::check(
        shared,
        head,
        token::Scope::Stream(stream),
        required,
        token,
        peer,
    )
}

/// The dynamic MPD, with the clock URL on the host the client asked.
fn mpd(live: &Live, head: &RequestHead, carry: Option<&str>) -> Reply {
    let utc = format!("//{}/time", head.host_value);
    let mut s = String::new();
    live.read(|l, now| {
        l.dash_mpd(
            now,
            &DashOptions {
                utc_timing_url: &utc,
                query: carry,
            },
            &mut s,
        )
    });
    ok(MPD, Caching::LiveManifest, Bytes::from(s))
}

/// A rendition's media playlist, held while a blocking reload waits for
/// the part it names.
async fn media_playlist(
    live: &Live,
    rendition: &str,
    q: &LiveQuery<'_>,
    carry: Option<&str>,
) -> Result<Reply, OriginError> {
    let t = track(live, rendition)?;
    let blocking = q.msn.is_some() || q.part.is_some();
    let opts = HlsOptions {
        skip: q.skip,
        query: carry,
    };
    let text = wait_for(live, || {
        live.read(|l, _| match l.hls_reload(t, q.msn, q.part) {
            Reload::Ready => {
                let mut s = String::new();
                l.hls_media_playlist(t, &opts, &mut s)
                    .map_err(|_| OriginError::NotFound)?;
                Ok(Some(s))
            }
            Reload::Wait => Ok(None),
            Reload::BadRequest => Err(OriginError::BadQuery(
                "_HLS_msn/_HLS_part is beyond what this playlist will have soon".into(),
            )),
        })
    })
    .await?;
    let caching = if blocking {
        Caching::LiveBlocking
    } else {
        Caching::LiveManifest
    };
    Ok(ok(M3U8, caching, Bytes::from(text)))
}

/// A whole segment. One being made goes out with chunked transfer coding
/// as its parts are published (low-latency DASH); HTTP/1.0 clients get it
/// once complete; the next one, not started yet, is waited for.
async fn segment(
    live: &Arc<Live>,
    head: &RequestHead,
    rendition: &str,
    msn: u64,
) -> Result<Reply, OriginError> {
    let t = track(live, rendition)?;
    let chunks = wait_for(live, || {
        live.read(|l, _| match l.segment(t, msn) {
            Some(s) if s.complete => Ok(Some(Ok(s.chunks))),
            Some(_) if head.http11 => Ok(Some(Err(()))),
            Some(_) => Ok(None),
            None => match l.hls_reload(t, Some(msn), None) {
                Reload::Wait => Ok(None),
                _ => Err(OriginError::NotFound),
            },
        })
    })
    .await?;
    let Ok(chunks) = chunks else {
        let mut r = ok(mime_of(rendition), Caching::LiveMedia, Bytes::new());
        r.body = Body::Growing(crate::growing::Growing {
            live: live.clone(),
            track: t,
            msn,
            limit: hold_limit(live),
        });
        return Ok(r);
    };
    let mut r = ok(
        mime_of(rendition),
        Caching::LiveMedia,
        Bytes::from(chunks.concat()),
    );
    r.etag = None;
    Ok(r)
}

fn mime_of(rendition: &str) -> &'static str {
    if rendition.starts_with('a') {
        "audio/mp4"
    } else {
        "video/mp4"
    }
}

fn media(rendition: &str, bytes: std::sync::Arc<[u8]>) -> Reply {
    ok(
        mime_of(rendition),
        Caching::LiveMedia,
        Bytes::from_owner(bytes),
    )
}
