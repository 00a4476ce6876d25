//! `/ladders`: named rendition ladders.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::auth::{Auth, Read, Write};
use super::{ApiJson, AppState, created};
use crate::db::WriteError;
use crate::error::{ApiError, ErrorBody};
use crate::model::Ladder;

/// Create a ladder.
#[utoipa::path(post, operation_id = "create_ladder", path = "/ladders", tag = "ladders", security(("bearer" = ["write"])),
    request_body = Ladder,
    responses((status = 201, body = Ladder),
        (status = 400, description = "Invalid, naming the field", body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    ApiJson(ladder): ApiJson<Ladder>,
) -> Result<Response, ApiError> {
    ladder.validate()?;
    match state.db.insert_ladder(&ladder).await {
        Ok(()) => Ok(created(ladder)),
        Err(WriteError::Conflict) => Err(ApiError::conflict(format!(
            "ladder '{}' exists",
            ladder.name
        ))),
        Err(WriteError::Other(e)) => Err(e.into()),
    }
}

/// Every ladder.
#[utoipa::path(get, operation_id = "list_ladder", path = "/ladders", tag = "ladders", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Ladder>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<axum::Json<Vec<Ladder>>, ApiError> {
    Ok(axum::Json(state.db.ladders().await?))
}

/// One ladder.
#[utoipa::path(get, operation_id = "get_ladder", path = "/ladders/{name}", tag = "ladders", security(("bearer" = ["read"])),
    params(("name" = String, Path, description = "Ladder name")),
    responses((status = 200, body = Ladder), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    Path(name): Path<String>,
) -> Result<axum::Json<Ladder>, ApiError> {
    state
        .db
        .ladder(&name)
        .await?
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("ladder '{name}'")))
}

/// Delete a ladder (assets already transcoded keep their renditions).
#[utoipa::path(delete, operation_id = "delete_ladder", path = "/ladders/{name}", tag = "ladders", security(("bearer" = ["write"])),
    params(("name" = String, Path, description = "Ladder name")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.db.delete_ladder(&name).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found(format!("ladder '{name}'")))
    }
}
