//! The typed configuration: TOML file, then command-line overrides.
//!
//! Every key is documented in `conf/headwater.toml`. Unknown keys are an
//! error; so is any value outside its range, with a message naming the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use headwater_common::config::{
    AdminConfig, CatalogConfig, ClusterConfig, TokensConfig, UploadsConfig,
};
use headwater_common::media_root::Symlinks;
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Data-plane listener and connection handling.
    pub server: ServerConfig,
    /// Where media comes from and how much of it is cached.
    pub media: MediaConfig,
    /// How assets are cut into segments.
    pub packaging: PackagingSection,
    /// Response headers a CDN acts on.
    pub http: HttpConfig,
    /// Logging.
    pub log: LogConfig,
    /// The admin listener: control API, `/metrics`, health.
    pub admin: AdminConfig,
    /// Where the catalog is stored.
    pub catalog: CatalogConfig,
    /// Playback tokens.
    pub tokens: TokensConfig,
    /// Mezzanine uploads and transcode jobs.
    pub uploads: UploadsConfig,
    /// Live ingest: RTMP and SRT listeners, live packaging.
    pub ingest: IngestSection,
    /// Several nodes: where live streams are on air.
    pub cluster: ClusterConfig,
}

/// `[ingest]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// RTMP listener: `"auto"` (the data plane's IP, port 1935), an
    /// address, or `"off"`.
    pub rtmp_listen: Listen,
    /// SRT listener: `"auto"` (the data plane's IP, port 9000), an
    /// address, or `"off"`.
    pub srt_listen: Listen,
    /// SRT passphrase every publisher must use (10 to 79 characters); empty: none.
    pub srt_passphrase: String,
    /// Streams and their publish keys, besides the catalog's.
    pub streams: Vec<StreamKey>,
    /// Live segment target duration, in seconds.
    pub segment_duration: f64,
    /// Live part target duration, in seconds.
    pub part_duration: f64,
    /// DVR window of streams whose record names none, in seconds.
    pub dvr_window_secs: u64,
    /// Most memory one stream's DVR window may hold, in MiB.
    pub max_stream_mb: u64,
    /// Seconds a publisher may be silent before a new one for the same stream replaces it.
    pub takeover_after_secs: u64,
    /// Where live streams are spilled as they are made, so that a crash
    /// or a restart keeps their DVR windows; absent: memory only.
    pub spill_dir: Option<std::path::PathBuf>,
    /// Connection attempts (RTMP) or handshakes (SRT) one source address
    /// may make at once; it regains `source_connections_per_second`.
    pub source_connections_burst: u32,
    /// Connection attempts a source regains per second.
    pub source_connections_per_second: f64,
    /// Wrong publish keys within a minute that shut a source out.
    pub wrong_keys_before_lockout: u32,
    /// How long a source that guessed keys is shut out, in seconds.
    pub lockout_secs: u64,
    /// The clock live streams follow: `arrival` (from when each stream
    /// started on this node) or `input` (the publisher's own timestamps,
    /// so nodes fed the same input make interchangeable segments).
    pub timeline: LiveTimeline,
}

/// `ingest.timeline`.
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LiveTimeline {
    /// Output time from when the stream was created on this node; segments
    /// numbered from 0; a returning publisher placed after its absence.
    #[default]
    Arrival,
    /// The publisher's timestamps, never rebased; segments cut and
    /// numbered on segment-target slots of them (redundant ingest).
    Input,
}

impl LiveTimeline {
    /// The packager's timeline.
    pub fn packager(self) -> headwater_packager::live::Timeline {
        match self {
            LiveTimeline::Arrival => headwater_packager::live::Timeline::Arrival,
            LiveTimeline::Input => headwater_packager::live::Timeline::Input,
        }
    }
}

