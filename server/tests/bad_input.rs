//! Bad media gets a clean `422` naming the problem and a log line; the
//! server keeps serving everything else. Files that change on disk are
//! re-read, and concurrent first requests index a file once.

use std::time::Duration;

use headwater_testkit::http::get;
use headwater_testkit::server::Server;
use headwater_testkit::{TempDir, media};

fn bin() -> &'static std::path::Path {
    env!("CARGO_BIN_EXE_headwater").as_ref()
}

#[test]
fn corrupt_files_are_422_and_others_keep_working() {
    let dir = TempDir::new("corrupt");
    let m = media();
    std::fs::copy(m.join("bframes.mp4"), dir.path().join("good.mp4")).unwrap();
    let cases = [
        ("truncated", "sample data"),
        ("garbage-moov", "malformed"),
        ("empty", "no 'moov' box"),
        ("text", "not an MP4 file"),
        (
            "mpeg4-part2",
            "unsupported codec in 'mpeg4-part2' track 1: sample entry 'mp4v'",
        ),
    ];
    for (name, _) in cases {
        std::fs::copy(
            m.join("corrupt").join(format!("{name}.mp4")),
            dir.path().join(format!("{name}.mp4")),
        )
        .unwrap();
    }
    // A multi-file asset with one bad file fails as a whole, naming the file.
    std::fs::create_dir(dir.path().join("mixed")).unwrap();
    std::fs::copy(m.join("bframes.mp4"), dir.path().join("mixed/a.mp4")).unwrap();
    std::fs::copy(
        m.join("corrupt/truncated.mp4"),
        dir.path().join("mixed/b.mp4"),
    )
    .unwrap();

    let mut s = Server::start(bin(), dir.path(), &[]);
    for (name, why) in cases {
        for path in [
            format!("/vod/{name}/hls/master.m3u8"),
            format!("/vod/{name}/cmaf/v1/1.m4s"),
            format!("/vod/{name}/dash/manifest.mpd"),
        ] {
            let r = get(s.addr, &path);
            assert_eq!(r.status, 422, "{path}");
            let text = r.text();
            assert!(
                (text.contains(&format!("{name}.mp4")) || text.contains(&format!("'{name}'")))
                    && text.to_lowercase().contains(&why.to_lowercase()),
                "{path}: {text}"
            );
        }
        assert!(
            s.wait_for_log(
                &format!("asset cannot be packaged asset=\"{name}\""),
                Duration::from_secs(5)
            ),
            "no log line for {name}"
        );
        assert_eq!(get(s.addr, "/vod/good/hls/master.m3u8").status, 200);
    }
    let r = get(s.addr, "/vod/mixed/hls/master.m3u8");
    assert_eq!(r.status, 422);
    assert!(r.text().contains("b.mp4"), "{}", r.text());
    // The failure is cached: one log line however many requests.
    for _ in 0..20 {
        assert_eq!(get(s.addr, "/vod/truncated/hls/master.m3u8").status, 422);
    }
    // One build, one warning: not one per request.
    for line in [
        "asset cannot be packaged asset=\"truncated\"",
        "asset built asset=\"truncated\"",
    ] {
        let lines = s.log().iter().filter(|l| l.contains(line)).count();
        assert_eq!(lines, 1, "{line}: {:?}", s.log());
    }
    assert!(s.alive(), "the server must survive bad media");
    assert!(!s.log().iter().any(|l| l.contains("panicked")));
}

fn config_with_fast_checks(dir: &TempDir) -> std::path::PathBuf {
    let conf = dir.path().join("headwater.toml");
    std::fs::write(&conf, "[media]\ncheck_interval_ms = 100\n").unwrap();
    conf
}

