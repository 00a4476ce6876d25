//! Live streams on air on another node (`[cluster]`): the request is
//! passed on to the node that has the publisher, as it came (path and
//! query), so that node holds blocking playlist reloads (`_HLS_msn`,
//! `_HLS_part`) and preload-hinted parts until they exist, and answers
//! delta updates (`_HLS_skip`) itself. Nothing is repackaged here: the
//! bytes are that node's, and its segment names and numbers with them.
//!
//! - This node checks the viewer's playback token (with the viewer's
//!   address); the node asked trusts a short-lived relay token of the
//!   shared catalog's signing key instead of the address (it sees ours).
//! - Identical requests waiting at once (every viewer's blocking reload
//!   for the next part) are one upstream request (`Flights`).
//! - Init segments, parts and complete segments, which never change, are
//!   kept a short while (`kept`); a segment still being made (LL-DASH) is
//!   passed on chunk by chunk as the node sends it.
//! - Upstream connections are kept alive, per worker (`client`).

mod client;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use headwater_common::cluster::SharedOnAir;
use headwater_common::token;
use headwater_packager::live::LiveUri;
use tokio::sync::OnceCell;

use crate::error::OriginError;
use crate::http::request::RequestHead;
use crate::http::response::Status;
use crate::reply::{Body, Caching, M3U8, MPD, Reply};
use crate::shared::Shared;

pub(crate) use client::Streaming;

/// Immutable live bytes kept from other nodes, at most this many.
const KEPT_BYTES: u64 = 64 << 20;
/// How long they are kept: viewers ask for a part within seconds.
const KEPT_FOR: Duration = Duration::from_secs(30);
/// How long a relay token lasts (it is made per request).
const RELAY_TOKEN_SECS: u64 = 60;

/// What the data plane keeps for pulling live streams from other nodes.
pub(crate) struct Relay {
    on_air: SharedOnAir,
    kept: moka::sync::Cache<String, Bytes>,
    flights: Flights,
    /// Longest wait for an upstream answer: a blocking reload is held
    /// there up to three target durations.
    answer_within: Duration,
    /// Streams relayed lately: while none of their nodes can be reached (the
    /// one with the publisher died, its publisher is moving to another), a
    /// request waits for one instead of failing at once.
    lately: moka::sync::Cache<String, ()>,
    /// How long such a request waits: three target durations, as a held
    /// playlist reload at most, and under players' time to first byte.
    wait_for_node: Duration,
}

/// How long a stream counts as relayed lately.
const LATELY: Duration = Duration::from_secs(30);
/// How often a request waiting for a node looks again (the cluster view
/// changes once a heartbeat).
const LOOK_AGAIN: Duration = Duration::from_millis(200);

/// What was asked of the node: how to key, keep and label it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A multivariant playlist or an MPD.
    Manifest,
    /// A media playlist; blocking when it names `_HLS_msn`.
    Playlist { blocking: bool },
    /// An init segment or a part: immutable once it exists.
    Media,
    /// A whole segment: immutable once complete, else sent as it grows.
    Segment,
}

impl Relay {
    /// A relay reading where streams are from `on_air`; `segment_target`
    /// is this node's live segment target, which bounds the upstream wait.
    pub(crate) fn new(on_air: SharedOnAir, segment_target: Duration) -> Self {
        Relay {
            on_air,
            kept: moka::sync::Cache::builder()
                .max_capacity(KEPT_BYTES)
                .weigher(|_: &String, b: &Bytes| b.len().try_into().unwrap_or(u32::MAX))
                .time_to_live(KEPT_FOR)
                .build(),
            flights: Flights::default(),
            answer_within: segment_target * 3 + Duration::from_secs(5),
            lately: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(LATELY)
                .build(),
            wait_for_node: (segment_target * 3).min(Duration::from_secs(8)),
        }
    }

    /// The nodes to pull `stream` from, in order (none: no other node has
    /// it on air now).
    pub(crate) fn nodes_of(&self, stream: &str) -> Vec<Arc<str>> {
        let view = self.on_air.load();
        view.streams
            .get(stream)
            .map(|h| h.in_order().cloned().collect())
            .unwrap_or_default()
    }

    /// Whether another node has `stream`'s publisher.
    pub(crate) fn publishing_elsewhere(&self, stream: &str) -> bool {
        let view = self.on_air.load();
        view.streams
            .get(stream)
            .is_some_and(|h| !h.publishing.is_empty())
    }

