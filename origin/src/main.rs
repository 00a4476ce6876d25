//! The `headwater` binary: glue between the command line, the config and the crates.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use headwater_origin::config::LogFormat;
use headwater_origin::{Config, Server};

#[derive(Parser)]
#[command(
    name = "headwater",
    version,
    about = "Media origin and just-in-time packager"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Sign a playback token with the catalog's current key and print it.
    Sign {
        /// TOML config file (for `catalog.database` and `media.root`).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Media directory (overrides `media.root`).
        #[arg(long)]
        media_root: Option<PathBuf>,
        /// Catalog database URL (overrides `catalog.database`).
        #[arg(long)]
        database: Option<String>,
        /// The asset the token opens.
        #[arg(long, conflicts_with = "stream", required_unless_present = "stream")]
        asset: Option<String>,
        /// The live stream the token opens.
        #[arg(long)]
        stream: Option<String>,
        /// Seconds until it expires.
        #[arg(long, default_value_t = 3600)]
        ttl: u64,
        /// Bind the token to this viewer address.
        #[arg(long)]
        client_ip: Option<std::net::IpAddr>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Serve VOD assets over HTTP.
    Serve {
        /// TOML config file (built-in defaults when absent).
        #[arg(long, short)]
        config: Option<PathBuf>,
        /// Media directory (overrides `media.root`).
        #[arg(long)]
        media_root: Option<PathBuf>,
        /// Data-plane address (overrides `server.listen`).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Worker threads, 0 = one per core (overrides `server.threads`).
        #[arg(long)]
        threads: Option<usize>,
        /// Log level or filter (overrides `log.level`).
        #[arg(long)]
        log_level: Option<String>,
        /// Admin listener address, or `off` (overrides `admin.listen`).
        #[arg(long)]
        admin_listen: Option<String>,
        /// A full-scope admin bearer token (added to `admin.tokens`).
        #[arg(long, env = "HEADWATER_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// Catalog database URL (overrides `catalog.database`).
        #[arg(long)]
        database: Option<String>,
        /// RTMP listener address, `auto` or `off` (overrides `ingest.rtmp_listen`).
        #[arg(long)]
        rtmp_listen: Option<String>,
        /// SRT listener address, `auto` or `off` (overrides `ingest.srt_listen`).
        #[arg(long)]
        srt_listen: Option<String>,
        /// A live stream and its publish key, `NAME:KEY` (repeatable; added to `ingest.streams`).
        #[arg(long = "stream", value_name = "NAME:KEY")]
        streams: Vec<String>,
    },
    /// Playback tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Print what the packager sees in the files of one asset.
    Probe {
        /// MP4 files (several for a multi-rendition asset).
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Target segment duration in seconds.
        #[arg(long, default_value_t = 4.0)]
        segment_duration: f64,
    },
    /// Check a config file and exit (0 valid, 64 invalid).
    CheckConfig {
        /// The file to check.
        file: PathBuf,
    },
}