#[test]
fn a_replaced_file_is_reindexed_never_mixed() {
    let dir = TempDir::new("replace");
    let root = dir.path().join("media");
    std::fs::create_dir(&root).unwrap();
    let m = media();
    std::fs::copy(m.join("bframes.mp4"), root.join("swap.mp4")).unwrap();
    let conf = config_with_fast_checks(&dir);
    let s = Server::start(bin(), &root, &["--config", conf.to_str().unwrap()]);
    let before = get(s.addr, "/vod/swap/hls/master.m3u8");
    assert_eq!(before.status, 200);
    assert!(before.text().contains("a2.m3u8"));
    let seg_before = get(s.addr, "/vod/swap/cmaf/v1/1.m4s");

    // Replace atomically with a video-only file, as a deploy would.
    std::fs::copy(m.join("video-only.mp4"), root.join("swap.tmp")).unwrap();
    std::fs::rename(root.join("swap.tmp"), root.join("swap.mp4")).unwrap();
    std::thread::sleep(Duration::from_millis(250));

    let after = get(s.addr, "/vod/swap/hls/master.m3u8");
    assert_eq!(after.status, 200);
    assert!(
        !after.text().contains("a2.m3u8"),
        "stale manifest: {}",
        after.text()
    );
    assert_ne!(before.header("etag"), after.header("etag"));
    assert_eq!(get(s.addr, "/vod/swap/hls/a2.m3u8").status, 404);
    // The video samples are the same bytes, but the file is new: a new ETag.
    let seg_after = get(s.addr, "/vod/swap/cmaf/v1/1.m4s");
    assert_eq!(seg_after.status, 200);
    assert_ne!(seg_before.header("etag"), seg_after.header("etag"));

    // Removed: 404 after the next check.
    std::fs::remove_file(root.join("swap.mp4")).unwrap();
    std::thread::sleep(Duration::from_millis(250));
    assert_eq!(get(s.addr, "/vod/swap/hls/master.m3u8").status, 404);
}

#[test]
fn concurrent_first_requests_index_once() {
    let dir = TempDir::new("once");
    std::fs::copy(media().join("bframes.mp4"), dir.path().join("fresh.mp4")).unwrap();
    let s = Server::start(bin(), dir.path(), &["--threads", "2"]);
    let addr = s.addr;
    let threads: Vec<_> = (0..16)
        .map(|i| {
            std::thread::spawn(move || {
                let path = if i % 2 == 0 {
                    "/vod/fresh/hls/master.m3u8"
                } else {
                    "/vod/fresh/cmaf/v1/2.m4s"
                };
                get(addr, path).status
            })
        })
        .collect();
    for t in threads {
        assert_eq!(t.join().unwrap(), 200);
    }
    assert!(s.wait_for_log("indexed file=", Duration::from_secs(5)));
    let indexed = s
        .log()
        .iter()
        .filter(|l| l.contains("indexed file=") && l.contains("fresh.mp4"))
        .count();
    assert_eq!(indexed, 1, "{:?}", s.log());
}

/// Rewrites every `stco` entry of an MP4 so the sample table points into
/// the `moov` box: offsets inside the file, but not at media data.
fn pointing_at_junk(mp4: &[u8]) -> Vec<u8> {
    let mut out = mp4.to_vec();
    let moov = out.windows(4).position(|w| w == b"moov").expect("moov") as u32;
    let mut at = 0;
    let mut patched = 0;
    while let Some(p) = out[at..].windows(4).position(|w| w == b"stco") {
        let p = at + p;
        // size(4) type(4) version/flags(4) count(4) offsets...
        let count = u32::from_be_bytes(out[p + 8..p + 12].try_into().unwrap()) as usize;
        for i in 0..count {
            let o = p + 12 + 4 * i;
            out[o..o + 4].copy_from_slice(&(moov + 16).to_be_bytes());
        }
        patched += 1;
        at = p + 4;
    }
    assert!(patched > 0, "no stco box to patch");
    out
}

