//! What each subcommand does, in terms of the other modules: discover the stream (and the
//! `--compare` stream), build the workload once, run it (A, B, A, B, ... in rounds when
//! comparing), then report.
//!
//! `Err` means the run could not start (bad arguments, discovery failed): exit status 2.
//! `Ok(false)` means it ran and failed (too many errors, nothing succeeded): exit status 1.

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, bail};
use serde_json::json;
use url::Url;

use crate::catalog::{Catalog, Kind, Origin, Prepared};
use crate::cli::{Command, CommonArgs, CompareArgs, LoadArgs, Order, rendition_filter};
use crate::discover::{self, Fetcher};
use crate::report::{self, Progress, Ratios, RunRecord, Style};
use crate::rng::Rng;
use crate::stats::{Live, Summary};
use crate::{mirror, run_idle, run_load, run_viewers};

/// One origin of the run: A, or B with `--compare`.
struct Target {
    label: &'static str,
    url: String,
    origin: Origin,
    catalog: Arc<Catalog>,
    requests: Arc<[Prepared]>,
}

/// Runs `command` on the current runtime.
pub(crate) async fn run(command: Command, threads: usize) -> anyhow::Result<bool> {
    match command {
        Command::Segments {
            load,
            order,
            renditions,
        } => {
            load_mode(
                "segments",
                load,
                order,
                rendition_filter(&renditions),
                threads,
            )
            .await
        }
        Command::Manifests { load, order } => {
            load_mode("manifests", load, order, None, threads).await
        }
        Command::Viewers {
            common,
            compare,
            viewers,
            duration,
            switch_every,
            ramp,
            renditions,
        } => {
            let spec = run_viewers::Spec {
                viewers,
                duration,
                switch_every,
                ramp,
                timeout: common.timeout,
            };
            viewers_mode(
                &common,
                &compare,
                spec,
                rendition_filter(&renditions),
                threads,
            )
            .await
        }
        Command::Idle {
            common,
            connections,
            hold,
            concurrency,
        } => {
            let spec = run_idle::Spec {
                connections,
                concurrency,
                hold,
                timeout: common.timeout,
            };
            idle_mode(&common, spec, threads).await
        }
        Command::Mirror {
            common,
            dir,
            connections,
        } => mirror_mode(&common, &dir, connections).await,
    }
}

async fn load_mode(
    mode: &'static str,
    load: LoadArgs,
    order: Order,
    ids: Option<Vec<String>>,
    threads: usize,
) -> anyhow::Result<bool> {
    let common = &load.common;
    if load.connections == 0 {
        bail!("--connections must be at least 1");
    }
    let targets = targets(common, &load.compare).await?;
    let catalog = &targets[0].catalog;
    if let Some(ids) = &ids {
        catalog.check_ids(ids)?;
    }
    let kinds: &[Kind] = if mode == "segments" {
        &[Kind::Init, Kind::Segment]
    } else {
        &[Kind::Manifest]
    };
    let mut plan: Vec<u32> = catalog
        .select(kinds, ids.as_deref())
        .into_iter()
        .map(|i| u32::try_from(i).expect("fewer than 4 billion resources"))
        .collect();
    if plan.is_empty() {
        bail!("nothing to request for {mode}");
    }
    if order == Order::Shuffled {
        Rng::new(common.seed).shuffle(&mut plan);
    }
    let plan: Arc<[u32]> = plan.into();
    let spec = run_load::Spec {
        connections: load.connections,
        duration: load.duration,
        requests: load.requests,
        warmup: load.warmup,
        timeout: common.timeout,
    };
    let mut runs = Vec::new();
    for (round, target) in schedule(&targets, load.compare.rounds) {
        let live = Arc::new(Live::default());
        let measure_start = Instant::now() + spec.warmup;
        let progress = Progress::start(
            label(mode, &targets, round, target),
            live.clone(),
            measure_start,
            Style::Load,
            common.quiet,
        );
        let work = run_load::Workload {
            addr: target.origin.addr,
            requests: target.requests.clone(),
            plan: plan.clone(),
        };
        tracing::debug!(round, target = target.label, "run starts");
        let (stats, elapsed) = run_load::run(work, spec, live).await;
        drop(progress);
        runs.push(record(
            round,
            target,
            Summary::new(&stats, elapsed),
            None,
            &targets,
            common,
        ));
    }
    let settings = json!({
        "connections": load.connections,
        "duration_s": load.duration.as_secs_f64(),
        "requests": load.requests,
        "warmup_s": load.warmup.as_secs_f64(),
        "order": format!("{order:?}").to_lowercase(),
        "renditions": ids,
        "rounds": rounds(&targets, load.compare.rounds),
        "threads": threads,
        "timeout_s": common.timeout.as_secs_f64(),
        "seed": common.seed,
    });
    Ok(finish(mode, &targets, settings, plan.len(), runs, common))
}

