//! HTTP/1.1 behaviour a CDN relies on: HEAD, Range, conditional requests,
//! error statuses, caching headers, keep-alive and pipelining, and that
//! malformed or hostile requests get a clean answer.

use headwater_testkit::http::{Conn, get};
use headwater_testkit::server::Server;

fn server() -> Server {
    Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &[],
    )
}

const SEG: &str = "/vod/bframes/cmaf/v1/1.m4s";

#[test]
fn head_matches_get_without_body() {
    let s = server();
    for path in [
        SEG,
        "/vod/bframes/hls/master.m3u8",
        "/vod/bframes/cmaf/a2/init.mp4",
        "/vod/bframes/dash/manifest.mpd",
    ] {
        let mut c = Conn::open(s.addr);
        let full = c.request("GET", path, &[]);
        let head = c.request("HEAD", path, &[]);
        assert_eq!(full.status, 200, "{path}");
        assert_eq!(head.status, 200, "{path}");
        assert!(head.body.is_empty());
        assert_eq!(
            head.header("content-length").unwrap(),
            full.body.len().to_string(),
            "{path}"
        );
        for h in ["etag", "content-type", "cache-control", "last-modified"] {
            assert_eq!(head.header(h), full.header(h), "{path} {h}");
        }
    }
}

#[test]
fn content_types_and_cache_control() {
    let s = server();
    let cases = [
        (
            "/vod/bframes/hls/master.m3u8",
            "application/vnd.apple.mpegurl",
            "public, max-age=60",
        ),
        (
            "/vod/bframes/hls/v1.m3u8",
            "application/vnd.apple.mpegurl",
            "public, max-age=60",
        ),
        (
            "/vod/bframes/dash/manifest.mpd",
            "application/dash+xml",
            "public, max-age=60",
        ),
        (
            "/vod/bframes/cmaf/v1/init.mp4",
            "video/mp4",
            "public, max-age=31536000, immutable",
        ),
        (
            "/vod/bframes/cmaf/a2/1.m4s",
            "audio/mp4",
            "public, max-age=31536000, immutable",
        ),
        (SEG, "video/mp4", "public, max-age=31536000, immutable"),
    ];
    for (path, ctype, cache) in cases {
        let r = get(s.addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("content-type"), Some(ctype), "{path}");
        assert_eq!(r.header("cache-control"), Some(cache), "{path}");
        assert_eq!(r.header("access-control-allow-origin"), Some("*"), "{path}");
        assert_eq!(r.header("accept-ranges"), Some("bytes"), "{path}");
        assert!(
            r.header("etag").is_some_and(|e| e.starts_with('"')),
            "{path}"
        );
        assert!(
            r.header("last-modified")
                .is_some_and(|d| d.ends_with("GMT")),
            "{path}"
        );
        assert!(r.header("date").is_some(), "{path}");
    }
}

#[test]
fn ranges_on_a_sendfile_segment_and_a_manifest() {
    let s = server();
    let mut c = Conn::open(s.addr);
    for path in [SEG, "/vod/bframes/hls/master.m3u8"] {
        let full = c.request("GET", path, &[]).body;
        let n = full.len();
        assert!(n > 300);
        // Where the generated header ends and sendfile'd payload begins.
        let edge = full
            .windows(4)
            .position(|w| w == b"mdat")
            .map_or(n / 3, |p| p + 4);
        // Inside the generated header, across the header/payload edge, inside
        // the payload, open-ended, suffix, beyond the end.
        for (spec, start, end) in [
            ("bytes=0-9".to_owned(), 0, 10),
            (
                format!("bytes={}-{}", edge - 50, edge + 49),
                edge - 50,
                edge + 50,
            ),
            (
                format!("bytes={}-{}", n / 2, n / 2 + 99),
                n / 2,
                n / 2 + 100,
            ),
            (format!("bytes={}-", n - 77), n - 77, n),
            ("bytes=-33".to_owned(), n - 33, n),
            (format!("bytes=10-{}", n + 1000), 10, n),
        ] {
            let r = c.request("GET", path, &[&format!("Range: {spec}")]);
            assert_eq!(r.status, 206, "{path} {spec}");
            assert_eq!(
                r.header("content-range"),
                Some(format!("bytes {}-{}/{n}", start, end - 1).as_str()),
                "{path} {spec}"
            );
            assert_eq!(r.body, &full[start..end], "{path} {spec}");
        }
        let r = c.request("GET", path, &[&format!("Range: bytes={n}-")]);
        assert_eq!(r.status, 416);
        assert_eq!(
            r.header("content-range"),
            Some(format!("bytes */{n}").as_str())
        );
        // Several ranges: the whole representation, which RFC 9110 allows.
        let r = c.request("GET", path, &["Range: bytes=0-1,5-6"]);
        assert_eq!((r.status, r.body.len()), (200, n));
        // If-Range with another ETag: the whole representation.
        let r = c.request("GET", path, &["Range: bytes=0-9", "If-Range: \"other\""]);
        assert_eq!((r.status, r.body.len()), (200, n));
    }
}