/// A sample table whose offsets lie inside the file but outside every
/// `mdat` is refused when the file is indexed, with a 422 naming it, for
/// fMP4 and TS alike: never a 200 of junk, never a 500 (issue 22, item 8).
#[test]
fn offsets_that_point_outside_the_media_data_are_422() {
    let dir = TempDir::new("junk-offsets");
    let bytes = std::fs::read(media().join("bframes.mp4")).unwrap();
    std::fs::write(dir.path().join("junk.mp4"), pointing_at_junk(&bytes)).unwrap();
    let s = Server::start(bin(), dir.path(), &[]);
    for path in [
        "/vod/junk/hls/master.m3u8",
        "/vod/junk/cmaf/v1/1.m4s",
        "/vod/junk/hls-ts/master.m3u8",
        "/vod/junk/ts/v1.a2/1.ts",
    ] {
        let r = get(s.addr, path);
        assert_eq!(r.status, 422, "{path}: {}", r.text());
        assert!(
            r.text().contains("outside the media data"),
            "{path}: {}",
            r.text()
        );
    }
}

/// Nothing under the media root reaches outside it through a symlink,
/// file or directory, unless `media.symlinks` allows it; the admin API
/// refuses the same paths (issue 22, item 5).
#[test]
fn symlinks_do_not_leave_the_media_root() {
    use std::os::unix::fs::symlink;
    let dir = TempDir::new("symlinks");
    let root = dir.path().join("media");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let m = media();
    std::fs::copy(m.join("bframes.mp4"), outside.join("fs.mp4")).unwrap();
    std::fs::copy(m.join("bframes.mp4"), root.join("inside.mp4")).unwrap();
    symlink(outside.join("fs.mp4"), root.join("outlink.mp4")).unwrap();
    symlink(&outside, root.join("outdir")).unwrap();
    symlink("inside.mp4", root.join("inlink.mp4")).unwrap();
    std::fs::create_dir(root.join("multi")).unwrap();
    symlink(outside.join("fs.mp4"), root.join("multi/v.mp4")).unwrap();

    let conf = dir.path().join("h.toml");
    let token = "admin-token-for-symlink-tests-01";
    let db = format!("sqlite://{}", dir.path().join("catalog.db").display());
    let serve = |policy: &str| {
        std::fs::write(&conf, format!("[media]\nsymlinks = \"{policy}\"\n")).unwrap();
        Server::start(
            bin(),
            &root,
            &[
                "--config",
                conf.to_str().unwrap(),
                "--admin-listen",
                "127.0.0.1:0",
                "--admin-token",
                token,
                "--database",
                &db,
            ],
        )
    };
    let page = |s: &Server, a: &str| get(s.addr, &format!("/vod/{a}/hls/master.m3u8")).status;

    let s = serve("refuse");
    assert_eq!(page(&s, "inside"), 200);
    for a in ["outlink", "inlink", "outdir", "multi"] {
        assert_eq!(page(&s, a), 404, "{a}");
    }
    let api = headwater_testkit::admin::Api::new(s.admin_addr(), token);
    for (id, path) in [
        ("a1", "outdir/fs.mp4"),
        ("a2", "outlink.mp4"),
        ("a3", "../outside/fs.mp4"),
    ] {
        let body = format!(r#"{{"id": "{id}", "sources": [{{"path": "{path}"}}]}}"#);
        let r = api.call("POST", "/api/v1/assets", Some(&body));
        assert!(
            matches!(r.status, 400 | 422),
            "{path}: {} {}",
            r.status,
            r.body
        );
    }
    drop(s);

    // Links that stay inside the root, when allowed; never the others.
    let s = serve("within_root");
    assert_eq!(page(&s, "inlink"), 200);
    for a in ["outlink", "outdir", "multi"] {
        assert_eq!(page(&s, a), 404, "{a}");
    }
    drop(s);

    // The operator who asks for it gets every link followed.
    let s = serve("follow");
    for a in ["outlink", "inlink", "multi"] {
        assert_eq!(page(&s, a), 200, "{a}");
    }
}
