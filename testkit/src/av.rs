//! A/V timing as real readers present it, and how it compares with the
//! source's.
//!
//! Three readers, each run as a process:
//!
//! - **ffmpeg**: [`ffprobe`] with `-show_frames` (decoded frames: after
//!   edit-list discard and `skip_samples`) and `-show_packets` (the encoded
//!   samples, with their bytes);
//! - **GStreamer**: [`gst`] runs `tests/av/gst_offsets.py` (qtdemux on a
//!   file, hlsdemux or dashdemux on a URL; running times at fakesinks);
//! - **Chromium MSE**: [`mse`] runs `tests/av/mse_offsets.mjs` (hls.js or
//!   dash.js; per-track SourceBuffer ranges and the first frame's
//!   `mediaTime`).
//!
//! Each gives a [`Measurement`]: per track, the first presented time in the
//! reader's own timeline and either the encoded samples it read (ffmpeg,
//! GStreamer) or the end of what it buffered (MSE). [`analyze`] turns a
//! measurement of an output plus the [`Reference`] measurement of its source
//! into [`Sync`] rows:
//!
//! - `start_offset` = first presented video time − first presented audio
//!   time, in the reader's timeline;
//! - `content_sync` = the video track's timeline offset − the audio
//!   track's, where a track's timeline offset is (reader time of a sample)
//!   − (source time of the same sample). Samples are identified by their
//!   bytes ([`timeline_offset`]: an MD5 of the sample or a hash of its last
//!   64 bytes, which MPEG-TS repackaging keeps). For MSE the samples are
//!   the coded frames appended to each SourceBuffer, timestamped as MSE
//!   does; the buffered range checks those timestamps.
//!
//! Zero `content_sync` is the source's own A/V alignment; the source's
//! `start_offset` comes from the same analysis of the reference.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

/// Debian's python3, which has the GStreamer introspection bindings
/// (python3-gi, gir1.2-gstreamer-1.0); a virtualenv's python has not.
pub const PYTHON: &str = "/usr/bin/python3";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Video,
    Audio,
}

