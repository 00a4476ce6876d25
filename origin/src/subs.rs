//! Subtitle tracks of an asset: WebVTT sidecar files of a directory asset
//! (`{asset}/name.lang.vtt`) and `tx3g` tracks inside its MP4 files.

use std::path::Path;
use std::sync::Arc;

use headwater_packager::NamedSource;
use headwater_packager::subtitles::{SubtitleTrack, tx3g};
use headwater_packager::timing::TrackTiming;

use crate::error::AssetError;
use crate::store::IndexedFile;

/// Reads and parses one sidecar file (`path` names it in messages),
/// read whole (at most `webvtt::MAX_BYTES` and one byte more).
pub(crate) fn sidecar(path: &Path, bytes: &[u8]) -> Result<SubtitleTrack, AssetError> {
    let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("?");
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("subtitles");
    SubtitleTrack::from_webvtt(stem, bytes)
        .map_err(|e| AssetError::Unprocessable(format!("{name}: {e}")))
}

/// The `tx3g` tracks of the sources, read through their files.
pub(crate) fn embedded(
    sources: &[NamedSource],
    files: &[Arc<IndexedFile>],
) -> Result<Vec<SubtitleTrack>, AssetError> {
    let single = sources.len() == 1;
    let mut out = Vec::new();
    for (s, file) in sources.iter().zip(files) {
        let movie = &s.source.movie;
        for track in movie.tracks.iter().filter(|t| tx3g::is_tx3g(t)) {
            let id = if single {
                format!("t{}", track.id)
            } else {
                format!("{}-t{}", s.name, track.id)
            };
            let timing = TrackTiming::of(track, movie.timescale);
            let t = SubtitleTrack::from_tx3g(id, track, &timing, &**file)
                .map_err(|e| AssetError::Unprocessable(format!("'{}': {e}", s.name)))?;
            out.push(t);
        }
    }
    Ok(out)
}
