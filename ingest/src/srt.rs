//! The SRT listener: one UDP port, many publishers told apart by their
//! `streamid` (see [`crate::names`]), through srt-tokio's multiplexing
//! listener. A caller is accepted or rejected (SRT reject code 2403
//! Forbidden, 2409 Conflict when busy, 2400 for a malformed streamid)
//! during the handshake, before any media. Accepted callers send MPEG-TS,
//! fed to a `tsdemux` pipeline. With a passphrase, callers must encrypt.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::{FutureExt, StreamExt};
use srt_tokio::access::{RejectReason, ServerRejectReason};
use srt_tokio::options::Passphrase;
use srt_tokio::{ConnectionRequest, SrtIncoming, SrtListener, SrtSocket};
use tokio::sync::Semaphore;
use tracing::Instrument;

use headwater_common::lograte::LogRate;

use crate::error::Error;
use crate::pipeline::{Container, Ingest};
use crate::{Ctx, Refusal, names};

/// Longest silence of a publishing caller.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Concurrent SRT callers being served.
const MAX_CALLERS: usize = 512;

/// A bound SRT listener.
pub(crate) struct Bound {
    listener: SrtListener,
    incoming: SrtIncoming,
    /// The address it listens on.
    pub(crate) addr: SocketAddr,
}

/// Makes an SRT listener of a bound socket (on the caller's runtime).
pub(crate) async fn bind(
    socket: tokio::net::UdpSocket,
    passphrase: Option<&str>,
) -> Result<Bound, Error> {
    let passphrase = passphrase
        .map(|p| Passphrase::try_from(p.to_owned()))
        .transpose()
        .map_err(|e| Error::Config(format!("SRT passphrase: {e}")))?;
    let local = socket.local_addr().map_err(Error::Runtime)?;
    let bind_err = |source: std::io::Error| Error::Bind {
        addr: local,
        source,
    };
    let (listener, incoming) = SrtListener::builder()
        .socket(socket)
        .set(|o| {
            o.encryption.passphrase = passphrase;
            o.session.peer_idle_timeout = IDLE_TIMEOUT;
        })
        .bind(local)
        .await
        .map_err(bind_err)?;
    Ok(Bound {
        listener,
        incoming,
        addr: local,
    })
}

/// Accepts SRT callers until the runtime stops.
pub(crate) async fn serve(bound: Bound, ctx: Arc<Ctx>) {
    let Bound {
        listener: _listener,
        mut incoming,
        ..
    } = bound;
    let slots = Arc::new(Semaphore::new(MAX_CALLERS));
    while let Some(request) = incoming.incoming().next().await {
        if !ctx.guard.connect(request.remote().ip()) {
            // Past its handshake rate: rejected before any state, counted, not logged.
            let _ = request
                .reject(RejectReason::Server(ServerRejectReason::Overload))
                .await;
            continue;
        }
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            static FULL: LogRate = LogRate::new();
            if let Some(suppressed) = FULL.allow() {
                tracing::warn!(client.addr = %request.remote(), suppressed, "too many SRT callers; rejecting");
            }
            let _ = request
                .reject(RejectReason::Server(ServerRejectReason::Overload))
                .await;
            continue;
        };
        let ctx = ctx.clone();
        let span = tracing::info_span!("srt", client.addr = %request.remote());
        tokio::spawn(
            async move {
                caller(request, ctx).await;
                drop(slot);
            }
            .instrument(span),
        );
    }
}

async fn caller(request: ConnectionRequest, ctx: Arc<Ctx>) {
    let claim = request.stream_id().and_then(|id| names::srt(id));
    let (stream, settings) = match ctx.authorize(claim, "srt", request.remote().ip()) {
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
    let socket = match request.accept(None).await {
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
