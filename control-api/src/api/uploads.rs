//! `PUT /assets/{id}/source`: a mezzanine upload, streamed to disk.
//!
//! The body goes to `{root}/.headwater/tmp/` while its SHA-256 is computed,
//! is fsynced, checked against `X-Checksum-SHA256` when the client sends
//! one, and only then renamed to `{root}/.headwater/assets/{id}/source.mp4`
//! (and the directory fsynced). A broken or killed upload leaves at most a
//! temporary file, which start-up removes; it never becomes a source.

use std::path::{Path, PathBuf};

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use futures_util::StreamExt;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use super::auth::{Auth, Write};
use super::{AppState, created};
use crate::db::{WriteError, now_ms};
use crate::error::{ApiError, ErrorBody};
use crate::jobs::asset_dir;
use crate::model::{self, Asset, Role, SourceSpec, UploadResult};

/// Query of an upload.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub(super) struct UploadQuery {
    /// Title of the asset when the upload creates it.
    #[serde(default)]
    title: Option<String>,
    /// Whether playback needs a token, when the upload creates the asset.
    #[serde(default)]
    require_token: Option<bool>,
}

/// Where uploads are written before they are complete.
pub fn tmp_dir(root: &Path) -> PathBuf {
    root.join(".headwater").join("tmp")
}

/// Removes temporary files left by uploads that never finished.
pub fn clean_tmp(root: &Path) -> std::io::Result<usize> {
    let dir = tmp_dir(root);
    let mut n = 0;
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                if std::fs::remove_file(e.path()).is_ok() {
                    n += 1;
                }
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    Ok(n)
}

fn io_err(what: String) -> impl FnOnce(std::io::Error) -> ApiError {
    move |e| ApiError::from(crate::Error::io(what, e))
}

