//! Config reload on `SIGHUP`: what can change in a running server, and what
//! waits for a restart.
//!
//! A reload re-reads the config file (with the command line's overrides on
//! top, as at start) and validates it whole. A file that does not load or
//! validate changes nothing: the error is logged naming the key, the
//! `config_last_reload_successful` gauge drops to 0, and the server goes on
//! with what it runs. A valid file applies its reloadable keys at once and
//! names every other key that differs, which keeps its running value:
//!
//! - `ingest.streams`: who may publish. The next publish is checked against
//!   the new list; a stream on air keeps its publisher.
//! - `admin.tokens`: the next API request is checked against the new list.
//! - `log.level`: at once, unless `RUST_LOG` was set at start (it wins).
//!
//! Nothing is closed: connections, held playlist requests, publishers and
//! DVR windows carry on. Listeners, caches, worker threads and the catalog
//! database are built once at start; changing them takes a restart (the
//! process has no way to hand a live DVR window to a new one).

use std::sync::Arc;

use arc_swap::ArcSwap;
use headwater_control_api::AdminKeys;
use headwater_control_api::metrics::Metrics;

use headwater_origin::config::{Config, ConfigError, StreamKey};

/// The keys a reload applies; every other change waits for a restart.
pub(crate) const RELOADABLE: [&str; 3] = ["ingest.streams", "admin.tokens", "log.level"];

/// The dotted keys that differ between `running` and `new`, other than the
/// reloadable ones, sorted.
pub(crate) fn needs_restart(running: &Config, new: &Config) -> Vec<String> {
    let (Ok(a), Ok(b)) = (serde_json::to_value(running), serde_json::to_value(new)) else {
        // Every config type serializes; should one ever not, say so
        // rather than claim nothing changed.
        return vec!["(the whole file)".to_owned()];
    };
    let mut out = Vec::new();
    diff("", &a, &b, &mut out);
    out.retain(|k| !RELOADABLE.contains(&k.as_str()));
    out.sort();
    out
}

fn diff(prefix: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    use serde_json::Value::Object;
    match (a, b) {
        (Object(x), Object(y)) => {
            for (k, va) in x {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                match y.get(k) {
                    Some(vb) => diff(&key, va, vb, out),
                    None => out.push(key),
                }
            }
        }
        _ if a != b => out.push(prefix.to_owned()),
        _ => {}
    }
}

/// `running` with the reloadable keys of `new`: what runs after a reload.
pub(crate) fn applied(running: &Config, new: &Config) -> Config {
    let mut c = running.clone();
    c.ingest.streams = new.ingest.streams.clone();
    c.admin.tokens = new.admin.tokens.clone();
    c.log.level = new.log.level.clone();
    c
}

/// Sets the log filter; `Err` names what is wrong with it.
pub(crate) type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// What a reload changes in the running server.
pub(crate) struct Reloader {
    running: Config,
    /// The publish keys `ingest` checks at every publish.
    pub streams: Arc<ArcSwap<Vec<StreamKey>>>,
    admin: Option<AdminKeys>,
    admin_token: Option<String>,
    set_log_level: Option<SetLogLevel>,
    metrics: Arc<Metrics>,
}

impl Reloader {
    /// For a server started with `running`. `admin` is the control plane's
    /// token set (when it runs) and `admin_token` the `--admin-token` kept
    /// across reloads; `set_log_level` is `None` when `RUST_LOG` rules.
    pub(crate) fn new(
        running: Config,
        admin: Option<AdminKeys>,
        admin_token: Option<String>,
        set_log_level: Option<SetLogLevel>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Reloader {
            streams: Arc::new(ArcSwap::from_pointee(running.ingest.streams.clone())),
            running,
            admin,
            admin_token,
            set_log_level,
            metrics,
        }
    }

    /// Applies a freshly loaded config, or keeps the running one when it
    /// did not load. Returns whether it was applied.
    pub(crate) fn reload(&mut self, loaded: Result<Config, ConfigError>) -> bool {
        let new = match loaded {
            Ok(c) => c,
            Err(e) => {
                let error = e.one_line();
                tracing::error!(error, "config reload refused; the running config stays");
                self.metrics.record_reload(false);
                return false;
            }
        };
        if new.log.level != self.running.log.level {
            if let Some(set) = &self.set_log_level {
                if let Err(e) = set(&new.log.level) {
                    let e = ConfigError::Value {
                        key: "log.level",
                        reason: e,
                    };
                    let error = e.one_line();
                    tracing::error!(error, "config reload refused; the running config stays");
                    self.metrics.record_reload(false);
                    return false;
                }
            } else {
                tracing::warn!("log.level changed, but RUST_LOG set at start rules the log filter");
            }
        }
        for key in needs_restart(&self.running, &new) {
            tracing::warn!(
                key,
                "changed in the config file; takes effect after a restart"
            );
        }
        self.streams.store(Arc::new(new.ingest.streams.clone()));
        let admin_tokens = self
            .admin
            .as_ref()
            .map(|a| a.set(&new.admin.tokens, self.admin_token.as_deref()));
        self.running = applied(&self.running, &new);
        self.metrics.record_reload(true);
        tracing::info!(
            streams = self.running.ingest.streams.len(),
            admin_tokens,
            log_level = %self.running.log.level,
            "config reloaded"
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Config {
        Config::from_toml(text).unwrap()
    }

    #[test]
    fn reloadable_keys_are_not_restart_keys() {
        let a = parse("[log]\nlevel = \"info\"\n");
        let b = parse(
            "[log]\nlevel = \"debug\"\n\n[[ingest.streams]]\nname = \"a\"\nkey = \"0123456789abcdef\"\n",
        );
        assert_eq!(needs_restart(&a, &b), Vec::<String>::new());
        let c = applied(&a, &b);
        assert_eq!(c.log.level, "debug");
        assert_eq!(c.ingest.streams.len(), 1);
    }

    #[test]
    fn every_other_change_is_named_by_its_dotted_key() {
        let a = parse("");
        let b = parse(
            "[server]\nlisten = \"127.0.0.1:9\"\nkeepalive_timeout_secs = 7\n\n\
             [http]\ncors_allow_origin = \"https://example.com\"\n\n\
             [ingest]\nrtmp_listen = \"off\"\n",
        );
        assert_eq!(
            needs_restart(&a, &b),
            [
                "http.cors_allow_origin",
                "ingest.rtmp_listen",
                "server.keepalive_timeout_secs",
                "server.listen",
            ]
        );
        // What runs after the reload still has the old values.
        assert_eq!(applied(&a, &b), a);
    }
}
