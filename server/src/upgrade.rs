//! Upgrades without dropping a connection: on `SIGUSR2` the running
//! process starts its binary again (the file now at the path it was started
//! from, so a replaced binary is the one that runs) and hands it the
//! listening sockets, which stay open the whole time: a connection the
//! kernel queued is accepted by one process or the other, never refused.
//! Once the new process says it is ready, the old one stops accepting and
//! drains its requests and keep-alive connections as at shutdown.
//!
//! The sockets go over systemd's socket-activation protocol (`LISTEN_FDS`,
//! from descriptor 3, named in `LISTEN_FDNAMES`), so a systemd `.socket`
//! unit can pass them the same way. Readiness comes back over systemd's
//! notification protocol: the new process's `NOTIFY_SOCKET` is a datagram
//! socket of the old one, which then tells systemd (if it runs under it)
//! that the new process is the service's main process.

use std::net::{TcpListener, UdpSocket};
use std::os::fd::OwnedFd;
use std::os::unix::net::UnixDatagram;
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use command_fds::{CommandFdExt, FdMapping};

/// `LISTEN_FDNAMES` names of the sockets.
const DATA: &str = "data";
const ADMIN: &str = "admin";
const RTMP: &str = "rtmp";
const SRT: &str = "srt";

/// Where the new process sends notifications after its first `READY=1`
/// (the service manager's socket, when there is one).
pub(crate) const NOTIFY_AFTER: &str = "HEADWATER_NOTIFY_AFTER_UPGRADE";

/// How long a new process may take to become ready before the upgrade is
/// abandoned (it is killed and the old process serves on).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// Sockets passed in by an upgrading process or by systemd.
#[derive(Default)]
pub(crate) struct Inherited {
    pub(crate) data: Vec<TcpListener>,
    pub(crate) admin: Option<TcpListener>,
    pub(crate) rtmp: Option<TcpListener>,
    pub(crate) srt: Option<UdpSocket>,
}

impl Inherited {
    /// The sockets in `LISTEN_FDS`, by their `LISTEN_FDNAMES` names (a
    /// socket without a name is a data-plane listener).
    pub(crate) fn from_env() -> Result<Self, String> {
        let mut fds = listenfd::ListenFd::from_env();
        let names = std::env::var("LISTEN_FDNAMES").unwrap_or_default();
        let mut names = names.split(':');
        let mut got = Inherited::default();
        let bad = |i: usize, e: std::io::Error| format!("inherited socket {i}: {e}");
        for i in 0..fds.len() {
            match names.next().unwrap_or(DATA) {
                SRT => got.srt = fds.take_udp_socket(i).map_err(|e| bad(i, e))?,
                name => {
                    let l = fds.take_tcp_listener(i).map_err(|e| bad(i, e))?;
                    match name {
                        ADMIN => got.admin = l,
                        RTMP => got.rtmp = l,
                        _ => got.data.extend(l),
                    }
                }
            }
        }
        // Ours now: a process we start (a pipeline, a transcode) must not
        // hold them.
        for fd in got.fds() {
            rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::CLOEXEC)
                .map_err(|e| format!("inherited socket: {e}"))?;
        }
        if !got.is_empty() {
            tracing::info!(
                data = got.data.len(),
                admin = got.admin.is_some(),
                rtmp = got.rtmp.is_some(),
                srt = got.srt.is_some(),
                "listening on inherited sockets"
            );
        }
        Ok(got)
    }

    fn is_empty(&self) -> bool {
        self.data.is_empty() && self.admin.is_none() && self.rtmp.is_none() && self.srt.is_none()
    }

    /// Descriptors of the same sockets, in `LISTEN_FDS` order.
    fn fds(&self) -> Vec<std::os::fd::BorrowedFd<'_>> {
        use std::os::fd::AsFd;
        let mut v: Vec<_> = self.data.iter().map(|l| l.as_fd()).collect();
        v.extend(self.admin.iter().map(|l| l.as_fd()));
        v.extend(self.rtmp.iter().map(|l| l.as_fd()));
        v.extend(self.srt.iter().map(|l| l.as_fd()));
        v
    }
}

