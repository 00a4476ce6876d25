//! Origin errors: where they came from and the status they become.

use crate::http::response::Status;

/// Which side of the origin an error belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorSource {
    /// The request was wrong.
    Client,
    /// The media or the disk was wrong.
    Storage,
    /// A bug or resource exhaustion here.
    Internal,
}

/// An error answered to a client.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OriginError {
    /// The request is malformed.
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    /// The query string is refused (a manifest filter, a clip), on a
    /// request that is otherwise well-formed: the connection stays open.
    #[error("bad request: {0}")]
    BadQuery(String),
    /// Nothing at that URL.
    #[error("not found")]
    NotFound,
    /// A playback token is needed and the request has no valid one.
    #[error("forbidden")]
    Forbidden,
    /// What was asked for did not become available in time (a blocking
    /// playlist reload or a preload-hinted part).
    #[error("unavailable: {0}")]
    Unavailable(&'static str),
    /// A method other than GET, HEAD or OPTIONS.
    #[error("method not allowed")]
    MethodNotAllowed {
        /// Whether the request had a body we did not read (the connection must close).
        has_body: bool,
    },
    /// The asset's media cannot be packaged.
    #[error("unprocessable media: {0}")]
    Unprocessable(String),
    /// The media root or a file could not be read.
    #[error("storage error: {0}")]
    Storage(String),
    /// The library's object storage failed (`503`) or did not answer in
    /// time (`504`); both with `Retry-After`.
    #[error("{why}")]
    ObjectStore {
        /// Whether it did not answer in time.
        timeout: bool,
        /// What happened (logged, not answered).
        why: String,
    },
    /// The node a live stream is on air at failed (`502`) or did not
    /// answer in time (`504`); both with `Retry-After`.
    #[error("{why}")]
    Upstream {
        /// Whether it did not answer in time.
        timeout: bool,
        /// What happened (logged, not answered).
        why: String,
    },
    /// Something went wrong here.
    #[error("internal error: {0}")]
    Internal(String),
    /// The server could not start or keep running: a listener that cannot
    /// be bound, a worker's runtime that cannot be built, a worker that
    /// panicked. Never answered to a client; the binary exits with it.
    #[error("{what}: {source}")]
    Serve {
        /// What was being done (`cannot listen on 0.0.0.0:8080`).
        what: String,
        /// The system's reason.
        source: std::io::Error,
    },
}

impl OriginError {
    /// Where the error came from.
    pub fn source_kind(&self) -> ErrorSource {
        match self {
            OriginError::BadRequest(_)
            | OriginError::BadQuery(_)
            | OriginError::NotFound
            | OriginError::Forbidden
            | OriginError::MethodNotAllowed { .. } => ErrorSource::Client,
            OriginError::Unprocessable(_)
            | OriginError::Storage(_)
            | OriginError::ObjectStore { .. } => ErrorSource::Storage,
            OriginError::Internal(_)
            | OriginError::Unavailable(_)
            | OriginError::Upstream { .. }
            | OriginError::Serve { .. } => ErrorSource::Internal,
        }
    }

    pub(crate) fn status(&self) -> Status {
        match self {
            OriginError::BadRequest(_) | OriginError::BadQuery(_) => Status::BAD_REQUEST,
            OriginError::NotFound => Status::NOT_FOUND,
            OriginError::Forbidden => Status::FORBIDDEN,
            OriginError::Unavailable(_) => Status::UNAVAILABLE,
            OriginError::ObjectStore { timeout: false, .. } => Status::UNAVAILABLE,
            OriginError::ObjectStore { timeout: true, .. } => Status::GATEWAY_TIMEOUT,
            OriginError::Upstream { timeout: false, .. } => Status::BAD_GATEWAY,
            OriginError::Upstream { timeout: true, .. } => Status::GATEWAY_TIMEOUT,
            OriginError::MethodNotAllowed { .. } => Status::METHOD_NOT_ALLOWED,
            OriginError::Unprocessable(_) => Status::UNPROCESSABLE,
            OriginError::Storage(_) | OriginError::Internal(_) | OriginError::Serve { .. } => {
                Status::INTERNAL
            }
        }
    }

    /// The message the client sees: no file-system paths for storage errors.
    pub(crate) fn public_message(&self) -> String {
        match self {
            OriginError::Storage(_) => "storage error".to_owned(),
            OriginError::ObjectStore { timeout: true, .. } => {
                "object storage did not answer in time".to_owned()
            }
            OriginError::ObjectStore { .. } => "object storage unavailable".to_owned(),
            OriginError::Upstream { timeout: true, .. } => {
                "the node with the stream did not answer in time".to_owned()
            }
            OriginError::Upstream { .. } => "the node with the stream failed".to_owned(),
            OriginError::Internal(_) | OriginError::Serve { .. } => "internal error".to_owned(),
            other => other.to_string(),
        }
    }

    pub(crate) fn closes_connection(&self) -> bool {
        matches!(
            self,
            OriginError::BadRequest(_) | OriginError::MethodNotAllowed { has_body: true }
        )
    }

    pub(crate) fn log(&self, path: &str) {
        match self {
            // Unprocessable media is logged once, when the asset is indexed.
            OriginError::Storage(_) | OriginError::ObjectStore { .. } => {
                // Per request: a failing disk must not become a flood.
                static STORAGE: headwater_common::lograte::LogRate =
                    headwater_common::lograte::LogRate::new();
                if let Some(suppressed) = STORAGE.allow() {
                    tracing::warn!(path, error = %self, suppressed, "storage error");
                }
            }
            OriginError::Upstream { .. } => {
                static UPSTREAM: headwater_common::lograte::LogRate =
                    headwater_common::lograte::LogRate::new();
                if let Some(suppressed) = UPSTREAM.allow() {
                    tracing::warn!(path, error = %self, suppressed, "live stream from another node failed");
                }
            }
            OriginError::Internal(_) | OriginError::Serve { .. } => {
                tracing::error!(path, error = %self, "internal error")
            }
            _ => tracing::debug!(path, error = %self, "request failed"),
        }
    }
}

/// Why an asset cannot be served (cached with the asset: a broken file is
/// looked at once per check interval, not per request).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum AssetError {
    /// Nothing by that name in the media root.
    NotFound,
    /// A file exists but cannot be packaged (the message says why).
    Unprocessable(String),
    /// The media root could not be read.
    Storage(String),
    /// The library's object storage failed or did not answer in time.
    ObjectStore { timeout: bool, why: String },
}

impl From<headwater_objects::Error> for AssetError {
    fn from(e: headwater_objects::Error) -> Self {
        AssetError::ObjectStore {
            timeout: matches!(e, headwater_objects::Error::Timeout(_)),
            why: e.to_string(),
        }
    }
}

impl AssetError {
    /// A failed read of an object (an I/O error made by `remote::to_io`).
    pub(crate) fn from_io(e: &std::io::Error) -> Self {
        AssetError::ObjectStore {
            timeout: e.kind() == std::io::ErrorKind::TimedOut,
            why: e.to_string(),
        }
    }
}

impl From<AssetError> for OriginError {
    fn from(e: AssetError) -> Self {
        match e {
            AssetError::NotFound => OriginError::NotFound,
            AssetError::Unprocessable(why) => OriginError::Unprocessable(why),
            AssetError::Storage(why) => OriginError::Storage(why),
            AssetError::ObjectStore { timeout, why } => OriginError::ObjectStore { timeout, why },
        }
    }
}

impl OriginError {
    /// A start-up or worker failure, with what was being done.
    pub(crate) fn serve(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let what = what.into();
        move |source| OriginError::Serve { what, source }
    }
}
