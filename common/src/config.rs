//! The control API's sections of headwater's typed configuration.
//!
//! These structs are embedded in the origin's `Config` (one file, one
//! struct); every key is documented in `conf/headwater.toml`.

use std::net::SocketAddr;

use serde::{Deserialize, Deserializer, Serialize};

/// `[admin]`: the admin listener and who may use it.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Address of the admin listener (API, `/metrics`, health); `"off"` disables it.
    #[serde(deserialize_with = "listen_or_off")]
    pub listen: Option<SocketAddr>,
    /// Bearer tokens, stored as SHA-256 hashes.
    pub tokens: Vec<AdminToken>,
    /// Largest JSON request body, in KiB.
    pub max_body_kb: u64,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: Some(SocketAddr::from(([127, 0, 0, 1], 8081))),
            tokens: Vec::new(),
            max_body_kb: 256,
        }
    }
}

/// One admin bearer token: its hash and what it may do.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct AdminToken {
    /// A name for logs (never the token itself).
    pub name: String,
    /// Lower-case hex SHA-256 of the token (`printf %s TOKEN | sha256sum`).
    pub sha256: String,
    /// Any of `read`, `write`, `tokens`.
    pub scopes: Vec<Scope>,
}

/// What an admin token may do.
#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read the catalog, ladders, streams and jobs.
    Read,
    /// Create, change and delete them; upload; start jobs.
    Write,
    /// Mint playback tokens and manage signing keys.
    Tokens,
}

impl Scope {
    /// Every scope: what `--admin-token` grants.
    pub const ALL: [Scope; 3] = [Scope::Read, Scope::Write, Scope::Tokens];

    /// The name used in config and error messages.
    pub fn name(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Tokens => "tokens",
        }
    }
}

/// `[catalog]`: where the catalog lives.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CatalogConfig {
    /// `sqlite:///path/catalog.db` or `postgres://user@host/db`; empty means
    /// `{media.root}/.headwater/catalog.db`.
    pub database: String,
    /// How often each node checks the database for changes made by others (ms).
    pub poll_interval_ms: u64,
}

impl CatalogConfig {
    /// The poll interval, defaulted.
    pub fn poll_ms(&self) -> u64 {
        if self.poll_interval_ms == 0 {
            250
        } else {
            self.poll_interval_ms
        }
    }
}

/// `[cluster]`: several nodes sharing one catalog.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    /// This node's data plane as the other nodes reach it,
    /// `http://HOST:PORT`; empty: live streams are served only by the
    /// node they are published to.
    pub advertise: String,
    /// How often this node says which streams it has on air (ms).
    pub heartbeat_ms: u64,
    /// A node whose heartbeat has not moved for this long is not asked (ms).
    pub stale_after_ms: u64,
}

impl Default for ClusterConfig {
    fn default() -> Self {
        Self {
            advertise: String::new(),
            heartbeat_ms: 1000,
            stale_after_ms: 3000,
        }
    }
}

impl ClusterConfig {
    /// Whether this node takes part in a cluster.
    pub fn enabled(&self) -> bool {
        !self.advertise.is_empty()
    }

    /// A problem with the section, naming the key.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.enabled() && crate::cluster::authority(&self.advertise).is_none() {
            return Err((
                "cluster.advertise",
                "must be http://HOST:PORT (this node's data plane as other nodes reach it)".into(),
            ));
        }
        if !(100..=10_000).contains(&self.heartbeat_ms) {
            return Err((
                "cluster.heartbeat_ms",
                "must be between 100 and 10000".into(),
            ));
        }
        if self.stale_after_ms < 2 * self.heartbeat_ms || self.stale_after_ms > 60_000 {
            return Err((
                "cluster.stale_after_ms",
                "must be at least two heartbeats and at most 60000".into(),
            ));
        }
        Ok(())
    }
}

/// `[tokens]`: playback tokens.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct TokensConfig {
    /// Header holding the viewer's address when behind a CDN or proxy (its
    /// first entry is used), such as `X-Forwarded-For`; empty uses the peer
    /// address. Only set it when every request comes through a proxy you trust.
    pub client_ip_header: String,
    /// Longest TTL a minted token may have, in seconds (0 = 7 days).
    pub max_ttl_secs: u64,
}

impl TokensConfig {
    /// The TTL bound, defaulted.
    pub fn max_ttl(&self) -> u64 {
        if self.max_ttl_secs == 0 {
            7 * 24 * 3600
        } else {
            self.max_ttl_secs
        }
    }
}

/// `[uploads]`: mezzanine uploads and transcode jobs.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct UploadsConfig {
    /// Largest upload, in MiB.
    pub max_upload_mb: u64,
    /// Transcode jobs run at once; more wait queued.
    pub max_jobs: usize,
    /// The GStreamer launcher that runs transcode pipelines.
    pub gst_launch: String,
}

impl Default for UploadsConfig {
    fn default() -> Self {
        Self {
            max_upload_mb: 20 * 1024,
            max_jobs: 1,
            gst_launch: "gst-launch-1.0".to_owned(),
        }
    }
}

fn listen_or_off<'de, D: Deserializer<'de>>(d: D) -> Result<Option<SocketAddr>, D::Error> {
    let s = String::deserialize(d)?;
    parse_listen(&s).map_err(serde::de::Error::custom)
}

/// Parses an admin listen address, or `off`.
pub fn parse_listen(s: &str) -> Result<Option<SocketAddr>, String> {
    if s.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    s.parse()
        .map(Some)
        .map_err(|_| format!("'{s}' is neither an address (IP:PORT) nor \"off\""))
}

/// A problem with these sections, naming the key.
pub fn validate(
    admin: &AdminConfig,
    uploads: &UploadsConfig,
    catalog: &CatalogConfig,
) -> Result<(), (&'static str, String)> {
    for t in &admin.tokens {
        let ok = t.sha256.len() == 64
            && t.sha256
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !ok {
            return Err((
                "admin.tokens.sha256",
                format!("token '{}': must be 64 lower-case hex digits", t.name),
            ));
        }
        if t.scopes.is_empty() {
            return Err((
                "admin.tokens.scopes",
                format!("token '{}': needs at least one scope", t.name),
            ));
        }
    }
    if !(1..=1 << 20).contains(&admin.max_body_kb) {
        return Err(("admin.max_body_kb", "must be between 1 and 1048576".into()));
    }
    if uploads.max_upload_mb == 0 {
        return Err(("uploads.max_upload_mb", "must be at least 1".into()));
    }
    if !(1..=64).contains(&uploads.max_jobs) {
        return Err(("uploads.max_jobs", "must be between 1 and 64".into()));
    }
    let db = catalog.database.as_str();
    if !(db.is_empty()
        || db.starts_with("sqlite:")
        || db.starts_with("postgres://")
        || db.starts_with("postgresql://"))
    {
        return Err((
            "catalog.database",
            "must be empty, a sqlite: URL or a postgres:// URL".into(),
        ));
    }
    if catalog.poll_interval_ms > 1000 {
        return Err((
            "catalog.poll_interval_ms",
            "must be at most 1000 (changes must show within a second)".into(),
        ));
    }
    Ok(())
}
