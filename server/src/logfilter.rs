//! Log lines other crates write at a rate a client controls, bounded.
//!
//! Our own warnings that a client can cause go through a
//! [`LogRate`](headwater_common::lograte::LogRate) at their call site. The
//! libraries we link log on their own: srt-tokio warns once per stray
//! datagram, so 23,000 garbage datagrams in a second were 14,766 lines.
//! [`Throttled`] wraps the output layer and gives every (target, level)
//! of a crate other than ours the same budget — [`BURST`] lines per
//! [`INTERVAL`] — and counts the rest
//! (`headwater_log_lines_suppressed_total`).
//!
//! [`BURST`]: headwater_common::lograte::BURST
//! [`INTERVAL`]: headwater_common::lograte::INTERVAL

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use headwater_common::lograte::LogRate;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata, span};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;

/// The budget of other crates' events, per target and level.
#[derive(Default)]
pub(crate) struct Foreign {
    sites: Mutex<HashMap<(String, Level), Arc<LogRate>>>,
}

/// Whether `target` is one of headwater's crates.
fn ours(target: &str) -> bool {
    target.starts_with("headwater")
}

impl Foreign {
    fn allow(&self, meta: &Metadata<'_>) -> bool {
        let key = (meta.target().to_owned(), *meta.level());
        let rate = {
            let mut sites = self.sites.lock().unwrap_or_else(|p| p.into_inner());
            // Module paths are a finite set; the bound is a backstop.
            if sites.len() > 4096 {
                sites.clear();
            }
            sites.entry(key).or_default().clone()
        };
        rate.allow().is_some()
    }
}

/// An output layer whose events from other crates pass [`Foreign`]
/// first. A wrapper rather than a per-layer filter: tracing-subscriber
/// 0.3's per-layer `event_enabled` leaves its filter state dirty when it
/// refuses an event (a debug assertion says so), so the decision is made
/// here, in `on_event`, once per event.
pub(crate) struct Throttled<L> {
    inner: L,
    foreign: Foreign,
}

impl<L> Throttled<L> {
    /// `inner`, throttled.
    pub(crate) fn new(inner: L) -> Self {
        Throttled {
            inner,
            foreign: Foreign::default(),
        }
    }
}

impl<S, L> Layer<S> for Throttled<L>
where
    S: tracing::Subscriber,
    L: Layer<S>,
{
    fn on_register_dispatch(&self, subscriber: &tracing::Dispatch) {
        self.inner.on_register_dispatch(subscriber);
    }

    fn on_layer(&mut self, subscriber: &mut S) {
        self.inner.on_layer(subscriber);
    }

    fn register_callsite(&self, meta: &'static Metadata<'static>) -> Interest {
        self.inner.register_callsite(meta)
    }

    fn enabled(&self, meta: &Metadata<'_>, cx: Context<'_, S>) -> bool {
        self.inner.enabled(meta, cx)
    }

    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, cx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, cx);
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, cx: Context<'_, S>) {
        self.inner.on_record(id, values, cx);
    }

    fn on_follows_from(&self, id: &span::Id, follows: &span::Id, cx: Context<'_, S>) {
        self.inner.on_follows_from(id, follows, cx);
    }

    fn on_event(&self, event: &tracing::Event<'_>, cx: Context<'_, S>) {
        let meta = event.metadata();
        if ours(meta.target()) || self.foreign.allow(meta) {
            self.inner.on_event(event, cx);
        }
    }

    fn on_enter(&self, id: &span::Id, cx: Context<'_, S>) {
        self.inner.on_enter(id, cx);
    }

    fn on_exit(&self, id: &span::Id, cx: Context<'_, S>) {
        self.inner.on_exit(id, cx);
    }

    fn on_close(&self, id: span::Id, cx: Context<'_, S>) {
        self.inner.on_close(id, cx);
    }

    fn on_id_change(&self, old: &span::Id, new: &span::Id, cx: Context<'_, S>) {
        self.inner.on_id_change(old, new, cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Count(Arc<Mutex<usize>>);

    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Count {
        fn on_event(&self, _: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
            *self.0.lock().unwrap() += 1;
        }
    }

    #[test]
    fn a_flood_from_another_crate_is_a_few_lines_and_ours_all_pass() {
        let count = Count::default();
        // Shaped as the binary's: a global level filter, then the output
        // layer with this filter.
        let subscriber = tracing_subscriber::registry()
            .with(tracing_subscriber::EnvFilter::new("info"))
            .with(Throttled::new(count.clone()));
        tracing::subscriber::with_default(subscriber, || {
            for _ in 0..1000 {
                tracing::warn!(target: "srt_protocol::listener", "stray packet");
            }
            for _ in 0..50 {
                tracing::warn!(target: "headwater_origin::conn", "ours");
            }
        });
        assert_eq!(
            *count.0.lock().unwrap(),
            headwater_common::lograte::BURST as usize + 50
        );
    }
}
