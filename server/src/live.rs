//! Live glue: who may publish (the config's streams, then the catalog's),
//! a catalog ladder as ingest transcodes it, and a stream's stats as the
//! API shows them.

use std::sync::Arc;

use arc_swap::ArcSwap;
use headwater_common::catalog::{CatalogLadder, SharedCatalog};
use headwater_common::token::secrets_match;
use headwater_origin::config::StreamKey;

/// A live stream's stats as the API shows them.
pub(crate) fn live_stats_json(s: &headwater_ingest::LiveStats) -> serde_json::Value {
    let age = s.last_frame_age.as_secs_f64();
    serde_json::json!({
        "name": s.name,
        "on_air": s.on_air,
        "held_bytes": s.held_bytes,
        "last_frame_age_seconds": (age * 1000.0).round() / 1000.0,
        "requests": s.requests,
        "tracks": s.tracks.iter().map(|t| serde_json::json!({
            "name": t.name,
            "bytes": t.bytes,
            "frames": t.frames,
            "keyframes": t.keyframes,
            "keyframe_interval_seconds": t.keyframe_interval
                .map(|k| k as f64 / f64::from(t.timescale.max(1))),
        })).collect::<Vec<_>>(),
    })
}

/// Who may publish: the config's `ingest.streams`, then the catalog's
/// stream records (read at each publish, so a rotated key applies at once).
/// A stream's ladder is looked up in the catalog at the same time; one that
/// does not exist (any more) refuses the publisher rather than silently
/// passing the input through.
pub(crate) fn key_check(
    configured: Arc<ArcSwap<Vec<StreamKey>>>,
    catalog: &SharedCatalog,
) -> headwater_ingest::KeyCheck {
    let catalog = catalog.clone();
    Arc::new(move |stream: &str, key: &str| {
        let view = catalog.load();
        let configured = configured.load();
        let (dvr_window, record, ladder) = if let Some(s) = configured
            .iter()
            .find(|s| s.name == stream && secrets_match(&s.key, key))
        {
            (None, s.record, s.ladder.as_deref())
        } else {
            let r = view.streams.get(stream)?;
            if !secrets_match(&r.publish_key, key) {
                return None;
            }
            let dvr = std::time::Duration::from_secs(r.dvr_window_secs);
            (Some(dvr), r.record, r.ladder.as_deref())
        };
        let ladder = match ladder {
            None => None,
            Some(name) => match view.ladders.get(name) {
                Some(l) => Some(live_ladder(l)),
                None => {
                    tracing::warn!(
                        stream,
                        ladder = name,
                        "the stream's ladder does not exist; refusing the publisher"
                    );
                    return None;
                }
            },
        };
        Some(headwater_ingest::StreamSettings {
            dvr_window,
            record,
            ladder,
        })
    })
}

/// A catalog ladder as ingest transcodes it.
fn live_ladder(l: &CatalogLadder) -> headwater_ingest::Ladder {
    headwater_ingest::Ladder {
        frame_rate: l.frame_rate,
        keyframe_frames: l.keyframe_frames(),
        rungs: l
            .rungs
            .iter()
            .map(|r| headwater_ingest::Rung {
                name: r.name.clone(),
                width: r.width,
                height: r.height,
                bitrate_kbps: r.video_bitrate_kbps,
            })
            .collect(),
    }
}
