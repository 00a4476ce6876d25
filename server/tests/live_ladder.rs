//! Live ladders: a catalog stream with a 3-rung ladder is transcoded by
//! GStreamer while ffmpeg publishes it over RTMP. Checked: the multivariant
//! playlist and the MPD offer the three rungs at their sizes and bit rates,
//! the rungs' segments line up (same sequence numbers, same durations: the
//! keyframes are on the same frames), ffprobe decodes each rung at its
//! size, and hls.js plays the stream and switches through all three rungs.
//!
//! All of it under a competing CPU load (two busy threads for the whole
//! test, as another job on a two-core machine would be): a transcoder that
//! falls behind real time must show as latency, never as a hole in the
//! timeline (issue 15, item 6). Every rung's and the audio's segments are
//! checked to follow each other without a gap (`EXT-X-PROGRAM-DATE-TIME`
//! of each is the previous one's plus its `EXTINF`).

use std::process::Command;
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::live::{KEY, attr, ffmpeg_push, get_text, play, rtmp_url, wait_until};
use headwater_testkit::scratch_dir;
use headwater_testkit::server::{Server, admin_args, sqlite_in};

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");
const ADMIN: &str = "admin-token-for-ladder-tests-0123";
/// (name, width, height, kbit/s), as the ladder below declares them.
const RUNGS: [(&str, u32, u32, u32); 3] = [
    ("r180", 320, 180, 400),
    ("r144", 256, 144, 250),
    ("r90", 160, 90, 120),
];

/// `(EXT-X-MEDIA-SEQUENCE, EXTINF durations)` of a media playlist.
fn segments(text: &str) -> (u64, Vec<String>) {
    let msn = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no EXT-X-MEDIA-SEQUENCE in {text}"));
    let durations = text
        .lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .map(|d| d.trim_end_matches(',').to_owned())
        .collect();
    (msn, durations)
}

/// Threads that keep the CPU busy until dropped (at most three minutes).
struct Load {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(threads: usize) -> Load {
        use std::sync::atomic::{AtomicBool, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || {
                    let until = std::time::Instant::now() + Duration::from_secs(180);
                    let mut x = 0u64;
                    while !stop.load(Ordering::Relaxed) && std::time::Instant::now() < until {
                        for i in 0..100_000u64 {
                            x = std::hint::black_box(
                                x.wrapping_mul(6364136223846793005).wrapping_add(i),
                            );
                        }
                    }
                })
            })
            .collect();
        Load { stop, threads }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Checks that the segments of a live media playlist follow each other
/// without a hole: each `EXT-X-PROGRAM-DATE-TIME` is the previous one's
/// plus the previous `EXTINF`, within a millisecond (no discontinuity here).
fn no_holes(name: &str, text: &str) {
    let mut last: Option<(f64, f64)> = None;
    let mut pdt: Option<f64> = None;
    for line in text.lines() {
        if let Some(v) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            pdt = Some(chrono_seconds(v));
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            let d: f64 = d.trim_end_matches(',').parse().unwrap();
            let t = pdt
                .take()
                .unwrap_or_else(|| panic!("{name}: EXTINF without a PDT: {text}"));
            if let Some((prev, prev_d)) = last {
                assert!(
                    (t - prev - prev_d).abs() < 0.0015,
                    "{name}: a hole of {:.3} s before the segment at {t:.3}: {text}",
                    t - prev - prev_d
                );
            }
            last = Some((t, d));
        }
    }
    assert!(last.is_some(), "{name}: no complete segment: {text}");
}

/// Seconds since midnight of an ISO 8601 time of day `...THH:MM:SS.sssZ`
/// (the playlists of one test never cross midnight in a way that matters:
/// a day's wrap would show as a hole and fail loudly).
fn chrono_seconds(iso: &str) -> f64 {
    let time = iso.split('T').nth(1).expect("a date and a time");
    let time = time.trim_end_matches('Z');
    let mut parts = time.split(':');
    let h: f64 = parts.next().unwrap().parse().unwrap();
    let m: f64 = parts.next().unwrap().parse().unwrap();
    let s: f64 = parts.next().unwrap().parse().unwrap();
    h * 3600.0 + m * 60.0 + s
}

