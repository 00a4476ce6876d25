//! Counting: latency histograms, status codes and errors, and their summaries.
//!
//! Recording is sharded: a task records into `shards[task % n]` behind an uncontended
//! `std::sync::Mutex` (never held across an `.await`), so memory does not grow with the
//! number of tasks and no lock is shared by all of them. [`Live`] holds the few atomics
//! the progress line reads. At the end the shards are merged into one [`Stats`] and
//! summarised into a [`Summary`], which is what the table and the JSON show.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::{FetchError, Response};

/// Longest latency a histogram holds exactly, in microseconds (longer ones saturate).
const MAX_MICROS: u64 = 120_000_000;

/// Kinds of failed requests, counted separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ErrorKind {
    /// TCP connect failed.
    Connect,
    /// The per-request timeout expired.
    Timeout,
    /// Fewer body bytes than `Content-Length`.
    ShortBody,
    /// A status other than 2xx.
    BadStatus,
    /// A byte-range answer of the wrong length (or a 200 to a Range request).
    LengthMismatch,
    /// The server closed the connection before answering.
    Closed,
    /// A socket error mid-response.
    Io,
    /// A response that is not valid HTTP/1.1.
    Protocol,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub(crate) const ALL: [ErrorKind; 8] = [
        ErrorKind::Connect,
        ErrorKind::Timeout,
        ErrorKind::ShortBody,
        ErrorKind::BadStatus,
        ErrorKind::LengthMismatch,
        ErrorKind::Closed,
        ErrorKind::Io,
        ErrorKind::Protocol,
    ];

    /// The JSON and table name.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Timeout => "timeout",
            ErrorKind::ShortBody => "short_body",
            ErrorKind::BadStatus => "bad_status",
            ErrorKind::LengthMismatch => "length_mismatch",
            ErrorKind::Closed => "closed",
            ErrorKind::Io => "io",
            ErrorKind::Protocol => "protocol",
        }
    }
}

impl From<&FetchError> for ErrorKind {
    fn from(e: &FetchError) -> Self {
        match e {
            FetchError::Connect(_) => ErrorKind::Connect,
            FetchError::Timeout => ErrorKind::Timeout,
            FetchError::ShortBody { .. } => ErrorKind::ShortBody,
            FetchError::Closed => ErrorKind::Closed,
            FetchError::Io(_) => ErrorKind::Io,
            FetchError::Protocol(_) => ErrorKind::Protocol,
        }
    }
}

/// Classifies a complete response to a request that expected `expected_len` body bytes.
pub(crate) fn judge(response: &Response, expected_len: Option<u64>) -> Result<(), ErrorKind> {
    if !(200..300).contains(&response.status) {
        return Err(ErrorKind::BadStatus);
    }
    match expected_len {
        Some(len) if response.status != 206 || response.body_len != len => {
            Err(ErrorKind::LengthMismatch)
        }
        _ => Ok(()),
    }
}

/// A latency histogram in microseconds.
pub(crate) fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("constant bounds are valid")
}

/// Everything counted for one run (or one shard of it).
#[derive(Debug, Clone)]
pub(crate) struct Stats {
    /// Requests finished (answered or failed).
    pub(crate) requests: u64,
    /// Requests with a 2xx of the right length.
    pub(crate) ok: u64,
    /// Body bytes received (all responses).
    pub(crate) bytes: u64,
    /// Request to last body byte of successful requests, µs.
    pub(crate) latency: Histogram<u64>,
    /// Request to first response byte of successful requests, µs.
    pub(crate) ttfb: Histogram<u64>,
    /// Responses by status code.
    pub(crate) status: BTreeMap<u16, u64>,
    /// Failures by kind.
    pub(crate) errors: BTreeMap<ErrorKind, u64>,
}

impl Default for Stats {
    fn default() -> Self {
        Self {
            requests: 0,
            ok: 0,
            bytes: 0,
            latency: histogram(),
            ttfb: histogram(),
            status: BTreeMap::new(),
            errors: BTreeMap::new(),
        }
    }
}

impl Stats {
    /// Records the outcome of one request.
    pub(crate) fn record(
        &mut self,
        result: &Result<Response, FetchError>,
        expected_len: Option<u64>,
    ) -> Result<(), ErrorKind> {
        self.requests += 1;
        let verdict = match result {
            Ok(r) => {
                self.bytes += r.body_len;
                *self.status.entry(r.status).or_default() += 1;
                judge(r, expected_len)
            }
            Err(e) => Err(ErrorKind::from(e)),
        };
        match (verdict, result) {
            (Ok(()), Ok(r)) => {
                self.ok += 1;
                self.latency.saturating_record(micros(r.total));
                self.ttfb.saturating_record(micros(r.ttfb));
            }
            (Err(kind), _) => *self.errors.entry(kind).or_default() += 1,
            (Ok(()), Err(_)) => {}
        }
        verdict
    }

    /// Adds `other` into `self`.
    pub(crate) fn merge(&mut self, other: &Stats) {
        self.requests += other.requests;
        self.ok += other.ok;
        self.bytes += other.bytes;
        self.latency
            .add(&other.latency)
            .expect("histograms share bounds");
        self.ttfb.add(&other.ttfb).expect("histograms share bounds");
        for (k, v) in &other.status {
            *self.status.entry(*k).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(*k).or_default() += v;
        }
    }

    /// Failed requests.
    pub(crate) fn failed(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// Microseconds, at least 1.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1)
}

/// Stats sharded over a few mutexes.
pub(crate) struct Shards<T> {
    shards: Box<[Mutex<T>]>,
}

impl<T: Default> Shards<T> {
    /// `n` empty shards.
    pub(crate) fn new(n: usize) -> Self {
        Self {
            shards: (0..n.max(1)).map(|_| Mutex::new(T::default())).collect(),
        }
    }