/// `EX_USAGE` from sysexits.h: bad configuration or arguments.
const EX_CONFIG: u8 = 64;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            config,
            media_root,
            listen,
            threads,
            log_level,
            admin_listen,
            admin_token,
            database,
            rtmp_listen,
            srt_listen,
            streams,
        } => {
            let mut overrides = Overrides {
                media_root,
                listen,
                threads,
                log_level,
                database,
                ..Overrides::default()
            };
            if let Some(a) = admin_listen {
                match headwater_control_api::config::parse_listen(&a) {
                    Ok(l) => overrides.admin_listen = Some(l),
                    Err(e) => {
                        eprintln!("headwater: --admin-listen: {e}");
                        return ExitCode::from(EX_CONFIG);
                    }
                }
            }
            for (flag, value, slot) in [
                ("--rtmp-listen", rtmp_listen, &mut overrides.rtmp_listen),
                ("--srt-listen", srt_listen, &mut overrides.srt_listen),
            ] {
                if let Some(v) = value {
                    match headwater_origin::config::Listen::parse(&v) {
                        Ok(l) => *slot = Some(l),
                        Err(e) => {
                            eprintln!("headwater: {flag}: {e}");
                            return ExitCode::from(EX_CONFIG);
                        }
                    }
                }
            }
            for s in streams {
                let Some((name, key)) = s.split_once(':') else {
                    eprintln!("headwater: --stream: '{s}' is not NAME:KEY");
                    return ExitCode::from(EX_CONFIG);
                };
                overrides.streams.push(headwater_origin::config::StreamKey {
                    name: name.to_owned(),
                    key: key.to_owned(),
                    record: false,
                    ladder: None,
                });
            }
            if admin_token.as_deref().is_some_and(|t| t.len() < 16) {
                eprintln!("headwater: --admin-token: must be at least 16 characters");
                return ExitCode::from(EX_CONFIG);
            }
            let cfg = match load(config.as_deref(), &overrides) {
                Ok(c) => c,
                Err(e) => return config_error(&e),
            };
            let set_log_level = init_tracing(&cfg);
            let source = ConfigSource {
                path: config,
                overrides,
            };
            serve(cfg, admin_token, source, set_log_level)
        }
        Command::Token {
            command:
                TokenCommand::Sign {
                    config,
                    media_root,
                    database,
                    asset,
                    stream,
                    ttl,
                    client_ip,
                },
        } => {
            let mut cfg = match config.as_deref().map(Config::from_file).transpose() {
                Ok(c) => c.unwrap_or_default(),
                Err(e) => return config_error(&e),
            };
            if let Some(root) = media_root {
                cfg.media.root = root;
            }
            if let Some(d) = database {
                cfg.catalog.database = d;
            }
            let scope = match (&asset, &stream) {
                (Some(a), _) => headwater_control_api::token::Scope::Asset(a),
                (None, Some(s)) => headwater_control_api::token::Scope::Stream(s),
                (None, None) => unreachable!("clap requires one"),
            };
            match headwater_control_api::sign_offline(
                &cfg.catalog.database,
                &cfg.media.root,
                scope,
                ttl,
                client_ip,
            ) {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("headwater: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Probe {
            files,
            segment_duration,
        } => {
            let paths: Vec<&std::path::Path> = files.iter().map(PathBuf::as_path).collect();
            let config = headwater_packager::PackagingConfig {
                target_duration: segment_duration,
            };
            match headwater_origin::probe::describe(&paths, &config) {
                Ok(text) => {
                    // A closed pipe (`| head`) is not an error worth a panic.
                    let _ =
                        std::io::Write::write_all(&mut std::io::stdout().lock(), text.as_bytes());
                    ExitCode::SUCCESS
                }

                Err(e) => {
                    eprintln!("headwater: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig { file } => match Config::from_file(&file) {
            Ok(_) => {
                println!("{}: ok", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => config_error(&e),
        },
    }
}

fn config_error(e: &headwater_origin::ConfigError) -> ExitCode {
    eprintln!("headwater: {e}");
    ExitCode::from(EX_CONFIG)
}

/// What the command line sets over the config file: applied at start and
/// again at every reload, so a flag keeps winning.
#[derive(Default)]
struct Overrides {
    media_root: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
    threads: Option<usize>,
    log_level: Option<String>,
    admin_listen: Option<Option<std::net::SocketAddr>>,
    database: Option<String>,
    rtmp_listen: Option<headwater_origin::config::Listen>,
    srt_listen: Option<headwater_origin::config::Listen>,
    /// `--stream`, added to the file's `ingest.streams`.
    streams: Vec<headwater_origin::config::StreamKey>,
}

impl Overrides {
    fn apply(&self, cfg: &mut Config) {
        if let Some(root) = &self.media_root {
            cfg.media.root.clone_from(root);
        }
        if let Some(listen) = self.listen {
            cfg.server.listen = listen;
        }
        if let Some(threads) = self.threads {
            cfg.server.threads = threads;
        }
        if let Some(level) = &self.log_level {
            cfg.log.level.clone_from(level);
        }
        if let Some(l) = self.admin_listen {
            cfg.admin.listen = l;
        }
        if let Some(d) = &self.database {
            cfg.catalog.database.clone_from(d);
        }
        if let Some(l) = self.rtmp_listen {
            cfg.ingest.rtmp_listen = l;
        }
        if let Some(l) = self.srt_listen {
            cfg.ingest.srt_listen = l;
        }
        cfg.ingest.streams.extend(self.streams.iter().cloned());
    }
}

/// Where the running config came from, to read it again on `SIGHUP`.
struct ConfigSource {
    path: Option<PathBuf>,
    overrides: Overrides,
}

/// The file (or the defaults) with the command line on top, validated.
fn load(
    path: Option<&std::path::Path>,
    overrides: &Overrides,
) -> Result<Config, headwater_origin::ConfigError> {
    let mut cfg = path.map(Config::from_file).transpose()?.unwrap_or_default();
    overrides.apply(&mut cfg);
    cfg.validate()?;
    Ok(cfg)
}

/// Installs the log subscriber. Returns how to change its filter on a
/// reload, or `None` when `RUST_LOG` sets it (the environment wins).
/// Other crates' events are rate-limited per target and level
/// ([`headwater_origin::logfilter`]).
fn init_tracing(cfg: &Config) -> Option<headwater_origin::reload::SetLogLevel> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer};
    let from_env = EnvFilter::try_from_default_env().ok();
    let ruled_by_env = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| EnvFilter::new(&cfg.log.level));
    let (filter, handle) = tracing_subscriber::reload::Layer::new(filter);
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match cfg.log.format {
        LogFormat::Json => fmt.json().boxed(),
        LogFormat::Text => fmt.boxed(),
    };
    tracing_subscriber::registry()
        .with(filter)
        .with(headwater_origin::logfilter::Throttled::new(fmt))
        .init();
    let set: headwater_origin::reload::SetLogLevel = Box::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    });
    (!ruled_by_env).then_some(set)
}

