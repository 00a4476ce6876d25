//! A library in object storage (issue 20): the same directory layout in a
//! bucket of a real S3-compatible server (s3s-fs, started here) is served
//! byte for byte as it is from disk, every resource of every kind; a
//! replaced object is indexed again and never mixed with the old one; and
//! a storage that stops answering gets `503`/`504` with `Retry-After`,
//! `/readyz` says so, and service resumes by itself.

use std::path::Path;
use std::time::Duration;

use headwater_testkit::http::{Conn, Response, get, resources};
use headwater_testkit::s3::{S3, library, serve_bucket};
use headwater_testkit::server::Server;
use headwater_testkit::{TempDir, media, within};

const ASSETS: [&str; 5] = ["bframes", "muxed", "ladder", "subs", "tx3g"];

/// Starts headwater on the bucket, with small chunks so that segments
/// span several, and a short storage timeout.
/// `objects.toml` in `dir`: `[media]` with `extra` (lines) and the chunk
/// cache in `dir/chunks`.
fn config_in(dir: &Path, extra: &str) -> std::path::PathBuf {
    let config = dir.join("objects.toml");
    let cache = dir.join("chunks");
    let text = format!(
        "[media]\n{extra}object_cache_dir = {:?}\n",
        cache.to_str().unwrap()
    );
    std::fs::write(&config, text).unwrap();
    config
}

fn on_bucket(s3: &S3, dir: &Path) -> Server {
    let config = config_in(
        dir,
        "object_chunk_kb = 64\nobject_cache_mb = 64\nobject_timeout_ms = 1500\ncheck_interval_ms = 200\n",
    );
    serve_bucket(env!("CARGO_BIN_EXE_headwater").as_ref(), s3, &config, &[])
}

fn same(a: &Response, b: &Response, what: &str) {
    assert_eq!(a.status, b.status, "{what}: status");
    assert_eq!(a.header("etag"), b.header("etag"), "{what}: ETag");
    assert_eq!(a.header("content-type"), b.header("content-type"), "{what}");
    assert!(
        a.body == b.body,
        "{what}: {} vs {} bytes",
        a.body.len(),
        b.body.len()
    );
}

#[test]
fn a_bucket_is_served_byte_for_byte_as_the_same_files_on_disk() {
    let dir = TempDir::new("objects-same");
    let (s3_root, disk) = library(dir.path(), &ASSETS);
    let s3 = S3::start(&s3_root);
    let remote = on_bucket(&s3, dir.path());
    let local = Server::start(env!("CARGO_BIN_EXE_headwater").as_ref(), &disk, &[]);
    let mut count = 0;
    for asset in ASSETS {
        let paths = resources(local.addr, asset);
        assert!(paths.len() > 5, "{asset}: {paths:?}");
        for path in &paths {
            same(&get(local.addr, path), &get(remote.addr, path), path);
            count += 1;
        }
        // Ranges of the largest segment: its middle third (across chunk
        // boundaries when it is large enough), and a suffix.
        let (seg, len) = paths
            .iter()
            .filter(|p| p.ends_with(".m4s"))
            .map(|p| (p, get(local.addr, p).body.len()))
            .max_by_key(|(_, len)| *len)
            .unwrap();
        let middle = format!("Range: bytes={}-{}", len / 3, 2 * len / 3);
        for range in [middle.as_str(), "Range: bytes=-1000"] {
            let a = Conn::open(local.addr).request("GET", seg, &[range]);
            let b = Conn::open(remote.addr).request("GET", seg, &[range]);
            same(&a, &b, &format!("{seg} {range}"));
            assert_eq!(a.status, 206);
        }
    }
    assert!(count > 100, "only {count} resources compared");
    // The payload came through the chunk cache, in chunks of 64 KiB.
    let chunks: Vec<_> = walk(&dir.path().join("chunks"));
    assert!(!chunks.is_empty(), "no chunk files");
    assert!(
        chunks
            .iter()
            .all(|(name, len)| !name.ends_with(".part") && *len <= 64 << 10)
    );
}

/// (name, length) of the files under `dir`, recursively.
fn walk(dir: &Path) -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let m = e.metadata().unwrap();
        if m.is_dir() {
            out.extend(walk(&e.path()));
        } else {
            out.push((e.file_name().to_string_lossy().into_owned(), m.len()));
        }
    }
    out
}

