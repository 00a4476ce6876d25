//! HLS with MPEG-TS segments over HTTP: ffmpeg decodes every program to the
//! source's frames, the playlists follow RFC 8216 version 3, I-frame
//! playlists are byte ranges that decode to the keyframes, sizes are known
//! for HEAD and Range, and codecs TS cannot carry are a clear 422.

use headwater_testkit::ffmpeg::{frame_hashes, keyframe_hashes};
use headwater_testkit::http::{Conn, get};
use headwater_testkit::media;
use headwater_testkit::server::Server;
use m3u8_rs::Playlist;

fn server() -> Server {
    Server::start(env!("CARGO_BIN_EXE_headwater").as_ref(), &media(), &[])
}

fn same(source: &str, source_stream: &str, output: &str, output_stream: &str) {
    let want = frame_hashes(source, source_stream, &["-ignore_editlist", "1"]);
    let got = frame_hashes(output, output_stream, &[]);
    assert!(!want.is_empty());
    assert_eq!(
        got.len(),
        want.len(),
        "{output} {output_stream}: frame count"
    );
    assert!(
        got == want,
        "{output} {output_stream}: frames differ from {source}"
    );
}

fn master(s: &Server, asset: &str) -> m3u8_rs::MasterPlaylist {
    let r = get(s.addr, &format!("/vod/{asset}/hls-ts/master.m3u8"));
    assert_eq!(r.status, 200, "{}", r.text());
    match m3u8_rs::parse_playlist_res(&r.body).expect("valid HLS") {
        Playlist::MasterPlaylist(m) => m,
        Playlist::MediaPlaylist(_) => panic!("not a multivariant playlist"),
    }
}

#[test]
fn every_program_decodes_to_the_source_frames() {
    let s = server();
    let m = media();
    for (asset, program, file, streams) in [
        (
            "bframes",
            "v1.a2",
            "bframes.mp4",
            &[("v", "v"), ("a", "a")][..],
        ),
        ("hevc", "v1.a2", "hevc.mp4", &[("v", "v"), ("a", "a")][..]),
        ("hdr10", "v1.a2", "hdr10.mp4", &[("v", "v"), ("a", "a")][..]),
        (
            "editlist",
            "v1.a2",
            "editlist.mp4",
            &[("v", "v"), ("a", "a")][..],
        ),
        (
            "multi-audio",
            "v1.a2",
            "multi-audio.mp4",
            &[("v", "v"), ("a:0", "a")][..],
        ),
        ("multi-audio", "a3", "multi-audio.mp4", &[("a:1", "a")][..]),
        ("multi-audio", "a4", "multi-audio.mp4", &[("a:2", "a")][..]),
        ("audio-only", "a1", "audio-only.m4a", &[("a", "a")][..]),
        (
            "ladder",
            "270p-v1.audio-a1",
            "ladder/270p.mp4",
            &[("v", "v")][..],
        ),
        (
            "ladder",
            "360p-v1.audio-a1",
            "ladder/audio.m4a",
            &[("a", "a")][..],
        ),
    ] {
        let source = m.join(file);
        let url = s.url(&format!("/vod/{asset}/hls-ts/{program}.m3u8"));
        for (src_stream, out_stream) in streams {
            same(source.to_str().unwrap(), src_stream, &url, out_stream);
        }
    }
}

#[test]
fn playlists_are_version_3_and_list_every_program() {
    let s = server();
    let m = master(&s, "ladder");
    let variants: Vec<&m3u8_rs::VariantStream> =
        m.variants.iter().filter(|v| !v.is_i_frame).collect();
    let uris: Vec<&str> = variants.iter().map(|v| v.uri.as_str()).collect();
    assert_eq!(
        uris,
        [
            "180p-v1.audio-a1.m3u8",
            "270p-v1.audio-a1.m3u8",
            "360p-v1.audio-a1.m3u8"
        ]
    );
    assert!(
        m.alternatives.is_empty(),
        "one audio track: muxed, no EXT-X-MEDIA"
    );
    for v in &variants {
        assert!(v.codecs.as_deref().unwrap().ends_with(",mp4a.40.2"));
        let r = get(s.addr, &format!("/vod/ladder/hls-ts/{}", v.uri));
        let Playlist::MediaPlaylist(p) = m3u8_rs::parse_playlist_res(&r.body).unwrap() else {
            panic!("not a media playlist")
        };
        assert_eq!(p.version, Some(3));
        assert!(p.end_list);
        let fmp4 = get(
            s.addr,
            &format!("/vod/ladder/hls/{}.m3u8", v.uri.split('.').next().unwrap()),
        );
        let Playlist::MediaPlaylist(f) = m3u8_rs::parse_playlist_res(&fmp4.body).unwrap() else {
            panic!()
        };
        let d =
            |p: &m3u8_rs::MediaPlaylist| p.segments.iter().map(|s| s.duration).collect::<Vec<_>>();
        assert_eq!(d(&p), d(&f), "TS and fMP4 segments last the same");
        assert!(
            p.segments
                .iter()
                .all(|x| x.duration.round() as u64 <= p.target_duration)
        );
        // Measured bit rates: BANDWIDTH covers every segment.
        let mut c = Conn::open(s.addr);
        for seg in &p.segments {
            let path = format!("/vod/ladder/{}", seg.uri.trim_start_matches("../"));
            let r = c.request("HEAD", &path, &[]);
            assert_eq!(r.status, 200, "{path}");
            assert_eq!(r.header("content-type"), Some("video/mp2t"));
            let bytes: f64 = r.header("content-length").unwrap().parse().unwrap();
            if seg.duration > 3.0 {
                assert!(bytes * 8.0 / f64::from(seg.duration) <= v.bandwidth as f64 + 1.0);
            }
        }
    }
    // Several audio tracks: the first muxed (EXT-X-MEDIA without URI), the others audio-only programs.
    let m = master(&s, "multi-audio");
    let alt: Vec<(&str, Option<&str>)> = m
        .alternatives
        .iter()
        .map(|a| (a.name.as_str(), a.uri.as_deref()))
        .collect();
    assert_eq!(
        alt,
        [
            ("English", None),
            ("Commentary", Some("a3.m3u8")),
            ("French", Some("a4.m3u8"))
        ]
    );
    assert!(m.alternatives[0].default);
}

