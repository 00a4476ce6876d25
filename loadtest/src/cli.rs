//! The command line: one subcommand per mode, flags shared through flattened structs.
//!
//! Durations are written the human way (`10s`, `500ms`, `2m`, `1h`, or a bare number of
//! seconds) and parsed by [`parse_duration`].

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// A load generator for HLS and DASH origins.
///
/// Give it a multivariant playlist, a media playlist or an MPD: it discovers every
/// rendition and segment, then runs the chosen workload over plain HTTP/1.1 keep-alive
/// connections and prints a table (or `--json`). With `--compare URL2` the same workload
/// runs against a second origin in alternating rounds and the A/B ratios are printed.
///
/// Exit status: 0 success, 1 too many errors (see --max-error-rate) or nothing succeeded,
/// 2 usage or discovery errors.
#[derive(Parser, Debug)]
#[command(name = "loadtest", version)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

/// The modes.
#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// N keep-alive connections fetching init and media segments as fast as possible.
    Segments {
        #[command(flatten)]
        load: LoadArgs,
        /// Request order over the discovered segments.
        #[arg(long, value_enum, default_value_t = Order::Shuffled)]
        order: Order,
        /// Renditions to fetch: `all` or a comma-separated list of ids (as printed by
        /// discovery).
        #[arg(long, default_value = "all")]
        renditions: String,
    },
    /// N keep-alive connections fetching playlists or the MPD only.
    Manifests {
        #[command(flatten)]
        load: LoadArgs,
        /// Request order over the discovered manifests.
        #[arg(long, value_enum, default_value_t = Order::Sequential)]
        order: Order,
    },
    /// M simulated players following a rendition at real-time pace, switching on a schedule.
    Viewers {
        #[command(flatten)]
        common: CommonArgs,
        #[command(flatten)]
        compare: CompareArgs,
        /// Number of simulated players (one connection each).
        #[arg(long, default_value_t = 50)]
        viewers: usize,
        /// How long to play.
        #[arg(long, default_value = "60s", value_parser = parse_duration)]
        duration: Duration,
        /// Move every player one step along the bit-rate ladder this often (0 = never).
        #[arg(long, default_value = "20s", value_parser = parse_duration)]
        switch_every: Duration,
        /// Players start spread evenly over this time.
        #[arg(long, default_value = "2s", value_parser = parse_duration)]
        ramp: Duration,
        /// Renditions on the ladder: `all` or a comma-separated list of ids.
        #[arg(long, default_value = "all")]
        renditions: String,
    },
    /// Open N keep-alive connections, make one manifest request on each, then hold them idle.
    Idle {
        #[command(flatten)]
        common: CommonArgs,
        /// Connections to open.
        #[arg(long, default_value_t = 10_000)]
        connections: usize,
        /// How long to hold them open once all are served.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        hold: Duration,
        /// Connections being opened at once.
        #[arg(long, default_value_t = 256)]
        concurrency: usize,
    },
    /// Crawl a stream and write every manifest and segment under DIR at its URL path, so
    /// that a static server rooted at DIR serves the same bytes at the same URLs.
    Mirror {
        #[command(flatten)]
        common: CommonArgs,
        /// Output directory (created if missing; files are overwritten).
        dir: PathBuf,
        /// Parallel downloads.
        #[arg(long, default_value_t = 4)]
        connections: usize,
    },
}

impl CommonArgs {
    /// The first (or only) URL.
    pub(crate) fn url(&self) -> &str {
        &self.urls[0]
    }
}

impl Command {
    /// The flags every mode has.
    pub(crate) fn common(&self) -> &CommonArgs {
        match self {
            Command::Segments { load, .. } | Command::Manifests { load, .. } => &load.common,
            Command::Viewers { common, .. }
            | Command::Idle { common, .. }
            | Command::Mirror { common, .. } => common,
        }
    }
}

/// Flags every mode has.
#[derive(Args, Debug, Clone)]
pub(crate) struct CommonArgs {
    /// Multivariant playlist, media playlist or MPD (http:// only). Several may be
    /// given (all on one origin): their resources are one catalog, so a shuffled run
    /// walks a whole library, each segment once per cycle, as a CDN's misses do.
    #[arg(required = true, num_args = 1.., value_name = "URL")]
    pub(crate) urls: Vec<String>,
    /// Per-request timeout (connect, head and body together).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(crate) timeout: Duration,
    /// Runtime worker threads (default: all cores).
    #[arg(long)]
    pub(crate) threads: Option<usize>,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    pub(crate) json: bool,
    /// No progress line on stderr.
    #[arg(long, short)]
    pub(crate) quiet: bool,
    /// Exit 1 when more than this fraction of requests failed.
    #[arg(long, default_value_t = 0.01)]
    pub(crate) max_error_rate: f64,
    /// Seed for shuffling and start offsets (runs with the same seed replay the same order).
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
}

/// Flags of the throughput modes (`segments`, `manifests`).
#[derive(Args, Debug, Clone)]
pub(crate) struct LoadArgs {
    #[command(flatten)]
    pub(crate) common: CommonArgs,
    #[command(flatten)]
    pub(crate) compare: CompareArgs,
    /// Keep-alive connections, each one request at a time.
    #[arg(long, short, default_value_t = 32)]
    pub(crate) connections: usize,
    /// Measured time per run (ignored when --requests is given).
    #[arg(long, short, default_value = "10s", value_parser = parse_duration)]
    pub(crate) duration: Duration,
    /// Stop after this many measured requests instead of after --duration.
    #[arg(long, short = 'n')]
    pub(crate) requests: Option<u64>,
    /// Unmeasured time before each run (connections open, caches warm).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(crate) warmup: Duration,
}

/// `--compare` and its rounds.
#[derive(Args, Debug, Clone)]
pub(crate) struct CompareArgs {
    /// A second origin serving the same stream: run A, B, A, B, ... and print A/B ratios.
    /// With several URLs, URL2 names the second origin only (`http://host:port`): each
    /// URL's path and query are asked of it.
    #[arg(long, value_name = "URL2")]
    pub(crate) compare: Option<String>,
    /// Rounds per origin with --compare.
    #[arg(long, default_value_t = 3)]
    pub(crate) rounds: usize,
}

/// The order in which a load run walks its resources.
#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// A seeded random permutation, repeated.
    Shuffled,
    /// Discovery order (rendition by rendition), repeated.
    Sequential,
}

/// Parses `10s`, `500ms`, `2m`, `1h`, `1.5s` or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{text}`: expected a number with a unit, like 10s or 500ms"))?;
    let scale = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        other => {
            return Err(format!(
                "`{text}`: unknown unit `{other}` (use ms, s, m or h)"
            ));
        }
    };
    Duration::try_from_secs_f64(value * scale).map_err(|e| format!("`{text}`: {e}"))
}

/// Splits a `--renditions` value: `None` for `all`.
pub(crate) fn rendition_filter(value: &str) -> Option<Vec<String>> {
    if value.trim().eq_ignore_ascii_case("all") {
        return None;
    }
    Some(
        value
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("7"), Ok(Duration::from_secs(7)));
        assert_eq!(parse_duration(" 3s "), Ok(Duration::from_secs(3)));
        assert!(parse_duration("s").is_err());
        assert!(parse_duration("10 parsecs").is_err());
        assert!(parse_duration("").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn renditions() {
        assert_eq!(rendition_filter("all"), None);
        assert_eq!(
            rendition_filter("v1, a2,"),
            Some(vec!["v1".to_owned(), "a2".to_owned()])
        );
    }

    #[test]
    fn cli_is_well_formed() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
