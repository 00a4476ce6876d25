//! A real S3-compatible server for the object-storage tests: `s3s-fs`
//! (crates.io; `scripts/setup.sh` installs it in `target/tools`) serving
//! a directory whose subdirectories are buckets, on a loopback port, with
//! credentials of its own. Stopped when dropped; [`S3::stop`] and
//! [`S3::restart`] take it down and bring it back on the same port.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::workspace;

/// The access key the server accepts.
pub const ACCESS_KEY: &str = "headwater-test";
/// The secret key the server accepts.
pub const SECRET_KEY: &str = "headwater-test-secret";

/// A running s3s-fs.
pub struct S3 {
    child: Option<Child>,
    root: PathBuf,
    /// Where it listens.
    pub addr: SocketAddr,
}

fn binary() -> PathBuf {
    let local = workspace().join("target/tools/bin/s3s-fs");
    if local.exists() {
        local
    } else {
        PathBuf::from("s3s-fs")
    }
}

impl S3 {
    /// Serves `root` (each subdirectory a bucket) on a free loopback port.
    ///
    /// The port is found free, then given to s3s-fs, and another process
    /// may take it in between (tests run in parallel): then s3s-fs exits
    /// at once, and another port is tried, so that the test never talks
    /// to someone else's server.
    pub fn start(root: &Path) -> S3 {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free port")
                .port();
            let mut s = S3 {
                child: None,
                root: root.to_owned(),
                addr: SocketAddr::from(([127, 0, 0, 1], port)),
            };
            if s.launch() {
                return s;
            }
        }
        panic!("s3s-fs could not listen on any of five free ports");
    }

    /// `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The environment a client of this server needs.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY.to_owned()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_KEY.to_owned()),
            ("AWS_REGION", "us-east-1".to_owned()),
        ]
    }

    /// Stops the server (kill, then reap).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port, and waits until it listens.
    pub fn restart(&mut self) {
        assert!(
            self.launch(),
            "s3s-fs could not listen on {} again",
            self.addr
        );
    }

    /// Starts s3s-fs on `addr`; false if it exited instead of listening
    /// (the port was taken).
    fn launch(&mut self) -> bool {
        self.stop();
        let mut child = Command::new(binary())
            .args([
                "--host",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
            ])
            .args(["--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn s3s-fs (scripts/setup.sh installs it in target/tools)");
        let end = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(self.addr).is_err() {
            if let Ok(Some(_)) = child.try_wait() {
                return false;
            }
            assert!(Instant::now() < end, "s3s-fs did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        // Something listens: ours, unless it exits for want of the port.
        std::thread::sleep(Duration::from_millis(300));
        if let Ok(Some(_)) = child.try_wait() {
            return false;
        }
        self.child = Some(child);
        true
    }
}

impl Drop for S3 {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A bucket `media` whose prefix `lib/` holds copies of `assets`, and a
/// directory holding the same files.
pub fn library(dir: &Path, assets: &[&str]) -> (std::path::PathBuf, std::path::PathBuf) {
    let bucket = dir.join("s3/media/lib");
    let disk = dir.join("disk");
    for root in [&bucket, &disk] {
        std::fs::create_dir_all(root).unwrap();
        for a in assets {
            let file = crate::media().join(format!("{a}.mp4"));
            if file.exists() {
                std::fs::copy(&file, root.join(format!("{a}.mp4"))).unwrap();
                continue;
            }
            std::fs::create_dir_all(root.join(a)).unwrap();
            for e in std::fs::read_dir(crate::media().join(a)).unwrap() {
                let e = e.unwrap();
                std::fs::copy(e.path(), root.join(a).join(e.file_name())).unwrap();
            }
        }
    }
    (dir.join("s3"), disk)
}

/// Starts `bin serve` on the library `s3://media/lib` of `s3`, with the
/// config file `config` and `args` (the admin API, a catalog, ...).
pub fn serve_bucket(bin: &Path, s3: &S3, config: &Path, args: &[&str]) -> crate::server::Server {
    let env: Vec<(&str, String)> = s3.env();
    let env: Vec<(&str, Option<&str>)> = env.iter().map(|(k, v)| (*k, Some(v.as_str()))).collect();
    let mut all = vec!["--config", config.to_str().expect("a UTF-8 path")];
    all.extend_from_slice(args);
    crate::server::Server::start_env(bin, Path::new("s3://media/lib"), &all, &env)
}
