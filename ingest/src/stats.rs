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

impl Collector for LiveCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let stats = self.registry.stats();
        {
            let mut e = encoder.encode_descriptor(
                "live_on_air",
                "Whether a publisher is connected (1) or not (0)",
                None,
                MetricType::Gauge,
            )?;
            for s in &stats {
                let l = stream_labels(&s.name);
                ConstGauge::new(i64::from(s.on_air)).encode(e.encode_family(&l)?)?;
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "live_held_bytes",
                "Bytes of the stream's DVR window held in memory",
                None,
                MetricType::Gauge,
            )?;
            for s in &stats {
                let l = stream_labels(&s.name);
                ConstGauge::new(s.held_bytes as i64).encode(e.encode_family(&l)?)?;
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "live_last_frame_age_seconds",
                "Seconds since the stream's last access unit arrived",
                None,
                MetricType::Gauge,
            )?;
            for s in &stats {
                let l = stream_labels(&s.name);
                ConstGauge::new(s.last_frame_age.as_secs_f64()).encode(e.encode_family(&l)?)?;
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "live_requests",
                "Data-plane requests for the stream (viewers' request rate: rate())",
                None,
                MetricType::Counter,
            )?;
            for s in &stats {
                let l = stream_labels(&s.name);
                ConstCounter::new(s.requests).encode(e.encode_family(&l)?)?;
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "live_input_bytes",
                "Access-unit bytes received per track (input bit rate: 8 * rate())",
                None,
                MetricType::Counter,
            )?;
            for s in &stats {
                for t in &s.tracks {
                    let l = track_labels(&s.name, &t.name);
                    ConstCounter::new(t.bytes).encode(e.encode_family(&l)?)?;
                }
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "live_input_frames",
                "Access units received per track (frame rate: rate())",
                None,
                MetricType::Counter,
            )?;
            for s in &stats {
                for t in &s.tracks {
                    let l = track_labels(&s.name, &t.name);
                    ConstCounter::new(t.frames).encode(e.encode_family(&l)?)?;
                }
            }
        }
        {
            let mut e = encoder.encode_descriptor(
                "live_keyframe_interval_seconds",
                "Seconds between the track's last two keyframes",
                None,
                MetricType::Gauge,
            )?;
            for s in &stats {
                for t in s.tracks.iter().filter(|t| t.keyframe_interval.is_some()) {
                    let l = track_labels(&s.name, &t.name);
                    let secs =
                        t.keyframe_interval.unwrap_or(0) as f64 / f64::from(t.timescale.max(1));
                    ConstGauge::new(secs).encode(e.encode_family(&l)?)?;
                }
            }
        }
        let e = encoder.encode_descriptor(
            "ingest_refused_publishers",
            "Publishers refused (bad name, bad key, busy stream, changed codecs)",
            None,
            MetricType::Counter,
        )?;
        ConstCounter::new(crate::refused_total()).encode(e)?;
        Ok(())
    }
}
