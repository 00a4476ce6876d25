//! The SRT listener: one UDP port, many publishers told apart by their
//! `streamid` (see [`crate::names`]), through srt-tokio's multiplexing
//! listener. A caller is accepted or rejected (SRT reject code 2403
//! Forbidden, 2409 Conflict when busy, 2400 for a malformed streamid)
//! during the handshake, before any media. Accepted callers send MPEG-TS,
//! fed to a `tsdemux` pipeline. With a passphrase, callers must encrypt.
//! Every datagram reaches srt-tokio through [`crate::srt_relay`], whose
//! gate keeps out what srt-protocol would panic on.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use srt_protocol::packet::CoreRejectReason;
use srt_protocol::settings::KeySettings;
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::{KeySize, Passphrase};
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener, SrtSocket};
use tokio::sync::Semaphore;
use tracing::Instrument;

use headwater_common::lograte::LogRate;

use crate::error::Error;
use crate::pipeline::{Container, Ingest};
use crate::srt_relay::{self, Peers};
use crate::{Ctx, Refusal, names};

/// Longest silence of a publishing caller.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent SRT callers being served.
pub(crate) const MAX_CALLERS: usize = 512;

/// A bound SRT listener.
pub(crate) struct Bound {
    listener: SrtListener,
    incoming: SrtIncoming,
    /// The public socket, relayed to the listener's loopback one.
    public: Arc<tokio::net::UdpSocket>,
    /// The listener's loopback address.
    inner: SocketAddr,
    passphrase: Option<Passphrase>,
    /// The address it listens on.
    pub(crate) addr: SocketAddr,
}

/// Makes an SRT listener of a bound socket (on the caller's runtime):
/// srt-tokio listens on loopback, the socket is [`crate::srt_relay`]'s.
pub(crate) async fn bind(
    public: tokio::net::UdpSocket,
    passphrase: Option<&str>,
) -> Result<Bound, Error> {
    let passphrase = passphrase
        .map(|p| Passphrase::try_from(p.to_owned()))
        .transpose()
        .map_err(|e| Error::Config(format!("SRT passphrase: {e}")))?;
    let addr = public.local_addr().map_err(Error::Runtime)?;
    let bind_err = |source: std::io::Error| Error::Bind { addr, source };
    let inner = tokio::net::UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0))
        .await
        .map_err(bind_err)?;
    let local = inner.local_addr().map_err(bind_err)?;
    let (listener, incoming) = SrtListener::builder()
        .socket(inner)
        .set(|o| {
            o.encryption.passphrase = passphrase.clone();
            o.session.peer_idle_timeout = IDLE_TIMEOUT;
        })
        .bind(local)
        .await
        .map_err(bind_err)?;
    Ok(Bound {
        listener,
        incoming,
        public: Arc::new(public),
        inner: local,
        passphrase,
        addr,
    })
}

/// Accepts SRT callers until the runtime stops.
pub(crate) async fn serve(bound: Bound, ctx: Arc<Ctx>) {
    let Bound {
        listener: _listener,
        mut incoming,
        public,
        inner,
        passphrase,
        ..
    } = bound;
    let peers = Arc::new(Peers::default());
    let relay = srt_relay::run(public, inner, passphrase.is_some(), peers.clone());
    let accept = accept(&mut incoming, ctx, peers, passphrase);
    tokio::select! {
        () = relay => {}
        () = accept => {}
    }
}

