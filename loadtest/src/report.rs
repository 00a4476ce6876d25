//! Output: the progress line (stderr), the tables and the JSON (stdout).
//!
//! # JSON
//!
//! With `--json`, stdout holds exactly one object. For `segments`, `manifests` and
//! `viewers`:
//!
//! | field | meaning |
//! | --- | --- |
//! | `mode` | `segments`, `manifests` or `viewers` |
//! | `url`, `compare_url` | origin A's manifest; B's with `--compare`, else `null` |
//! | `settings` | the flags that shaped the run (`connections`, `duration_s`, ...) |
//! | `resources` | how many URLs the workload cycles through |
//! | `runs[]` | one per run, in the order run (A, B, A, B, ... with `--compare`) |
//! | `runs[].round`, `runs[].target` | 1-based round; `"a"` or `"b"` |
//! | `runs[].duration_s` | measured time |
//! | `runs[].requests`, `ok`, `failed`, `error_rate` | counts; `failed / requests` |
//! | `runs[].bytes`, `requests_per_s`, `bytes_per_s` | body bytes; rates over `duration_s` |
//! | `runs[].latency_ms`, `ttfb_ms` | `p50`, `p90`, `p99`, `p999`, `max`, `mean` (ms): request written → last body byte / first response byte, successful requests only |
//! | `runs[].status` | responses by status code (`{"200": n}`) |
//! | `runs[].errors` | failures by kind, zeros included: `connect`, `timeout`, `short_body`, `bad_status`, `length_mismatch`, `closed`, `io`, `protocol` |
//! | `runs[].viewers` | `viewers` mode only: `viewers`, `started`, `startup_ms` (percentiles), `fetch_fraction` (percentiles of fetch time / segment duration), `segments`, `stalls`, `stall_s`, `viewers_stalled`, `switches` |
//! | `ratios` | with `--compare`: `requests_per_s`, `bytes_per_s`, `latency_p50`, `latency_p99`, each `{median, min, max, rounds[]}` of A / B per round; else `null` |
//! | `pass` | the exit status was 0 |
//!
//! `idle` prints `{mode, url, settings, idle: {connections, established, served,
//! closed_early, open_at_end, errors, establish_s, hold_s}, pass}`; `mirror` prints
//! `{mode, url, mirror: {dir, files, bytes, duration_s, errors[]}, pass}`.

use std::fmt::Write as _;
use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::run_idle::IdleSummary;
use crate::run_viewers::PlayerSummary;
use crate::stats::{Live, Percentiles, Summary};

/// What the progress line shows besides requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Requests, rates, errors.
    Load,
    /// Plus players playing and stalls.
    Viewers,
    /// Open connections.
    Idle,
}

/// The once-a-second progress line on stderr; stops when dropped.
pub(crate) struct Progress {
    task: tokio::task::JoinHandle<()>,
    tty: bool,
}

impl Progress {
    /// Starts printing `label` and the counters of `live` (`None` when `quiet`).
    pub(crate) fn start(
        label: String,
        live: Arc<Live>,
        measure_start: Instant,
        style: Style,
        quiet: bool,
    ) -> Option<Self> {
        if quiet {
            return None;
        }
        let tty = std::io::stderr().is_terminal();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            tick.tick().await;
            let (mut last_requests, mut last_bytes, mut last) = (0, 0, Instant::now());
            loop {
                tick.tick().await;
                let now = Instant::now();
                let (requests, bytes) = (
                    live.requests.load(Ordering::Relaxed),
                    live.bytes.load(Ordering::Relaxed),
                );
                let dt = now.duration_since(last).as_secs_f64().max(1e-3);
                let mut line = if now < measure_start {
                    format!("{label} warming up")
                } else {
                    format!(
                        "{label} {:5.1}s {requests:>9} req {:>9.0} req/s {:>8.1} MB/s {} err",
                        now.duration_since(measure_start).as_secs_f64(),
                        (requests - last_requests) as f64 / dt,
                        (bytes - last_bytes) as f64 / dt / 1e6,
                        live.errors.load(Ordering::Relaxed),
                    )
                };
                match style {
                    Style::Load => {}
                    Style::Viewers => {
                        let _ = write!(
                            line,
                            " | playing {} stalls {}",
                            live.active.load(Ordering::Relaxed),
                            live.stalls.load(Ordering::Relaxed)
                        );
                    }
                    Style::Idle => {
                        let _ = write!(line, " | open {}", live.active.load(Ordering::Relaxed));
                    }
                }
                if tty {
                    eprint!("\r\x1b[2K{line}");
                } else {
                    eprintln!("{line}");
                }
                (last_requests, last_bytes, last) = (requests, bytes, now);
            }
        });
        Some(Self { task, tty })
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.task.abort();
        if self.tty {
            eprint!("\r\x1b[2K");
        }
    }
}

