//! `segments` and `manifests`: N keep-alive connections, one request at a time each, as
//! fast as the origin answers.
//!
//! Every connection is a task on the multi-thread runtime. They share one atomic ticket
//! counter: ticket `t` fetches `plan[t % plan.len()]`, so together they walk the plan in
//! order (shuffled or sequential, decided when the plan was built) whatever their speed.
//! Requests started during the warmup are made but not counted. A run ends at
//! `--duration` after the warmup, or earlier after `--requests` counted requests; requests
//! in flight then finish (bounded by `--timeout`) and are counted.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::catalog::Prepared;
use crate::client::{Conn, FetchError, LOAD_BUFFER, Sink};
use crate::stats::{Live, Shards, Stats};

/// What to request and where.
#[derive(Clone)]
pub(crate) struct Workload {
    /// The origin's address.
    pub(crate) addr: SocketAddr,
    /// Request bytes per resource.
    pub(crate) requests: Arc<[Prepared]>,
    /// Resource indexes in request order (repeated as needed).
    pub(crate) plan: Arc<[u32]>,
}

/// How hard and how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Concurrent connections.
    pub(crate) connections: usize,
    /// Measured time.
    pub(crate) duration: Duration,
    /// Measured request count, if bounded by count.
    pub(crate) requests: Option<u64>,
    /// Unmeasured time first.
    pub(crate) warmup: Duration,
    /// Per-request timeout.
    pub(crate) timeout: Duration,
}

/// Pause after a failed connect, so a dead origin is not hammered in a hot loop.
const CONNECT_BACKOFF: Duration = Duration::from_millis(50);

struct Shared {
    work: Workload,
    spec: Spec,
    ticket: AtomicU64,
    counted: AtomicU64,
    measure_start: Instant,
    stop_at: Instant,
    live: Arc<Live>,
    shards: Shards<Stats>,
}

/// Runs the workload; returns what was measured and over how long.
pub(crate) async fn run(work: Workload, spec: Spec, live: Arc<Live>) -> (Stats, Duration) {
    let measure_start = Instant::now() + spec.warmup;
    let shared = Arc::new(Shared {
        work,
        spec,
        ticket: AtomicU64::new(0),
        counted: AtomicU64::new(0),
        measure_start,
        stop_at: measure_start + spec.duration,
        live,
        shards: Shards::new(spec.connections.min(64)),
    });
    let tasks: Vec<_> = (0..spec.connections)
        .map(|i| tokio::spawn(connection(i, Arc::clone(&shared))))
        .collect();
    for task in tasks {
        // A panicking task loses its requests, nothing else; the panic was already printed.
        let _ = task.await;
    }
    let elapsed = Instant::now().saturating_duration_since(measure_start);
    let shared = Arc::into_inner(shared).expect("every task has finished");
    let mut total = Stats::default();
    for shard in shared.shards.into_inner() {
        total.merge(&shard);
    }
    (total, elapsed)
}

/// One connection's loop.
async fn connection(task: usize, shared: Arc<Shared>) {
    let mut conn = Conn::new(shared.work.addr, LOAD_BUFFER);
    let plan = &shared.work.plan;
    loop {
        let now = Instant::now();
        if now >= shared.stop_at {
            break;
        }
        let measuring = now >= shared.measure_start;
        let over_count = |limit| shared.counted.fetch_add(1, Ordering::Relaxed) >= limit;
        if measuring && shared.spec.requests.is_some_and(over_count) {
            break;
        }
        let ticket = shared.ticket.fetch_add(1, Ordering::Relaxed);
        let index = plan[(ticket % plan.len() as u64) as usize] as usize;
        let prepared = &shared.work.requests[index];
        let result = conn
            .fetch(&prepared.bytes, Sink::Discard, shared.spec.timeout)
            .await;
        if measuring {
            let verdict = shared
                .shards
                .with(task, |s| s.record(&result, prepared.expected_len));
            shared.live.count(&result, verdict.is_ok());
        }
        if let Err(FetchError::Connect(_)) = result {
            tokio::time::sleep(CONNECT_BACKOFF).await;
        }
    }
}