    /// Whether `stream` is to be asked of other nodes: one has it on air,
    /// or it was relayed lately (its node may be coming back or moving).
    pub(crate) fn serves(&self, stream: &str) -> bool {
        !self.nodes_of(stream).is_empty() || self.lately.contains_key(stream)
    }
}

/// Answers a live URL from the nodes that have `stream` on air, the
/// first that can be reached (one killed a moment ago is still listed
/// until its heartbeat goes stale). When none can be, a stream relayed
/// lately is waited for (its publisher may be moving to another node), up
/// to `wait_for_node`, then `503`; one never relayed is a `404`. The
/// viewer's token was checked here.
pub(crate) async fn reply(
    shared: &Shared,
    relay: &Relay,
    head: &RequestHead,
    stream: &str,
    hls: bool,
    file: &str,
    query: Option<&str>,
) -> Result<Reply, OriginError> {
    let kind = kind_of(hls, file, query).ok_or(OriginError::NotFound)?;
    let path = format!("/live/{stream}/{}/{file}", if hls { "hls" } else { "dash" });
    let target = match query {
        Some(q) => format!("{path}?{q}"),
        None => path.clone(),
    };
    let asked = Asked {
        kind,
        path: &path,
        target: &target,
        content_type: content_type(hls, file),
        caching: match kind {
            Kind::Playlist { blocking: true } => Caching::LiveBlocking,
            Kind::Manifest | Kind::Playlist { .. } => Caching::LiveManifest,
            Kind::Media | Kind::Segment => Caching::LiveMedia,
        },
    };
    let token = relay_token(shared, stream);
    let deadline = tokio::time::Instant::now() + relay.wait_for_node;
    let counts = &shared.metrics.data.relay;
    loop {
        let nodes = relay.nodes_of(stream);
        for node in &nodes {
            let Some(authority) = headwater_common::cluster::authority(node) else {
                continue;
            };
            let ask = client::Ask {
                authority,
                target: &target,
                host: &head.host_value,
                relay_token: token.clone(),
                http11: head.http11,
                within: relay.answer_within,
            };
            match from_node(relay, node, &ask, &asked).await {
                Err(client::Failure::Unreachable(_)) => counts.unreachable_nodes.inc(),
                Err(f @ client::Failure::Status(..)) => {
                    counts.answered.inc();
                    return Err(failed(f));
                }
                Err(f) => {
                    counts.failed.inc();
                    return Err(failed(f));
                }
                Ok(r) => {
                    counts.answered.inc();
                    relay.lately.insert(stream.to_owned(), ());
                    return Ok(r);
                }
            }
        }
        if nodes.is_empty() && !relay.lately.contains_key(stream) {
            return Err(OriginError::NotFound);
        }
        if tokio::time::Instant::now() + LOOK_AGAIN > deadline {
            counts.unavailable.inc();
            return Err(OriginError::Unavailable("no node with the stream answers"));
        }
        tokio::time::sleep(LOOK_AGAIN).await;
    }
}

/// What is asked, as the reply needs it.
struct Asked<'a> {
    kind: Kind,
    /// `/live/{stream}/{hls|dash}/{file}`.
    path: &'a str,
    /// With the query.
    target: &'a str,
    content_type: &'static str,
    caching: Caching,
}

/// The answer of one node: from what is kept of it, the flight in the
/// air to it, or a request of its own.
async fn from_node(
    relay: &Relay,
    node: &str,
    ask: &client::Ask<'_>,
    asked: &Asked<'_>,
) -> Result<Reply, client::Failure> {
    let (kind, content_type, caching) = (asked.kind, asked.content_type, asked.caching);
    let kept_key = format!("{node}{}", asked.path);
    if matches!(kind, Kind::Media | Kind::Segment)
        && let Some(bytes) = relay.kept.get(&kept_key)
    {
        return Ok(ok(content_type, caching, bytes));
    }
    if kind == Kind::Segment {
        return match client::get(ask, true).await? {
            client::Answer::Full(bytes) => {
                relay.kept.insert(kept_key, bytes.clone());
                Ok(ok(content_type, caching, bytes))
            }
            client::Answer::Chunked(s) => {
                let mut r = ok(content_type, caching, Bytes::new());
                r.body = Body::Relayed(s);
                Ok(r)
            }
        };
    }
    // Coalesced: media by path (its bytes do not depend on the query),
    // playlists by path and query.
    let flight_key = if kind == Kind::Media {
        kept_key.clone()
    } else {
        format!("{node}{}", asked.target)
    };
    let bytes = relay
        .flights
        .run(flight_key, || async {
            match client::get(ask, false).await? {
                client::Answer::Full(b) => Ok(b),
                client::Answer::Chunked(_) => Err(client::Failure::Protocol("a chunked answer")),
            }
        })
        .await?;
    if kind == Kind::Media {
        relay.kept.insert(kept_key, bytes.clone());
    }
    Ok(ok(content_type, caching, bytes))
}