/// The trick resource `iframes.m4s` that fMP4 I-frame playlists address
/// with `EXT-X-BYTERANGE`: each listed range, asked for with `Range`, is
/// that slice of the whole resource and the same bytes as the DASH
/// trick-mode segment `k{n}.m4s`; ranges across fragment edges (where
/// generated headers meet sendfile'd payload) are slices too.
/// Every segment URI of an asset's fMP4 HLS (inits and media, each rendition).
fn segment_paths(s: &Server, asset: &str) -> Vec<String> {
    let base = format!("/vod/{asset}/hls/");
    let resolve = |uri: &str| match uri.strip_prefix("../") {
        Some(rest) => format!("/vod/{asset}/{rest}"),
        None => format!("{base}{uri}"),
    };
    let master = get(s.addr, &format!("{base}master.m3u8")).text();
    let mut out = Vec::new();
    for playlist in master.lines().filter_map(|l| {
        l.strip_prefix('#').map_or(Some(l), |tag| {
            (tag.starts_with("EXT-X-MEDIA:") && tag.contains("TYPE=AUDIO"))
                .then(|| tag.split("URI=\"").nth(1)?.split('"').next())
                .flatten()
        })
    }) {
        if playlist.is_empty() {
            continue;
        }
        let text = get(s.addr, &resolve(playlist)).text();
        for l in text.lines() {
            if let Some(map) = l.strip_prefix("#EXT-X-MAP:URI=\"") {
                out.push(resolve(map.split('"').next().unwrap()));
            } else if !l.starts_with('#') && !l.is_empty() {
                out.push(resolve(l));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A server whose segment cache is the directory it returns, in a temporary
/// directory that lives as long as the first value.
fn cache_dir_server(tag: &str) -> (headwater_testkit::TempDir, std::path::PathBuf, Server) {
    let dir = headwater_testkit::TempDir::new(tag);
    let cache = dir.path().join("cache");
    std::fs::create_dir(&cache).unwrap();
    let conf = dir.path().join("h.toml");
    std::fs::write(
        &conf,
        format!("[media]\nsegment_cache_dir = \"{}\"\n", cache.display()),
    )
    .unwrap();
    let s = Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &["--config", conf.to_str().unwrap()],
    );
    (dir, cache, s)
}

/// With `media.segment_cache_dir`, kept segments are unnamed files there:
/// a muxed source's segments from the first request, one-range segments
/// (a file per rendition) from the second, and long manifests. Every
/// response, first, second and later, whole, a range or a HEAD, is the
/// bytes the memfd-cached server sends, and nothing is left in the
/// directory.
#[test]
fn segments_and_manifests_kept_in_a_cache_directory_are_the_same_bytes() {
    let (_dir, cache, s) = cache_dir_server("segment-cache-dir");
    let reference = server();
    let mut checked = 0;
    for asset in ["bframes", "ladder"] {
        let paths = segment_paths(&reference, asset);
        assert!(paths.len() > 4, "{asset}: {paths:?}");
        for path in &paths {
            let want = get(reference.addr, path);
            assert_eq!(want.status, 200, "{path}");
            let mut c = Conn::open(s.addr);
            for _ in 0..3 {
                let got = c.request("GET", path, &[]);
                assert_eq!(got.status, 200, "{path}");
                assert!(got.body == want.body, "{path}: different bytes");
            }
            let n = want.body.len();
            let r = c.request("GET", path, &[&format!("Range: bytes={}-{}", n / 3, n - 2)]);
            assert_eq!(r.status, 206, "{path}");
            assert!(r.body == want.body[n / 3..n - 1], "{path}: different range");
            checked += 1;
        }
    }
    let ts = "/vod/bframes/ts/v1.a2/1.ts";
    assert!(get(s.addr, ts).body == get(reference.addr, ts).body);
    assert!(checked > 10);
    let kept_before = open_files_in(&s, &cache);
    // Long manifests (the I-frame playlist lists 600 keyframes).
    for path in [
        "/vod/long/hls/master.m3u8",
        "/vod/long/hls/v1.m3u8",
        "/vod/long/hls/v1.iframes.m3u8",
        "/vod/long/dash/manifest.mpd",
    ] {
        let want = get(reference.addr, path);
        assert_eq!(want.status, 200, "{path}");
        let mut c = Conn::open(s.addr);
        for _ in 0..2 {
            let got = c.request("GET", path, &[]);
            assert_eq!(got.status, 200, "{path}");
            assert_eq!(got.text(), want.text(), "{path}");
            assert_eq!(got.header("etag"), want.header("etag"), "{path}");
        }
        let head = c.request("HEAD", path, &[]);
        assert_eq!(
            head.header("content-length").map(str::to_owned),
            Some(want.body.len().to_string()),
            "{path}"
        );
        let r = c.request("GET", path, &["Range: bytes=100-199"]);
        assert_eq!(
            (r.status, &r.body[..]),
            (206, &want.body[100..200]),
            "{path}"
        );
    }
    assert!(
        get(reference.addr, "/vod/long/hls/v1.iframes.m3u8")
            .body
            .len()
            > 16 << 10
    );
    assert!(
        open_files_in(&s, &cache) > kept_before,
        "the long I-frame playlist was not kept as a file"
    );
    assert_eq!(std::fs::read_dir(&cache).unwrap().count(), 0);
}

/// A cache directory that stops working (here: removed while serving)
/// costs speed, not answers: every segment and manifest is then sent from
/// its source or from memory, the same bytes, and the failures are logged
/// once, not per request.
#[test]
fn a_cache_directory_that_goes_away_falls_back_to_the_source() {
    let (_dir, cache, s) = cache_dir_server("segment-cache-gone");
    let reference = server();
    std::fs::remove_dir(&cache).unwrap();
    let mut paths = segment_paths(&reference, "bframes");
    paths.push("/vod/long/hls/v1.iframes.m3u8".into());
    for path in &paths {
        let want = get(reference.addr, path);
        for _ in 0..2 {
            let got = get(s.addr, path);
            assert_eq!(got.status, 200, "{path}");
            assert!(got.body == want.body, "{path}: different bytes");
        }
    }
    assert_eq!(unkept_warnings(&s), 1, "{:#?}", s.log());
}

/// The MPEG-TS segments of `asset`'s TS playlists, as served paths.
fn ts_paths(s: &Server, asset: &str) -> Vec<String> {
    let base = format!("/vod/{asset}/hls-ts/");
    let resolve = |uri: &str| match uri.strip_prefix("../") {
        Some(rest) => format!("/vod/{asset}/{rest}"),
        None => format!("{base}{uri}"),
    };
    let uris = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
            .map(resolve)
            .collect()
    };
    let master = get(s.addr, &format!("{base}master.m3u8")).text();
    let mut out = Vec::new();
    for playlist in uris(&master) {
        out.extend(uris(&get(s.addr, &playlist).text()));
    }
    assert!(!out.is_empty(), "{asset} has TS segments");
    out
}

/// A full cache directory (`ENOSPC`: a 64 KiB tmpfs, smaller than every
/// video segment) costs speed, not answers: fMP4 and MPEG-TS segments come back
/// whole and the same, nothing partial is kept or sent, and the failures
/// are logged a few times, not per request. When space returns, segments
/// are kept again, with no restart.
#[test]
fn a_full_cache_directory_sends_without_keeping_and_recovers() {
    let (_dir, cache, s) = cache_dir_server("segment-cache-full");
    let disk = headwater_testkit::Tmpfs::mount(&cache, "64k");
    let reference = server();
    let mut paths = segment_paths(&reference, "bframes");
    paths.extend(ts_paths(&reference, "bframes"));
    let want: Vec<_> = paths.iter().map(|p| get(reference.addr, p).body).collect();
    let every_path_three_times = || {
        for (path, want) in paths.iter().zip(&want) {
            for _ in 0..3 {
                let got = get(s.addr, path);
                assert_eq!(got.status, 200, "{path}");
                assert!(got.body == *want, "{path}: different bytes");
            }
        }
    };
    every_path_three_times();
    // What fits (init segments, short audio) is kept; the rest is not.
    let kept_when_full = open_files_in(&s, &cache);
    let warnings = unkept_warnings(&s);
    assert!(
        warnings < paths.len(),
        "{warnings} warnings for {} failed copies",
        paths.len()
    );
    disk.resize("64m");
    every_path_three_times();
    assert!(
        open_files_in(&s, &cache) > kept_when_full,
        "segments kept once space returned"
    );
}

/// How many times the server logged that it sent something without
/// keeping a copy, once there is at least one such line.
fn unkept_warnings(s: &Server) -> usize {
    const LINE: &str = "sent without keeping a copy";
    assert!(s.wait_for_log(LINE, std::time::Duration::from_secs(5)));
    s.log().iter().filter(|l| l.contains(LINE)).count()
}

/// How many of the server's open files are unnamed files in `dir`.
fn open_files_in(s: &Server, dir: &std::path::Path) -> usize {
    std::fs::read_dir(format!("/proc/{}/fd", s.pid()))
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter(|target| target.starts_with(dir))
        .count()
}

#[test]
fn ranges_on_the_trick_resource() {
    let s = server();
    let mut c = Conn::open(s.addr);
    for (asset, rendition) in [("bframes", "v1"), ("ladder", "270p-v1"), ("hevc", "v1")] {
        let path = format!("/vod/{asset}/cmaf/{rendition}/iframes.m4s");
        let full = c.request("GET", &path, &[]);
        assert_eq!(full.status, 200, "{path}");
        assert_eq!(full.header("content-type"), Some("video/mp4"));
        assert!(full.header("cache-control").unwrap().contains("immutable"));
        let head = c.request("HEAD", &path, &[]);
        assert_eq!(
            head.header("content-length").unwrap(),
            full.body.len().to_string()
        );
        assert_eq!(head.header("etag"), full.header("etag"));
        let full = full.body;
        let n = full.len();

        let playlist = c.request(
            "GET",
            &format!("/vod/{asset}/hls/{rendition}.iframes.m3u8"),
            &[],
        );
        let m3u8_rs::Playlist::MediaPlaylist(p) =
            m3u8_rs::parse_playlist_res(&playlist.body).expect("valid HLS")
        else {
            panic!("not a media playlist")
        };
        assert!(p.i_frames_only);
        let mut next = 0;
        for (i, seg) in p.segments.iter().enumerate() {
            assert_eq!(seg.uri, format!("../cmaf/{rendition}/iframes.m4s"));
            let br = seg.byte_range.as_ref().expect("EXT-X-BYTERANGE");
            let (start, len) = (br.offset.expect("an explicit offset"), br.length);
            assert_eq!(start, next, "{path}: ranges are back to back");
            next = start + len;
            let range = format!("Range: bytes={start}-{}", next - 1);
            let r = c.request("GET", &path, &[&range]);
            assert_eq!(r.status, 206, "{path} {range}");
            assert_eq!(
                r.header("content-range"),
                Some(format!("bytes {start}-{}/{n}", next - 1).as_str())
            );
            assert_eq!(
                r.body,
                &full[start as usize..next as usize],
                "{path} {range}"
            );
            assert_eq!(
                &r.body[4..8],
                b"styp",
                "{path} {range}: a fragment of its own"
            );
            let k = c.request(
                "GET",
                &format!("/vod/{asset}/cmaf/{rendition}/k{}.m4s", i + 1),
                &[],
            );
            assert_eq!(k.status, 200);
            assert!(
                k.body == r.body,
                "{path} {range}: the DASH segment k{}",
                i + 1
            );
        }
        assert_eq!(next as usize, n, "{path}: the ranges cover the resource");
        assert!(p.segments.len() >= 2);

        // Windows across fragments and inside one, open-ended, suffix.
        let first = p.segments[0].byte_range.as_ref().unwrap().length as usize;
        for (spec, start, end) in [
            (
                format!("bytes={}-{}", first - 10, first + 200),
                first - 10,
                first + 201,
            ),
            ("bytes=50-60".to_owned(), 50, 61),
            (format!("bytes=100-{}", n - 100), 100, n - 99),
            (format!("bytes={}-", first + 3), first + 3, n),
            ("bytes=-7".to_owned(), n - 7, n),
        ] {
            let r = c.request("GET", &path, &[&format!("Range: {spec}")]);
            assert_eq!(r.status, 206, "{path} {spec}");
            assert!(r.body == full[start..end], "{path} {spec}");
        }
        let r = c.request("GET", &path, &[&format!("Range: bytes={n}-")]);
        assert_eq!(r.status, 416);
    }
    // Audio has no keyframes to trick-play.
    assert_eq!(
        c.request("GET", "/vod/bframes/cmaf/a2/iframes.m4s", &[])
            .status,
        404
    );
}

#[test]
fn conditional_requests() {
    let s = server();
    let mut c = Conn::open(s.addr);
    let first = c.request("GET", SEG, &[]);
    let etag = first.header("etag").unwrap().to_owned();
    let modified = first.header("last-modified").unwrap().to_owned();
    let r = c.request("GET", SEG, &[&format!("If-None-Match: {etag}")]);
    assert_eq!(r.status, 304);
    assert!(r.body.is_empty());
    assert_eq!(r.header("etag"), Some(etag.as_str()));
    assert_eq!(
        r.header("content-length").unwrap(),
        first.body.len().to_string()
    );
    let r = c.request("GET", SEG, &["If-None-Match: \"nope\", W/\"other\""]);
    assert_eq!(r.status, 200);
    let r = c.request("GET", SEG, &[&format!("If-None-Match: W/{etag}")]);
    assert_eq!(r.status, 304, "weak comparison");
    let r = c.request("GET", SEG, &[&format!("If-Modified-Since: {modified}")]);
    assert_eq!(r.status, 304);
    let r = c.request(
        "GET",
        SEG,
        &["If-Modified-Since: Thu, 01 Jan 1970 00:00:01 GMT"],
    );
    assert_eq!(r.status, 200);
    let r = c.request("HEAD", SEG, &[&format!("If-None-Match: {etag}")]);
    assert_eq!(r.status, 304);
}

#[test]
fn etags_and_bytes_are_stable_across_restarts() {
    let a = server();
    let one = get(a.addr, SEG);
    drop(a);
    let b = server();
    let two = get(b.addr, SEG);
    assert_eq!(one.header("etag"), two.header("etag"));
    assert_eq!(one.body, two.body);
    // Different content, different tag.
    assert_ne!(
        get(b.addr, "/vod/bframes/cmaf/v1/2.m4s").header("etag"),
        one.header("etag")
    );
}

#[test]
fn not_found() {
    let s = server();
    for path in [
        "/vod/nosuch/hls/master.m3u8",
        "/vod/bframes/hls/v9.m3u8",
        "/vod/bframes/cmaf/v9/init.mp4",
        "/vod/bframes/cmaf/v1/99.m4s",
        "/vod/bframes/cmaf/v1/0.m4s",
        "/vod/bframes/other/x",
        "/",
        "/favicon.ico",
    ] {
        let r = get(s.addr, path);
        assert_eq!(r.status, 404, "{path}");
        assert_eq!(
            r.header("cache-control"),
            Some("public, max-age=10"),
            "{path}"
        );
    }
}

#[test]
fn malformed_paths_and_traversal_are_400() {
    let s = server();
    for path in [
        "/vod/../etc/passwd",
        "/vod/bframes/../../../etc/passwd",
        "/vod/%2e%2e/hls/master.m3u8",
        "/vod/..%2f..%2fetc/hls/master.m3u8",
        "/vod/bframes/cmaf/../../bframes.mp4",
        "/vod/bfr%00ames/hls/master.m3u8",
        "/vod/a.b/hls/master.m3u8",
        "/vod//hls/master.m3u8",
        "/vod/bframes\\..\\x/hls/master.m3u8",
    ] {
        let mut c = Conn::open(s.addr);
        let r = c.request("GET", path, &[]);
        assert_eq!(r.status, 400, "{path}");
        assert!(c.closed_by_peer(), "{path}: a 400 closes the connection");
    }
    // An absolute-form target that is not a path.
    let mut c = Conn::open(s.addr);
    c.send(b"GET http://example.com/vod/bframes/hls/master.m3u8 HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 400);
}

#[test]
fn methods() {
    let s = server();
    for m in ["POST", "PUT", "DELETE", "PATCH", "BREW"] {
        let r =
            Conn::open(s.addr).request(m, "/vod/bframes/hls/master.m3u8", &["Content-Length: 0"]);
        assert_eq!(r.status, 405, "{m}");
        assert_eq!(r.header("allow"), Some("GET, HEAD, OPTIONS"), "{m}");
    }
    // A body we will not read: answered, then the connection closes.
    let mut c = Conn::open(s.addr);
    c.send(
        b"POST /vod/bframes/hls/master.m3u8 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello",
    );
    assert_eq!(c.read_response(false).unwrap().status, 405);
    assert!(c.closed_by_peer());
    // CORS preflight.
    let r = Conn::open(s.addr).request(
        "OPTIONS",
        SEG,
        &[
            "Origin: https://player.example",
            "Access-Control-Request-Headers: range",
        ],
    );
    assert_eq!(r.status, 204);
    assert_eq!(r.header("access-control-allow-origin"), Some("*"));
    assert!(
        r.header("access-control-allow-headers")
            .unwrap()
            .contains("Range")
    );
}

#[test]
fn keep_alive_pipelining_and_http10() {
    let s = server();
    let mut c = Conn::open(s.addr);
    // Two pipelined requests in one write, answered in order.
    c.send(b"GET /vod/bframes/hls/master.m3u8 HTTP/1.1\r\nHost: x\r\n\r\nHEAD /vod/bframes/cmaf/v1/1.m4s HTTP/1.1\r\nHost: x\r\n\r\n");
    let a = c.read_response(false).unwrap();
    let b = c.read_response(true).unwrap();
    assert_eq!(
        (a.status, a.header("content-type")),
        (200, Some("application/vnd.apple.mpegurl"))
    );
    assert_eq!(
        (b.status, b.header("content-type")),
        (200, Some("video/mp4"))
    );
    for _ in 0..20 {
        assert_eq!(c.request("GET", SEG, &[]).status, 200);
    }
    // Connection: close is honoured.
    let r = c.request("GET", SEG, &["Connection: close"]);
    assert_eq!(r.header("connection"), Some("close"));
    assert!(c.closed_by_peer());
    // HTTP/1.0 closes unless asked to keep alive.
    let mut c = Conn::open(s.addr);
    c.send(b"GET /healthz HTTP/1.0\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 200);
    assert!(c.closed_by_peer());
    // HTTP/1.1 needs Host.
    let mut c = Conn::open(s.addr);
    c.send(b"GET /healthz HTTP/1.1\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 400);
}

#[test]
fn garbage_and_oversized_heads() {
    let mut s = server();
    let mut c = Conn::open(s.addr);
    c.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 binary garbage\r\n\r\n");
    assert_eq!(c.read_response(false).unwrap().status, 400);
    assert!(c.closed_by_peer());
    let mut c = Conn::open(s.addr);
    let mut big = b"GET /healthz HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..2000 {
        big.extend_from_slice(format!("X-Filler-{i}: {}\r\n", "y".repeat(20)).as_bytes());
    }
    c.send(&big);
    assert_eq!(c.read_response(false).unwrap().status, 431);
    // Still serving.
    assert!(s.alive());
    assert_eq!(get(s.addr, "/healthz").status, 200);
}

#[test]
fn health_and_readiness() {
    let s = server();
    assert_eq!(get(s.addr, "/healthz").text(), "ok\n");
    assert_eq!(get(s.addr, "/readyz").status, 200);
    let missing = headwater_testkit::TempDir::new("norot");
    let gone = missing.path().join("absent");
    let t = Server::start(env!("CARGO_BIN_EXE_headwater").as_ref(), &gone, &[]);
    assert_eq!(get(t.addr, "/readyz").status, 503);
    assert_eq!(get(t.addr, "/healthz").status, 200);
}

#[test]
fn sigterm_exits_cleanly() {
    let s = server();
    assert_eq!(get(s.addr, SEG).status, 200);
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}");
}

/// On SIGTERM, idle keep-alive connections are closed at once, not held
/// for the grace period: with a 60 s grace, the server still exits within
/// `terminate`'s 15 s, and each idle client (on either worker) sees its
/// connection end.
#[test]
fn sigterm_closes_idle_keep_alive_connections_at_once() {
    let dir = headwater_testkit::TempDir::new("grace");
    let conf = dir.path().join("h.toml");
    std::fs::write(&conf, "[server]\nshutdown_grace_secs = 60\nthreads = 2\n").unwrap();
    let s = Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &["--config", conf.to_str().unwrap()],
    );
    let mut idle: Vec<Conn> = (0..8).map(|_| Conn::open(s.addr)).collect();
    for c in &mut idle {
        assert_eq!(c.request("GET", "/healthz", &[]).status, 200);
    }
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}");
    for c in &mut idle {
        assert!(c.closed_by_peer());
    }
}

#[test]
fn cors_and_cache_lifetimes_are_configurable() {
    let dir = headwater_testkit::TempDir::new("cors");
    let conf = dir.path().join("h.toml");
    std::fs::write(
        &conf,
        "[http]\ncors_allow_origin = \"\"\nmanifest_max_age_secs = 5\nsegment_max_age_secs = 600\nnot_found_max_age_secs = 0\n",
    )
    .unwrap();
    let s = Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &["--config", conf.to_str().unwrap()],
    );
    let m = get(s.addr, "/vod/bframes/hls/master.m3u8");
    assert_eq!(m.header("access-control-allow-origin"), None);
    assert_eq!(m.header("cache-control"), Some("public, max-age=5"));
    assert_eq!(
        get(s.addr, SEG).header("cache-control"),
        Some("public, max-age=600, immutable")
    );
    assert_eq!(
        get(s.addr, "/vod/nope/hls/master.m3u8").header("cache-control"),
        Some("no-store")
    );
}

