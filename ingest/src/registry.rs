//! The live streams of this node: one [`Live`] per stream name, each
//! owning its sans-IO [`LiveStream`] behind a per-stream lock.
//!
//! Ingest holds a [`Publisher`] while a publisher is connected and pushes
//! access units through it; dropping it ends the publisher's session (a
//! discontinuity: a returning publisher continues the same presentation).
//! The origin reads playlists and bytes with [`Live::read`] — a short
//! critical section that renders text or clones `Arc`'d bytes — and waits
//! for new parts with [`Live::subscribe`], a `watch` channel whose value
//! is bumped whenever a part or segment is published. No thread or task
//! waits per request; no lock is shared between streams.
//!
//! A second publisher for a live stream is refused while the first is
//! sending; one that has been silent for [`RegistryConfig::takeover_after`]
//! is replaced (its session ends as if it had disconnected).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use headwater_packager::live::{
    AccessUnit, Event, LiveConfig, LiveStream, Timeline, TrackConfig, TrackId,
};
use tokio::sync::watch;

use crate::error::Error;
use crate::spill::{self, Spill};

/// How streams are packaged and shared.
#[derive(Clone, Debug)]
pub struct RegistryConfig {
    /// Segment target (default 2 s).
    pub segment_target: Duration,
    /// Part target (default 333 ms).
    pub part_target: Duration,
    /// DVR window when the stream record names none (default 1 h).
    pub dvr_window: Duration,
    /// Cap on the bytes one stream holds in memory (default 2 GiB).
    pub max_bytes_per_stream: u64,
    /// A publisher silent this long is replaced by a new one (default 5 s).
    pub takeover_after: Duration,
    /// Where recordings of recorded streams go (the media root); `None`: nowhere.
    pub recordings: Option<std::path::PathBuf>,
    /// Where live streams are spilled as they are made, to be restored
    /// after a crash ([`crate::spill`]); `None`: memory only.
    pub spill: Option<std::path::PathBuf>,
    /// The clock streams follow: [`Timeline::Input`] for redundant
    /// ingest (RTMP timestamps are then not rebased either).
    pub timeline: Timeline,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        Self {
            segment_target: Duration::from_secs(2),
            part_target: Duration::from_millis(333),
            dvr_window: Duration::from_secs(3600),
            max_bytes_per_stream: 2 << 30,
            takeover_after: Duration::from_secs(5),
            recordings: None,
            spill: None,
            timeline: Timeline::Arrival,
        }
    }
}

/// Every live stream of this node.
pub struct Registry {
    config: RegistryConfig,
    streams: RwLock<HashMap<String, Arc<Live>>>,
    next_publisher: AtomicU64,
}

struct Inner {
    stream: LiveStream,
    /// The connected publisher's id, if one is.
    publisher: Option<u64>,
    last_push: Instant,
    /// Input counters per track, for stats.
    input: Vec<TrackInput>,
    /// The recording, for recorded streams.
    recorder: Option<crate::record::Recorder>,
    /// Its spill on disk, when live streams are spilled.
    spill: Option<Spill>,
}

/// What one track of a stream has received.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrackInput {
    /// The track's name (`v0`, `a0`).
    pub name: String,
    /// Ticks per second of its timestamps.
    pub timescale: u32,
    /// Access-unit bytes accepted.
    pub bytes: u64,
    /// Access units accepted.
    pub frames: u64,
    /// Keyframes accepted.
    pub keyframes: u64,
    /// Ticks between the last two keyframes.
    pub keyframe_interval: Option<i64>,
    last_key_dts: Option<i64>,
}

/// A snapshot of one stream's state, for `/metrics` and the API.
#[derive(Clone, Debug)]
pub struct LiveStats {
    /// The stream's name.
    pub name: String,
    /// Whether a publisher is connected.
    pub on_air: bool,
    /// Bytes the DVR window holds.
    pub held_bytes: u64,
    /// Time since the last access unit arrived.
    pub last_frame_age: Duration,
    /// Per track input.
    pub tracks: Vec<TrackInput>,
    /// Data-plane requests for the stream so far.
    pub requests: u64,
}