/// A stream name and its publish key.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct StreamKey {
    /// The stream's name (`[A-Za-z0-9_-]{1,64}`).
    pub name: String,
    /// The key a publisher must present.
    pub key: String,
    /// Whether the stream is also recorded as a VOD asset.
    #[serde(default)]
    pub record: bool,
    /// The catalog ladder (`POST /api/v1/ladders`) it is transcoded into;
    /// none: passed through.
    #[serde(default)]
    pub ladder: Option<String>,
}

impl IngestSection {
    /// The per-source limits the listeners enforce.
    pub fn source_limits(&self) -> headwater_ingest::guard::SourceLimits {
        headwater_ingest::guard::SourceLimits {
            burst: self.source_connections_burst,
            per_second: self.source_connections_per_second,
            key_failures: self.wrong_keys_before_lockout,
            key_window: std::time::Duration::from_secs(60),
            lockout: std::time::Duration::from_secs(self.lockout_secs),
        }
    }
}

impl Default for IngestSection {
    fn default() -> Self {
        Self {
            rtmp_listen: Listen::Auto,
            srt_listen: Listen::Auto,
            srt_passphrase: String::new(),
            streams: Vec::new(),
            segment_duration: 2.0,
            part_duration: 0.333,
            dvr_window_secs: 3600,
            max_stream_mb: 2048,
            takeover_after_secs: 5,
            spill_dir: None,
            source_connections_burst: 32,
            source_connections_per_second: 4.0,
            wrong_keys_before_lockout: 10,
            lockout_secs: 300,
            timeline: LiveTimeline::Arrival,
        }
    }
}

/// Where an ingest listener binds. `Auto` follows the data plane: an
/// operator who binds `server.listen` to one address gets ingest on that
/// address too, never on every interface unasked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listen {
    /// The IP of `server.listen`, the protocol's usual port.
    Auto,
    /// Not listening.
    Off,
    /// This address.
    At(SocketAddr),
}

impl Listen {
    /// Parses `auto`, `off` or `IP:PORT`.
    pub fn parse(s: &str) -> Result<Self, String> {
        if s.eq_ignore_ascii_case("auto") {
            return Ok(Listen::Auto);
        }
        headwater_common::config::parse_listen(s)
            .map(|a| a.map_or(Listen::Off, Listen::At))
            .map_err(|e| format!("{e} nor \"auto\""))
    }

    /// The address to bind, if any: `Auto` is `data_plane`'s IP with `port`.
    pub fn resolve(self, data_plane: SocketAddr, port: u16) -> Option<SocketAddr> {
        match self {
            Listen::Auto => Some(SocketAddr::new(data_plane.ip(), port)),
            Listen::Off => None,
            Listen::At(a) => Some(a),
        }
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Listen::Auto => f.write_str("auto"),
            Listen::Off => f.write_str("off"),
            Listen::At(a) => a.fmt(f),
        }
    }
}

impl<'de> Deserialize<'de> for Listen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Listen::parse(&String::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl Serialize for Listen {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// RTMP's usual port.
pub const RTMP_PORT: u16 = 1935;
/// The SRT port headwater listens on unless told otherwise.
pub const SRT_PORT: u16 = 9000;

impl Config {
    /// The RTMP listener's address, `auto` resolved.
    pub fn rtmp_addr(&self) -> Option<SocketAddr> {
        self.ingest
            .rtmp_listen
            .resolve(self.server.listen, RTMP_PORT)
    }

    /// The SRT listener's address, `auto` resolved.
    pub fn srt_addr(&self) -> Option<SocketAddr> {
        self.ingest.srt_listen.resolve(self.server.listen, SRT_PORT)
    }
}

/// `[server]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// Address of the data-plane listener.
    pub listen: SocketAddr,
    /// Worker threads, each with its own runtime and listener; 0 = one per core.
    pub threads: usize,
    /// Most simultaneous connections per worker thread; 0: as many as the
    /// open-file limit allows once a quarter of it (at least 256) is kept
    /// for the admin plane, ingest and files. A set value is capped the same way.
    pub max_connections_per_thread: usize,
    /// Seconds an idle keep-alive connection is kept open.
    pub keepalive_timeout_secs: u64,
    /// Seconds a client has to send a complete request head once it started one.
    pub request_timeout_secs: u64,
    /// Seconds a response may make no progress before the connection is dropped.
    pub send_timeout_secs: u64,
    /// Largest accepted request head, in bytes.
    pub max_request_head_bytes: usize,
    /// Seconds to let in-flight requests finish on shutdown.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            threads: 0,
            max_connections_per_thread: 0,
            keepalive_timeout_secs: 75,
            request_timeout_secs: 10,
            send_timeout_secs: 30,
            max_request_head_bytes: 16 * 1024,
            shutdown_grace_secs: 10,
        }
    }
}

