//! Debian's Varnish 7.1 with the shipped `conf/varnish.vcl`, its backends
//! rewritten to the given nodes, on a free loopback port, with a working
//! directory of its own (so `varnishstat -n` reads this instance only).
//! Stopped when dropped.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{TempDir, workspace};

/// A running varnishd.
pub struct Varnish {
    child: Child,
    dir: TempDir,
    /// Where it listens.
    pub addr: SocketAddr,
}

/// `conf/varnish.vcl` with its BACKENDS block naming `nodes`.
pub fn vcl(nodes: &[SocketAddr]) -> String {
    vcl_marked(nodes, "")
}

/// [`vcl`], whose synthetic answers (the admin API's `404`) carry
/// `X-Instance: {mark}`, so that a test knows it talks to its own Varnish.
fn vcl_marked(nodes: &[SocketAddr], mark: &str) -> String {
    let shipped =
        std::fs::read_to_string(workspace().join("conf/varnish.vcl")).expect("conf/varnish.vcl");
    let start = shipped.find("# BACKENDS\n").expect("a BACKENDS marker");
    let end = shipped
        .find("# END BACKENDS\n")
        .expect("an END BACKENDS marker");
    let mut block = String::from("# BACKENDS\n");
    for (i, n) in nodes.iter().enumerate() {
        block += &format!(
            "backend node{i} {{\n    .host = \"{}\"; .port = \"{}\"; .probe = ready;\n    \
             .connect_timeout = 1s; .first_byte_timeout = 15s; .between_bytes_timeout = 10s;\n}}\n",
            n.ip(),
            n.port()
        );
    }
    block += "\nsub vcl_init {\n    new nodes = directors.round_robin();\n";
    for i in 0..nodes.len() {
        block += &format!("    nodes.add_backend(node{i});\n");
    }
    block += "}\n";
    if !mark.is_empty() {
        block += &format!("\nsub vcl_synth {{\n    set resp.http.X-Instance = \"{mark}\";\n}}\n");
    }
    format!("{}{block}{}", &shipped[..start], &shipped[end..])
}

impl Varnish {
    /// Starts varnishd in front of `nodes`. The port is found free and
    /// then given to varnishd; another process may take it in between
    /// (tests run in parallel), so the instance is asked who it is before
    /// it is used, and another port tried if it is not this one.
    pub fn start(nodes: &[SocketAddr]) -> Varnish {
        for _ in 0..5 {
            if let Some(v) = Self::launch(nodes) {
                return v;
            }
        }
        panic!("varnishd could not listen on any of five free ports");
    }

    fn launch(nodes: &[SocketAddr]) -> Option<Varnish> {
        let dir = TempDir::new("varnish");
        let mark = dir.path().display().to_string();
        let vcl_path = dir.path().join("headwater.vcl");
        std::fs::write(&vcl_path, vcl_marked(nodes, &mark)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let child = Command::new("varnishd")
            .arg("-F")
            .args(["-j", "none"])
            .args(["-a", &addr.to_string()])
            .arg("-f")
            .arg(&vcl_path)
            .arg("-n")
            .arg(dir.path().join("work"))
            .args(["-s", "malloc,256m", "-T", "none"])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn varnishd (apt-get install varnish; scripts/setup.sh does)");
        let mut v = Varnish { child, dir, addr };
        let end = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(Some(_)) = v.child.try_wait() {
                return None; // the port was taken, or it failed: try again
            }
            if TcpStream::connect(addr).is_ok() {
                let r = std::panic::catch_unwind(|| crate::http::get(addr, "/api/whoami"));
                if r.is_ok_and(|r| r.header("x-instance") == Some(mark.as_str())) {
                    return Some(v);
                }
            }
            assert!(Instant::now() < end, "varnishd did not start listening");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A counter of `varnishstat` (`MAIN.cache_hit`, ...).
    pub fn stat(&self, name: &str) -> u64 {
        let out = Command::new("varnishstat")
            .arg("-n")
            .arg(self.dir.path().join("work"))
            .args(["-1", "-f", name])
            .output()
            .expect("varnishstat");
        String::from_utf8_lossy(&out.stdout)
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "varnishstat {name}: {}",
                    String::from_utf8_lossy(&out.stdout)
                )
            })
    }
}

impl Drop for Varnish {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
