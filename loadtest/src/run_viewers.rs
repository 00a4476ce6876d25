//! `viewers`: M simulated players, each on one keep-alive connection, at real-time pace.
//!
//! A player starts at an evenly spread offset within `--ramp`, fetches the manifest, its
//! rendition's playlist (HLS) and init segment and the first segment, and starts playing:
//! the *startup time* is the time to that point. It then keeps one segment of buffer: the
//! next segment of a track is requested when playback reaches the start of the segment
//! before it, and is due when playback reaches its own start. A segment that arrives late
//! is a *stall*: playback pauses for the delay. Each segment's fetch time is also recorded
//! as a fraction of its duration (above 1.0 a player cannot keep up).
//!
//! The main track follows the ladder (video renditions by bandwidth, or audio when there
//! is no video): player `i` starts on step `i % len` and moves one step every
//! `--switch-every`, up to the top and back down, fetching the new playlist and init
//! segment and continuing at the same media time. A separate audio rendition (HLS
//! `EXT-X-MEDIA`, DASH audio AdaptationSet) is a second track on the same connection. At
//! the end of the stream playback wraps to the first segment.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::catalog::{Catalog, Prepared, TrackKind};
use crate::client::{Conn, Sink};
use crate::stats::{self, Live, Percentiles, Shards, Stats};

/// Pause after a failed request before trying again.
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// Read buffer per player (smaller than a load connection's: many players, little rate).
const PLAYER_BUFFER: usize = 64 * 1024;

/// What players play.
#[derive(Clone)]
pub(crate) struct Stream {
    /// The origin's address.
    pub(crate) addr: SocketAddr,
    /// Request bytes per resource.
    pub(crate) requests: Arc<[Prepared]>,
    /// The catalog (same positions for every origin of a compare run).
    pub(crate) catalog: Arc<Catalog>,
    /// Main-track renditions by bandwidth.
    pub(crate) ladder: Arc<[usize]>,
    /// Second-track renditions (separate audio), possibly none.
    pub(crate) companions: Arc<[usize]>,
}

impl Stream {
    /// Builds the ladder from `catalog`, keeping only `ids` when given.
    pub(crate) fn ladders(catalog: &Catalog, ids: Option<&[String]>) -> (Vec<usize>, Vec<usize>) {
        let chosen: Vec<usize> = (0..catalog.renditions.len())
            .filter(|&i| !catalog.renditions[i].segments.is_empty())
            .filter(|&i| ids.is_none_or(|ids| ids.contains(&catalog.renditions[i].id)))
            .collect();
        let of = |k: TrackKind| -> Vec<usize> {
            let mut v: Vec<usize> = chosen
                .iter()
                .copied()
                .filter(|&i| catalog.renditions[i].kind == k)
                .collect();
            v.sort_by_key(|&i| catalog.renditions[i].bandwidth);
            v
        };
        let (video, audio) = (of(TrackKind::Video), of(TrackKind::Audio));
        if !video.is_empty() {
            (video, audio)
        } else if !audio.is_empty() {
            (audio, Vec::new())
        } else {
            (chosen, Vec::new())
        }
    }
}

/// How many players and for how long.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Spec {
    /// Players.
    pub(crate) viewers: usize,
    /// Playing time (from the first player's start).
    pub(crate) duration: Duration,
    /// Time between ladder moves (zero: never).
    pub(crate) switch_every: Duration,
    /// Players start spread over this.
    pub(crate) ramp: Duration,
    /// Per-request timeout.
    pub(crate) timeout: Duration,
}

/// Player counters of one shard.
#[derive(Debug, Clone)]
pub(crate) struct PlayerStats {
    /// The requests.
    pub(crate) requests: Stats,
    /// Startup times, µs.
    startup: Histogram<u64>,
    /// Segment fetch time / segment duration, in thousandths.
    fraction: Histogram<u64>,
    started: u64,
    stalls: u64,
    stall_us: u64,
    stalled_viewers: u64,
    switches: u64,
    segments: u64,
}

impl Default for PlayerStats {
    fn default() -> Self {
        Self {
            requests: Stats::default(),
            startup: stats::histogram(),
            fraction: stats::histogram(),
            started: 0,
            stalls: 0,
            stall_us: 0,
            stalled_viewers: 0,
            switches: 0,
            segments: 0,
        }
    }
}

impl PlayerStats {
    fn merge(&mut self, o: &PlayerStats) {
        self.requests.merge(&o.requests);
        self.startup
            .add(&o.startup)
            .expect("histograms share bounds");
        self.fraction
            .add(&o.fraction)
            .expect("histograms share bounds");
        self.started += o.started;
        self.stalls += o.stalls;
        self.stall_us += o.stall_us;
        self.stalled_viewers += o.stalled_viewers;
        self.switches += o.switches;
        self.segments += o.segments;
    }