/// `[media]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct MediaConfig {
    /// Directory of assets: `{root}/{asset}.mp4` or `{root}/{asset}/*.mp4|*.m4a`.
    pub root: PathBuf,
    /// How often, at most, a cached asset's files are checked for changes (ms).
    pub check_interval_ms: u64,
    /// Memory budget for sample indexes and packaged assets, in MiB.
    pub index_cache_mb: u64,
    /// Largest `moov` (and total of `moof` boxes) read from a file, in MiB.
    pub max_metadata_mb: u64,
    /// Memory for gathered payloads of many-range segments (muxed sources)
    /// and written MPEG-TS segments, in MiB; 0 sends the former straight
    /// from the source and writes the latter per request.
    pub segment_cache_mb: u64,
    /// Where that memory is: unset, memfds; set, unnamed files in this
    /// directory (best a tmpfs mounted with `huge=within_size`).
    pub segment_cache_dir: Option<PathBuf>,
    /// Symlinks under the root: `refuse` (none anywhere in a path),
    /// `within_root` (those that resolve inside the root) or `follow` (any).
    pub symlinks: Symlinks,
    /// With `root = "s3://BUCKET/PREFIX"`: the S3-compatible endpoint
    /// (else `AWS_ENDPOINT_URL`, else AWS). Credentials come from
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY` only.
    pub s3_endpoint: Option<String>,
    /// The bucket's region (else `AWS_REGION`, else `us-east-1`).
    pub s3_region: Option<String>,
    /// Path-style addressing (`ENDPOINT/BUCKET/KEY`), as most
    /// S3-compatible servers want; `false` for virtual-hosted style.
    pub s3_path_style: bool,
    /// Longest time one call to the object storage may take (ms); a
    /// request waiting longer is answered `504`.
    pub object_timeout_ms: u64,
    /// Where chunks of objects are cached (default: `$CACHE_DIRECTORY`
    /// under systemd, else `headwater-objects` in the temporary directory).
    pub object_cache_dir: Option<PathBuf>,
    /// Disk for cached chunks, in MiB.
    pub object_cache_mb: u64,
    /// Size of a cached chunk (one ranged GET), in KiB.
    pub object_chunk_kb: u64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            root: PathBuf::from("media"),
            check_interval_ms: 1000,
            index_cache_mb: 256,
            max_metadata_mb: 256,
            segment_cache_mb: 256,
            segment_cache_dir: None,
            symlinks: Symlinks::Refuse,
            s3_endpoint: None,
            s3_region: None,
            s3_path_style: true,
            object_timeout_ms: 10_000,
            object_cache_dir: None,
            object_cache_mb: 4096,
            object_chunk_kb: 4096,
        }
    }
}

/// `[packaging]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PackagingSection {
    /// Target segment duration in seconds; segments are cut at keyframes near it.
    pub segment_duration: f64,
}

impl Default for PackagingSection {
    fn default() -> Self {
        Self {
            segment_duration: 4.0,
        }
    }
}

