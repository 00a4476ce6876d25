//! `/healthz`, `/readyz`, `/metrics` and the OpenAPI document.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::AppState;

/// This document.
#[utoipa::path(get, operation_id = "openapi_json", path = "/openapi.json", tag = "system",
    responses((status = 200, description = "The OpenAPI 3 document", content_type = "application/json")))]
pub(super) async fn openapi_json(
    axum::Extension(doc): axum::Extension<Arc<utoipa::openapi::OpenApi>>,
) -> Response {
    axum::Json(doc.as_ref().clone()).into_response()
}

/// Liveness: the admin runtime answers.
#[utoipa::path(get, operation_id = "healthz", path = "/healthz", tag = "system",
    responses((status = 200, description = "Alive", content_type = "text/plain")))]
pub(super) async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: the catalog database answers and the media root is readable.
#[utoipa::path(get, operation_id = "readyz", path = "/readyz", tag = "system",
    responses((status = 200, description = "Ready", content_type = "text/plain"),
        (status = 503, description = "Not ready, with the reason", content_type = "text/plain")))]
pub(super) async fn readyz(State(state): State<AppState>) -> Response {
    if !state.db.ping().await {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "catalog database unreachable\n",
        )
            .into_response();
    }
    if !state.media_root.is_dir() {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "media root is not a readable directory\n",
        )
            .into_response();
    }
    if let Some(bucket) = &state.bucket {
        let b = bucket.clone();
        let answers = b.is_healthy()
            || tokio::task::spawn_blocking(move || b.probe())
                .await
                .unwrap_or(false);
        if !answers {
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "object storage is not answering\n",
            )
                .into_response();
        }
    }
    (StatusCode::OK, "ready\n").into_response()
}

/// Prometheus metrics of both planes (OpenMetrics text).
#[utoipa::path(get, operation_id = "metrics", path = "/metrics", tag = "system",
    responses((status = 200, description = "OpenMetrics text",
        content_type = "application/openmetrics-text")))]
pub(super) async fn metrics(State(state): State<AppState>) -> Response {
    if let Ok(jobs) = state.db.jobs().await {
        for s in ["queued", "running", "succeeded", "failed"] {
            let n = jobs.iter().filter(|j| j.state.as_str() == s).count();
            state
                .metrics
                .jobs
                .get_or_create(&crate::metrics::JobLabels { state: s })
                .set(n as i64);
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.encode(),
    )
        .into_response()
}