#[test]
fn a_replaced_object_is_indexed_again_and_never_mixed_with_the_old() {
    let dir = TempDir::new("objects-replaced");
    let (s3_root, disk) = library(dir.path(), &["bframes", "muxed"]);
    let s3 = S3::start(&s3_root);
    let remote = on_bucket(&s3, dir.path());
    let seg = "/vod/bframes/cmaf/v1/2.m4s";
    let before = get(remote.addr, seg);
    assert_eq!(before.status, 200);
    // Another file under the same key.
    let object = s3_root.join("media/lib/bframes.mp4");
    std::fs::copy(media().join("muxed.mp4"), &object).unwrap();
    std::fs::copy(media().join("muxed.mp4"), disk.join("bframes.mp4")).unwrap();
    let local = Server::start(env!("CARGO_BIN_EXE_headwater").as_ref(), &disk, &[]);
    let changed = within(Duration::from_secs(20), || {
        get(remote.addr, "/vod/bframes/hls/master.m3u8").header("etag")
            == get(local.addr, "/vod/bframes/hls/master.m3u8").header("etag")
    });
    assert!(changed.is_some(), "the new object was not indexed");
    for path in resources(local.addr, "bframes") {
        same(&get(local.addr, &path), &get(remote.addr, &path), &path);
    }
    assert_ne!(get(remote.addr, seg).header("etag"), before.header("etag"));
}

#[test]
fn storage_down_is_503_or_504_with_retry_after_and_service_resumes() {
    let dir = TempDir::new("objects-down");
    let (s3_root, _) = library(dir.path(), &["bframes", "muxed"]);
    let mut s3 = S3::start(&s3_root);
    let remote = on_bucket(&s3, dir.path());
    assert_eq!(get(remote.addr, "/vod/bframes/cmaf/v1/1.m4s").status, 200);
    assert_eq!(get(remote.addr, "/readyz").status, 200);
    s3.stop();
    // Not indexed yet, and a segment whose chunks are not cached.
    for path in [
        "/vod/muxed/hls/master.m3u8",
        "/vod/bframes/cmaf/v1/3.m4s",
        "/vod/bframes/ts/v1.a2/3.ts",
    ] {
        let r = get(remote.addr, path);
        assert!(matches!(r.status, 503 | 504), "{path}: {}", r.status);
        assert_eq!(r.header("retry-after"), Some("2"), "{path}");
    }
    let not_ready = within(Duration::from_secs(10), || {
        get(remote.addr, "/readyz").status == 503
    });
    assert!(not_ready.is_some(), "/readyz still says ready");
    // What was cached is still served.
    assert_eq!(get(remote.addr, "/vod/bframes/cmaf/v1/1.m4s").status, 200);
    s3.restart();
    let back = within(Duration::from_secs(20), || {
        get(remote.addr, "/readyz").status == 200
            && get(remote.addr, "/vod/muxed/hls/master.m3u8").status == 200
            && get(remote.addr, "/vod/bframes/cmaf/v1/3.m4s").status == 200
    });
    assert!(back.is_some(), "service did not resume");
}

#[test]
fn storage_that_never_answers_is_504_within_the_timeout() {
    let dir = TempDir::new("objects-silent");
    // Accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = silent.local_addr().unwrap();
    let held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for c in silent.incoming().take(16) {
            open.push(c);
        }
    });
    let config = config_in(dir.path(), "object_timeout_ms = 1000\n");
    let endpoint = format!("http://{addr}");
    let s = Server::start_env(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        Path::new("s3://media"),
        &["--config", config.to_str().unwrap()],
        &[
            ("AWS_ENDPOINT_URL", Some(&endpoint)),
            ("AWS_ACCESS_KEY_ID", Some("k")),
            ("AWS_SECRET_ACCESS_KEY", Some("s")),
            ("AWS_REGION", Some("us-east-1")),
        ],
    );
    // The client's own read timeout (testkit) is far longer than 1 s.
    let r = get(s.addr, "/vod/bframes/hls/master.m3u8");
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("2"));
    assert_eq!(get(s.addr, "/readyz").status, 503);
    drop(s);
    drop(held);
}