/// `[http]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// `Access-Control-Allow-Origin` value; empty disables CORS headers.
    pub cors_allow_origin: String,
    /// `max-age` of init and media segments (they are also `immutable`).
    pub segment_max_age_secs: u64,
    /// `max-age` of VOD manifests.
    pub manifest_max_age_secs: u64,
    /// `max-age` of 404 responses (0 = `no-store`).
    pub not_found_max_age_secs: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            cors_allow_origin: "*".to_owned(),
            segment_max_age_secs: 31_536_000,
            manifest_max_age_secs: 60,
            not_found_max_age_secs: 10,
        }
    }
}

/// `[log]`
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// Default level or `tracing` filter (`RUST_LOG` overrides it).
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".to_owned(),
            format: LogFormat::Text,
        }
    }
}

/// Log line format.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A configuration problem, naming the key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The TOML is invalid or has unknown keys or wrong types.
    #[error("invalid config file {path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's message, which names the key.
        message: String,
    },
    /// A value is out of range.
    #[error("invalid value for `{key}`: {reason}")]
    Value {
        /// Dotted key, such as `server.threads`.
        key: &'static str,
        /// What is wrong.
        reason: String,
    },
}

impl ConfigError {
    /// The message on one line, for a log event: the TOML parser's source
    /// excerpt (the lines drawn with `|`) left out, the rest joined.
    pub fn one_line(&self) -> String {
        let text = self.to_string();
        let kept: Vec<&str> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.contains('|'))
            .collect();
        kept.join(": ")
    }
}

