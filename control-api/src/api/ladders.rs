//! `/ladders`: named rendition ladders.

use std::future::Future;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::auth::{Auth, Read, Write};
use super::resource::{self, Resource, Stored};
use super::{ApiJson, AppState};
use crate::db::{Db, WriteError};
use crate::error::{ApiError, Error, ErrorBody};
use crate::model::Ladder;

impl Resource for Ladder {
    const KIND: &'static str = "ladder";

    fn fetch(db: &Db, name: &str) -> impl Future<Output = Result<Option<Self>, Error>> + Send {
        db.ladder(name)
    }

    fn fetch_all(db: &Db) -> impl Future<Output = Result<Vec<Self>, Error>> + Send {
        db.ladders()
    }
}

impl Stored for Ladder {
    // A ladder write leaves the data plane's view to the catalog poller.
    const REFRESH: bool = false;

    fn key(&self) -> &str {
        &self.name
    }

    fn insert(db: &Db, ladder: &Self) -> impl Future<Output = Result<(), WriteError>> + Send {
        db.insert_ladder(ladder)
    }

    fn remove(db: &Db, name: &str) -> impl Future<Output = Result<bool, Error>> + Send {
        db.delete_ladder(name)
    }
}

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
    resource::insert(&state, ladder).await
}

/// Every ladder.
#[utoipa::path(get, operation_id = "list_ladder", path = "/ladders", tag = "ladders", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Ladder>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<axum::Json<Vec<Ladder>>, ApiError> {
    resource::list(&state).await
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
    resource::get(&state, &name).await
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
    resource::delete::<Ladder>(&state, &name).await
}