#[test]
fn uploads_land_in_the_bucket_and_catalog_assets_name_its_objects() {
    use headwater_testkit::admin::Api;
    const TOKEN: &str = "objects-admin-token-0123456789";
    let dir = TempDir::new("objects-catalog");
    let (s3_root, _) = library(dir.path(), &["bframes"]);
    let s3 = S3::start(&s3_root);
    let database = headwater_testkit::server::sqlite_in(dir.path());
    let config = config_in(dir.path(), "");
    let args = headwater_testkit::server::admin_args(TOKEN, &database);
    let s = serve_bucket(
        env!("CARGO_BIN_EXE_headwater").as_ref(),
        &s3,
        &config,
        &args,
    );
    let api = Api::new(s.admin_addr(), TOKEN);
    assert_eq!(api.call("GET", "/readyz", None).status, 200);

    // An upload is probed locally, then put into the bucket, and served.
    let body = std::fs::read(media().join("muxed.mp4")).unwrap();
    let r = api.raw(
        "PUT",
        "/api/v1/assets/up/source",
        &["Content-Type: application/octet-stream"],
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let object = s3_root.join("media/lib/.headwater/assets/up/source.mp4");
    assert!(
        std::fs::read(&object).unwrap() == body,
        "the object is not the upload"
    );
    let served = within(Duration::from_secs(5), || {
        get(s.addr, "/vod/up/hls/master.m3u8").status == 200
    });
    assert!(served.is_some(), "the uploaded asset is not served");
    assert_eq!(get(s.addr, "/vod/up/cmaf/v1/1.m4s").status, 200);
    let parts: Vec<_> = walk(&dir.path().join("chunks/control"))
        .into_iter()
        .filter(|(name, _)| name.ends_with(".part"))
        .collect();
    assert!(parts.is_empty(), "left behind: {parts:?}");

    // A catalog asset whose source is a key in the bucket.
    let r = api.call(
        "POST",
        "/api/v1/assets",
        Some(r#"{"id":"cat","sources":[{"path":"bframes.mp4"}]}"#),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(r.body.contains("avc1"), "{}", r.body);
    let missing = api.call(
        "POST",
        "/api/v1/assets",
        Some(r#"{"id":"gone","sources":[{"path":"nothing.mp4"}]}"#),
    );
    assert_eq!(missing.status, 422, "{}", missing.body);
    // A full URL of the library names the same key; another bucket does not.
    let by_url = api.call(
        "POST",
        "/api/v1/assets",
        Some(r#"{"id":"url","sources":[{"path":"s3://media/lib/bframes.mp4"}],"require_token":true}"#),
    );
    assert_eq!(by_url.status, 201, "{}", by_url.body);
    let other = api.call(
        "POST",
        "/api/v1/assets",
        Some(r#"{"id":"other","sources":[{"path":"s3://elsewhere/bframes.mp4"}]}"#),
    );
    assert_eq!(other.status, 422, "{}", other.body);
    assert!(other.body.contains("bucket"), "{}", other.body);
    // Its source is token-protected: not served as the directory-mode
    // asset of the same key, nor through the asset without a token.
    let protected = within(Duration::from_secs(5), || {
        get(s.addr, "/vod/bframes/hls/master.m3u8").status == 404
            && get(s.addr, "/vod/url/hls/master.m3u8").status == 403
    });
    assert!(
        protected.is_some(),
        "a protected object is reachable another way"
    );
    assert_eq!(api.call("DELETE", "/api/v1/assets/url", None).status, 204);
    // Eight viewers at once for a segment of an object none of whose
    // chunks is held: one GET per chunk (4 MiB chunks: one or two for a
    // segment of this file), not one per viewer.
    let metric = |name: &str| -> f64 {
        let text = api.call("GET", "/metrics", None).body;
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name} not in /metrics"))
    };
    let listed = within(Duration::from_secs(5), || {
        get(s.addr, "/vod/cat/hls/master.m3u8").status == 200
    });
    assert!(listed.is_some(), "the catalog asset is not served");
    let fetches = metric("headwater_object_chunk_fetches_total");
    let hits = metric("headwater_object_chunk_hits_total");
    let viewers: Vec<_> = (0..8)
        .map(|_| {
            let addr = s.addr;
            std::thread::spawn(move || get(addr, "/vod/cat/cmaf/v1/2.m4s"))
        })
        .collect();
    let bodies: Vec<_> = viewers.into_iter().map(|v| v.join().unwrap()).collect();
    let fetched = metric("headwater_object_chunk_fetches_total") - fetches;
    assert!(
        (1.0..=2.0).contains(&fetched),
        "{fetched} chunk fetches for one segment"
    );
    assert!(metric("headwater_object_chunk_hits_total") - hits >= 8.0 - fetched);
    assert!(metric("headwater_object_fetched_bytes_total") > 0.0);
    assert!(metric("headwater_object_cache_bytes") > 0.0);
    assert_eq!(metric("headwater_object_storage_up"), 1.0);
    // And what they got is what the directory-mode asset of the same key gives.
    let again = within(Duration::from_secs(5), || {
        get(s.addr, "/vod/bframes/cmaf/v1/2.m4s").status == 200
    });
    assert!(
        again.is_some(),
        "the key is not served again once unprotected"
    );
    let direct = get(s.addr, "/vod/bframes/cmaf/v1/2.m4s");
    for b in &bodies {
        assert_eq!(b.status, 200);
        assert!(b.body == direct.body);
    }

    // Transcodes write files: refused, and said why.
    let r = api.call(
        "POST",
        "/api/v1/assets/up/transcode",
        Some(r#"{"ladder":"l"}"#),
    );
    assert_eq!(r.status, 501, "{}", r.body);
}
