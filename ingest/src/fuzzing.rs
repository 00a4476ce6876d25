//! Entry points of the fuzz targets (`fuzz/`), compiled only with the
//! `fuzzing` feature: the RTMP connection (handshake, chunk streams, AMF
//! commands, the publish claim) and the stream names publishers send.

use std::sync::Arc;

use crate::names;
use crate::rtmp_replay::{prefix, replay};

thread_local! {
    static RUNTIME: tokio::runtime::Runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
}

/// One RTMP connection: the first byte picks what a client sent before
/// the rest (nothing, a handshake, or a handshake with connect and
/// publish), the rest follows. Every key is refused, so no pipeline
/// starts; media before an accepted publish is dropped unparsed.
pub fn rtmp(bytes: &[u8]) {
    let Some((&stage, rest)) = bytes.split_first() else {
        return;
    };
    let mut input = prefix(stage % 3);
    input.extend_from_slice(rest);
    RUNTIME.with(|rt| {
        let _ = rt.block_on(replay(input, Arc::new(|_, _| None)));
    });
}

/// A publisher's names: the text as an SRT `streamid`, and split at its
/// first newline as an RTMP app and publish name. A claim names a valid
/// stream or is no claim.
pub fn stream_ids(bytes: &[u8]) {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return;
    };
    if let Some(c) = names::srt(text) {
        assert!(names::valid_stream(&c.stream), "{text:?}");
    }
    let (app, name) = text.split_once('\n').unwrap_or((text, ""));
    if let Some(c) = names::rtmp(app, name) {
        assert!(names::valid_stream(&c.stream), "{text:?}");
    }
}
