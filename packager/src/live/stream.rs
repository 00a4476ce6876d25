//! The state machine: access units in, parts and segments out.
//! See the module documentation of [`crate::live`] for the rules.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::part::{self, Sample};
use super::window::{Part, SegmentBytes, Window, part_number};
use super::{AccessUnit, Event, LiveConfig, Timeline, TrackConfig, TrackId, TrackStats, ticks};
use crate::codec::SampleEntry;
use crate::error::{Error, Result};
use crate::fmp4::{InitTrack, write_init_track};
use crate::fourcc::types;
use crate::lang::iso639_2;
use crate::mp4::TrackKind;
use crate::time::{Timescale, clamp_i64, saturating_u64};

const NANOS: i128 = 1_000_000_000;

/// A sample waiting to be placed, with the session it came from.
#[derive(Clone, Debug)]
pub(super) struct Queued {
    pub(super) s: Sample,
    pub(super) session: u32,
}

/// Where the lead track started segment `msn`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Boundary {
    /// Decode time of the lead's first sample (lead timescale).
    pub(crate) start: u64,
    pub(crate) session: u32,
    pub(crate) disc_seq: u64,
}

/// [`Timeline::Input`]: the lead track's slots as one session saw them.
#[derive(Clone, Copy, Debug)]
pub(super) struct SlotWatch {
    pub(super) session: u32,
    /// Output decode time of the session's first lead access unit: every
    /// slot starting at or after it was seen from its start.
    pub(super) from: u64,
    /// The slot of the last keyframe seen.
    pub(super) key_slot: Option<u64>,
}

/// A session's mapping from input to output time, in nanoseconds.
#[derive(Clone, Copy, Debug)]
struct SessionMap {
    /// Input time of the session's first access unit.
    pub(super) origin_ns: i128,
    /// Output time it is placed at.
    pub(super) start_ns: i128,
}

/// Where a discontinuity sequence (a publisher session) starts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Period {
    /// Output time of its first segment (lead timescale).
    pub(crate) start: u64,
    /// Wall clock minus output time in this period, in nanoseconds: the
    /// time the publisher was away before it, and before it, summed.
    pub(crate) wall_ns: i64,
    /// The codec configuration its segments use ([`LiveStream::reconfigure`]).
    pub(crate) generation: u32,
}

/// A track's codec configuration of an earlier generation, kept while
/// segments made with it are in the window.
#[derive(Debug)]
pub(crate) struct Setup {
    pub(crate) entry: SampleEntry,
    pub(crate) init: Arc<[u8]>,
}

#[derive(Debug)]
pub(crate) struct Track {
    pub(crate) name: String,
    pub(crate) entry: SampleEntry,
    pub(crate) kind: TrackKind,
    pub(crate) scale: Timescale,
    pub(crate) language: Option<String>,
    pub(crate) bandwidth: Option<u64>,
    pub(crate) init: Arc<[u8]>,
    /// Earlier generations' configurations still in the window.
    pub(crate) earlier: BTreeMap<u32, Setup>,
    /// Ticks per second of the input timestamps, when they are not `scale`
    /// (a returning publisher with another clock rate): converted on push.
    pub(super) input_scale: Option<Timescale>,
    pub(crate) window: Window,
    /// Samples of the part being filled.
    pub(super) open: Vec<Sample>,
    pub(super) open_duration: u64,
    pub(super) open_since: Option<Instant>,
    /// `mfhd` sequence number of the next chunk.
    pub(super) chunk_seq: u32,
    /// The last access unit, waiting for the next one to know its duration.
    pub(super) pending: Option<Queued>,
    /// Followers: samples not yet known to belong to a segment.
    pub(super) queue: VecDeque<Queued>,
    /// The session the input mapping below belongs to.
    pub(super) session: Option<u32>,
    pub(super) offset: i128,
    pub(super) cts_shift: Option<i64>,
    /// How much earlier than the state machine's the decode times in the
    /// bytes are (the B-frame delay, see `part::write_chunk`); set at the
    /// first part.
    pub(super) decode_lead: Option<u64>,
    pub(super) last_in: Option<i64>,
    /// The next output decode time may not be below this.
    pub(super) next_out: u64,
    pub(super) last_duration: u32,
    pub(crate) part_ticks: u64,
    pub(super) seg_ticks: u64,
    pub(super) max_seg_ticks: u64,
    pub(super) jump_ticks: u64,
    pub(super) wait_ticks: u64,
    pub(super) stats: TrackStats,
}

