//! Running under systemd: `SIGHUP` reloads the config file without
//! dropping anything (connections, held playlist requests, publishers on
//! air), a file that does not load changes nothing, systemd hears
//! READY/RELOADING/STOPPING over `NOTIFY_SOCKET`, and the shipped unit
//! verifies and is sandboxed.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::time::Duration;

use headwater_testkit::admin::Api;
use headwater_testkit::http;
use headwater_testkit::live::wait_until;
use headwater_testkit::live::{ffmpeg_push, get_text, media_playlist_path, msn_range, rtmp_url};
use headwater_testkit::server::Server;

const OLD_KEY: &str = "old-publish-key-0123456789";
const NEW_KEY: &str = "new-publish-key-0123456789";
const OLD_TOKEN: &str = "old-admin-token-0123456789";
const NEW_TOKEN: &str = "new-admin-token-0123456789";

const HEADWATER: &str = env!("CARGO_BIN_EXE_headwater");

/// A config file with these streams (`name:key`), one read-scope admin
/// token, a log level and a CORS origin.
fn config(streams: &[(&str, &str)], token: &str, level: &str, cors: &str) -> String {
    let mut text =
        format!("[log]\nlevel = \"{level}\"\n\n[http]\ncors_allow_origin = \"{cors}\"\n\n");
    for (name, key) in streams {
        text.push_str(&format!(
            "[[ingest.streams]]\nname = \"{name}\"\nkey = \"{key}\"\n\n"
        ));
    }
    text.push_str(&format!(
        "[[admin.tokens]]\nname = \"ops\"\nsha256 = \"{}\"\nscopes = [\"read\"]\n",
        headwater_testkit::admin::sha256_hex(token)
    ));
    text
}

/// A server reading `conf`, with admin and RTMP on loopback, its log filter
/// from the file (no `RUST_LOG`).
fn start(dir: &Path, conf: &Path) -> Server {
    let media = dir.join("media");
    std::fs::create_dir_all(&media).unwrap();
    Server::start_env(
        HEADWATER.as_ref(),
        &media,
        &[
            "--config",
            conf.to_str().unwrap(),
            "--admin-listen",
            "127.0.0.1:0",
            "--rtmp-listen",
            "127.0.0.1:0",
        ],
        &[("RUST_LOG", None)],
    )
}

/// The admin API's answer to the old and the new token.
fn admin_statuses(admin: std::net::SocketAddr) -> (u16, u16) {
    let status = |token| {
        Api::new(admin, token)
            .call("GET", "/api/v1/assets", None)
            .status
    };
    (status(OLD_TOKEN), status(NEW_TOKEN))
}

fn reload(s: &Server, n: usize) {
    s.signal("HUP");
    let done = |s: &Server| {
        s.log()
            .iter()
            .filter(|l| l.contains("config reloaded") || l.contains("config reload refused"))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(10), || done(s) >= n),
        "reload {n} never finished: {:?}",
        s.log()
    );
}

/// Whether ffmpeg's RTMP publish of `stream` with `key` is refused (it exits
/// with an error by itself) rather than published.
fn refused(s: &Server, stream: &str, key: &str) -> bool {
    let mut p = ffmpeg_push(&rtmp_url(s.logged_addr("rtmp"), stream, key), 5, "flv");
    let status = p.wait().unwrap();
    !status.success() && get_text(s, &format!("/live/{stream}/hls/master.m3u8")).0 == 404
}

