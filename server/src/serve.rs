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
use headwater_ingest::{IngestHandle, Protocol, Registry};
use headwater_origin::{Config, Server};

use crate::cli::ConfigSource;
use crate::reload::{Reloader, SetLogLevel};
use crate::signals::Stop;
use crate::upgrade::{Handover, Inherited};

/// Runs the server until a stop signal; the config is already valid.
pub(crate) fn run(
    cfg: Config,
    admin_token: Option<String>,
    source: ConfigSource,
    set_log_level: Option<SetLogLevel>,
) -> ExitCode {
    let inherited = match Inherited::from_env() {
        Ok(i) => i,
        Err(e) => return failed(&e),
    };
    let mut handover = match Handover::new() {
        Ok(h) => h,
        Err(e) => return failed(&format!("cannot find the running binary: {e}")),
    };
    let registry = registry(&cfg);
    let metrics = metrics(&registry);
    let admin_listener = match admin_listener(&cfg, inherited.admin, &mut handover) {
        Ok(l) => l,
        Err(e) => return failed(&e),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let on_air = cfg
        .cluster
        .enabled()
        .then(headwater_common::cluster::nowhere);
    let plane = Plane {
        admin_listener,
        stop: rx.clone(),
        on_air: on_air.clone(),
    };
    let (catalog, admin_keys, admin_drained) =
        match control_plane(&cfg, &admin_token, &metrics, &registry, plane) {
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
    let sockets = headwater_ingest::Sockets {
        rtmp: inherited.rtmp,
        srt: inherited.srt,
    };
    let ingest = match ingest(&cfg, &registry, &reloader, &catalog, sockets, &mut handover) {
        Ok(i) => i,
        Err(e) => return failed(&e),
    };
    let grace = Duration::from_secs(cfg.server.shutdown_grace_secs);
    let shared = match headwater_origin::Shared::with_catalog(cfg, catalog, metrics, registry) {
        Ok(s) => match on_air {
            Some(on_air) => s.with_cluster(on_air),
            None => s,
        },
        Err(e) => return failed(&e.to_string()),
    };
    let server = match data_plane(shared, inherited.data, &mut handover) {
        Ok(s) => s,
        Err(e) => return failed(&e),
    };
    // The handlers are in place before anyone can see that we are up: a
    // SIGHUP that came before them would end the process.
    let signals = match crate::signals::Signals::install() {
        Ok(s) => s,
        Err(e) => return failed(&format!("cannot handle signals: {e}")),
    };
    let watch = Watch {
        reloader,
        source,
        handover,
        ingest,
        stop: tx,
    };
    std::thread::spawn(move || watch.run(signals));
    crate::notify::ready();
    let served = server.run(rx);
    // The admin API's requests in flight finish too, within the same grace.
    if let Some(drained) = admin_drained {
        let _ = drained.recv_timeout(grace);
    }
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => failed(&format!("{e:#}")),
    }
}

/// The signal thread's state: what a reload, an upgrade and a stop use.
struct Watch {
    reloader: Reloader,
    source: ConfigSource,
    handover: Handover,
    ingest: Option<IngestHandle>,
    stop: tokio::sync::watch::Sender<bool>,
}

impl Watch {
    /// Reloads on `SIGHUP`, upgrades on `SIGUSR2`; at a stop signal or
    /// after a hand-over, tells the data plane to stop.
    fn run(mut self, signals: crate::signals::Signals) {
        let Watch {
            reloader,
            source,
            handover,
            ingest,
            stop,
        } = &mut self;
        let how = signals.run(
            || {
                crate::notify::reloading();
                tracing::info!(file = ?source.path, "SIGHUP: reloading the config");
                reloader.reload(source.load());
                crate::notify::ready();
            },
            || upgrade(handover, ingest.as_ref()),
        );
        if how == Stop::Signalled {
            tracing::info!("shutting down");
            crate::notify::stopping();
        }
        let _ = stop.send(true);
    }
}

/// The data plane on the inherited listeners (or new ones), whose
/// duplicates the next upgrade hands on.
fn data_plane(
    shared: headwater_origin::Shared,
    inherited: Vec<std::net::TcpListener>,
    handover: &mut Handover,
) -> Result<Server, String> {
    let server = Server::bind_inheriting(shared, inherited).map_err(|e| format!("{e:#}"))?;
    let fds = server
        .listener_fds()
        .map_err(|e| format!("cannot keep a listening socket: {e}"))?;
    fds.into_iter().for_each(|fd| handover.data(fd));
    Ok(server)
}

/// What the control plane gets from `run`: its listener, the stop signal,
/// and with `[cluster]` the view of other nodes' live streams to keep.
struct Plane {
    admin_listener: Option<std::net::TcpListener>,
    stop: tokio::sync::watch::Receiver<bool>,
    on_air: Option<headwater_common::cluster::SharedOnAir>,
}

/// `SIGUSR2`: starts the new process on our sockets; once it is ready,
/// this one stops accepting (true) and drains. On failure it serves on.
fn upgrade(handover: &Handover, ingest: Option<&IngestHandle>) -> bool {
    tracing::info!("SIGUSR2: starting a new process on the listening sockets");
    match handover.start_successor() {
        Ok(pid) => {
            tracing::info!(
                new_pid = pid,
                "upgrade: the new process is ready; this one drains and exits"
            );
            crate::notify::main_pid(pid);
            if let Some(i) = ingest {
                i.stop_listening();
            }
            true
        }
        Err(e) => {
            tracing::error!("upgrade failed, serving on: {e}");
            false
        }
    }
}

/// The admin listener, when one is configured: inherited, or bound here so
/// that an upgrade can hand it on.
fn admin_listener(
    cfg: &Config,
    inherited: Option<std::net::TcpListener>,
    handover: &mut Handover,
) -> Result<Option<std::net::TcpListener>, String> {
    let Some(addr) = cfg.admin.listen else {
        return Ok(None);
    };
    let err = |e: std::io::Error| format!("admin listener {addr}: {e}");
    let listener = match inherited {
        Some(l) => l,
        None => std::net::TcpListener::bind(addr).map_err(err)?,
    };
    handover.admin(listener.try_clone().map_err(err)?.into());
    Ok(Some(listener))
}

fn failed(why: &str) -> ExitCode {
    tracing::error!("{why}");
    ExitCode::FAILURE
}

/// The control plane's local directory: the media root, or with a bucket
/// library a directory beside the chunk cache (unfinished uploads, the
/// default SQLite catalog).
pub(crate) fn control_root(cfg: &Config) -> std::path::PathBuf {
    match cfg.bucket_url() {
        None => cfg.media.root.clone(),
        Some(_) => {
            let dir = cfg.object_cache_dir().join("control");
            if let Err(e) = std::fs::create_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot make the control plane's directory");
            }
            dir
        }
    }
}

