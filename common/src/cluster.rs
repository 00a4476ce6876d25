//! Several nodes: where each live stream is on air.
//!
//! Every node with `cluster.advertise` writes, once per heartbeat, a row per
//! stream it can serve (`live_on_air` in the catalog database: stream, node,
//! session, whether a publisher is sending there or the node only holds the
//! stream's window, and a beat counter it bumps). Every node reads the rows
//! back and keeps [`OnAirView`]: for each stream, the *other* nodes whose
//! rows are fresh, those with the publisher first. A row is fresh when this node has seen its beat
//! counter move within `cluster.stale_after_ms`, by its own clock, so the
//! nodes' clocks never need to agree, and a row left behind by a node that
//! died (or stopped answering) is never trusted again, not even once by a
//! node that starts after it: a row is only trusted once its beat has been
//! seen to move.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;

/// A `live_on_air` row as read from the database.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OnAirRow {
    /// The stream's name.
    pub stream: String,
    /// The node's advertised URL (`http://HOST:PORT`).
    pub node: String,
    /// The publisher session on that node.
    pub session: String,
    /// Whether a publisher is sending there (else the node holds the
    /// stream's window only: its publisher left).
    pub publishing: bool,
    /// The node's heartbeat counter for the stream.
    pub beat: i64,
}

/// A stream this node can serve, as its heartbeat announces it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announce {
    /// The stream's name.
    pub stream: String,
    /// The publisher session (the last one, when it left).
    pub session: String,
    /// Whether its publisher is sending here.
    pub publishing: bool,
}

/// The other nodes that can serve one stream.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Holders {
    /// With its publisher, in a stable order.
    pub publishing: Vec<Arc<str>>,
    /// Holding its window only, in a stable order.
    pub held: Vec<Arc<str>>,
}

impl Holders {
    /// Every node, those with the publisher first.
    pub fn in_order(&self) -> impl Iterator<Item = &Arc<str>> {
        self.publishing.iter().chain(&self.held)
    }
}

/// Streams other nodes can serve, as this node last saw them.
#[derive(Clone, Debug, Default)]
pub struct OnAirView {
    /// Per stream, the fresh nodes' advertised URLs.
    pub streams: HashMap<String, Holders>,
}

impl OnAirView {
    /// The node to pull `stream` from: the first fresh one.
    pub fn node_of(&self, stream: &str) -> Option<&Arc<str>> {
        self.streams.get(stream).and_then(|h| h.in_order().next())
    }
}

/// The view the data plane reads, swapped at every heartbeat.
pub type SharedOnAir = Arc<ArcSwap<OnAirView>>;

/// An empty view: no stream is on air anywhere else.
pub fn nowhere() -> SharedOnAir {
    Arc::new(ArcSwap::from_pointee(OnAirView::default()))
}

/// The streams this node can serve.
pub type LocalOnAir = Arc<dyn Fn() -> Vec<Announce> + Send + Sync>;

/// The `HOST:PORT` of an advertised `http://HOST:PORT` URL; `None` when
/// it is not one.
pub fn authority(advertise: &str) -> Option<&str> {
    let rest = advertise.strip_prefix("http://")?;
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    let (host, port) = rest.rsplit_once(':')?;
    let host_ok = !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-[]:".contains(&b));
    let port_ok = port.parse::<u16>().is_ok_and(|p| p != 0);
    (host_ok && port_ok).then_some(rest)
}

/// What this node knows of each row's heartbeat: the last beat seen, when
/// it last moved (`None`: never seen to move, so not trusted), and whether
/// the row said a publisher is sending.
#[derive(Default)]
pub struct Beats {
    seen: HashMap<(String, String), (i64, Option<Instant>, bool)>,
}

impl Beats {
    /// Takes in the rows read at `now` and returns the streams that are on
    /// air on nodes other than `me`, by rows whose beat moved within
    /// `stale_after`. Rows no longer in the table are forgotten.
    pub fn observe(
        &mut self,
        now: Instant,
        rows: &[OnAirRow],
        me: &str,
        stale_after: Duration,
    ) -> OnAirView {
        let mut seen = HashMap::with_capacity(rows.len());
        for r in rows.iter().filter(|r| r.node != me) {
            let key = (r.stream.clone(), r.node.clone());
            let moved = match self.seen.get(&key) {
                Some(&(beat, _, _)) if beat != r.beat => Some(now),
                Some(&(_, moved, _)) => moved,
                None => None,
            };
            seen.insert(key, (r.beat, moved, r.publishing));
        }
        self.seen = seen;
        self.view(now, stale_after)
    }

