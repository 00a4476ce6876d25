//! Subtitle tracks of an asset: WebVTT sidecar files of a directory asset
//! (`{asset}/name.lang.vtt`) and `tx3g` tracks inside its MP4 files.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use headwater_packager::subtitles::{SubtitleTrack, tx3g, webvtt};
use headwater_packager::timing::TrackTiming;
use headwater_packager::{NamedSource, ReadAt};

use crate::error::AssetError;

struct FileRead<'a>(&'a File);

impl ReadAt for FileRead<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        std::os::unix::fs::FileExt::read_at(self.0, buf, offset)
    }
}

/// Reads and parses one sidecar file (`path` names it in messages),
/// bounded by [`webvtt::MAX_BYTES`].
pub(crate) fn sidecar(path: &Path, file: File) -> Result<SubtitleTrack, AssetError> {
    let name = path.file_name().and_then(|s| s.to_str()).unwrap_or("?");
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("subtitles");
    let mut bytes = Vec::new();
    file.take(webvtt::MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| AssetError::Storage(format!("{}: {e}", path.display())))?;
    SubtitleTrack::from_webvtt(stem, &bytes)
        .map_err(|e| AssetError::Unprocessable(format!("{name}: {e}")))
}

/// The `tx3g` tracks of the sources, read through their open files.
pub(crate) fn embedded(
    sources: &[NamedSource],
    files: &[&File],
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
            let t = SubtitleTrack::from_tx3g(id, track, &timing, &FileRead(file))
                .map_err(|e| AssetError::Unprocessable(format!("'{}': {e}", s.name)))?;
            out.push(t);
        }
    }
    Ok(out)
}