/// A live stream's stats as the API shows them.
fn live_stats_json(s: &headwater_ingest::LiveStats) -> serde_json::Value {
    let age = s.last_frame_age.as_secs_f64();
    serde_json::json!({
        "name": s.name,
        "on_air": s.on_air,
        "held_bytes": s.held_bytes,
        "last_frame_age_seconds": (age * 1000.0).round() / 1000.0,
        "requests": s.requests,
        "tracks": s.tracks.iter().map(|t| serde_json::json!({
            "name": t.name,
            "bytes": t.bytes,
            "frames": t.frames,
            "keyframes": t.keyframes,
            "keyframe_interval_seconds": t.keyframe_interval
                .map(|k| k as f64 / f64::from(t.timescale.max(1))),
        })).collect::<Vec<_>>(),
    })
}

/// Who may publish: the config's `ingest.streams`, then the catalog's
/// stream records (read at each publish, so a rotated key applies at once).
/// A stream's ladder is looked up in the catalog at the same time; one that
/// does not exist (any more) refuses the publisher rather than silently
/// passing the input through.
fn key_check(
    configured: std::sync::Arc<arc_swap::ArcSwap<Vec<headwater_origin::config::StreamKey>>>,
    catalog: &headwater_control_api::catalog::SharedCatalog,
) -> headwater_ingest::KeyCheck {
    use headwater_control_api::token::secrets_match;
    let catalog = catalog.clone();
    std::sync::Arc::new(move |stream: &str, key: &str| {
        let view = catalog.load();
        let configured = configured.load();
        let (dvr_window, record, ladder) = if let Some(s) = configured
            .iter()
            .find(|s| s.name == stream && secrets_match(&s.key, key))
        {
            (None, s.record, s.ladder.as_deref())
        } else {
            let r = view.streams.get(stream)?;
            if !secrets_match(&r.publish_key, key) {
                return None;
            }
            let dvr = std::time::Duration::from_secs(r.dvr_window_secs);
            (Some(dvr), r.record, r.ladder.as_deref())
        };
        let ladder = match ladder {
            None => None,
            Some(name) => match view.ladders.get(name) {
                Some(l) => Some(live_ladder(l)),
                None => {
                    tracing::warn!(
                        stream,
                        ladder = name,
                        "the stream's ladder does not exist; refusing the publisher"
                    );
                    return None;
                }
            },
        };
        Some(headwater_ingest::StreamSettings {
            dvr_window,
            record,
            ladder,
        })
    })
}

