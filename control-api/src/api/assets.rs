//! `/assets`: the VOD catalog, and the transcode jobs made from it.

use std::future::Future;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::{Auth, Read, Write};
use super::resource::{self, Resource, Stored, exists, not_found};
use super::{ApiJson, AppState};
use crate::db::{Db, WriteError, now_ms};
use crate::error::{ApiError, Error, ErrorBody};
use crate::model::{self, Asset, AssetPatch, Job, Ladder, NewAsset, SourceSpec, TranscodeRequest};

impl Resource for Asset {
    const KIND: &'static str = "asset";

    fn fetch(db: &Db, id: &str) -> impl Future<Output = Result<Option<Self>, Error>> + Send {
        db.asset(id)
    }

    fn fetch_all(db: &Db) -> impl Future<Output = Result<Vec<Self>, Error>> + Send {
        db.assets()
    }
}

impl Stored for Asset {
    // The data plane serves the catalog's assets: a write shows at once.
    const REFRESH: bool = true;

    fn key(&self) -> &str {
        &self.id
    }

    fn insert(db: &Db, asset: &Self) -> impl Future<Output = Result<(), WriteError>> + Send {
        db.insert_asset(asset)
    }

    fn remove(db: &Db, id: &str) -> impl Future<Output = Result<bool, Error>> + Send {
        db.delete_asset(id)
    }
}

impl Resource for Job {
    const KIND: &'static str = "job";

    fn fetch(db: &Db, id: &str) -> impl Future<Output = Result<Option<Self>, Error>> + Send {
        db.job(id)
    }

    fn fetch_all(db: &Db) -> impl Future<Output = Result<Vec<Self>, Error>> + Send {
        db.jobs()
    }
}

/// Probes sources on the blocking pool: `422` naming the unreadable file.
pub(super) async fn probe(
    state: &AppState,
    sources: Vec<SourceSpec>,
) -> Result<crate::probe::Probed, ApiError> {
    probe_in(state, state.sources(), sources).await
}

/// [`probe`] of paths under `root`.
pub(super) async fn probe_in(
    state: &AppState,
    root: crate::probe::Root,
    sources: Vec<SourceSpec>,
) -> Result<crate::probe::Probed, ApiError> {
    let limits = state.limits.clone();
    tokio::task::spawn_blocking(move || crate::probe::probe(&root, &sources, &limits))
        .await
        .map_err(|e| ApiError::from(crate::Error::Random(format!("probe task: {e}"))))?
        .map_err(ApiError::media)
}

/// Register an asset; its sources are probed first.
#[utoipa::path(post, operation_id = "create_asset", path = "/assets", tag = "assets", security(("bearer" = ["write"])),
    request_body = NewAsset,
    responses(
        (status = 201, description = "Created, with the probed tracks", body = Asset),
        (status = 400, description = "Invalid body", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, description = "The id exists", body = ErrorBody),
        (status = 422, description = "A source cannot be used", body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    ApiJson(new): ApiJson<NewAsset>,
) -> Result<Response, ApiError> {
    new.validate()?;
    if state.db.asset(&new.id).await?.is_some() {
        return Err(exists::<Asset>(&new.id));
    }
    let probed = probe(&state, new.sources.clone()).await?;
    let now = now_ms();
    let asset = Asset {
        id: new.id,
        title: new.title,
        metadata: new.metadata.unwrap_or_else(|| serde_json::json!({})),
        require_token: new.require_token,
        sources: new.sources,
        tracks: probed.tracks,
        duration_ms: probed.duration_ms,
        created_at: now,
        updated_at: now,
    };
    let id = asset.id.clone();
    let response = resource::insert(&state, asset).await?;
    tracing::info!(asset = %id, "asset registered");
    Ok(response)
}

/// Every catalog asset.
#[utoipa::path(get, operation_id = "list_asset", path = "/assets", tag = "assets", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Asset>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<axum::Json<Vec<Asset>>, ApiError> {
    resource::list(&state).await
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if model::is_name(id) {
        Ok(())
    } else {
        Err(not_found::<Asset>(id))
    }
}

