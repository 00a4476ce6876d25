//! systemd's readiness protocol (`sd_notify(3)`), for `Type=notify` units:
//! `READY=1` once the listeners are bound, `RELOADING=1` then `READY=1`
//! around a config reload, `STOPPING=1` when shutdown starts. Outside such
//! a unit (no `NOTIFY_SOCKET`) it does nothing.

use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::UnixDatagram;
use std::sync::atomic::{AtomicBool, Ordering};

/// Once the listeners are bound: systemd starts what is ordered after us.
/// A process started by an upgrade says it to the process it replaces,
/// and everything after that to the service manager.
pub(crate) fn ready() {
    send("READY=1");
    READY_SENT.store(true, Ordering::Relaxed);
}

/// An upgrade's new process is ready and is now the service's main process.
pub(crate) fn main_pid(pid: u32) {
    send(&format!("MAINPID={pid}\nREADY=1"));
}

/// A config reload begins; [`ready`] ends it.
pub(crate) fn reloading() {
    let now = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    let usec = now.tv_sec as u64 * 1_000_000 + now.tv_nsec as u64 / 1_000;
    send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

/// Shutdown begins (in-flight requests get the grace period).
pub(crate) fn stopping() {
    send("STOPPING=1");
}

static READY_SENT: AtomicBool = AtomicBool::new(false);

/// Where notifications go: `NOTIFY_SOCKET`, except after the first
/// `READY=1` of a process started by an upgrade.
fn target() -> Option<std::ffi::OsString> {
    let after = std::env::var_os(crate::upgrade::NOTIFY_AFTER);
    match after {
        Some(a) if READY_SENT.load(Ordering::Relaxed) => Some(a).filter(|a| !a.is_empty()),
        _ => std::env::var_os("NOTIFY_SOCKET"),
    }
}

fn send(state: &str) {
    let Some(path) = target() else {
        return;
    };
    let sent = UnixDatagram::unbound().and_then(|sock| {
        match path.as_bytes().strip_prefix(b"@") {
            // An abstract socket address (Linux).
            Some(name) => {
                use std::os::linux::net::SocketAddrExt;
                let addr = std::os::unix::net::SocketAddr::from_abstract_name(name)?;
                sock.send_to_addr(state.as_bytes(), &addr)
            }
            None => sock.send_to(state.as_bytes(), &path),
        }
    });
    if let Err(e) = sent {
        tracing::warn!(error = %e, socket = ?path, "cannot notify systemd");
    }
}
