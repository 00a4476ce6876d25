//! Probing an asset's sources when it is registered: what tracks, codecs
//! and duration the packager finds, or a message naming the file that
//! cannot be used. Blocking (reads files): run it on the blocking pool.

use std::fs::File;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use headwater_objects::{Bucket, Object};

use headwater_packager::mp4::{Track, TrackKind};
use headwater_packager::subtitles::{SubtitleTrack, webvtt};
use headwater_packager::{Limits, NamedSource, PackagingConfig, Presentation, ReadAt, Source};

use headwater_common::media_root::MediaRoot;

use crate::model::{Role, SourceSpec, TrackInfo};

/// Where source paths are: under the media directory, or keys under the
/// library's prefix in its bucket.
#[derive(Clone)]
pub enum Root {
    /// The media directory (confined opens).
    Dir(MediaRoot),
    /// The library's bucket.
    Bucket(Arc<Bucket>),
}

/// An opened source: a file, or an object read in ranges.
enum Opened {
    File(File, u64),
    Object(Arc<Bucket>, Object),
}

impl Opened {
    fn len(&self) -> u64 {
        match self {
            Opened::File(_, len) => *len,
            Opened::Object(_, o) => o.size,
        }
    }

    /// The whole of a small file, at most `limit` bytes of it.
    fn read_all(&self, limit: u64) -> Result<Vec<u8>, String> {
        match self {
            Opened::File(f, _) => {
                let mut bytes = Vec::new();
                f.take(limit)
                    .read_to_end(&mut bytes)
                    .map_err(|e| e.to_string())?;
                Ok(bytes)
            }
            Opened::Object(b, o) => b
                .get(o, 0..o.size.min(limit))
                .map(|b| b.to_vec())
                .map_err(|e| e.to_string()),
        }
    }
}

impl ReadAt for Opened {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Opened::File(f, _) => f.read_at(buf, offset),
            Opened::Object(b, o) => {
                let end = offset.saturating_add(buf.len() as u64).min(o.size);
                if offset >= end {
                    return Ok(0);
                }
                let bytes = b.get(o, offset..end).map_err(std::io::Error::other)?;
                buf[..bytes.len()].copy_from_slice(&bytes);
                Ok(bytes.len())
            }
        }
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
pub fn probe(root: &Root, sources: &[SourceSpec], limits: &Limits) -> Result<Probed, String> {
    let mut probed = Probed {
        tracks: Vec::new(),
        duration_ms: 0,
    };
    let mut named = Vec::new();
    for (i, spec) in sources.iter().enumerate() {
        let opened = open(root, i, spec)?;
        if spec.path.ends_with(".vtt") {
            probed.add(vtt_track(i, spec, &opened)?);
            continue;
        }
        if spec.role == Some(Role::Subtitle) {
            return Err(about(i, spec, "role 'subtitle' needs a .vtt file"));
        }
        let source = Source::index(&opened, opened.len(), limits).map_err(|e| about(i, spec, e))?;
        for t in &source.movie.tracks {
            probed.add(track_info(i, t));
        }
        check_role(i, spec, &source)?;
        named.push(named_source(i, spec, source));
    }
    if !named.is_empty() {
        Presentation::new(named, PackagingConfig::default())
            .map_err(|e| format!("cannot package these sources: {e}"))?;
    }
    Ok(probed)
}

impl Probed {
    /// Adds a track; the longest track is the duration.
    fn add(&mut self, track: TrackInfo) {
        self.duration_ms = self.duration_ms.max(track.duration_ms);
        self.tracks.push(track);
    }
}

/// A message about source `i`: `sources[i] 'path': why`.
fn about(i: usize, spec: &SourceSpec, why: impl std::fmt::Display) -> String {
    format!("sources[{i}] '{}': {why}", spec.path)
}

/// Opens source `i` under the root and checks that it is a regular file
/// (or an object).
fn open(root: &Root, i: usize, spec: &SourceSpec) -> Result<Opened, String> {
    let root = match root {
        Root::Dir(_) if Bucket::is_url(&spec.path) => {
            return Err(about(
                i,
                spec,
                "an s3:// source needs the library in that bucket (media.root)",
            ));
        }
        Root::Dir(root) => root,
        Root::Bucket(bucket) => {
            let Some(key) = bucket.key_of(&spec.path) else {
                return Err(about(i, spec, "not in the library's bucket and prefix"));
            };
            return match bucket.head(key) {
                Ok(Some(o)) => Ok(Opened::Object(bucket.clone(), o)),
                Ok(None) => Err(about(i, spec, "no such object in the bucket")),
                Err(e) => Err(about(i, spec, e)),
            };
        }
    };
    // Confined to the root: a symlink (file or directory) the policy
    // refuses is refused here, as the data plane would refuse it.
    let file = root
        .open(Path::new(&spec.path))
        .map_err(|e| about(i, spec, e))?;
    let meta = file.metadata().map_err(|e| about(i, spec, e))?;
    if !meta.is_file() {
        return Err(about(i, spec, "not a regular file"));
    }
    Ok(Opened::File(file, meta.len()))
}

/// The subtitle track of a `.vtt` source.
fn vtt_track(i: usize, spec: &SourceSpec, file: &Opened) -> Result<TrackInfo, String> {
    if spec.role.is_some_and(|r| r != Role::Subtitle) {
        return Err(about(i, spec, "a .vtt file is a subtitle"));
    }
    let track = read_vtt(file).map_err(|e| about(i, spec, e))?;
    let end = track.cues.iter().map(|c| c.end_ms).max().unwrap_or(0);
    Ok(TrackInfo {
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
    })
}

/// What the API tells of an MP4 track of source `i`.
fn track_info(i: usize, t: &Track) -> TrackInfo {
    let scale = u64::from(t.timescale.get());
    let kind = match t.kind {
        TrackKind::Video => "video",
        TrackKind::Audio => "audio",
        TrackKind::Other => "other",
    };
    let video = t.kind == TrackKind::Video;
    let audio = t.kind == TrackKind::Audio;
    TrackInfo {
        source: i,
        kind: kind.into(),
        codec: t
            .sample_entry
            .rfc6381()
            .unwrap_or_else(|| format!("unsupported ({})", t.sample_entry.fourcc)),
        language: t.language.to_string(),
        width: video.then_some(t.width),
        height: video.then_some(t.height),
        channels: audio.then_some(u32::from(t.sample_entry.channels)),
        sample_rate: audio.then_some(t.sample_entry.sample_rate),
        duration_ms: t.samples.end_dts().saturating_mul(1000) / scale,
        samples: t.samples.len() as u64,
    }
}

/// A source given the role `video` or `audio` has such a track.
fn check_role(i: usize, spec: &SourceSpec, source: &Source) -> Result<(), String> {
    let has = |kind| source.movie.tracks.iter().any(|t| t.kind == kind);
    match spec.role {
        Some(Role::Video) if !has(TrackKind::Video) => {
            Err(about(i, spec, "role 'video' but no video track"))
        }
        Some(Role::Audio) if !has(TrackKind::Audio) => {
            Err(about(i, spec, "role 'audio' but no audio track"))
        }
        _ => Ok(()),
    }
}

/// Source `i` as the packager names it: after its file stem, else `s{i}`,
/// with the language the spec gives.
fn named_source(i: usize, spec: &SourceSpec, source: Source) -> NamedSource {
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
    n
}

fn read_vtt(file: &Opened) -> Result<SubtitleTrack, String> {
    let bytes = file.read_all(webvtt::MAX_BYTES as u64 + 1)?;
    SubtitleTrack::from_webvtt("subtitles", &bytes).map_err(|e| e.to_string())
}
