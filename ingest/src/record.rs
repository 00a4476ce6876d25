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
//! their own, fed by a channel, never under the stream's lock. A segment
//! that cannot be written (a full disk) is cut back off the file and
//! skipped, with a few log lines however long it lasts; the recording
//! resumes with the next segment that fits, so a file holds only whole
//! segments and has a gap where the disk was full.

use std::fs::File;
use std::os::unix::fs::FileExt;
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
    let mut files: Vec<TrackFile> = tracks
        .iter()
        .map(|(name, audio)| TrackFile {
            path: dir.join(format!("{name}.{}", if *audio { "m4a" } else { "mp4" })),
            file: None,
            init: None,
            len: 0,
        })
        .collect();
    for piece in rx {
        let (track, result) = match piece {
            Piece::Init(t, b) => (t, files.get_mut(t).map(|f| f.init(b))),
            Piece::Segment(t, c) => (t, files.get_mut(t).map(|f| f.append(&c))),
        };
        if let Some(Err(e)) = result {
            // A full disk fails every segment while it lasts: a few lines.
            static SKIPPED: headwater_common::lograte::LogRate =
                headwater_common::lograte::LogRate::new();
            if let Some(suppressed) = SKIPPED.allow() {
                tracing::warn!(
                    file = %files[track].path.display(),
                    error = %e,
                    suppressed,
                    "recording: a segment was not written (the recording skips it)"
                );
            }
        }
    }
    for f in files.iter().filter_map(|f| f.file.as_ref()) {
        f.sync_all()?;
    }
    Ok(())
}

/// One track's file of a recording: its init segment, then whole
/// segments only. A segment that cannot be written (a full disk) is cut
/// back off, so the file never holds part of one, and the recording goes
/// on with the next: it has a gap where the disk was full.
struct TrackFile {
    path: PathBuf,
    file: Option<File>,
    /// The init segment (kept: a file cut back to nothing starts over with it).
    init: Option<Arc<[u8]>>,
    /// Bytes of whole segments written.
    len: u64,
}

impl TrackFile {
    fn init(&mut self, init: Arc<[u8]>) -> std::io::Result<()> {
        self.init = Some(init);
        self.open()
    }

    /// Creates the file and writes the init segment, once.
    fn open(&mut self) -> std::io::Result<()> {
        if self.file.is_some() {
            return Ok(());
        }
        let Some(init) = self.init.clone() else {
            return Err(std::io::Error::other("a segment before its init segment"));
        };
        let file = File::create(&self.path)?;
        self.file = Some(file);
        self.write(&[init])
    }

    fn append(&mut self, chunks: &[Arc<[u8]>]) -> std::io::Result<()> {
        self.open()?;
        self.write(chunks)
    }

    /// Writes `chunks` after what is there, or cuts the file back to it.
    fn write(&mut self, chunks: &[Arc<[u8]>]) -> std::io::Result<()> {
        let Some(file) = &self.file else {
            return Err(std::io::Error::other("no file"));
        };
        let mut at = self.len;
        for c in chunks {
            if let Err(e) = file.write_all_at(c, at) {
                file.set_len(self.len)?;
                if self.len == 0 {
                    // Not even the init segment: start over with the next.
                    self.file = None;
                }
                return Err(e);
            }
            at += c.len() as u64;
        }
        self.len = at;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn piece(byte: u8, len: usize) -> Arc<[u8]> {
        vec![byte; len].into()
    }

    /// On a full disk (a 64 KiB tmpfs) a segment that does not fit is cut
    /// back off and skipped, the next that fits is written, and once space
    /// returns the recording goes on: the file is always whole segments.
    #[test]
    fn a_full_disk_skips_whole_segments_and_recovers() {
        let dir = headwater_testkit::TempDir::new("record-full");
        let disk = headwater_testkit::Tmpfs::mount(&dir.path().join("disk"), "64k");
        let mut t = TrackFile {
            path: dir.path().join("disk/v1.mp4"),
            file: None,
            init: None,
            len: 0,
        };
        let (init, a, b, c, d, e) = (
            piece(1, 1_000),
            piece(2, 20_000),
            piece(3, 20_000),
            piece(4, 40_000),
            piece(5, 10_000),
            piece(6, 40_000),
        );
        assert!(t.append(std::slice::from_ref(&a)).is_err(), "no init yet");
        t.init(init.clone()).unwrap();
        t.append(std::slice::from_ref(&a)).unwrap();
        // A segment in two chunks, the second of which does not fit.
        t.append(&[b.clone(), c.clone()]).unwrap_err();
        t.append(std::slice::from_ref(&d)).unwrap();
        let whole = |parts: &[&Arc<[u8]>]| -> Vec<u8> {
            parts.iter().flat_map(|p| p.iter().copied()).collect()
        };
        let path = t.path.clone();
        let on_disk = || std::fs::read(&path).unwrap();
        assert_eq!(
            on_disk(),
            whole(&[&init, &a, &d]),
            "the cut segment is gone"
        );
        t.append(std::slice::from_ref(&e)).unwrap_err();
        assert_eq!(on_disk(), whole(&[&init, &a, &d]));
        disk.resize("1m");
        t.append(std::slice::from_ref(&e)).unwrap();
        assert_eq!(on_disk(), whole(&[&init, &a, &d, &e]), "resumed");
    }
}
