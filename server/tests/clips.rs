//! Clipping with `?start=` / `?end=`: the clip starts at the keyframe at or
//! before `start` and ends at the keyframe at or after `end`; ffmpeg
//! decodes exactly the source's frames in between; the segments the clip
//! covers whole keep their shared URLs; HLS clips keep their subtitles
//! and have I-frame playlists of their own keyframes; garbage is a 400.

use headwater_testkit::ffmpeg::{frame_hashes, keyframe_hashes};
use headwater_testkit::http::{Conn, get};
use headwater_testkit::media;
use headwater_testkit::server::Server;
use m3u8_rs::Playlist;

fn server() -> Server {
    Server::start(env!("CARGO_BIN_EXE_headwater").as_ref(), &media(), &[])
}

fn media_playlist(s: &Server, path: &str) -> m3u8_rs::MediaPlaylist {
    let r = get(s.addr, path);
    assert_eq!(r.status, 200, "{path}: {}", r.text());
    match m3u8_rs::parse_playlist_res(&r.body).expect("valid HLS") {
        Playlist::MediaPlaylist(p) => p,
        Playlist::MasterPlaylist(_) => panic!("{path}: not a media playlist"),
    }
}

/// bframes.mp4: 10 s at 25 fps, keyframes every 2 s, 4 s segments.
#[test]
fn a_clip_is_the_source_frames_from_keyframe_to_keyframe() {
    let s = server();
    let source = media().join("bframes.mp4");
    let source = source.to_str().unwrap();
    let all = frame_hashes(source, "v", &["-ignore_editlist", "1"]);
    assert_eq!(all.len(), 250);
    for (query, first, last) in [
        ("start=3.1&end=7", 50, 200), // keyframes at 2 s and 8 s
        ("start=4&end=6", 100, 150),  // both on keyframes
        ("start=0.5", 0, 250),        // to the end
        ("start=8.04&end=9", 200, 250),
    ] {
        let want = &all[first..last];
        for manifest in ["hls/master.m3u8", "dash/manifest.mpd"] {
            let url = s.url(&format!("/vod/bframes/{manifest}?{query}"));
            let got = frame_hashes(&url, "v", &[]);
            assert_eq!(got.len(), want.len(), "{url}: frame count");
            assert!(
                got == want,
                "{url}: frames differ from the source's {first}..{last}"
            );
        }
    }
}

#[test]
fn clipped_playlists_say_where_the_clip_starts() {
    let s = server();
    let v = media_playlist(&s, "/vod/bframes/hls/v1.m3u8?start=3.1&end=7");
    let text = get(s.addr, "/vod/bframes/hls/v1.m3u8?start=3.1&end=7").text();
    assert!(
        text.contains("#EXT-X-START:TIME-OFFSET=1.100,PRECISE=YES"),
        "{text}"
    );
    let uris: Vec<&str> = v.segments.iter().map(|x| x.uri.as_str()).collect();
    // The cut segment is a span; the whole one keeps its shared URL.
    assert_eq!(uris, ["../cmaf/v1/t2000-4000.m4s", "../cmaf/v1/2.m4s"]);
    let total: f32 = v.segments.iter().map(|x| x.duration).sum();
    assert!((total - 6.0).abs() < 1e-3, "{total}");
    // Audio covers the same time, to within a frame.
    let a = media_playlist(&s, "/vod/bframes/hls/a2.m3u8?start=3.1&end=7");
    let audio: f32 = a.segments.iter().map(|x| x.duration).sum();
    assert!((audio - total).abs() < 0.025, "{audio} vs {total}");
    // Every segment is there, cacheable like any segment, the same bytes twice.
    let mut c = Conn::open(s.addr);
    for seg in v.segments.iter().chain(&a.segments) {
        let path = format!("/vod/bframes/{}", seg.uri.trim_start_matches("../"));
        let r1 = c.request("GET", &path, &[]);
        assert_eq!(r1.status, 200, "{path}");
        assert!(
            r1.header("cache-control").unwrap().contains("immutable"),
            "{path}"
        );
        assert_eq!(c.request("GET", &path, &[]).body, r1.body);
    }
    // The MPD starts its period at the clip's first keyframe, for every
    // rendition: 2 s, plus the delay every output time carries (bframes'
    // B-frame delay, 80 ms), in 12800 and 48000 ticks.
    let mpd = get(s.addr, "/vod/bframes/dash/manifest.mpd?start=3.1&end=7").text();
    assert!(
        mpd.contains("mediaPresentationDuration=\"PT6.000S\""),
        "{mpd}"
    );
    assert!(
        mpd.contains("presentationTimeOffset=\"26624\"")
            && mpd.contains("presentationTimeOffset=\"99840\""),
        "{mpd}"
    );
    dash_mpd_core::parse(&mpd).expect("valid MPD");
}