/// One live stream.
pub struct Live {
    /// The stream's name.
    pub name: String,
    inner: Mutex<Inner>,
    requests: AtomicU64,
    version: watch::Sender<u64>,
}

/// A connected publisher's handle. Dropping it ends its session.
pub struct Publisher {
    live: Arc<Live>,
    id: u64,
}

fn unix_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Registry {
    /// A registry with the streams spilled before (see
    /// [`RegistryConfig::spill`]), each waiting for its publisher.
    pub fn new(config: RegistryConfig) -> Self {
        let registry = Registry {
            config,
            streams: RwLock::new(HashMap::new()),
            next_publisher: AtomicU64::new(1),
        };
        if let Some(root) = &registry.config.spill {
            let found =
                spill::restore_all(root, |s| s.config().dvr_window, Instant::now(), unix_ms());
            let mut streams = registry.streams.write().unwrap_or_else(|p| p.into_inner());
            for mut f in found {
                // A spill does not record the timeline: this node's.
                f.stream.set_timeline(registry.config.timeline);
                let bytes = f.stream.bytes_held();
                tracing::info!(stream = %f.name, bytes, "restored a live stream from its spill");
                let live = Live::new(&f.name, f.stream, None, None, Some(f.spill));
                live.drain(&mut live.lock());
                streams.insert(f.name, live);
            }
        }
        registry
    }

    /// The stream called `name`, if it was ever published on this node.
    pub fn get(&self, name: &str) -> Option<Arc<Live>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
            .cloned()
    }

    /// Every stream, outside the registry's lock.
    fn all(&self) -> Vec<Arc<Live>> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Every stream's counters.
    pub fn stats(&self) -> Vec<LiveStats> {
        self.all().iter().map(|l| l.stats()).collect()
    }

    /// The clock this node's streams follow.
    pub fn timeline(&self) -> Timeline {
        self.config.timeline
    }

    /// The streams with a segment to list (what the cluster's heartbeat
    /// announces: a node whose stream has nothing to play yet is not sent
    /// viewers), whether their publisher is sending, and its session id.
    pub fn announce(&self) -> Vec<headwater_common::cluster::Announce> {
        self.all()
            .iter()
            .filter_map(|l| {
                let inner = l.lock();
                inner
                    .stream
                    .has_segment()
                    .then(|| headwater_common::cluster::Announce {
                        stream: l.name.clone(),
                        session: inner
                            .publisher
                            .map_or_else(String::new, |id| id.to_string()),
                        publishing: inner.publisher.is_some(),
                    })
            })
            .collect()
    }

    /// Every stream's name.
    pub fn names(&self) -> Vec<String> {
        self.streams
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    /// Whether `name` has a connected publisher that is not silent, so a
    /// new one would be refused with [`Error::Busy`]. Ingest asks before it
    /// accepts a publish request (the tracks are known only later).
    pub fn busy(&self, name: &str) -> bool {
        let Some(live) = self.get(name) else {
            return false;
        };
        let inner = live.lock();
        inner.publisher.is_some()
            && Instant::now().duration_since(inner.last_push) < self.config.takeover_after
    }

    /// A publisher for `name` with these tracks: a new stream, or the
    /// continuation of one whose publisher left (same tracks required).
    pub fn publish(
        &self,
        name: &str,
        tracks: Vec<TrackConfig>,
        settings: &crate::StreamSettings,
    ) -> Result<Publisher, Error> {
        let dvr_window = settings.dvr_window;
        let id = self.next_publisher.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        let mut streams = self.streams.write().unwrap_or_else(|p| p.into_inner());
        if let Some(live) = streams.get(name).cloned() {
            let mut inner = live.lock();
            if inner.publisher.is_some() {
                if now.duration_since(inner.last_push) < self.config.takeover_after {
                    return Err(Error::Busy(name.to_owned()));
                }
                tracing::warn!(stream = name, "replacing a silent publisher");
                inner.stream.discontinuity(now);
                live.drain(&mut inner);
            }
            // Another picture size, profile or sample rate: the new
            // session gets its own init segments (a new HLS map, a new
            // DASH Period) after the discontinuity. The same tracks: nothing.
            let generation = inner.stream.generation();
            inner
                .stream
                .reconfigure(tracks)
                .map_err(|e| Error::CodecChanged(name.to_owned(), e.to_string()))?;
            if inner.stream.generation() != generation {
                tracing::info!(
                    stream = name,
                    "the returning publisher changed its codec configuration; a new period begins"
                );
                if inner.recorder.is_some() {
                    // A fragmented MP4 has one init segment: a new recording.
                    inner.recorder = self.recorder(name, &inner.stream);
                }
            }
            if settings.record && inner.recorder.is_none() {
                // A stream restored from its spill records from here on.
                inner.recorder = self.recorder(name, &inner.stream);
            }
            if let Some(s) = &inner.spill {
                s.stream(&inner.stream);
            }
            inner.publisher = Some(id);
            inner.last_push = now;
            drop(inner);
            return Ok(Publisher { live, id });
        }
        let mut config = LiveConfig::new(tracks);
        config.segment_target = self.config.segment_target;
        config.part_target = self.config.part_target;
        config.max_segment = config.max_segment.max(self.config.segment_target * 4);
        config.max_lead_wait = config.max_lead_wait.max(self.config.segment_target);
        config.dvr_window = dvr_window.unwrap_or(self.config.dvr_window);
        config.max_bytes = Some(self.config.max_bytes_per_stream);
        config.timeline = self.config.timeline;
        let stream = LiveStream::new(config, now, unix_ms()).map_err(|source| Error::Packager {
            stream: name.to_owned(),
            source,
        })?;
        let recorder = if settings.record {
            self.recorder(name, &stream)
        } else {
            None
        };
        let spill = self.config.spill.as_ref().and_then(|root| {
            // Whatever is there could not be restored: a new stream replaces it.
            let _ = std::fs::remove_dir_all(root.join(name));
            Spill::new(root, name)
        });
        if let Some(s) = &spill {
            s.stream(&stream);
        }
        let live = Live::new(name, stream, Some(id), recorder, spill);
        streams.insert(name.to_owned(), live.clone());
        Ok(Publisher { live, id })
    }

    /// Starts recording `stream` (when recordings have a root), its init
    /// segments first.
    fn recorder(&self, name: &str, stream: &LiveStream) -> Option<crate::record::Recorder> {
        let root = self.config.recordings.as_ref()?;
        let tracks = stream
            .config()
            .tracks
            .iter()
            .enumerate()
            .map(|(i, t)| {
                let audio = stream
                    .track_info(TrackId(i))
                    .is_some_and(|(_, e, _)| e.channels > 0 && e.width == 0);
                (t.name.clone(), audio)
            })
            .collect();
        let rec = crate::record::Recorder::start(root, name, unix_ms() / 1000, tracks);
        for i in 0..stream.config().tracks.len() {
            if let Some(init) = stream.init(TrackId(i)) {
                rec.send(crate::record::Piece::Init(i, init));
            }
        }
        tracing::info!(stream = name, dir = %rec.dir.display(), "recording");
        Some(rec)
    }

    /// Drives every stream's timers (closing parts when input stalls).
    /// Runs until the runtime stops; one task for the whole node.
    pub async fn run_timers(self: Arc<Self>) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let all: Vec<Arc<Live>> = self
                .streams
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .values()
                .cloned()
                .collect();
            let now = Instant::now();
            for live in all {
                let mut inner = live.lock();
                if inner.stream.poll_timeout().is_some_and(|t| t <= now) {
                    inner.stream.handle_timeout(now);
                    live.drain(&mut inner);
                }
            }
        }
    }
}

