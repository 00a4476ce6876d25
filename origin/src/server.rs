//! Thread-per-core serving: one current-thread tokio runtime per worker,
//! each with its own `SO_REUSEPORT` listener, so the kernel spreads
//! connections across workers and a connection never leaves its worker.
//! What workers share is read-mostly: the configuration and the caches.

use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::error::OriginError;
use crate::shared::{Closing, Shared, Slot};

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
    pub fn bind(config: Config) -> Result<Self, OriginError> {
        Self::bind_with(Shared::new(config)?)
    }

    /// Binds one listener per worker for `shared`'s configuration.
    pub fn bind_with(shared: Shared) -> Result<Self, OriginError> {
        Self::bind_inheriting(shared, Vec::new())
    }

    /// As [`Server::bind_with`], but serving `inherited` listeners (from a
    /// process being upgraded, or systemd): one worker each, and more
    /// bound beside them on their address up to the configured count.
    pub fn bind_inheriting(
        mut shared: Shared,
        inherited: Vec<StdListener>,
    ) -> Result<Self, OriginError> {
        let nofile = raise_fd_limit();
        let threads = shared.config.worker_threads().max(inherited.len());
        shared.connection_limit = connection_limit(
            shared.config.server.max_connections_per_thread,
            nofile,
            threads,
        );
        tracing::info!(
            open_files = nofile,
            per_worker = shared.connection_limit,
            "connection limit"
        );
        let config = &shared.config;
        let mut listeners = inherited;
        for l in &listeners {
            l.set_nonblocking(true)
                .map_err(OriginError::serve("cannot use an inherited listener"))?;
        }
        if listeners.is_empty() {
            listeners.push(reuseport_listener(config.server.listen).map_err(
                OriginError::serve(format!("cannot listen on {}", config.server.listen)),
            )?);
        }
        let local_addr = listeners[0]
            .local_addr()
            .map_err(OriginError::serve("cannot read the listener's address"))?;
        for _ in listeners.len()..threads {
            // Port 0 resolves to one port; every worker binds that same port.
            listeners.push(
                reuseport_listener(local_addr)
                    .map_err(OriginError::serve(format!("cannot listen on {local_addr}")))?,
            );
        }
        Ok(Server {
            shared: Arc::new(shared),
            listeners,
            local_addr,
        })
    }

    /// Duplicates of the listening sockets, to hand to a process that
    /// takes over from this one.
    pub fn listener_fds(&self) -> std::io::Result<Vec<std::os::fd::OwnedFd>> {
        self.listeners
            .iter()
            .map(|l| l.try_clone().map(Into::into))
            .collect()
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Runs the workers until `shutdown` flips to `true`, then lets
    /// in-flight requests finish for up to the configured grace period.
    pub fn run(self, shutdown: watch::Receiver<bool>) -> Result<(), OriginError> {
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
                .spawn(move || -> Result<(), OriginError> {
                    // This worker's metric updates go to cache lines of its own.
                    headwater_common::metrics::set_shard(i);
                    // Blocking threads index files; keep one around, its
                    // memory faulted in, so a first request pays for neither.
                    let rt = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .thread_keep_alive(Duration::from_secs(3600))
                        .build()
                        .map_err(OriginError::serve("cannot build a worker's runtime"))?;
                    rt.block_on(async move {
                        let _ = tokio::task::spawn_blocking(prefault_index_memory).await;
                        let listener = TcpListener::from_std(listener)
                            .map_err(OriginError::serve("cannot register a listener"))?;
                        worker(listener, shared, &mut rx).await;
                        Ok(())
                    })
                })
                .map_err(OriginError::serve("cannot start a worker thread"))?;
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
                Err(_) => {
                    return Err(OriginError::Serve {
                        what: "a worker thread".into(),
                        source: std::io::Error::other("panicked"),
                    });
                }
            }
        }
        let _ = watcher.join();
        Ok(())
    }
}

/// The connections of one worker, for its limit and for shedding.
struct Slots {
    list: Vec<Arc<Slot>>,
    epoch: std::time::Instant,
}