/// The control plane's own client of the library's bucket, if it is in one.
fn control_bucket(cfg: &Config) -> Result<Option<Arc<headwater_objects::Bucket>>, String> {
    let Some(url) = cfg.bucket_url() else {
        return Ok(None);
    };
    tracing::info!("with the library in a bucket, live recordings and transcode jobs are off");
    headwater_objects::Bucket::open(&url, &cfg.bucket_options())
        .map(|b| Some(Arc::new(b)))
        .map_err(|e| format!("cannot use {url}: {e}"))
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
        // Recordings are written as files: only into a media directory.
        recordings: cfg.bucket_url().is_none().then(|| cfg.media.root.clone()),
        spill: i.spill_dir.clone(),
        timeline: i.timeline.packager(),
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

/// The catalog, the admin keys and the admin listener's drain signal.
type ControlPlaneParts = (
    SharedCatalog,
    Option<AdminKeys>,
    Option<std::sync::mpsc::Receiver<()>>,
);

/// The control plane, when an admin listener or a database is configured:
/// the catalog view the data plane reads and the admin keys a reload
/// swaps. Without it, an empty catalog (directory mode only).
fn control_plane(
    cfg: &Config,
    admin_token: &Option<String>,
    metrics: &Arc<Metrics>,
    registry: &Arc<Registry>,
    plane: Plane,
) -> Result<ControlPlaneParts, String> {
    if cfg.admin.listen.is_none() && cfg.catalog.database.is_empty() {
        return Ok((headwater_common::catalog::empty(), None, None));
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
        media_root: control_root(cfg),
        bucket: control_bucket(cfg)?,
        symlinks: cfg.media.symlinks,
        live_stats: Some(live_stats),
        limits: headwater_packager::Limits {
            max_moov_bytes: cfg.media.max_metadata_mb << 20,
            ..headwater_packager::Limits::default()
        },
        admin_listener: plane.admin_listener,
        stop: plane.stop,
        cluster: plane.on_air.map(|on_air| {
            let registry = registry.clone();
            headwater_control_api::cluster::ClusterOptions {
                config: cfg.cluster.clone(),
                local: Arc::new(move || registry.announce()),
                on_air,
            }
        }),
    };
    let plane = headwater_control_api::start(opts, metrics.clone()).map_err(|e| e.to_string())?;
    Ok((plane.catalog, Some(plane.admin_keys), plane.drained))
}

/// The RTMP and SRT listeners, when either is on.
fn ingest(
    cfg: &Config,
    registry: &Arc<Registry>,
    reloader: &Reloader,
    catalog: &SharedCatalog,
    sockets: headwater_ingest::Sockets,
    handover: &mut Handover,
) -> Result<Option<IngestHandle>, String> {
    if cfg.rtmp_addr().is_none() && cfg.srt_addr().is_none() {
        return Ok(None);
    }
    let ingest = headwater_ingest::IngestConfig {
        rtmp_listen: cfg.rtmp_addr(),
        srt_listen: cfg.srt_addr(),
        srt_passphrase: Some(cfg.ingest.srt_passphrase.clone()).filter(|p| !p.is_empty()),
        limits: cfg.ingest.source_limits(),
    };
    let handle = headwater_ingest::start_with(
        ingest,
        sockets,
        registry.clone(),
        crate::live::key_check(reloader.streams.clone(), catalog),
    )
    .map_err(|e| e.to_string())?;
    for (protocol, fd) in &handle.sockets {
        let fd = fd
            .try_clone()
            .map_err(|e| format!("cannot keep an ingest socket: {e}"))?;
        match protocol {
            Protocol::Rtmp => handover.rtmp(fd),
            Protocol::Srt => handover.srt(fd),
        }
    }
    Ok(Some(handle))
}
