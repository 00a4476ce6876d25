//! `/tokens` (mint playback tokens) and `/keys` (the signing keys behind them).

use std::future::Future;
use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;

use super::auth::{Auth, Tokens};
use super::resource::{self, Resource, not_found};
use super::{ApiJson, AppState, created};
use crate::db::Db;
use crate::error::{ApiError, Error, ErrorBody};
use crate::model::{self, Asset, KeyInfo, Stream, TokenRequest, TokenResponse};
use crate::token;

impl Resource for KeyInfo {
    const KIND: &'static str = "key";

    async fn fetch(db: &Db, id: &str) -> Result<Option<Self>, Error> {
        Ok(key_infos(db).await?.into_iter().find(|k| k.id == id))
    }

    fn fetch_all(db: &Db) -> impl Future<Output = Result<Vec<Self>, Error>> + Send {
        key_infos(db)
    }
}

/// Mint a playback token for an asset or a live stream.
///
/// The token goes in a `token` query parameter; the origin writes it into
/// every URI of the manifests it serves, so one token opens the whole
/// presentation.
#[utoipa::path(post, operation_id = "mint_token", path = "/tokens", tag = "tokens", security(("bearer" = ["tokens"])),
    request_body = TokenRequest,
    responses((status = 201, body = TokenResponse), (status = 400, body = ErrorBody),
        (status = 404, description = "No such asset or stream", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn mint(
    State(state): State<AppState>,
    _auth: Auth<Tokens>,
    ApiJson(req): ApiJson<TokenRequest>,
) -> Result<Response, ApiError> {
    let max = state.tokens.max_ttl();
    if req.ttl_seconds == 0 || req.ttl_seconds > max {
        return Err(ApiError::invalid(
            "ttl_seconds",
            &format!("must be 1 to {max}"),
        ));
    }
    let ip: Option<IpAddr> = match &req.client_ip {
        None => None,
        Some(s) => Some(
            s.parse()
                .map_err(|_| ApiError::invalid("client_ip", "must be an IPv4 or IPv6 address"))?,
        ),
    };
    let (scope, prefix) = match (&req.asset, &req.stream) {
        (Some(a), None) => {
            if !model::is_name(a) {
                return Err(ApiError::invalid("asset", "must be an asset id"));
            }
            if state.db.asset(a).await?.is_none() && !directory_asset_exists(&state, a).await {
                return Err(not_found::<Asset>(a));
            }
            (token::Scope::Asset(a), format!("/vod/{a}"))
        }
        (None, Some(s)) => {
            if !model::is_name(s) {
                return Err(ApiError::invalid("stream", "must be a stream name"));
            }
            if state.db.stream(s).await?.is_none() {
                return Err(not_found::<Stream>(s));
            }
            (token::Scope::Stream(s), format!("/live/{s}"))
        }
        _ => {
            return Err(ApiError::invalid(
                "asset",
                "give exactly one of 'asset' and 'stream'",
            ));
        }
    };
    let view = state.catalog.load();
    let Some(key) = view.signing.clone() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "no signing key is loaded yet",
        ));
    };
    let expires = (crate::db::now_ms() / 1000) as u64 + req.ttl_seconds;
    let t = token::sign(&key, scope, expires, ip);
    Ok(created(TokenResponse {
        hls: format!("{prefix}/hls/master.m3u8?token={t}"),
        dash: format!("{prefix}/dash/manifest.mpd?token={t}"),
        token: t,
        expires,
        key_id: key.id,
    }))
}

/// Whether the media root has a directory-mode asset by that name
/// (`{id}.mp4`, `{id}.m4a` or `{id}/`), seen as the data plane sees it.
async fn directory_asset_exists(state: &AppState, id: &str) -> bool {
    let root = state.sources();
    let id = id.to_owned();
    tokio::task::spawn_blocking(move || match root {
        crate::probe::Root::Dir(root) => [format!("{id}.mp4"), format!("{id}.m4a"), id.clone()]
            .iter()
            .any(|rel| root.metadata(std::path::Path::new(rel)).is_ok()),
        crate::probe::Root::Bucket(b) => {
            [format!("{id}.mp4"), format!("{id}.m4a")]
                .iter()
                .any(|rel| matches!(b.head(rel), Ok(Some(_))))
                || b.list(&id).is_ok_and(|(objects, _)| !objects.is_empty())
        }
    })
    .await
    .unwrap_or(false)
}

/// The signing keys, newest first; the newest active one signs.
async fn key_infos(db: &Db) -> Result<Vec<KeyInfo>, Error> {
    let rows = db.keys().await?;
    let signing = rows
        .iter()
        .find(|k| k.retired_at.is_none())
        .map(|k| k.id.clone());
    Ok(rows
        .into_iter()
        .map(|k| KeyInfo {
            signing: Some(&k.id) == signing.as_ref(),
            id: k.id,
            created_at: k.created_at,
            retired_at: k.retired_at,
        })
        .collect())
}

/// The signing keys (never their secrets), newest first.
#[utoipa::path(get, operation_id = "keys_token", path = "/keys", tag = "tokens", security(("bearer" = ["tokens"])),
    responses((status = 200, body = Vec<KeyInfo>),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn keys(
    State(state): State<AppState>,
    _auth: Auth<Tokens>,
) -> Result<axum::Json<Vec<KeyInfo>>, ApiError> {
    resource::list(&state).await
}

/// Rotate: add a key that signs new tokens. Tokens of the older keys stay
/// valid until those keys are retired.
#[utoipa::path(post, operation_id = "new_key_token", path = "/keys", tag = "tokens", security(("bearer" = ["tokens"])),
    responses((status = 201, body = KeyInfo),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn new_key(
    State(state): State<AppState>,
    _auth: Auth<Tokens>,
) -> Result<Response, ApiError> {
    let id = crate::catalog::create_key(&state.db).await?;
    state.refresh().await;
    let info = resource::find::<KeyInfo>(&state, &id).await?;
    Ok(created(info))
}

/// Retire a key: tokens it signed are refused from now on. The last
/// active key cannot be retired (add one first).
#[utoipa::path(delete, operation_id = "retire_key_token", path = "/keys/{id}", tag = "tokens", security(("bearer" = ["tokens"])),
    params(("id" = String, Path, description = "Key id")),
    responses((status = 204, description = "Retired"), (status = 404, body = ErrorBody),
        (status = 409, description = "It is the last active key", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn retire_key(
    State(state): State<AppState>,
    _auth: Auth<Tokens>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let rows = state.db.keys().await?;
    let active: Vec<_> = rows.iter().filter(|k| k.retired_at.is_none()).collect();
    if !active.iter().any(|k| k.id == id) {
        return Err(ApiError::not_found(format!("active key '{id}'")));
    }
    if active.len() == 1 {
        return Err(ApiError::conflict(
            "this is the last active key; add a new key before retiring it",
        ));
    }
    if !state.db.retire_key(&id).await? {
        return Err(ApiError::not_found(format!("active key '{id}'")));
    }
    state.refresh().await;
    Ok(StatusCode::NO_CONTENT)
}