/// One encoded sample as a reader saw it.
#[derive(Clone, Debug)]
pub struct Packet {
    /// Presentation time in the reader's timeline, seconds.
    pub time: Option<f64>,
    pub size: u64,
    pub key: bool,
    /// First 12 hex digits of the sample's MD5.
    pub hash: Option<String>,
    /// [`fnv64`] of the sample's last 64 bytes (trailing zeros left out).
    pub tail: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Track {
    pub kind: Kind,
    /// What the reader calls it: `stream #2 (h264 640x360)`, `180p.mp4 video`, ...
    pub name: String,
    pub height: Option<u64>,
    /// ffmpeg programs (HLS variants) holding the stream: pairs video with audio.
    pub programs: Vec<u64>,
    /// First presented (decoded, not clipped away) sample, reader's timeline, seconds.
    pub first: Option<f64>,
    /// End of the latest sample: encoded (GStreamer), buffered (MSE), read (ffmpeg).
    pub end: Option<f64>,
    /// Encoded samples in decode order (none for MSE).
    pub packets: Vec<Packet>,
}

impl Track {
    /// A trick-mode (I-frame only) video track: DASH trick-mode adaptation
    /// sets, which ffmpeg and dashdemux expose as streams of their own.
    pub fn is_trick(&self) -> bool {
        self.kind == Kind::Video && !self.packets.is_empty() && self.packets.iter().all(|p| p.key)
    }
}

#[derive(Clone, Debug, Default)]
pub struct Measurement {
    /// `ffmpeg`, `gstreamer hls`, `chromium hls.js`, ...
    pub reader: String,
    pub input: String,
    pub tracks: Vec<Track>,
    /// The reader failed (its errors, or the tool's).
    pub errors: Vec<String>,
    /// MSE: types the browser said it cannot play (`isTypeSupported`).
    pub unsupported: Vec<String>,
    /// MSE: everything was buffered before the ranges were read.
    pub complete: bool,
    /// MSE: the audio track's `first` is where buffering and playback
    /// begin, which may be a silent frame the player made up (hls.js fills
    /// gaps so): [`analyze`] moves it to the first frame of source audio.
    pub mse: bool,
    /// Anything worth printing beside the numbers.
    pub notes: Vec<String>,
}

impl Measurement {
    pub fn tracks(&self, kind: Kind) -> impl Iterator<Item = &Track> {
        self.tracks.iter().filter(move |t| t.kind == kind)
    }
}

/// 64-bit FNV-1a as 16 hex digits (the same as `gst_offsets.py`'s).
pub fn fnv64(data: &[u8]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// The content key that survives repackaging: [`fnv64`] of the last 64
/// bytes, trailing zero bytes left out (MPEG-TS rewrites the head of an
/// access unit: ADTS headers, start codes, delimiters; a parser splitting
/// at a 4-byte start code leaves its first zero on the previous one).
fn tail_of(data: &[u8]) -> String {
    let end = data.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    fnv64(&data[end.saturating_sub(64)..end])
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn tests_av() -> PathBuf {
    crate::workspace().join("tests/av")
}

// ------------------------------------------------------------------ ffmpeg

/// ffprobe's view of `input` (a file or URL): every audio and video stream,
/// its first decoded frame's pts and its packets with their bytes. With
/// `seconds`, only that much from the start is read (`-read_intervals`).
pub fn ffprobe(input: &str, seconds: Option<f64>) -> Measurement {
    let mut cmd = Command::new("ffprobe");
    cmd.args(["-v", "error", "-threads", "1"]);
    if let Some(s) = seconds {
        cmd.args(["-read_intervals", &format!("%+{s}")]);
    }
    cmd.args([
        "-show_programs",
        "-show_streams",
        "-show_packets",
        "-show_frames",
        "-show_data",
        "-show_data_hash",
        "MD5",
        "-show_entries",
        "program=program_id:program_stream=index:stream=index,codec_type,codec_name,width,height\
         :packet=stream_index,pts_time,duration_time,size,flags,data,data_hash\
         :frame=stream_index,pts_time,best_effort_timestamp_time",
        "-of",
        "json",
        input,
    ]);
    let mut m = Measurement {
        reader: "ffmpeg".into(),
        input: input.into(),
        ..Default::default()
    };
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => {
            m.errors.push(format!("cannot run ffprobe: {e}"));
            return m;
        }
    };
    let stderr = String::from_utf8_lossy(&out.stderr).trim().to_owned();
    if !out.status.success() {
        m.errors.push(format!("ffprobe failed: {stderr}"));
        return m;
    }
    if !stderr.is_empty() {
        m.notes.push(format!(
            "ffprobe: {}",
            stderr.lines().take(3).collect::<Vec<_>>().join(" | ")
        ));
    }
    let v: Value = match serde_json::from_slice(&out.stdout) {
        Ok(v) => v,
        Err(e) => {
            m.errors.push(format!("ffprobe output is not JSON: {e}"));
            return m;
        }
    };
    let mut programs: HashMap<u64, Vec<u64>> = HashMap::new();
    for p in v["programs"].as_array().into_iter().flatten() {
        let id = p["program_id"].as_u64().unwrap_or(0);
        for s in p["streams"].as_array().into_iter().flatten() {
            if let Some(i) = s["index"].as_u64() {
                programs.entry(i).or_default().push(id);
            }
        }
    }
    let mut index: HashMap<u64, usize> = HashMap::new();
    for s in v["streams"].as_array().into_iter().flatten() {
        let kind = match s["codec_type"].as_str() {
            Some("video") => Kind::Video,
            Some("audio") => Kind::Audio,
            _ => continue,
        };
        let i = s["index"].as_u64().unwrap_or(0);
        let codec = s["codec_name"].as_str().unwrap_or("?");
        let name = match (s["width"].as_u64(), s["height"].as_u64()) {
            (Some(w), Some(h)) => format!("stream #{i} ({codec} {w}x{h})"),
            _ => format!("stream #{i} ({codec})"),
        };
        index.insert(i, m.tracks.len());
        m.tracks.push(Track {
            kind,
            name,
            height: s["height"].as_u64(),
            programs: programs.remove(&i).unwrap_or_default(),
            first: None,
            end: None,
            packets: Vec::new(),
        });
    }
    for e in v["packets_and_frames"].as_array().into_iter().flatten() {
        let Some(&t) = e["stream_index"].as_u64().and_then(|i| index.get(&i)) else {
            continue;
        };
        let track = &mut m.tracks[t];
        let pts = num(&e["pts_time"]);
        match e["type"].as_str() {
            Some("packet") => {
                let data = e["data"].as_str().map(hexdump_bytes).unwrap_or_default();
                if let (Some(p), Some(d)) = (pts, num(&e["duration_time"])) {
                    track.end = Some(track.end.map_or(p + d, |x: f64| x.max(p + d)));
                }
                track.packets.push(Packet {
                    time: pts,
                    size: num(&e["size"]).unwrap_or(0.0) as u64,
                    key: e["flags"].as_str().is_some_and(|f| f.contains('K')),
                    hash: e["data_hash"]
                        .as_str()
                        .map(|h| h.trim_start_matches("MD5:").chars().take(12).collect()),
                    tail: (!data.is_empty()).then(|| tail_of(&data)),
                });
            }
            Some("frame") => {
                if let Some(p) = pts.or_else(|| num(&e["best_effort_timestamp_time"])) {
                    track.first = Some(track.first.map_or(p, |f: f64| f.min(p)));
                }
            }
            _ => {}
        }
    }
    m
}

/// The bytes of an ffprobe `-show_data` hex dump
/// (`00000000: 0000 0001 09f0 ...  ascii`).
fn hexdump_bytes(dump: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in dump.lines() {
        let Some((_, rest)) = line.split_once(": ") else {
            continue;
        };
        let hex: Vec<u8> = rest
            .bytes()
            .take(39)
            .filter(|c| c.is_ascii_hexdigit())
            .collect();
        for pair in hex.chunks_exact(2) {
            let s = std::str::from_utf8(pair).unwrap_or("00");
            out.push(u8::from_str_radix(s, 16).unwrap_or(0));
        }
    }
    out
}

// ------------------------------------------------------------------ GStreamer

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GstMode {
    /// filesrc ! qtdemux on progressive files.
    File,
    /// souphttpsrc ! hlsdemux on a multivariant playlist.
    Hls,
    /// souphttpsrc ! dashdemux on an MPD.
    Dash,
}

/// GStreamer's view (`tests/av/gst_offsets.py MODE SOURCES... ARGS...`).
/// A run that times out is run once more: a pipeline has been seen to stall
/// at start-up, rarely and only on a loaded machine (qtdemux on hevc.mp4,
/// once in some fifty runs), and one stall must not fail a whole test.
/// The reference reading of a source file (`File`) is run again (up to
/// three times in all) after any error, and after a reading in which a
/// track ended without a sample: it reads no byte of ours, and GStreamer's
/// dynamic pipeline over an unchanged source has been seen, under CI load,
/// to fail ("Internal data stream error" on cts-offset.mp4, "negotiation
/// problem" on the ladder) or to end a late decoder's track before its
/// first buffer (the ladder's 180p video, with 12 readings on 2 cores),
/// and to pass on every other run. Readings of our output get no second
/// chance for errors.
pub fn gst(mode: GstMode, sources: &[&str], args: &[&str]) -> Measurement {
    let attempts = if mode == GstMode::File { 3 } else { 2 };
    let mut earlier = Vec::new();
    let mut reading = gst_once(mode, sources, args);
    for _ in 1..attempts {
        let retry = if mode == GstMode::File {
            for t in reading.tracks.iter().filter(|t| t.end.is_none()) {
                reading
                    .errors
                    .push(format!("{}: ended without a sample", t.name));
            }
            !reading.errors.is_empty()
        } else {
            reading.errors.iter().any(|e| e.contains("timeout"))
        };
        if !retry {
            break;
        }
        earlier.push(reading.errors.join("; "));
        reading = gst_once(mode, sources, args);
    }
    reading
        .notes
        .extend(earlier.into_iter().map(|e| format!("run again after: {e}")));
    reading
}

fn gst_once(mode: GstMode, sources: &[&str], args: &[&str]) -> Measurement {
    let mode_arg = match mode {
        GstMode::File => "file",
        GstMode::Hls => "hls",
        GstMode::Dash => "dash",
    };
    let mut m = Measurement {
        reader: format!("gstreamer {mode_arg}"),
        input: sources.join(" "),
        ..Default::default()
    };
    let out = match Command::new(PYTHON)
        .arg(tests_av().join("gst_offsets.py"))
        .arg(mode_arg)
        .args(sources)
        .args(args)
        .output()
    {
        Ok(o) => o,
        Err(e) => {
            m.errors
                .push(format!("cannot run {PYTHON} gst_offsets.py: {e}"));
            return m;
        }
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = match serde_json::from_str(text.trim()) {
        Ok(v) => v,
        Err(e) => {
            m.errors.push(format!(
                "gst_offsets.py printed no JSON ({e}); stderr: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
            return m;
        }
    };
    for e in v["errors"].as_array().into_iter().flatten() {
        m.errors.push(e.as_str().unwrap_or_default().to_owned());
    }
    for w in v["warnings"].as_array().into_iter().flatten() {
        m.notes
            .push(format!("warning: {}", w.as_str().unwrap_or_default()));
    }
    if !matches!(v["stopped"].as_str(), Some("eos" | "seconds")) && m.errors.is_empty() {
        m.errors
            .push(format!("gst_offsets.py stopped: {}", v["stopped"]));
    }
    for (i, t) in v["tracks"].as_array().into_iter().flatten().enumerate() {
        let kind = match t["kind"].as_str() {
            Some("video") => Kind::Video,
            Some("audio") => Kind::Audio,
            _ => continue,
        };
        let source = t["source"].as_u64().unwrap_or(0) as usize;
        let name = if mode == GstMode::File {
            let file = sources.get(source).map(Path::new).and_then(Path::file_name);
            format!(
                "{} {}",
                file.map_or("?".into(), |f| f.to_string_lossy()),
                t["kind"].as_str().unwrap_or("?")
            )
        } else {
            format!(
                "track #{i} ({} {})",
                t["kind"].as_str().unwrap_or("?"),
                t["decoder"].as_str().unwrap_or("no decoder")
            )
        };
        let height = t["sizes"]
            .as_array()
            .and_then(|s| s.last())
            .and_then(|s| s[1].as_u64());
        let packets = t["encoded"]["packets"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| Packet {
                time: p[0].as_f64(),
                size: p[1].as_u64().unwrap_or(0),
                key: p[3].as_bool().unwrap_or(false),
                hash: p[4].as_str().map(str::to_owned),
                tail: p[5].as_str().map(str::to_owned),
            })
            .collect();
        m.tracks.push(Track {
            kind,
            name,
            height,
            programs: Vec::new(),
            first: t["first"].as_f64(),
            end: t["encoded"]["end"].as_f64(),
            packets,
        });
    }
    m
}

// ------------------------------------------------------------------ Chromium

/// One URL for [`mse`]: `player` is `hls` (hls.js) or `dash` (dash.js);
/// `level` locks the video rendition (the n-th by ascending bandwidth).
#[derive(Clone, Debug)]
pub struct MseRun {
    pub player: &'static str,
    pub url: String,
    pub level: Option<usize>,
}

/// Chromium's view of each URL, all in one browser
/// (`node tests/av/mse_offsets.mjs`); `wait` is how long each URL may take
/// to buffer to its end. One [`Measurement`] per run, in order.
///
/// The video track's `first` is the first presented frame's `mediaTime`;
/// the audio track's is the first sample heard: the audio buffered start,
/// or the playback start position if later (but no later than that first
/// frame, which shows at that position); [`analyze`] moves it past any
/// frames the player made up (silence filling a gap). Both
/// tracks' `end` is the end of their last buffered range, and their
/// packets are the coded frames appended to the SourceBuffer, timestamped
/// as MSE does (checked against the buffered range), with the tail hash
/// of their bytes.
pub fn mse(runs: &[MseRun], wait: f64) -> Vec<Measurement> {
    let harness = tests_av().join("mse_offsets.mjs");
    assert!(
        crate::workspace()
            .join("tests/players/node_modules/playwright-core")
            .is_dir(),
        "tests/players/node_modules is missing: run scripts/setup.sh (npm ci in tests/players)"
    );
    let mut cmd = Command::new("node");
    cmd.arg(&harness).args(["--wait", &wait.to_string()]);
    for r in runs {
        if let Some(l) = r.level {
            cmd.args(["--level", &l.to_string()]);
        }
        cmd.args(["--player", r.player, "--url", &r.url]);
    }
    let out = cmd.output().expect("run node tests/av/mse_offsets.mjs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("{stderr}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("mse_offsets.mjs: {e}: {l}")))
        .collect();
    assert_eq!(
        lines.len(),
        runs.len(),
        "mse_offsets.mjs reported {} of {} URLs; stderr:\n{stderr}",
        lines.len(),
        runs.len()
    );
    lines
        .iter()
        .zip(runs)
        .map(|(v, r)| mse_measurement(v, r))
        .collect()
}

fn mse_measurement(v: &Value, run: &MseRun) -> Measurement {
    let lib = if run.player == "hls" {
        "hls.js"
    } else {
        "dash.js"
    };
    let mut m = Measurement {
        reader: format!("chromium {lib}"),
        input: match run.level {
            Some(l) => format!("{} (level {l})", run.url),
            None => run.url.clone(),
        },
        complete: v["ended"].as_bool() == Some(true) || v["settled"].as_bool() == Some(true),
        mse: true,
        ..Default::default()
    };
    for e in v["errors"].as_array().into_iter().flatten() {
        m.errors.push(e.as_str().unwrap_or_default().to_owned());
    }
    for u in v["unsupported"].as_array().into_iter().flatten() {
        m.unsupported
            .push(u.as_str().unwrap_or_default().to_owned());
    }
    for w in v["warnings"].as_array().into_iter().flatten().take(3) {
        m.notes
            .push(format!("warning: {}", w.as_str().unwrap_or_default()));
    }
    let frame = &v["firstFrame"];
    let v0 = frame["mediaTime"].as_f64();
    let start = v["startPosition"]
        .as_f64()
        .or_else(|| frame["currentTime"].as_f64());
    for (kind, key) in [(Kind::Video, "video"), (Kind::Audio, "audio")] {
        let b = &v[key];
        if b.is_null() {
            continue;
        }
        let (bstart, bend) = (b["start"].as_f64(), b["end"].as_f64());
        // MSE only drops or trims coded frames, so what is buffered lies
        // within the frames' span as the timestamp model computes it.
        if let (Some(bs), Some(be), Some(cs), Some(ce)) = (
            bstart,
            bend,
            b["codedStart"].as_f64(),
            b["codedEnd"].as_f64(),
        ) && (bs < cs - 0.001 || be > ce + 0.001)
        {
            m.errors.push(format!(
                "{key}: buffered {bs:.6}..{be:.6} is not within the appended frames' {cs:.6}..{ce:.6}: the MSE timestamp model (tfdt, composition offsets, edit list {}, timestampOffset) is wrong for this stream",
                b["edit"]
            ));
        }
        let ranges = b["ranges"].as_array().map_or(0, Vec::len);
        if ranges > 1 {
            m.notes.push(format!(
                "{key} buffered in {ranges} ranges: {}",
                b["ranges"]
            ));
        }
        m.notes.push(format!(
            "{key} buffered {:.6}..{:.6}, timestampOffset {}",
            bstart.unwrap_or(f64::NAN),
            bend.unwrap_or(f64::NAN),
            b["timestampOffset"]
        ));
        let first = match kind {
            Kind::Video => v0,
            Kind::Audio => match (bstart, start, v0) {
                (Some(b), Some(s), Some(v0)) => Some(b.max(s.min(v0))),
                (Some(b), _, _) => Some(b),
                _ => None,
            },
        };
        let packets = b["frames"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|f| Packet {
                time: f[0].as_f64(),
                size: f[1].as_u64().unwrap_or(0),
                key: f[3].as_bool().unwrap_or(false),
                hash: None,
                tail: f[4].as_str().map(str::to_owned),
            })
            .collect();
        m.tracks.push(Track {
            kind,
            name: format!("{key} SourceBuffer ({})", b["mime"].as_str().unwrap_or("?")),
            height: if kind == Kind::Video {
                frame["height"].as_u64()
            } else {
                None
            },
            programs: Vec::new(),
            first,
            end: bend,
            packets,
        });
    }
    if v0.is_none() && m.errors.is_empty() {
        m.errors.push("no video frame was presented".into());
    }
    if !m.complete && m.errors.is_empty() {
        m.errors
            .push("the asset was not completely buffered in time".into());
    }
    m
}

// ------------------------------------------------------------------ reference

/// The source of an asset as the reference readers present it: GStreamer
/// qtdemux on the file(s), which follows ISO BMFF edit lists exactly
/// (one pipeline, so a directory asset's files share time zero), and
/// ffprobe on the same files as a second opinion.
pub struct Reference {
    pub asset: PathBuf,
    pub files: Vec<PathBuf>,
    pub gst: Measurement,
    ffprobe: std::sync::OnceLock<Measurement>,
}

impl Reference {
    /// `asset` is a file, or a directory whose `.mp4`/`.m4a` files are one asset.
    pub fn of(asset: &Path) -> Reference {
        let files: Vec<PathBuf> = if asset.is_dir() {
            let mut f: Vec<PathBuf> = std::fs::read_dir(asset)
                .expect("read asset directory")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    p.extension()
                        .is_some_and(|x| x == "mp4" || x == "m4a" || x == "mov")
                })
                .collect();
            f.sort();
            f
        } else {
            vec![asset.to_owned()]
        };
        let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        // A file plays to its end in a second or two.
        let gst = gst(GstMode::File, &refs, &["--timeout", "20"]);
        Reference {
            asset: asset.to_owned(),
            files,
            gst,
            ffprobe: std::sync::OnceLock::new(),
        }
    }

    /// ffprobe on the same files (read on first use): the second opinion,
    /// and every sample of the files, also those an edit list hides.
    pub fn ffprobe(&self) -> &Measurement {
        self.ffprobe.get_or_init(|| {
            let mut all = Measurement {
                reader: "ffmpeg".into(),
                input: self
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(" "),
                ..Default::default()
            };
            for file in &self.files {
                let one = ffprobe(&file.display().to_string(), None);
                let stem = file
                    .file_name()
                    .map_or(String::new(), |f| f.to_string_lossy().into_owned());
                all.errors.extend(one.errors);
                all.notes.extend(one.notes);
                all.tracks.extend(one.tracks.into_iter().map(|mut t| {
                    t.name = format!("{stem} {}", t.name);
                    t
                }));
            }
            all
        })
    }

    /// The source's own rows: its start offset per video track (rung), and
    /// a content sync of zero by construction.
    pub fn sync(&self) -> Vec<Sync> {
        analyze(&self.gst, self).unwrap_or_else(|e| {
            panic!(
                "the reference reading of {} failed: {e}",
                self.asset.display()
            )
        })
    }
}

// ------------------------------------------------------------------ analysis

/// Where one track of a reader lies against the same track of the source.
#[derive(Clone, Debug)]
pub struct Match {
    /// Reader time − source time of the same samples, seconds.
    pub offset: f64,
    /// Reader samples that agree on this offset ...
    pub votes: usize,
    /// ... of this many with a timestamp.
    pub of: usize,
    /// Largest minus smallest offset among those samples.
    pub spread: f64,
    /// Other offsets with at least half the votes (periodic content).
    pub rivals: usize,
}

/// The timeline offset of `reader` against `source` (same content): every
/// reader sample votes for reader time − source time of each source sample
/// with the same bytes (MD5, or the hash of the last 64 bytes); the
/// offset with the most votes, within ±1 ms, wins. Content that repeats
/// (a test tone whose AAC frames recur) gives rival offsets a period apart:
/// on a tie the largest offset wins, which pairs the reader's first samples
/// with the source's earliest ones. `None` if fewer than a fifth of the
/// reader's samples (and fewer than 5) agree.
pub fn timeline_offset(reader: &Track, source: &Track) -> Option<Match> {
    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, p) in source.packets.iter().enumerate() {
        if p.time.is_none() {
            continue;
        }
        for k in [p.hash.as_deref(), p.tail.as_deref()].into_iter().flatten() {
            index.entry(k).or_default().push(i);
        }
    }
    // millisecond bin -> offsets, one per reader sample
    let mut bins: HashMap<i64, Vec<(usize, f64)>> = HashMap::new();
    let mut of = 0;
    for (r, p) in reader.packets.iter().enumerate() {
        let Some(t) = p.time else { continue };
        of += 1;
        let mut seen = HashSet::new();
        for k in [p.hash.as_deref(), p.tail.as_deref()].into_iter().flatten() {
            for &i in index.get(k).into_iter().flatten() {
                let off = t - source.packets[i].time.unwrap_or_default();
                let bin = (off * 1000.0).round() as i64;
                if seen.insert(bin) {
                    bins.entry(bin).or_default().push((r, off));
                }
            }
        }
    }
    // A cluster is a bin and its neighbours, counted once per reader sample.
    let cluster = |bin: i64| -> Vec<f64> {
        let mut by_sample: HashMap<usize, f64> = HashMap::new();
        for b in [bin - 1, bin, bin + 1] {
            for &(r, off) in bins.get(&b).into_iter().flatten() {
                by_sample.entry(r).or_insert(off);
            }
        }
        by_sample.into_values().collect()
    };
    let mut scored: Vec<(usize, i64)> = bins.keys().map(|&b| (cluster(b).len(), b)).collect();
    // most votes first; on a tie the largest offset
    scored.sort_by(|a, b| b.cmp(a));
    let &(votes, best) = scored.first()?;
    if votes < 5 || votes * 5 < of {
        return None;
    }
    let mut offs = cluster(best);
    offs.sort_by(f64::total_cmp);
    let rivals = scored
        .iter()
        .filter(|&&(v, b)| (b - best).abs() > 2 && v * 2 >= votes)
        .map(|&(_, b)| b)
        .collect::<Vec<_>>();
    // neighbouring bins of one rival count once
    let rivals = rivals
        .iter()
        .filter(|&&b| !rivals.contains(&(b - 1)))
        .count();
    Some(Match {
        offset: offs[offs.len() / 2],
        votes,
        of,
        spread: offs[offs.len() - 1] - offs[0],
        rivals,
    })
}

/// What one reader presents of one video track (rung) and its audio.
#[derive(Clone, Debug)]
pub struct Sync {
    pub reader: String,
    pub input: String,
    /// The source video track: `180p.mp4 video`.
    pub video: String,
    /// The reader's video track it was found in.
    pub reader_video: String,
    /// First presented video − first presented audio, reader's timeline.
    pub start_offset: f64,
    /// Video timeline offset − audio timeline offset.
    pub content_sync: f64,
    pub video_offset: f64,
    pub audio_offset: f64,
    pub first_video: f64,
    pub first_audio: f64,
    /// Source time of the first presented video frame / audio sample
    /// (negative: from before the source's presentation start).
    pub first_video_content: f64,
    pub first_audio_content: f64,
    /// How the offsets were found.
    pub how: String,
}

/// Rows of `m` against `source`: one per (reader video track, source video
/// track it carries). Trick-mode tracks are skipped. `Err` says why the
/// measurement cannot be compared.
pub fn analyze(m: &Measurement, source: &Reference) -> Result<Vec<Sync>, String> {
    if !m.errors.is_empty() {
        return Err(format!(
            "{} failed on {}: {}",
            m.reader,
            m.input,
            m.errors.join("; ")
        ));
    }
    let src_videos: Vec<&Track> = source.gst.tracks(Kind::Video).collect();
    let src_audio = source
        .gst
        .tracks(Kind::Audio)
        .next()
        .ok_or("the source has no audio track")?;
    let audios: Vec<&Track> = m.tracks(Kind::Audio).collect();
    if audios.is_empty() {
        return Err(format!(
            "{} presented no audio track of {}",
            m.reader, m.input
        ));
    }
    let mut rows = Vec::new();
    for v in m.tracks(Kind::Video).filter(|t| !t.is_trick()) {
        let a = audios
            .iter()
            .find(|a| a.programs.iter().any(|p| v.programs.contains(p)))
            .unwrap_or(&audios[0]);
        let first_video = v
            .first
            .ok_or_else(|| format!("{}: no video frame presented", v.name))?;
        let mut first_audio = a
            .first
            .ok_or_else(|| format!("{}: no audio presented", a.name))?;
        if m.mse {
            // Not before the first frame that carries the source's audio
            // (any sample of the file, including those its edit list hides).
            let known: HashSet<&str> = source
                .ffprobe()
                .tracks(Kind::Audio)
                .flat_map(|t| &t.packets)
                .flat_map(|p| [p.hash.as_deref(), p.tail.as_deref()])
                .flatten()
                .collect();
            let content = a
                .packets
                .iter()
                .filter(|p| {
                    [p.hash.as_deref(), p.tail.as_deref()]
                        .into_iter()
                        .flatten()
                        .any(|k| known.contains(k))
                })
                .filter_map(|p| p.time)
                .fold(f64::INFINITY, f64::min);
            if content.is_finite() {
                first_audio = first_audio.max(content);
            }
        }
        let by_end = v.packets.is_empty() || a.packets.is_empty();
        let matches: Vec<(&Track, f64, String)> = if by_end {
            // No samples to match (a reader that gave only its buffered
            // ranges): the buffered end against the end of the source's
            // last sample, which holds only if the output keeps the
            // source's last sample and its duration.
            let sv = match src_videos.as_slice() {
                [one] => *one,
                many => *many
                    .iter()
                    .find(|s| s.height.is_some() && s.height == v.height)
                    .ok_or_else(|| format!("no source video of height {:?}", v.height))?,
            };
            let end = |t: &Track| t.end.ok_or_else(|| format!("{}: no end", t.name));
            vec![(sv, end(v)? - end(sv)?, "buffered end".into())]
        } else {
            src_videos
                .iter()
                .filter_map(|s| {
                    timeline_offset(v, s).map(|x| {
                        (
                            *s,
                            x.offset,
                            format!(
                                "video {}/{} samples, spread {:.3} ms{}",
                                x.votes,
                                x.of,
                                x.spread * 1e3,
                                rivals(&x)
                            ),
                        )
                    })
                })
                .collect()
        };
        if matches.is_empty() {
            return Err(format!(
                "{} {}: the samples of {} match no source video track",
                m.reader, m.input, v.name
            ));
        }
        let (audio_offset, audio_how) = if by_end {
            let (ae, se) = (
                a.end.ok_or("no audio end")?,
                src_audio.end.ok_or("no source audio end")?,
            );
            (ae - se, "buffered end".to_owned())
        } else {
            let x = timeline_offset(a, src_audio).ok_or_else(|| {
                format!(
                    "{} {}: the samples of {} match no source audio",
                    m.reader, m.input, a.name
                )
            })?;
            (
                x.offset,
                format!(
                    "audio {}/{} samples, spread {:.3} ms{}",
                    x.votes,
                    x.of,
                    x.spread * 1e3,
                    rivals(&x)
                ),
            )
        };
        for (sv, video_offset, how) in matches {
            rows.push(Sync {
                reader: m.reader.clone(),
                input: m.input.clone(),
                video: sv.name.clone(),
                reader_video: v.name.clone(),
                start_offset: first_video - first_audio,
                content_sync: video_offset - audio_offset,
                video_offset,
                audio_offset,
                first_video,
                first_audio,
                first_video_content: first_video - video_offset,
                first_audio_content: first_audio - audio_offset,
                how: format!("{how}; {audio_how}"),
            });
        }
    }
    if rows.is_empty() {
        return Err(format!(
            "{} presented no video track of {}",
            m.reader, m.input
        ));
    }
    Ok(rows)
}

fn rivals(m: &Match) -> String {
    if m.rivals == 0 {
        String::new()
    } else {
        format!(", {} rival offset(s) (periodic content)", m.rivals)
    }
}

/// `+12.3` (milliseconds, signed).
pub fn ms(seconds: f64) -> String {
    format!("{:+.1}", seconds * 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn track(times: &[(f64, &str)]) -> Track {
        Track {
            kind: Kind::Audio,
            name: "t".into(),
            height: None,
            programs: Vec::new(),
            first: None,
            end: None,
            packets: times
                .iter()
                .map(|&(t, k)| Packet {
                    time: Some(t),
                    size: 1,
                    key: true,
                    hash: Some(k.into()),
                    tail: None,
                })
                .collect(),
        }
    }

    #[test]
    fn fnv_is_fnv1a_64() {
        assert_eq!(fnv64(b""), "cbf29ce484222325");
        assert_eq!(fnv64(b"a"), "af63dc4c8601ec8c");
    }

    #[test]
    fn hexdump_is_read_without_the_ascii_column() {
        let dump = "\n00000000: fff1 4c80 1ebf fc21 2a0f ffff ffe0 04ad  ..L....!*.......\n\
                    00000010: 4514 5145 c0                             E.QE.\n";
        let b = hexdump_bytes(dump);
        assert_eq!(b.len(), 21);
        assert_eq!(&b[..3], &[0xff, 0xf1, 0x4c]);
        assert_eq!(b[20], 0xc0);
    }

    #[test]
    fn offset_by_content_and_periodic_tie_goes_to_the_earliest_content() {
        // Source: a, b, a, b, ... every 10 ms; the reader starts at the first
        // sample, 80 ms later on its clock.
        let src: Vec<(f64, &str)> = (0..20)
            .map(|i| (i as f64 * 0.01, if i % 2 == 0 { "a" } else { "b" }))
            .collect();
        let rd: Vec<(f64, &str)> = src[..10].iter().map(|&(t, k)| (t + 0.08, k)).collect();
        let m = timeline_offset(&track(&rd), &track(&src)).unwrap();
        assert!((m.offset - 0.08).abs() < 1e-9, "{m:?}");
        assert!(m.rivals > 0);
        // Unrelated content matches nothing.
        let other: Vec<(f64, &str)> = (0..10).map(|i| (i as f64 * 0.01, "z")).collect();
        assert!(timeline_offset(&track(&other), &track(&src)).is_none());
    }
}
