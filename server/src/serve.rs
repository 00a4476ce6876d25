//! `headwater serve`: the live registry, metrics, the control plane (when
//! an admin listener or a database is configured), ingest, then the data
//! plane, with signals to stop and reload. Each step is a function; the
//! order is `run`'s.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use headwater_common::catalog::SharedCatalog;
use headwater_common::metrics::Metrics;
use headwater_control_api::AdminKeys;
use headwater_ingest::Registry;
use headwater_origin::{Config, Server};

use crate::cli::ConfigSource;
use crate::reload::{Reloader, SetLogLevel};

/// Runs the server until a stop signal; the config is already valid.
pub(crate) fn run(
    cfg: Config,
    admin_token: Option<String>,
    source: ConfigSource,
    set_log_level: Option<SetLogLevel>,
) -> ExitCode {
    let registry = registry(&cfg);
    let metrics = metrics(&registry);
    let (catalog, admin_keys) = match control_plane(&cfg, &admin_token, &metrics, &registry) {
        Ok(c) => c,
        Err(e) => return failed(&e),
    };
    let reloader = Reloader::new(
        cfg.clone(),
        admin_keys,
        admin_token,
        set_log_level,
        metrics.clone(),
    );
    if let Err(e) = ingest(&cfg, &registry, &reloader, &catalog) {
        return failed(&e);
    }
    let shared = headwater_origin::Shared::with_catalog(cfg, catalog, metrics, registry);
    let server = match Server::bind_with(shared) {
        Ok(s) => s,
        Err(e) => return failed(&format!("{e:#}")),
    };
    // The handlers are in place before anyone can see that we are up: a
    // SIGHUP that came before them would end the process.
    let signals = match crate::signals::Signals::install() {
        Ok(s) => s,
        Err(e) => return failed(&format!("cannot handle signals: {e}")),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let mut reloader = reloader;
    std::thread::spawn(move || {
        signals.run(|| {
            crate::notify::reloading();
            tracing::info!(file = ?source.path, "SIGHUP: reloading the config");
            reloader.reload(source.load());
            crate::notify::ready();
        });
        tracing::info!("shutting down");
        crate::notify::stopping();
        let _ = tx.send(true);
    });
    crate::notify::ready();
    match server.run(rx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&format!("{e:#}")),
    }
}

fn failed(why: &str) -> ExitCode {
    tracing::error!("{why}");
    ExitCode::FAILURE
}

/// The live streams, fed by ingest and read by the data plane.
fn registry(cfg: &Config) -> Arc<Registry> {
    let i = &cfg.ingest;
    Arc::new(Registry::new(headwater_ingest::RegistryConfig {
        segment_target: Duration::from_secs_f64(i.segment_duration),
        part_target: Duration::from_secs_f64(i.part_duration),
        dvr_window: Duration::from_secs(i.dvr_window_secs),
        max_bytes_per_stream: i.max_stream_mb << 20,
        takeover_after: Duration::from_secs(i.takeover_after_secs),
        recordings: Some(cfg.media.root.clone()),
    }))
}

/// Every metric, the live streams' collected at scrape time.
fn metrics(registry: &Arc<Registry>) -> Arc<Metrics> {
    let mut metrics = Metrics::new();
    metrics
        .registry
        .register_collector(Box::new(headwater_ingest::stats::LiveCollector::new(
            registry.clone(),
        )));
    Arc::new(metrics)
}

/// The control plane, when an admin listener or a database is configured:
/// the catalog view the data plane reads and the admin keys a reload
/// swaps. Without it, an empty catalog (directory mode only).
fn control_plane(
    cfg: &Config,
    admin_token: &Option<String>,
    metrics: &Arc<Metrics>,
    registry: &Arc<Registry>,
) -> Result<(SharedCatalog, Option<AdminKeys>), String> {
    if cfg.admin.listen.is_none() && cfg.catalog.database.is_empty() {
        return Ok((headwater_common::catalog::empty(), None));
    }
    let live_stats: headwater_control_api::LiveStatsFn = {
        let registry = registry.clone();
        Arc::new(move |name: &str| {
            registry
                .get(name)
                .map(|l| crate::live::live_stats_json(&l.stats()))
        })
    };
    let opts = headwater_control_api::Options {
        admin: cfg.admin.clone(),
        admin_token: admin_token.clone(),
        catalog: cfg.catalog.clone(),
        tokens: cfg.tokens.clone(),
        uploads: cfg.uploads.clone(),
        media_root: cfg.media.root.clone(),
        symlinks: cfg.media.symlinks,
        live_stats: Some(live_stats),
        limits: headwater_packager::Limits {
            max_moov_bytes: cfg.media.max_metadata_mb << 20,
            ..headwater_packager::Limits::default()
        },
    };
    let plane = headwater_control_api::start(opts, metrics.clone()).map_err(|e| e.to_string())?;
    Ok((plane.catalog, Some(plane.admin_keys)))
}

/// The RTMP and SRT listeners, when either is on.
fn ingest(
    cfg: &Config,
    registry: &Arc<Registry>,
    reloader: &Reloader,
    catalog: &SharedCatalog,
) -> Result<(), String> {
    if cfg.rtmp_addr().is_none() && cfg.srt_addr().is_none() {
        return Ok(());
    }
    let ingest = headwater_ingest::IngestConfig {
        rtmp_listen: cfg.rtmp_addr(),
        srt_listen: cfg.srt_addr(),
        srt_passphrase: Some(cfg.ingest.srt_passphrase.clone()).filter(|p| !p.is_empty()),
        limits: cfg.ingest.source_limits(),
    };
    headwater_ingest::start(
        ingest,
        registry.clone(),
        crate::live::key_check(reloader.streams.clone(), catalog),
    )
    .map(|_| ())
    .map_err(|e| e.to_string())
}
