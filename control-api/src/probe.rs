//! Probing an asset's sources when it is registered: what tracks, codecs
//! and duration the packager finds, or a message naming the file that
//! cannot be used. Blocking (reads files): run it on the blocking pool.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use headwater_packager::mp4::TrackKind;
use headwater_packager::subtitles::{SubtitleTrack, webvtt};
use headwater_packager::{Limits, NamedSource, PackagingConfig, Presentation, ReadAt, Source};

use headwater_common::media_root::MediaRoot;

use crate::model::{Role, SourceSpec, TrackInfo};

struct FileRead(File);

impl ReadAt for FileRead {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
}

/// What the probe found.
#[derive(Debug)]
pub struct Probed {
    /// Every track, in source order.
    pub tracks: Vec<TrackInfo>,
    /// Longest track, in milliseconds.
    pub duration_ms: u64,
}

/// Probes `sources` (paths relative to `root`), checks roles against what
/// the files hold, and checks that the packager can make a presentation
/// of them. `Err` is a message for a `422`, naming the file.
pub fn probe(root: &MediaRoot, sources: &[SourceSpec], limits: &Limits) -> Result<Probed, String> {
    let mut tracks = Vec::new();
    let mut named = Vec::new();
    let mut duration_ms = 0u64;
    for (i, spec) in sources.iter().enumerate() {
        let path = Path::new(&spec.path);
        let shown = &spec.path;
        // Confined to the root: a symlink (file or directory) the policy
        // refuses is refused here, as the data plane would refuse it.
        let file = root
            .open(path)
            .map_err(|e| format!("sources[{i}] '{shown}': {e}"))?;
        let meta = file
            .metadata()
            .map_err(|e| format!("sources[{i}] '{shown}': {e}"))?;
        if !meta.is_file() {
            return Err(format!("sources[{i}] '{shown}': not a regular file"));
        }
        if spec.path.ends_with(".vtt") {
            if spec.role.is_some_and(|r| r != Role::Subtitle) {
                return Err(format!("sources[{i}] '{shown}': a .vtt file is a subtitle"));
            }
            let track = read_vtt(file).map_err(|e| format!("sources[{i}] '{shown}': {e}"))?;
            let end = track.cues.iter().map(|c| c.end_ms).max().unwrap_or(0);
            duration_ms = duration_ms.max(end);
            tracks.push(TrackInfo {
                source: i,
                kind: "subtitle".into(),
                codec: "wvtt".into(),
                language: spec.language.clone().unwrap_or_else(|| "und".into()),
                width: None,
                height: None,
                channels: None,
                sample_rate: None,
                duration_ms: end,
                samples: track.cues.len() as u64,
            });
            continue;
        }
        if spec.role == Some(Role::Subtitle) {
            return Err(format!(
                "sources[{i}] '{shown}': role 'subtitle' needs a .vtt file"
            ));
        }
        let source = Source::index(&FileRead(file), meta.len(), limits)
            .map_err(|e| format!("sources[{i}] '{shown}': {e}"))?;
        let mut has = (false, false);
        for t in &source.movie.tracks {
            let scale = u64::from(t.timescale.get());
            let ms = t.samples.end_dts().saturating_mul(1000) / scale;
            duration_ms = duration_ms.max(ms);
            let kind = match t.kind {
                TrackKind::Video => "video",
                TrackKind::Audio => "audio",
                TrackKind::Other => "other",
            };
            has.0 |= t.kind == TrackKind::Video;
            has.1 |= t.kind == TrackKind::Audio;
            tracks.push(TrackInfo {
                source: i,
                kind: kind.into(),
                codec: t
                    .sample_entry
                    .rfc6381()
                    .unwrap_or_else(|| format!("unsupported ({})", t.sample_entry.fourcc)),
                language: t.language.to_string(),
                width: (t.kind == TrackKind::Video).then_some(t.width),
                height: (t.kind == TrackKind::Video).then_some(t.height),
                channels: (t.kind == TrackKind::Audio)
                    .then_some(u32::from(t.sample_entry.channels)),
                sample_rate: (t.kind == TrackKind::Audio).then_some(t.sample_entry.sample_rate),
                duration_ms: ms,
                samples: t.samples.len() as u64,
            });
        }
        match spec.role {
            Some(Role::Video) if !has.0 => {
                return Err(format!(
                    "sources[{i}] '{shown}': role 'video' but no video track"
                ));
            }
            Some(Role::Audio) if !has.1 => {
                return Err(format!(
                    "sources[{i}] '{shown}': role 'audio' but no audio track"
                ));
            }
            _ => {}
        }
        let stem = Path::new(&spec.path)
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("source");
        let source = Arc::new(source);
        let mut n = NamedSource::from_file_stem(stem, source.clone())
            .unwrap_or_else(|| NamedSource::new(format!("s{i}"), source));
        if spec.language.is_some() {
            n.language.clone_from(&spec.language);
        }
        named.push(n);
    }
    if !named.is_empty() {
        Presentation::new(named, PackagingConfig::default())
            .map_err(|e| format!("cannot package these sources: {e}"))?;
    }
    Ok(Probed {
        tracks,
        duration_ms,
    })
}

fn read_vtt(file: File) -> Result<SubtitleTrack, String> {
    let mut bytes = Vec::new();
    file.take(webvtt::MAX_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    SubtitleTrack::from_webvtt("subtitles", &bytes).map_err(|e| e.to_string())
}
