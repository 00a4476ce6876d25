//! Rate-limited warnings: a few lines per interval per call site.
//!
//! A warning that a client can trigger (a refused connection, a bad
//! handshake, a datagram from nobody) must not become a flood: 23,000
//! garbage datagrams a second would otherwise be 23,000 log lines. A
//! [`LogRate`] lets the first [`BURST`] events of each interval through
//! and counts the rest; the next line that goes out says how many were
//! left out. Counters in `/metrics` carry the totals.
//!
//! ```
//! use headwater_common::lograte::LogRate;
//! static REFUSED: LogRate = LogRate::new();
//! if let Some(suppressed) = REFUSED.allow() {
//!     eprintln!("refused a caller ({suppressed} more since the last line)");
//! }
//! ```

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The default window: at most [`BURST`] lines per call site in it.
pub const INTERVAL: Duration = Duration::from_secs(10);
/// Lines one call site may log per window by default: enough that a few
/// distinct events (two refused publishers) are each seen, few enough that
/// a flood is a handful of lines.
pub const BURST: u64 = 10;

/// One call site's rate limit. Cheap to check (a few relaxed atomics) and
/// shareable between threads.
#[derive(Debug)]
pub struct LogRate {
    interval_ms: u64,
    burst: u64,
    /// Milliseconds since the process epoch at which the window began.
    window_start: AtomicU64,
    /// Lines let through in the window.
    used: AtomicU64,
    suppressed: AtomicU64,
}

impl Default for LogRate {
    fn default() -> Self {
        Self::new()
    }
}

fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let ms = EPOCH.get_or_init(Instant::now).elapsed().as_millis();
    u64::try_from(ms).unwrap_or(u64::MAX)
}

impl LogRate {
    /// [`BURST`] lines per [`INTERVAL`].
    pub const fn new() -> Self {
        Self::every(INTERVAL, BURST)
    }

    /// `burst` lines per `interval`.
    pub const fn every(interval: Duration, burst: u64) -> Self {
        LogRate {
            interval_ms: interval.as_millis() as u64,
            burst,
            window_start: AtomicU64::new(0),
            used: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(n)` when this event may be logged, `n` being how many were
    /// left out since the last line; `None` when it is to be left out.
    pub fn allow(&self) -> Option<u64> {
        let now = now_ms();
        let start = self.window_start.load(Ordering::Relaxed);
        if now.saturating_sub(start) >= self.interval_ms
            && self
                .window_start
                .compare_exchange(start, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.used.store(0, Ordering::Relaxed);
        }
        if self.used.fetch_add(1, Ordering::Relaxed) < self.burst {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        SUPPRESSED_TOTAL.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// Lines left out by every [`LogRate`] of the process since it started
/// (`headwater_log_lines_suppressed_total` in `/metrics`).
pub static SUPPRESSED_TOTAL: AtomicU64 = AtomicU64::new(0);

/// How many lines every [`LogRate`] has left out so far.
pub fn suppressed_total() -> u64 {
    SUPPRESSED_TOTAL.load(Ordering::Relaxed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_interval_and_the_rest_counted() {
        let rate = LogRate::every(Duration::from_millis(200), 3);
        let allowed = (0..10_000).filter(|_| rate.allow().is_some()).count();
        assert_eq!(allowed, 3);
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(rate.allow(), Some(9_997));
        assert_eq!(rate.allow(), Some(0));
        assert_eq!(rate.allow(), Some(0));
        assert_eq!(rate.allow(), None);
    }

    #[test]
    fn threads_share_one_limit() {
        let rate = std::sync::Arc::new(LogRate::new());
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let rate = rate.clone();
                std::thread::spawn(move || (0..1000).filter(|_| rate.allow().is_some()).count())
            })
            .collect();
        let total: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
        assert_eq!(total as u64, BURST);
    }
}
