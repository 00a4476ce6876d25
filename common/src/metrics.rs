//! Prometheus metrics for both planes, served on the admin listener.
//!
//! The data plane's handles are resolved once at start-up into flat tables
//! indexed by route kind and status, so recording a request is a few
//! relaxed atomic adds: no label lookup, no lock, no allocation on the
//! request path. The histograms here are our own lock-free ones (the
//! crate's `Histogram` takes a lock per observation).
//!
//! Counters and histograms are sharded: each data-plane worker thread adds
//! to its own cache lines ([`set_shard`]), and a scrape sums the shards.
//! With one shared atomic per series, every request on one core took the
//! counter's cache line from the other core; this, with the other writes
//! both workers made per request, cost the two-core playlist workload about
//! 4 % of its throughput (`benches/README.md`, finding 9).

use std::cell::Cell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::{MetricType, TypedMetric};
use prometheus_client::registry::Registry;

/// Latency buckets, in seconds: 50 µs to 10 s.
const BUCKETS: [f64; 16] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 10.0,
];

/// Shards per counter or histogram: shard 0 for threads that are not
/// data-plane workers, the others for workers (several workers share one
/// when there are more of them).
const SHARDS: usize = 8;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// Makes the calling thread, data-plane worker number `worker`, record
/// into shards of its own.
pub fn set_shard(worker: usize) {
    SHARD.with(|s| s.set(1 + worker % (SHARDS - 1)));
}

fn shard() -> usize {
    SHARD.with(Cell::get)
}

/// One shard's atomic on a cache line of its own.
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicU64);

/// A monotonic counter, sharded by thread (see the module doc).
#[derive(Clone, Debug, Default)]
pub struct Counter(Arc<[Padded; SHARDS]>);

impl Counter {
    /// Adds one.
    pub fn inc(&self) {
        self.inc_by(1);
    }

    /// Adds `n`.
    pub fn inc_by(&self, n: u64) {
        self.0[shard()].0.fetch_add(n, Ordering::Relaxed);
    }

    /// The total over every shard.
    pub fn get(&self) -> u64 {
        self.0.iter().map(|p| p.0.load(Ordering::Relaxed)).sum()
    }
}

impl TypedMetric for Counter {
    const TYPE: MetricType = MetricType::Counter;
}

impl EncodeMetric for Counter {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        encoder.encode_counter::<NoLabelSet, _, u64>(&self.get(), None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Counter
    }
}

/// A histogram of durations with fixed buckets and atomic counts, sharded
/// by thread like [`Counter`].
#[derive(Clone, Debug, Default)]
pub struct AtomicHistogram(Arc<[HistogramShard; SHARDS]>);

#[derive(Debug, Default)]
#[repr(align(64))]
struct HistogramShard {
    /// One per bucket, plus +Inf.
    counts: [AtomicU64; BUCKETS.len() + 1],
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    /// Records one duration.
    pub fn observe_nanos(&self, nanos: u64) {
        let secs = nanos as f64 / 1e9;
        let i = BUCKETS
            .iter()
            .position(|b| secs <= *b)
            .unwrap_or(BUCKETS.len());
        let shard = &self.0[shard()];
        shard.counts[i].fetch_add(1, Ordering::Relaxed);
        shard.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }
}

impl TypedMetric for AtomicHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for AtomicHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let mut buckets = [(0.0, 0u64); BUCKETS.len() + 1];
        let mut count = 0;
        for (i, slot) in buckets.iter_mut().enumerate() {
            let n: u64 = self
                .0
                .iter()
                .map(|s| s.counts[i].load(Ordering::Relaxed))
                .sum();
            count += n;
            *slot = (BUCKETS.get(i).copied().unwrap_or(f64::MAX), n);
        }
        let sum_nanos: u64 = self
            .0
            .iter()
            .map(|s| s.sum_nanos.load(Ordering::Relaxed))
            .sum();
        let sum = sum_nanos as f64 / 1e9;
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        MetricType::Histogram
    }
}

