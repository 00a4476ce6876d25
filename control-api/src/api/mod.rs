//! The HTTP API under `/api/v1`, plus `/metrics`, `/healthz`, `/readyz`.
//!
//! Routes are declared once, with their OpenAPI description, through
//! `utoipa_axum`: the router and `/api/v1/openapi.json` come from the same
//! declarations, so the document cannot drift from what is served.

mod assets;
mod auth;
mod ladders;
mod resource;
mod streams;
mod system;
mod tokens;
mod uploads;

pub use crate::jobs::asset_dir;
pub use uploads::{clean_tmp, tmp_dir};

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, MatchedPath, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use headwater_packager::Limits;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::catalog::SharedCatalog;
use crate::config::{Scope, TokensConfig, UploadsConfig};
use crate::db::Db;
use crate::error::ApiError;
use crate::jobs::Jobs;
use crate::metrics::Metrics;

/// An admin token as held in memory: its hash, never the token.
#[derive(Clone)]
pub struct AdminKey {
    /// For logs.
    pub name: String,
    /// SHA-256 of the token.
    pub sha256: [u8; 32],
    /// What it may do.
    pub scopes: Vec<Scope>,
}

impl AdminKey {
    /// From a config entry (already validated as 64 hex digits).
    pub fn from_hex(name: &str, hex: &str, scopes: Vec<Scope>) -> Option<Self> {
        let mut sha256 = [0u8; 32];
        for (i, b) in sha256.iter_mut().enumerate() {
            *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(AdminKey {
            name: name.to_owned(),
            sha256,
            scopes,
        })
    }

    /// From a plain token (`--admin-token`): hashed at once.
    pub fn from_token(name: &str, token: &str, scopes: Vec<Scope>) -> Self {
        AdminKey {
            name: name.to_owned(),
            sha256: Sha256::digest(token.as_bytes()).into(),
            scopes,
        }
    }
}

/// Everything a handler may use.
pub struct State {
    /// The catalog database.
    pub db: Db,
    /// The data plane's view, refreshed after every write.
    pub catalog: SharedCatalog,
    /// Metrics of both planes.
    pub metrics: Arc<Metrics>,
    /// The media root, which source paths are relative to; with a bucket
    /// library, a local directory for unfinished uploads (and the default
    /// SQLite catalog) only.
    pub media_root: PathBuf,
    /// The library's bucket, when it is in one: source paths are its keys.
    pub bucket: Option<Arc<headwater_objects::Bucket>>,
    /// How symlinks under it are treated (`media.symlinks`).
    pub symlinks: headwater_common::media_root::Symlinks,
    /// Admin tokens (swapped whole by a config reload).
    pub admin: crate::AdminKeys,
    /// Playback token settings.
    pub tokens: TokensConfig,
    /// Upload settings.
    pub uploads: UploadsConfig,
    /// Bounds for probing files.
    pub limits: Limits,
    /// Transcode jobs.
    pub jobs: Jobs,
    /// Live stream stats from ingest.
    pub live_stats: Option<crate::LiveStatsFn>,
}

/// Shared handler state.
pub type AppState = Arc<State>;

impl State {
    /// The media root with its symlink policy, for confined opens.
    pub fn root(&self) -> headwater_common::media_root::MediaRoot {
        headwater_common::media_root::MediaRoot::new(self.media_root.clone(), self.symlinks)
    }

    /// Where catalog source paths are: the bucket, or the media root.
    pub fn sources(&self) -> crate::probe::Root {
        match &self.bucket {
            Some(b) => crate::probe::Root::Bucket(b.clone()),
            None => crate::probe::Root::Dir(self.root()),
        }
    }
}

impl State {
    /// What a transcode job needs of this state.
    pub fn job_context(&self) -> crate::jobs::JobContext {
        crate::jobs::JobContext {
            db: self.db.clone(),
            catalog: self.catalog.clone(),
            root: crate::probe::Root::Dir(self.root()),
            gst_launch: self.uploads.gst_launch.clone(),
            limits: self.limits.clone(),
        }
    }

    /// Checks the request's bearer token for `scope`: `401` without a
    /// known token, `403` when it lacks the scope.
    pub fn authorize(&self, headers: &HeaderMap, scope: Scope) -> Result<(), ApiError> {
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(token) = presented else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "an admin bearer token is required (Authorization: Bearer ...)",
            ));
        };
        let hash: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        // Compare with every key, so the time taken says nothing.
        let keys = self.admin.load();
        let mut found: Option<&AdminKey> = None;
        for k in keys.iter() {
            if bool::from(k.sha256.ct_eq(&hash)) {
                found = Some(k);
            }
        }
        let Some(key) = found else {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "unknown admin token",
            ));
        };
        if key.scopes.contains(&scope) {
            Ok(())
        } else {
            tracing::info!(token = %key.name, scope = scope.name(), "admin token lacks scope");
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "forbidden",
                format!("this token lacks the '{}' scope", scope.name()),
            ))
        }
    }

    /// Reloads the data plane's view after a write.
    pub async fn refresh(&self) {
        if let Err(e) = crate::catalog::refresh(&self.db, &self.catalog).await {
            tracing::warn!(error = %e, "catalog refresh after a write failed; the poller retries");
        }
    }
}