/// What a URL under `/live/{stream}/` is; `None`: nothing is there.
fn kind_of(hls: bool, file: &str, query: Option<&str>) -> Option<Kind> {
    match (hls, file) {
        (true, "master.m3u8") | (false, "manifest.mpd") => return Some(Kind::Manifest),
        _ => {}
    }
    Some(match LiveUri::parse(file)? {
        LiveUri::MediaPlaylist { .. } if hls => Kind::Playlist {
            blocking: query.is_some_and(|q| q.split('&').any(|p| p.starts_with("_HLS_msn="))),
        },
        LiveUri::MediaPlaylist { .. } => return None,
        LiveUri::Init { .. } | LiveUri::Part { .. } => Kind::Media,
        LiveUri::Segment { .. } => Kind::Segment,
    })
}

fn content_type(hls: bool, file: &str) -> &'static str {
    if file.ends_with(".m3u8") {
        M3U8
    } else if !hls && file == "manifest.mpd" {
        MPD
    } else if file.starts_with('a') {
        "audio/mp4"
    } else {
        "video/mp4"
    }
}

fn ok(content_type: &'static str, caching: Caching, body: Bytes) -> Reply {
    let mut r = Reply::text(Status::OK, caching, body);
    r.content_type = content_type;
    r
}

/// A token of the catalog's signing key for `stream`, bound to no
/// address: what the node asked trusts instead of the viewer's token
/// and address (this node checked both). `None` without a signing key.
fn relay_token(shared: &Shared, stream: &str) -> Option<String> {
    let view = shared.catalog.load();
    let key = view.signing.as_ref()?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    Some(token::sign(
        key,
        token::Scope::Stream(stream),
        now + RELAY_TOKEN_SECS,
        None,
    ))
}

/// What the node's answer becomes here: its refusals as they were, the
/// rest a `502` (or `504` when it did not answer in time).
fn failed(f: client::Failure) -> OriginError {
    match f {
        client::Failure::Status(404, _) => OriginError::NotFound,
        client::Failure::Status(403, _) => OriginError::Forbidden,
        client::Failure::Status(400, text) => OriginError::BadQuery(text),
        client::Failure::Status(503, _) => OriginError::Unavailable("not published in time"),
        client::Failure::Timeout => OriginError::Upstream {
            timeout: true,
            why: "the node with the stream did not answer in time".into(),
        },
        other => OriginError::Upstream {
            timeout: false,
            why: other.to_string(),
        },
    }
}

/// Requests in flight by key: a request identical to one already waiting
/// waits for that one's answer instead of asking again.
#[derive(Default)]
struct Flights {
    waiting: Mutex<HashMap<String, Arc<Flight>>>,
}

type Flight = OnceCell<Result<Bytes, client::Failure>>;

impl Flights {
    /// `fetch`'s answer, or that of the identical request already in flight.
    /// If the request that was fetching is dropped (its viewer left), one
    /// of the others fetches.
    async fn run<F, Fut>(&self, key: String, fetch: F) -> Result<Bytes, client::Failure>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<Bytes, client::Failure>>,
    {
        let flight = self
            .lock()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(OnceCell::new()))
            .clone();
        let _leave = Leave {
            flights: self,
            key,
            flight: flight.clone(),
        };
        flight.get_or_init(fetch).await.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Flight>>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Takes a flight out of the table once it has its answer, or when its
/// last waiter is gone, so the table holds only requests being waited for.
struct Leave<'a> {
    flights: &'a Flights,
    key: String,
    flight: Arc<Flight>,
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        let mut waiting = self.flights.lock();
        let ours = waiting
            .get(&self.key)
            .is_some_and(|f| Arc::ptr_eq(f, &self.flight));
        // Two references when only the table and this waiter hold it.
        if ours && (self.flight.initialized() || Arc::strong_count(&self.flight) <= 2) {
            waiting.remove(&self.key);
        }
    }
}
