//! What the handlers of every resource kind share: a kind names itself and
//! reaches its rows ([`Resource`], [`Stored`]); [`find`], [`get`],
//! [`list`], [`insert`] and [`delete`] answer the same way for each, with the same
//! messages (`ladder 'abr' not found`, `stream 'cam' exists`).
//!
//! The handlers stay one per route, each with its OpenAPI description; their
//! bodies call these.

use std::future::Future;

use axum::Json;
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;

use super::{AppState, created};
use crate::db::{Db, WriteError};
use crate::error::{ApiError, Error};

/// A kind of resource the API reads by key.
pub(super) trait Resource: Serialize + Sized {
    /// How messages name the kind: `ladder` in `ladder 'abr' not found`.
    const KIND: &'static str;

    /// The one under `key`.
    fn fetch(db: &Db, key: &str) -> impl Future<Output = Result<Option<Self>, Error>> + Send;

    /// Every one, in the order the list route promises.
    fn fetch_all(db: &Db) -> impl Future<Output = Result<Vec<Self>, Error>> + Send;
}

/// A resource the API also creates and deletes.
pub(super) trait Stored: Resource {
    /// Whether a write reloads the data plane's view at once (otherwise the
    /// catalog poller sees it).
    const REFRESH: bool;

    /// Its key: the id or name in its URL.
    fn key(&self) -> &str;

    /// Inserts it; `Conflict` when the key exists.
    fn insert(db: &Db, value: &Self) -> impl Future<Output = Result<(), WriteError>> + Send;

    /// Deletes the one under `key`; false when there is none.
    fn remove(db: &Db, key: &str) -> impl Future<Output = Result<bool, Error>> + Send;
}

/// `404 not_found`: `{kind} '{key}' not found`.
pub(super) fn not_found<R: Resource>(key: &str) -> ApiError {
    ApiError::not_found(format!("{} '{key}'", R::KIND))
}

/// `409 conflict`: `{kind} '{key}' exists`.
pub(super) fn exists<R: Resource>(key: &str) -> ApiError {
    ApiError::conflict(format!("{} '{key}' exists", R::KIND))
}

/// The one under `key`, or `404`.
pub(super) async fn find<R: Resource>(state: &AppState, key: &str) -> Result<R, ApiError> {
    R::fetch(&state.db, key)
        .await?
        .ok_or_else(|| not_found::<R>(key))
}

/// `200` with the one under `key`, or `404`.
pub(super) async fn get<R: Resource>(state: &AppState, key: &str) -> Result<Json<R>, ApiError> {
    find(state, key).await.map(Json)
}

/// `200` with every one.
pub(super) async fn list<R: Resource>(state: &AppState) -> Result<Json<Vec<R>>, ApiError> {
    Ok(Json(R::fetch_all(&state.db).await?))
}

/// `201` with `value` once stored, or `409` when its key exists.
pub(super) async fn insert<R: Stored>(state: &AppState, value: R) -> Result<Response, ApiError> {
    match R::insert(&state.db, &value).await {
        Ok(()) => {}
        Err(WriteError::Conflict) => return Err(exists::<R>(value.key())),
        Err(WriteError::Other(e)) => return Err(e.into()),
    }
    if R::REFRESH {
        state.refresh().await;
    }
    Ok(created(value))
}

/// `204` once the one under `key` is deleted, or `404`.
pub(super) async fn delete<R: Stored>(state: &AppState, key: &str) -> Result<StatusCode, ApiError> {
    if !R::remove(&state.db, key).await? {
        return Err(not_found::<R>(key));
    }
    if R::REFRESH {
        state.refresh().await;
    }
    Ok(StatusCode::NO_CONTENT)
}
