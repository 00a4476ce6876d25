//! The ingest crate's errors.

/// What can go wrong in ingest.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Another publisher is live on this stream and not silent.
    #[error("stream '{0}' already has a live publisher")]
    Busy(String),
    /// A returning publisher sent other codecs than the stream has.
    #[error("stream '{0}': a returning publisher must send the same codec configuration")]
    CodecChanged(String),
    /// The packager refused the stream's configuration or an access unit.
    #[error("stream '{stream}': {source}")]
    Packager {
        /// The stream.
        stream: String,
        /// Why.
        source: headwater_packager::Error,
    },
}
