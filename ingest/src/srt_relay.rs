//! The public SRT port, in front of srt-tokio's listener.
//!
//! srt-tokio reads its UDP socket itself, so nothing could stop a datagram
//! srt-protocol panics on (see [`crate::srt_gate`]) from reaching its
//! listener task. The public socket is therefore ours: each datagram
//! passes the gate, and each caller (peer address) gets a loopback socket
//! of its own, connected to srt-tokio's listener on `127.0.0.1`, which sees
//! that socket's address as the caller's ([`Peers::caller`] maps it back).
//! Replies go from the loopback socket out of the public one.
//!
//! Only an induction handshake opens a relay; a peer that sends no media
//! is forgotten after [`PENDING_IDLE`], one that stops sending after
//! [`IDLE`] (srt-tokio's own idle timeout has closed its session by then).
//! At most [`MAX_PENDING`] relays wait without media: past it the oldest of
//! them makes room, so a flood of inductions cannot crowd out callers that
//! are sending.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::net::UdpSocket;
use tokio::task::AbortHandle;
use tokio::time::Instant;

use headwater_common::lograte::LogRate;

use crate::guard::Refused;
use crate::srt_gate::{self, Admitted, Dropped};

/// Silence after which a caller that sent media is forgotten.
const IDLE: Duration = Duration::from_secs(15);
/// Silence after which a caller that sent no media is forgotten.
const PENDING_IDLE: Duration = Duration::from_secs(5);
/// Relays of callers that have sent no media yet.
const MAX_PENDING: usize = 64;
/// All relays: every caller the listener serves, and the pending ones.
const MAX_RELAYS: usize = super::srt::MAX_CALLERS + MAX_PENDING;
/// Largest datagram read (a UDP payload cannot be longer).
const DATAGRAM: usize = 65_536;

/// Loopback address of a relay → the caller it stands for.
#[derive(Default)]
pub(crate) struct Peers(Mutex<HashMap<SocketAddr, SocketAddr>>);

impl Peers {
    /// The caller behind `seen`, the address srt-tokio saw (itself when it
    /// is no relay's).
    pub(crate) fn caller(&self, seen: SocketAddr) -> SocketAddr {
        let map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        map.get(&seen).copied().unwrap_or(seen)
    }

    fn set(&self, local: SocketAddr, peer: Option<SocketAddr>) {
        let mut map = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        match peer {
            Some(p) => map.insert(local, p),
            None => map.remove(&local),
        };
    }
}

struct Relay {
    socket: Arc<UdpSocket>,
    local: SocketAddr,
    last: Instant,
    media: bool,
    replies: AbortHandle,
}

/// Relays datagrams between `public` and srt-tokio's listener at `inner`
/// until the task is dropped.
pub(crate) async fn run(
    public: Arc<UdpSocket>,
    inner: SocketAddr,
    encrypted: bool,
    peers: Arc<Peers>,
) {
    let mut relays: HashMap<SocketAddr, Relay> = HashMap::new();
    let mut buf = vec![0u8; DATAGRAM];
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    loop {
        let (n, from) = tokio::select! {
            r = public.recv_from(&mut buf) => match r {
                Ok(got) => got,
                Err(e) => {
                    warn_io("receive", &e);
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = sweep.tick() => {
                forget_idle(&mut relays, &peers, Instant::now());
                continue;
            }
        };
        let datagram = &mut buf[..n];
        let kind = match srt_gate::admit(datagram, encrypted) {
            Ok(kind) => kind,
            Err(why) => {
                dropped(from, why);
                continue;
            }
        };
        let relay = match relays.get_mut(&from) {
            Some(r) => r,
            None if kind == Admitted::Induction => {
                match open(&mut relays, &public, inner, from, &peers).await {
                    Some(r) => r,
                    None => continue,
                }
            }
            // Not a caller's first packet, from no caller: nothing to do.
            None => continue,
        };
        relay.last = Instant::now();
        relay.media |= kind == Admitted::Data;
        // Loopback; a full buffer drops the datagram as the network would.
        let _ = relay.socket.try_send(&buf[..n]);
    }
}

/// Opens a relay for `peer`, making room first.
async fn open<'a>(
    relays: &'a mut HashMap<SocketAddr, Relay>,
    public: &Arc<UdpSocket>,
    inner: SocketAddr,
    peer: SocketAddr,
    peers: &Peers,
) -> Option<&'a mut Relay> {
    let pending = relays.values().filter(|r| !r.media).count();
    if pending >= MAX_PENDING || relays.len() >= MAX_RELAYS {
        let oldest = relays
            .iter()
            .filter(|(_, r)| !r.media)
            .min_by_key(|(_, r)| r.last)
            .map(|(a, _)| *a);
        match oldest {
            Some(a) => forget(&mut relays.remove(&a)?, peers),
            None => {
                static FULL: LogRate = LogRate::new();
                if let Some(suppressed) = FULL.allow() {
                    tracing::warn!(client.addr = %peer, suppressed, "too many SRT callers; handshake dropped");
                }
                return None;
            }
        }
    }
    let socket = match loopback(inner).await {
        Ok(s) => Arc::new(s),
        Err(e) => {
            warn_io("open a relay socket", &e);
            return None;
        }
    };
    let local = socket.local_addr().ok()?;
    let replies = tokio::spawn(replies(socket.clone(), public.clone(), peer)).abort_handle();
    peers.set(local, Some(peer));
    Some(relays.entry(peer).or_insert(Relay {
        socket,
        local,
        last: Instant::now(),
        media: false,
        replies,
    }))
}

async fn loopback(inner: SocketAddr) -> std::io::Result<UdpSocket> {
    let socket = UdpSocket::bind((std::net::Ipv4Addr::LOCALHOST, 0)).await?;
    socket.connect(inner).await?;
    Ok(socket)
}

/// What srt-tokio sends to a relay goes out to its caller.
async fn replies(socket: Arc<UdpSocket>, public: Arc<UdpSocket>, peer: SocketAddr) {
    let mut buf = vec![0u8; DATAGRAM];
    loop {
        match socket.recv(&mut buf).await {
            Ok(n) => {
                if let Err(e) = public.send_to(&buf[..n], peer).await {
                    warn_io("send", &e);
                }
            }
            Err(e) => {
                warn_io("relay receive", &e);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

fn forget_idle(relays: &mut HashMap<SocketAddr, Relay>, peers: &Peers, now: Instant) {
    relays.retain(|_, r| {
        let limit = if r.media { IDLE } else { PENDING_IDLE };
        let keep = now.duration_since(r.last) < limit;
        if !keep {
            forget(r, peers);
        }
        keep
    });
}

fn forget(relay: &mut Relay, peers: &Peers) {
    relay.replies.abort();
    peers.set(relay.local, None);
}

fn dropped(from: SocketAddr, why: Dropped) {
    Refused::Datagram.count();
    static DROPPED: LogRate = LogRate::new();
    if let Some(suppressed) = DROPPED.allow() {
        tracing::debug!(client.addr = %from, ?why, suppressed, "SRT datagram dropped");
    }
}

fn warn_io(what: &str, e: &std::io::Error) {
    static IO: LogRate = LogRate::new();
    if let Some(suppressed) = IO.allow() {
        tracing::warn!(error = %e, suppressed, "SRT relay: {what} failed");
    }
}
