//! The binary's contract with operators and scripts: config errors exit 64
//! naming the key, `check-config` and `probe` work, `serve` needs no file.

use std::process::Command;

fn headwater() -> Command {
    Command::new(env!("CARGO_BIN_EXE_headwater"))
}

fn write(dir: &headwater_testkit::TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, text).unwrap();
    p
}

#[test]
fn shipped_config_is_valid() {
    let conf = headwater_testkit::workspace().join("conf/headwater.toml");
    let out = headwater().arg("check-config").arg(&conf).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn bad_configs_exit_64_naming_the_key() {
    let dir = headwater_testkit::TempDir::new("conf");
    let cases = [
        (
            "unknown.toml",
            "[server]\nlisten = \"127.0.0.1:0\"\nthreds = 4\n",
            "threds",
        ),
        ("section.toml", "[srever]\nthreads = 4\n", "srever"),
        ("type.toml", "[server]\nthreads = \"four\"\n", "threads"),
        (
            "range.toml",
            "[packaging]\nsegment_duration = 0.1\n",
            "packaging.segment_duration",
        ),
        (
            "addr.toml",
            "[server]\nlisten = \"not an address\"\n",
            "listen",
        ),
        ("syntax.toml", "[server\n", "invalid"),
    ];
    for (name, text, key) in cases {
        let path = write(&dir, name, text);
        for args in [
            vec!["check-config", path.to_str().unwrap()],
            vec!["serve", "--config", path.to_str().unwrap()],
        ] {
            let out = headwater().args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(64), "{name} {args:?}: {err}");
            assert!(
                err.contains(key),
                "{name}: message does not name `{key}`: {err}"
            );
        }
    }
    // A bad override on the command line is a config error too.
    let out = headwater()
        .args(["serve", "--threads", "5000", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&out.stderr).contains("server.threads"));
    let out = headwater()
        .args(["serve", "--config", "/nonexistent/headwater.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(64));
}

#[test]
fn probe_prints_tracks_cadence_and_plan() {
    let media = headwater_testkit::media();
    let out = headwater()
        .arg("probe")
        .arg(media.join("bframes.mp4"))
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "track 1 Video avc1.64000c timescale 12800",
        "samples 250",
        "keyframes 5 every 2.000..2.000s",
        "track 2 Audio mp4a.40.2 timescale 48000",
        "48000 Hz 2 ch",
        "presentation: 10.000s, 2 rendition(s)",
        "rendition v1 Video",
        "   1  start   0.000000s  duration 4.000000s  samples 0..100",
        "   3  start   8.000000s  duration 2.000000s  samples 200..250",
    ] {
        assert!(text.contains(needle), "missing {needle:?} in:\n{text}");
    }
    let ladder = media.join("ladder");
    let out = headwater()
        .arg("probe")
        .args(["180p.mp4", "360p.mp4", "audio.m4a"].map(|f| ladder.join(f)))
        .args(["--segment-duration", "2"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("video boundaries shared"), "{text}");
    assert!(
        text.contains("rendition 180p-v1") && text.contains("rendition audio-a1"),
        "{text}"
    );
    let out = headwater()
        .arg("probe")
        .arg(media.join("corrupt/text.mp4"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not an MP4 file"));
}

/// Listeners nobody configured follow `--listen`: an origin bound to one
/// address does not open RTMP and SRT on every interface (issue 22, item 8).
#[test]
fn unconfigured_ingest_listeners_bind_where_the_data_plane_does() {
    let media = headwater_testkit::TempDir::new("listen-auto");
    // A loopback address of its own, so the usual ports are free there.
    let mut child = headwater()
        .args(["serve", "--media-root"])
        .arg(media.path())
        .args(["--listen", "127.0.0.3:0", "--admin-listen", "off"])
        .env("RUST_LOG", "info")
        .env("NO_COLOR", "1")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = (None, None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while (seen.0.is_none() || seen.1.is_none()) && std::time::Instant::now() < deadline {
        let Ok(line) = rx.recv_timeout(std::time::Duration::from_millis(200)) else {
            continue;
        };
        let addr = |key: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(key))
                .map(str::to_owned)
        };
        if line.contains("RTMP listening") {
            seen.0 = addr("rtmp=");
        }
        if line.contains("SRT listening") {
            seen.1 = addr("srt=");
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(seen.0.as_deref(), Some("127.0.0.3:1935"));
    assert_eq!(seen.1.as_deref(), Some("127.0.0.3:9000"));
}