/// One run in the report.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct RunRecord {
    /// 1-based round.
    pub(crate) round: usize,
    /// `"a"` or `"b"`.
    pub(crate) target: &'static str,
    /// The request counters.
    #[serde(flatten)]
    pub(crate) summary: Summary,
    /// The player counters (`viewers` only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) viewers: Option<PlayerSummary>,
}

/// Spread of one A/B ratio over the rounds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub(crate) struct Ratio {
    /// Median over rounds.
    pub(crate) median: f64,
    /// Smallest.
    pub(crate) min: f64,
    /// Largest.
    pub(crate) max: f64,
    /// Per round, in order.
    pub(crate) rounds: Vec<f64>,
}

impl Ratio {
    fn of(values: Vec<f64>) -> Self {
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = match n {
            0 => f64::NAN,
            _ if n % 2 == 1 => sorted[n / 2],
            _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
        };
        Self {
            median,
            min: sorted.first().copied().unwrap_or(f64::NAN),
            max: sorted.last().copied().unwrap_or(f64::NAN),
            rounds: values,
        }
    }
}

/// The A/B ratios of a compare run.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Ratios {
    /// Requests per second, A / B.
    pub(crate) requests_per_s: Ratio,
    /// Bytes per second, A / B.
    pub(crate) bytes_per_s: Ratio,
    /// Median latency, A / B.
    pub(crate) latency_p50: Ratio,
    /// 99th percentile latency, A / B.
    pub(crate) latency_p99: Ratio,
}

impl Ratios {
    /// Pairs each round's A run with its B run.
    pub(crate) fn of(runs: &[RunRecord]) -> Self {
        let pairs: Vec<(&Summary, &Summary)> = runs
            .iter()
            .filter(|r| r.target == "a")
            .filter_map(|a| {
                let b = runs
                    .iter()
                    .find(|b| b.target == "b" && b.round == a.round)?;
                Some((&a.summary, &b.summary))
            })
            .collect();
        let ratio =
            |f: fn(&Summary) -> f64| Ratio::of(pairs.iter().map(|(a, b)| f(a) / f(b)).collect());
        Self {
            requests_per_s: ratio(|s| s.requests_per_s),
            bytes_per_s: ratio(|s| s.bytes_per_s),
            latency_p50: ratio(|s| s.latency_ms.p50),
            latency_p99: ratio(|s| s.latency_ms.p99),
        }
    }
}

/// The human report of a `segments`, `manifests` or `viewers` run.
pub(crate) fn table(
    mode: &str,
    urls: &[&str],
    runs: &[RunRecord],
    ratios: Option<&Ratios>,
) -> String {
    let mut out = String::new();
    if ratios.is_none() {
        for run in runs {
            let _ = writeln!(out, "{mode} {}", urls[0]);
            run_block(&mut out, run);
        }
        return out;
    }
    let _ = writeln!(out, "{mode}: A = {}", urls[0]);
    let _ = writeln!(
        out,
        "{:>len$}  B = {}",
        "",
        urls.get(1).unwrap_or(&"?"),
        len = mode.len()
    );
    let _ = writeln!(
        out,
        "\nround origin {:>10} {:>10} {:>9} {:>9} {:>9} {:>8}",
        "req/s", "MB/s", "p50 ms", "p99 ms", "p99.9 ms", "errors"
    );
    for r in runs {
        let s = &r.summary;
        let _ = writeln!(
            out,
            "{:>5} {:>6} {:>10.1} {:>10.2} {:>9.3} {:>9.3} {:>9.3} {:>8}",
            r.round,
            r.target.to_uppercase(),
            s.requests_per_s,
            s.bytes_per_s / 1e6,
            s.latency_ms.p50,
            s.latency_ms.p99,
            s.latency_ms.p999,
            s.failed
        );
    }
    if let Some(ratios) = ratios {
        let rounds = ratios.requests_per_s.rounds.len();
        let _ = writeln!(
            out,
            "\nA / B over {rounds} rounds   median   spread (min..max)"
        );
        for (name, r) in [
            ("req/s", &ratios.requests_per_s),
            ("MB/s", &ratios.bytes_per_s),
            ("p50 latency", &ratios.latency_p50),
            ("p99 latency", &ratios.latency_p99),
        ] {
            let _ = writeln!(
                out,
                "  {name:<20} {:>8.3}   {:.3}..{:.3}",
                r.median, r.min, r.max
            );
        }
    }
    out
}