/// A body nobody reads must never be taken for the next request: every
/// method gets one answer and the connection closes (issue 22, item 1: an
/// `OPTIONS` preflight with a body smuggled a second request through).
#[test]
fn requests_with_bodies_are_answered_once_and_closed() {
    let s = server();
    let smuggled = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
    for (method, target, status) in [
        ("OPTIONS", "*", 400),
        ("OPTIONS", SEG, 400),
        ("GET", "/healthz", 400),
        ("HEAD", "/healthz", 400),
        ("POST", "/healthz", 405),
    ] {
        for framing in [
            format!("Content-Length: {}", smuggled.len()),
            "Transfer-Encoding: chunked".to_owned(),
        ] {
            let mut c = Conn::open(s.addr);
            let mut raw =
                format!("{method} {target} HTTP/1.1\r\nHost: x\r\n{framing}\r\n\r\n").into_bytes();
            if framing.starts_with("Transfer") {
                raw.extend_from_slice(format!("{:x}\r\n", smuggled.len()).as_bytes());
                raw.extend_from_slice(smuggled);
                raw.extend_from_slice(b"\r\n0\r\n\r\n");
            } else {
                raw.extend_from_slice(smuggled);
            }
            c.send(&raw);
            let r = c.read_response(method == "HEAD").expect("one response");
            assert_eq!(r.status, status, "{method} {target} {framing}");
            assert_eq!(r.header("connection"), Some("close"), "{method} {framing}");
            // No second response: the connection is closed.
            assert!(c.read_response(false).is_none(), "{method} {framing}");
        }
    }
    // A preflight without a body is still answered and kept alive.
    let mut c = Conn::open(s.addr);
    let r = c.request("OPTIONS", SEG, &["Origin: https://player.example"]);
    assert_eq!(r.status, 204);
    assert_eq!(c.request("GET", "/healthz", &[]).status, 200);
}

