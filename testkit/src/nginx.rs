//! Debian's nginx serving a directory: the static reference that `loadtest --compare`
//! measures headwater against, and a plain static origin for ffmpeg-made HLS/DASH.
//!
//! The config is `benches/nginx.conf.in` (the benchmark's own), filled in for a
//! loopback port and a run directory of its own, so tests and benchmarks configure
//! nginx the same way.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TempDir, workspace};

/// A running nginx; stopped when dropped.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    _run: TempDir,
}

impl Nginx {
    /// Starts nginx with `workers` worker processes serving `root` on a free loopback port.
    pub fn start(root: &Path, workers: usize) -> Nginx {
        let run = TempDir::new("nginx");
        let port = free_port();
        let template = std::fs::read_to_string(workspace().join("benches/nginx.conf.in"))
            .expect("benches/nginx.conf.in");
        let root = root.canonicalize().expect("nginx root");
        let conf = template
            .replace("@WORKERS@", &workers.to_string())
            .replace("@RUN@", run.path().to_str().expect("utf-8 path"))
            .replace("@ROOT@", root.to_str().expect("utf-8 path"))
            .replace("@PORT@", &port.to_string());
        let conf_path = run.path().join("nginx.conf");
        std::fs::write(&conf_path, conf).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-e")
            .arg(run.path().join("startup-error.log"))
            .arg("-p")
            .arg(run.path())
            .arg("-c")
            .arg(&conf_path)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn nginx (apt-get install nginx-light; scripts/setup.sh does)");
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut nginx = Nginx {
            child,
            addr,
            _run: run,
        };
        let end = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(addr).is_err() {
            if let Ok(Some(status)) = nginx.child.try_wait() {
                panic!("nginx exited with {status} before listening");
            }
            assert!(Instant::now() < end, "nginx did not start listening");
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM is nginx's fast shutdown; the master takes its workers with it.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(10);
        while Instant::now() < end {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}