async fn accept(
    incoming: &mut SrtIncoming,
    ctx: Arc<Ctx>,
    peers: Arc<Peers>,
    passphrase: Option<Passphrase>,
) {
    let slots = Arc::new(Semaphore::new(MAX_CALLERS));
    while let Some(request) = incoming.incoming().next().await {
        let remote = peers.caller(request.remote());
        if !ctx.guard.connect(remote.ip()) {
            // Past its handshake rate: rejected before any state, counted, not logged.
            let _ = request
                .reject(RejectReason::Server(ServerRejectReason::Overload))
                .await;
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            static FULL: LogRate = LogRate::new();
            if let Some(suppressed) = FULL.allow() {
                tracing::warn!(client.addr = %remote, suppressed, "too many SRT callers; rejecting");
            }
            let _ = request
                .reject(RejectReason::Server(ServerRejectReason::Overload))
                .await;
            continue;
        };
        let ctx = ctx.clone();
        let passphrase = passphrase.clone();
        let span = tracing::info_span!("srt", client.addr = %remote);
        tokio::spawn(
            async move {
                caller(request, remote, passphrase, ctx).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
}

async fn caller(
    request: ConnectionRequest,
    remote: SocketAddr,
    passphrase: Option<Passphrase>,
    ctx: Arc<Ctx>,
) {
    let keys = match session_keys(passphrase, request.key_size()) {
        Ok(keys) => keys,
        Err(reason) => {
            let _ = request.reject(RejectReason::Core(reason)).await;
            tracing::info!("SRT caller encrypts but no passphrase is set; rejected");
            return;
        }
    };
    let claim = request.stream_id().and_then(|id| names::srt(id));
    let (stream, settings) = match ctx.authorize(claim, "srt", remote.ip()) {
        Ok(ok) => ok,
        Err(refusal) => {
            let code = match refusal {
                Refusal::Malformed => ServerRejectReason::BadRequest,
                Refusal::Key => ServerRejectReason::Forbidden,
                Refusal::Busy => ServerRejectReason::Conflict,
            };
            let _ = request.reject(RejectReason::Server(code)).await;
            return;
        }
    };
    let socket = match request.accept(keys).await {
        Ok(s) => s,
        Err(e) => {
            tracing::info!(stream = %stream, error = %e, "SRT accept failed");
            return;
        }
    };
    tracing::info!(stream = %stream, "SRT publisher accepted");
    let ingest = match Ingest::new(Container::MpegTs, &stream, settings, ctx.registry.clone()) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(stream = %stream, error = %e, "cannot start a pipeline");
            return;
        }
    };
    match receive(socket, ingest).await {
        Ok(()) => tracing::info!(stream = %stream, "SRT publisher left"),
        Err(e) => tracing::info!(stream = %stream, error = %e, "SRT publisher dropped"),
    }
}

/// The keys of a caller's session, or why it is refused: the caller's key
/// length is the session's (srt-protocol panics on a mismatch), and
/// without a passphrase here an encrypting caller is refused (srt-protocol
/// panics on key material it has no secret for).
pub(crate) fn session_keys(
    passphrase: Option<Passphrase>,
    key_size: KeySize,
) -> Result<Option<KeySettings>, CoreRejectReason> {
    match (passphrase, key_size) {
        (Some(passphrase), key_size) => Ok(Some(KeySettings {
            key_size,
            passphrase,
        })),
        (None, KeySize::Unspecified) => Ok(None),
        (None, _) => Err(CoreRejectReason::Unsecure),
    }
}

async fn receive(mut socket: SrtSocket, mut ingest: Ingest) -> Result<(), String> {
    let mut stats = socket.statistics().clone();
    let mut received = 0u64;
    let outcome = loop {
        match tokio::time::timeout(IDLE_TIMEOUT, socket.next()).await {
            Ok(Some(Ok((_, data)))) => {
                received += data.len() as u64;
                if let Err(e) = ingest.push(data).await {
                    break Err(e.to_string());
                }
            }
            Ok(Some(Err(e))) => break Err(format!("SRT: {e}")),
            Ok(None) => break Ok(()),
            Err(_) => break Err("publisher went silent".into()),
        }
    };
    report(received, &mut stats);
    ingest.finish().await;
    outcome
}

/// Logs what the session's transport lost: packets the network lost,
/// those recovered by retransmission, and those dropped for arriving after
/// the latency window (which corrupts the media: a publisher whose network
/// needs more than its `latency` shows up here).
fn report(
    received: u64,
    stats: &mut (impl futures::Stream<Item = srt_tokio::SocketStatistics> + Unpin),
) {
    let mut last = None;
    while let Some(Some(s)) = stats.next().now_or_never() {
        last = Some(s);
    }
    let Some(s) = last else {
        tracing::debug!(received, "SRT input ended");
        return;
    };
    if s.rx_dropped_data > 0 {
        tracing::warn!(
            received,
            lost = s.rx_loss_data,
            retransmitted = s.rx_retransmit_data,
            dropped = s.rx_dropped_data,
            "SRT input ended with packets dropped after the latency window"
        );
    } else {
        tracing::info!(
            received,
            lost = s.rx_loss_data,
            retransmitted = s.rx_retransmit_data,
            "SRT input ended"
        );
    }
}