impl Live {
    fn new(
        name: &str,
        stream: LiveStream,
        publisher: Option<u64>,
        recorder: Option<crate::record::Recorder>,
        spill: Option<Spill>,
    ) -> Arc<Live> {
        let input = stream
            .config()
            .tracks
            .iter()
            .map(|t| TrackInput {
                name: t.name.clone(),
                timescale: t.timescale,
                ..TrackInput::default()
            })
            .collect();
        Arc::new(Live {
            name: name.to_owned(),
            requests: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                stream,
                publisher,
                last_push: Instant::now(),
                input,
                recorder,
                spill,
            }),
            version: watch::Sender::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the packager in a
        // torn state (it changes nothing on error), so keep serving.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Takes the packager's events and wakes waiting requests.
    fn drain(&self, inner: &mut Inner) {
        let mut woke = false;
        while let Some(e) = inner.stream.poll_event() {
            if let Some(spill) = &inner.spill {
                spill.event(&inner.stream, &e);
            }
            match e {
                Event::SegmentReady { track, msn } => {
                    woke = true;
                    if let Some(rec) = &inner.recorder
                        && let Some(seg) = inner.stream.segment(track, msn)
                    {
                        rec.send(crate::record::Piece::Segment(track.0, seg.chunks));
                    }
                }
                Event::PartReady { .. } => woke = true,
                Event::SegmentEvicted(_) => {}
                _ => {}
            }
        }
        if woke {
            self.version.send_modify(|v| *v += 1);
        }
    }

    /// Reads the stream: `f` gets the packager and the current instant.
    /// Keep `f` short: it holds this stream's lock.
    pub fn read<R>(&self, f: impl FnOnce(&LiveStream, Instant) -> R) -> R {
        let inner = self.lock();
        f(&inner.stream, Instant::now())
    }

    /// Counts a data-plane request for this stream.
    pub fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of the stream's counters.
    pub fn stats(&self) -> LiveStats {
        let inner = self.lock();
        LiveStats {
            name: self.name.clone(),
            on_air: inner.publisher.is_some(),
            held_bytes: inner.stream.bytes_held(),
            last_frame_age: inner.last_push.elapsed(),
            tracks: inner.input.clone(),
            requests: self.requests.load(Ordering::Relaxed),
        }
    }

    /// Whether a publisher is connected.
    pub fn on_air(&self) -> bool {
        self.lock().publisher.is_some()
    }

    /// A receiver whose value changes whenever a part or segment is published.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.version.subscribe()
    }
}

