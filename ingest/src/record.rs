//! Recording: a recorded stream's segments also become a VOD asset.
//!
//! Each track is written as a fragmented MP4 — its init segment, then every
//! segment as it completes (`styp` + `moof`/`mdat` per part) — into
//! `{media root}/rec-{stream}-{start}/`, `{track}.mp4` for video and
//! `{track}.m4a` for audio, where `{start}` is the stream's start in Unix
//! seconds. That directory is a directory-mode asset: `/vod/rec-{stream}-{start}/...`
//! serves it with every VOD feature, while it grows and after the stream ends.
//! A publisher that reconnects keeps appending (the timeline continues);
//! a server restart starts a new recording. Writes happen on a thread of
//! their own, fed by a channel, never under the stream's lock; a write
//! error stops the recording with one log line.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc;

/// What the writer thread receives.
pub(crate) enum Piece {
    /// A track's init segment (sent once per track, first).
    Init(usize, Arc<[u8]>),
    /// A complete segment of a track.
    Segment(usize, Vec<Arc<[u8]>>),
}

/// The sending side of a recording.
pub(crate) struct Recorder {
    tx: mpsc::Sender<Piece>,
    /// The recording's directory.
    pub(crate) dir: PathBuf,
}

impl Recorder {
    /// Starts a recording of `stream` into `root`, with files named after
    /// `tracks` (`(name, is_audio)`).
    pub(crate) fn start(
        root: &Path,
        stream: &str,
        start_unix_secs: i64,
        tracks: Vec<(String, bool)>,
    ) -> Recorder {
        let dir = root.join(format!("rec-{stream}-{start_unix_secs}"));
        let (tx, rx) = mpsc::channel::<Piece>();
        let d = dir.clone();
        let stream = stream.to_owned();
        let spawned = std::thread::Builder::new()
            .name(format!("rec-{stream}"))
            .spawn(move || {
                if let Err(e) = write_all(&d, &tracks, rx) {
                    tracing::error!(stream = %stream, dir = %d.display(), error = %e, "recording stopped");
                }
            });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "cannot start a recording thread");
        }
        Recorder { tx, dir }
    }

    /// Queues a piece for writing (dropped silently once the writer stopped).
    pub(crate) fn send(&self, p: Piece) {
        let _ = self.tx.send(p);
    }
}

fn write_all(
    dir: &Path,
    tracks: &[(String, bool)],
    rx: mpsc::Receiver<Piece>,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut files: Vec<Option<File>> = tracks.iter().map(|_| None).collect();
    for piece in rx {
        let (track, chunks): (usize, Vec<Arc<[u8]>>) = match piece {
            Piece::Init(t, b) => (t, vec![b]),
            Piece::Segment(t, c) => (t, c),
        };
        let Some((name, audio)) = tracks.get(track) else {
            continue;
        };
        let slot = &mut files[track];
        if slot.is_none() {
            let ext = if *audio { "m4a" } else { "mp4" };
            *slot = Some(File::create(dir.join(format!("{name}.{ext}")))?);
        }
        if let Some(f) = slot {
            for c in &chunks {
                f.write_all(c)?;
            }
        }
    }
    for f in files.into_iter().flatten() {
        f.sync_all()?;
    }
    Ok(())
}
