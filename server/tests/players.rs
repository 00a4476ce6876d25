//! Real players in headless Chromium (Debian's): hls.js plays the HLS
//! ladder, dash.js and shaka-player play DASH (and shaka HLS too), each
//! for more than 10 s of media, visiting every video rendition through
//! forced switches, without a fatal error. The harness is
//! `tests/players/play.mjs`; its npm packages are installed by
//! `scripts/setup.sh`.

use std::process::Command;

use headwater_testkit::server::Server;

/// Runs the harness on `manifest` with `args`; returns its JSON report.
fn run(player: &str, manifest: &str, args: &[&str]) -> serde_json::Value {
    let root = headwater_testkit::workspace();
    let harness = root.join("tests/players");
    assert!(
        harness.join("node_modules/playwright-core").is_dir(),
        "tests/players/node_modules is missing: run scripts/setup.sh (npm ci in tests/players)"
    );
    let s = Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &[],
    );
    let url = s.url(manifest);
    let out = Command::new("node")
        .arg(harness.join("play.mjs"))
        .args(["--player", player, "--url", &url])
        .args(args)
        .output()
        .expect("run node");
    let report = String::from_utf8_lossy(&out.stdout);
    eprintln!("{}", String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{player} failed on {url}:\n{report}");
    serde_json::from_str(report.trim()).unwrap_or_else(|e| panic!("{e}: {report}"))
}

/// Plays the subtitled asset with two audio languages: switches to each
/// language, and shows the first subtitle track's cues at their times.
fn play_languages_and_text(player: &str, manifest: &str) {
    play_languages_and_text_offset(player, manifest, 0.0);
}

/// As [`play_languages_and_text`], with the cues (and the video) allowed to
/// sit `shift` seconds later on the player's clock: hls.js puts time zero
/// at the video's first DTS (fMP4 and MPEG-TS alike), which for a B-frame
/// source is two frames before the first picture; the media and the cues
/// sit there together.
fn play_languages_and_text_offset(player: &str, manifest: &str, shift: f64) {
    let v = run(
        player,
        manifest,
        &[
            "--seconds",
            "4",
            "--expect-audio-languages",
            "en,fr",
            "--expect-text-cues",
            "--timeout",
            "120",
        ],
    );
    assert_eq!(v["ok"], true, "{v:#}");
    let langs: Vec<&str> = v["audioLanguagesPlayed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a["lang"].as_str())
        .collect();
    assert!(langs.contains(&"en") && langs.contains(&"fr"), "{v:#}");
    let cues = v["textCues"].as_array().unwrap();
    let at = |start: f64, end: f64| {
        cues.iter().any(|c| {
            (c["start"].as_f64().unwrap() - start - shift).abs() < 0.01
                && (c["end"].as_f64().unwrap() - end - shift).abs() < 0.01
        })
    };
    assert!(
        at(0.5, 2.5) && at(3.0, 5.5),
        "cues at the wrong times: {cues:#?}"
    );
    let texts: Vec<&str> = cues.iter().filter_map(|c| c["text"].as_str()).collect();
    assert!(
        texts
            .iter()
            .any(|t| t.contains("Hello from headwater") || t.contains("Bonjour de headwater")),
        "{texts:?}"
    );
}

#[test]
fn players_dashjs_switches_audio_and_shows_subtitles() {
    play_languages_and_text("dash", "/vod/subs/dash/manifest.mpd");
}

/// The MPEG-TS variant: muxed English, French as an audio-only program.
/// The 0.08 s are the source's two B-frame reorder frames (first DTS to
/// first PTS), which hls.js counts from; the media sits there too.
#[test]
fn players_hlsjs_plays_ts_switches_audio_and_shows_subtitles() {
    play_languages_and_text_offset("hls", "/vod/subs/hls-ts/master.m3u8", 0.08);
}

#[test]
fn players_hlsjs_switches_audio_and_shows_subtitles() {
    // hls.js counts from the first DTS: 0.08 s before the first picture.
    play_languages_and_text_offset("hls", "/vod/subs/hls/master.m3u8", 0.08);
}

/// A clip of the subtitled asset from the keyframe at 2 s (`start=2.2`):
/// the player's clock starts at the clip, so the cue at 3.0–5.5 s of the
/// asset shows at 1.0–3.5 s (HLS: from the shared WebVTT segments; DASH:
/// from the clip's span of the track, moved to the period).
/// `shift` as in [`play_languages_and_text_offset`].
fn clip_subtitles_at_clip_times(player: &str, manifest: &str, shift: f64) {
    let v = run(
        player,
        manifest,
        &["--seconds", "3", "--expect-text-cues", "--timeout", "120"],
    );
    assert_eq!(v["ok"], true, "{v:#}");
    let cues = v["textCues"].as_array().unwrap();
    assert!(
        cues.iter().any(|c| {
            (c["start"].as_f64().unwrap() - 1.0 - shift).abs() < 0.01
                && (c["end"].as_f64().unwrap() - 3.5 - shift).abs() < 0.01
        }),
        "cues at the wrong times: {cues:#?}"
    );
}

#[test]
fn players_hlsjs_shows_a_clips_subtitles_at_clip_times() {
    // hls.js counts from the first DTS: 0.08 s before the first picture.
    clip_subtitles_at_clip_times("hls", "/vod/subs/hls/master.m3u8?start=2.2", 0.08);
}

#[test]
fn players_dashjs_shows_a_clips_subtitles_at_clip_times() {
    clip_subtitles_at_clip_times("dash", "/vod/subs/dash/manifest.mpd?start=2.2", 0.0);
}

fn play(player: &str, manifest: &str) {
    let v = run(
        player,
        manifest,
        &[
            "--seconds",
            "12",
            "--expect-video-renditions",
            "3",
            "--timeout",
            "150",
        ],
    );
    assert_eq!(v["ok"], true, "{v:#}");
    // The harness also verifies renditions; double-check the report here.
    let heights: Vec<u64> = v["renditionsPlayed"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["height"].as_u64())
        .collect();
    for height in [180, 270, 360] {
        assert!(
            heights.contains(&height),
            "{player} never played the {height}p rendition: {v:#}"
        );
    }
}

#[test]
fn players_hlsjs_plays_hls() {
    play("hls", "/vod/ladder/hls/master.m3u8");
}

#[test]
fn players_dashjs_plays_dash() {
    play("dash", "/vod/ladder/dash/manifest.mpd");
}

#[test]
fn players_shaka_plays_dash() {
    play("shaka", "/vod/ladder/dash/manifest.mpd");
}

#[test]
fn players_shaka_plays_hls() {
    play("shaka", "/vod/ladder/hls/master.m3u8");
}

/// A muxed source's video segments span the audio between its frames
/// (one source range, a trun per run of frames): every player reads the
/// runs where their data offsets say.
#[test]
fn players_play_video_segments_that_span_their_audio() {
    for (player, manifest) in [
        ("hls", "/vod/muxed/hls/master.m3u8"),
        ("dash", "/vod/muxed/dash/manifest.mpd"),
        ("shaka", "/vod/muxed/dash/manifest.mpd"),
        ("shaka", "/vod/muxed/hls/master.m3u8"),
    ] {
        let v = run(player, manifest, &["--seconds", "6", "--timeout", "120"]);
        assert_eq!(v["ok"], true, "{player} {manifest}: {v:#}");
    }
}