/// Labels of a request metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `data` or `admin`.
    pub plane: &'static str,
    /// Route kind (data) or route template (admin).
    pub route: String,
    /// HTTP status code.
    pub status: String,
}

/// Labels of a cache metric.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CacheLabels {
    /// `asset` (packaged assets) or `segment` (gathered payloads, TS segments).
    pub cache: &'static str,
}

/// Labels of the relay counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RelayLabels {
    /// `answered` (by the node asked), `failed` (it answered with an
    /// error, or broke off), `unavailable` (no node could be reached in time).
    pub outcome: &'static str,
}

/// What the data plane counts of live requests passed to other nodes.
#[derive(Clone, Debug, Default)]
pub struct RelayMetrics {
    /// Answered by the node asked (whatever its status).
    pub answered: Counter,
    /// The node's answer was not one we pass on (a broken connection, a
    /// malformed or late answer).
    pub failed: Counter,
    /// No node with the stream could be reached in time.
    pub unavailable: Counter,
    /// Nodes that refused a connection, so the next one was asked.
    pub unreachable_nodes: Counter,
}

/// Labels of the config reload counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `applied` or `refused` (the file did not load or validate).
    pub result: &'static str,
}

/// Labels of the object storage's error counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ObjectErrorLabels {
    /// `timeout`, `unavailable`, `changed` (an object replaced since it was
    /// indexed), `missing`, `cache` (the local chunk cache).
    pub kind: &'static str,
}

type PlainCounter = prometheus_client::metrics::counter::Counter;

/// A library in object storage: its chunk cache and the storage's errors
/// (all zero for a directory library). Recorded off the workers (chunk
/// fetches run on the blocking pool), so plain shared atomics.
#[derive(Clone, Debug)]
pub struct ObjectMetrics {
    /// Chunks found in the local cache.
    pub chunk_hits: PlainCounter,
    /// Chunks fetched from the storage (one ranged GET each).
    pub chunk_fetches: PlainCounter,
    /// Bytes fetched for chunks.
    pub fetched_bytes: PlainCounter,
    /// Failed calls to the storage, by kind.
    pub errors: Family<ObjectErrorLabels, PlainCounter>,
    /// Bytes held in the chunk cache.
    pub cached_bytes: Gauge,
    /// 1 while the storage answers, 0 while it does not.
    pub up: Gauge,
}

impl ObjectMetrics {
    fn register(registry: &mut Registry) -> Self {
        let m = ObjectMetrics {
            chunk_hits: registered(
                registry,
                "object_chunk_hits",
                "Chunks of objects found in the local chunk cache",
            ),
            chunk_fetches: registered(
                registry,
                "object_chunk_fetches",
                "Chunks of objects fetched from object storage (one ranged GET each)",
            ),
            fetched_bytes: registered(
                registry,
                "object_fetched_bytes",
                "Bytes of chunks fetched from object storage",
            ),
            errors: registered(
                registry,
                "object_errors",
                "Failed calls to object storage, by kind",
            ),
            cached_bytes: registered(
                registry,
                "object_cache_bytes",
                "Bytes held in the local chunk cache",
            ),
            up: registered(
                registry,
                "object_storage_up",
                "1 while the library's object storage answers (or the library is a directory)",
            ),
        };
        for kind in ["timeout", "unavailable", "changed", "missing", "cache"] {
            let _ = m.errors.get_or_create(&ObjectErrorLabels { kind });
        }
        m.up.set(1);
        m
    }
}

/// Labels of the job gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct JobLabels {
    /// `queued`, `running`, `succeeded`, `failed`.
    pub state: &'static str,
}

