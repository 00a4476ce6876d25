//! The ingest crate's errors.

/// What can go wrong in ingest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another publisher is live on this stream and not silent.
    #[error("stream '{0}' already has a live publisher")]
    Busy(String),
    /// A returning publisher's tracks cannot continue the stream (other
    /// track names or kinds); the second field says why.
    #[error("stream '{0}': a returning publisher cannot continue it: {1}")]
    CodecChanged(String, String),
    /// The packager refused the stream's configuration or an access unit.
    #[error("stream '{stream}': {source}")]
    Packager {
        /// The stream.
        stream: String,
        /// Why.
        source: headwater_packager::Error,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// GStreamer could not be initialised, or a pipeline failed.
    #[error("GStreamer: {0}")]
    Pipeline(String),
    /// The ingest configuration is invalid.
    #[error("ingest config: {0}")]
    Config(String),
    /// The ingest runtime or its thread could not be started.
    #[error("ingest runtime: {0}")]
    Runtime(std::io::Error),
}
