//! Live streams on disk as they are made, so that a crash or `kill -9`
//! loses no DVR window: at start the registry restores every spilled
//! stream as if its publisher had just left, and the publisher's return
//! continues it (see `headwater_packager::live` `saved.rs` for the bytes).
//!
//! One directory per stream under the spill directory:
//!
//! - `stream`: the stream record, replaced whole (written beside, then
//!   renamed) when the lead track starts a segment and when a publisher
//!   comes or goes;
//! - `{track}-{msn}.seg`: one segment of one track (track by index),
//!   appended to a part at a time as the packager publishes them, removed
//!   when the segment leaves the DVR window. So the disk holds what memory
//!   holds, under the same limits.
//!
//! Writes happen under the stream's lock before readers are woken, so a
//! part any player saw is in the file (in the page cache at least, which
//! a killed process does not lose). A failed write is logged (rate
//! limited) and the stream goes on in memory.

use std::fs::{self, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use headwater_common::lograte::LogRate;
use headwater_packager::live::{Event, LiveStream, TrackId};

const STREAM: &str = "stream";
/// More tracks than any stream has: a file naming another is not ours.
const MAX_TRACKS: usize = 64;

/// One stream's spill directory.
#[derive(Debug)]
pub(crate) struct Spill {
    dir: PathBuf,
}

impl Spill {
    /// The spill of stream `name` under `root` (created if need be).
    pub(crate) fn new(root: &Path, name: &str) -> Option<Spill> {
        let dir = root.join(name);
        match fs::create_dir_all(&dir) {
            Ok(()) => Some(Spill { dir }),
            Err(e) => {
                warn("create a spill directory", &dir, &e);
                None
            }
        }
    }

    /// Writes what event `e` of `stream` made.
    pub(crate) fn event(&self, stream: &LiveStream, e: &Event) {
        match e {
            Event::PartReady { track, msn, part } => {
                if *part == 0 {
                    if *track == stream.lead() {
                        self.stream(stream);
                    }
                    if let Some(header) = stream.saved_segment_header(*track, *msn) {
                        self.write(*track, *msn, &header, true);
                    }
                }
                if let Some(record) = stream.saved_part(*track, *msn, *part) {
                    self.write(*track, *msn, &record, false);
                }
            }
            Event::SegmentReady { track, msn } => {
                let path = self.segment_path(*track, *msn);
                if !path.exists()
                    && let Some(header) = stream.saved_segment_header(*track, *msn)
                {
                    // A gap: no part came.
                    self.write(*track, *msn, &header, true);
                }
                if let Some(close) = stream.saved_close(*track, *msn) {
                    self.write(*track, *msn, &close, false);
                }
            }
            Event::SegmentEvicted(ev) => {
                let path = self.segment_path(ev.track, ev.msn);
                if let Err(e) = fs::remove_file(&path)
                    && e.kind() != std::io::ErrorKind::NotFound
                {
                    warn("remove a spilled segment", &path, &e);
                }
            }
            _ => {}
        }
    }

    /// Replaces the stream record.
    pub(crate) fn stream(&self, stream: &LiveStream) {
        let path = self.dir.join(STREAM);
        let temp = self.dir.join(".stream.new");
        let result =
            fs::write(&temp, stream.saved_stream()).and_then(|()| fs::rename(&temp, &path));
        if let Err(e) = result {
            warn("write a stream record", &path, &e);
        }
    }

    fn segment_path(&self, track: TrackId, msn: u64) -> PathBuf {
        self.dir.join(format!("{}-{msn}.seg", track.0))
    }

    fn write(&self, track: TrackId, msn: u64, bytes: &[u8], create: bool) {
        let path = self.segment_path(track, msn);
        let mut options = OpenOptions::new();
        if create {
            options.write(true).create(true).truncate(true);
        } else {
            options.append(true);
        }
        if let Err(e) = options.open(&path).and_then(|mut f| f.write_all(bytes)) {
            warn("spill a part", &path, &e);
        }
    }
}

/// A stream found under the spill directory.
pub(crate) struct Found {
    pub(crate) name: String,
    pub(crate) stream: LiveStream,
    pub(crate) spill: Spill,
}

/// Every stream spilled under `root` that can be read back, restored at
/// `now` (`unix_ms`, the same instant). A stream not written to for longer
/// than `stale_after` (its DVR window: nothing of it would be left) is
/// removed; one that cannot be read back is left where it is and logged.
pub(crate) fn restore_all(
    root: &Path,
    stale_after: impl Fn(&LiveStream) -> Duration,
    now: Instant,
    unix_ms: i64,
) -> Vec<Found> {
    let Ok(entries) = fs::read_dir(root) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let dir = entry.path();
        let Some(name) = dir.file_name().and_then(|n| n.to_str()).map(str::to_owned) else {
            continue;
        };
        if !crate::names::valid_stream(&name) || !dir.join(STREAM).is_file() {
            continue;
        }
        match restore(&dir, now, unix_ms) {
            Ok(stream) => {
                let age = fs::metadata(dir.join(STREAM))
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .unwrap_or_default();
                if age > stale_after(&stream) {
                    tracing::info!(stream = %name, "a spilled stream older than its DVR window is removed");
                    let _ = fs::remove_dir_all(&dir);
                    continue;
                }
                found.push(Found {
                    name,
                    stream,
                    spill: Spill { dir },
                });
            }
            Err(e) => {
                tracing::warn!(stream = %name, dir = %dir.display(), error = %e, "a spilled stream cannot be restored; left as it is");
            }
        }
    }
    found
}

fn restore(dir: &Path, now: Instant, unix_ms: i64) -> Result<LiveStream, String> {
    let record = fs::read(dir.join(STREAM)).map_err(|e| e.to_string())?;
    let mut segments: Vec<Vec<Vec<u8>>> = Vec::new();
    for entry in fs::read_dir(dir).map_err(|e| e.to_string())?.flatten() {
        let name = entry.file_name();
        let Some((track, _msn)) = name
            .to_str()
            .and_then(|n| n.strip_suffix(".seg"))
            .and_then(|n| n.split_once('-'))
            .and_then(|(t, m)| Some((t.parse::<usize>().ok()?, m.parse::<u64>().ok()?)))
        else {
            continue;
        };
        // Track indexes are small; anything else is not ours.
        if track >= MAX_TRACKS {
            continue;
        }
        if segments.len() <= track {
            segments.resize_with(track + 1, Vec::new);
        }
        segments[track].push(fs::read(entry.path()).map_err(|e| e.to_string())?);
    }
    LiveStream::restore(&record, &segments, now, unix_ms).map_err(|e| e.to_string())
}

fn warn(what: &str, path: &Path, e: &std::io::Error) {
    static SPILL: LogRate = LogRate::new();
    if let Some(suppressed) = SPILL.allow() {
        tracing::warn!(path = %path.display(), error = %e, suppressed, "live spill: cannot {what}");
    }
}
