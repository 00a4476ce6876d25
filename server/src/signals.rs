//! Signals: `SIGTERM`/`SIGINT` stop, `SIGHUP` reloads, `SIGUSR2` upgrades
//! (`upgrade.rs`).

/// `SIGTERM`/`SIGINT` (stop), `SIGHUP` (reload) and `SIGUSR2` (upgrade), on
/// a runtime of their own.
pub(crate) struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
    usr2: tokio::signal::unix::Signal,
}

impl Signals {
    pub(crate) fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()?;
        let _guard = rt.enter();
        let term = signal(SignalKind::terminate())?;
        let int = signal(SignalKind::interrupt())?;
        let hup = signal(SignalKind::hangup())?;
        let usr2 = signal(SignalKind::user_defined2())?;
        drop(_guard);
        Ok(Signals {
            rt,
            term,
            int,
            hup,
            usr2,
        })
    }

    /// Calls `on_reload` for every `SIGHUP` and `on_upgrade` for every
    /// `SIGUSR2`; returns at the first stop signal, or with `Upgraded` once
    /// `on_upgrade` says a new process has taken over.
    pub(crate) fn run(
        self,
        mut on_reload: impl FnMut(),
        mut on_upgrade: impl FnMut() -> bool,
    ) -> Stop {
        let Signals {
            rt,
            mut term,
            mut int,
            mut hup,
            mut usr2,
        } = self;
        rt.block_on(async {
            loop {
                tokio::select! {
                    _ = term.recv() => break Stop::Signalled,
                    _ = int.recv() => break Stop::Signalled,
                    _ = hup.recv() => on_reload(),
                    _ = usr2.recv() => if on_upgrade() {
                        break Stop::Upgraded;
                    },
                }
            }
        })
    }
}

/// Why [`Signals::run`] returned.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Stop {
    /// `SIGTERM` or `SIGINT`.
    Signalled,
    /// A new process serves the sockets now.
    Upgraded,
}
