//! ffmpeg and ffprobe as independent referees, and ffmpeg runs that make
//! a test's media.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// Runs `ffmpeg -nostdin -loglevel error ARGS` and asserts that it exits
/// successfully (showing the arguments and what it said); returns what it
/// printed on stderr, for callers that want it empty.
pub fn run<I, S>(args: I) -> String
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let args: Vec<S> = args.into_iter().collect();
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error"])
        .args(&args)
        .output()
        .expect("run ffmpeg");
    let said = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "ffmpeg {:?} failed: {said}",
        args.iter().map(|a| a.as_ref()).collect::<Vec<_>>()
    );
    said
}

/// Writes a test mezzanine to `path`: `seconds` of ffmpeg's `testsrc2` at
/// `size` (`WxH`) and 25 fps in H.264 (x264, `veryfast`, then
/// `video_args`, such as a GOP), and a 440 Hz tone in AAC.
pub fn mezzanine(path: &Path, size: &str, seconds: u32, video_args: &[&str]) {
    let video = format!("testsrc2=size={size}:rate=25:duration={seconds}");
    let audio = format!("sine=frequency=440:duration={seconds}");
    let path = path.to_str().expect("a UTF-8 path");
    let mut args = vec![
        "-y", "-f", "lavfi", "-i", &video, "-f", "lavfi", "-i", &audio,
    ];
    args.extend(["-c:v", "libx264", "-preset", "veryfast"]);
    args.extend(video_args);
    args.extend(["-c:a", "aac", "-shortest", path]);
    run(args);
}

/// `v` → `0:v:0`, `v:2` → `0:v:2`.
fn map(stream: &str) -> String {
    if stream.contains(':') {
        format!("0:{stream}")
    } else {
        format!("0:{stream}:0")
    }
}