#[test]
fn sighup_applies_keys_tokens_and_log_level_and_drops_nothing() {
    let dir = headwater_testkit::TempDir::new("reload");
    let conf = dir.path().join("headwater.toml");
    std::fs::write(
        &conf,
        config(
            &[("cam", OLD_KEY), ("spare", OLD_KEY)],
            OLD_TOKEN,
            "info",
            "*",
        ),
    )
    .unwrap();
    let s = start(dir.path(), &conf);
    let admin = s.admin_addr();
    assert_eq!(admin_statuses(admin), (200, 401));

    // A publisher on air, a keep-alive connection, and a playlist request
    // held for a part that does not exist yet: all across the reload.
    let rtmp = s.logged_addr("rtmp");
    let mut on_air = ffmpeg_push(&rtmp_url(rtmp, "cam", OLD_KEY), 40, "flv");
    assert!(wait_until(Duration::from_secs(20), || {
        get_text(&s, "/live/cam/hls/master.m3u8").0 == 200
    }));
    let media = media_playlist_path(&s, "cam");
    assert!(wait_until(Duration::from_secs(20), || {
        msn_range(&get_text(&s, &media).1).1 >= 1
    }));
    let last = msn_range(&get_text(&s, &media).1).1;
    let mut held = http::Conn::open(s.addr);
    held.send(
        format!(
            "GET {media}?_HLS_msn={}&_HLS_part=0 HTTP/1.1\r\nHost: test\r\n\r\n",
            last + 1
        )
        .as_bytes(),
    );
    let mut keep = http::Conn::open(s.addr);
    let before = keep.request("GET", "/time", &[]);
    assert_eq!(before.status, 200);
    assert_eq!(before.header("Access-Control-Allow-Origin"), Some("*"));
    assert_eq!(http::get(s.addr, "/not-here-before").status, 404);

    std::fs::write(
        &conf,
        config(
            &[("cam", NEW_KEY), ("cam2", NEW_KEY)],
            NEW_TOKEN,
            "info,headwater_origin=debug",
            "https://player.example",
        ),
    )
    .unwrap();
    reload(&s, 1);
    let log = s.log();
    assert!(
        log.iter()
            .any(|l| l.contains("takes effect after a restart")
                && l.contains("http.cors_allow_origin")),
        "the restart-only change is not named: {log:?}"
    );
    assert!(
        !log.iter()
            .any(|l| l.contains(NEW_KEY) || l.contains(NEW_TOKEN)),
        "a secret in the log"
    );

    // Nothing was dropped.
    let after = keep.request("GET", "/time", &[]);
    assert_eq!(
        after.status, 200,
        "the keep-alive connection did not survive"
    );
    assert_eq!(
        after.header("Access-Control-Allow-Origin"),
        Some("*"),
        "a restart-only key changed at a reload"
    );
    let answered = held
        .read_response(false)
        .expect("the held request was dropped");
    assert_eq!(answered.status, 200);
    assert!(
        answered.text().contains("#EXT-X-PART:"),
        "{}",
        answered.text()
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            msn_range(&get_text(&s, &media).1).1 >= last + 3
        }),
        "the publisher on air stopped at the reload"
    );
    assert!(
        on_air.try_wait().unwrap().is_none(),
        "the publisher was cut off"
    );

    // The new keys, tokens and log level are in force.
    assert_eq!(admin_statuses(admin), (401, 200));
    assert!(
        refused(&s, "spare", OLD_KEY),
        "a removed stream still publishes"
    );
    let mut new = ffmpeg_push(&rtmp_url(rtmp, "cam2", NEW_KEY), 20, "flv");
    assert!(
        wait_until(Duration::from_secs(20), || {
            get_text(&s, "/live/cam2/hls/master.m3u8").0 == 200
        }),
        "a stream added by the reload cannot publish"
    );
    assert!(!s.log().iter().any(|l| l.contains("/not-here-before")));
    assert_eq!(http::get(s.addr, "/not-here-after").status, 404);
    assert!(
        wait_until(Duration::from_secs(5), || {
            s.log()
                .iter()
                .any(|l| l.contains("request failed") && l.contains("/not-here-after"))
        }),
        "log.level was not applied"
    );
    let metrics = Api::new(admin, NEW_TOKEN)
        .call("GET", "/metrics", None)
        .body;
    assert!(
        metrics.contains("headwater_config_reloads_total{result=\"applied\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("headwater_config_last_reload_successful 1"),
        "{metrics}"
    );
    for p in [&mut on_air, &mut new] {
        let _ = p.kill();
        let _ = p.wait();
    }
}