impl Publisher {
    /// The stream this publisher feeds.
    pub fn live(&self) -> &Arc<Live> {
        &self.live
    }

    /// Pushes an access unit of track `track`. An error refuses this
    /// access unit only (the packager changes nothing); the caller logs it.
    pub fn push(&self, track: usize, au: AccessUnit) -> Result<(), headwater_packager::Error> {
        let now = Instant::now();
        let mut inner = self.live.lock();
        if inner.publisher != Some(self.id) {
            // Replaced by a newer publisher: this one's frames are not wanted.
            return Ok(());
        }
        inner.last_push = now;
        let (len, key, dts) = (au.data.len() as u64, au.keyframe, au.dts);
        let r = inner.stream.push(now, TrackId(track), au);
        if r.is_ok()
            && let Some(t) = inner.input.get_mut(track)
        {
            t.bytes += len;
            t.frames += 1;
            if key {
                t.keyframes += 1;
                if let Some(last) = t.last_key_dts {
                    t.keyframe_interval = Some(dts - last);
                }
                t.last_key_dts = Some(dts);
            }
        }
        self.live.drain(&mut inner);
        r
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        let mut inner = self.live.lock();
        if inner.publisher == Some(self.id) {
            inner.publisher = None;
            inner.stream.discontinuity(Instant::now());
            self.live.drain(&mut inner);
            if let Some(s) = &inner.spill {
                s.stream(&inner.stream);
            }
            tracing::info!(stream = %self.live.name, "publisher left; the stream continues when it returns");
        }
    }
}
