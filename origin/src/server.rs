//! Thread-per-core serving: one current-thread tokio runtime per worker,
//! each with its own `SO_REUSEPORT` listener, so the kernel spreads
//! connections across workers and a connection never leaves its worker.
//! What workers share is read-mostly: the configuration and the caches.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::Context;
use headwater_packager::{Limits, PackagingConfig};
use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};

use headwater_control_api::catalog::SharedCatalog;
use headwater_control_api::metrics::Metrics;
use headwater_ingest::Registry;

use crate::config::Config;
use crate::gather::GatherCache;
use crate::http::response::FixedHeaders;
use crate::store::Store;

/// State shared by every worker.
pub struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Arc<Store>,
    /// The control API's catalog view: assets that need tokens, signing keys.
    pub(crate) catalog: SharedCatalog,
    pub(crate) metrics: Arc<Metrics>,
    /// Live streams, fed by ingest.
    pub(crate) registry: Arc<Registry>,
    pub(crate) headers: FixedHeaders,
    pub(crate) gather: GatherCache,
    shutdown: AtomicBool,
}

impl Shared {
    /// Builds the shared state from a validated configuration, in directory
    /// mode only (no catalog).
    pub fn new(config: Config) -> Self {
        Self::with_catalog(
            config,
            headwater_control_api::catalog::empty(),
            Arc::new(Metrics::new()),
            Arc::new(Registry::new(Default::default())),
        )
    }