/// A catalog ladder as ingest transcodes it.
fn live_ladder(l: &headwater_common::catalog::CatalogLadder) -> headwater_ingest::Ladder {
    headwater_ingest::Ladder {
        frame_rate: l.frame_rate,
        keyframe_frames: l.keyframe_frames(),
        rungs: l
            .rungs
            .iter()
            .map(|r| headwater_ingest::Rung {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                bitrate_kbps: r.video_bitrate_kbps,
            })
            .collect(),
    }
}

fn serve(
    cfg: Config,
    admin_token: Option<String>,
    source: ConfigSource,
    set_log_level: Option<headwater_origin::reload::SetLogLevel>,
) -> ExitCode {
    let registry = std::sync::Arc::new(headwater_ingest::Registry::new(
        headwater_ingest::RegistryConfig {
            segment_target: std::time::Duration::from_secs_f64(cfg.ingest.segment_duration),
            part_target: std::time::Duration::from_secs_f64(cfg.ingest.part_duration),
            dvr_window: std::time::Duration::from_secs(cfg.ingest.dvr_window_secs),
            max_bytes_per_stream: cfg.ingest.max_stream_mb << 20,
            takeover_after: std::time::Duration::from_secs(cfg.ingest.takeover_after_secs),
            recordings: Some(cfg.media.root.clone()),
        },
    ));
    let mut metrics = headwater_control_api::metrics::Metrics::new();
    metrics
        .registry
        .register_collector(Box::new(headwater_ingest::stats::LiveCollector::new(
            registry.clone(),
        )));
    let metrics = std::sync::Arc::new(metrics);
    let live_stats: headwater_control_api::LiveStatsFn = {
        let registry = registry.clone();
        std::sync::Arc::new(move |name: &str| {
            registry.get(name).map(|l| live_stats_json(&l.stats()))
        })
    };
    // The catalog opens when the admin listener is on or a database is named.
    let mut admin_keys = None;
    let catalog = if cfg.admin.listen.is_some() || !cfg.catalog.database.is_empty() {
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
        match headwater_control_api::start(opts, metrics.clone()) {
            Ok(plane) => {
                admin_keys = Some(plane.admin_keys);
                plane.catalog
            }
            Err(e) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        headwater_control_api::catalog::empty()
    };
    let mut reloader = headwater_origin::reload::Reloader::new(
        cfg.clone(),
        admin_keys,
        admin_token,
        set_log_level,
        metrics.clone(),
    );
    if cfg.rtmp_addr().is_some() || cfg.srt_addr().is_some() {
        let ingest = headwater_ingest::IngestConfig {
            rtmp_listen: cfg.rtmp_addr(),
            srt_listen: cfg.srt_addr(),
            srt_passphrase: Some(cfg.ingest.srt_passphrase.clone()).filter(|p| !p.is_empty()),
        };
        if let Err(e) = headwater_ingest::start(
            ingest,
            registry.clone(),
            key_check(reloader.streams.clone(), &catalog),
        ) {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    }
    let shared = headwater_origin::Shared::with_catalog(cfg, catalog, metrics, registry);
    let server = match Server::bind_with(shared) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("{e:#}");
            return ExitCode::FAILURE;
        }
    };
    // The handlers are in place before anyone can see that we are up: a
    // SIGHUP that came before them would end the process.
    let signals = match Signals::install() {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot handle signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    std::thread::spawn(move || {
        signals.run(|| {
            headwater_origin::notify::reloading();
            tracing::info!(file = ?source.path, "SIGHUP: reloading the config");
            reloader.reload(load(source.path.as_deref(), &source.overrides));
            headwater_origin::notify::ready();
        });
        tracing::info!("shutting down");
        headwater_origin::notify::stopping();
        let _ = tx.send(true);
    });
    headwater_origin::notify::ready();
    match server.run(rx) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `SIGTERM`/`SIGINT` (stop) and `SIGHUP` (reload), on a runtime of their own.
struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
}

impl Signals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let _guard = rt.enter();
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        let hup = signal(SignalKind::hangup())?;
        drop(_guard);
        Ok(Signals { rt, term, int, hup })
    }

    /// Calls `on_reload` for every `SIGHUP`; returns at the first stop signal.
    fn run(self, mut on_reload: impl FnMut()) {
        let Signals {
            rt,
            mut term,
            mut int,
            mut hup,
        } = self;
        rt.block_on(async {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => on_reload(),
                }
            }
        });
    }
}
