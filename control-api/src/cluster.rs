//! This node's heartbeat in the catalog database: which live streams it
//! has on air (`live_on_air`), and which the other nodes have, as the
//! data plane's [`OnAirView`] (`headwater_common::cluster` says when a row
//! is trusted).

use std::time::{Duration, Instant};

use headwater_common::cluster::{Beats, LocalOnAir, SharedOnAir};
use headwater_common::config::ClusterConfig;

use crate::db::Db;

/// What the binary hands the control plane for a cluster.
pub struct ClusterOptions {
    /// `[cluster]`, with `advertise` set.
    pub config: ClusterConfig,
    /// This node's streams on air, read at every heartbeat.
    pub local: LocalOnAir,
    /// Where the other nodes' streams are published for the data plane.
    pub on_air: SharedOnAir,
}

/// Beats until `stop` turns true and this process has no publisher left,
/// then removes this process's rows, so that other nodes stop asking it at
/// once rather than when its rows go stale. Rows are this process's by a
/// random run id: during an upgrade the old and the new process of one
/// node beat side by side without removing each other's rows.
pub async fn run(db: Db, opts: ClusterOptions, mut stop: tokio::sync::watch::Receiver<bool>) {
    let me = opts.config.advertise.as_str();
    let run = run_id();
    let stale_after = Duration::from_millis(opts.config.stale_after_ms);
    let mut tick = tokio::time::interval(Duration::from_millis(opts.config.heartbeat_ms));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut beats = Beats::default();
    let mut failing = false;
    tracing::info!(
        node = me,
        "cluster: live streams are announced to the other nodes"
    );
    loop {
        let stopping = *stop.borrow();
        if stopping {
            tick.tick().await;
        } else {
            let stopped = async {
                if stop.wait_for(|s| *s).await.is_err() {
                    std::future::pending::<()>().await;
                }
            };
            tokio::select! {
                _ = tick.tick() => {}
                _ = stopped => continue,
            }
        }
        let local = (opts.local)();
        if stopping && !local.iter().any(|a| a.publishing) {
            break;
        }
        let beat = db.beat(me, &run, &local).await;
        let rows = match beat {
            Ok(()) => db.on_air().await,
            Err(e) => Err(e),
        };
        let view = match rows {
            Ok(rows) => {
                if failing {
                    tracing::info!("cluster: the catalog database answers again");
                }
                failing = false;
                beats.observe(Instant::now(), &rows, me, stale_after)
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "cluster: heartbeat failed; other nodes' streams age out");
                }
                failing = true;
                beats.view(Instant::now(), stale_after)
            }
        };
        opts.on_air.store(std::sync::Arc::new(view));
    }
    if let Err(e) = db.leave(me, &run).await {
        tracing::warn!(error = %e, "cluster: could not remove this node's live streams");
    }
}

/// A random id for this process's rows.
fn run_id() -> String {
    let mut b = [0u8; 8];
    if getrandom::fill(&mut b).is_err() {
        // Unique enough without randomness: the process and the time.
        let t = crate::db::now_ms() as u64;
        b = (t ^ u64::from(std::process::id()) << 40).to_le_bytes();
    }
    b.iter().map(|x| format!("{x:02x}")).collect()
}
