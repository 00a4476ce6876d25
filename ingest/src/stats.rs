//! Per-stream stats for `/metrics`: a Prometheus collector that reads the
//! registry at scrape time (nothing is recorded on the media path besides
//! the counters `Publisher::push` already keeps under the stream's lock).
//!
//! Input bit rate and frame rate are `rate()`s of the byte and frame
//! counters; the keyframe interval, the last frame's age, the DVR window's
//! bytes and whether a publisher is on air are gauges; viewers' request
//! rate is the `rate()` of `live_requests_total`.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;

use crate::registry::Registry;

/// The collector; register it on the metrics registry.
#[derive(Debug)]
pub struct LiveCollector {
    registry: Arc<Registry>,
}

impl LiveCollector {
    /// Reads `registry` at every scrape.
    pub fn new(registry: Arc<Registry>) -> Self {
        LiveCollector { registry }
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

type Labels = Vec<(String, String)>;

fn stream_labels(name: &str) -> Labels {
    vec![("stream".to_owned(), name.to_owned())]
}

fn track_labels(name: &str, track: &str) -> Labels {
    vec![
        ("stream".to_owned(), name.to_owned()),
        ("track".to_owned(), track.to_owned()),
    ]
}

/// One metric family: a descriptor, then one sample per label set.
fn family<M: EncodeMetric>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    rows: Vec<(Labels, M)>,
) -> Result<(), std::fmt::Error> {
    let Some(kind) = rows.first().map(|(_, m)| m.metric_type()) else {
        return Ok(());
    };
    let mut e = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, metric) in &rows {
        metric.encode(e.encode_family(labels)?)?;
    }
    Ok(())
}

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.registry.stats();
        let per_stream = |f: &dyn Fn(&crate::LiveStats) -> i64| -> Vec<(Labels, ConstGauge)> {
            stats
                .iter()
                .map(|s| (stream_labels(&s.name), ConstGauge::new(f(s))))
                .collect()
        };
        let per_track = |f: &dyn Fn(&crate::TrackInput) -> u64| -> Vec<(Labels, ConstCounter)> {
            stats
                .iter()
                .flat_map(|s| s.tracks.iter().map(move |t| (s, t)))
                .map(|(s, t)| (track_labels(&s.name, &t.name), ConstCounter::new(f(t))))
                .collect()
        };
        let e = &mut encoder;
        family(
            e,
            "live_on_air",
            "Whether a publisher is connected (1) or not (0)",
            per_stream(&|s| i64::from(s.on_air)),
        )?;
        family(
            e,
            "live_held_bytes",
            "Bytes of the stream's DVR window held in memory",
            per_stream(&|s| s.held_bytes as i64),
        )?;
        family(
            e,
            "live_last_frame_age_seconds",
            "Seconds since the stream's last access unit arrived",
            stats
                .iter()
                .map(|s| {
                    (
                        stream_labels(&s.name),
                        ConstGauge::new(s.last_frame_age.as_secs_f64()),
                    )
                })
                .collect(),
        )?;
        family(
            e,
            "live_requests",
            "Data-plane requests for the stream (viewers' request rate: rate())",
            stats
                .iter()
                .map(|s| (stream_labels(&s.name), ConstCounter::new(s.requests)))
                .collect(),
        )?;
        family(
            e,
            "live_input_bytes",
            "Access-unit bytes received per track (input bit rate: 8 * rate())",
            per_track(&|t| t.bytes),
        )?;
        family(
            e,
            "live_input_frames",
            "Access units received per track (frame rate: rate())",
            per_track(&|t| t.frames),
        )?;
        family(
            e,
            "live_keyframe_interval_seconds",
            "Seconds between the track's last two keyframes",
            stats
                .iter()
                .flat_map(|s| s.tracks.iter().map(move |t| (s, t)))
                .filter_map(|(s, t)| {
                    let k = t.keyframe_interval?;
                    Some((
                        track_labels(&s.name, &t.name),
                        ConstGauge::new(k as f64 / f64::from(t.timescale.max(1))),
                    ))
                })
                .collect(),
        )?;
        let mut e = encoder.encode_descriptor(
            "ingest_refused",
            "Publishers and connections the ingest listeners refused, by reason: a source past its connection rate (rate), a bad name (malformed), a wrong key (key), a source shut out for guessing keys (locked_out), a busy stream (busy), changed codecs (codec_changed), and SRT datagrams dropped unparsed for a shape no publisher sends (datagram)",
            None,
            MetricType::Counter,
        )?;
        for reason in crate::guard::Refused::ALL {
            let labels = [("reason", reason.label())];
            let e = e.encode_family(&labels)?;
            ConstCounter::new(reason.total()).encode(e)?;
        }
        Ok(())
    }
}