async fn viewers_mode(
    common: &CommonArgs,
    compare: &CompareArgs,
    spec: run_viewers::Spec,
    ids: Option<Vec<String>>,
    threads: usize,
) -> anyhow::Result<bool> {
    if spec.viewers == 0 {
        bail!("--viewers must be at least 1");
    }
    let targets = targets(common, compare).await?;
    if let Some(ids) = &ids {
        targets[0].catalog.check_ids(ids)?;
    }
    let (ladder, companions) = run_viewers::Stream::ladders(&targets[0].catalog, ids.as_deref());
    if ladder.is_empty() {
        bail!("no rendition to play");
    }
    let mut runs = Vec::new();
    for (round, target) in schedule(&targets, compare.rounds) {
        let live = Arc::new(Live::default());
        let progress = Progress::start(
            label("viewers", &targets, round, target),
            live.clone(),
            Instant::now(),
            Style::Viewers,
            common.quiet,
        );
        let stream = run_viewers::Stream {
            addr: target.origin.addr,
            requests: target.requests.clone(),
            catalog: target.catalog.clone(),
            ladder: ladder.clone().into(),
            companions: companions.clone().into(),
        };
        let (stats, elapsed) = run_viewers::run(stream, spec, live).await;
        drop(progress);
        let summary = Summary::new(&stats.requests, elapsed);
        let players = stats.summary(spec.viewers);
        runs.push(record(
            round,
            target,
            summary,
            Some(players),
            &targets,
            common,
        ));
    }
    let ids_of = |v: &[usize]| -> Vec<String> {
        v.iter()
            .map(|&i| targets[0].catalog.renditions[i].id.clone())
            .collect()
    };
    let settings = json!({
        "viewers": spec.viewers,
        "duration_s": spec.duration.as_secs_f64(),
        "switch_every_s": spec.switch_every.as_secs_f64(),
        "ramp_s": spec.ramp.as_secs_f64(),
        "ladder": ids_of(&ladder),
        "companions": ids_of(&companions),
        "rounds": rounds(&targets, compare.rounds),
        "threads": threads,
        "timeout_s": common.timeout.as_secs_f64(),
    });
    let resources = targets[0].catalog.resources.len();
    Ok(finish(
        "viewers", &targets, settings, resources, runs, common,
    ))
}

async fn idle_mode(
    common: &CommonArgs,
    spec: run_idle::Spec,
    threads: usize,
) -> anyhow::Result<bool> {
    let url = parse_url(common.url())?;
    let origin = Origin::resolve(&url).await?;
    // One checked request first: a wrong URL is a usage error, not 10,000 failures.
    Fetcher::new(origin.clone(), common.timeout)
        .get(&url)
        .await?;
    let live = Arc::new(Live::default());
    let progress = Progress::start(
        "idle".into(),
        live.clone(),
        Instant::now(),
        Style::Idle,
        common.quiet,
    );
    let summary = run_idle::run(origin.addr, origin.request(&url, None).into(), spec, live).await;
    drop(progress);
    let pass = summary.passes(common.max_error_rate);
    if common.json {
        let out = json!({
            "mode": "idle",
            "url": common.url(),
            "settings": {
                "connections": spec.connections,
                "concurrency": spec.concurrency,
                "hold_s": spec.hold.as_secs_f64(),
                "threads": threads,
                "timeout_s": spec.timeout.as_secs_f64(),
            },
            "idle": summary,
            "pass": pass,
        });
        println!("{out:#}");
    } else {
        print!("{}", report::idle_table(common.url(), &summary));
    }
    if !pass {
        eprintln!(
            "loadtest: FAIL: {} of {} connections open at the end (--max-error-rate {})",
            summary.open_at_end, summary.connections, common.max_error_rate
        );
    }
    Ok(pass)
}

async fn mirror_mode(common: &CommonArgs, dir: &Path, connections: usize) -> anyhow::Result<bool> {
    let (origin, catalog) = discover::discover_all(&common.urls, common.timeout).await?;
    if !common.quiet {
        eprint!("{}", catalog.describe());
    }
    let files = mirror::files(catalog.resources.iter().map(|r| &r.url));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let summary = mirror::run(&origin, files, dir, connections, common.timeout).await;
    let pass = summary.errors.is_empty() && summary.files > 0;
    for e in &summary.errors {
        eprintln!("loadtest: mirror: {e}");
    }
    if common.json {
        println!(
            "{:#}",
            json!({"mode": "mirror", "url": common.url(), "mirror": summary, "pass": pass})
        );
    } else {
        println!(
            "mirror {}\n  wrote {} files, {:.2} MB under {} in {:.2} s{}",
            common.url(),
            summary.files,
            summary.bytes as f64 / 1e6,
            summary.dir.display(),
            summary.duration_s,
            if pass {
                String::new()
            } else {
                format!("; {} errors", summary.errors.len())
            }
        );
    }
    Ok(pass)
}