    /// The player part of the report.
    pub(crate) fn summary(&self, viewers: usize) -> PlayerSummary {
        PlayerSummary {
            viewers: viewers as u64,
            started: self.started,
            startup_ms: Percentiles::of(&self.startup, 1000.0),
            fetch_fraction: Percentiles::of(&self.fraction, 1000.0),
            segments: self.segments,
            stalls: self.stalls,
            stall_s: self.stall_us as f64 / 1e6,
            viewers_stalled: self.stalled_viewers,
            switches: self.switches,
        }
    }
}

/// What the players saw (`result.viewers` in the JSON).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct PlayerSummary {
    /// Players run.
    pub(crate) viewers: u64,
    /// Players that got through startup.
    pub(crate) started: u64,
    /// Startup time, ms.
    pub(crate) startup_ms: Percentiles,
    /// Segment fetch time as a fraction of the segment's duration.
    pub(crate) fetch_fraction: Percentiles,
    /// Media segments fetched.
    pub(crate) segments: u64,
    /// Stalls (late segments).
    pub(crate) stalls: u64,
    /// Total stalled time, seconds.
    pub(crate) stall_s: f64,
    /// Players that stalled at least once.
    pub(crate) viewers_stalled: u64,
    /// Rendition switches.
    pub(crate) switches: u64,
}

