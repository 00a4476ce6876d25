//! `PUT /assets/{id}/source`: a mezzanine upload, streamed to disk.
//!
//! The body goes to `{root}/.headwater/tmp/` while its SHA-256 is computed,
//! is fsynced, checked against `X-Checksum-SHA256` when the client sends
//! one, and only then renamed to `{root}/.headwater/assets/{id}/source.mp4`
//! (and the directory fsynced). A broken or killed upload leaves at most a
//! temporary file, which start-up removes; it never becomes a source.

use std::path::{Path, PathBuf};
use std::sync::Arc;

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

/// Removes temporary files left by uploads that never finished: those of
/// processes that are gone. A process this one upgrades is still writing
/// its own.
pub fn clean_tmp(root: &Path) -> std::io::Result<usize> {
    let dir = tmp_dir(root);
    let mut n = 0;
    match std::fs::read_dir(&dir) {
        Ok(entries) => {
            for e in entries.flatten() {
                if writer_alive(&e.file_name().to_string_lossy()) {
                    continue;
                }
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

/// Whether the process named in a `{id}.{pid}.{random}.part` name is
/// running (and is not this one, which has no upload yet at start).
fn writer_alive(name: &str) -> bool {
    let mut parts = name.rsplit('.');
    let pid = parts.nth(2).and_then(|p| p.parse::<u32>().ok());
    pid.is_some_and(|p| p != std::process::id() && Path::new(&format!("/proc/{p}")).exists())
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
        (status = 507, description = "The disk is full; nothing was kept", body = ErrorBody),
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
    let expected = Expected::of(&state, &headers)?;
    let root = state.media_root.clone();
    let (part, file) = PartFile::create(&root, &id).await?;
    let received = receive(body, file, &part.path, &expected).await?;
    // Probe before it becomes anyone's source.
    let probed = probe_part(&state, &root, &part.path).await?;
    let rel = match &state.bucket {
        Some(bucket) => upload_to_bucket(bucket, &id, part).await?,
        None => install(&root, &id, part).await?,
    };
    let asset = save_asset(&state, &id, query, &rel, probed).await?;
    state.refresh().await;
    tracing::info!(asset = %id, bytes = received.size, "mezzanine uploaded");
    Ok(created(UploadResult {
        path: rel,
        bytes: received.size,
        sha256: received.sha256,
        asset,
    }))
}

/// What the request says of its body, checked before any of it is read.
struct Expected {
    /// `uploads.max_upload_mb` in bytes.
    limit: u64,
    /// The limit as configured, for the message.
    limit_mb: u64,
    /// `Content-Length`, when sent.
    length: Option<u64>,
    /// `X-Checksum-SHA256` in lower case, when sent.
    sha256: Option<String>,
}

impl Expected {
    /// `413` when `Content-Length` is over the limit, `400` when the
    /// checksum header is not 64 hex digits.
    fn of(state: &AppState, headers: &HeaderMap) -> Result<Expected, ApiError> {
        let limit_mb = state.uploads.max_upload_mb;
        let expected = Expected {
            limit: limit_mb << 20,
            limit_mb,
            length: headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok()),
            sha256: None,
        };
        if expected.length.is_some_and(|n| n > expected.limit) {
            return Err(expected.too_large());
        }
        let Some(v) = headers.get("x-checksum-sha256") else {
            return Ok(expected);
        };
        let s = v.to_str().unwrap_or("").trim().to_ascii_lowercase();
        if s.len() != 64 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(ApiError::invalid(
                "X-Checksum-SHA256",
                "must be 64 hex digits",
            ));
        }
        Ok(Expected {
            sha256: Some(s),
            ..expected
        })
    }

    fn too_large(&self) -> ApiError {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!("uploads are limited to {} MiB", self.limit_mb),
        )
    }
}

/// An upload's temporary file in [`tmp_dir`], removed when dropped unless
/// it was renamed into place.
struct PartFile {
    path: PathBuf,
    renamed: bool,
}

impl PartFile {
    /// `{tmp}/{id}.{pid}.{random}.part`, created empty.
    async fn create(root: &Path, id: &str) -> Result<(PartFile, tokio::fs::File), ApiError> {
        let tmp = tmp_dir(root);
        tokio::fs::create_dir_all(&tmp)
            .await
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        let mut nonce = [0u8; 8];
        getrandom::fill(&mut nonce)
            .map_err(|e| ApiError::from(crate::Error::Random(e.to_string())))?;
        let path = tmp.join(format!("{id}.{}.{}.part", std::process::id(), hex(&nonce)));
        // Removes the temporary file on every early return from here on.
        let part = PartFile {
            path,
            renamed: false,
        };
        let file = tokio::fs::File::create(&part.path)
            .await
            .map_err(io_err(format!("creating {}", part.path.display())))?;
        Ok((part, file))
    }
}

impl Drop for PartFile {
    fn drop(&mut self) {
        if !self.renamed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The body as stored.
struct Received {
    /// Its length.
    size: u64,
    /// Its SHA-256, in hex.
    sha256: String,
}

/// Streams the body into `file`, hashing it: `413` past the limit, `400`
/// when it breaks off, differs from `Content-Length` or from the checksum.
/// The file is fsynced before the checksum is compared.
async fn receive(
    body: Body,
    mut file: tokio::fs::File,
    path: &Path,
    expected: &Expected,
) -> Result<Received, ApiError> {
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
        if size > expected.limit {
            return Err(expected.too_large());
        }
        hasher.update(&chunk);
        file.write_all(&chunk)
            .await
            .map_err(io_err(format!("writing {}", path.display())))?;
    }
    if expected.length.is_some_and(|n| n != size) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!(
                "the body has {size} bytes, Content-Length said {}",
                expected.length.unwrap_or(0)
            ),
        ));
    }
    // tokio writes in the background: a failed write (a full disk) is
    // reported by the next write or by flush, never by sync_all, which
    // would sync a short file and leave the probe to call it bad media.
    file.flush()
        .await
        .map_err(io_err(format!("writing {}", path.display())))?;
    file.sync_all()
        .await
        .map_err(io_err(format!("syncing {}", path.display())))?;
    drop(file);
    let sha256 = hex(&hasher.finalize());
    if let Some(want) = &expected.sha256
        && *want != sha256
    {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "checksum_mismatch",
            format!("the body's SHA-256 is {sha256}, X-Checksum-SHA256 said {want}"),
        ));
    }
    Ok(Received { size, sha256 })
}