#[test]
fn clips_combine_with_filters() {
    let s = server();
    let r = get(
        s.addr,
        "/vod/ladder/hls/master.m3u8?video_height=270&start=5&end=12",
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let Playlist::MasterPlaylist(m) = m3u8_rs::parse_playlist_res(&r.body).unwrap() else {
        panic!()
    };
    let uris: Vec<&str> = m.variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "270p-v1.m3u8?start=5&end=12",
            "270p-v1.iframes.m3u8?start=5&end=12"
        ],
        "the clip's media and I-frame playlists"
    );
    let p = media_playlist(&s, &format!("/vod/ladder/hls/{}", uris[0]));
    let total: f32 = p.segments.iter().map(|x| x.duration).sum();
    assert!(
        (total - 8.0).abs() < 1e-3,
        "keyframes at 4 s and 12 s: {total}"
    );
}

#[test]
fn bad_clips_are_a_400_naming_the_parameter() {
    let s = server();
    let mut c = Conn::open(s.addr);
    for (query, needle) in [
        ("start=abc", "'start'"),
        ("start=-1", "'start'"),
        ("end=1.2345", "'end'"),
        ("start=5&end=5", "not after"),
        ("start=5&end=2", "not after"),
        ("start=99", "not before the end"),
        ("start=1&start=2", "more than once"),
    ] {
        for path in [
            "/vod/bframes/hls/master.m3u8",
            "/vod/bframes/hls/v1.m3u8",
            "/vod/bframes/dash/manifest.mpd",
        ] {
            let r = c.request("GET", &format!("{path}?{query}"), &[]);
            assert_eq!(r.status, 400, "{path}?{query}");
            assert!(r.text().contains(needle), "{query}: {}", r.text());
        }
    }
    // A span that is not between two keyframes of one segment does not exist.
    for path in [
        "/vod/bframes/cmaf/v1/t2100-4000.m4s",
        "/vod/bframes/cmaf/v1/t2000-6000.m4s",
        "/vod/bframes/cmaf/v1/t04-8.m4s",
    ] {
        assert_eq!(c.request("GET", path, &[]).status, 404, "{path}");
    }
    assert_eq!(
        c.request("GET", "/vod/bframes/hls/master.m3u8", &[]).status,
        200
    );
}

/// subs: sidecar cues at 0.5–2.5, 3.0–5.5 and 5.6–5.9 s (English).
#[test]
fn hls_clips_keep_their_subtitles() {
    let s = server();
    let q = "start=2.2&end=5";
    for dir in ["hls", "hls-ts"] {
        let path = format!("/vod/subs/{dir}/master.m3u8?{q}");
        let master = get(s.addr, &path).text();
        let m = match m3u8_rs::parse_playlist_res(master.as_bytes()).expect("valid HLS") {
            Playlist::MasterPlaylist(m) => m,
            Playlist::MediaPlaylist(_) => panic!("{path}: not a multivariant playlist"),
        };
        let subs: Vec<_> = m
            .alternatives
            .iter()
            .filter(|a| a.media_type == m3u8_rs::AlternativeMediaType::Subtitles)
            .collect();
        assert_eq!(subs.len(), 2, "{master}");
        assert!(
            m.variants
                .iter()
                .filter(|v| !v.is_i_frame)
                .all(|v| v.subtitles.as_deref() == Some("subs")),
            "{master}"
        );
        // The subtitle playlists are clipped like the media ones.
        let uri = subs[0].uri.as_deref().unwrap();
        assert!(uri.ends_with(&format!(".vtt.m3u8?{q}")), "{master}");
        let text = media_playlist(&s, &format!("/vod/subs/{dir}/{uri}"));
        let video = media_playlist(&s, &format!("/vod/subs/{dir}/{}", m.variants[0].uri));
        assert!(!m.variants[0].is_i_frame);
        // Piece for piece as long as the clipped media.
        let ms = |p: &m3u8_rs::MediaPlaylist| -> Vec<i64> {
            p.segments
                .iter()
                .map(|s| (f64::from(s.duration) * 1000.0).round() as i64)
                .collect()
        };
        let (t, v) = (ms(&text), ms(&video));
        assert_eq!(t.len(), v.len(), "{dir}: {t:?} vs {v:?}");
        assert!(
            t.iter().zip(&v).all(|(a, b)| (a - b).abs() <= 1),
            "{dir}: {t:?} vs {v:?}"
        );
        assert_eq!(
            text.start.as_ref().map(|s| s.time_offset),
            video.start.as_ref().map(|s| s.time_offset),
            "{dir}"
        );
        // The segments are the shared ones and hold the cues the clip reaches.
        let mut cues = String::new();
        for seg in &text.segments {
            let uri = seg.uri.strip_prefix("../").expect("relative to the asset");
            let unclipped = get(s.addr, &format!("/vod/subs/{uri}"));
            assert_eq!(unclipped.status, 200, "{uri}");
            assert!(!uri.contains('?'), "{uri}: a shared segment");
            cues.push_str(&unclipped.text());
        }
        assert!(
            cues.contains("00:00:03.000 --> 00:00:05.500"),
            "{dir}: {cues}"
        );
    }
}