/// A range check's outcome: the key and why, for [`ConfigError::Value`].
type Checked = Result<(), (&'static str, String)>;

fn bad(key: &'static str, reason: &str) -> Checked {
    Err((key, reason.to_owned()))
}

impl Config {
    /// Reads and validates a TOML file.
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates TOML text.
    pub fn from_toml(text: &str) -> Result<Self, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_server()
            .and_then(|()| self.validate_media())
            .and_then(|()| self.validate_log())
            .and_then(|()| {
                headwater_common::config::validate(&self.admin, &self.uploads, &self.catalog)
            })
            .and_then(|()| self.validate_ingest())
            .and_then(|()| self.validate_streams())
            .and_then(|()| self.validate_cluster())
            .and_then(|()| {
                let h = &self.tokens.client_ip_header;
                if !h.is_empty() && !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
                    return bad("tokens.client_ip_header", "must be a header name");
                }
                Ok(())
            })
            .map_err(|(key, reason)| ConfigError::Value { key, reason })
    }

    /// A cluster needs the catalog: it is where the nodes meet.
    fn validate_cluster(&self) -> Checked {
        self.cluster.validate()?;
        if self.cluster.enabled() && self.admin.listen.is_none() && self.catalog.database.is_empty()
        {
            return bad(
                "cluster.advertise",
                "needs the catalog (catalog.database, or the admin listener's default one)",
            );
        }
        Ok(())
    }

    fn validate_server(&self) -> Checked {
        if self.server.threads > 1024 {
            return bad("server.threads", "must be at most 1024 (0 = one per core)");
        }
        if self.server.keepalive_timeout_secs == 0
            || self.server.request_timeout_secs == 0
            || self.server.send_timeout_secs == 0
        {
            return bad(
                "server.*_timeout_secs",
                "timeouts must be at least 1 second",
            );
        }
        if !(1024..=1 << 20).contains(&self.server.max_request_head_bytes) {
            return bad(
                "server.max_request_head_bytes",
                "must be between 1024 and 1048576",
            );
        }
        let d = self.packaging.segment_duration;
        if !(d.is_finite() && (0.5..=60.0).contains(&d)) {
            return bad(
                "packaging.segment_duration",
                "must be between 0.5 and 60 seconds",
            );
        }
        if self.http.cors_allow_origin.chars().any(|c| c.is_control()) {
            return bad(
                "http.cors_allow_origin",
                "must not contain control characters",
            );
        }
        Ok(())
    }

    fn validate_media(&self) -> Checked {
        if self.media.index_cache_mb == 0 {
            return bad("media.index_cache_mb", "must be at least 1");
        }
        if self.media.segment_cache_mb > 1 << 20 {
            return bad("media.segment_cache_mb", "must be at most 1048576 (1 TiB)");
        }
        if let Some(dir) = &self.media.segment_cache_dir {
            // The one check that looks at the machine: a cache that cannot
            // make its files would fall back to the source on every request.
            if let Err(e) = rustix::fs::open(
                dir,
                rustix::fs::OFlags::TMPFILE
                    | rustix::fs::OFlags::RDWR
                    | rustix::fs::OFlags::CLOEXEC,
                rustix::fs::Mode::RUSR | rustix::fs::Mode::WUSR,
            ) {
                return bad(
                    "media.segment_cache_dir",
                    &format!("cannot make unnamed files in {}: {e}", dir.display()),
                );
            }
        }
        if !(1..=4096).contains(&self.media.max_metadata_mb) {
            return bad("media.max_metadata_mb", "must be between 1 and 4096");
        }
        self.validate_objects()
    }

    fn validate_objects(&self) -> Checked {
        let m = &self.media;
        let root = m.root.to_string_lossy();
        if root.starts_with("s3://") && headwater_objects::parse_url(&root).is_none() {
            return bad("media.root", "a bucket is named s3://BUCKET[/PREFIX]");
        }
        if !(100..=600_000).contains(&m.object_timeout_ms) {
            return bad("media.object_timeout_ms", "must be between 100 and 600000");
        }
        if !(64..=65_536).contains(&m.object_chunk_kb) {
            return bad("media.object_chunk_kb", "must be between 64 and 65536");
        }
        if m.object_cache_mb.saturating_mul(1024) < m.object_chunk_kb.saturating_mul(4) {
            return bad("media.object_cache_mb", "must hold at least four chunks");
        }
        Ok(())
    }

    /// How to reach the library's bucket.
    pub fn bucket_options(&self) -> headwater_objects::BucketOptions {
        let m = &self.media;
        headwater_objects::BucketOptions {
            endpoint: m.s3_endpoint.clone(),
            region: m.s3_region.clone(),
            path_style: m.s3_path_style,
            timeout: std::time::Duration::from_millis(m.object_timeout_ms),
        }
    }

    /// Where object chunks are cached: `media.object_cache_dir`, else
    /// `$CACHE_DIRECTORY/objects` (systemd's `CacheDirectory=`), else
    /// `headwater-objects` in the temporary directory.
    pub fn object_cache_dir(&self) -> PathBuf {
        self.media.object_cache_dir.clone().unwrap_or_else(|| {
            std::env::var_os("CACHE_DIRECTORY")
                .map(|d| PathBuf::from(d).join("objects"))
                .unwrap_or_else(|| std::env::temp_dir().join("headwater-objects"))
        })
    }

    /// The library's bucket URL when `media.root` names one.
    pub fn bucket_url(&self) -> Option<String> {
        let root = self.media.root.to_string_lossy();
        root.starts_with("s3://").then(|| root.into_owned())
    }

    fn validate_log(&self) -> Checked {
        if self.log.level.trim().is_empty() {
            return bad("log.level", "must not be empty");
        }
        if let Err(e) = tracing_subscriber::EnvFilter::try_new(&self.log.level) {
            return bad("log.level", &format!("not a level or tracing filter: {e}"));
        }
        Ok(())
    }

    fn validate_ingest(&self) -> Checked {
        let i = &self.ingest;
        if !(i.segment_duration.is_finite() && (0.5..=30.0).contains(&i.segment_duration)) {
            return bad(
                "ingest.segment_duration",
                "must be between 0.5 and 30 seconds",
            );
        }
        if !(i.part_duration.is_finite()
            && i.part_duration >= 0.05
            && i.part_duration <= i.segment_duration)
        {
            return bad(
                "ingest.part_duration",
                "must be at least 0.05 s and at most ingest.segment_duration",
            );
        }
        if !(10..=7 * 24 * 3600).contains(&i.dvr_window_secs) {
            return bad("ingest.dvr_window_secs", "must be 10 to 604800");
        }
        if i.max_stream_mb == 0 {
            return bad("ingest.max_stream_mb", "must be at least 1");
        }
        if i.source_connections_burst == 0 {
            return bad("ingest.source_connections_burst", "must be at least 1");
        }
        let r = i.source_connections_per_second;
        if !(r.is_finite() && r > 0.0) {
            return bad(
                "ingest.source_connections_per_second",
                "must be a positive number",
            );
        }
        if i.wrong_keys_before_lockout == 0 {
            return bad("ingest.wrong_keys_before_lockout", "must be at least 1");
        }
        if i.lockout_secs > 7 * 24 * 3600 {
            return bad("ingest.lockout_secs", "must be at most 604800");
        }
        if !i.srt_passphrase.is_empty() && !(10..=79).contains(&i.srt_passphrase.len()) {
            return bad(
                "ingest.srt_passphrase",
                "must be 10 to 79 characters (SRT's limits)",
            );
        }
        Ok(())
    }

    fn validate_streams(&self) -> Checked {
        for s in &self.ingest.streams {
            let ok = (1..=64).contains(&s.name.len())
                && s.name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
            if !ok {
                return bad(
                    "ingest.streams.name",
                    "must be 1 to 64 of A-Z, a-z, 0-9, '_', '-'",
                );
            }
            if s.key.is_empty()
                || s.key.len() > 256
                || s.key
                    .chars()
                    .any(|c| c.is_control() || c == '&' || c == ',')
            {
                return bad(
                    "ingest.streams.key",
                    "must be 1 to 256 characters without '&', ',' or control characters",
                );
            }
        }
        Ok(())
    }

    /// Worker threads to run: the configured number, or one per core.
    pub fn worker_threads(&self) -> usize {
        match self.server.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_the_defaults() {
        assert_eq!(Config::from_toml("").unwrap(), Config::default());
    }

    #[test]
    fn unknown_key_is_named() {
        let e = Config::from_toml("[server]\nlisten = \"127.0.0.1:1\"\nthreds = 2\n").unwrap_err();
        assert!(e.to_string().contains("threds"), "{e}");
        let line = e.one_line();
        assert!(
            !line.contains('\n') && line.contains("line 3") && line.contains("threds"),
            "{line}"
        );
    }

    #[test]
    fn a_log_filter_that_does_not_parse_is_named() {
        let e = Config::from_toml("[log]\nlevel = \"info,headwater=loud\"\n").unwrap_err();
        assert!(e.to_string().contains("log.level"), "{e}");
        Config::from_toml("[log]\nlevel = \"warn,headwater_origin=debug\"\n").unwrap();
    }

    #[test]
    fn out_of_range_value_is_named() {
        let e = Config::from_toml("[packaging]\nsegment_duration = 0.0\n").unwrap_err();
        assert!(e.to_string().contains("packaging.segment_duration"), "{e}");
    }

    #[test]
    fn a_segment_cache_dir_that_cannot_hold_files_is_named() {
        let e = Config::from_toml("[media]\nsegment_cache_dir = \"/nonexistent/headwater\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("media.segment_cache_dir"), "{e}");
        let dir = std::env::temp_dir();
        let ok = format!("[media]\nsegment_cache_dir = \"{}\"\n", dir.display());
        assert_eq!(
            Config::from_toml(&ok).unwrap().media.segment_cache_dir,
            Some(dir)
        );
    }

    #[test]
    fn shipped_example_parses() {
        let text = include_str!("../../conf/headwater.toml");
        Config::from_toml(text).unwrap();
    }
}
