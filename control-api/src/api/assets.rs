//! `/assets`: the VOD catalog, and the transcode jobs made from it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use super::auth::{Auth, Read, Write};
use super::{ApiJson, AppState, created};
use crate::db::{WriteError, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::model::{self, Asset, AssetPatch, Job, NewAsset, SourceSpec, TranscodeRequest};

/// Probes sources on the blocking pool: `422` naming the unreadable file.
pub(super) async fn probe(
    state: &AppState,
    sources: Vec<SourceSpec>,
) -> Result<crate::probe::Probed, ApiError> {
    let root = state.root();
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
        return Err(ApiError::conflict(format!("asset '{}' exists", new.id)));
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
    match state.db.insert_asset(&asset).await {
        Ok(()) => {}
        Err(WriteError::Conflict) => {
            return Err(ApiError::conflict(format!("asset '{}' exists", asset.id)));
        }
        Err(WriteError::Other(e)) => return Err(e.into()),
    }
    state.refresh().await;
    tracing::info!(asset = %asset.id, "asset registered");
    Ok(created(asset))
}

/// Every catalog asset.
#[utoipa::path(get, operation_id = "list_asset", path = "/assets", tag = "assets", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Asset>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<axum::Json<Vec<Asset>>, ApiError> {
    Ok(axum::Json(state.db.assets().await?))
}

fn check_id(id: &str) -> Result<(), ApiError> {
    if model::is_name(id) {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("asset '{id}'")))
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
    state
        .db
        .asset(&id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("asset '{id}'")))
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
    let mut asset = state
        .db
        .asset(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("asset '{id}'")))?;
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
        return Err(ApiError::not_found(format!("asset '{id}'")));
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
    if !state.db.delete_asset(&id).await? {
        return Err(ApiError::not_found(format!("asset '{id}'")));
    }
    state.refresh().await;
    Ok(StatusCode::NO_CONTENT)
}

/// Start transcoding the asset's first video source into a ladder.
#[utoipa::path(post, operation_id = "transcode_asset", path = "/assets/{id}/transcode", tag = "jobs", security(("bearer" = ["write"])),
    params(("id" = String, Path, description = "Asset id")),
    request_body = TranscodeRequest,
    responses((status = 202, description = "Queued", body = Job),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "The asset has no video source", body = ErrorBody),
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
    let asset = state
        .db
        .asset(&id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("asset '{id}'")))?;
    let ladder = state
        .db
        .ladder(&req.ladder)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("ladder '{}'", req.ladder)))?;
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
    Ok(axum::Json(state.db.jobs().await?))
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
    state
        .db
        .job(&id)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("job '{id}'")))
}
