//! The RTMP listener: rml_rtmp's sans-IO handshake and `ServerSession` on
//! tokio. A publisher connects to app `live` and publishes
//! `{stream}?key={key}` (see [`crate::names`]); the key is checked when
//! the publish request arrives, and a refused request is answered with an
//! error status and the connection closed. An accepted publisher's audio
//! and video messages are framed as FLV tags into its pipeline.
//!
//! Bounds: [`HANDSHAKE_TIMEOUT`] to get from TCP accept to an accepted
//! publish, [`IDLE_TIMEOUT`] of silence while publishing, RTMP messages
//! are at most 16 MiB (24-bit lengths), at most [`MAX_CONNECTIONS`] at
//! once, and the session library runs under `catch_unwind`, so a peer
//! that trips one of its arithmetic checks loses its connection only.

use std::net::IpAddr;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rml_rtmp::handshake::{Handshake, HandshakeProcessResult, PeerType};
use rml_rtmp::sessions::{
    ServerSession, ServerSessionConfig, ServerSessionError, ServerSessionEvent, ServerSessionResult,
};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::time::{Instant, timeout, timeout_at};
use tracing::Instrument;

use headwater_common::lograte::LogRate;

use crate::pipeline::{Container, Ingest};
use crate::{Ctx, flv, names};
use headwater_packager::live::Timeline;

/// From accept to an accepted publish.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest silence of a publishing connection.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a write to the peer may take.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent RTMP connections (publishing or not).
const MAX_CONNECTIONS: usize = 512;

/// Accepts RTMP connections until the runtime stops.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Ctx>) {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let (sock, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of descriptors, say: wait rather than spin.
                static ACCEPT: LogRate = LogRate::new();
                if let Some(suppressed) = ACCEPT.allow() {
                    tracing::warn!(error = %e, suppressed, "RTMP accept failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if !ctx.guard.connect(peer.ip()) {
            // Past its connection rate: closed before any work, counted, not logged.
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            static FULL: LogRate = LogRate::new();
            if let Some(suppressed) = FULL.allow() {
                tracing::warn!(client.addr = %peer, suppressed, "too many RTMP connections; closing");
            }
            continue;
        };
        let _ = sock.set_nodelay(true);
        let ctx = ctx.clone();
        let span = tracing::info_span!("rtmp", client.addr = %peer);
        tokio::spawn(
            async move {
                match connection(sock, peer.ip(), &ctx).await {
                    Ok(()) => tracing::debug!("connection closed"),
                    Err(e) => tracing::info!(error = %e, "connection closed"),
                }
                drop(slot);
            }
            .instrument(span),
        );
    }
}

/// Why a connection ended early.
pub(crate) type ConnError = String;

/// A connection's byte stream (a `TcpStream`; an in-memory pipe in tests).
pub(crate) trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

async fn write(sock: &mut impl Io, bytes: &[u8]) -> Result<(), ConnError> {
    match timeout(WRITE_TIMEOUT, sock.write_all(bytes)).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(format!("write: {e}")),
        Err(_) => Err("write timed out".into()),
    }
}

/// Runs a session call, turning a panic inside the library into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T, ServerSessionError>) -> Result<T, ConnError> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(t)) => Ok(t),
        Ok(Err(e)) => Err(format!("RTMP: {e:?}")),
        Err(_) => Err("RTMP: malformed input".into()),
    }
}

/// Sends the outbound packets among `results`; returns the events.
async fn send(
    sock: &mut impl Io,
    results: Vec<ServerSessionResult>,
) -> Result<Vec<ServerSessionEvent>, ConnError> {
    let mut events = Vec::new();
    for r in results {
        match r {
            ServerSessionResult::OutboundResponse(p) => write(sock, &p.bytes).await?,
            ServerSessionResult::RaisedEvent(e) => events.push(e),
            ServerSessionResult::UnhandleableMessageReceived(_) => {}
        }
    }
    Ok(events)
}

