//! Upload → transcode → playback, end to end: a mezzanine made by ffmpeg is
//! uploaded, transcoded by GStreamer into a 3-rung ladder, and played
//! through the VOD URLs by ffmpeg (frame counts per rendition, keyframes at
//! the same times in every rung) and by hls.js in headless Chromium, with a
//! playback token. And a server killed during a job leaves it failed, with
//! its pipeline gone, not "running" forever.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use headwater_testkit::admin::Api;
use headwater_testkit::server::Server;
use headwater_testkit::{ffmpeg, scratch_dir};
use serde_json::{Value, json};

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");
const ADMIN: &str = "admin-token-for-transcode-tests0";

/// A mezzanine with a keyframe every 4 s (100 frames).
fn mezzanine(path: &Path, size: &str, seconds: u32) {
    ffmpeg::mezzanine(path, size, seconds, &["-g", "100"]);
}

fn upload(api: &Api, id: &str, file: &Path) -> Value {
    let body = std::fs::read(file).unwrap();
    let r = api.raw(
        "PUT",
        &format!("/api/v1/assets/{id}/source"),
        &["Content-Type: application/octet-stream"],
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

fn ladder(api: &Api) {
    let l = json!({
        "name": "abr3",
        "frame_rate": 25,
        "keyframe_interval_secs": 2,
        "audio_bitrate_kbps": 96,
        "rungs": [
            {"name": "360p", "width": 640, "height": 360, "video_bitrate_kbps": 800},
            {"name": "270p", "width": 480, "height": 270, "video_bitrate_kbps": 400},
            {"name": "180p", "width": 320, "height": 180, "video_bitrate_kbps": 200}
        ]
    });
    let r = api.call("POST", "/api/v1/ladders", Some(&l.to_string()));
    assert_eq!(r.status, 201, "{}", r.body);
}

fn job(api: &Api, id: &str) -> Value {
    let r = api.call("GET", &format!("/api/v1/jobs/{id}"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap()
}

/// `(frame count, keyframe times)` of the first video stream at `url`.
fn frames_and_keyframes(url: &str) -> (usize, Vec<String>) {
    let lines = ffmpeg::probe(url, "v:0", "frame=key_frame,pts_time");
    let frames: Vec<(&str, &str)> = lines
        .iter()
        .filter_map(|l| l.split_once(','))
        .map(|(k, t)| (k, t.split(',').next().unwrap_or(t)))
        .collect();
    let keys = frames
        .iter()
        .filter(|(k, _)| *k == "1")
        .map(|(_, t)| (*t).to_owned())
        .collect();
    (frames.len(), keys)
}

#[test]
fn upload_transcode_and_play_a_three_rung_ladder() {
    let d = scratch_dir("transcode-e2e");
    let mezz = d.join("mezz.mp4");
    mezzanine(&mezz, "640x360", 20);
    let s = Server::start_in(HEADWATER.as_ref(), &d, ADMIN, &[]);
    let api = Api::new(s.admin_addr(), ADMIN);
    let up = upload(&api, "movie", &mezz);
    assert_eq!(up["asset"]["tracks"][0]["width"], 640);
    ladder(&api);
    let r = api.call(
        "POST",
        "/api/v1/assets/movie/transcode",
        Some(r#"{"ladder": "abr3"}"#),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let queued: Value = serde_json::from_str(&r.body).unwrap();
    let id = queued["id"].as_str().unwrap().to_owned();
    assert_eq!(queued["state"], "queued");
    // Unknown ladders and assets are named.
    let r = api.call(
        "POST",
        "/api/v1/assets/movie/transcode",
        Some(r#"{"ladder": "nope"}"#),
    );
    assert_eq!(r.status, 404);
    assert!(r.body.contains("nope"));

    let t = Instant::now();
    let mut percents = Vec::new();
    let done = loop {
        let j = job(&api, &id);
        percents.push(j["percent"].as_u64().unwrap());
        match j["state"].as_str().unwrap() {
            "succeeded" => break j,
            "failed" => panic!("the job failed: {j}"),
            _ => {}
        }
        assert!(
            t.elapsed() < Duration::from_secs(240),
            "the job did not finish: {j}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        percents.windows(2).all(|w| w[0] <= w[1]),
        "percent went backwards: {percents:?}"
    );
    assert_eq!(done["percent"], 100);
    assert_eq!(done["outputs"].as_array().unwrap().len(), 4, "{done}");
    let listed: Value = serde_json::from_str(&api.call("GET", "/api/v1/jobs", None).body).unwrap();
    assert_eq!(listed[0]["id"], id.as_str());
    let asset: Value =
        serde_json::from_str(&api.call("GET", "/api/v1/assets/movie", None).body).unwrap();
    let videos: Vec<(u64, u64)> = asset["tracks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"] == "video")
        .map(|t| (t["width"].as_u64().unwrap(), t["height"].as_u64().unwrap()))
        .collect();
    assert_eq!(videos, [(640, 360), (480, 270), (320, 180)], "{asset}");

    // Protect it, then play only with a token.
    let r = api.call(
        "PATCH",
        "/api/v1/assets/movie",
        Some(r#"{"require_token": true}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = api.call(
        "POST",
        "/api/v1/tokens",
        Some(r#"{"asset": "movie", "ttl_seconds": 600}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let tok: Value = serde_json::from_str(&r.body).unwrap();
    let token = tok["token"].as_str().unwrap();
    let master = headwater_testkit::http::get(s.addr, tok["hls"].as_str().unwrap());
    assert_eq!(master.status, 200);
    let text = master.text();
    let variants: Vec<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .collect();
    assert_eq!(variants.len(), 3, "{text}");
    // ffmpeg: every rung has every source frame, keyframes every 2 s in all of them.
    let (source_frames, _) = frames_and_keyframes(mezz.to_str().unwrap());
    let mut keys_of_rungs = Vec::new();
    for v in &variants {
        let url = s.url(&format!("/vod/movie/hls/{v}"));
        let (n, keys) = frames_and_keyframes(&url);
        assert_eq!(n, source_frames, "{v}: frame count");
        keys_of_rungs.push(keys);
    }
    assert_eq!(
        keys_of_rungs[0].len(),
        10,
        "20 s at one keyframe every 2 s: {keys_of_rungs:?}"
    );
    assert!(
        keys_of_rungs.windows(2).all(|w| w[0] == w[1]),
        "keyframes differ: {keys_of_rungs:?}"
    );
    let times: Vec<f64> = keys_of_rungs[0]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| (w[1] - w[0] - 2.0).abs() < 1e-3),
        "keyframes not every 2 s: {times:?}"
    );

    // hls.js in headless Chromium plays it, through all three rungs.
    let harness = headwater_testkit::workspace().join("tests/players");
    let out = Command::new("node")
        .arg(harness.join("play.mjs"))
        .args(["--player", "hls", "--url"])
        .arg(s.url(tok["hls"].as_str().unwrap()))
        .args([
            "--seconds",
            "14",
            "--expect-video-renditions",
            "3",
            "--timeout",
            "150",
        ])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "hls.js failed:\n{report}");
    let v: Value = serde_json::from_str(report.trim()).unwrap();
    assert_eq!(v["ok"], true, "{v:#}");
    let heights: Vec<u64> = v["renditionsPlayed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["height"].as_u64())
        .collect();
    for h in [180, 270, 360] {
        assert!(heights.contains(&h), "hls.js never played {h}p: {v:#}");
    }
    assert!(
        !s.log().iter().any(|l| l.contains(token)),
        "the token was logged"
    );
}

fn pipelines_writing(dir: &str) -> usize {
    let out = Command::new("pgrep").args(["-f", dir]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().count()
}

#[test]
fn a_restart_during_a_job_marks_it_failed_and_kills_its_pipeline() {
    let d = scratch_dir("transcode-restart");
    let mezz = d.join("long.mp4");
    mezzanine(&mezz, "1280x720", 40);
    let s = Server::start_in(HEADWATER.as_ref(), &d, ADMIN, &[]);
    let api = Api::new(s.admin_addr(), ADMIN);
    upload(&api, "long", &mezz);
    ladder(&api);
    let r = api.call(
        "POST",
        "/api/v1/assets/long/transcode",
        Some(r#"{"ladder": "abr3"}"#),
    );
    assert_eq!(r.status, 202, "{}", r.body);
    let id = serde_json::from_str::<Value>(&r.body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let t = Instant::now();
    while job(&api, &id)["state"] != "running" {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "never running: {}",
            job(&api, &id)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let marker = format!(".headwater/assets/long/{id}");
    assert!(
        (0..100).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            pipelines_writing(&marker) > 0
        }),
        "no pipeline process is running"
    );
    s.kill9();
    // The pipeline dies with the server.
    let t = Instant::now();
    while pipelines_writing(&marker) > 0 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "the pipeline outlived the server"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let s = Server::start_in(HEADWATER.as_ref(), &d, ADMIN, &[]);
    let api = Api::new(s.admin_addr(), ADMIN);
    let j = job(&api, &id);
    assert_eq!(j["state"], "failed", "{j}");
    assert!(j["error"].as_str().unwrap().contains("stopped"), "{j}");
    // The asset still has its mezzanine, not half-written renditions.
    let asset: Value =
        serde_json::from_str(&api.call("GET", "/api/v1/assets/long", None).body).unwrap();
    assert_eq!(asset["sources"].as_array().unwrap().len(), 1, "{asset}");
}
