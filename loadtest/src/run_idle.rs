//! `idle`: many keep-alive connections, each served once, then held open and silent.
//!
//! This is how the benchmark measures an origin's memory per idle connection. Each
//! connection is a task: it connects (at most `--concurrency` at once, so the listen
//! backlog is not overrun), makes one manifest request so the server has really accepted
//! and served it, then waits. When every connection has been tried, the hold starts;
//! during it a connection the server closes is counted as closed early. At the end, those
//! still open are counted and all are dropped.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::{Notify, Semaphore, watch};

use crate::client::{Conn, Sink};
use crate::stats::{ErrorKind, Live, judge};

/// Read buffer per idle connection.
const IDLE_BUFFER: usize = 4096;

/// What to do.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Connections to open.
    pub(crate) connections: usize,
    /// Connects (and first requests) in flight at once.
    pub(crate) concurrency: usize,
    /// Hold time once all are served.
    pub(crate) hold: Duration,
    /// Per-request timeout.
    pub(crate) timeout: Duration,
}

/// What happened (`idle` in the JSON).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct IdleSummary {
    /// Connections asked for.
    pub(crate) connections: u64,
    /// TCP connections established.
    pub(crate) established: u64,
    /// Connections whose request got a complete 2xx and stayed open.
    pub(crate) served: u64,
    /// Connections the server closed during the hold.
    pub(crate) closed_early: u64,
    /// Connections still open when the hold ended.
    pub(crate) open_at_end: u64,
    /// Failures while opening and serving, by kind.
    pub(crate) errors: BTreeMap<&'static str, u64>,
    /// Time to open and serve them all, seconds.
    pub(crate) establish_s: f64,
    /// Hold time, seconds.
    pub(crate) hold_s: f64,
}

impl IdleSummary {
    /// True when at most `max_error_rate` of the connections are not open at the end.
    pub(crate) fn passes(&self, max_error_rate: f64) -> bool {
        let lost = self.connections.saturating_sub(self.open_at_end);
        self.open_at_end > 0 && lost as f64 <= max_error_rate * self.connections as f64
    }
}

/// How one connection ended.
enum Outcome {
    Failed(ErrorKind, bool),
    ClosedEarly,
    Open,
}

/// Runs the idle hold.
pub(crate) async fn run(
    addr: SocketAddr,
    request: Arc<[u8]>,
    spec: Spec,
    live: Arc<Live>,
) -> IdleSummary {
    let gate = Arc::new(Semaphore::new(spec.concurrency.max(1)));
    let settled = Arc::new(AtomicUsize::new(0));
    let all_settled = Arc::new(Notify::new());
    let (end_tx, end_rx) = watch::channel(false);
    let start = Instant::now();
    let tasks: Vec<_> = (0..spec.connections)
        .map(|_| {
            let (gate, settled, all_settled) = (gate.clone(), settled.clone(), all_settled.clone());
            let (request, live, mut end_rx) = (request.clone(), live.clone(), end_rx.clone());
            tokio::spawn(async move {
                let mut conn = Conn::new(addr, IDLE_BUFFER);
                let first = {
                    let _permit = gate.acquire().await;
                    conn.fetch(&request, Sink::Discard, spec.timeout).await
                };
                let served = match &first {
                    Ok(r) => judge(r, None).map(|()| conn.is_open()),
                    Err(e) => Err(ErrorKind::from(e)),
                };
                live.count(&first, matches!(served, Ok(true)));
                if settled.fetch_add(1, Ordering::AcqRel) + 1 == spec.connections {
                    all_settled.notify_one();
                }
                match served {
                    Err(kind) => return Outcome::Failed(kind, conn.connects > 0),
                    Ok(false) => return Outcome::Failed(ErrorKind::Closed, true),
                    Ok(true) => {}
                }
                live.active.fetch_add(1, Ordering::Relaxed);
                let outcome = tokio::select! {
                    _ = conn.closed() => Outcome::ClosedEarly,
                    _ = end_rx.wait_for(|end| *end) => Outcome::Open,
                };
                live.active.fetch_sub(1, Ordering::Relaxed);
                outcome
            })
        })
        .collect();

    // Every task settles within its timeout once it holds a permit; this bound only
    // guards against a task that never settles.
    let batches = spec.connections.div_ceil(spec.concurrency.max(1)) as u32 + 1;
    if spec.connections > 0 {
        let bound = spec.timeout.saturating_mul(batches);
        let _ = tokio::time::timeout(bound, all_settled.notified()).await;
    }
    let establish = start.elapsed();
    let served_now = live.active.load(Ordering::Relaxed);
    eprintln!(
        "idle: {served_now} of {} connections served in {:.2} s; holding for {:.1} s",
        spec.connections,
        establish.as_secs_f64(),
        spec.hold.as_secs_f64()
    );
    tokio::time::sleep(spec.hold).await;
    let _ = end_tx.send(true);

    let mut summary = IdleSummary {
        connections: spec.connections as u64,
        established: 0,
        served: 0,
        closed_early: 0,
        open_at_end: 0,
        errors: ErrorKind::ALL.iter().map(|k| (k.name(), 0)).collect(),
        establish_s: establish.as_secs_f64(),
        hold_s: spec.hold.as_secs_f64(),
    };
    for task in tasks {
        match task.await {
            Ok(Outcome::Open) => {
                summary.established += 1;
                summary.served += 1;
                summary.open_at_end += 1;
            }
            Ok(Outcome::ClosedEarly) => {
                summary.established += 1;
                summary.served += 1;
                summary.closed_early += 1;
            }
            Ok(Outcome::Failed(kind, connected)) => {
                summary.established += u64::from(connected);
                *summary.errors.entry(kind.name()).or_default() += 1;
            }
            Err(_) => {}
        }
    }
    summary
}