/// Per-frame MD5s of the decoded frames of one stream (`v` or `a`), in
/// output order, as `ffmpeg -f framemd5` prints them. `input_args` go before
/// `-i` (for example `-ignore_editlist 1`).
pub fn frame_hashes(input: &str, stream: &str, input_args: &[&str]) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(input_args)
        .args(["-i", input, "-map", &map(stream), "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed on {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        errors.trim().is_empty(),
        "ffmpeg reported errors decoding {input}:\n{errors}"
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect()
}

/// Per-packet MD5s of one stream, in decode order: the access units as
/// stored, not decoded (`-c copy` into `framemd5`). AAC in ADTS (from
/// MPEG-TS) loses its ADTS headers first, so it compares with MP4's.
pub fn packet_hashes(input: &str, stream: &str, input_args: &[&str]) -> Vec<String> {
    let aac = probe(input, stream, "stream=codec_name")
        .first()
        .is_some_and(|c| c.starts_with("aac"));
    let bsf: &[&str] = if aac { &["-bsf", "aac_adtstoasc"] } else { &[] };
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(input_args)
        .args(["-i", input, "-map", &map(stream), "-c", "copy"])
        .args(bsf)
        .args(["-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg failed on {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        // stream, dts, pts, duration, size, hash[, side data...]
        .filter_map(|l| l.split(',').nth(5).map(|h| h.trim().to_owned()))
        .collect()
}

/// `(pts, duration)` in seconds of every packet of one stream, as ffprobe
/// reads them (the source's edit list applied: packets before the edit
/// point have negative times).
pub fn packet_times(input: &str, stream: &str) -> Vec<(f64, f64)> {
    probe(input, stream, "packet=pts_time,duration_time")
        .iter()
        .filter_map(|l| {
            let mut f = l.split(',');
            let pts = f.next()?.parse().ok()?;
            let dur = f.next().and_then(|d| d.parse().ok()).unwrap_or(0.0);
            Some((pts, dur))
        })
        .collect()
}

/// Audio is packaged losslessly: the output's packets are the source's,
/// byte for byte, from the first one presented — those whose midpoint
/// presents before the source's edit point (encoder priming, audio before
/// a trim) are left out, and only those — and every one decodes. (Decoded
/// frames are not compared: without the priming frame a decoder's state
/// differs — the first frame's transform overlap, AAC's noise generator —
/// though the data does not.)
pub fn assert_same_audio(source: &str, output: &str, source_stream: &str, output_stream: &str) {
    let want = packet_hashes(source, source_stream, &["-ignore_editlist", "1"]);
    let got = packet_hashes(output, output_stream, &[]);
    // What ffmpeg presents of the source (its edit list applied), the frame
    // that straddles the edit point by its midpoint.
    let presented = packet_times(source, source_stream)
        .iter()
        .filter(|(pts, dur)| *pts >= 0.0 || pts + dur / 2.0 > 0.0)
        .count();
    assert_eq!(
        got.len(),
        presented,
        "{output}: {output_stream} packets: {} of the source's {}, {presented} presented",
        got.len(),
        want.len()
    );
    let before = want.len() - presented;
    if let Some(i) = got.iter().zip(&want[before..]).position(|(a, b)| a != b) {
        panic!("{output}: {output_stream} packet {i} differs from {source}");
    }
    let decoded = frame_hashes(output, output_stream, &[]);
    assert_eq!(
        decoded.len(),
        got.len(),
        "{output}: every audio packet decodes"
    );
}

/// MD5 of every decoded keyframe of the first video stream of `input`
/// (every decoder honours `select=key`; not all honour `-skip_frame`).
pub fn keyframe_hashes(input: &str, input_args: &[&str]) -> Vec<String> {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(input_args)
        .args(["-i", input, "-map", "0:v:0", "-vf", "select=key"])
        .args(["-fps_mode", "passthrough", "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg failed on {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit(',').next().map(|h| h.trim().to_owned()))
        .collect()
}

/// Values from ffprobe for the streams selected by `select` (`v`, `a`, or
/// `""` for all), such as `stream=duration`, one line each.
pub fn probe(input: &str, select: &str, entries: &str) -> Vec<String> {
    let select: &[&str] = if select.is_empty() {
        &[]
    } else {
        &["-select_streams", select]
    };
    let out = Command::new("ffprobe")
        .args(["-v", "error"])
        .args(select)
        .args(["-show_entries", entries, "-of", "csv=p=0", input])
        .output()
        .expect("run ffprobe");
    assert!(
        out.status.success(),
        "ffprobe failed on {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| l.trim().to_owned())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Presented duration in seconds of one stream (`v` or `a`): from the first
/// to the end of the last decoded frame with a non-negative timestamp, from
/// `framemd5` timing. Frames before zero are decoder pre-roll that an edit
/// list (or an MSE append window) keeps off the screen.
pub fn decoded_span(input: &str, stream: &str, input_args: &[&str]) -> f64 {
    let out = Command::new("ffmpeg")
        .args(["-nostdin", "-hide_banner", "-loglevel", "error"])
        .args(input_args)
        .args(["-i", input, "-map", &map(stream), "-f", "framemd5", "-"])
        .output()
        .expect("run ffmpeg");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut tb = 1.0;
    let (mut first, mut last_end) = (None, 0.0f64);
    for l in text.lines() {
        if let Some(rest) = l.strip_prefix("#tb 0: ") {
            let (n, d) = rest.split_once('/').unwrap();
            tb = n.trim().parse::<f64>().unwrap() / d.trim().parse::<f64>().unwrap();
            continue;
        }
        if l.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = l.split(',').map(str::trim).collect();
        let (pts, dur): (f64, f64) = (f[2].parse().unwrap(), f[3].parse().unwrap());
        if pts < 0.0 {
            continue;
        }
        first.get_or_insert(pts * tb);
        last_end = last_end.max((pts + dur) * tb);
    }
    last_end - first.unwrap_or(0.0)
}
