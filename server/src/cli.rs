//! The command line: what `headwater` is asked to do, and the flags that
//! override the config file (applied at start and at every reload).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use headwater_origin::config::{Listen, StreamKey};
use headwater_origin::{Config, ConfigError};

#[derive(Parser)]
#[command(
    name = "headwater",
    version,
    about = "Media origin and just-in-time packager"
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Serve VOD assets over HTTP.
    Serve(ServeArgs),
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

#[derive(Subcommand)]
pub(crate) enum TokenCommand {
    /// Sign a playback token with the catalog's current key and print it.
    Sign(SignArgs),
}

/// `headwater token sign`.
#[derive(Args)]
pub(crate) struct SignArgs {
    /// TOML config file (for `catalog.database` and `media.root`).
    #[arg(long, short)]
    pub(crate) config: Option<PathBuf>,
    /// Media directory (overrides `media.root`).
    #[arg(long)]
    pub(crate) media_root: Option<PathBuf>,
    /// Catalog database URL (overrides `catalog.database`).
    #[arg(long)]
    pub(crate) database: Option<String>,
    /// The asset the token opens.
    #[arg(long, conflicts_with = "stream", required_unless_present = "stream")]
    pub(crate) asset: Option<String>,
    /// The live stream the token opens.
    #[arg(long)]
    pub(crate) stream: Option<String>,
    /// Seconds until it expires.
    #[arg(long, default_value_t = 3600)]
    pub(crate) ttl: u64,
    /// Bind the token to this viewer address.
    #[arg(long)]
    pub(crate) client_ip: Option<IpAddr>,
}

/// `headwater serve`.
#[derive(Args)]
pub(crate) struct ServeArgs {
    /// TOML config file (built-in defaults when absent).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Media directory (overrides `media.root`).
    #[arg(long)]
    media_root: Option<PathBuf>,
    /// Data-plane address (overrides `server.listen`).
    #[arg(long)]
    listen: Option<SocketAddr>,
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
    pub(crate) admin_token: Option<String>,
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
    /// This node's data plane as other nodes reach it, `http://HOST:PORT`
    /// (overrides `cluster.advertise`).
    #[arg(long, value_name = "URL")]
    advertise: Option<String>,
}

/// `EX_USAGE` from sysexits.h: bad configuration or arguments.
pub(crate) const EX_CONFIG: u8 = 64;

/// A bad config: its message, exit code 64.
pub(crate) fn config_error(e: &ConfigError) -> ExitCode {
    eprintln!("headwater: {e}");
    ExitCode::from(EX_CONFIG)
}

impl ServeArgs {
    /// Where the config comes from: the file and the flags over it. `Err`
    /// names the flag that does not parse.
    pub(crate) fn source(&self) -> Result<ConfigSource, String> {
        let admin_listen = self
            .admin_listen
            .as_deref()
            .map(headwater_common::config::parse_listen)
            .transpose()
            .map_err(|e| format!("--admin-listen: {e}"))?;
        let listen = |flag: &str, v: &Option<String>| {
            v.as_deref()
                .map(Listen::parse)
                .transpose()
                .map_err(|e| format!("{flag}: {e}"))
        };
        let mut streams = Vec::new();
        for s in &self.streams {
            let (name, key) = s
                .split_once(':')
                .ok_or_else(|| format!("--stream: '{s}' is not NAME:KEY"))?;
            streams.push(StreamKey {
                name: name.to_owned(),
                key: key.to_owned(),
                record: false,
                ladder: None,
            });
        }
        if self.admin_token.as_deref().is_some_and(|t| t.len() < 16) {
            return Err("--admin-token: must be at least 16 characters".into());
        }
        Ok(ConfigSource {
            path: self.config.clone(),
            overrides: Overrides {
                media_root: self.media_root.clone(),
                listen: self.listen,
                threads: self.threads,
                log_level: self.log_level.clone(),
                admin_listen,
                database: self.database.clone(),
                rtmp_listen: listen("--rtmp-listen", &self.rtmp_listen)?,
                srt_listen: listen("--srt-listen", &self.srt_listen)?,
                streams,
                advertise: self.advertise.clone(),
            },
        })
    }
}

/// What the command line sets over the config file: applied at start and
/// again at every reload, so a flag keeps winning.
#[derive(Default)]
pub(crate) struct Overrides {
    media_root: Option<PathBuf>,
    listen: Option<SocketAddr>,
    threads: Option<usize>,
    log_level: Option<String>,
    admin_listen: Option<Option<SocketAddr>>,
    database: Option<String>,
    rtmp_listen: Option<Listen>,
    srt_listen: Option<Listen>,
    /// `--stream`, added to the file's `ingest.streams`.
    streams: Vec<StreamKey>,
    advertise: Option<String>,
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
        if let Some(a) = &self.advertise {
            cfg.cluster.advertise.clone_from(a);
        }
    }
}

/// Where the running config came from, to read it again on `SIGHUP`.
pub(crate) struct ConfigSource {
    pub(crate) path: Option<PathBuf>,
    overrides: Overrides,
}

impl ConfigSource {
    /// The file (or the defaults) with the command line on top, validated.
    pub(crate) fn load(&self) -> Result<Config, ConfigError> {
        load(self.path.as_deref(), &self.overrides)
    }
}

fn load(path: Option<&Path>, overrides: &Overrides) -> Result<Config, ConfigError> {
    let mut cfg = path.map(Config::from_file).transpose()?.unwrap_or_default();
    overrides.apply(&mut cfg);
    cfg.validate()?;
    Ok(cfg)
}