/// Probes the temporary file: `422` unless the packager can use it and it
/// has an audio or video track.
async fn probe_part(
    state: &AppState,
    root: &Path,
    part: &Path,
) -> Result<crate::probe::Probed, ApiError> {
    let rel_tmp = part
        .strip_prefix(root)
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default();
    let probe_spec = vec![SourceSpec {
        path: rel_tmp,
        role: None,
        language: None,
        label: None,
    }];
    // The part is local, wherever the library is.
    let local = crate::probe::Root::Dir(state.root());
    let probed = super::assets::probe_in(state, local, probe_spec).await?;
    if !probed
        .tracks
        .iter()
        .any(|t| t.kind == "video" || t.kind == "audio")
    {
        return Err(ApiError::media("the upload has no audio or video track"));
    }
    Ok(probed)
}

/// Renames the temporary file to the asset's `source.mp4` and fsyncs the
/// directory; returns the source's path relative to the root.
async fn install(root: &Path, id: &str, mut part: PartFile) -> Result<String, ApiError> {
    let dir = asset_dir(root, id);
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(io_err(format!("creating {}", dir.display())))?;
    let dest = dir.join("source.mp4");
    tokio::fs::rename(&part.path, &dest)
        .await
        .map_err(io_err(format!("renaming into {}", dest.display())))?;
    part.renamed = true;
    sync_dir(&dir).await?;
    Ok(format!(".headwater/assets/{id}/source.mp4"))
}

/// Puts a probed upload into the library's bucket, where `install` would
/// have put it in a directory; the local part file goes when `part` drops.
async fn upload_to_bucket(
    bucket: &Arc<headwater_objects::Bucket>,
    id: &str,
    part: PartFile,
) -> Result<String, ApiError> {
    let rel = format!(".headwater/assets/{id}/source.mp4");
    let (b, key, path) = (bucket.clone(), rel.clone(), part.path.clone());
    tokio::task::spawn_blocking(move || b.put_file(&key, &path))
        .await
        .map_err(|e| ApiError::from(crate::Error::Random(format!("upload task: {e}"))))?
        .map_err(|e| {
            tracing::warn!(asset = %id, error = %e, "cannot put an upload into the bucket");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "object_storage_unavailable",
                "the upload could not be stored in the bucket; try again",
            )
        })?;
    drop(part);
    Ok(rel)
}

/// The asset with the upload as its one source: created, or its sources
/// replaced (and title and `require_token` when the query gives them).
async fn save_asset(
    state: &AppState,
    id: &str,
    query: UploadQuery,
    rel: &str,
    probed: crate::probe::Probed,
) -> Result<Asset, ApiError> {
    let has_video = probed.tracks.iter().any(|t| t.kind == "video");
    let sources = vec![SourceSpec {
        path: rel.to_owned(),
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
    if let Some(mut a) = state.db.asset(id).await? {
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
        return Ok(a);
    }
    let a = Asset {
        id: id.to_owned(),
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
        Ok(()) => Ok(a),
        Err(WriteError::Conflict) => Err(ApiError::conflict(format!(
            "asset '{id}' was created meanwhile; upload again"
        ))),
        Err(WriteError::Other(e)) => Err(e.into()),
    }
}

/// Lower-case hex of `bytes`.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn sync_dir(dir: &Path) -> Result<(), ApiError> {
    let d = dir.to_owned();
    tokio::task::spawn_blocking(move || std::fs::File::open(&d).and_then(|f| f.sync_all()))
        .await
        .map_err(|e| ApiError::from(crate::Error::Random(format!("sync task: {e}"))))?
        .map_err(io_err(format!("syncing {}", dir.display())))
}