/// RFC 9112 §3.2: a request with two `Host` fields is a 400; two `Range`
/// fields have no defined meaning either (issue 22, item 8).
#[test]
fn duplicate_host_and_range_are_refused() {
    let s = server();
    for extra in [
        vec!["Host: other"],
        vec!["Range: bytes=0-9", "Range: bytes=10-19"],
    ] {
        let r = Conn::open(s.addr).request("GET", SEG, &extra);
        assert_eq!(r.status, 400, "{extra:?}");
        assert!(r.text().contains("more than one"), "{}", r.text());
    }
    let r = Conn::open(s.addr).request("GET", SEG, &["Range: bytes=0-9"]);
    assert_eq!(r.status, 206);
}

/// `server.request_timeout_secs` bounds a whole request head from its first
/// byte: a client that trickles a byte at a time is closed when it runs
/// out, however steadily it sends (issue 22, item 2: slowloris).
#[test]
fn a_trickled_head_is_closed_when_its_time_is_up() {
    let dir = headwater_testkit::TempDir::new("slowloris");
    let conf = dir.path().join("h.toml");
    std::fs::write(&conf, "[server]\nrequest_timeout_secs = 2\n").unwrap();
    let s = Server::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &["--config", conf.to_str().unwrap()],
    );
    use std::io::Write;
    let mut stream = std::net::TcpStream::connect(s.addr).unwrap();
    let head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ".to_vec();
    let started = std::time::Instant::now();
    let mut closed = false;
    // Twenty seconds' worth of bytes, one every 250 ms: ten times the
    // timeout. Each byte alone would restart a per-read timeout.
    for b in head.iter().chain(std::iter::repeat(&b'a')).take(80) {
        if stream.write_all(&[*b]).is_err() {
            closed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(250));
        if started.elapsed() > std::time::Duration::from_secs(3) {
            // Past the deadline: the server has closed its end; a read sees EOF.
            stream
                .set_read_timeout(Some(std::time::Duration::from_secs(5)))
                .unwrap();
            let mut buf = [0u8; 64];
            closed = match std::io::Read::read(&mut stream, &mut buf) {
                Ok(0) => true,
                Ok(_) => false,
                Err(e) => !matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ),
            };
            break;
        }
    }
    assert!(
        closed,
        "a head trickled past request_timeout_secs stayed open"
    );
    assert_eq!(get(s.addr, "/healthz").status, 200);
}

