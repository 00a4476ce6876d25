//! headwater's control API: the catalog, rendition ladders, live stream
//! records, playback tokens, uploads and transcode jobs, on an admin
//! listener of its own.
//!
//! ```text
//!  platform ──JSON──► admin listener (axum, own runtime) ──► Db (SQLite | PostgreSQL)
//!                              │                               │ catalog_version polled
//!                              └── refresh ──► SharedCatalog ◄─┘
//!                                                (ArcSwap, read lock-free by every
//!                                                 data-plane worker: assets, keys)
//! ```
//!
//! Key types: [`ControlPlane`] (what [`start`] returns to the binary),
//! [`catalog::SharedCatalog`], [`token`] (sign/verify), [`metrics::Metrics`].

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod api;
pub mod catalog;
pub mod cluster;
pub mod db;
mod error;
pub mod jobs;
pub mod model;
pub mod probe;

/// What the data plane shares with the control plane, from
/// `headwater-common`: re-exported so `crate::token` and `crate::metrics`
/// read as before inside this crate.
pub use headwater_common::{config, metrics, token};

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use error::{ApiError, Error, ErrorBody};

use headwater_packager::Limits;

/// What the binary hands to [`start`].
pub struct Options {
    /// `[admin]`.
    pub admin: config::AdminConfig,
    /// An extra full-scope token (`--admin-token`), hashed at once.
    pub admin_token: Option<String>,
    /// `[catalog]`.
    pub catalog: config::CatalogConfig,
    /// `[tokens]`.
    pub tokens: config::TokensConfig,
    /// `[uploads]`.
    pub uploads: config::UploadsConfig,
    /// The media root (with a bucket library, a local directory for
    /// unfinished uploads and the default SQLite catalog).
    pub media_root: PathBuf,
    /// The library's bucket, when it is in one.
    pub bucket: Option<Arc<headwater_objects::Bucket>>,
    /// How symlinks under it are treated (`media.symlinks`).
    pub symlinks: headwater_common::media_root::Symlinks,
    /// Live stream stats, from ingest (`GET /api/v1/streams/{name}/stats`).
    pub live_stats: Option<LiveStatsFn>,
    /// Bounds for probing.
    pub limits: Limits,
    /// The admin listener, already bound (inherited by an upgrade); when
    /// `None`, `admin.listen` is bound here.
    pub admin_listener: Option<std::net::TcpListener>,
    /// Turns `true` when the process stops or hands over to another: the
    /// admin listener stops accepting and finishes its requests.
    pub stop: tokio::sync::watch::Receiver<bool>,
    /// With `cluster.advertise`: this node's heartbeat (`cluster`).
    pub cluster: Option<cluster::ClusterOptions>,
}

/// A live stream's current stats as JSON, or `None` when it is not live on this node.
pub type LiveStatsFn = Arc<dyn Fn(&str) -> Option<serde_json::Value> + Send + Sync>;

/// The running control plane.
pub struct ControlPlane {
    /// The catalog view the data plane reads.
    pub catalog: catalog::SharedCatalog,
    /// Where the admin listener is, when it is on.
    pub admin_addr: Option<SocketAddr>,
    /// The admin tokens in force, for a config reload to replace.
    pub admin_keys: AdminKeys,
    /// Answers once the admin listener has stopped (after `stop`) and its
    /// requests in flight are done.
    pub drained: Option<std::sync::mpsc::Receiver<()>>,
}

/// The admin tokens in force: `[admin] tokens` plus `--admin-token`.
/// Every API request reads them; a config reload replaces them whole, so a
/// removed token is refused from the next request on.
#[derive(Clone, Default)]
pub struct AdminKeys(Arc<arc_swap::ArcSwap<Vec<api::AdminKey>>>);

impl AdminKeys {
    /// The keys of `tokens` plus `extra` (a plain token with every scope).
    pub fn new(tokens: &[config::AdminToken], extra: Option<&str>) -> Self {
        let keys = AdminKeys::default();
        keys.set(tokens, extra);
        keys
    }

    /// Replaces the keys; returns how many there are now.
    pub fn set(&self, tokens: &[config::AdminToken], extra: Option<&str>) -> usize {
        let mut admin: Vec<api::AdminKey> = tokens
            .iter()
            .filter_map(|t| api::AdminKey::from_hex(&t.name, &t.sha256, t.scopes.clone()))
            .collect();
        if let Some(t) = extra {
            admin.push(api::AdminKey::from_token(
                "--admin-token",
                t,
                config::Scope::ALL.to_vec(),
            ));
        }
        let n = admin.len();
        self.0.store(Arc::new(admin));
        n
    }

    /// The keys now.
    pub fn load(&self) -> arc_swap::Guard<Arc<Vec<api::AdminKey>>> {
        self.0.load()
    }
}

