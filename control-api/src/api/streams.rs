//! `/streams`: live stream records and their publish keys.

use std::future::Future;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;

use super::auth::{Auth, Read, Write};
use super::resource::{self, Resource, Stored, not_found};
use super::{ApiJson, AppState};
use crate::db::{Db, WriteError, now_ms};
use crate::error::{ApiError, Error, ErrorBody};
use crate::model::{Ladder, NewStream, Stream};

impl Resource for Stream {
    const KIND: &'static str = "stream";

    fn fetch(db: &Db, name: &str) -> impl Future<Output = Result<Option<Self>, Error>> + Send {
        db.stream(name)
    }

    fn fetch_all(db: &Db) -> impl Future<Output = Result<Vec<Self>, Error>> + Send {
        db.streams()
    }
}

impl Stored for Stream {
    // Who may publish is read from the view: it changes at once.
    const REFRESH: bool = true;

    fn key(&self) -> &str {
        &self.name
    }

    fn insert(db: &Db, stream: &Self) -> impl Future<Output = Result<(), WriteError>> + Send {
        db.insert_stream(stream)
    }

    fn remove(db: &Db, name: &str) -> impl Future<Output = Result<bool, Error>> + Send {
        db.delete_stream(name)
    }
}

fn new_key() -> Result<String, ApiError> {
    let mut b = [0u8; 24];
    getrandom::fill(&mut b).map_err(|e| ApiError::from(crate::Error::Random(e.to_string())))?;
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b))
}

/// Create a live stream; the publish key is generated unless given.
#[utoipa::path(post, operation_id = "create_stream", path = "/streams", tag = "streams", security(("bearer" = ["write"])),
    request_body = NewStream,
    responses((status = 201, body = Stream), (status = 400, body = ErrorBody),
        (status = 404, description = "No such ladder", body = ErrorBody),
        (status = 409, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn create(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    ApiJson(new): ApiJson<NewStream>,
) -> Result<Response, ApiError> {
    new.validate()?;
    if let Some(l) = &new.ladder
        && state.db.ladder(l).await?.is_none()
    {
        return Err(not_found::<Ladder>(l));
    }
    let now = now_ms();
    let stream = Stream {
        name: new.name,
        publish_key: match new.publish_key {
            Some(k) => k,
            None => new_key()?,
        },
        ladder: new.ladder,
        dvr_window_secs: new.dvr_window_secs,
        record: new.record,
        require_token: new.require_token,
        created_at: now,
        updated_at: now,
    };
    resource::insert(&state, stream).await
}

/// Every stream.
#[utoipa::path(get, operation_id = "list_stream", path = "/streams", tag = "streams", security(("bearer" = ["read"])),
    responses((status = 200, body = Vec<Stream>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn list(
    State(state): State<AppState>,
    _auth: Auth<Read>,
) -> Result<axum::Json<Vec<Stream>>, ApiError> {
    resource::list(&state).await
}

/// One stream.
#[utoipa::path(get, operation_id = "get_stream", path = "/streams/{name}", tag = "streams", security(("bearer" = ["read"])),
    params(("name" = String, Path, description = "Stream name")),
    responses((status = 200, body = Stream), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn get(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    Path(name): Path<String>,
) -> Result<axum::Json<Stream>, ApiError> {
    resource::get(&state, &name).await
}

/// Delete a stream.
#[utoipa::path(delete, operation_id = "delete_stream", path = "/streams/{name}", tag = "streams", security(("bearer" = ["write"])),
    params(("name" = String, Path, description = "Stream name")),
    responses((status = 204, description = "Deleted"), (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn delete(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    resource::delete::<Stream>(&state, &name).await
}

/// Replace a stream's publish key; the old key stops working at once.
#[utoipa::path(post, operation_id = "rotate_key_stream", path = "/streams/{name}/key", tag = "streams", security(("bearer" = ["write"])),
    params(("name" = String, Path, description = "Stream name")),
    responses((status = 200, description = "The stream with its new key", body = Stream),
        (status = 404, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn rotate_key(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    Path(name): Path<String>,
) -> Result<axum::Json<Stream>, ApiError> {
    let key = new_key()?;
    if !state.db.set_publish_key(&name, &key).await? {
        return Err(not_found::<Stream>(&name));
    }
    state.refresh().await;
    resource::get(&state, &name).await
}

/// A live stream's current input and viewer counters on this node: on air,
/// bytes held, last frame age, per-track bytes, frames and keyframe interval.
#[utoipa::path(get, operation_id = "stats_stream", path = "/streams/{name}/stats", tag = "streams", security(("bearer" = ["read"])),
    params(("name" = String, Path, description = "Stream name")),
    responses((status = 200, description = "The stream's stats", body = Object),
        (status = 404, description = "Not live on this node", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn stats(
    State(state): State<AppState>,
    _auth: Auth<Read>,
    Path(name): Path<String>,
) -> Result<axum::Json<serde_json::Value>, ApiError> {
    state
        .live_stats
        .as_ref()
        .and_then(|f| f(&name))
        .map(axum::Json)
        .ok_or_else(|| ApiError::not_found(format!("live stream '{name}' on this node")))
}