/// Runs the players; returns what they counted and the measured time.
pub(crate) async fn run(stream: Stream, spec: Spec, live: Arc<Live>) -> (PlayerStats, Duration) {
    let start = Instant::now();
    let end = start + spec.duration;
    let shards = Arc::new(Shards::<PlayerStats>::new(spec.viewers.min(64)));
    let tasks: Vec<_> = (0..spec.viewers)
        .map(|i| {
            let offset = spec.ramp.mul_f64(i as f64 / spec.viewers.max(1) as f64);
            let player = Player {
                index: i,
                conn: Conn::new(stream.addr, PLAYER_BUFFER),
                stream: stream.clone(),
                spec,
                live: Arc::clone(&live),
                shards: Arc::clone(&shards),
            };
            tokio::spawn(player.play(start + offset, end))
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
    let elapsed = start.elapsed();
    let mut total = PlayerStats::default();
    let shards = Arc::into_inner(shards).expect("every player has finished");
    for shard in shards.into_inner() {
        total.merge(&shard);
    }
    (total, elapsed)
}

/// One track's position.
#[derive(Debug, Clone, Copy)]
struct Track {
    rendition: usize,
    /// Next segment, as a position in the rendition's list.
    pos: usize,
    /// Presentation time (seconds since playback start, laps included) of `pos`.
    media_time: f64,
    /// Presentation time at which the current lap started.
    lap_start: f64,
}

struct Player {
    index: usize,
    conn: Conn,
    stream: Stream,
    spec: Spec,
    live: Arc<Live>,
    shards: Arc<Shards<PlayerStats>>,
}

impl Player {
    async fn play(mut self, start_at: Instant, end: Instant) {
        tokio::time::sleep_until(start_at.into()).await;
        let ladder = Arc::clone(&self.stream.ladder);
        let mut step = self.index % ladder.len();
        let mut rising = true;
        let mut tracks = vec![self.track(ladder[step])];
        let companions = Arc::clone(&self.stream.companions);
        if !companions.is_empty() {
            tracks.push(self.track(companions[self.index % companions.len()]));
        }

        // Startup: manifest, then per track playlist, init and first segment.
        let t0 = Instant::now();
        while !self.startup(&mut tracks).await {
            if Instant::now() + RETRY_PAUSE >= end {
                return;
            }
            tokio::time::sleep(RETRY_PAUSE).await;
        }
        let mut playback = Instant::now();
        let startup = stats::micros(playback - t0);
        self.shards.with(self.index, |s| {
            s.started += 1;
            s.startup.saturating_record(startup);
        });
        self.live.active.fetch_add(1, Ordering::Relaxed);

        let switching = !self.spec.switch_every.is_zero() && ladder.len() > 1;
        let mut next_switch = playback + self.spec.switch_every;
        let mut stalled = false;
        loop {
            let k = (0..tracks.len())
                .min_by(|&a, &b| tracks[a].media_time.total_cmp(&tracks[b].media_time))
                .unwrap_or(0);
            let seg_duration = self.segment_duration(&tracks[k]);
            let due = playback + Duration::from_secs_f64(tracks[k].media_time);
            let request_at = due
                .checked_sub(Duration::from_secs_f64(seg_duration))
                .unwrap_or(due);
            if request_at >= end {
                break;
            }
            tokio::time::sleep_until(request_at.into()).await;

            if switching && k == 0 && Instant::now() >= next_switch {
                next_switch += self.spec.switch_every;
                if rising && step + 1 == ladder.len() || !rising && step == 0 {
                    rising = !rising;
                }
                step = if rising { step + 1 } else { step - 1 };
                if self.switch(&mut tracks[0], ladder[step]).await {
                    self.shards.with(self.index, |s| s.switches += 1);
                }
            }

            let segment =
                self.stream.catalog.renditions[tracks[k].rendition].segments[tracks[k].pos];
            let Some(response) = self.get(segment).await else {
                if Instant::now() + RETRY_PAUSE >= end {
                    break;
                }
                tokio::time::sleep(RETRY_PAUSE).await;
                continue;
            };
            let now = Instant::now();
            let fraction = response.total.as_secs_f64() / seg_duration.max(1e-3);
            let late = now.saturating_duration_since(due);
            if !late.is_zero() {
                playback += late;
                stalled = true;
                self.live.stalls.fetch_add(1, Ordering::Relaxed);
            }
            self.shards.with(self.index, |s| {
                s.segments += 1;
                s.fraction
                    .saturating_record((fraction * 1000.0).round().max(1.0) as u64);
                if !late.is_zero() {
                    s.stalls += 1;
                    s.stall_us += stats::micros(late);
                }
            });
            self.advance(&mut tracks[k], seg_duration);
        }
        self.live.active.fetch_sub(1, Ordering::Relaxed);
        if stalled {
            self.shards.with(self.index, |s| s.stalled_viewers += 1);
        }
    }

    fn track(&self, rendition: usize) -> Track {
        Track {
            rendition,
            pos: 0,
            media_time: 0.0,
            lap_start: 0.0,
        }
    }

    /// Fetches what a player needs before the first frame; false on any failure.
    async fn startup(&mut self, tracks: &mut [Track]) -> bool {
        if self.get(0).await.is_none() {
            return false;
        }
        for track in tracks.iter_mut() {
            let r = &self.stream.catalog.renditions[track.rendition];
            let (playlist, init, first) = (r.playlist, r.init, r.segments[0]);
            for index in [playlist.filter(|&p| p != 0), init, Some(first)]
                .into_iter()
                .flatten()
            {
                if self.get(index).await.is_none() {
                    return false;
                }
            }
            let d = self.segment_duration(track);
            self.advance(track, d);
        }
        true
    }

    /// Moves `track` to `rendition` at the same media time; true when the new playlist and
    /// init segment were fetched.
    async fn switch(&mut self, track: &mut Track, rendition: usize) -> bool {
        let catalog = Arc::clone(&self.stream.catalog);
        let new = &catalog.renditions[rendition];
        for index in [new.playlist.filter(|&p| p != 0), new.init]
            .into_iter()
            .flatten()
        {
            if self.get(index).await.is_none() {
                return false;
            }
        }
        let in_lap = track.media_time - track.lap_start;
        let mut t = 0.0;
        let mut found = None;
        for (pos, &s) in new.segments.iter().enumerate() {
            if t >= in_lap - 0.05 {
                found = Some((pos, t));
                break;
            }
            t += catalog.resources[s].duration;
        }
        track.rendition = rendition;
        match found {
            Some((pos, start)) => {
                track.pos = pos;
                track.lap_start = track.media_time - start;
            }
            None => {
                track.pos = 0;
                track.lap_start = track.media_time;
            }
        }
        true
    }

    fn segment_duration(&self, track: &Track) -> f64 {
        let r = &self.stream.catalog.renditions[track.rendition];
        let d = self.stream.catalog.resources[r.segments[track.pos]].duration;
        // A segment with no duration (a single-file representation of unknown length)
        // still paces the player.
        if d > 0.0 { d } else { 1.0 }
    }

    fn advance(&self, track: &mut Track, duration: f64) {
        track.media_time += duration;
        track.pos += 1;
        if track.pos
            == self.stream.catalog.renditions[track.rendition]
                .segments
                .len()
        {
            track.pos = 0;
            track.lap_start = track.media_time;
        }
    }

    /// One request, counted; the response when it succeeded.
    async fn get(&mut self, index: usize) -> Option<crate::client::Response> {
        let prepared = &self.stream.requests[index];
        let result = self
            .conn
            .fetch(&prepared.bytes, Sink::Discard, self.spec.timeout)
            .await;
        let verdict = self.shards.with(self.index, |s| {
            s.requests.record(&result, prepared.expected_len)
        });
        self.live.count(&result, verdict.is_ok());
        match (verdict, result) {
            (Ok(()), Ok(r)) => Some(r),
            _ => None,
        }
    }
}