/// The data plane's kinds of route: the `route` label of its request
/// series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteKind {
    /// A multivariant playlist (fMP4 or TS, VOD or live).
    HlsMultivariant,
    /// A media, I-frame or subtitle playlist.
    HlsPlaylist,
    /// An MPD.
    DashManifest,
    /// An init segment.
    Init,
    /// An fMP4 media segment, part, span, keyframe or trick resource.
    Segment,
    /// An MPEG-TS segment or span.
    TsSegment,
    /// A WebVTT file.
    Subtitles,
    /// `/healthz`, `/readyz`, `/time`.
    Health,
    /// A well-formed URL that names nothing.
    NotFound,
    /// A malformed request.
    BadRequest,
}

impl RouteKind {
    /// Every kind, in the order of [`DataPlane`]'s tables.
    pub const ALL: [RouteKind; 10] = [
        RouteKind::HlsMultivariant,
        RouteKind::HlsPlaylist,
        RouteKind::DashManifest,
        RouteKind::Init,
        RouteKind::Segment,
        RouteKind::TsSegment,
        RouteKind::Subtitles,
        RouteKind::Health,
        RouteKind::NotFound,
        RouteKind::BadRequest,
    ];

    /// The `route` label.
    pub fn label(self) -> &'static str {
        match self {
            RouteKind::HlsMultivariant => "hls_multivariant",
            RouteKind::HlsPlaylist => "hls_playlist",
            RouteKind::DashManifest => "dash_manifest",
            RouteKind::Init => "init",
            RouteKind::Segment => "segment",
            RouteKind::TsSegment => "ts_segment",
            RouteKind::Subtitles => "subtitles",
            RouteKind::Health => "health",
            RouteKind::NotFound => "not_found",
            RouteKind::BadRequest => "bad_request",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Statuses with their own series; anything else counts as `other`.
const STATUSES: [u16; 15] = [
    200, 204, 206, 304, 400, 403, 404, 405, 412, 416, 422, 431, 500, 503, 0,
];

fn status_index(status: u16) -> usize {
    STATUSES
        .iter()
        .position(|s| *s == status)
        .unwrap_or(STATUSES.len() - 1)
}

/// Pre-resolved data-plane handles.
#[derive(Clone, Debug)]
pub struct DataPlane {
    requests: Vec<Counter>,
    latency: Vec<AtomicHistogram>,
    /// Response bytes written (heads and bodies).
    pub bytes_sent: Counter,
    /// Connections open now.
    pub open_connections: Gauge,
    /// Packaged-asset cache hits.
    pub asset_hits: Counter,
    /// Packaged-asset cache misses (builds or revalidations).
    pub asset_misses: Counter,
    /// Segment cache hits.
    pub segment_hits: Counter,
    /// Segment cache misses.
    pub segment_misses: Counter,
    /// Requests refused for a missing or invalid playback token.
    pub token_refusals: Counter,
    /// Connections closed at accept: the limit reached and none idle to shed.
    pub connections_refused: Counter,
    /// Failed `accept` calls (out of descriptors and the like).
    pub accept_errors: Counter,
    /// Live requests passed to other nodes (`[cluster]`).
    pub relay: RelayMetrics,
}

impl DataPlane {
    /// Records one request: its route's kind, status and time to the last byte.
    pub fn record(&self, route: RouteKind, status: u16, nanos: u64) {
        let i = route.index() * STATUSES.len() + status_index(status);
        self.requests[i].inc();
        self.latency[i].observe_nanos(nanos);
    }
}

/// Every metric, and the registry that encodes them.
pub struct Metrics {
    /// The registry `/metrics` encodes.
    pub registry: Registry,
    /// Data-plane handles.
    pub data: DataPlane,
    admin_requests: Family<RequestLabels, Counter>,
    admin_latency: Family<RequestLabels, AtomicHistogram>,
    /// Jobs by state, set from the database at every scrape.
    pub jobs: Family<JobLabels, Gauge>,
    config_reloads: Family<ReloadLabels, Counter>,
    config_reload_ok: Gauge,
    /// Log lines left out by rate limits, caught up from the process-wide
    /// total at every scrape.
    log_suppressed: Counter,
    /// The library's object storage.
    pub objects: ObjectMetrics,
}

/// A new metric, registered under `name`; the handle kept to record.
fn registered<M>(registry: &mut Registry, name: &str, help: &str) -> M
where
    M: Default + Clone + prometheus_client::registry::Metric,
{
    let metric = M::default();
    registry.register(name, help, metric.clone());
    metric
}

impl DataPlane {
    /// The data plane's handles: every (route, status) pair of the request
    /// families resolved once, and the plane's own counters.
    fn register(
        registry: &mut Registry,
        requests: &Family<RequestLabels, Counter>,
        latency: &Family<RequestLabels, AtomicHistogram>,
    ) -> Self {
        let mut table_requests = Vec::new();
        let mut table_latency = Vec::new();
        for route in RouteKind::ALL {
            for status in STATUSES {
                let labels = RequestLabels {
                    plane: "data",
                    route: route.label().to_owned(),
                    status: if status == 0 {
                        "other".to_owned()
                    } else {
                        status.to_string()
                    },
                };
                table_requests.push(requests.get_or_create(&labels).clone());
                table_latency.push(latency.get_or_create(&labels).clone());
            }
        }
        let bytes_sent = registered(
            registry,
            "data_sent_bytes",
            "Response bytes written by the data plane",
        );
        let open_connections = registered(
            registry,
            "data_open_connections",
            "Data-plane connections open now",
        );
        let hits: Family<CacheLabels, Counter> = registered(registry, "cache_hits", "Cache hits");
        let misses: Family<CacheLabels, Counter> =
            registered(registry, "cache_misses", "Cache misses");
        let cache = |f: &Family<CacheLabels, Counter>, cache| {
            f.get_or_create(&CacheLabels { cache }).clone()
        };
        DataPlane {
            requests: table_requests,
            latency: table_latency,
            bytes_sent,
            open_connections,
            asset_hits: cache(&hits, "asset"),
            asset_misses: cache(&misses, "asset"),
            segment_hits: cache(&hits, "segment"),
            segment_misses: cache(&misses, "segment"),
            token_refusals: registered(
                registry,
                "data_token_refusals",
                "Data-plane requests refused for a missing or invalid playback token",
            ),
            connections_refused: registered(
                registry,
                "data_connections_refused",
                "Data-plane connections closed at accept: the per-worker limit reached and no idle connection to close",
            ),
            accept_errors: registered(
                registry,
                "data_accept_errors",
                "Failed accepts on the data-plane listeners (out of file descriptors and the like)",
            ),
            relay: RelayMetrics::register(registry),
        }
    }
}

impl RelayMetrics {
    fn register(registry: &mut Registry) -> Self {
        let outcomes: Family<RelayLabels, Counter> = registered(
            registry,
            "data_relayed_requests",
            "Live requests passed to the node with the stream, by outcome",
        );
        let outcome = |outcome| outcomes.get_or_create(&RelayLabels { outcome }).clone();
        RelayMetrics {
            answered: outcome("answered"),
            failed: outcome("failed"),
            unavailable: outcome("unavailable"),
            unreachable_nodes: registered(
                registry,
                "data_relay_unreachable_nodes",
                "Nodes listed with a live stream that refused a connection (the next was asked)",
            ),
        }
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("headwater");
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, AtomicHistogram>::default();
        registry.register(
            "http_requests",
            "HTTP requests by plane, route and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time from a complete request head to the last byte of the response",
            latency.clone(),
        );
        let data = DataPlane::register(&mut registry, &requests, &latency);
        let jobs: Family<JobLabels, Gauge> =
            registered(&mut registry, "jobs", "Transcode jobs by state");
        for state in ["queued", "running", "succeeded", "failed"] {
            let _ = jobs.get_or_create(&JobLabels { state });
        }
        let config_reloads: Family<ReloadLabels, Counter> = registered(
            &mut registry,
            "config_reloads",
            "Config reloads (SIGHUP) by result",
        );
        for result in ["applied", "refused"] {
            let _ = config_reloads.get_or_create(&ReloadLabels { result });
        }
        let config_reload_ok: Gauge = registered(
            &mut registry,
            "config_last_reload_successful",
            "1 when the last config reload was applied (or none was asked for), 0 when it was refused",
        );
        config_reload_ok.set(1);
        let log_suppressed = registered(
            &mut registry,
            "log_lines_suppressed",
            "Log lines left out by per-call-site rate limits (floods a client can cause)",
        );
        let objects = ObjectMetrics::register(&mut registry);
        Metrics {
            objects,
            data,
            registry,
            admin_requests: requests,
            admin_latency: latency,
            jobs,
            config_reloads,
            config_reload_ok,
            log_suppressed,
        }
    }

    /// Records a config reload: applied, or refused (the running config stays).
    pub fn record_reload(&self, applied: bool) {
        let result = if applied { "applied" } else { "refused" };
        self.config_reloads
            .get_or_create(&ReloadLabels { result })
            .inc();
        self.config_reload_ok.set(i64::from(applied));
    }

    /// Records one admin-plane request.
    pub fn record_admin(&self, route: &str, status: u16, nanos: u64) {
        let labels = RequestLabels {
            plane: "admin",
            route: route.to_owned(),
            status: status.to_string(),
        };
        self.admin_requests.get_or_create(&labels).inc();
        self.admin_latency
            .get_or_create(&labels)
            .observe_nanos(nanos);
    }

    /// The OpenMetrics text of every metric.
    pub fn encode(&self) -> String {
        let total = crate::lograte::suppressed_total();
        let seen = self.log_suppressed.get();
        if total > seen {
            self.log_suppressed.inc_by(total - seen);
        }
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("writing to a String cannot fail");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_kinds_index_their_tables_in_order() {
        for (i, k) in RouteKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k:?}");
        }
    }

    #[test]
    fn data_plane_series_count_what_is_recorded() {
        let m = Metrics::new();
        m.data.record(RouteKind::Segment, 200, 300_000);
        m.data.record(RouteKind::Segment, 200, 2_000_000_000);
        m.data.record(RouteKind::HlsMultivariant, 599, 10);
        m.record_admin("/api/v1/assets", 201, 5_000);
        let text = m.encode();
        assert!(
            text.contains(
                "headwater_http_requests_total{plane=\"data\",route=\"segment\",status=\"200\"} 2"
            ),
            "{text}"
        );
        assert!(text.contains(
            "headwater_http_request_duration_seconds_bucket{le=\"0.0005\",plane=\"data\",route=\"segment\",status=\"200\"} 1"
        ) || text.contains("route=\"segment\",status=\"200\",le=\"0.0005\"} 1"), "{text}");
        assert!(
            text.contains("route=\"hls_multivariant\",status=\"other\"} 1"),
            "{text}"
        );
        assert!(text.contains("plane=\"admin\",route=\"/api/v1/assets\",status=\"201\"} 1"));
    }

    #[test]
    fn shards_of_every_worker_add_up() {
        let m = Metrics::new();
        let threads: Vec<_> = (0..10)
            .map(|w| {
                let d = m.data.clone();
                std::thread::spawn(move || {
                    if w > 0 {
                        set_shard(w - 1);
                    }
                    for _ in 0..1000 {
                        d.record(RouteKind::HlsPlaylist, 200, 1_000_000);
                        d.bytes_sent.inc_by(3);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(m.data.bytes_sent.get(), 30_000);
        let text = m.encode();
        assert!(
            text.contains("route=\"hls_playlist\",status=\"200\"} 10000"),
            "{text}"
        );
        assert!(
            text.contains("headwater_data_sent_bytes_total 30000"),
            "{text}"
        );
        assert!(
            text.contains("status=\"200\"} 10000")
                && text.contains("_sum{plane=\"data\",route=\"hls_playlist\",status=\"200\"} 10"),
            "{text}"
        );
    }
}