async fn handshake(sock: &mut impl Io, buf: &mut [u8]) -> Result<Vec<u8>, ConnError> {
    let deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let mut hs = Handshake::new(PeerType::Server);
    loop {
        let n = match timeout_at(deadline, sock.read(buf)).await {
            Ok(Ok(0)) => return Err("closed during the handshake".into()),
            Ok(Ok(n)) => n,
            Ok(Err(e)) => return Err(format!("read: {e}")),
            Err(_) => return Err("handshake timed out".into()),
        };
        let step = catch_unwind(AssertUnwindSafe(|| hs.process_bytes(&buf[..n])))
            .map_err(|_| "malformed handshake".to_owned())?
            .map_err(|e| format!("handshake: {e:?}"))?;
        match step {
            HandshakeProcessResult::InProgress { response_bytes } => {
                write(sock, &response_bytes).await?
            }
            HandshakeProcessResult::Completed {
                response_bytes,
                remaining_bytes,
            } => {
                write(sock, &response_bytes).await?;
                return Ok(remaining_bytes);
            }
        }
    }
}

pub(crate) async fn connection(
    mut sock: impl Io,
    peer: IpAddr,
    ctx: &Ctx,
) -> Result<(), ConnError> {
    let mut buf = vec![0u8; 64 * 1024];
    let publish_deadline = Instant::now() + HANDSHAKE_TIMEOUT;
    let remaining = handshake(&mut sock, &mut buf).await?;
    let (mut session, results) = guarded(|| ServerSession::new(ServerSessionConfig::new()))?;
    send(&mut sock, results).await?;
    let mut state = State {
        peer,
        ..State::default()
    };
    let mut input = remaining;
    let outcome = loop {
        let results = match guarded(|| session.handle_input(&input)) {
            Ok(r) => r,
            Err(e) => break Err(e),
        };
        let events = match send(&mut sock, results).await {
            Ok(e) => e,
            Err(e) => break Err(e),
        };
        match handle_events(events, &mut sock, &mut session, ctx, &mut state).await {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
        let read = if state.ingest.is_some() {
            timeout(IDLE_TIMEOUT, sock.read(&mut buf)).await
        } else {
            timeout_at(publish_deadline, sock.read(&mut buf)).await
        };
        match read {
            Ok(Ok(0)) => break Ok(()),
            Ok(Ok(n)) => input = buf[..n].to_vec(),
            Ok(Err(e)) => break Err(format!("read: {e}")),
            Err(_) if state.ingest.is_some() => break Err("publisher went silent".into()),
            Err(_) => break Err("no publish request in time".into()),
        }
    };
    if let Some(ingest) = state.ingest {
        ingest.finish().await;
    }
    outcome
}

/// What a connection knows between reads.
struct State {
    /// Who is connected.
    peer: IpAddr,
    /// The app named in `connect`.
    app: String,
    /// The pipeline, once a publish was accepted.
    ingest: Option<Ingest>,
    /// Rebases the publisher's timestamps.
    clock: flv::Clock,
}

impl Default for State {
    fn default() -> Self {
        State {
            peer: IpAddr::from([0, 0, 0, 0]),
            app: String::new(),
            ingest: None,
            clock: flv::Clock::default(),
        }
    }
}

/// Reacts to the session's events. `Ok(false)` ends the connection.
async fn handle_events(
    events: Vec<ServerSessionEvent>,
    sock: &mut impl Io,
    session: &mut ServerSession,
    ctx: &Ctx,
    state: &mut State,
) -> Result<bool, ConnError> {
    let State {
        peer,
        app,
        ingest,
        clock,
    } = state;
    for event in events {
        match event {
            ServerSessionEvent::ConnectionRequested {
                request_id,
                app_name,
            } => {
                *app = app_name;
                let results = guarded(|| session.accept_request(request_id))?;
                send(sock, results).await?;
            }
            ServerSessionEvent::PublishStreamRequested {
                request_id,
                app_name,
                stream_key,
                ..
            } => {
                if ingest.is_some() {
                    let results = guarded(|| {
                        session.reject_request(
                            request_id,
                            "NetStream.Publish.BadName",
                            "already publishing",
                        )
                    })?;
                    send(sock, results).await?;
                    return Ok(false);
                }
                let app_name = if app_name.is_empty() {
                    app.clone()
                } else {
                    app_name
                };
                let claim = names::rtmp(&app_name, &stream_key);
                match ctx.authorize(claim, "rtmp", *peer) {
                    Ok((stream, settings)) => {
                        if ctx.registry.timeline() == Timeline::Input {
                            *clock = flv::Clock::raw();
                        }
                        let mut i =
                            Ingest::new(Container::Flv, &stream, settings, ctx.registry.clone())
                                .map_err(|e| e.to_string())?;
                        i.push(Bytes::copy_from_slice(&flv::header()))
                            .await
                            .map_err(|e| e.to_string())?;
                        *ingest = Some(i);
                        let results = guarded(|| session.accept_request(request_id))?;
                        send(sock, results).await?;
                        tracing::info!(stream = %stream, "RTMP publisher accepted");
                    }
                    Err(refusal) => {
                        let results = guarded(|| {
                            session.reject_request(
                                request_id,
                                refusal.rtmp_code(),
                                refusal.reason(),
                            )
                        })?;
                        send(sock, results).await?;
                        let _ = sock.flush().await;
                        return Ok(false);
                    }
                }
            }
            ServerSessionEvent::VideoDataReceived {
                data, timestamp, ..
            } => media(ingest, clock, flv::TAG_VIDEO, timestamp.value, &data).await?,
            ServerSessionEvent::AudioDataReceived {
                data, timestamp, ..
            } => media(ingest, clock, flv::TAG_AUDIO, timestamp.value, &data).await?,
            ServerSessionEvent::PublishStreamFinished { .. } => return Ok(false),
            ServerSessionEvent::PlayStreamRequested { request_id, .. } => {
                let results = guarded(|| {
                    session.reject_request(
                        request_id,
                        "NetStream.Play.Failed",
                        "playback is over HLS and DASH",
                    )
                })?;
                send(sock, results).await?;
                return Ok(false);
            }
            _ => {}
        }
    }
    Ok(true)
}

async fn media(
    ingest: &mut Option<Ingest>,
    clock: &mut flv::Clock,
    tag_type: u8,
    timestamp: u32,
    body: &[u8],
) -> Result<(), ConnError> {
    let Some(ingest) = ingest else {
        return Ok(()); // media before publish: not ours to take
    };
    let timestamp = clock.map(timestamp);
    if body.is_empty() {
        return Ok(());
    }
    tracing::trace!(tag_type, timestamp, len = body.len(), "media message");
    let mut tag = Vec::with_capacity(body.len() + 15);
    if !flv::write_tag(&mut tag, tag_type, timestamp, body) {
        return Err("oversized RTMP message".into());
    }
    ingest
        .push(Bytes::from(tag))
        .await
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    //! Random bytes at every stage of a connection, through an in-memory
    //! pipe: the connection ends (with or without an error), never panics
    //! or hangs.

    use std::sync::Arc;
    use std::time::Duration;

    use crate::rtmp_replay::{prefix, replay};
    use crate::{KeyCheck, StreamSettings};
    use proptest::prelude::*;

    /// The key `k` is right: a scripted publish gets a pipeline.
    fn keys() -> KeyCheck {
        Arc::new(|_, key| (key == "k").then(StreamSettings::default))
    }

    fn run(input: Vec<u8>) -> Result<(), super::ConnError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(5), replay(input, keys()))
                .await
                .expect("the connection ends once its input does")
        })
    }

    #[test]
    fn the_scripted_prefix_gets_past_the_handshake() {
        gstreamer::init().expect("gstreamer initialises");
        assert_eq!(run(prefix(2)), Ok(()), "ends at EOF, not in the handshake");
        assert!(run(b"GET / HTTP/1.1\r\n\r\n".to_vec()).is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn junk_ends_the_connection(stage in 0u8..3, junk in proptest::collection::vec(any::<u8>(), 0..4096)) {
            gstreamer::init().expect("gstreamer initialises");
            let mut input = prefix(stage);
            input.extend(junk);
            let _ = run(input);
        }
    }
}