impl Slots {
    fn add(&mut self) -> Arc<Slot> {
        if self.list.len() >= 64 && self.list.len() % 64 == 0 {
            self.list.retain(|s| !s.done.load(Ordering::Relaxed));
        }
        let slot = Arc::new(Slot::new(self.epoch));
        self.list.push(slot.clone());
        slot
    }

    /// Closes the connection that has been idle longest; whether there was one.
    fn shed_oldest_idle(&mut self) -> bool {
        self.list.retain(|s| !s.done.load(Ordering::Relaxed));
        let oldest = self
            .list
            .iter()
            .filter(|s| s.idle_since.load(Ordering::Relaxed) > 0)
            .min_by_key(|s| s.idle_since.load(Ordering::Relaxed));
        match oldest {
            Some(slot) => {
                // Not idle any more: it gets no new request, then closes.
                slot.idle_since.store(0, Ordering::Relaxed);
                slot.shed.notify_one();
                true
            }
            None => false,
        }
    }
}

async fn worker(listener: TcpListener, shared: Arc<Shared>, shutdown: &mut watch::Receiver<bool>) {
    let active = Arc::new(AtomicUsize::new(0));
    let closing = Arc::new(Closing::default());
    let max = shared.connection_limit;
    let mut slots = Slots {
        list: Vec::new(),
        epoch: std::time::Instant::now(),
    };
    let metrics = &shared.metrics.data;
    loop {
        if *shutdown.borrow() {
            break;
        }
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    // At the limit, the connection idle longest makes room;
                    // with none idle, the new one is refused.
                    if active.load(Ordering::Relaxed) >= max && !slots.shed_oldest_idle() {
                        metrics.connections_refused.inc();
                        if let Some(suppressed) = shared.log_limits.connection_limit.allow() {
                            tracing::warn!(limit = max, suppressed, "connection limit reached with no idle connection to close; refusing connections");
                        }
                        drop(stream);
                        continue;
                    }
                    active.fetch_add(1, Ordering::Relaxed);
                    let shared = shared.clone();
                    let active = active.clone();
                    let closing = closing.clone();
                    let slot = slots.add();
                    tokio::spawn(async move {
                        crate::conn::serve(stream, peer, shared, closing, slot.clone()).await;
                        slot.done.store(true, Ordering::Relaxed);
                        active.fetch_sub(1, Ordering::Relaxed);
                    });
                }
                Err(e) => {
                    // EMFILE and friends: free a descriptor if an idle
                    // connection holds one, and back off instead of spinning.
                    slots.shed_oldest_idle();
                    metrics.accept_errors.inc();
                    if let Some(suppressed) = shared.log_limits.accept.allow() {
                        tracing::warn!(error = %e, suppressed, "accept failed");
                    }
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

/// Descriptors kept out of the data plane's connection budget: for the
/// admin listener, ingest, source files, cached segments and the catalog.
/// A quarter of the limit, at least 256.
pub(crate) fn fd_reserve(nofile: u64) -> u64 {
    (nofile / 4).max(256)
}

/// Connections each of `workers` may hold: the configured number (0:
/// unlimited), but never more than the open-file limit allows once the
/// reserve is set aside, so a flood of connections cannot starve the
/// admin plane, ingest and the files every response reads.
pub(crate) fn connection_limit(configured: usize, nofile: u64, workers: usize) -> usize {
    let budget = nofile.saturating_sub(fd_reserve(nofile)) / workers.max(1) as u64;
    let budget = usize::try_from(budget).unwrap_or(usize::MAX).max(16);
    match configured {
        0 => budget,
        n => n.min(budget),
    }
}

/// Raises the soft open-file limit to the hard limit (every connection and
/// every cached source file holds a descriptor) and returns the limit now
/// in force.
pub(crate) fn raise_fd_limit() -> u64 {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if limit.current < limit.maximum {
        limit.current = limit.maximum;
        if setrlimit(Resource::Nofile, limit).is_err() {
            limit = getrlimit(Resource::Nofile);
        }
    }
    limit.current.unwrap_or(u64::MAX)
}