    /// The view from what was seen, aged to `now` (when the table could not
    /// be read: rows age out as if their beats had stopped).
    pub fn view(&self, now: Instant, stale_after: Duration) -> OnAirView {
        let mut streams: HashMap<String, Holders> = HashMap::new();
        for ((stream, node), (_, moved, publishing)) in &self.seen {
            if moved.is_some_and(|t| now.saturating_duration_since(t) <= stale_after) {
                let h = streams.entry(stream.clone()).or_default();
                let list = if *publishing {
                    &mut h.publishing
                } else {
                    &mut h.held
                };
                list.push(Arc::from(node.as_str()));
            }
        }
        for h in streams.values_mut() {
            h.publishing.sort();
            h.held.sort();
        }
        OnAirView { streams }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(stream: &str, node: &str, beat: i64) -> OnAirRow {
        OnAirRow {
            stream: stream.into(),
            node: node.into(),
            session: "s".into(),
            publishing: true,
            beat,
        }
    }

    const A: &str = "http://10.0.0.1:8080";
    const B: &str = "http://10.0.0.2:8080";
    const STALE: Duration = Duration::from_secs(3);

    #[test]
    fn a_row_is_trusted_once_its_beat_moves_and_until_it_stops() {
        let mut beats = Beats::default();
        let t0 = Instant::now();
        let s = |secs: u64| t0 + Duration::from_secs(secs);
        // First sight: a row left by a dead node looks the same, so no.
        let v = beats.observe(s(0), &[row("cam", A, 7)], B, STALE);
        assert_eq!(v.node_of("cam"), None);
        let v = beats.observe(s(1), &[row("cam", A, 8)], B, STALE);
        assert_eq!(v.node_of("cam").map(|n| &**n), Some(A));
        // The beat stops moving: trusted until stale_after has passed.
        let v = beats.observe(s(4), &[row("cam", A, 8)], B, STALE);
        assert_eq!(v.node_of("cam").map(|n| &**n), Some(A));
        let v = beats.observe(s(5), &[row("cam", A, 8)], B, STALE);
        assert_eq!(v.node_of("cam"), None);
        // And it never comes back without moving again.
        assert_eq!(beats.view(s(6), STALE).node_of("cam"), None);
        let v = beats.observe(s(7), &[row("cam", A, 9)], B, STALE);
        assert_eq!(v.node_of("cam").map(|n| &**n), Some(A));
    }

    #[test]
    fn own_rows_are_not_listed_and_gone_rows_are_forgotten() {
        let mut beats = Beats::default();
        let t0 = Instant::now();
        beats.observe(t0, &[row("cam", A, 1), row("cam", B, 1)], A, STALE);
        let v = beats.observe(t0, &[row("cam", A, 2), row("cam", B, 2)], A, STALE);
        assert_eq!(v.streams["cam"].publishing, vec![Arc::<str>::from(B)]);
        let v = beats.observe(t0, &[], A, STALE);
        assert!(v.streams.is_empty());
        // Back after being gone: a first sight again.
        let v = beats.observe(t0, &[row("cam", B, 3)], A, STALE);
        assert!(v.streams.is_empty());
    }

    #[test]
    fn nodes_with_the_publisher_come_before_those_holding_the_window() {
        let mut beats = Beats::default();
        let t0 = Instant::now();
        let held = |beat| OnAirRow {
            publishing: false,
            ..row("cam", A, beat)
        };
        beats.observe(t0, &[held(1), row("cam", B, 1)], "me", STALE);
        let v = beats.observe(t0, &[held(2), row("cam", B, 2)], "me", STALE);
        let order: Vec<&str> = v.streams["cam"].in_order().map(|n| &**n).collect();
        assert_eq!(order, [B, A]);
        assert_eq!(v.node_of("cam").map(|n| &**n), Some(B));
    }

    #[test]
    fn authority_takes_http_host_port_only() {
        assert_eq!(authority("http://10.0.0.1:8080"), Some("10.0.0.1:8080"));
        assert_eq!(
            authority("http://node-a.internal:80/"),
            Some("node-a.internal:80")
        );
        assert_eq!(authority("http://[::1]:8080"), Some("[::1]:8080"));
        for bad in [
            "10.0.0.1:8080",
            "https://a:1",
            "http://a",
            "http://a:0",
            "http://:80",
            "http://a:80/x",
            "http://a b:80",
        ] {
            assert_eq!(authority(bad), None, "{bad}");
        }
    }
}