/// Upload the asset's mezzanine (an MP4), creating the asset or replacing its sources.
#[utoipa::path(put, operation_id = "upload_upload", path = "/assets/{id}/source", tag = "assets", security(("bearer" = ["write"])),
    params(("id" = String, Path, description = "Asset id"), UploadQuery,
        ("X-Checksum-SHA256" = Option<String>, Header,
            description = "Hex SHA-256 of the body; the upload is refused if it differs")),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, description = "Stored and probed", body = UploadResult),
        (status = 400, description = "Checksum mismatch or bad query", body = ErrorBody),
        (status = 413, description = "Larger than uploads.max_upload_mb", body = ErrorBody),
        (status = 422, description = "Not a usable MP4", body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub(super) async fn upload(
    State(state): State<AppState>,
    _auth: Auth<Write>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<String>,
    query: Result<Query<UploadQuery>, axum::extract::rejection::QueryRejection>,
    body: Body,
) -> Result<Response, ApiError> {
    let Query(query) = query.map_err(|e| ApiError::invalid("query", &e.body_text()))?;
    if !model::is_name(&id) {
        return Err(ApiError::invalid(
            "id",
            "must be 1 to 128 of A-Z, a-z, 0-9, '_' and '-'",
        ));
    }
    let limit = state.uploads.max_upload_mb << 20;
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("uploads are limited to {} MiB", state.uploads.max_upload_mb),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let expected = match headers.get("x-checksum-sha256") {
        None => None,
        Some(v) => {
            let s = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
            if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(ApiError::invalid(
                    "X-Checksum-SHA256",
                    "must be 64 hex digits",
                ));
            }
            Some(s)
        }
    };

    let root = state.media_root.clone();
    let tmp = tmp_dir(&root);
    tokio::fs::create_dir_all(&tmp)
        .await
        .map_err(io_err(format!("creating {}", tmp.display())))?;
    let mut nonce = [0u8; 8];
    getrandom::fill(&mut nonce).map_err(|e| ApiError::from(crate::Error::Random(e.to_string())))?;
    let tmp_path = tmp.join(format!(
        "{id}.{}.part",
        nonce.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ));
    // Removes the temporary file on every early return.
    struct Cleanup(Option<PathBuf>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            if let Some(p) = self.0.take() {
                let _ = std::fs::remove_file(p);
            }
        }
    }
    let mut cleanup = Cleanup(Some(tmp_path.clone()));
    let mut file = tokio::fs::File::create(&tmp_path)
        .await
        .map_err(io_err(format!("creating {}", tmp_path.display())))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                format!("the upload broke off: {e}"),
            )
        })?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(too_large());
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(io_err(format!("writing {}", tmp_path.display())))?;
    }
    if declared.is_some_and(|n| n != size) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "the body has {size} bytes, Content-Length said {}",
                declared.unwrap_or(0)
            ),
        ));
    }
    file.sync_all()
        .await
        .map_err(io_err(format!("syncing {}", tmp_path.display())))?;
    drop(file);
    let sha256: String = hasher
        .finalize()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if let Some(want) = expected
        && want != sha256
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "checksum_mismatch",
            format!("the body's SHA-256 is {sha256}, X-Checksum-SHA256 said {want}"),
        ));
    }

    // Probe before it becomes anyone's source.
    let rel_tmp = tmp_path
        .strip_prefix(&root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let probe_spec = vec![SourceSpec {
        path: rel_tmp,
        role: None,
        language: None,
        label: None,
    }];
    let probed = super::assets::probe(&state, probe_spec).await?;
    if !probed
        .tracks
        .iter()
        .any(|t| t.kind == "video" || t.kind == "audio")
    {
        return Err(ApiError::media("the upload has no audio or video track"));
    }

    let dir = asset_dir(&root, &id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io_err(format!("creating {}", dir.display())))?;
    let dest = dir.join("source.mp4");
    tokio::fs::rename(&tmp_path, &dest)
        .await
        .map_err(io_err(format!("renaming into {}", dest.display())))?;
    cleanup.0 = None;
    sync_dir(&dir).await?;

    let rel = format!(".headwater/assets/{id}/source.mp4");
    let has_video = probed.tracks.iter().any(|t| t.kind == "video");
    let sources = vec![SourceSpec {
        path: rel.clone(),
        role: Some(if has_video { Role::Video } else { Role::Audio }),
        language: None,
        label: None,
    }];
    let tracks = probed
        .tracks
        .into_iter()
        .map(|mut t| {
            t.source = 0;
            t
        })
        .collect();
    let now = now_ms();
    let asset = match state.db.asset(&id).await? {
        Some(mut a) => {
            a.sources = sources;
            a.tracks = tracks;
            a.duration_ms = probed.duration_ms;
            if let Some(t) = query.title {
                a.title = t;
            }
            if let Some(r) = query.require_token {
                a.require_token = r;
            }
            a.updated_at = now.max(a.updated_at + 1);
            state.db.update_asset(&a).await?;
            a
        }
        None => {
            let a = Asset {
                id: id.clone(),
                title: query.title.unwrap_or_default(),
                metadata: serde_json::json!({}),
                require_token: query.require_token.unwrap_or(false),
                sources,
                tracks,
                duration_ms: probed.duration_ms,
                created_at: now,
                updated_at: now,
            };
            match state.db.insert_asset(&a).await {
                Ok(()) => a,
                Err(WriteError::Conflict) => {
                    return Err(ApiError::conflict(format!(
                        "asset '{id}' was created meanwhile; upload again"
                    )));
                }
                Err(WriteError::Other(e)) => return Err(e.into()),
            }
        }
    };
    state.refresh().await;
    tracing::info!(asset = %id, bytes = size, "mezzanine uploaded");
    Ok(created(UploadResult {
        path: rel,
        bytes: size,
        sha256,
        asset,
    }))
}

async fn sync_dir(dir: &Path) -> Result<(), ApiError> {
    let d = dir.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| ApiError::from(crate::Error::Random(format!("sync task: {e}"))))?
        .map_err(io_err(format!("syncing {}", dir.display())))
}