/// Open files bound the connections, with a reserve kept for the admin
/// listener and the files responses read; at the limit the connection
/// idle longest is closed to make room (issue 22, item 3: 20,000 idle
/// connections took the process to EMFILE and both listeners down).
#[test]
fn idle_connections_cannot_exhaust_file_descriptors() {
    let s = Server::start_with_nofile(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &headwater_testkit::media(),
        &["--threads", "2", "--admin-listen", "127.0.0.1:0"],
        512,
    );
    let admin = s.admin_addr();
    // 512 open files: 256 kept in reserve, 128 connections per worker.
    let mut held = Vec::new();
    for _ in 0..600 {
        let mut c = Conn::open(s.addr);
        // A request on each, so it is a kept-alive idle connection.
        assert_eq!(c.request("GET", "/healthz", &[]).status, 200);
        held.push(c);
    }
    // New requests still get in, on both planes, and segments still read files.
    for _ in 0..5 {
        assert_eq!(get(s.addr, SEG).status, 200);
        assert_eq!(get(admin, "/healthz").status, 200);
    }
    // The oldest idle connections were closed to make room, the newest kept.
    let closed = held
        .iter_mut()
        .take(100)
        .filter_map(|c| c.closed_by_peer().then_some(()))
        .count();
    assert_eq!(closed, 100, "the oldest idle connections were not shed");
    let newest = held.last_mut().unwrap();
    assert_eq!(newest.request("GET", "/healthz", &[]).status, 200);
    let log = s.log();
    assert!(
        !log.iter().any(|l| l.contains("accept failed")),
        "ran out of descriptors: {:?}",
        log.iter()
            .filter(|l| l.contains("accept"))
            .collect::<Vec<_>>()
    );
}