/// Opens the catalog (running migrations), makes sure a signing key
/// exists, fails interrupted jobs, removes unfinished uploads, binds the
/// admin listener, and serves it on a runtime of its own thread. Returns
/// once all of that is done, or with the first error.
pub fn start(
    opts: Options,
    metrics: Arc<metrics::Metrics>,
) -> Result<ControlPlane, anyhow_like::StartError> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("admin".into())
        .spawn(move || {
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .max_blocking_threads(8)
                .thread_name("admin-rt")
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    let _ = tx.send(Err(anyhow_like::StartError(format!("admin runtime: {e}"))));
                    return;
                }
            };
            rt.block_on(async move {
                match setup(opts, metrics).await {
                    Ok((plane, serve)) => {
                        let _ = tx.send(Ok(plane));
                        serve.await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| anyhow_like::StartError(format!("admin thread: {e}")))?;
    rx.recv()
        .map_err(|_| anyhow_like::StartError("the admin thread died while starting".into()))?
}

/// The error type of [`start`], a message for the operator.
pub mod anyhow_like {
    /// Why the control plane could not start.
    #[derive(Debug, thiserror::Error)]
    #[error("{0}")]
    pub struct StartError(pub String);
}

type Serve = std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>;

async fn setup(
    opts: Options,
    metrics: Arc<metrics::Metrics>,
) -> Result<(ControlPlane, Serve), anyhow_like::StartError> {
    use anyhow_like::StartError;
    let url = db::resolve_url(&opts.catalog.database, &opts.media_root);
    let shown = db::redacted(&url);
    let database = db::Db::open(&url)
        .await
        .map_err(|e| StartError(format!("catalog {shown}: {e}")))?;
    catalog::ensure_signing_key(&database)
        .await
        .map_err(|e| StartError(format!("catalog {shown}: {e}")))?;
    match database
        .fail_interrupted("the server stopped while the job was queued or running")
        .await
    {
        Ok(0) => {}
        Ok(n) => tracing::warn!(jobs = n, "marked jobs interrupted by a restart as failed"),
        Err(e) => return Err(StartError(format!("catalog {shown}: {e}"))),
    }
    match api::clean_tmp(&opts.media_root) {
        Ok(0) => {}
        Ok(n) => tracing::info!(files = n, "removed unfinished uploads"),
        Err(e) => tracing::warn!(error = %e, "cannot clean the upload directory"),
    }
    let shared = catalog::empty();
    catalog::refresh(&database, &shared)
        .await
        .map_err(|e| StartError(format!("catalog {shown}: {e}")))?;
    tracing::info!(database = %shown, backend = ?database.backend(), "catalog open");
    let poller = tokio::spawn(catalog::poll(
        database.clone(),
        shared.clone(),
        Duration::from_millis(opts.catalog.poll_ms()),
    ));
    if let Some(c) = opts.cluster {
        tokio::spawn(cluster::run(database.clone(), c, opts.stop.clone()));
    }
    let Some(addr) = opts.admin.listen else {
        let plane = ControlPlane {
            catalog: shared,
            admin_addr: None,
            admin_keys: AdminKeys::default(),
            drained: None,
        };
        return Ok((
            plane,
            Box::pin(async move {
                let _ = poller.await;
            }),
        ));
    };
    let admin = AdminKeys::new(&opts.admin.tokens, opts.admin_token.as_deref());
    if admin.load().is_empty() {
        tracing::warn!("no admin tokens configured: every /api/v1 request will be refused");
    }
    let state = Arc::new(api::State {
        db: database,
        catalog: shared.clone(),
        metrics,
        media_root: opts.media_root.clone(),
        bucket: opts.bucket.clone(),
        symlinks: opts.symlinks,
        admin: admin.clone(),
        tokens: opts.tokens.clone(),
        jobs: jobs::Jobs::new(opts.uploads.max_jobs),
        uploads: opts.uploads.clone(),
        limits: opts.limits.clone(),
        live_stats: opts.live_stats.clone(),
    });
    let router = api::router(state, (opts.admin.max_body_kb as usize) << 10);
    let listener = match opts.admin_listener {
        Some(l) => l
            .set_nonblocking(true)
            .and_then(|()| tokio::net::TcpListener::from_std(l)),
        None => tokio::net::TcpListener::bind(addr).await,
    }
    .map_err(|e| StartError(format!("admin listener {addr}: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| StartError(format!("admin listener {addr}: {e}")))?;
    tracing::info!(admin = %local, "admin API listening");
    let (drained, on_drained) = std::sync::mpsc::channel();
    let plane = ControlPlane {
        catalog: shared,
        admin_addr: Some(local),
        admin_keys: admin,
        drained: Some(on_drained),
    };
    let mut stop = opts.stop;
    let stopped = async move {
        if stop.wait_for(|s| *s).await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    Ok((
        plane,
        Box::pin(async move {
            if let Err(e) = axum::serve(listener, router)
                .with_graceful_shutdown(stopped)
                .await
            {
                tracing::error!(error = %e, "admin listener failed");
            }
            let _ = drained.send(());
            // The catalog poller goes on until the process exits.
            std::future::pending::<()>().await
        }),
    ))
}

/// Signs a playback token from the command line (`headwater token sign`),
/// with the catalog's current signing key.
pub fn sign_offline(
    database: &str,
    media_root: &std::path::Path,
    scope: token::Scope<'_>,
    ttl_secs: u64,
    ip: Option<std::net::IpAddr>,
) -> Result<String, Error> {
    let url = db::resolve_url(database, media_root);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting a runtime", e))?;
    rt.block_on(async {
        let database = db::Db::open(&url).await?;
        catalog::ensure_signing_key(&database).await?;
        let view = catalog::load(&database).await?;
        let key = view.signing.ok_or_else(|| Error::Corrupt {
            what: "signing_keys".into(),
            why: "no readable active key".into(),
        })?;
        let expires = (db::now_ms() / 1000) as u64 + ttl_secs;
        Ok(token::sign(&key, scope, expires, ip))
    })
}
