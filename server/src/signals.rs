//! Signals: `SIGTERM`/`SIGINT` stop, `SIGHUP` reloads.

/// `SIGTERM`/`SIGINT` (stop) and `SIGHUP` (reload), on a runtime of their own.
pub(crate) struct Signals {
    rt: tokio::runtime::Runtime,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    hup: tokio::signal::unix::Signal,
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
        drop(_guard);
        Ok(Signals { rt, term, int, hup })
    }

    /// Calls `on_reload` for every `SIGHUP`; returns at the first stop signal.
    pub(crate) fn run(self, mut on_reload: impl FnMut()) {
        let Signals {
            rt,
            mut term,
            mut int,
            mut hup,
        } = self;
        rt.block_on(async {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = int.recv() => break,
                    _ = hup.recv() => on_reload(),
                }
            }
        });
    }
}
