//! Subtitles: WebVTT sidecars and tx3g tracks, judged by ffmpeg reading
//! the HLS subtitle playlists and the DASH side-loaded files against the
//! sources; the manifests' subtitle attributes; a broken sidecar is a 422.

use std::process::Command;

use headwater_testkit::http::get;
use headwater_testkit::server::Server;
use headwater_testkit::{TempDir, media};
use m3u8_rs::Playlist;

fn bin() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_headwater").as_ref()
}

/// The cues ffmpeg reads from `input` (stream `map`), as WebVTT text.
fn cues(input: &str, map: &str) -> String {
    let out = Command::new("ffmpeg")
        .args([
            "-nostdin", "-v", "error", "-i", input, "-map", map, "-f", "webvtt", "-",
        ])
        .output()
        .expect("run ffmpeg");
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "ffmpeg on {input}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("-->"), "{input}: no cues in {text}");
    text
}

#[test]
fn sidecars_and_tx3g_round_trip_through_hls_and_dash() {
    let m = media();
    let s = Server::start(bin(), &m, &[]);
    for (asset, track, source, map) in [
        ("subs", "text-en", m.join("subs/text.en.vtt"), "0"),
        ("subs", "text-fr", m.join("subs/text.fr.vtt"), "0"),
        ("tx3g", "t3", m.join("tx3g.mp4"), "0:s"),
    ] {
        let want = cues(source.to_str().unwrap(), map);
        let hls = s.url(&format!("/vod/{asset}/hls/{track}.vtt.m3u8"));
        assert_eq!(cues(&hls, "0"), want, "{hls}");
        let dash = s.url(&format!("/vod/{asset}/vtt/{track}/all.vtt"));
        assert_eq!(cues(&dash, "0"), want, "{dash}");
    }
}

#[test]
fn subtitle_attributes_in_hls_and_dash() {
    let s = Server::start(bin(), &media(), &[]);
    let body = get(s.addr, "/vod/subs/hls/master.m3u8").body;
    let Playlist::MasterPlaylist(m) = m3u8_rs::parse_playlist_res(&body).unwrap() else {
        panic!("not a multivariant playlist")
    };
    let subs: Vec<_> = m
        .alternatives
        .iter()
        .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
        .collect();
    let got: Vec<(&str, Option<&str>, &str)> = subs
        .iter()
        .map(|a| {
            (
                a.name.as_str(),
                a.language.as_deref(),
                a.uri.as_deref().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("English", Some("en"), "text-en.vtt.m3u8"),
            ("French", Some("fr"), "text-fr.vtt.m3u8")
        ]
    );
    assert!(
        subs.iter()
            .all(|a| a.group_id == "subs" && a.autoselect && !a.default)
    );
    for v in m.variants.iter().filter(|v| !v.is_i_frame) {
        assert_eq!(v.subtitles.as_deref(), Some("subs"));
    }

    // The subtitle playlist lines up with the video's segments, and every
    // segment maps its local time to the fMP4 timeline.
    let video = get(s.addr, "/vod/subs/hls/video-v1.m3u8").body;
    let text = get(s.addr, "/vod/subs/hls/text-en.vtt.m3u8").body;
    let (Playlist::MediaPlaylist(video), Playlist::MediaPlaylist(text)) = (
        m3u8_rs::parse_playlist_res(&video).unwrap(),
        m3u8_rs::parse_playlist_res(&text).unwrap(),
    ) else {
        panic!("not media playlists")
    };
    let durations =
        |p: &m3u8_rs::MediaPlaylist| p.segments.iter().map(|s| s.duration).collect::<Vec<_>>();
    assert_eq!(durations(&text), durations(&video));
    // Cue time 0 is the video's time 0: where its first frame presents on
    // the media clock (ffprobe), at 90 kHz.
    let first = headwater_testkit::ffmpeg::probe(
        &s.url("/vod/subs/hls/video-v1.m3u8"),
        "v",
        "frame=pts_time",
    )[0]
    .trim_end_matches(',')
    .parse::<f64>()
    .unwrap();
    let map = format!(
        "WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:{},LOCAL:00:00:00.000\n",
        (first * 90_000.0).round()
    );
    for seg in &text.segments {
        let r = get(
            s.addr,
            &format!("/vod/subs/vtt/{}", seg.uri.trim_start_matches("../vtt/")),
        );
        assert_eq!(r.status, 200);
        assert_eq!(r.header("content-type"), Some("text/vtt; charset=utf-8"));
        assert!(r.text().starts_with(&map), "{map} in {}", r.text());
    }
    // The cue across the 4 s boundary is in both segments.
    for n in [1, 2] {
        assert!(
            get(s.addr, &format!("/vod/subs/vtt/text-en/{n}.vtt"))
                .text()
                .contains("boundary")
        );
    }

    let mpd = dash_mpd_core::parse(&get(s.addr, "/vod/subs/dash/manifest.mpd").text()).unwrap();
    let text_sets: Vec<_> = mpd.periods[0]
        .adaptations
        .iter()
        .filter(|a| a.contentType.as_deref() == Some("text"))
        .collect();
    assert_eq!(text_sets.len(), 2);
    for (set, lang) in text_sets.iter().zip(["en", "fr"]) {
        assert_eq!(set.lang.as_deref(), Some(lang));
        assert_eq!(set.mimeType.as_deref(), Some("text/vtt"));
        let base = &set.representations[0].BaseURL[0].base;
        assert!(base.ends_with("/all.vtt"), "{base}");
    }
}

#[test]
fn a_broken_sidecar_is_a_422_naming_the_file_and_line() {
    let dir = TempDir::new("subs");
    let m = media();
    std::fs::create_dir(dir.path().join("x")).unwrap();
    std::fs::copy(m.join("bframes.mp4"), dir.path().join("x/main.mp4")).unwrap();
    std::fs::write(
        dir.path().join("x/bad.en.vtt"),
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfine\n\n00:00:03.000 --> soon\nbroken\n",
    )
    .unwrap();
    let s = Server::start(bin(), dir.path(), &[]);
    for path in ["/vod/x/hls/master.m3u8", "/vod/x/dash/manifest.mpd"] {
        let r = get(s.addr, path);
        assert_eq!(r.status, 422, "{path}");
        let t = r.text();
        assert!(t.contains("bad.en.vtt") && t.contains("line 6"), "{t}");
    }
    // Fixing the file fixes the asset (it is re-read once it changes).
    std::fs::write(
        dir.path().join("x/bad.en.vtt"),
        "WEBVTT\n\n00:00:01.000 --> 00:00:02.000\nfine\n",
    )
    .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let r = get(s.addr, "/vod/x/hls/master.m3u8");
        if r.status == 200 {
            assert!(r.text().contains("TYPE=SUBTITLES"));
            break;
        }
        assert!(std::time::Instant::now() < deadline, "still {}", r.status);
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}
