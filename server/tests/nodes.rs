//! Several nodes behind a real CDN (issue 20): three headwater nodes on one
//! bucket (s3s-fs) and one PostgreSQL catalog answer every VOD URL with the
//! same bytes and ETags; Debian's Varnish with the shipped
//! `conf/varnish.vcl` in front of them loses no request when a node is
//! killed with `kill -9` mid-run, and serves a warm set from its cache.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::http::{get, resources};
use headwater_testkit::postgres::Postgres;
use headwater_testkit::s3::{S3, library, serve_bucket};
use headwater_testkit::server::{Server, admin_args};
use headwater_testkit::varnish::Varnish;
use headwater_testkit::{TempDir, within, workspace_bin};

const TOKEN: &str = "nodes-admin-token-0123456789";
const ASSETS: [&str; 3] = ["bframes", "muxed", "ladder"];

/// Three nodes on the bucket, each with its own chunk cache; with a
/// PostgreSQL catalog when `database` is given.
fn nodes(s3: &S3, dir: &Path, database: Option<&str>) -> Vec<Server> {
    (0..3)
        .map(|i| {
            let config = dir.join(format!("node{i}.toml"));
            std::fs::write(
                &config,
                format!(
                    "[media]\nobject_chunk_kb = 256\nobject_cache_dir = {:?}\n",
                    dir.join(format!("chunks{i}")).to_str().unwrap()
                ),
            )
            .unwrap();
            let args: Vec<&str> = match database {
                Some(db) => admin_args(TOKEN, db).to_vec(),
                None => Vec::new(),
            };
            serve_bucket(env!("CARGO_BIN_EXE_headwater").as_ref(), s3, &config, &args)
        })
        .collect()
}

