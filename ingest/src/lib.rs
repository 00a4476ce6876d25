//! headwater's live ingest: the listeners publishers push to (RTMP, SRT),
//! the GStreamer pipelines that turn what they push into access units,
//! and the [`registry`] of live streams that the origin reads from.
//!
//! ```text
//!  publisher ─RTMP─► rtmp (rml_rtmp session) ─ key check ─► FLV tags ─► appsrc ─► flvdemux ┐
//!  publisher ─SRT──► srt (srt-tokio listener, streamid) ─ key check ─► TS ─► appsrc ─► tsdemux ┤
//!                                      h264parse / h265parse / aacparse ─► appsink ◄┘
//!                                                    │ samples (caps → sample entries, ticks)
//!                                        assemble ─► registry: Publisher::push ─► Live (LiveStream)
//!                                                     │ watch (version) wakes
//!                                                     ▼
//!                                   origin: /live/{stream}/... (blocking reloads)
//! ```
//!
//! [`start`] binds the listeners and serves them on threads of their own
//! (a two-worker tokio runtime; GStreamer's streaming threads do the
//! demuxing and push into the registry). What publishers put in their URLs
//! is documented in `names.rs`: `rtmp://HOST:PORT/live/{stream}?key={key}`
//! (OBS: server `rtmp://HOST/live`, stream key `{stream}?key={key}`), and
//! SRT `streamid=#!::r=live/{stream},m=publish,k={key}` or
//! `streamid=live/{stream}?key={key}`.
//!
//! A publisher is refused — before anything is created in the registry —
//! when its name is malformed, its key is wrong or missing, or the stream
//! has a publisher that is still sending (the registry's takeover rule
//! replaces one silent for `RegistryConfig::takeover_after`). Refusals are
//! logged with the stream name (never the key) and counted
//! ([`refused_total`]).

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod assemble;
mod error;
mod flv;
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod guard;
mod names;
mod pcr;
mod pipeline;
mod record;
pub mod registry;
mod rtmp;
#[cfg(any(test, feature = "fuzzing"))]
mod rtmp_replay;
mod sample_entry;
mod spill;
mod srt;
mod srt_gate;
mod srt_relay;
pub mod stats;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

pub use error::Error;
pub use registry::{Live, LiveStats, Publisher, Registry, RegistryConfig, TrackInput};

/// Where to listen.
#[derive(Clone, Default)]
pub struct IngestConfig {
    /// The RTMP listener's address (the usual port is 1935); `None`: no RTMP.
    pub rtmp_listen: Option<SocketAddr>,
    /// The SRT listener's address (the usual port is 9000); `None`: no SRT.
    pub srt_listen: Option<SocketAddr>,
    /// SRT encryption passphrase (10 to 79 characters); callers must use it.
    pub srt_passphrase: Option<String>,
    /// Per-source connection rate and wrong-key limits.
    pub limits: guard::SourceLimits,
}

impl std::fmt::Debug for IngestConfig {
    // The passphrase is a secret: never in a log line.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestConfig")
            .field("rtmp_listen", &self.rtmp_listen)
            .field("srt_listen", &self.srt_listen)
            .field(
                "srt_passphrase",
                &self.srt_passphrase.as_ref().map(|_| "<redacted>"),
            )
            .field("limits", &self.limits)
            .finish()
    }
}

/// Decides whether `key` may publish `stream`; `Some(settings)` accepts.
/// Arguments: (stream, key). A missing key is passed as `""`.
pub type KeyCheck = Arc<dyn Fn(&str, &str) -> Option<StreamSettings> + Send + Sync>;

/// How an accepted stream is packaged.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamSettings {
    /// The stream's DVR window; `None`: the registry's default.
    pub dvr_window: Option<Duration>,
    /// Whether its segments are also written as a VOD asset
    /// (see [`registry`]'s recording notes).
    pub record: bool,
    /// The rungs its video is transcoded into; `None`: passed through.
    pub ladder: Option<Ladder>,
}

/// A live transcoding ladder: the input's video is decoded once, its frame
/// rate converted once, and each rung scaled and encoded with x264
/// (`tune=zerolatency`, a keyframe every `keyframe_frames` frames and no
/// scene-cut keyframes, so keyframes fall on the same frames in every rung).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ladder {
    /// Frames per second of every rung.
    pub frame_rate: u32,
    /// Frames from one keyframe to the next, the same in every rung.
    pub keyframe_frames: u32,
    /// The rungs, each one video rendition.
    pub rungs: Vec<Rung>,
}

/// One rung of a [`Ladder`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rung {
    /// Rendition name (`[A-Za-z0-9_-]`, at most 64 bytes, not `a0`; else
    /// the rung is named `v{index}`).
    pub name: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Video bit rate in kbit/s.
    pub bitrate_kbps: u32,
}

