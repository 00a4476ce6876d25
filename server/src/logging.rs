//! Logging: `tracing` to stderr, text or JSON, its filter behind a reload
//! handle, other crates' events throttled (`logfilter`).

use headwater_origin::Config;
use headwater_origin::config::LogFormat;

/// Installs the log subscriber. Returns how to change its filter on a
/// reload, or `None` when `RUST_LOG` sets it (the environment wins).
/// Other crates' events are rate-limited per target and level
/// ([`crate::logfilter`]).
pub(crate) fn init_tracing(cfg: &Config) -> Option<crate::reload::SetLogLevel> {
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
        .with(crate::logfilter::Throttled::new(fmt))
        .init();
    let set: crate::reload::SetLogLevel = Box::new(move |level: &str| {
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        handle.reload(filter).map_err(|e| e.to_string())
    });
    (!ruled_by_env).then_some(set)
}