/// What the running process hands over: its command line and duplicates of
/// its listening sockets.
pub(crate) struct Handover {
    exe: PathBuf,
    args: Vec<std::ffi::OsString>,
    sockets: Vec<(&'static str, OwnedFd)>,
}

impl Handover {
    /// Taken at start, while the path still names the binary that runs.
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(Handover {
            exe: std::env::current_exe()?,
            args: std::env::args_os().skip(1).collect(),
            sockets: Vec::new(),
        })
    }

    pub(crate) fn data(&mut self, fd: OwnedFd) {
        self.sockets.push((DATA, fd));
    }
    pub(crate) fn admin(&mut self, fd: OwnedFd) {
        self.sockets.push((ADMIN, fd));
    }
    pub(crate) fn rtmp(&mut self, fd: OwnedFd) {
        self.sockets.push((RTMP, fd));
    }
    pub(crate) fn srt(&mut self, fd: OwnedFd) {
        self.sockets.push((SRT, fd));
    }

    /// Starts the binary again with the sockets and waits until it is
    /// ready; its process id. On an error the new process is gone and this
    /// one goes on serving.
    pub(crate) fn start_successor(&self) -> Result<u32, String> {
        let (notify, notify_name) = notify_socket()?;
        let mut command = Command::new(&self.exe);
        command
            .args(&self.args)
            .env("LISTEN_FDS", self.sockets.len().to_string())
            .env(
                "LISTEN_FDNAMES",
                self.sockets
                    .iter()
                    .map(|s| s.0)
                    .collect::<Vec<_>>()
                    .join(":"),
            )
            .env_remove("LISTEN_PID")
            .env("NOTIFY_SOCKET", &notify_name)
            .env(
                NOTIFY_AFTER,
                std::env::var_os("NOTIFY_SOCKET").unwrap_or_default(),
            );
        let mut mappings = Vec::new();
        for (i, (_, fd)) in self.sockets.iter().enumerate() {
            mappings.push(FdMapping {
                parent_fd: fd.try_clone().map_err(|e| format!("a socket: {e}"))?,
                child_fd: 3 + i as i32,
            });
        }
        command
            .fd_mappings(mappings)
            .map_err(|e| format!("socket descriptors: {e}"))?;
        let mut child = command
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.exe.display()))?;
        drop(command);
        let pid = child.id();
        match wait_ready(&notify, &mut child) {
            Ok(()) => Ok(pid),
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                Err(e)
            }
        }
    }
}

/// A datagram socket for the new process's `READY=1`, in the abstract
/// namespace (nothing on disk to clean up), and its `NOTIFY_SOCKET` name.
fn notify_socket() -> Result<(UnixDatagram, String), String> {
    use std::os::linux::net::SocketAddrExt;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let name = format!("headwater-upgrade-{}-{nanos}", std::process::id());
    let addr = std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes())
        .map_err(|e| format!("notification socket: {e}"))?;
    let sock = UnixDatagram::bind_addr(&addr).map_err(|e| format!("notification socket: {e}"))?;
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .map_err(|e| format!("notification socket: {e}"))?;
    Ok((sock, format!("@{name}")))
}

/// Waits for `READY=1` from `child`, for at most [`READY_WITHIN`].
fn wait_ready(notify: &UnixDatagram, child: &mut Child) -> Result<(), String> {
    let until = Instant::now() + READY_WITHIN;
    let mut buf = [0u8; 4096];
    while Instant::now() < until {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "the new process exited before it was ready ({status})"
            ));
        }
        if let Ok(n) = notify.recv(&mut buf) {
            let text = String::from_utf8_lossy(&buf[..n]);
            if text.lines().any(|l| l == "READY=1") {
                return Ok(());
            }
        }
    }
    Err(format!(
        "the new process was not ready within {} s",
        READY_WITHIN.as_secs()
    ))
}