/// bframes.mp4's keyframes are at 0, 2, 4, 6 and 8 s; `start=3.1&end=7`
/// is 2 s to 8 s, so its trick play is the keyframes at 2, 4 and 6 s.
#[test]
fn hls_clips_have_i_frame_playlists_of_their_keyframes() {
    let s = server();
    let source = media().join("bframes.mp4");
    let all = keyframe_hashes(source.to_str().unwrap(), &["-ignore_editlist", "1"]);
    assert_eq!(all.len(), 5);
    let q = "start=3.1&end=7";
    for (dir, iframes) in [("hls", "v1.iframes.m3u8"), ("hls-ts", "v1.a2.iframes.m3u8")] {
        let master = get(s.addr, &format!("/vod/bframes/{dir}/master.m3u8?{q}")).text();
        let listed = format!("{iframes}?{q}");
        assert!(master.contains(&format!("URI=\"{listed}\"")), "{master}");
        let url = s.url(&format!("/vod/bframes/{dir}/{listed}"));
        assert_eq!(frame_hashes(&url, "v", &[]), all[1..4], "{url}");
        let p = media_playlist(&s, &format!("/vod/bframes/{dir}/{listed}"));
        assert!(p.i_frames_only, "{url}");
        let total: f64 = p.segments.iter().map(|x| f64::from(x.duration)).sum();
        assert!((total - 6.0).abs() < 0.002, "{url}: {total} s");
        // Ranges of the shared trick resource or regular segments.
        assert!(p.segments.iter().all(|x| !x.uri.contains('?')), "{url}");
    }
    // To the end: the last keyframe lasts to the end of the media.
    let p = media_playlist(&s, "/vod/bframes/hls/v1.iframes.m3u8?start=5");
    let d: Vec<f32> = p.segments.iter().map(|x| x.duration).collect();
    assert_eq!(d.len(), 3, "{d:?}");
    assert!((d.iter().sum::<f32>() - 6.0).abs() < 0.002, "{d:?}");
}

/// The attribute `name` of the first element that has it after `from`.
fn attr_after<'a>(text: &'a str, from: &str, name: &str) -> &'a str {
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("no {from} in {text}"));
    let key = format!("{name}=\"");
    let rest = &text[at..];
    let v = &rest[rest
        .find(&key)
        .unwrap_or_else(|| panic!("no {name} after {from}"))
        + key.len()..];
    &v[..v.find('"').unwrap()]
}