/// Discovers A (and B), checks that they pair up, and prebuilds their requests.
async fn targets(common: &CommonArgs, compare: &CompareArgs) -> anyhow::Result<Vec<Target>> {
    let mut runs = vec![("a", common.urls.clone())];
    if let Some(b) = &compare.compare {
        if compare.rounds == 0 {
            bail!("--rounds must be at least 1");
        }
        runs.push(("b", compare_urls(&common.urls, b)?));
    }
    let mut targets = Vec::new();
    for (label, urls) in runs {
        let (origin, catalog) = discover::discover_all(&urls, common.timeout).await?;
        if !common.quiet {
            eprint!("{}", catalog.describe());
        }
        let requests = catalog.requests(&origin).into();
        targets.push(Target {
            label,
            url: urls[0].clone(),
            origin,
            catalog: Arc::new(catalog),
            requests,
        });
    }
    if let [a, b] = targets.as_slice() {
        discover::check_pair(&a.catalog, &b.catalog)?;
    }
    Ok(targets)
}

/// B's URLs: `compare` itself for one URL; for several, each URL's path and
/// query on `compare`'s origin.
fn compare_urls(urls: &[String], compare: &str) -> anyhow::Result<Vec<String>> {
    if let [_] = urls {
        return Ok(vec![compare.to_owned()]);
    }
    let base = parse_url(compare)?;
    urls.iter()
        .map(|u| {
            let u = parse_url(u)?;
            let mut b = base.clone();
            b.set_path(u.path());
            b.set_query(u.query());
            Ok(b.to_string())
        })
        .collect()
}

/// The runs in order: A once, or A, B, A, B, ... for `rounds` rounds.
fn schedule(targets: &[Target], rounds: usize) -> Vec<(usize, &Target)> {
    (1..=self::rounds(targets, rounds))
        .flat_map(|round| targets.iter().map(move |t| (round, t)))
        .collect()
}

fn rounds(targets: &[Target], rounds: usize) -> usize {
    if targets.len() > 1 { rounds } else { 1 }
}

fn label(mode: &str, targets: &[Target], round: usize, target: &Target) -> String {
    if targets.len() > 1 {
        format!("{mode} round {round} {}", target.label.to_uppercase())
    } else {
        mode.to_owned()
    }
}

/// Wraps up one run, with a one-line summary on stderr when comparing.
fn record(
    round: usize,
    target: &Target,
    summary: Summary,
    viewers: Option<run_viewers::PlayerSummary>,
    targets: &[Target],
    common: &CommonArgs,
) -> RunRecord {
    if targets.len() > 1 && !common.quiet {
        eprintln!(
            "round {round} {}: {:.1} req/s, {:.2} MB/s, p50 {:.3} ms, p99 {:.3} ms, {} errors",
            target.label.to_uppercase(),
            summary.requests_per_s,
            summary.bytes_per_s / 1e6,
            summary.latency_ms.p50,
            summary.latency_ms.p99,
            summary.failed
        );
    }
    RunRecord {
        round,
        target: target.label,
        summary,
        viewers,
    }
}

/// Prints the report; returns whether every run passed.
fn finish(
    mode: &str,
    targets: &[Target],
    settings: serde_json::Value,
    resources: usize,
    runs: Vec<RunRecord>,
    common: &CommonArgs,
) -> bool {
    let ratios = (targets.len() > 1).then(|| Ratios::of(&runs));
    let mut pass = true;
    for r in &runs {
        if !r.summary.passes(common.max_error_rate) {
            pass = false;
            let why = if r.summary.ok == 0 {
                "nothing succeeded".to_owned()
            } else {
                format!(
                    "error rate {:.4} above --max-error-rate {}",
                    r.summary.error_rate, common.max_error_rate
                )
            };
            eprintln!(
                "loadtest: FAIL: round {} {}: {why}",
                r.round,
                targets_url(targets, r.target)
            );
        }
    }
    if common.json {
        let out = json!({
            "mode": mode,
            "url": targets[0].url,
            "compare_url": targets.get(1).map(|t| t.url.clone()),
            "settings": settings,
            "resources": resources,
            "runs": runs,
            "ratios": ratios,
            "pass": pass,
        });
        println!("{out:#}");
    } else {
        let urls: Vec<&str> = targets.iter().map(|t| t.url.as_str()).collect();
        print!("{}", report::table(mode, &urls, &runs, ratios.as_ref()));
    }
    pass
}

fn targets_url<'a>(targets: &'a [Target], label: &str) -> &'a str {
    targets
        .iter()
        .find(|t| t.label == label)
        .map_or("?", |t| t.url.as_str())
}

fn parse_url(text: &str) -> anyhow::Result<Url> {
    Url::parse(text).with_context(|| format!("`{text}` is not a URL"))
}
