//! The crate's one error type.

use std::time::Duration;

/// What can go wrong reading a library in object storage.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The library URL or client settings are unusable.
    #[error("object storage: {0}")]
    Config(String),
    /// The object storage did not answer within the time allowed.
    #[error("object storage did not answer within {0:?}")]
    Timeout(Duration),
    /// The object storage answered with an error or could not be reached.
    #[error("object storage: {0}")]
    Unavailable(String),
    /// The object was replaced since it was indexed (its ETag changed).
    #[error("object {0} changed since it was indexed")]
    Changed(String),
    /// The object is not there (any more).
    #[error("object {0} not found")]
    NotFound(String),
    /// The local chunk cache could not be written or read.
    #[error("chunk cache: {0}")]
    Cache(#[from] std::io::Error),
}

impl Error {
    /// Whether the object storage itself is failing (as opposed to one
    /// object or the local disk): what `/readyz` and `503`s report.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, Error::Timeout(_) | Error::Unavailable(_))
    }
}