/// Listening sockets already bound, passed in by a process being upgraded
/// (or systemd); each replaces binding its address.
#[derive(Debug, Default)]
pub struct Sockets {
    /// The RTMP listener.
    pub rtmp: Option<std::net::TcpListener>,
    /// The SRT socket.
    pub srt: Option<std::net::UdpSocket>,
}

/// The running listeners.
#[derive(Debug)]
pub struct IngestHandle {
    /// The bound RTMP address, if RTMP listens.
    pub rtmp_addr: Option<SocketAddr>,
    /// The bound SRT address, if SRT listens.
    pub srt_addr: Option<SocketAddr>,
    /// Duplicates of the listening sockets, for a process that takes over.
    pub sockets: Vec<(Protocol, std::os::fd::OwnedFd)>,
    stop: tokio::sync::watch::Sender<bool>,
}

/// An ingest protocol.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// RTMP, over TCP.
    Rtmp,
    /// SRT, over UDP.
    Srt,
}

impl IngestHandle {
    /// Stops accepting publishers (another process took the sockets over):
    /// the listeners close here, and SRT callers of this process end with
    /// them, so they reconnect to the new one at once; RTMP publishers
    /// already connected go on until the process exits.
    pub fn stop_listening(&self) {
        let _ = self.stop.send(true);
    }
}

/// Publishers refused so far in this process: a bad name, a bad key, a
/// source shut out for guessing keys, a stream that is busy, or (once its
/// tracks are known) a returning publisher whose codec configuration
/// differs. Connections refused for their rate and dropped datagrams are
/// not publishers ([`guard::Refused::Rate`], [`guard::Refused::Datagram`]).
pub fn refused_total() -> u64 {
    guard::Refused::ALL
        .iter()
        .filter(|r| !matches!(r, guard::Refused::Rate | guard::Refused::Datagram))
        .map(|r| r.total())
        .sum()
}

/// What the listeners share.
pub(crate) struct Ctx {
    pub(crate) registry: Arc<Registry>,
    keys: KeyCheck,
    pub(crate) guard: guard::Guard,
}

/// Why a publisher was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No `live/{stream}` with a valid name.
    Malformed,
    /// The key check said no.
    Key,
    /// Another publisher is sending on the stream.
    Busy,
}

impl Refusal {
    pub(crate) fn reason(self) -> &'static str {
        match self {
            Refusal::Malformed => "malformed application or stream name",
            Refusal::Key => "wrong or missing key",
            Refusal::Busy => "the stream has a live publisher",
        }
    }

    pub(crate) fn rtmp_code(self) -> &'static str {
        match self {
            Refusal::Malformed | Refusal::Busy => "NetStream.Publish.BadName",
            Refusal::Key => "NetStream.Publish.Unauthorized",
        }
    }
}

impl Ctx {
    /// Checks a publisher's claim from `peer`; logs and counts a refusal.
    /// A source shut out for guessing keys is refused as a wrong key would
    /// be, whatever key it sends now.
    pub(crate) fn authorize(
        &self,
        claim: Option<names::Claim>,
        protocol: &'static str,
        peer: IpAddr,
    ) -> Result<(String, StreamSettings), Refusal> {
        let (stream, refusal, counted) = match claim {
            None => (String::new(), Refusal::Malformed, guard::Refused::Malformed),
            // Counted by the guard; not logged per attempt.
            Some(_) if self.guard.locked_out(peer) => return Err(Refusal::Key),
            Some(c) => match (self.keys)(&c.stream, &c.key) {
                None => {
                    static LOCKED: headwater_common::lograte::LogRate =
                        headwater_common::lograte::LogRate::new();
                    if self.guard.wrong_key(peer)
                        && let Some(suppressed) = LOCKED.allow()
                    {
                        tracing::warn!(protocol, client.addr = %peer, suppressed, "too many wrong keys: source shut out");
                    }
                    (c.stream, Refusal::Key, guard::Refused::Key)
                }
                Some(_) if self.registry.busy(&c.stream) => {
                    self.guard.right_key(peer);
                    (c.stream, Refusal::Busy, guard::Refused::Busy)
                }
                Some(settings) => {
                    self.guard.right_key(peer);
                    return Ok((c.stream, settings));
                }
            },
        };
        counted.count();
        // Key guessing and handshake floods come from outside: bounded.
        static REFUSED: headwater_common::lograte::LogRate =
            headwater_common::lograte::LogRate::new();
        if let Some(suppressed) = REFUSED.allow() {
            tracing::warn!(protocol, stream = %stream, reason = refusal.reason(), suppressed, "publisher refused");
        }
        Err(refusal)
    }
}

