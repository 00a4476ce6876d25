//! Upgrades drop nothing: `SIGUSR2` starts the binary now installed at the
//! path the server was started from, on the same listening sockets; once it
//! is ready the old process stops accepting, finishes what it holds and
//! exits. A `loadtest` run and a stream of admin API writes across the
//! upgrade see no error.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::server::Server;
use headwater_testkit::{media, scratch_dir, within, workspace_bin};
use serde_json::Value;

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");
const ADMIN: &str = "admin-token-for-upgrade-tests-0123";

/// The new process, stopped when the test ends however it ends.
struct Successor(u32);

impl Drop for Successor {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.0.to_string())
            .status();
        within(Duration::from_secs(20), || !alive(self.0));
    }
}

fn alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
        && !std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
}

/// Installs the binary at `to` as a package upgrade does: a new file
/// renamed over the path, so a running process keeps its old inode.
fn install(to: &Path) {
    let tmp = to.with_extension("new");
    std::fs::copy(HEADWATER, &tmp).unwrap();
    std::fs::rename(&tmp, to).unwrap();
}

#[test]
fn an_upgrade_under_load_drops_no_request() {
    let d = scratch_dir("upgrade");
    std::fs::create_dir_all(d.join("bin")).unwrap();
    let bin = d.join("bin/headwater");
    install(&bin);
    std::fs::copy(media().join("bframes.mp4"), d.join("media/bframes.mp4")).unwrap();
    let mut s = Server::start_in(&bin, &d, ADMIN, &[]);
    let api = Arc::new(Api::new(s.admin_addr(), ADMIN));
    let old_pid = s.pid();

    // Admin writes all the way through: each acknowledged, none refused.
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let writes = {
        let (api, stop, failures) = (api.clone(), stop.clone(), failures.clone());
        std::thread::spawn(move || {
            let mut n = 0;
            while !stop.load(Ordering::Relaxed) {
                let body = format!(
                    r#"{{"name": "l{n}", "frame_rate": 25, "keyframe_interval_secs": 2,
                        "rungs": [{{"name": "a", "width": 320, "height": 180, "video_bitrate_kbps": 300}}]}}"#
                );
                match api.try_call("POST", "/api/v1/ladders", Some(&body)) {
                    Some(r) if r.status == 201 => n += 1,
                    Some(r) => failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {}", r.status, r.body)),
                    None => failures
                        .lock()
                        .unwrap()
                        .push(format!("ladder l{n}: no answer")),
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            n
        })
    };

    let load = Command::new(workspace_bin("loadtest"))
        .arg("segments")
        .arg(s.url("/vod/bframes/hls/master.m3u8"))
        .args([
            "-c",
            "16",
            "-d",
            "8s",
            "--json",
            "-q",
            "--max-error-rate",
            "0",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    install(&bin);
    s.signal("USR2");
    let new_pid: u32 = s
        .logged(
            "the new process is ready",
            "new_pid",
            Duration::from_secs(30),
        )
        .parse()
        .expect("a pid");
    let _successor = Successor(new_pid);
    assert_ne!(new_pid, old_pid);
    assert!(
        within(Duration::from_secs(30), || !s.alive()).is_some(),
        "the old process did not exit after handing over"
    );
    // The new process runs the file now installed; the old one ran the
    // file that was replaced.
    let exe = std::fs::read_link(format!("/proc/{new_pid}/exe")).unwrap();
    assert_eq!(exe, bin.canonicalize().unwrap());

    let out = load.wait_with_output().unwrap();
    stop.store(true, Ordering::Relaxed);
    let written = writes.join().unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "loadtest: {e}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let run = &report["runs"][0];
    assert_eq!(
        run["failed"], 0,
        "loadtest saw errors across the upgrade: {report:#}"
    );
    assert!(run["ok"].as_u64().unwrap() > 100, "{report:#}");
    assert!(out.status.success(), "{report:#}");
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "admin writes failed across the upgrade: {failures:?}"
    );
    assert!(written > 50, "only {written} admin writes");

    // Both planes answer from the new process on the same ports, and every
    // acknowledged write is there.
    let r = headwater_testkit::http::get(s.addr, "/vod/bframes/hls/master.m3u8");
    assert_eq!(r.status, 200);
    let ladders: Value =
        serde_json::from_str(&api.call("GET", "/api/v1/ladders", None).body).unwrap();
    assert_eq!(ladders.as_array().unwrap().len(), written);
}