#[test]
fn three_nodes_on_one_bucket_and_catalog_answer_every_url_alike() {
    let dir = TempDir::new("nodes-same");
    let (s3_root, _) = library(dir.path(), &ASSETS);
    let s3 = S3::start(&s3_root);
    let pg = Postgres::start();
    let database = pg.database("nodes");
    let n = nodes(&s3, dir.path(), Some(&database));
    // A catalog asset made on one node, over a key in the bucket.
    let r = Api::new(n[0].admin_addr(), TOKEN).call(
        "POST",
        "/api/v1/assets",
        Some(r#"{"id":"cat","sources":[{"path":"muxed.mp4"}]}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    for s in &n[1..] {
        let seen = within(Duration::from_secs(10), || {
            get(s.addr, "/vod/cat/hls/master.m3u8").status == 200
        });
        assert!(
            seen.is_some(),
            "another node does not see the catalog asset"
        );
    }
    let mut compared = 0;
    for asset in ASSETS.iter().chain(&["cat"]) {
        for path in resources(n[0].addr, asset) {
            let first = get(n[0].addr, &path);
            assert_eq!(first.status, 200, "{path}");
            for s in &n[1..] {
                let other = get(s.addr, &path);
                assert_eq!(other.status, 200, "{path}");
                assert_eq!(other.header("etag"), first.header("etag"), "{path}");
                assert!(other.body == first.body, "{path}: other bytes");
            }
            compared += 1;
        }
    }
    assert!(compared > 100, "only {compared} URLs");
}

/// `loadtest segments` through `front` over the assets' HLS playlists for
/// `secs`; the run's JSON report.
fn load(front: SocketAddr, secs: u32) -> std::process::Child {
    let urls: Vec<String> = ASSETS
        .iter()
        .map(|a| format!("http://{front}/vod/{a}/hls/master.m3u8"))
        .collect();
    Command::new(workspace_bin("loadtest"))
        .arg("segments")
        .args(&urls)
        .args(["-c", "16", "-d", &format!("{secs}s"), "--json", "-q"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn report(child: std::process::Child) -> serde_json::Value {
    let out = child.wait_with_output().unwrap();
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "loadtest: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

#[test]
fn varnish_in_front_loses_nothing_when_a_node_is_killed_and_serves_a_warm_set() {
    let dir = TempDir::new("nodes-varnish");
    let (s3_root, _) = library(dir.path(), &ASSETS);
    let s3 = S3::start(&s3_root);
    let mut n = nodes(&s3, dir.path(), None);
    let addrs: Vec<SocketAddr> = n.iter().map(|s| s.addr).collect();
    let v = Varnish::start(&addrs);
    let healthy = within(Duration::from_secs(20), || {
        get(v.addr, "/vod/bframes/hls/master.m3u8").status == 200
    });
    assert!(healthy.is_some(), "nothing through Varnish");

    // Cold: every miss goes to a node; one node dies mid-run. Besides the
    // load, requests Varnish has never seen (a query it keys on and
    // headwater ignores) keep missing after the kill, so that some of them
    // go to the dead node before its health check fails.
    let segments: Vec<String> = resources(v.addr, "muxed")
        .into_iter()
        .filter(|p| p.ends_with(".m4s"))
        .collect();
    let run = load(v.addr, 8);
    std::thread::sleep(Duration::from_secs(3));
    let failed = v.stat("MAIN.backend_fail");
    n.remove(1).kill9();
    for i in 0..60 {
        let path = format!("{}?miss={i}", segments[i % segments.len()]);
        let r = get(v.addr, &path);
        assert_eq!(r.status, 200, "{path} after a node was killed");
    }
    assert!(
        v.stat("MAIN.backend_fail") > failed,
        "no request went to the killed node (so none was tried again on another)"
    );
    let cold = report(run);
    let r = &cold["runs"][0];
    assert_eq!(r["failed"], 0, "clients saw errors: {cold:#}");
    assert!(r["ok"].as_u64().unwrap() > 50, "{cold:#}");

    // Warm: the same set again is served from Varnish's cache.
    let (hits, misses) = (v.stat("MAIN.cache_hit"), v.stat("MAIN.cache_miss"));
    let warm = report(load(v.addr, 4));
    assert_eq!(warm["runs"][0]["failed"], 0, "{warm:#}");
    let hits = v.stat("MAIN.cache_hit") - hits;
    let misses = v.stat("MAIN.cache_miss") - misses;
    let ratio = hits as f64 / (hits + misses).max(1) as f64;
    assert!(
        ratio >= 0.95 && hits > 100,
        "hit ratio {ratio:.3} ({hits} hits, {misses} misses)"
    );
}

#[test]
fn ll_hls_blocking_reloads_pass_through_varnish_and_are_coalesced() {
    use headwater_testkit::live::{
        self, KEY, ffmpeg_push, media_playlist_path, msn_range, rtmp_url,
    };
    let s = live::start(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &["--stream", &format!("cam:{KEY}")],
    );
    let v = Varnish::start(&[s.addr]);
    let mut publisher = ffmpeg_push(&rtmp_url(s.logged_addr("rtmp"), "cam", KEY), 30, "flv");
    // Asked of the origin first: Varnish would keep a 404 for 10 s.
    let started = within(Duration::from_secs(20), || {
        get(s.addr, "/live/cam/hls/master.m3u8").status == 200
    });
    assert!(started.is_some(), "the stream did not start");
    let media = media_playlist_path(&s, "cam");
    let listed = within(Duration::from_secs(20), || {
        let r = get(v.addr, &media);
        r.status == 200 && msn_range(&r.text()).1 >= 1
    });
    assert!(listed.is_some(), "no live playlist through Varnish");
    // Four viewers block for the segment after the last one listed.
    let next = msn_range(&get(s.addr, &media).text()).1 + 1;
    let blocking = format!("{media}?_HLS_msn={next}&_HLS_part=0");
    let before = v.stat("MAIN.backend_req");
    let viewers: Vec<_> = (0..4)
        .map(|_| {
            let (addr, path) = (v.addr, blocking.clone());
            std::thread::spawn(move || get(addr, &path))
        })
        .collect();
    let answers: Vec<_> = viewers.into_iter().map(|t| t.join().unwrap()).collect();
    let fetched = v.stat("MAIN.backend_req") - before;
    for a in &answers {
        assert_eq!(a.status, 200, "{}", a.text());
        assert!(msn_range(&a.text()).1 >= next, "{}", a.text());
        assert!(
            a.body == answers[0].body,
            "the viewers got different playlists"
        );
    }
    assert!(
        fetched <= 2,
        "{fetched} backend requests for 4 viewers of one blocking reload"
    );
    let _ = publisher.kill();
    let _ = publisher.wait();
}