/// Binds the listeners (errors name the address), then serves them on a
/// runtime of their own threads; returns the bound addresses. The registry's
/// timers ([`Registry::run_timers`]) run on that runtime too, which runs
/// for the rest of the process. May be called from inside another runtime.
pub fn start(
    config: IngestConfig,
    registry: Arc<Registry>,
    keys: KeyCheck,
) -> Result<IngestHandle, Error> {
    start_with(config, Sockets::default(), registry, keys)
}

/// As [`start`], serving `sockets` where they are given.
pub fn start_with(
    config: IngestConfig,
    sockets: Sockets,
    registry: Arc<Registry>,
    keys: KeyCheck,
) -> Result<IngestHandle, Error> {
    gstreamer::init().map_err(|e| Error::Pipeline(e.to_string()))?;
    for element in [
        "appsrc",
        "flvdemux",
        "tsdemux",
        "h264parse",
        "aacparse",
        "appsink",
    ] {
        if gstreamer::ElementFactory::find(element).is_none() {
            return Err(Error::Pipeline(format!(
                "the {element} element is not installed"
            )));
        }
    }
    // Two workers: SRT's retransmission timers must not wait behind a
    // connection task that is starting or stopping a pipeline (those
    // GStreamer state changes block for a moment).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ingest")
        .enable_all()
        .build()
        .map_err(Error::Runtime)?;
    // Bind from a thread of our own: `block_on` here would panic if the
    // caller is itself inside a runtime.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("ingest".into())
        .spawn(move || {
            runtime.block_on(async move {
                let (rtmp, srt, dups) = match bind(&config, sockets).await {
                    Ok(bound) => bound,
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                let (stop, stopped) = tokio::sync::watch::channel(false);
                let handle = IngestHandle {
                    rtmp_addr: rtmp.as_ref().and_then(|l| l.local_addr().ok()),
                    srt_addr: srt.as_ref().map(|b| b.addr),
                    sockets: dups,
                    stop,
                };
                if let Some(addr) = handle.rtmp_addr {
                    tracing::info!(rtmp = %addr, "RTMP listening");
                }
                if let Some(addr) = handle.srt_addr {
                    tracing::info!(srt = %addr, "SRT listening");
                }
                let ctx = Arc::new(Ctx {
                    registry,
                    keys,
                    guard: guard::Guard::new(config.limits),
                });
                tokio::spawn(ctx.registry.clone().run_timers());
                if let Some(l) = rtmp {
                    tokio::spawn(until_stopped(rtmp::serve(l, ctx.clone()), stopped.clone()));
                }
                if let Some(b) = srt {
                    tokio::spawn(until_stopped(srt::serve(b, ctx.clone()), stopped));
                }
                if tx.send(Ok(handle)).is_ok() {
                    std::future::pending::<()>().await
                }
            })
        })
        .map_err(Error::Runtime)?;
    rx.recv()
        .map_err(|_| Error::Runtime(std::io::Error::other("the ingest thread died")))?
}

/// An accept loop, until `stop` says another process serves its socket
/// (the loop's future, and with it the listener, is dropped then). A
/// dropped handle stops nothing.
async fn until_stopped(
    serve: impl Future<Output = ()>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopped = async move {
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        () = serve => {}
        () = stopped => {}
    }
}

/// The bound listeners, and duplicates of their sockets.
type Bound = (
    Option<tokio::net::TcpListener>,
    Option<srt::Bound>,
    Vec<(Protocol, std::os::fd::OwnedFd)>,
);

async fn bind(config: &IngestConfig, sockets: Sockets) -> Result<Bound, Error> {
    let mut dups = Vec::new();
    let rtmp = match (config.rtmp_listen, sockets.rtmp) {
        (Some(addr), given) => {
            let err = |source| Error::Bind { addr, source };
            let l = match given {
                Some(l) => l,
                None => std::net::TcpListener::bind(addr).map_err(err)?,
            };
            l.set_nonblocking(true).map_err(err)?;
            dups.push((Protocol::Rtmp, l.try_clone().map_err(err)?.into()));
            Some(tokio::net::TcpListener::from_std(l).map_err(err)?)
        }
        (None, _) => None,
    };
    let srt = match (config.srt_listen, sockets.srt) {
        (Some(addr), given) => {
            let err = |source| Error::Bind { addr, source };
            let s = match given {
                Some(s) => s,
                None => std::net::UdpSocket::bind(addr).map_err(err)?,
            };
            s.set_nonblocking(true).map_err(err)?;
            dups.push((Protocol::Srt, s.try_clone().map_err(err)?.into()));
            let s = tokio::net::UdpSocket::from_std(s).map_err(err)?;
            Some(srt::bind(s, config.srt_passphrase.as_deref()).await?)
        }
        (None, _) => None,
    };
    Ok((rtmp, srt, dups))
}