/// A live stream being packaged. See [`crate::live`].
#[derive(Debug)]
pub struct LiveStream {
    pub(crate) cfg: LiveConfig,
    pub(crate) tracks: Vec<Track>,
    pub(crate) lead: usize,
    pub(crate) boundaries: BTreeMap<u64, Boundary>,
    /// Discontinuity sequence → where its first segment starts.
    pub(crate) periods: BTreeMap<u64, Period>,
    pub(super) session: u32,
    map: Option<SessionMap>,
    /// [`Period::wall_ns`] of the current session.
    pub(super) wall_ns: i64,
    pub(super) last_boundary_session: Option<u32>,
    pub(super) disc_seq: u64,
    pub(super) next_msn: u64,
    pub(crate) first_msn: u64,
    pub(super) events: VecDeque<Event>,
    pub(super) bytes: u64,
    pub(crate) epoch: Instant,
    pub(crate) epoch_unix_ms: i64,
    /// `EXT-X-TARGETDURATION`: only grows.
    pub(crate) target_duration: u64,
    pub(crate) ended: bool,
    /// The current codec configuration's generation (0 at start).
    pub(crate) generation: u32,
    /// The tracks as the current publisher offered them (timescales
    /// included), which [`LiveStream::reconfigure`] compares with.
    pub(super) input: Vec<TrackConfig>,
    /// [`Timeline::Input`]: what the lead track's session has shown of
    /// its slots (a first segment starts only at a slot's first keyframe).
    pub(super) slots: Option<SlotWatch>,
    /// [`Timeline::Input`]: whether the current session kept the input
    /// timeline (its time did not go back), so it continues the previous
    /// one without a discontinuity.
    pub(super) continues: bool,
}

/// Where an accepted access unit goes.
#[derive(Clone, Copy, Debug)]
struct Placement {
    /// The track's composition shift (its first B-frame delay).
    shift: i64,
    /// Input decode time to output decode time, in the track's ticks.
    offset: i128,
    /// Output decode time.
    out: u64,
    /// Composition offset.
    cts: i32,
}

/// Converts `au`'s timestamps to `t`'s timescale when its input is on
/// another clock rate: one by one, the duration left to the next decode
/// time so the rounding never opens a hole.
fn to_track_clock(t: &Track, au: &mut AccessUnit) {
    if let Some(from) = t.input_scale {
        let to = t.scale;
        au.dts = crate::time::rescale(au.dts, from, to);
        au.pts = crate::time::rescale(au.pts, from, to);
        au.duration = None;
    }
}

/// Checks that decode time `dts` of track `idx` (`t`) follows `last`, the
/// one before it in the same session: later, and not by more than the
/// jump limit.
fn check_follows(idx: usize, t: &Track, dts: i64, last: i64) -> Result<()> {
    if dts <= last {
        return Err(Error::NonMonotonicDts {
            track: idx,
            dts,
            previous: last,
        });
    }
    if dts.abs_diff(last) > t.jump_ticks {
        return Err(Error::TimestampJump {
            track: idx,
            from: last,
            to: dts,
        });
    }
    Ok(())
}