    /// Builds the shared state with a catalog view and the metrics to record into.
    pub fn with_catalog(
        config: Config,
        catalog: SharedCatalog,
        metrics: Arc<Metrics>,
        registry: Arc<Registry>,
    ) -> Self {
        let limits = Limits {
            max_moov_bytes: config.media.max_metadata_mb << 20,
            ..Limits::default()
        };
        let store = Store::new(
            config.media.root.clone(),
            limits,
            PackagingConfig {
                target_duration: config.packaging.segment_duration,
            },
            Duration::from_millis(config.media.check_interval_ms),
            config.media.index_cache_mb << 20,
            catalog.clone(),
            metrics.data.clone(),
        );
        let headers = FixedHeaders::new(&config.http);
        let gather = GatherCache::new(
            config.media.segment_cache_mb << 20,
            config.media.segment_cache_dir.clone(),
            metrics.data.segment_hits.clone(),
            metrics.data.segment_misses.clone(),
        );
        Shared {
            config,
            store: Arc::new(store),
            catalog,
            metrics,
            registry,
            headers,
            gather,
            shutdown: AtomicBool::new(false),
        }
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// A bound server, ready to run.
pub struct Server {
    shared: Arc<Shared>,
    listeners: Vec<StdListener>,
    local_addr: SocketAddr,
}

/// Memory the first index build of a worker finds already mapped.
const PREFAULT_BYTES: usize = 8 << 20;

/// Runs on a worker's kept blocking thread, the one that indexes files:
/// leaves that thread's malloc arena with [`PREFAULT_BYTES`] of pages
/// already faulted in, so the first request after a restart does not pay
/// for them (indexing a one-hour asset touches ~3.5 MB of new memory, ~900
/// page faults at ~3.3 µs each on a VM: benches/README.md, finding 5).
///
/// With glibc the first block is mapped on its own and freeing it raises
/// the size below which malloc serves from the arena; the second block
/// then comes from the arena and stays there, faulted in, when freed.
/// Another allocator just allocates and frees twice.
fn prefault_index_memory() {
    for _ in 0..2 {
        // Non-zero, so every page is written (zeroed memory may be left unmapped).
        let block = vec![1u8; PREFAULT_BYTES];
        std::hint::black_box(&block);
    }
}

fn reuseport_listener(addr: SocketAddr) -> std::io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(false)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

impl Server {
    /// Binds one listener per worker on the configured address, in
    /// directory mode only.
    pub fn bind(config: Config) -> anyhow::Result<Self> {
        Self::bind_with(Shared::new(config))
    }

    /// Binds one listener per worker for `shared`'s configuration.
    pub fn bind_with(shared: Shared) -> anyhow::Result<Self> {
        let config = &shared.config;
        let threads = config.worker_threads();
        let first = reuseport_listener(config.server.listen)
            .with_context(|| format!("cannot listen on {}", config.server.listen))?;
        let local_addr = first.local_addr()?;
        let mut listeners = vec![first];
        for _ in 1..threads {
            // Port 0 resolves to one port; every worker binds that same port.
            listeners.push(
                reuseport_listener(local_addr)
                    .with_context(|| format!("cannot listen on {local_addr}"))?,
            );
        }
        raise_fd_limit();
        Ok(Server {
            shared: Arc::new(shared),
            listeners,
            local_addr,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs the workers until `shutdown` flips to `true`, then lets
    /// in-flight requests finish for up to the configured grace period.
    pub fn run(self, shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        let Server {
            shared,
            listeners,
            local_addr,
        } = self;
        tracing::info!(
            listen = %local_addr,
            workers = listeners.len(),
            media_root = %shared.config.media.root.display(),
            "serving"
        );
        let mut handles = Vec::new();
        for (i, listener) in listeners.into_iter().enumerate() {
            let shared = shared.clone();
            let mut rx = shutdown.clone();
            let handle = std::thread::Builder::new()
                .name(format!("headwater-w{i}"))
                .spawn(move || -> anyhow::Result<()> {
                    // This worker's metric updates go to cache lines of its own.
                    headwater_control_api::metrics::set_shard(i);
                    // Blocking threads index files; keep one around, its
                    // memory faulted in, so a first request pays for neither.
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .thread_keep_alive(Duration::from_secs(3600))
                        .build()?;
                    rt.block_on(async move {
                        let _ = tokio::task::spawn_blocking(prefault_index_memory).await;
                        let listener = TcpListener::from_std(listener)?;
                        worker(listener, shared, &mut rx).await;
                        Ok(())
                    })
                })?;
            handles.push(handle);
        }
        // Mirror the shutdown signal into the flag connections poll.
        let mut rx = shutdown;
        let watcher_shared = shared.clone();
        let watcher = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime for the shutdown watcher");
            rt.block_on(async {
                while !*rx.borrow() {
                    if rx.changed().await.is_err() {
                        break;
                    }
                }
            });
            watcher_shared.shutdown.store(true, Ordering::Relaxed);
        });
        for h in handles {
            match h.join() {
                Ok(r) => r?,
                Err(_) => anyhow::bail!("a worker thread panicked"),
            }
        }
        let _ = watcher.join();
        Ok(())
    }
}

/// One worker's shutdown signal for its own connections. Set once; an idle
/// connection waits on it beside its read. Per worker, so that waiting
/// touches no cache line another core writes: with every connection
/// waiting on the process's watch channel, registering and dropping the
/// waiter around each read moved its lock between the cores, request after
/// request (`benches/README.md`, finding 9).
#[derive(Default)]
pub(crate) struct Closing {
    set: AtomicBool,
    pub(crate) notify: Notify,
}

impl Closing {
    /// Whether the worker is shutting down.
    pub(crate) fn is_set(&self) -> bool {
        self.set.load(Ordering::SeqCst)
    }

    fn close(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

async fn worker(listener: TcpListener, shared: Arc<Shared>, shutdown: &mut watch::Receiver<bool>) {
    let active = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(Closing::default());
    let max = shared.config.server.max_connections_per_thread;
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    if active.load(Ordering::Relaxed) >= max {
                        tracing::warn!(limit = max, "connection limit reached; refusing a connection");
                        drop(stream);
                        continue;
                    }
                    active.fetch_add(1, Ordering::Relaxed);
                    let shared = shared.clone();
                    let active = active.clone();
                    let closing = closing.clone();
                    tokio::spawn(async move {
                        crate::conn::serve(stream, peer, shared, closing).await;
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = shutdown.changed() => {}
        }
    }
    drop(listener);
    closing.close();
    let grace = Duration::from_secs(shared.config.server.shutdown_grace_secs);
    let deadline = tokio::time::Instant::now() + grace;
    while active.load(Ordering::Relaxed) > 0 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Raises the soft open-file limit to the hard limit: every connection and
/// every cached source file holds a descriptor.
fn raise_fd_limit() {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        let _ = setrlimit(Resource::Nofile, limit);
    }
}
