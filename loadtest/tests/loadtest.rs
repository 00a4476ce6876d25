//! `loadtest` against real origins: headwater packaging the test corpus just in time,
//! Debian's nginx serving `loadtest mirror`'s copy of it, and nginx serving HLS and DASH
//! that ffmpeg wrote (TS and fMP4 segments, `SegmentTimeline` and `$Number$` templates).
//! Every run is small and bounded (a request count or a second or two) and talks only to
//! loopback.

use std::path::Path;
use std::process::{Command, Output};

use headwater_testkit::nginx::Nginx;
use headwater_testkit::server::Server;
use headwater_testkit::{TempDir, http, media, workspace_bin};
use serde_json::Value;

fn loadtest(args: &[&str]) -> Output {
    let out = Command::new(env!("CARGO_BIN_EXE_loadtest"))
        .args(args)
        .output()
        .expect("run loadtest");
    eprintln!(
        "loadtest {}\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs loadtest with `--json -q`, expects exit status `code`, returns the JSON.
fn loadtest_json(args: &[&str], code: i32) -> Value {
    let mut all = args.to_vec();
    all.extend(["--json", "-q"]);
    let out = loadtest(&all);
    assert_eq!(
        out.status.code(),
        Some(code),
        "loadtest {all:?}: stdout {}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "loadtest printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

fn headwater() -> Server {
    Server::start(&workspace_bin("headwater"), &media(), &[])
}

fn u64_at(v: &Value, pointer: &str) -> u64 {
    v.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer at {pointer} in {v:#}"))
}

fn f64_at(v: &Value, pointer: &str) -> f64 {
    v.pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer} in {v:#}"))
}

/// Files under `dir` (recursively) whose names end with one of `exts`.
fn count_files(dir: &Path, exts: &[&str]) -> u64 {
    let mut n = 0;
    for entry in std::fs::read_dir(dir).expect("read_dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            n += count_files(&path, exts);
        } else if exts.iter().any(|e| path.to_string_lossy().ends_with(e)) {
            n += 1;
        }
    }
    n
}

#[test]
fn segments_by_count_against_headwater_hls_and_dash() {
    let s = headwater();
    for path in [
        "/vod/ladder/hls/master.m3u8",
        "/vod/ladder/dash/manifest.mpd",
    ] {
        let url = s.url(path);
        let v = loadtest_json(
            &["segments", &url, "-n", "300", "-c", "4", "--warmup", "0s"],
            0,
        );
        assert_eq!(v["pass"], true, "{v:#}");
        // The ladder: 3 video renditions + 1 audio, each an init segment and 20 s / 4 s
        // = 5 media segments.
        assert_eq!(u64_at(&v, "/resources"), 4 * (1 + 5), "{path}");
        assert_eq!(u64_at(&v, "/runs/0/requests"), 300, "{path}");
        assert_eq!(u64_at(&v, "/runs/0/ok"), 300, "{path}");
        assert_eq!(u64_at(&v, "/runs/0/status/200"), 300, "{path}");
        assert_eq!(u64_at(&v, "/runs/0/failed"), 0, "{path}");
        assert!(u64_at(&v, "/runs/0/bytes") > 300 * 1000, "{path}");
        assert!(f64_at(&v, "/runs/0/latency_ms/p99") > 0.0);
    }
}

#[test]
fn manifests_and_viewers_against_headwater() {
    let s = headwater();
    let url = s.url("/vod/ladder/hls/master.m3u8");
    let v = loadtest_json(
        &["manifests", &url, "-n", "50", "-c", "2", "--warmup", "0s"],
        0,
    );
    // The multivariant playlist and four media playlists.
    assert_eq!(u64_at(&v, "/resources"), 5);
    assert_eq!(u64_at(&v, "/runs/0/ok"), 50);

    let v = loadtest_json(
        &[
            "viewers",
            &url,
            "--viewers",
            "3",
            "--duration",
            "5s",
            "--switch-every",
            "1s",
            "--ramp",
            "0s",
        ],
        0,
    );
    assert_eq!(u64_at(&v, "/runs/0/viewers/viewers"), 3, "{v:#}");
    assert_eq!(u64_at(&v, "/runs/0/viewers/started"), 3, "{v:#}");
    // Real-time pace with one 4 s segment of buffer: by 5 s every player has fetched its
    // second and third video and audio segments, switching rendition for the third, and
    // over loopback none of them fell behind.
    assert!(u64_at(&v, "/runs/0/viewers/segments") >= 3 * 4, "{v:#}");
    assert_eq!(u64_at(&v, "/runs/0/viewers/stalls"), 0, "{v:#}");
    assert!(u64_at(&v, "/runs/0/viewers/switches") >= 3, "{v:#}");
}

#[test]
fn mirror_is_byte_identical_and_compare_pairs_rounds() {
    let s = headwater();
    let dir = TempDir::new("mirror");
    let mirror = dir.path().to_str().expect("utf-8 path");
    let url = s.url("/vod/ladder/hls/master.m3u8");
    let v = loadtest_json(&["mirror", &url, mirror], 0);
    // Five playlists, four init segments, twenty media segments.
    assert_eq!(u64_at(&v, "/mirror/files"), 5 + 4 + 20, "{v:#}");
    for path in [
        "/vod/ladder/hls/master.m3u8",
        "/vod/ladder/hls/360p-v1.m3u8",
        "/vod/ladder/cmaf/360p-v1/init.mp4",
        "/vod/ladder/cmaf/audio-a1/3.m4s",
    ] {
        let served = http::get(s.addr, path);
        assert_eq!(served.status, 200, "{path}");
        let written = std::fs::read(dir.path().join(&path[1..])).expect("mirrored file");
        assert!(
            written == served.body,
            "{path} differs from what was served"
        );
    }

    let nginx = Nginx::start(dir.path(), 1);
    let b = nginx.url("/vod/ladder/hls/master.m3u8");
    let v = loadtest_json(
        &[
            "segments",
            &url,
            "--compare",
            &b,
            "--rounds",
            "2",
            "-d",
            "1s",
            "-c",
            "4",
            "--warmup",
            "0s",
        ],
        0,
    );
    assert_eq!(v["pass"], true);
    let runs = v["runs"].as_array().expect("runs");
    let order: Vec<(u64, &str)> = runs
        .iter()
        .map(|r| (r["round"].as_u64().unwrap(), r["target"].as_str().unwrap()))
        .collect();
    assert_eq!(order, [(1, "a"), (1, "b"), (2, "a"), (2, "b")]);
    for r in runs {
        assert_eq!(r["failed"], 0, "{r:#}");
        assert!(r["ok"].as_u64().unwrap() > 0, "{r:#}");
    }
    let ratios = v["ratios"]["requests_per_s"]["rounds"]
        .as_array()
        .expect("ratios");
    assert_eq!(ratios.len(), 2);
    for (i, ratio) in ratios.iter().enumerate() {
        let a = f64_at(&v, &format!("/runs/{}/requests_per_s", 2 * i));
        let b = f64_at(&v, &format!("/runs/{}/requests_per_s", 2 * i + 1));
        let got = ratio.as_f64().unwrap();
        assert!((got - a / b).abs() < 1e-9 * got.abs(), "{got} vs {a}/{b}");
    }
    let table = String::from_utf8(
        loadtest(&[
            "manifests",
            &url,
            "--compare",
            &b,
            "--rounds",
            "1",
            "-n",
            "20",
            "--warmup",
            "0s",
            "-q",
        ])
        .stdout,
    )
    .unwrap();
    assert!(
        table.contains("A / B"),
        "no ratio line in the table:\n{table}"
    );
}

#[test]
fn missing_segments_are_counted_and_fail_the_run() {
    let s = headwater();
    let dir = TempDir::new("mirror-holes");
    let url = s.url("/vod/bframes/hls/master.m3u8");
    loadtest_json(&["mirror", &url, dir.path().to_str().unwrap()], 0);
    // Two of the video's three segments are gone from the static copy.
    let cmaf = dir.path().join("vod/bframes/cmaf/v1");
    std::fs::remove_file(cmaf.join("1.m4s")).unwrap();
    std::fs::remove_file(cmaf.join("2.m4s")).unwrap();
    let nginx = Nginx::start(dir.path(), 1);
    let b = nginx.url("/vod/bframes/hls/master.m3u8");
    let v = loadtest_json(
        &[
            "segments",
            &b,
            "-n",
            "100",
            "-c",
            "2",
            "--order",
            "sequential",
            "--warmup",
            "0s",
        ],
        1,
    );
    assert_eq!(v["pass"], false);
    let not_found = u64_at(&v, "/runs/0/status/404");
    let resources = u64_at(&v, "/resources");
    // Sequential order walks every resource equally often: 2 of them are missing.
    assert!(not_found >= 100 * 2 / resources, "{v:#}");
    assert_eq!(u64_at(&v, "/runs/0/failed"), not_found);
}

#[test]
fn usage_and_discovery_errors_exit_2() {
    let s = headwater();
    let cases: [(&[&str], &str); 4] = [
        (
            &["segments", "http://127.0.0.1:1/x.m3u8", "-n", "1"],
            "connect",
        ),
        (&["segments", "not a url", "-n", "1"], "not a URL"),
        (
            &["segments", &s.url("/vod/nope/hls/master.m3u8"), "-n", "1"],
            "404",
        ),
        (&["segments", &s.url("/healthz"), "-n", "1"], "neither"),
    ];
    for (args, needle) in cases {
        let out = loadtest(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[test]
fn idle_connections_stay_open() {
    let s = headwater();
    let url = s.url("/vod/bframes/hls/master.m3u8");
    let v = loadtest_json(&["idle", &url, "--connections", "300", "--hold", "1s"], 0);
    assert_eq!(u64_at(&v, "/idle/connections"), 300, "{v:#}");
    assert_eq!(u64_at(&v, "/idle/served"), 300, "{v:#}");
    assert_eq!(u64_at(&v, "/idle/open_at_end"), 300, "{v:#}");
}

/// ffmpeg writes a static stream into `dir` with `args` (after `-i bframes.mp4 -c copy`).
fn ffmpeg_package(dir: &Path, args: &[&str]) {
    let src = media().join("bframes.mp4");
    let out = Command::new("ffmpeg")
        .current_dir(dir)
        .args(["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i"])
        .arg(&src)
        .args(["-c", "copy"])
        .args(args)
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success(),
        "ffmpeg: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn ffmpeg_static_streams_served_by_nginx() {
    let dir = TempDir::new("ffmpeg-static");
    let root = dir.path();
    for sub in ["ts", "fmp4", "timeline", "number"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    let hls = ["-f", "hls", "-hls_time", "2", "-hls_playlist_type", "vod"];
    ffmpeg_package(
        &root.join("ts"),
        &[&hls[..], &["-master_pl_name", "master.m3u8", "index.m3u8"]].concat(),
    );
    ffmpeg_package(
        &root.join("fmp4"),
        &[
            &hls[..],
            &[
                "-hls_segment_type",
                "fmp4",
                "-master_pl_name",
                "master.m3u8",
                "index.m3u8",
            ],
        ]
        .concat(),
    );
    ffmpeg_package(
        &root.join("timeline"),
        &["-f", "dash", "-seg_duration", "2", "manifest.mpd"],
    );
    ffmpeg_package(
        &root.join("number"),
        &[
            "-f",
            "dash",
            "-seg_duration",
            "2",
            "-use_timeline",
            "0",
            "manifest.mpd",
        ],
    );
    let nginx = Nginx::start(root, 1);
    let cases = [
        ("ts/master.m3u8", "ts", &[".ts"][..]),
        ("ts/index.m3u8", "ts", &[".ts"][..]),
        ("fmp4/master.m3u8", "fmp4", &[".m4s", ".mp4"][..]),
        ("timeline/manifest.mpd", "timeline", &[".m4s"][..]),
    ];
    for (manifest, sub, exts) in cases {
        let url = nginx.url(&format!("/{manifest}"));
        let v = loadtest_json(
            &["segments", &url, "-n", "200", "-c", "2", "--warmup", "0s"],
            0,
        );
        // Discovery found exactly the segment files ffmpeg wrote, and every one of them
        // came back whole.
        assert_eq!(
            u64_at(&v, "/resources"),
            count_files(&root.join(sub), exts),
            "{manifest}"
        );
        assert_eq!(u64_at(&v, "/runs/0/ok"), 200, "{manifest}");
    }
    // `$Number$` with a fixed duration addresses ceil(10 s / 2 s) = 5 segments per
    // representation (ISO/IEC 23009-1 §5.3.9.5.3); ffmpeg writes a sixth audio chunk past
    // `mediaPresentationDuration` that the MPD does not address, so it is not counted.
    let url = nginx.url("/number/manifest.mpd");
    let v = loadtest_json(
        &["segments", &url, "-n", "50", "-c", "2", "--warmup", "0s"],
        0,
    );
    assert_eq!(u64_at(&v, "/resources"), 2 * (1 + 5));
    assert_eq!(u64_at(&v, "/runs/0/ok"), 50);

    let url = nginx.url("/timeline/manifest.mpd");
    let v = loadtest_json(
        &[
            "viewers",
            &url,
            "--viewers",
            "2",
            "--duration",
            "2s",
            "--ramp",
            "0s",
        ],
        0,
    );
    assert_eq!(u64_at(&v, "/runs/0/viewers/started"), 2, "{v:#}");
}

#[test]
fn several_urls_are_one_library() {
    let s = headwater();
    let dir = TempDir::new("library");
    let mirror = dir.path().to_str().expect("utf-8 path");
    let paths = ["/vod/bframes/hls/master.m3u8", "/vod/gops/hls/master.m3u8"];
    let urls: Vec<String> = paths.iter().map(|p| s.url(p)).collect();
    let mut args = vec!["mirror"];
    args.extend(urls.iter().map(String::as_str));
    args.push(mirror);
    let v = loadtest_json(&args, 0);
    let segments = |asset: &str| -> u64 {
        let list = std::fs::read_dir(dir.path().join(format!("vod/{asset}/cmaf/v1")))
            .expect("mirrored video rendition");
        list.filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".m4s"))
        })
        .count() as u64
    };
    let video = segments("bframes") + segments("gops");
    assert!(video >= 2, "{v:#}");
    let nginx = Nginx::start(dir.path(), 1);
    let mut args = vec!["segments"];
    args.extend(urls.iter().map(String::as_str));
    let b = nginx.url("/");
    // The two video renditions' init and media segments, three times over.
    let planned = video + 2;
    let n = (3 * planned).to_string();
    args.extend([
        "--renditions",
        "v1",
        "--order",
        "shuffled",
        "--compare",
        &b,
        "--rounds",
        "1",
        "-n",
        &n,
        "-c",
        "1",
        "--warmup",
        "0s",
    ]);
    let v = loadtest_json(&args, 0);
    assert_eq!(v["pass"], true, "{v:#}");
    assert_eq!(u64_at(&v, "/resources"), planned, "{v:#}");
    for run in 0..2 {
        assert_eq!(u64_at(&v, &format!("/runs/{run}/ok")), 3 * planned, "{v:#}");
        assert_eq!(u64_at(&v, &format!("/runs/{run}/failed")), 0, "{v:#}");
    }
}
