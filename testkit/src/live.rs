//! Live test support: a server with RTMP and SRT listening on loopback,
//! ffmpeg publishers, and readers of the live playlists the tests check.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::http;
use crate::server::Server;

/// The publish key the live tests use.
pub const KEY: &str = "test-publish-key-0123456789";

pub fn start(bin: &Path, extra: &[&str]) -> Server {
    let media = crate::workspace()
        .join("target/tmp")
        .join(format!("live-media-{}", std::process::id()));
    std::fs::create_dir_all(&media).unwrap();
    let mut args = vec![
        "--rtmp-listen",
        "127.0.0.1:0",
        "--srt-listen",
        "127.0.0.1:0",
    ];
    args.extend_from_slice(extra);
    Server::start(bin, &media, &args)
}

/// ffmpeg publishing a 25 fps test pattern with B-frames and a 2 s GOP, plus a tone.
pub fn ffmpeg_push(url: &str, seconds: u32, format: &str) -> Child {
    ffmpeg_push_sized(url, seconds, format, "320x180")
}

/// [`ffmpeg_push`] with a picture of `size` (`WxH`).
pub fn ffmpeg_push_sized(url: &str, seconds: u32, format: &str, size: &str) -> Child {
    Command::new("ffmpeg")
        .args(["-nostdin", "-loglevel", "error", "-re"])
        .args([
            "-f",
            "lavfi",
            "-i",
            &format!("testsrc2=size={size}:rate=25"),
        ])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-g", "50",
        ])
        .args(["-pix_fmt", "yuv420p", "-c:a", "aac", "-b:a", "96k"])
        .args(["-f", format, url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ffmpeg")
}

pub fn rtmp_url(addr: SocketAddr, stream: &str, key: &str) -> String {
    format!("rtmp://{addr}/live/{stream}?key={key}")
}

pub fn get_text(s: &Server, path: &str) -> (u16, String) {
    let r = http::get(s.addr, path);
    (r.status, r.text())
}

pub fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    false
}

/// `(media sequence, number of complete segments)` of a media playlist.
pub fn msn_range(text: &str) -> (u64, u64) {
    let first = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .map(|v| v.trim().parse().unwrap())
        .expect("EXT-X-MEDIA-SEQUENCE");
    let n = text.lines().filter(|l| l.starts_with("#EXTINF")).count() as u64;
    (first, n)
}

pub fn attr(line: &str, name: &str) -> Option<String> {
    // `HOLD-BACK` must not match inside `PART-HOLD-BACK`.
    let p = [':', ',']
        .iter()
        .find_map(|sep| line.find(&format!("{sep}{name}=")))?
        + name.len()
        + 2;
    let rest = &line[p..];
    let v = if let Some(q) = rest.strip_prefix('"') {
        &q[..q.find('"')?]
    } else {
        rest.split(',').next()?
    };
    Some(v.to_owned())
}

pub fn media_playlist_path(s: &Server, stream: &str) -> String {
    let (_, master) = get_text(s, &format!("/live/{stream}/hls/master.m3u8"));
    let uri = master
        .lines()
        .find(|l| !l.starts_with('#') && !l.is_empty())
        .unwrap_or_else(|| panic!("no variant in {master}"))
        .to_owned();
    format!("/live/{stream}/hls/{uri}")
}

/// A run of the headless-browser player harness (`tests/players/play.mjs`).
pub struct Player(Child);

impl Player {
    /// Starts `play.mjs --url URL` with `args` (`--player hls`, `--seconds N`, ...).
    pub fn start(url: &str, args: &[&str]) -> Player {
        let harness = crate::workspace().join("tests/players/play.mjs");
        let child = Command::new("node")
            .arg(harness)
            .args(args)
            .args(["--url", url])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn node");
        Player(child)
    }

    /// Waits for the harness; its log goes to stderr. Returns whether it
    /// exited successfully and its JSON report.
    pub fn finish(self) -> (bool, String) {
        let out = self.0.wait_with_output().expect("wait for node");
        eprintln!("{}", String::from_utf8_lossy(&out.stderr));
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }
}

/// [`Player::start`] and [`Player::finish`].
pub fn play(url: &str, args: &[&str]) -> (bool, String) {
    Player::start(url, args).finish()
}
