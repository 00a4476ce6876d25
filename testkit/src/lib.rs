//! Shared test support for headwater's integration tests: the generated
//! media corpus, scratch directories, a `headwater` process under test, a
//! raw HTTP/1.1 client (so tests control every byte on the wire), ffmpeg
//! helpers, an independent ISO BMFF box dumper for golden files, and A/V
//! timing as ffmpeg, GStreamer and Chromium present it (`av`).

#![forbid(unsafe_code)]
#![allow(missing_docs, unreachable_pub)]

pub mod admin;
pub mod av;
pub mod boxes;
pub mod ffmpeg;
pub mod http;
pub mod live;
pub mod nginx;
pub mod postgres;
pub mod s3;
pub mod server;
pub mod varnish;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("testkit lives in the workspace")
        .to_owned()
}

/// The test media corpus, generated on first use by `tests/media/generate.sh`
/// (ffmpeg and GStreamer), shared by all tests and guarded by a file lock
/// so parallel test processes generate it once.
pub fn media() -> PathBuf {
    let root = workspace();
    let dir = root.join("target/test-media");
    std::fs::create_dir_all(root.join("target")).expect("target dir");
    let status = Command::new("flock")
        .arg(root.join("target/test-media.lock"))
        .arg(root.join("tests/media/generate.sh"))
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .status()
        .expect(
            "run flock + tests/media/generate.sh (util-linux, ffmpeg, gstreamer must be installed)",
        );
    assert!(status.success(), "generating test media failed");
    dir
}

/// A binary of the workspace built beside the running test (`target/{profile}/NAME`), for
/// tests of one crate that need another crate's binary (`CARGO_BIN_EXE_*` names only the
/// test's own package). `cargo build --workspace` / `cargo nextest run --workspace`
/// build it.
pub fn workspace_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/{profile}/deps/test-hash -> target/{profile}/NAME
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("tests run from target/{profile}/deps");
    let bin = dir.join(name);
    assert!(
        bin.exists(),
        "{} is not built (run `cargo build --workspace`)",
        bin.display()
    );
    bin
}

/// A test's scratch directory, `target/tmp/{name}-{pid}`, emptied first and
/// kept after the test (to look at what a failed test left), with an empty
/// `media/` in it for a server's media root.
pub fn scratch_dir(name: &str) -> PathBuf {
    let d = workspace()
        .join("target/tmp")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(d.join("media")).expect("scratch dir");
    d
}

/// Polls `f` every 20 ms for up to `limit`: how long it took to hold, or
/// `None` when it never did.
pub fn within(limit: Duration, mut f: impl FnMut() -> bool) -> Option<Duration> {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return Some(t.elapsed());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// A fresh temporary directory under `target/tmp`, removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let base = workspace().join("target/tmp");
        std::fs::create_dir_all(&base).expect("target/tmp");
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let dir = base.join(format!("{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A small tmpfs mounted over a directory, to fill a disk on purpose
/// (`ENOSPC`); unmounted on drop. Mounting needs root (or `CAP_SYS_ADMIN`),
/// which the test machines have; without it the test says so and fails.
pub struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`mount`'s syntax: `64k`, `2m`) on `dir`.
    pub fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).expect("mount point");
        let ok = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot mount a tmpfs on {} (needs root)", dir.display());
        Tmpfs(dir.to_owned())
    }

    /// Gives the mounted tmpfs a new size (space returns, or goes).
    pub fn resize(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "cannot resize the tmpfs on {}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazily: a server still holding files there must not keep it mounted.
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

/// Compares `actual` with the golden file `path`; with `UPDATE_GOLDEN=1`
/// in the environment, rewrites the file instead.
pub fn golden(path: &Path, actual: &str) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(path).unwrap_or_else(|_| {
        panic!(
            "missing golden file {} (run with UPDATE_GOLDEN=1 to create it)",
            path.display()
        )
    });
    if expected != actual {
        let first = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b);
        panic!(
            "{} differs from the output (first differing line: {:?}); run with UPDATE_GOLDEN=1 to accept\n--- actual ---\n{actual}",
            path.display(),
            first.map(|i| i + 1)
        );
    }
}
