//! Crash safety: `kill -9` during catalog writes and during an upload.
//! Every write the API acknowledged is there after a restart; a killed or
//! broken upload leaves no file that anything can see, and start-up
//! removes its temporary file. A full disk refuses an upload cleanly and
//! the same upload succeeds once space returns.

use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use headwater_testkit::admin::Api;
use headwater_testkit::server::Server;
use headwater_testkit::{ffmpeg, scratch_dir, within};
use serde_json::Value;

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");
const ADMIN: &str = "admin-token-for-crash-tests-0123";

#[test]
fn acknowledged_catalog_writes_survive_kill_9() {
    let d = scratch_dir("crash-writes");
    let s = Server::start_in(HEADWATER.as_ref(), &d, ADMIN, &[]);
    let api = Arc::new(Api::new(s.admin_addr(), ADMIN));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (api, acked) = (api.clone(), acked.clone());
        writers.push(std::thread::spawn(move || {
            for i in 0.. {
                let name = format!("w{w}-{i}");
                let body = format!(
                    r#"{{"name": "{name}", "frame_rate": 25, "keyframe_interval_secs": 2,
                        "rungs": [{{"name": "a", "width": 320, "height": 180, "video_bitrate_kbps": 300}}]}}"#
                );
                match api.try_call("POST", "/api/v1/ladders", Some(&body)) {
                    Some(r) if r.status == 201 => acked.lock().unwrap().push(name),
                    Some(r) => panic!("{}: {}", r.status, r.body),
                    None => return,
                }
            }
        }));
    }
    // Let them write for a while, then crash the server mid-stream.
    let t = Instant::now();
    while acked.lock().unwrap().len() < 60 && t.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    s.kill9();
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 60,
        "only {} writes before the kill",
        acked.len()
    );
    let s = Server::start_in(HEADWATER.as_ref(), &d, ADMIN, &[]);
    let api = Api::new(s.admin_addr(), ADMIN);
    let stored: Value =
        serde_json::from_str(&api.call("GET", "/api/v1/ladders", None).body).unwrap();
    let names: Vec<&str> = stored
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect();
    let lost: Vec<&String> = acked
        .iter()
        .filter(|n| !names.contains(&n.as_str()))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after kill -9: {lost:?}"
    );
}

fn mezzanine(d: &Path) -> Vec<u8> {
    let path = d.join("mezz.mp4");
    ffmpeg::mezzanine(&path, "320x180", 4, &[]);
    std::fs::read(path).unwrap()
}

fn files_under(p: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(p) {
        for e in rd.flatten() {
            if e.path().is_dir() {
                out.extend(files_under(&e.path()));
            } else {
                out.push(e.path());
            }
        }
    }
    out
}

/// Sends the head of an upload and the first half of its body.
fn half_upload(admin: std::net::SocketAddr, body: &[u8]) -> TcpStream {
    let mut c = TcpStream::connect(admin).unwrap();
    let head = format!(
        "PUT /api/v1/assets/up/source HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    c.write_all(&body[..body.len() / 2]).unwrap();
    c
}

#[test]
fn killed_and_broken_uploads_leave_nothing_visible() {
    let d = scratch_dir("crash-upload");
    let body = mezzanine(&d);
    let hw = d.join("media/.headwater");
    let s = Server::start_in(HEADWATER.as_ref(), &d, ADMIN, &[]);
    let admin = s.admin_addr();

    // kill -9 with half the body sent.
    let c = half_upload(admin, &body);
    assert!(
        within(Duration::from_secs(10), || !files_under(&hw.join("tmp"))
            .is_empty())
        .is_some(),
        "the upload never reached the temporary directory"
    );
    s.kill9();
    drop(c);
    assert!(
        files_under(&hw.join("assets")).is_empty(),
        "{:?}",
        files_under(&hw)
    );
    let s = Server::start_in(HEADWATER.as_ref(), &d, ADMIN, &[]);
    let api = Api::new(s.admin_addr(), ADMIN);
    assert!(
        files_under(&hw.join("tmp")).is_empty(),
        "start-up left {:?}",
        files_under(&hw)
    );
    assert_eq!(api.call("GET", "/api/v1/assets/up", None).status, 404);

    // A client that hangs up mid-body: the temporary file goes at once.
    let c = half_upload(s.admin_addr(), &body);
    assert!(
        within(Duration::from_secs(10), || !files_under(&hw.join("tmp"))
            .is_empty())
        .is_some()
    );
    drop(c);
    assert!(
        within(Duration::from_secs(10), || files_under(&hw.join("tmp"))
            .is_empty())
        .is_some(),
        "a broken upload left {:?}",
        files_under(&hw)
    );
    assert!(files_under(&hw.join("assets")).is_empty());

    // A wrong checksum is refused and leaves nothing.
    let r = api.raw(
        "PUT",
        "/api/v1/assets/up/source",
        &[
            "Content-Type: application/octet-stream",
            &format!("X-Checksum-SHA256: {}", "0".repeat(64)),
        ],
        Some(&body),
    );
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.body.contains("checksum_mismatch"), "{}", r.body);
    assert!(files_under(&hw).is_empty(), "{:?}", files_under(&hw));
    // Not media: a 422, and nothing kept.
    let r = api.raw(
        "PUT",
        "/api/v1/assets/up/source",
        &["Content-Type: application/octet-stream"],
        Some(b"this is not an mp4 file at all"),
    );
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(files_under(&hw).is_empty(), "{:?}", files_under(&hw));

    // A complete upload lands, with its checksum, and is served.
    let sum = {
        let out = std::process::Command::new("sha256sum")
            .arg(d.join("mezz.mp4"))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout)[..64].to_owned()
    };
    let r = api.raw(
        "PUT",
        "/api/v1/assets/up/source?title=Uploaded",
        &[
            "Content-Type: application/octet-stream",
            &format!("X-Checksum-SHA256: {sum}"),
        ],
        Some(&body),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).unwrap();
    assert_eq!(v["sha256"], sum.as_str());
    assert_eq!(v["bytes"], body.len());
    assert_eq!(v["asset"]["title"], "Uploaded");
    assert_lands(&s, &hw, &body);
}

