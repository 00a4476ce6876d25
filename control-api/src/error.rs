//! Errors: the crate's [`Error`], and [`ApiError`], what a client sees.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What can go wrong inside the control API.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The catalog database failed.
    #[error("catalog database: {0}")]
    Database(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("catalog migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A file could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, naming the path.
        what: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A stored row no longer parses (edited by hand, or a newer version).
    #[error("catalog row {what} is corrupt: {why}")]
    Corrupt {
        /// Which row.
        what: String,
        /// What is wrong with it.
        why: String,
    },
    /// The operating system's random source failed.
    #[error("no randomness: {0}")]
    Random(String),
}

impl Error {
    /// Whether this is the catalog database being unreachable (down,
    /// restarting, refusing connections, or no pooled connection within
    /// the pool's acquire timeout) rather than a fault of the request or
    /// of the data: the client should retry later.
    pub fn database_unavailable(&self) -> bool {
        let Error::Database(e) = self else {
            return false;
        };
        match e {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_) => true,
            // admin_shutdown, crash_shutdown, cannot_connect_now
            // (PostgreSQL's class 57: operator intervention).
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|c| matches!(&*c, "57P01" | "57P02" | "57P03")),
            _ => false,
        }
    }

    /// Whether this is a full disk (or quota): the request may succeed
    /// once space is freed.
    pub fn storage_full(&self) -> bool {
        matches!(self, Error::Io { source, .. } if matches!(
            source.kind(),
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
        ))
    }

    pub(crate) fn io(what: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            what: what.into(),
            source,
        }
    }
}

/// The JSON body of every error response.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable: `unauthorized`, `forbidden`, `not_found`,
    /// `conflict`, `invalid_request`, `unprocessable_media`,
    /// `payload_too_large`, `checksum_mismatch`, `database_unavailable`
    /// (503, with `Retry-After`), `insufficient_storage` (507), `internal`.
    pub code: String,
    /// For people; may change between versions.
    pub message: String,
}

/// An error response: a status, a stable code and a message.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code.
    pub code: &'static str,
    /// Message.
    pub message: String,
}

impl ApiError {
    /// A new error.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }

    /// `400 invalid_request` naming the field.
    pub fn invalid(field: &str, why: &str) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            format!("{field}: {why}"),
        )
    }

    /// `404 not_found`.
    pub fn not_found(what: impl std::fmt::Display) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("{what} not found"),
        )
    }

    /// `409 conflict`.
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// `422 unprocessable_media`.
    pub fn media(message: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable_media",
            message,
        )
    }
}

/// Seconds a client is asked to wait when the catalog database is down.
const RETRY_AFTER_SECS: u64 = 5;

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        if e.database_unavailable() {
            // Every request fails while it lasts: a few lines, the rest counted.
            static DOWN: headwater_common::lograte::LogRate =
                headwater_common::lograte::LogRate::new();
            if let Some(suppressed) = DOWN.allow() {
                tracing::warn!(error = %e, suppressed, "catalog database unavailable");
            }
            return ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database_unavailable",
                "the catalog database cannot be reached; the data plane serves the last \
                 catalog it read; retry later",
            );
        }
        if e.storage_full() {
            tracing::warn!(error = %e, "no space left for a control API write");
            return ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "insufficient_storage",
                "no space left on the disk it writes to; nothing was kept; retry once space is freed",
            );
        }
        tracing::error!(error = %e, "control API request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        ApiError::from(Error::Database(e))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            code: self.code.to_owned(),
            message: self.message,
        };
        if self.status == StatusCode::SERVICE_UNAVAILABLE {
            let retry = [(
                axum::http::header::RETRY_AFTER,
                RETRY_AFTER_SECS.to_string(),
            )];
            return (self.status, retry, Json(body)).into_response();
        }
        (self.status, Json(body)).into_response()
    }
}