fn run_block(out: &mut String, r: &RunRecord) {
    let s = &r.summary;
    let _ = writeln!(out, "  measured     {:.2} s", s.duration_s);
    let _ = writeln!(
        out,
        "  requests     {} ({:.1}/s): {} ok, {} failed ({:.3}%)",
        s.requests,
        s.requests_per_s,
        s.ok,
        s.failed,
        s.error_rate * 100.0
    );
    let _ = writeln!(
        out,
        "  received     {:.2} MB ({:.2} MB/s, {:.1} Mbit/s)",
        s.bytes as f64 / 1e6,
        s.bytes_per_s / 1e6,
        s.bytes_per_s * 8.0 / 1e6
    );
    let _ = writeln!(out, "  latency ms   {}", percentiles(&s.latency_ms, 3));
    let _ = writeln!(out, "  ttfb ms      {}", percentiles(&s.ttfb_ms, 3));
    let _ = writeln!(out, "  status       {}", counts(&s.status));
    let _ = writeln!(out, "  errors       {}", counts(&s.errors));
    if let Some(v) = &r.viewers {
        let _ = writeln!(
            out,
            "  players      {} ({} started), {} segments, {} switches",
            v.viewers, v.started, v.segments, v.switches
        );
        let _ = writeln!(out, "  startup ms   {}", percentiles(&v.startup_ms, 1));
        let _ = writeln!(out, "  fetch/dur    {}", percentiles(&v.fetch_fraction, 3));
        let _ = writeln!(
            out,
            "  stalls       {} in {} players, {:.2} s stalled",
            v.stalls, v.viewers_stalled, v.stall_s
        );
    }
}

/// `k: v, k: v` for the non-zero counts, or `none`.
fn counts<K: std::fmt::Display>(map: &std::collections::BTreeMap<K, u64>) -> String {
    let parts: Vec<String> = map
        .iter()
        .filter(|(_, v)| **v > 0)
        .map(|(k, v)| format!("{k}: {v}"))
        .collect();
    if parts.is_empty() {
        "none".into()
    } else {
        parts.join(", ")
    }
}

fn percentiles(p: &Percentiles, decimals: usize) -> String {
    format!(
        "p50 {:.d$}  p90 {:.d$}  p99 {:.d$}  p99.9 {:.d$}  max {:.d$}",
        p.p50,
        p.p90,
        p.p99,
        p.p999,
        p.max,
        d = decimals
    )
}

/// The human report of `idle`.
pub(crate) fn idle_table(url: &str, s: &IdleSummary) -> String {
    let mut out = format!("idle {url}\n");
    let _ = writeln!(out, "  connections  {}", s.connections);
    let _ = writeln!(
        out,
        "  established  {} in {:.2} s",
        s.established, s.establish_s
    );
    let _ = writeln!(out, "  served       {}", s.served);
    let _ = writeln!(out, "  held         {:.1} s", s.hold_s);
    let _ = writeln!(out, "  closed early {}", s.closed_early);
    let _ = writeln!(out, "  open at end  {}", s.open_at_end);
    let _ = writeln!(out, "  errors       {}", counts(&s.errors));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_spread() {
        let r = Ratio::of(vec![1.2, 0.9, 1.0]);
        assert_eq!((r.median, r.min, r.max), (1.0, 0.9, 1.2));
        assert_eq!(r.rounds, [1.2, 0.9, 1.0]);
        let even = Ratio::of(vec![1.0, 2.0, 4.0, 3.0]);
        assert_eq!(even.median, 2.5);
        assert!(Ratio::of(vec![]).median.is_nan());
    }
}