#[test]
fn uploads_over_the_limit_are_refused() {
    let d = scratch_dir("crash-limit");
    std::fs::write(d.join("small.toml"), "[uploads]\nmax_upload_mb = 1\n").unwrap();
    let conf = d.join("small.toml");
    let s = Server::start_in(
        HEADWATER.as_ref(),
        &d,
        ADMIN,
        &["--config", conf.to_str().unwrap()],
    );
    // Refused from Content-Length alone, before any of the body is read.
    let mut c = TcpStream::connect(s.admin_addr()).unwrap();
    let head = format!(
        "PUT /api/v1/assets/big/source HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer {ADMIN}\r\n\
         Content-Type: application/octet-stream\r\nContent-Length: 1200000\r\n\r\n"
    );
    c.write_all(head.as_bytes()).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut resp = Vec::new();
    let _ = std::io::Read::read_to_end(&mut c, &mut resp);
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    assert!(files_under(&d.join("media/.headwater")).is_empty());
}

/// An upload onto a full disk (the media root on a small tmpfs): `507
/// insufficient_storage`, no file left anywhere, no asset; the server
/// serves on, and once space returns the same upload lands and plays.
#[test]
fn an_upload_onto_a_full_disk_is_refused_cleanly_and_retried() {
    let d = scratch_dir("disk-full-upload");
    let path = d.join("mezz.mp4");
    ffmpeg::mezzanine(&path, "320x180", 4, &["-b:v", "2M"]);
    let body = std::fs::read(path).unwrap();
    let media = d.join("media");
    let disk = headwater_testkit::Tmpfs::mount(&media, "512k");
    assert!(body.len() > 512 << 10, "the upload is larger than the disk");
    let s = Server::start_in(HEADWATER.as_ref(), &d, ADMIN, &[]);
    let api = Api::new(s.admin_addr(), ADMIN);
    let put = || {
        api.raw(
            "PUT",
            "/api/v1/assets/up/source",
            &["Content-Type: application/octet-stream"],
            Some(&body),
        )
    };
    let r = put();
    assert_eq!(r.status, 507, "{}", r.body);
    assert!(r.body.contains("insufficient_storage"), "{}", r.body);
    let hw = media.join(".headwater");
    assert!(files_under(&hw).is_empty(), "{:?}", files_under(&hw));
    assert_eq!(api.call("GET", "/api/v1/assets/up", None).status, 404);
    assert_eq!(
        headwater_testkit::http::get(s.addr, "/vod/up/hls/master.m3u8").status,
        404
    );

    disk.resize("64m");
    let r = put();
    assert_eq!(r.status, 201, "{}", r.body);
    assert_lands(&s, &hw, &body);
}

/// The upload of `body` as asset `up` is stored whole under `hw` and is
/// served within a second.
fn assert_lands(s: &Server, hw: &Path, body: &[u8]) {
    assert_eq!(
        std::fs::read(hw.join("assets/up/source.mp4")).unwrap(),
        body
    );
    assert!(
        within(Duration::from_secs(1), || {
            headwater_testkit::http::get(s.addr, "/vod/up/hls/master.m3u8").status == 200
        })
        .is_some()
    );
}