fn valid_name(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

impl LiveStream {
    /// A stream with `config`'s tracks; `now` and `unix_ms` (wall-clock
    /// milliseconds since the Unix epoch) are the same instant, output time 0.
    pub fn new(config: LiveConfig, now: Instant, unix_ms: i64) -> Result<Self> {
        let bad = |reason: &'static str| Err(Error::LiveConfig(reason));
        if config.tracks.is_empty() {
            return bad("a live stream needs at least one track");
        }
        if config.part_target.is_zero() || config.segment_target < config.part_target {
            return bad("part_target must be above zero and at most segment_target");
        }
        if config.max_segment < config.segment_target {
            return bad("max_segment must be at least segment_target");
        }
        if config.max_lead_wait < config.segment_target {
            return bad("max_lead_wait must be at least segment_target");
        }
        let mut tracks = Vec::with_capacity(config.tracks.len());
        for (i, t) in config.tracks.iter().enumerate() {
            tracks.push(Self::track(&config, i, t)?);
        }
        for (i, t) in tracks.iter().enumerate() {
            if tracks[..i].iter().any(|u| u.name == t.name) {
                return bad("track names must be unique");
            }
        }
        let lead = tracks
            .iter()
            .position(|t| t.kind == TrackKind::Video)
            .unwrap_or(0);
        let target_duration = saturating_u64(config.segment_target.as_secs_f64().round().max(1.0));
        let input = config.tracks.clone();
        Ok(Self {
            cfg: config,
            tracks,
            lead,
            boundaries: BTreeMap::new(),
            periods: BTreeMap::new(),
            session: 0,
            map: None,
            wall_ns: 0,
            last_boundary_session: None,
            disc_seq: 0,
            next_msn: 0,
            first_msn: 0,
            events: VecDeque::new(),
            bytes: 0,
            epoch: now,
            epoch_unix_ms: unix_ms,
            target_duration,
            ended: false,
            generation: 0,
            input,
            slots: None,
            continues: false,
        })
    }

    fn track(cfg: &LiveConfig, i: usize, t: &TrackConfig) -> Result<Track> {
        if !valid_name(&t.name) {
            return Err(Error::LiveConfig(
                "track names are 1 to 64 of [A-Za-z0-9_-]",
            ));
        }
        let scale = Timescale::new(t.timescale).ok_or(Error::LiveConfig("zero timescale"))?;
        let entry = SampleEntry::from_box(&t.sample_entry)?;
        if !entry.is_supported() {
            return Err(Error::LiveConfig("unsupported sample entry"));
        }
        let kind = match entry.codec {
            crate::codec::Codec::Avc { .. }
            | crate::codec::Codec::Hevc { .. }
            | crate::codec::Codec::Av1 { .. } => TrackKind::Video,
            _ => TrackKind::Audio,
        };
        let id = u32::try_from(i + 1).map_err(|_| Error::LiveConfig("too many tracks"))?;
        let mut init = Vec::new();
        let lang3 = t.language.as_deref().map_or("und", iso639_2);
        write_init_track(
            &InitTrack {
                id,
                kind,
                handler: if kind == TrackKind::Video {
                    types::VIDE
                } else {
                    types::SOUN
                },
                timescale: scale,
                language: lang3,
                width: u32::from(entry.width),
                height: u32::from(entry.height),
                matrix: [0x0001_0000, 0, 0, 0, 0x0001_0000, 0, 0, 0, 0x4000_0000],
                sample_entry: &t.sample_entry,
                duration: 0,
            },
            &mut init,
        );
        let s = scale.get();
        Ok(Track {
            name: t.name.clone(),
            entry,
            kind,
            scale,
            language: t.language.clone(),
            bandwidth: t.bandwidth,
            init: init.into(),
            earlier: BTreeMap::new(),
            input_scale: None,
            window: Window::default(),
            open: Vec::new(),
            open_duration: 0,
            open_since: None,
            chunk_seq: 1,
            pending: None,
            queue: VecDeque::new(),
            session: None,
            offset: 0,
            cts_shift: None,
            decode_lead: None,
            last_in: None,
            next_out: 0,
            last_duration: 0,
            part_ticks: ticks(cfg.part_target, s).max(1),
            seg_ticks: ticks(cfg.segment_target, s).max(1),
            max_seg_ticks: ticks(cfg.max_segment, s).max(1),
            jump_ticks: ticks(cfg.max_jump, s).clamp(1, u64::from(u32::MAX)),
            wait_ticks: ticks(cfg.max_lead_wait, s).max(1),
            stats: TrackStats::default(),
        })
    }

    /// The lead track: the one whose keyframes cut segments for all.
    pub fn lead(&self) -> TrackId {
        TrackId(self.lead)
    }

    /// Whether a media playlist would list a segment: the lead track has a
    /// complete one (a player given a playlist without one gives up).
    pub fn has_segment(&self) -> bool {
        self.tracks[self.lead]
            .window
            .segments
            .iter()
            .any(|s| s.complete && !s.gap)
    }

    /// Sets the clock the stream follows from now on (a restored stream's:
    /// a spill does not record it). Its segments so far keep their numbers.
    pub fn set_timeline(&mut self, timeline: Timeline) {
        self.cfg.timeline = timeline;
    }

    /// The configuration.
    pub fn config(&self) -> &LiveConfig {
        &self.cfg
    }

    /// The track named `name`.
    pub fn track_id(&self, name: &str) -> Option<TrackId> {
        self.tracks.iter().position(|t| t.name == name).map(TrackId)
    }

    /// Every track's id, in configuration order.
    pub fn track_ids(&self) -> impl Iterator<Item = TrackId> + use<> {
        (0..self.tracks.len()).map(TrackId)
    }

    /// A track's name, codec facts and counters, or `None` for an unknown id.
    pub fn track_info(&self, track: TrackId) -> Option<(&str, &SampleEntry, TrackStats)> {
        self.tracks
            .get(track.0)
            .map(|t| (t.name.as_str(), &t.entry, t.stats))
    }

    /// Bytes held by all parts of all tracks (init segments not counted).
    pub fn bytes_held(&self) -> u64 {
        self.bytes
    }

    /// The output timescale's wall-clock time of `now`, in Unix milliseconds.
    pub fn unix_ms(&self, now: Instant) -> i64 {
        let d = now.saturating_duration_since(self.epoch);
        self.epoch_unix_ms
            .saturating_add(i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    fn get(&self, track: TrackId) -> Result<&Track> {
        self.tracks.get(track.0).ok_or(Error::UnknownTrack(track.0))
    }

    /// Takes one access unit of `track`. On error nothing changed.
    pub fn push(&mut self, now: Instant, track: TrackId, mut au: AccessUnit) -> Result<()> {
        let t = self.get(track)?;
        to_track_clock(t, &mut au);
        let idx = track.0;
        if self.ended {
            return Err(Error::LiveEnded);
        }
        // A trun gives a sample's size 32 bits, whatever the configuration allows.
        if au.data.len() > self.cfg.max_access_unit_bytes || u32::try_from(au.data.len()).is_err() {
            return Err(Error::AccessUnitTooLarge {
                track: idx,
                len: au.data.len(),
            });
        }
        // On the input timeline the video's composition shift must be the
        // same on every node: a keyframe's, so what comes before the
        // track's first keyframe is dropped here (it would be anyway).
        if self.cfg.timeline == Timeline::Input
            && t.kind == TrackKind::Video
            && t.cts_shift.is_none()
            && !au.keyframe
        {
            self.tracks[idx].stats.dropped += 1;
            // Seen, though: its slot was watched from here on (its decode
            // time is at most its output time).
            if idx == self.lead
                && let Ok(dts) = u64::try_from(au.dts)
            {
                self.watch_slots(self.session, dts, false);
            }
            return Ok(());
        }
        let (map, wall_ns) = self.session_map(now, t, &au);
        let placed = self.placement(idx, t, &au, map)?;
        let continues = match self.map {
            Some(_) => self.continues,
            None => self.cfg.timeline == Timeline::Input && self.continues_timeline(t, &au),
        };
        // Accepted: from here on nothing fails.
        self.map = Some(map);
        self.wall_ns = wall_ns;
        self.continues = continues;
        self.accept(now, idx, placed, au);
        Ok(())
    }

    /// The input → output mapping, as it will be after an access unit
    /// `au` of track `t`, and the session's wall-clock offset.
    fn session_map(&self, now: Instant, t: &Track, au: &AccessUnit) -> (SessionMap, i64) {
        if let Some(m) = self.map {
            return (m, self.wall_ns);
        }
        if self.cfg.timeline == Timeline::Input {
            // Not rebased; the wall clock of input time 0 from this
            // access unit's arrival (access units arrive in decode order,
            // at about their decode time).
            let elapsed = i128::try_from(now.saturating_duration_since(self.epoch).as_nanos())
                .expect("a Duration's nanoseconds take 94 bits");
            let dts_ns = i128::from(au.dts) * NANOS / i128::from(t.scale.get());
            let map = SessionMap {
                origin_ns: 0,
                start_ns: 0,
            };
            let wall = if self.continues_timeline(t, au) {
                self.wall_ns
            } else {
                clamp_i64(elapsed - dts_ns)
            };
            return (map, wall);
        }
        let last_end = self
            .tracks
            .iter()
            .map(|t| i128::from(t.next_out) * NANOS / i128::from(t.scale.get()))
            .max()
            .unwrap_or(0);
        // A returning session's first frame presents where the
        // last session's media ended: placed by its decode time, a
        // B-frame source would leave a hole of its reorder delay,
        // and players stall at holes that wide (hls.js jumps only
        // `maxBufferHole`, 0.1 s). Its decode time is that much
        // earlier; no track goes below its own end (see `placement`).
        let lead_ns =
            i128::from(au.pts.saturating_sub(au.dts).max(0)) * NANOS / i128::from(t.scale.get());
        let start_ns = (last_end - lead_ns).max(0);
        let elapsed = i128::try_from(now.saturating_duration_since(self.epoch).as_nanos())
            .expect("a Duration's nanoseconds take 94 bits");
        let away_ns = clamp_i64(elapsed - start_ns);
        let map = SessionMap {
            origin_ns: i128::from(au.dts) * NANOS / i128::from(t.scale.get()),
            start_ns,
        };
        (map, self.wall_ns.max(away_ns))
    }

    /// [`Timeline::Input`]: whether a new session's first access unit `au`
    /// (of track `t`) lands on the timeline where the stream left it: not
    /// before its track's end, and with the same codecs.
    fn continues_timeline(&self, t: &Track, au: &AccessUnit) -> bool {
        let shift = t.cts_shift.unwrap_or(0);
        let out = i128::from(au.dts) + i128::from(shift);
        t.session.is_some()
            && out >= i128::from(t.next_out)
            && self
                .periods
                .get(&self.disc_seq)
                .is_some_and(|p| p.generation == self.generation)
    }

    /// Where access unit `au` of track `idx` (`t`) goes under `map`, or
    /// why it cannot be taken.
    fn placement(
        &self,
        idx: usize,
        t: &Track,
        au: &AccessUnit,
        map: SessionMap,
    ) -> Result<Placement> {
        let video = t.kind == TrackKind::Video;
        let shift = t.cts_shift.unwrap_or(if video {
            au.pts.saturating_sub(au.dts)
        } else {
            0
        });
        let timestamp = |reason| Error::LiveTimestamp { track: idx, reason };
        let (offset, new_session) = if t.session == Some(self.session) {
            (t.offset, false)
        } else {
            let scale = i128::from(t.scale.get());
            let mut off = (map.start_ns - map.origin_ns) * scale / NANOS;
            let out = i128::from(au.dts) + off + i128::from(shift);
            if out < i128::from(t.next_out) {
                off += i128::from(t.next_out) - out;
            }
            (off, true)
        };
        if let (false, Some(last)) = (new_session, t.last_in) {
            check_follows(idx, t, au.dts, last)?;
        }
        let out = i128::from(au.dts) + offset + i128::from(shift);
        let out = u64::try_from(out)
            .ok()
            .filter(|&o| o < u64::MAX / 2)
            .ok_or(timestamp("decode time out of range"))?;
        let cts = i128::from(au.pts) - i128::from(au.dts) - i128::from(shift);
        let cts = i32::try_from(cts).map_err(|_| timestamp("composition offset out of range"))?;
        if !t.queue.is_empty()
            && t.queue
                .front()
                .is_some_and(|q| out.saturating_sub(q.s.dts) > t.wait_ticks)
        {
            return Err(Error::TrackAhead { track: idx });
        }
        Ok(Placement {
            shift,
            offset,
            out,
            cts,
        })
    }

    /// Takes access unit `au` of track `idx`, placed at `placed`: the
    /// one before it gets its duration and is placed, and `au` is placed
    /// too if it has a duration of its own, else it waits for the next.
    fn accept(&mut self, now: Instant, idx: usize, placed: Placement, au: AccessUnit) {
        let Placement {
            shift,
            offset,
            out,
            cts,
        } = placed;
        let session = self.session;
        let tr = &mut self.tracks[idx];
        tr.stats.accepted += 1;
        tr.cts_shift = Some(shift);
        tr.offset = offset;
        tr.session = Some(session);
        tr.last_in = Some(au.dts);
        let sample = Sample {
            dts: out,
            duration: au.duration.unwrap_or(0),
            cts,
            sync: au.keyframe || tr.kind != TrackKind::Video,
            data: au.data,
        };
        if let Some(mut p) = tr.pending.take() {
            // out > p.dts: monotonic input, same offset; the jump limit keeps it in u32.
            p.s.duration = u32::try_from(out - p.s.dts).unwrap_or(u32::MAX);
            self.place(now, idx, p);
        }
        let tr = &mut self.tracks[idx];
        if sample.duration > 0 {
            tr.next_out = out + u64::from(sample.duration);
            self.place(now, idx, Queued { s: sample, session });
        } else {
            tr.next_out = out + 1;
            tr.pending = Some(Queued { s: sample, session });
        }
        self.enforce_window();
    }

    /// The publisher went away; whatever comes next is a new session (a
    /// reconnect). Buffered frames are placed, open segments closed.
    pub fn discontinuity(&mut self, now: Instant) {
        self.end_session(now);
        self.session += 1;
        self.map = None;
        self.drain_all(now);
        for i in 0..self.tracks.len() {
            self.close_segment(i);
        }
        self.enforce_window();
    }

    /// The stream ended: everything is flushed, playlists get
    /// `EXT-X-ENDLIST`, and further pushes fail with [`Error::LiveEnded`].
    pub fn finish(&mut self, now: Instant) {
        self.discontinuity(now);
        self.ended = true;
    }

    /// Places every access unit still waiting for its duration, with the
    /// last known duration.
    fn end_session(&mut self, now: Instant) {
        for i in 0..self.tracks.len() {
            let tr = &mut self.tracks[i];
            if let Some(mut p) = tr.pending.take() {
                let guess = if tr.last_duration > 0 {
                    tr.last_duration
                } else {
                    u32::try_from(tr.part_ticks / 4).unwrap_or(u32::MAX).max(1)
                };
                p.s.duration = guess;
                tr.next_out = p.s.dts + u64::from(guess);
                self.place(now, i, p);
            }
        }
    }

    /// When [`Self::handle_timeout`] next has something to do.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.tracks
            .iter()
            .filter_map(|t| t.open_since)
            .min()
            .map(|since| since + self.stall_after())
    }

    /// How long a part may stay open on the wall clock: a part target; on
    /// the input timeline three, or 1 s if more, since a part closed by
    /// the clock is cut where no other node cuts it, and a publisher's
    /// pacing (or ingest's buffering) makes its frames arrive in bursts.
    fn stall_after(&self) -> Duration {
        match self.cfg.timeline {
            Timeline::Arrival => self.cfg.part_target,
            Timeline::Input => (self.cfg.part_target * 3).max(Duration::from_secs(1)),
        }
    }

    /// Closes parts that have been open for a part target on the wall
    /// clock without filling up (the input stalled).
    pub fn handle_timeout(&mut self, now: Instant) {
        let limit = self.stall_after();
        for i in 0..self.tracks.len() {
            if self.tracks[i].open_since.is_some_and(|s| now >= s + limit) {
                self.flush_part(i);
            }
        }
    }

    /// The next event, oldest first.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    pub(super) fn append(&mut self, now: Instant, idx: usize, s: Sample) {
        let d = u64::from(s.duration);
        let tr = &self.tracks[idx];
        if !tr.open.is_empty() && tr.open_duration + d > tr.part_ticks {
            self.flush_part(idx);
        }
        let tr = &mut self.tracks[idx];
        if tr.open.is_empty() {
            tr.open_since = Some(now);
        }
        tr.open_duration += d;
        tr.last_duration = s.duration;
        tr.open.push(s);
        if tr.open_duration + d > tr.part_ticks {
            self.flush_part(idx);
        }
    }

    /// Publishes the open part of track `idx`, if it has samples.
    pub(super) fn flush_part(&mut self, idx: usize) {
        let input = self.cfg.timeline == Timeline::Input;
        let tr = &mut self.tracks[idx];
        tr.open_since = None;
        if tr.open.is_empty() {
            return;
        }
        let samples = std::mem::take(&mut tr.open);
        let duration = std::mem::take(&mut tr.open_duration);
        let Some(seg) = tr.window.segments.back_mut().filter(|s| !s.complete) else {
            // Samples are only appended after a segment was opened.
            debug_assert!(false, "samples without an open segment");
            return;
        };
        let id = u32::try_from(idx + 1).expect("LiveStream::track numbers tracks in 32 bits");
        // Fixed at the track's first part, so decode times stay continuous
        // in the bytes; never more than that part's decode time, so none
        // goes below zero.
        let shift = u64::try_from(tr.cts_shift.unwrap_or(0)).unwrap_or(0);
        let lead = *tr.decode_lead.get_or_insert(shift.min(samples[0].dts));
        // On the input timeline the `mfhd` number is the part's own
        // (segment and part), so every node writes the same bytes.
        let seq = if input {
            // Wrapping: only the low bits of each matter (mfhd counts mod 2^32).
            let low = |v: u64| u32::try_from(v & u64::from(u32::MAX)).unwrap_or(0);
            low(seg.msn << 8).wrapping_add(low(seg.parts.len() as u64 + 1))
        } else {
            tr.chunk_seq
        };
        let bytes: Arc<[u8]> = part::write_chunk(id, seq, &samples, lead).into();
        tr.chunk_seq = tr.chunk_seq.wrapping_add(1);
        self.bytes += bytes.len() as u64;
        seg.parts.push(Part {
            duration,
            independent: samples[0].sync,
            bytes,
        });
        seg.duration += duration;
        self.events.push_back(Event::PartReady {
            track: TrackId(idx),
            msn: seg.msn,
            part: part_number(seg.parts.len() - 1),
        });
    }

    /// Completes the open segment of track `idx`, if any.
    pub(super) fn close_segment(&mut self, idx: usize) {
        self.flush_part(idx);
        let tr = &mut self.tracks[idx];
        let scale = tr.scale.get();
        let Some(seg) = tr.window.segments.back_mut().filter(|s| !s.complete) else {
            return;
        };
        seg.complete = true;
        let secs = (seg.duration + u64::from(scale) / 2) / u64::from(scale);
        self.target_duration = self.target_duration.max(secs);
        self.events.push_back(Event::SegmentReady {
            track: TrackId(idx),
            msn: seg.msn,
        });
    }

    /// Wall clock minus output time, in nanoseconds, in the segments of
    /// discontinuity sequence `disc`.
    pub(crate) fn wall_ns(&self, disc: u64) -> i64 {
        self.periods
            .range(..=disc)
            .next_back()
            .map_or(self.wall_ns, |(_, p)| p.wall_ns)
    }

    /// The discontinuity sequence number of the oldest segment held (for
    /// a playlist with no segments).
    pub(crate) fn current_disc_seq(&self) -> u64 {
        self.boundaries
            .values()
            .next()
            .map_or(self.disc_seq, |b| b.disc_seq)
    }

    /// The init segment of `track` in its current configuration.
    pub fn init(&self, track: TrackId) -> Option<Arc<[u8]>> {
        self.tracks.get(track.0).map(|t| t.init.clone())
    }

    /// The init segment of `track` for configuration `generation` (see
    /// [`LiveStream::reconfigure`]), while segments of it are in the window.
    pub fn init_of(&self, track: TrackId, generation: u32) -> Option<Arc<[u8]>> {
        let t = self.tracks.get(track.0)?;
        if generation == self.generation {
            return Some(t.init.clone());
        }
        t.earlier.get(&generation).map(|s| s.init.clone())
    }

    /// `t`'s sample entry in configuration `generation`.
    pub(crate) fn entry_of<'a>(&self, t: &'a Track, generation: u32) -> &'a SampleEntry {
        if generation == self.generation {
            return &t.entry;
        }
        t.earlier.get(&generation).map_or(&t.entry, |s| &s.entry)
    }

    /// The current codec configuration's generation: 0, then one more at
    /// every [`Self::reconfigure`] that changed something.
    pub fn generation(&self) -> u32 {
        self.generation
    }

    /// The configuration generation of discontinuity sequence `disc`.
    pub(crate) fn generation_of(&self, disc: u64) -> u32 {
        self.periods
            .range(..=disc)
            .next_back()
            .map_or(self.generation, |(_, p)| p.generation)
    }

    /// A returning publisher's tracks with another codec configuration
    /// (another picture size, profile, sample rate): the next session's
    /// segments use a new init segment — a new `EXT-X-MAP` after the
    /// `EXT-X-DISCONTINUITY`, a new DASH `Period` with its own
    /// initialization — while the window's earlier segments keep theirs.
    ///
    /// Only between sessions (after [`Self::discontinuity`] or before the
    /// first push), and only with the same tracks: same names, same kinds,
    /// in the same order. A track keeps its timescale; input timestamps on
    /// another clock rate are converted as they are pushed. On error
    /// nothing changed.
    pub fn reconfigure(&mut self, tracks: Vec<TrackConfig>) -> Result<()> {
        if tracks == self.input {
            return Ok(());
        }
        if self.map.is_some() {
            return Err(Error::LiveConfig(
                "the codec configuration changes only between publisher sessions",
            ));
        }
        let same_names = tracks.len() == self.tracks.len()
            && tracks
                .iter()
                .zip(&self.tracks)
                .all(|(n, t)| n.name == t.name);
        if !same_names {
            return Err(Error::LiveConfig(
                "a returning publisher must send the same tracks; only their codec configuration may change",
            ));
        }
        let mut fresh = Vec::with_capacity(tracks.len());
        let mut output = Vec::with_capacity(tracks.len());
        for (i, (t, old)) in tracks.iter().zip(&self.tracks).enumerate() {
            // Built on the track's own timescale: its segments stay on one clock.
            let on_scale = TrackConfig {
                timescale: old.scale.get(),
                ..t.clone()
            };
            let new = Self::track(&self.cfg, i, &on_scale)?;
            output.push(on_scale);
            if new.kind != old.kind {
                return Err(Error::LiveConfig(
                    "a returning publisher's track changed kind (video, audio)",
                ));
            }
            let input = Timescale::new(t.timescale).ok_or(Error::LiveConfig("zero timescale"))?;
            fresh.push((new, input));
        }
        // Checked: from here on nothing fails.
        let old = self.generation;
        self.generation += 1;
        for (tr, (new, input)) in self.tracks.iter_mut().zip(fresh) {
            let entry = std::mem::replace(&mut tr.entry, new.entry);
            let init = std::mem::replace(&mut tr.init, new.init);
            tr.earlier.insert(old, Setup { entry, init });
            tr.language = new.language;
            tr.bandwidth = new.bandwidth;
            tr.input_scale = (input != tr.scale).then_some(input);
        }
        self.cfg.tracks = output;
        self.input = tracks;
        Ok(())
    }

    /// Forgets configurations no segment in the window uses any more.
    pub(super) fn forget_setups(&mut self) {
        let oldest = self
            .boundaries
            .values()
            .next()
            .map_or(self.generation, |b| self.generation_of(b.disc_seq));
        for t in &mut self.tracks {
            t.earlier.retain(|&g, _| g >= oldest);
        }
    }

    /// Part `part` of segment `msn` of `track`, once published.
    pub fn part(&self, track: TrackId, msn: u64, part: u32) -> Option<Arc<[u8]>> {
        let seg = self.tracks.get(track.0)?.window.get(msn)?;
        seg.parts.get(part as usize).map(|p| p.bytes.clone())
    }

    /// Segment `msn` of `track`: `styp` and the parts published so far
    /// (see [`SegmentBytes::complete`]); `None` outside the window or for a
    /// gap.
    pub fn segment(&self, track: TrackId, msn: u64) -> Option<SegmentBytes> {
        let seg = self.tracks.get(track.0)?.window.get(msn)?;
        if seg.gap {
            return None;
        }
        let mut chunks = Vec::with_capacity(seg.parts.len() + 1);
        chunks.push(part::styp());
        chunks.extend(seg.parts.iter().map(|p| p.bytes.clone()));
        Some(SegmentBytes {
            chunks,
            complete: seg.complete,
        })
    }
}