    /// Runs `f` on the shard of task `task`.
    pub(crate) fn with<R>(&self, task: usize, f: impl FnOnce(&mut T) -> R) -> R {
        let shard = &self.shards[task % self.shards.len()];
        // A panic while recording poisons nothing that matters: counters stay counters.
        let mut guard = shard.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut guard)
    }

    /// Takes every shard out.
    pub(crate) fn into_inner(self) -> impl Iterator<Item = T> {
        self.shards
            .into_iter()
            .map(|m| m.into_inner().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Counters the progress line reads while a run goes on.
#[derive(Debug, Default)]
pub(crate) struct Live {
    /// Requests finished.
    pub(crate) requests: AtomicU64,
    /// Body bytes received.
    pub(crate) bytes: AtomicU64,
    /// Failed requests.
    pub(crate) errors: AtomicU64,
    /// Mode-specific gauge: players playing, connections open.
    pub(crate) active: AtomicU64,
    /// Mode-specific counter: stalls.
    pub(crate) stalls: AtomicU64,
}

impl Live {
    /// Counts one finished request.
    pub(crate) fn count(&self, result: &Result<Response, FetchError>, ok: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Ok(r) = result {
            self.bytes.fetch_add(r.body_len, Ordering::Relaxed);
        }
        if !ok {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Percentiles of a histogram, in milliseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Percentiles {
    /// Median.
    pub(crate) p50: f64,
    /// 90th percentile.
    pub(crate) p90: f64,
    /// 99th percentile.
    pub(crate) p99: f64,
    /// 99.9th percentile.
    pub(crate) p999: f64,
    /// Largest value.
    pub(crate) max: f64,
    /// Mean.
    pub(crate) mean: f64,
}

impl Percentiles {
    /// Summarises a histogram recorded in units of `1/scale` (1000 for µs → ms).
    pub(crate) fn of(h: &Histogram<u64>, scale: f64) -> Self {
        if h.is_empty() {
            return Self::default();
        }
        let q = |q: f64| h.value_at_quantile(q) as f64 / scale;
        Self {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: h.max() as f64 / scale,
            mean: h.mean() / scale,
        }
    }
}

/// The summary of one run: what the table and the JSON show.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Summary {
    /// Measured wall time, seconds.
    pub(crate) duration_s: f64,
    /// Requests finished.
    pub(crate) requests: u64,
    /// Successful requests.
    pub(crate) ok: u64,
    /// Failed requests.
    pub(crate) failed: u64,
    /// `failed / requests` (0 when there were none).
    pub(crate) error_rate: f64,
    /// Body bytes received.
    pub(crate) bytes: u64,
    /// Requests per second.
    pub(crate) requests_per_s: f64,
    /// Body bytes per second.
    pub(crate) bytes_per_s: f64,
    /// Request to last body byte, ms.
    pub(crate) latency_ms: Percentiles,
    /// Request to first byte, ms.
    pub(crate) ttfb_ms: Percentiles,
    /// Responses by status code.
    pub(crate) status: BTreeMap<String, u64>,
    /// Failures by kind (every kind present, zeros included).
    pub(crate) errors: BTreeMap<&'static str, u64>,
}

impl Summary {
    /// Summarises `stats` measured over `elapsed`.
    pub(crate) fn new(stats: &Stats, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let failed = stats.failed();
        Self {
            duration_s: elapsed.as_secs_f64(),
            requests: stats.requests,
            ok: stats.ok,
            failed,
            error_rate: if stats.requests == 0 {
                0.0
            } else {
                failed as f64 / stats.requests as f64
            },
            bytes: stats.bytes,
            requests_per_s: stats.requests as f64 / secs,
            bytes_per_s: stats.bytes as f64 / secs,
            latency_ms: Percentiles::of(&stats.latency, 1000.0),
            ttfb_ms: Percentiles::of(&stats.ttfb, 1000.0),
            status: stats
                .status
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors: ErrorKind::ALL
                .iter()
                .map(|k| (k.name(), stats.errors.get(k).copied().unwrap_or(0)))
                .collect(),
        }
    }

    /// True when the run passes: something succeeded and the error rate is at most `max`.
    pub(crate) fn passes(&self, max_error_rate: f64) -> bool {
        self.ok > 0 && self.error_rate <= max_error_rate
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body_len: u64) -> Response {
        Response {
            status,
            body_len,
            content_length: Some(body_len),
            ttfb: Duration::from_micros(500),
            total: Duration::from_millis(2),
        }
    }

    #[test]
    fn record_and_merge() {
        let mut a = Stats::default();
        assert!(a.record(&Ok(response(200, 10)), None).is_ok());
        assert_eq!(
            a.record(&Ok(response(404, 5)), None),
            Err(ErrorKind::BadStatus)
        );
        assert_eq!(
            a.record(&Ok(response(200, 10)), Some(10)),
            Err(ErrorKind::LengthMismatch)
        );
        assert!(a.record(&Ok(response(206, 10)), Some(10)).is_ok());
        let mut b = Stats::default();
        assert_eq!(
            b.record(&Err(FetchError::Timeout), None),
            Err(ErrorKind::Timeout)
        );
        a.merge(&b);
        assert_eq!((a.requests, a.ok, a.failed(), a.bytes), (5, 2, 3, 35));
        let s = Summary::new(&a, Duration::from_secs(1));
        assert_eq!(s.status["200"], 2);
        assert_eq!(s.errors["timeout"], 1);
        assert_eq!(s.errors["connect"], 0);
        assert!((s.latency_ms.p50 - 2.0).abs() < 0.01);
        assert!(!s.passes(0.01));
        assert!(s.passes(0.7));
    }
}
