//! `loadtest`: a load generator for HLS and DASH origins.
//!
//! It discovers every rendition and segment behind a manifest URL and runs one of five
//! modes against it: `segments` (throughput), `manifests`, `viewers` (real-time players),
//! `idle` (many held connections) and `mirror` (crawl to disk, for a static reference).
//! With `--compare URL2` it runs the same workload against a second origin in alternating
//! rounds and prints the A/B ratios. See `README.md` beside this crate.
//!
//! This file is glue: parse the command line, install tracing, raise the open-file limit,
//! build the runtime, hand off to [`app::run`] and turn its outcome into an exit status.
//!
//! Data flow: [`discover`] (manifests → [`catalog::Catalog`]) → prebuilt requests →
//! a run module ([`run_load`], [`run_viewers`], [`run_idle`], [`mirror`]) driving
//! [`client::Conn`]s → [`stats`] → [`report`].

#![forbid(unsafe_code)]

mod app;
mod catalog;
mod chunked;
mod cli;
mod client;
mod discover;
mod mirror;
mod report;
mod rng;
mod run_idle;
mod run_load;
mod run_viewers;
mod stats;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

/// Exit status for usage and discovery errors (clap uses it for bad arguments too).
const EXIT_USAGE: u8 = 2;
/// Exit status for a run that failed its error budget.
const EXIT_FAILED: u8 = 1;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_tracing();
    raise_open_file_limit();
    let threads = cli.command.common().threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
    });
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .thread_name("loadtest")
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("loadtest: cannot start the runtime: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let outcome = runtime.block_on(app::run(cli.command, threads.max(1)));
    // Every run joins its tasks; this only bounds a task stuck past its own deadline.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(EXIT_FAILED),
        Err(e) => {
            eprintln!("loadtest: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// Logs go to stderr, `warn` and above unless `RUST_LOG` says otherwise.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Raises the soft `RLIMIT_NOFILE` to the hard limit: `idle` holds thousands of sockets.
fn raise_open_file_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    // An unlimited hard limit is not a valid soft limit for file descriptors.
    let target = limit.maximum.unwrap_or(1 << 20);
    if limit.current.is_some_and(|c| c < target) {
        let raised = Rlimit {
            current: Some(target),
            maximum: limit.maximum,
        };
        if let Err(e) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!("cannot raise the open-file limit to {target}: {e}");
        }
    }
}