/// DASH clips keep subtitles (the clip's cues, moved to the period) and a
/// trick-mode set of the clip's keyframes (numbered as in the asset).
#[test]
fn dash_clips_keep_subtitles_and_trick_mode() {
    let s = server();
    let mpd = get(s.addr, "/vod/subs/dash/manifest.mpd?start=2.2&end=5").text();
    let base = mpd
        .split("<BaseURL>")
        .nth(1)
        .and_then(|b| b.split("</BaseURL>").next())
        .expect("a text BaseURL");
    // The clip is 2 s (the keyframe before 2.2) to 6 s (the one after 5).
    assert_eq!(base, "../vtt/text-en/t2000-6000.vtt", "{mpd}");
    let vtt = get(s.addr, "/vod/subs/vtt/text-en/t2000-6000.vtt");
    assert_eq!(vtt.status, 200);
    assert!(vtt.header("content-type").unwrap().starts_with("text/vtt"));
    let vtt = vtt.text();
    // 0.5–2.5 s cut to 2.0–2.5, 3.0–5.5 whole, 5.6–5.9 whole; all moved by 2 s.
    for cue in [
        "00:00:00.000 --> 00:00:00.500",
        "00:00:01.000 --> 00:00:03.500",
        "00:00:03.600 --> 00:00:03.900",
    ] {
        assert!(vtt.contains(cue), "{cue} in {vtt}");
    }
    assert_eq!(vtt.matches(" --> ").count(), 3, "{vtt}");
    assert_eq!(
        get(s.addr, "/vod/subs/vtt/text-en/t6000-2000.vtt").status,
        404
    );

    // bframes: keyframes at 0, 2, 4, 6, 8 s; the clip 2–8 s has 2, 4, 6,
    // which are k2..k4 of the asset.
    let mpd = get(s.addr, "/vod/bframes/dash/manifest.mpd?start=3.1&end=7").text();
    assert!(
        mpd.contains("schemeIdUri=\"http://dashif.org/guidelines/trickmode\""),
        "{mpd}"
    );
    let trick = "id=\"v1-trick\"";
    assert_eq!(attr_after(&mpd, trick, "startNumber"), "2", "{mpd}");
    let scale: u64 = attr_after(&mpd, trick, "timescale").parse().unwrap();
    let pto: u64 = attr_after(&mpd, trick, "presentationTimeOffset")
        .parse()
        .unwrap();
    // 2 s, plus the 80 ms delay of every output time.
    assert_eq!(
        pto,
        2 * scale + scale * 8 / 100,
        "the period starts at 2 s: {mpd}"
    );
    let source = media().join("bframes.mp4");
    let want = keyframe_hashes(source.to_str().unwrap(), &["-ignore_editlist", "1"]);
    let mut bytes = get(s.addr, "/vod/bframes/cmaf/v1/init.mp4").body;
    for n in 2..=4 {
        let r = get(s.addr, &format!("/vod/bframes/cmaf/v1/k{n}.m4s"));
        assert_eq!(r.status, 200);
        bytes.extend_from_slice(&r.body);
    }
    let dir = headwater_testkit::TempDir::new("clip-trick");
    let file = dir.path().join("trick.mp4");
    std::fs::write(&file, bytes).unwrap();
    assert_eq!(frame_hashes(file.to_str().unwrap(), "v", &[]), want[1..4]);
}

#[test]
fn golden_clipped_manifests() {
    let s = server();
    let mut out = String::new();
    for path in [
        "/vod/bframes/hls/master.m3u8?start=3.1&end=7",
        "/vod/bframes/hls/v1.m3u8?start=3.1&end=7",
        "/vod/bframes/hls/a2.m3u8?start=3.1&end=7",
        "/vod/bframes/dash/manifest.mpd?start=3.1&end=7",
        "/vod/ladder/dash/manifest.mpd?video_height=-200&start=9",
        "/vod/bframes/hls-ts/master.m3u8?start=3.1&end=7",
        "/vod/bframes/hls-ts/v1.a2.m3u8?start=3.1&end=7",
        "/vod/bframes/hls-ts/v1.a2.m3u8?start=0.5&end=5",
        "/vod/multi-audio/hls-ts/master.m3u8?audio_language=fr",
        "/vod/multi-audio/hls-ts/master.m3u8?audio_language=en&start=2",
        "/vod/ladder/hls-ts/master.m3u8?video_height=-200&start=9",
        "/vod/subs/hls/master.m3u8?start=2.2&end=5",
        "/vod/subs/hls/text-en.vtt.m3u8?start=2.2&end=5",
        "/vod/subs/hls-ts/text-en.vtt.m3u8?start=2.2&end=5",
        "/vod/bframes/hls/v1.iframes.m3u8?start=3.1&end=7",
        "/vod/bframes/hls-ts/v1.a2.iframes.m3u8?start=3.1&end=7",
        "/vod/subs/dash/manifest.mpd?start=2.2&end=5",
    ] {
        out.push_str(&format!("== {path}\n{}\n", get(s.addr, path).text()));
    }
    let golden = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/clips.txt");
    headwater_testkit::golden(&golden, &out);
}