#[test]
fn iframe_playlists_are_byte_ranges_of_the_keyframes() {
    let s = server();
    let m = media();
    for (asset, program, file) in [
        ("bframes", "v1.a2", "bframes.mp4"),
        ("hevc", "v1.a2", "hevc.mp4"),
        ("ladder", "180p-v1.audio-a1", "ladder/180p.mp4"),
    ] {
        let master = master(&s, asset);
        let iframe = master
            .variants
            .iter()
            .find(|v| v.is_i_frame && v.uri.starts_with(program))
            .unwrap_or_else(|| panic!("{asset}: no I-frame stream"));
        let url = s.url(&format!("/vod/{asset}/hls-ts/{}", iframe.uri));
        let body = get(s.addr, &format!("/vod/{asset}/hls-ts/{}", iframe.uri)).body;
        let Playlist::MediaPlaylist(p) = m3u8_rs::parse_playlist_res(&body).unwrap() else {
            panic!()
        };
        assert!(p.i_frames_only);
        assert_eq!(p.version, Some(4));
        assert!(
            p.segments.iter().all(|x| x.byte_range.is_some()),
            "{url}: EXT-X-BYTERANGE"
        );
        let source = m.join(file);
        let want = keyframe_hashes(source.to_str().unwrap(), &["-ignore_editlist", "1"]);
        assert_eq!(frame_hashes(&url, "v", &[]), want, "{url}");
        // Each range on its own is a keyframe.
        let mut c = Conn::open(s.addr);
        for seg in &p.segments {
            let br = seg.byte_range.as_ref().unwrap();
            let path = format!("/vod/{asset}/{}", seg.uri.trim_start_matches("../"));
            let start = br.offset.unwrap();
            let range = format!("Range: bytes={start}-{}", start + br.length - 1);
            let r = c.request("GET", &path, &[&range]);
            assert_eq!(r.status, 206, "{path} {range}");
            assert_eq!(r.body.len() as u64, br.length);
            assert_eq!(r.body[0], 0x47, "starts at a TS packet");
        }
    }
}

#[test]
fn ranges_and_head_agree_with_the_whole_segment() {
    let s = server();
    let mut c = Conn::open(s.addr);
    let path = "/vod/bframes/ts/v1.a2/2.ts";
    let full = c.request("GET", path, &[]);
    assert_eq!(full.status, 200);
    assert_eq!(full.body.len() % 188, 0);
    let head = c.request("HEAD", path, &[]);
    assert_eq!(
        head.header("content-length").unwrap(),
        full.body.len().to_string()
    );
    assert_eq!(head.header("etag"), full.header("etag"));
    let r = c.request("GET", path, &["Range: bytes=1000-2999"]);
    assert_eq!(r.status, 206);
    assert_eq!(r.body, full.body[1000..3000]);
    // The same bytes on every request (and so on every node).
    assert_eq!(c.request("GET", path, &[]).body, full.body);
    assert_eq!(
        c.request("GET", "/vod/bframes/ts/v1.a2/4.ts", &[]).status,
        404
    );
    assert_eq!(
        c.request("GET", "/vod/bframes/ts/v9.a2/1.ts", &[]).status,
        404
    );
}

#[test]
fn codecs_ts_cannot_carry_are_a_clear_422() {
    let s = server();
    let r = get(s.addr, "/vod/av1/hls-ts/master.m3u8");
    assert_eq!(r.status, 422);
    assert!(
        r.text().contains("MPEG-TS") && r.text().contains("av01"),
        "{}",
        r.text()
    );
    // The fMP4 URLs of the same asset are unaffected.
    assert_eq!(get(s.addr, "/vod/av1/hls/master.m3u8").status, 200);
}

/// With the segment cache off, TS segments are written per request: the
/// same bytes, the same sizes.
#[test]
fn segments_are_the_same_without_the_cache() {
    let dir = headwater_testkit::TempDir::new("ts-nocache");
    let conf = dir.path().join("h.toml");
    std::fs::write(&conf, "[media]\nsegment_cache_mb = 0\n").unwrap();
    let cached = server();
    let uncached = Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &media(),
        &["--config", conf.to_str().unwrap()],
    );
    for path in [
        "/vod/bframes/ts/v1.a2/1.ts",
        "/vod/hevc/ts/v1.a2/2.ts",
        "/vod/multi-audio/ts/a3/1.ts",
    ] {
        let a = get(cached.addr, path);
        let b = get(uncached.addr, path);
        assert_eq!(a.status, 200, "{path}");
        assert_eq!(a.body, b.body, "{path}");
        let mut c = Conn::open(uncached.addr);
        let r = c.request("GET", path, &["Range: bytes=188-375"]);
        assert_eq!(r.status, 206);
        assert_eq!(r.body, a.body[188..376]);
    }
}