/// One asset.
#[utoipa::path(get, operation_id = "get_asset", path = "/assets/{id}", tag = "assets", security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "Asset id")),
    responses((status = 200, body = Asset), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    Path(id): Path<String>,
) -> Result<axum::Json<Asset>, ApiError> {
    check_id(&id)?;
    resource::get(&state, &id).await
}

/// Change an asset: title, metadata, `require_token`, or its sources (probed again).
#[utoipa::path(patch, operation_id = "patch_asset", path = "/assets/{id}", tag = "assets", security(("bearer" = ["write"])),
    params(("id" = String, Path, description = "Asset id")),
    request_body = AssetPatch,
    responses((status = 200, body = Asset), (status = 400, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn patch(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    Path(id): Path<String>,
    ApiJson(change): ApiJson<AssetPatch>,
) -> Result<axum::Json<Asset>, ApiError> {
    check_id(&id)?;
    change.validate()?;
    let mut asset = resource::find::<Asset>(&state, &id).await?;
    if let Some(sources) = change.sources {
        let probed = probe(&state, sources.clone()).await?;
        asset.sources = sources;
        asset.tracks = probed.tracks;
        asset.duration_ms = probed.duration_ms;
    }
    if let Some(t) = change.title {
        asset.title = t;
    }
    if let Some(m) = change.metadata {
        asset.metadata = m;
    }
    if let Some(r) = change.require_token {
        asset.require_token = r;
    }
    asset.updated_at = now_ms().max(asset.updated_at + 1);
    if !state.db.update_asset(&asset).await? {
        return Err(not_found::<Asset>(&id));
    }
    state.refresh().await;
    Ok(axum::Json(asset))
}

/// Remove an asset from the catalog (its files stay; a directory-mode asset
/// of the same name becomes visible again).
#[utoipa::path(delete, operation_id = "delete_asset", path = "/assets/{id}", tag = "assets", security(("bearer" = ["write"])),
    params(("id" = String, Path, description = "Asset id")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    check_id(&id)?;
    resource::delete::<Asset>(&state, &id).await
}

/// Start transcoding the asset's first video source into a ladder.
#[utoipa::path(post, operation_id = "transcode_asset", path = "/assets/{id}/transcode", tag = "jobs", security(("bearer" = ["write"])),
    params(("id" = String, Path, description = "Asset id")),
    request_body = TranscodeRequest,
    responses((status = 202, description = "Queued", body = Job),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "The asset has no video source", body = ErrorBody),
        (status = 501, description = "The library is in a bucket: transcodes are not available", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn transcode(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<TranscodeRequest>,
) -> Result<Response, ApiError> {
    check_id(&id)?;
    if !model::is_name(&req.ladder) {
        return Err(ApiError::invalid("ladder", "must be a ladder's name"));
    }
    if state.bucket.is_some() {
        return Err(ApiError::new(
            StatusCode::NOT_IMPLEMENTED,
            "not_implemented",
            "transcode jobs write their renditions into a media directory; \
             with the library in a bucket they are not available yet",
        ));
    }
    let asset = resource::find::<Asset>(&state, &id).await?;
    let ladder = resource::find::<Ladder>(&state, &req.ladder).await?;
    let job = state
        .jobs
        .start(&state.job_context(), asset, ladder)
        .await?;
    Ok((StatusCode::ACCEPTED, axum::Json(job)).into_response())
}

/// Every job, newest first.
#[utoipa::path(get, operation_id = "job_list_asset", path = "/jobs", tag = "jobs", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Job>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn job_list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<axum::Json<Vec<Job>>, ApiError> {
    resource::list(&state).await
}

/// One job: state, percent, error, outputs.
#[utoipa::path(get, operation_id = "job_get_asset", path = "/jobs/{id}", tag = "jobs", security(("bearer" = ["read"])),
    params(("id" = String, Path, description = "Job id")),
    responses((status = 200, body = Job), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn job_get(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    Path(id): Path<String>,
) -> Result<axum::Json<Job>, ApiError> {
    resource::get(&state, &id).await
}
