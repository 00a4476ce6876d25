//! A `headwater serve` process under test, on an ephemeral loopback port,
//! with the admin API and a catalog when a test needs them.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::within;

/// A running server; killed when dropped.
pub struct Server {
    child: Child,
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
}

impl Server {
    /// Starts `bin serve --media-root ROOT --listen 127.0.0.1:0 ARGS...` and
    /// waits until it is listening (`--listen` in `ARGS` replaces the default).
    /// The admin, RTMP and SRT listeners are off unless `args` name them
    /// (`--admin-listen`, ...), so parallel tests do not contend for their
    /// default ports.
    pub fn start(bin: &Path, media_root: &Path, args: &[&str]) -> Server {
        Self::start_env(bin, media_root, args, &[])
    }

    /// [`Server::start`] with the admin API on loopback ([`admin_args`]),
    /// then `extra`.
    pub fn start_admin(
        bin: &Path,
        media_root: &Path,
        token: &str,
        database: &str,
        extra: &[&str],
    ) -> Server {
        let mut args = admin_args(token, database).to_vec();
        args.extend_from_slice(extra);
        Self::start(bin, media_root, &args)
    }

    /// [`Server::start_admin`] on a [`crate::scratch_dir`]: its `media/` as
    /// the media root, its `catalog.db` ([`sqlite_in`]) as the catalog.
    pub fn start_in(bin: &Path, dir: &Path, token: &str, extra: &[&str]) -> Server {
        Self::start_admin(bin, &dir.join("media"), token, &sqlite_in(dir), extra)
    }

    /// [`Server::start`] with changes to its environment: `(NAME, Some(v))`
    /// sets, `(NAME, None)` removes (`RUST_LOG` is set unless removed).
    pub fn start_env(
        bin: &Path,
        media_root: &Path,
        args: &[&str],
        env: &[(&str, Option<&str>)],
    ) -> Server {
        Self::launch(Command::new(bin), media_root, args, env)
    }

    /// [`Server::start`] with the process's open-file limit (soft and
    /// hard) set to `nofile`, through util-linux's `prlimit`.
    pub fn start_with_nofile(bin: &Path, media_root: &Path, args: &[&str], nofile: u64) -> Server {
        let mut command = Command::new("prlimit");
        command
            .arg(format!("--nofile={nofile}:{nofile}"))
            .arg("--")
            .arg(bin);
        Self::launch(command, media_root, args, &[])
    }

    fn launch(
        mut command: Command,
        media_root: &Path,
        args: &[&str],
        env: &[(&str, Option<&str>)],
    ) -> Server {
        let mut off: Vec<&str> = Vec::new();
        for flag in ["--admin-listen", "--rtmp-listen", "--srt-listen"] {
            if !args.contains(&flag) {
                off.extend([flag, "off"]);
            }
        }
        command
            .arg("serve")
            .arg("--media-root")
            .arg(media_root)
            .args(if args.contains(&"--listen") {
                &[][..]
            } else {
                &["--listen", "127.0.0.1:0"][..]
            })
            .args(&off)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("HEADWATER_TEST_LOG")
                    .unwrap_or_else(|_| "info,headwater_origin::store=debug".into()),
            )
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            match value {
                Some(v) => command.env(name, v),
                None => command.env_remove(name),
            };
        }
        let mut child = command.spawn().expect("spawn headwater");
        let stderr = child.stderr.take().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let plain = strip_ansi(&line);
                if let Some(pos) = plain.find("listen=") {
                    let addr: String = plain[pos + 7..]
                        .chars()
                        .take_while(|c| !c.is_whitespace())
                        .collect();
                    if let (Some(tx), Ok(a)) = (tx.take(), addr.parse::<SocketAddr>()) {
                        let _ = tx.send(a);
                    }
                }
                eprintln!("[headwater] {plain}");
                sink.lock().unwrap().push(plain);
            }
        });
        let addr = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| {
                let _ = child.kill();
                panic!(
                    "headwater did not start listening; log: {:?}",
                    log.lock().unwrap()
                );
            });
        Server { child, addr, log }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`HUP`, `TERM`, ...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// `http://ADDR` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// The value of `field=` in the first log line that contains `needle`
    /// and that field, waiting up to `limit` for it.
    pub fn logged(&self, needle: &str, field: &str, limit: Duration) -> String {
        let key = format!(" {field}=");
        let found = |l: &String| l.contains(needle) && l.contains(&key);
        assert!(
            within(limit, || self.log().iter().any(found)).is_some(),
            "no {field}= in a line with {needle:?}; log: {:?}",
            self.log()
        );
        let line = self.log().into_iter().find(found).unwrap();
        let pos = line.find(&key).unwrap() + key.len();
        line[pos..]
            .chars()
            .take_while(|c| !c.is_whitespace())
            .collect()
    }

    /// The address in the first log line with `field=ADDR` (`rtmp`, `srt`).
    pub fn logged_addr(&self, field: &str) -> SocketAddr {
        let text = self.logged("", field, Duration::from_secs(20));
        text.parse()
            .unwrap_or_else(|e| panic!("{field} address {text:?}: {e}"))
    }

    /// The admin listener's address, from its start-up log line.
    pub fn admin_addr(&self) -> SocketAddr {
        let text = self.logged("admin API listening", "admin", Duration::from_secs(20));
        text.parse()
            .unwrap_or_else(|e| panic!("admin address {text:?}: {e}"))
    }

    /// Kills the process at once (SIGKILL), as a crash would.
    pub fn kill9(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Log lines so far.
    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// Waits up to `timeout` for a log line containing `needle`.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> bool {
        let end = Instant::now() + timeout;
        while Instant::now() < end {
            if self.log().iter().any(|l| l.contains(needle)) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    /// Whether the process is still running.
    pub fn alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let end = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status;
            }
            assert!(Instant::now() < end, "headwater did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The flags of a server whose admin API listens on loopback with `token`
/// as its one full-scope admin token, and whose catalog is `database` (a
/// URL, such as [`sqlite_in`]'s).
pub fn admin_args<'a>(token: &'a str, database: &'a str) -> [&'a str; 6] {
    [
        "--admin-listen",
        "127.0.0.1:0",
        "--admin-token",
        token,
        "--database",
        database,
    ]
}

/// The URL of a SQLite catalog `catalog.db` in `dir`.
pub fn sqlite_in(dir: &Path) -> String {
    format!("sqlite://{}", dir.join("catalog.db").display())
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}