/// A JSON body whose parse errors are `400 invalid_request` naming the field.
pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    axum::Json<T>: FromRequest<S, Rejection = axum::extract::rejection::JsonRejection>,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(e) => {
                let status = e.status();
                let code = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    "payload_too_large"
                } else {
                    "invalid_request"
                };
                let status = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    status
                } else {
                    StatusCode::BAD_REQUEST
                };
                Err(ApiError::new(status, code, e.body_text()))
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "headwater control API",
        description = "Catalog, ladders, live streams, playback tokens, uploads and transcode jobs. \
                       Every /api/v1 route needs `Authorization: Bearer TOKEN` with the scope it names.",
        version = "1"
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "assets", description = "The VOD catalog"),
        (name = "ladders", description = "Rendition ladders"),
        (name = "streams", description = "Live streams and publish keys"),
        (name = "tokens", description = "Playback tokens and signing keys"),
        (name = "jobs", description = "Transcode jobs"),
        (name = "system", description = "Health, readiness, metrics, this document")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// Every route, each with its OpenAPI description.
fn routes() -> OpenApiRouter<AppState> {
    let api = OpenApiRouter::new()
        .routes(routes!(assets::create, assets::list))
        .routes(routes!(assets::get, assets::patch, assets::delete))
        .routes(routes!(uploads::upload))
        .routes(routes!(assets::transcode))
        .routes(routes!(assets::job_list))
        .routes(routes!(assets::job_get))
        .routes(routes!(ladders::create, ladders::list))
        .routes(routes!(ladders::get, ladders::delete))
        .routes(routes!(streams::create, streams::list))
        .routes(routes!(streams::get, streams::delete))
        .routes(routes!(streams::rotate_key))
        .routes(routes!(streams::stats))
        .routes(routes!(tokens::mint))
        .routes(routes!(tokens::keys, tokens::new_key))
        .routes(routes!(tokens::retire_key))
        .routes(routes!(system::openapi_json));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/v1", api)
        .routes(routes!(system::healthz))
        .routes(routes!(system::readyz))
        .routes(routes!(system::metrics))
}

/// The router and its OpenAPI document.
fn parts() -> (axum::Router<AppState>, utoipa::openapi::OpenApi) {
    let (router, mut doc) = routes().split_for_parts();
    document_unavailable(&mut doc);
    (router, doc)
}

/// Every catalog operation answers 503 `database_unavailable`, with
/// `Retry-After`, while the database is out of reach (`Error::database_unavailable`):
/// said once here for every `/api/v1` operation but this document.
fn document_unavailable(doc: &mut utoipa::openapi::OpenApi) {
    use utoipa::openapi::schema::{ObjectBuilder, Type};
    use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder};
    let response = ResponseBuilder::new()
        .description(
            "The catalog database is out of reach (code `database_unavailable`); \
             retry after `Retry-After` seconds",
        )
        .header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        )
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build();
    for (path, item) in doc.paths.paths.iter_mut() {
        if !path.starts_with("/api/v1/") || path == "/api/v1/openapi.json" {
            continue;
        }
        let ops = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
            &mut item.patch,
        ];
        for op in ops.into_iter().flatten() {
            op.responses
                .responses
                .entry("503".into())
                .or_insert_with(|| RefOr::T(response.clone()));
        }
    }
}

/// The admin router. Its OpenAPI document is served at `/api/v1/openapi.json`.
pub fn router(state: AppState, max_body_bytes: usize) -> axum::Router {
    let (router, doc) = parts();
    router
        .layer(axum::Extension(Arc::new(doc)))
        .layer(axum::extract::DefaultBodyLimit::max(max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(state.clone(), observe))
        .fallback(|| async { ApiError::not_found("route") })
        .with_state(state)
}

/// The OpenAPI document, as served.
pub fn openapi() -> utoipa::openapi::OpenApi {
    parts().1
}

/// Records every admin request in the metrics, by route template.
async fn observe(
    axum::extract::State(state): axum::extract::State<AppState>,
    req: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    state.metrics.record_admin(
        &route,
        response.status().as_u16(),
        started.elapsed().as_nanos() as u64,
    );
    response
}

/// `201 Created` with a JSON body.
fn created<T: serde::Serialize>(v: T) -> Response {
    (StatusCode::CREATED, axum::Json(v)).into_response()
}