#[test]
fn a_three_rung_ladder_stream_is_transcoded_aligned_and_switches_in_hlsjs() {
    let _load = Load::start(2);
    let db = sqlite_in(&scratch_dir("live-ladder"));
    let s = headwater_testkit::live::start(HEADWATER.as_ref(), &admin_args(ADMIN, &db));
    let api = Api::new(s.admin_addr(), ADMIN);
    let rungs: Vec<String> = RUNGS
        .iter()
        .map(|(n, w, h, b)| {
            format!(r#"{{"name": "{n}", "width": {w}, "height": {h}, "video_bitrate_kbps": {b}}}"#)
        })
        .collect();
    let ladder = format!(
        r#"{{"name": "live3", "frame_rate": 25, "keyframe_interval_secs": 2, "rungs": [{}]}}"#,
        rungs.join(",")
    );
    let r = api.call("POST", "/api/v1/ladders", Some(&ladder));
    assert_eq!(r.status, 201, "{}", r.body);
    let r = api.call(
        "POST",
        "/api/v1/streams",
        Some(&format!(
            r#"{{"name": "abr", "publish_key": "{KEY}", "ladder": "live3"}}"#
        )),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let rtmp = s.logged_addr("rtmp");
    let mut pusher = ffmpeg_push(&rtmp_url(rtmp, "abr", KEY), 75, "flv");

    // Every rung, at its size and bit rate, in the multivariant playlist.
    let playlists = |s: &Server| -> Vec<(String, (u64, Vec<String>))> {
        RUNGS
            .iter()
            .map(|(n, ..)| {
                let (st, text) = get_text(s, &format!("/live/abr/hls/{n}.m3u8"));
                assert_eq!(st, 200, "{n}.m3u8: {text}");
                (n.to_string(), segments(&text))
            })
            .collect()
    };
    assert!(
        wait_until(Duration::from_secs(30), || {
            get_text(&s, "/live/abr/hls/master.m3u8").0 == 200
                && playlists(&s).iter().all(|(_, (_, d))| d.len() >= 3)
        }),
        "the transcoded stream never had three segments in every rung: {}",
        get_text(&s, "/live/abr/hls/master.m3u8").1
    );
    let (_, master) = get_text(&s, "/live/abr/hls/master.m3u8");
    let variants: Vec<(&str, &str)> = master
        .lines()
        .zip(master.lines().skip(1))
        .filter(|(l, _)| l.starts_with("#EXT-X-STREAM-INF:"))
        .collect();
    assert_eq!(variants.len(), RUNGS.len(), "{master}");
    for (name, w, h, kbps) in RUNGS {
        let (inf, _) = variants
            .iter()
            .find(|(_, uri)| uri.starts_with(&format!("{name}.m3u8")))
            .unwrap_or_else(|| panic!("no variant {name} in {master}"));
        assert_eq!(
            attr(inf, "RESOLUTION").as_deref(),
            Some(&*format!("{w}x{h}")),
            "{inf}"
        );
        let bw: u64 = attr(inf, "BANDWIDTH").unwrap().parse().unwrap();
        assert!(
            bw > u64::from(kbps) * 1000,
            "{inf}: BANDWIDTH below the rung's {kbps} kbit/s"
        );
        assert!(attr(inf, "CODECS").unwrap().starts_with("avc1."), "{inf}");
    }

    // Aligned: the same sequence numbers and the same durations in every
    // rung, for the segments all of them list.
    let all = playlists(&s);
    let first = all.iter().map(|(_, (m, _))| *m).max().unwrap();
    let last = all
        .iter()
        .map(|(_, (m, d))| m + d.len() as u64)
        .min()
        .unwrap();
    assert!(last >= first + 2, "{all:?}");
    let window =
        |(m, d): &(u64, Vec<String>)| d[(first - m) as usize..(last - m) as usize].to_vec();
    for (name, p) in &all[1..] {
        assert_eq!(
            window(p),
            window(&all[0].1),
            "{name} against {}: {all:?}",
            all[0].0
        );
    }

    // The MPD has the three rungs as representations of their sizes.
    let (st, mpd) = get_text(&s, "/live/abr/dash/manifest.mpd");
    assert_eq!(st, 200, "{mpd}");
    for (_, w, h, _) in RUNGS {
        assert!(
            mpd.contains(&format!("width=\"{w}\"")) && mpd.contains(&format!("height=\"{h}\"")),
            "no {w}x{h} representation in {mpd}"
        );
    }

    // Each rung's init segment and first complete segment decode at the
    // rung's size: two seconds, 50 frames at 25 fps, from a keyframe.
    let dir = scratch_dir("live-ladder-rungs");
    for (name, w, h, _) in RUNGS {
        let (_, text) = get_text(&s, &format!("/live/abr/hls/{name}.m3u8"));
        let init = text
            .lines()
            .find(|l| l.starts_with("#EXT-X-MAP:"))
            .and_then(|l| attr(l, "URI"))
            .unwrap_or_else(|| panic!("no EXT-X-MAP in {text}"));
        let segment = text
            .lines()
            .skip_while(|l| !l.starts_with("#EXTINF:"))
            .find(|l| !l.starts_with('#') && !l.is_empty())
            .unwrap_or_else(|| panic!("no segment in {text}"));
        let mut bytes = Vec::new();
        for uri in [init.as_str(), segment] {
            let r = headwater_testkit::http::get(s.addr, &format!("/live/abr/hls/{uri}"));
            assert_eq!(r.status, 200, "{uri}");
            bytes.extend_from_slice(&r.body);
        }
        let file = dir.join(format!("{name}.mp4"));
        std::fs::write(&file, &bytes).unwrap();
        let out = Command::new("ffprobe")
            .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
            .args([
                "-show_entries",
                "stream=width,height,nb_read_frames",
                "-of",
                "csv=p=0",
            ])
            .arg(&file)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "ffprobe {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let fields: Vec<&str> = text.trim().split(',').collect();
        assert_eq!(
            fields,
            [w.to_string(), h.to_string(), "50".to_owned()],
            "{name}"
        );
    }

    // hls.js plays it and switches through every rung, each confirmed by
    // the decoded video's height.
    let args = [
        "--player",
        "hls",
        "--expect-video-renditions",
        "3",
        "--seconds",
        "6",
    ];
    let (ok, report) = play(
        &s.url("/live/abr/hls/master.m3u8"),
        &[&args[..], &["--dwell", "1", "--timeout", "120"]].concat(),
    );
    // Behind or not, no rung and not the audio has a hole.
    for name in RUNGS.iter().map(|r| r.0).chain(["a0"]) {
        let (st, text) = get_text(&s, &format!("/live/abr/hls/{name}.m3u8"));
        assert_eq!(st, 200, "{name}.m3u8: {text}");
        no_holes(name, &text);
    }
    let _ = pusher.kill();
    let _ = pusher.wait();
    assert!(ok, "hls.js failed:\n{report}");
    let v: serde_json::Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    assert_eq!(v["live"], true, "{v:#}");
    assert_eq!(
        v["renditionsPlayed"].as_array().map(Vec::len),
        Some(3),
        "{v:#}"
    );
}
