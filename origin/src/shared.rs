//! What the data plane's workers share: the configuration, the store and
//! caches, the catalog view, metrics, live streams (`Shared`), and what a
//! worker and its connections share (`Closing`, `Slot`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use headwater_packager::{Limits, PackagingConfig};
use tokio::sync::Notify;

use headwater_common::catalog::SharedCatalog;
use headwater_common::media_root::MediaRoot;
use headwater_common::metrics::Metrics;
use headwater_ingest::Registry;
use headwater_objects::{Bucket, ChunkCache};

use crate::config::Config;
use crate::error::OriginError;
use crate::gather::GatherCache;
use crate::http::response::FixedHeaders;
use crate::store::{Library, Store};

/// State shared by every worker.
pub struct Shared {
    pub(crate) config: Config,
    pub(crate) store: Arc<Store>,
    /// The control API's catalog view: assets that need tokens, signing keys.
    pub(crate) catalog: SharedCatalog,
    pub(crate) metrics: Arc<Metrics>,
    /// Live streams, fed by ingest.
    pub(crate) registry: Arc<Registry>,
    /// With `[cluster]`: live streams on air on other nodes, pulled from them.
    pub(crate) relay: Option<crate::relay::Relay>,
    pub(crate) headers: FixedHeaders,
    pub(crate) gather: GatherCache,
    /// Connections each worker may hold (set when the listeners are bound,
    /// from the configuration and the open-file limit).
    pub(crate) connection_limit: usize,
    /// Warnings that could repeat per connection or per request.
    pub(crate) log_limits: LogLimits,
    pub(crate) shutdown: AtomicBool,
}

/// Rate limits of the data plane's warnings that a client can cause.
#[derive(Default)]
pub(crate) struct LogLimits {
    pub(crate) accept: headwater_common::lograte::LogRate,
    pub(crate) connection_limit: headwater_common::lograte::LogRate,
}

impl Shared {
    /// Builds the shared state from a validated configuration, in directory
    /// mode only (no catalog).
    pub fn new(config: Config) -> Result<Self, OriginError> {
        Self::with_catalog(
            config,
            headwater_common::catalog::empty(),
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
    ) -> Result<Self, OriginError> {
        let limits = Limits {
            max_moov_bytes: config.media.max_metadata_mb << 20,
            ..Limits::default()
        };
        let store = Store::new(
            library(&config, &metrics)?,
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
        Ok(Shared {
            config,
            store: Arc::new(store),
            catalog,
            metrics,
            registry,
            relay: None,
            headers,
            gather,
            connection_limit: usize::MAX,
            log_limits: LogLimits::default(),
            shutdown: AtomicBool::new(false),
        })
    }

    /// Serves live streams that other nodes have on air (as `on_air`
    /// says, kept fresh by the control plane's heartbeat) by pulling them
    /// from those nodes.
    pub fn with_cluster(mut self, on_air: headwater_common::cluster::SharedOnAir) -> Self {
        let target = Duration::from_secs_f64(self.config.ingest.segment_duration);
        self.relay = Some(crate::relay::Relay::new(on_air, target));
        self
    }

    /// Whether the library is in a bucket.
    pub fn library_in_bucket(&self) -> bool {
        self.store.in_bucket()
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
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

    pub(crate) fn close(&self) {
        self.set.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }
}

/// A connection as its worker sees it: whether it is idle (between
/// requests on a kept-alive connection, and since when) and the signal
/// that closes it to make room. Written by its own connection task and
/// read by its own worker's accept loop only: one core's cache lines.
pub(crate) struct Slot {
    /// Milliseconds since the worker started, plus one, at which the
    /// connection went idle; 0 while a request is in progress.
    pub(crate) idle_since: AtomicU64,
    /// Wakes the connection's idle wait: it closes.
    pub(crate) shed: Notify,
    pub(crate) done: AtomicBool,
    /// The instant the worker's idle times count from.
    epoch: std::time::Instant,
}

impl Slot {
    pub(crate) fn new(epoch: std::time::Instant) -> Self {
        Slot {
            idle_since: AtomicU64::new(0),
            shed: Notify::new(),
            done: AtomicBool::new(false),
            epoch,
        }
    }

    /// Marks the connection idle (waiting for a request) or busy.
    pub(crate) fn set_idle(&self, idle: bool) {
        let v = if idle {
            self.epoch.elapsed().as_millis() as u64 + 1
        } else {
            0
        };
        self.idle_since.store(v, Ordering::Relaxed);
    }
}

/// The library `media.root` names: a directory, or a bucket with its chunk cache.
fn library(config: &Config, metrics: &Metrics) -> Result<Library, OriginError> {
    let m = &config.media;
    let Some(url) = config.bucket_url() else {
        return Ok(Library::Dir(MediaRoot::new(m.root.clone(), m.symlinks)));
    };
    let options = config.bucket_options();
    let other = |e: headwater_objects::Error| std::io::Error::other(e.to_string());
    let bucket = Bucket::open(&url, &options)
        .map_err(other)
        .map_err(OriginError::serve(format!("cannot use {url}")))?;
    let dir = config.object_cache_dir();
    let chunks = ChunkCache::open(&dir, m.object_cache_mb << 20, m.object_chunk_kb << 10)
        .map_err(other)
        .map_err(OriginError::serve(format!(
            "cannot keep object chunks in {}",
            dir.display()
        )))?;
    tracing::info!(library = %url, chunk_cache = %dir.display(), "media library in object storage");
    Ok(Library::Bucket {
        bucket: Arc::new(bucket),
        chunks: Arc::new(chunks),
        metrics: metrics.objects.clone(),
    })
}