#[test]
fn a_config_that_does_not_load_is_refused_and_the_running_one_stays() {
    let dir = headwater_testkit::TempDir::new("reload-bad");
    let conf = dir.path().join("headwater.toml");
    std::fs::write(&conf, config(&[("cam", OLD_KEY)], OLD_TOKEN, "info", "*")).unwrap();
    let mut s = start(dir.path(), &conf);
    let admin = s.admin_addr();
    let mut keep = http::Conn::open(s.addr);
    assert_eq!(keep.request("GET", "/time", &[]).status, 200);

    // The new token in a file that is otherwise broken applies nothing.
    let new = |level| config(&[("cam", NEW_KEY)], NEW_TOKEN, level, "*");
    let cases = [
        (format!("{}[server]\nthreds = 2\n", new("info")), "threds"),
        (new("info,headwater=loud"), "log.level"),
        (
            format!("{}[packaging]\nsegment_duration = 0.1\n", new("info")),
            "packaging.segment_duration",
        ),
    ];
    for (i, (text, named)) in cases.iter().enumerate() {
        std::fs::write(&conf, text).unwrap();
        reload(&s, i + 1);
        let log = s.log();
        assert!(
            log.iter()
                .any(|l| l.contains("config reload refused") && l.contains(named)),
            "the refusal does not name {named}: {log:?}"
        );
        assert!(s.alive(), "a bad config ended the server");
        assert_eq!(keep.request("GET", "/time", &[]).status, 200);
        assert_eq!(admin_statuses(admin), (200, 401));
    }
    let metrics = Api::new(admin, OLD_TOKEN)
        .call("GET", "/metrics", None)
        .body;
    assert!(
        metrics.contains("headwater_config_reloads_total{result=\"refused\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("headwater_config_last_reload_successful 0"),
        "{metrics}"
    );
    // A file without the config (deleted by mistake) is refused too.
    std::fs::remove_file(&conf).unwrap();
    reload(&s, cases.len() + 1);
    assert!(
        s.log()
            .iter()
            .any(|l| l.contains("cannot read config file"))
    );
    assert_eq!(admin_statuses(admin), (200, 401));
}

/// Reads one datagram, or `None` after the socket's read timeout.
fn next_state(sock: &UnixDatagram) -> Option<String> {
    let mut buf = [0u8; 512];
    let n = sock.recv(&mut buf).ok()?;
    Some(String::from_utf8_lossy(&buf[..n]).into_owned())
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let dir = headwater_testkit::TempDir::new("notify");
    let path = dir.path().join("notify.sock");
    let sock = UnixDatagram::bind(&path).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let media = dir.path().join("media");
    std::fs::create_dir_all(&media).unwrap();
    let s = Server::start_env(
        HEADWATER.as_ref(),
        &media,
        &[],
        &[("NOTIFY_SOCKET", Some(path.to_str().unwrap()))],
    );
    assert_eq!(next_state(&sock).as_deref(), Some("READY=1"));
    // READY=1 comes once the listener is bound: the server answers.
    assert_eq!(http::get(s.addr, "/time").status, 200);
    s.signal("HUP");
    let reloading = next_state(&sock).expect("no RELOADING=1");
    let mut lines = reloading.lines();
    assert_eq!(lines.next(), Some("RELOADING=1"));
    let usec: u64 = lines
        .next()
        .and_then(|l| l.strip_prefix("MONOTONIC_USEC="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no MONOTONIC_USEC in {reloading:?}"));
    assert!(usec > 0);
    assert_eq!(next_state(&sock).as_deref(), Some("READY=1"));
    let status = s.terminate();
    assert_eq!(next_state(&sock).as_deref(), Some("STOPPING=1"));
    assert!(status.success(), "{status:?}");
}

/// The unit with `ExecStart` and friends pointing at the binary under test.
fn unit_under_test(dir: &Path) -> PathBuf {
    let unit =
        std::fs::read_to_string(headwater_testkit::workspace().join("systemd/headwater.service"))
            .unwrap();
    assert!(unit.contains("/usr/local/bin/headwater "));
    let path = dir.join("headwater.service");
    std::fs::write(&path, unit.replace("/usr/local/bin/headwater", HEADWATER)).unwrap();
    path
}

#[test]
fn the_systemd_unit_verifies_and_is_sandboxed() {
    let dir = headwater_testkit::TempDir::new("unit");
    let unit = unit_under_test(dir.path());
    let out = std::process::Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze (scripts/setup.sh installs systemd)");
    let said = String::from_utf8_lossy(&out.stderr);
    // Unknown keys and bad values are warnings: the run must print none.
    assert!(out.status.success() && said.trim().is_empty(), "{said}");

    let text = std::fs::read_to_string(&unit).unwrap();
    for directive in [
        "Type=notify",
        "Restart=on-failure",
        "RestartPreventExitStatus=64",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
    ] {
        assert!(text.lines().any(|l| l == directive), "no {directive}");
    }
    let out = std::process::Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| l.split_once("Overall exposure level for headwater.service: "))
        .and_then(|(_, rest)| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in {report}"));
    // systemd calls up to 2.0 "OK"; an unsandboxed service is 9.6.
    assert!(level <= 2.0, "exposure {level}: {report}");
}
