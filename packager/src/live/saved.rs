//! A live stream kept across a restart: what a spill writes as the stream
//! is made, and [`LiveStream::restore`], which rebuilds the stream from it
//! as if its publisher had left at the moment the process died.
//!
//! Two kinds of bytes, both written by the caller (this module does no
//! I/O):
//!
//! - **The stream record** ([`LiveStream::saved_stream`]): configuration,
//!   codec setups of every generation in the window, periods, session and
//!   discontinuity counters, the wall-clock epoch. Small; the caller
//!   replaces it whole (write and rename) when the lead track starts a
//!   segment and when a publisher comes or goes.
//! - **A segment record** per track and segment, appended to as the
//!   segment grows: a header ([`LiveStream::saved_segment_header`]), one
//!   record per part ([`LiveStream::saved_part`]), a closing record with
//!   its duration ([`LiveStream::saved_close`]). A record torn by a crash
//!   ends the segment at the record before it.
//!
//! Integers are big-endian; byte strings and text are a 32-bit length and
//! the bytes. Decoding never trusts a length beyond the bytes there are.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::stream::{Boundary, LiveStream, Period, Setup};
use super::window::{Part, Segment};
use super::{LiveConfig, TrackConfig, TrackId};
use crate::codec::SampleEntry;
use crate::error::{Error, Result};
use crate::time::Timescale;

const STREAM_MAGIC: &[u8; 5] = b"HWLS\x01";
const SEGMENT_MAGIC: &[u8; 5] = b"HWSG\x01";
const PART: u8 = b'P';
const CLOSE: u8 = b'C';

fn bad(reason: &'static str) -> Error {
    Error::LiveSpill(reason)
}

#[derive(Default)]
struct Enc(Vec<u8>);

impl Enc {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn u32(&mut self, v: u32) {
        self.0.extend(v.to_be_bytes());
    }
    fn u64(&mut self, v: u64) {
        self.0.extend(v.to_be_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend(v.to_be_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    fn bytes(&mut self, b: &[u8]) {
        self.len(b.len());
        self.0.extend(b);
    }
    fn opt_i64(&mut self, v: Option<i64>) {
        self.u8(u8::from(v.is_some()));
        self.i64(v.unwrap_or(0));
    }
    fn opt_u64(&mut self, v: Option<u64>) {
        self.u8(u8::from(v.is_some()));
        self.u64(v.unwrap_or(0));
    }
    fn duration(&mut self, d: Duration) {
        self.u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX));
    }
    fn track_config(&mut self, t: &TrackConfig) {
        self.bytes(t.name.as_bytes());
        self.bytes(&t.sample_entry);
        self.u32(t.timescale);
        self.u8(u8::from(t.language.is_some()));
        self.bytes(t.language.as_deref().unwrap_or("").as_bytes());
        self.opt_u64(t.bandwidth);
    }
}

struct Dec<'a>(&'a [u8]);

impl<'a> Dec<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.0.len() < n {
            return Err(bad("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }
    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }
    fn u32(&mut self) -> Result<u32> {
        let b = self.take(4)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self) -> Result<u64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(u64::from_be_bytes(a))
    }
    fn i64(&mut self) -> Result<i64> {
        let mut a = [0u8; 8];
        a.copy_from_slice(self.take(8)?);
        Ok(i64::from_be_bytes(a))
    }
    fn opt_i64(&mut self) -> Result<Option<i64>> {
        let some = self.flag()?;
        let v = self.i64()?;
        Ok(some.then_some(v))
    }
    fn bytes(&mut self) -> Result<&'a [u8]> {
        let n = self.u32()? as usize;
        self.take(n)
    }
    fn text(&mut self) -> Result<String> {
        String::from_utf8(self.bytes()?.to_vec()).map_err(|_| bad("text is not UTF-8"))
    }
    fn flag(&mut self) -> Result<bool> {
        Ok(self.u8()? != 0)
    }
    fn opt_u64(&mut self) -> Result<Option<u64>> {
        let some = self.flag()?;
        let v = self.u64()?;
        Ok(some.then_some(v))
    }
    fn duration(&mut self) -> Result<Duration> {
        Ok(Duration::from_nanos(self.u64()?))
    }
    /// A count of items at least `min` bytes each: never more than fit.
    fn count(&mut self, min: usize) -> Result<usize> {
        let n = self.u32()? as usize;
        if n > self.0.len() / min.max(1) {
            return Err(bad("a count beyond the bytes"));
        }
        Ok(n)
    }
    fn track_config(&mut self) -> Result<TrackConfig> {
        let name = self.text()?;
        let sample_entry = self.bytes()?.to_vec();
        let timescale = self.u32()?;
        let has_language = self.flag()?;
        let language = self.text()?;
        let bandwidth = self.opt_u64()?;
        Ok(TrackConfig {
            name,
            sample_entry,
            timescale,
            language: has_language.then_some(language),
            bandwidth,
        })
    }
    fn config(&mut self) -> Result<LiveConfig> {
        let mut cfg = LiveConfig::new(Vec::new());
        cfg.segment_target = self.duration()?;
        cfg.part_target = self.duration()?;
        cfg.max_segment = self.duration()?;
        cfg.dvr_window = self.duration()?;
        cfg.max_bytes = self.opt_u64()?;
        cfg.max_lead_wait = self.duration()?;
        cfg.max_jump = self.duration()?;
        cfg.max_access_unit_bytes = usize::try_from(self.u64()?).unwrap_or(usize::MAX);
        cfg.tracks = self.track_configs()?;
        Ok(cfg)
    }
    fn track_configs(&mut self) -> Result<Vec<TrackConfig>> {
        let n = self.count(16)?;
        (0..n).map(|_| self.track_config()).collect()
    }
}

/// One segment as a spill read it back.
#[derive(Debug, Default)]
struct Spilled {
    msn: u64,
    start: u64,
    disc_seq: u64,
    session: u32,
    gap: bool,
    parts: Vec<Part>,
    /// From the closing record, when it was written.
    duration: Option<u64>,
}

impl Spilled {
    /// Reads a segment record; a torn tail ends it where it tore.
    fn read(bytes: &[u8]) -> Result<Spilled> {
        let mut d = Dec(bytes);
        if d.take(SEGMENT_MAGIC.len())? != SEGMENT_MAGIC {
            return Err(bad("not a segment record"));
        }
        let mut s = Spilled {
            msn: d.u64()?,
            start: d.u64()?,
            disc_seq: d.u64()?,
            session: d.u32()?,
            gap: d.flag()?,
            ..Spilled::default()
        };
        while let Ok(tag) = d.u8() {
            let record = match tag {
                PART => (|| {
                    let duration = d.u64()?;
                    let independent = d.flag()?;
                    let bytes: Arc<[u8]> = d.bytes()?.into();
                    Ok::<_, Error>(Some(Part {
                        duration,
                        independent,
                        bytes,
                    }))
                })(),
                CLOSE => d.u64().map(|v| {
                    s.duration = Some(v);
                    None
                }),
                _ => break,
            };
            match record {
                Ok(Some(part)) => s.parts.push(part),
                Ok(None) => {}
                Err(_) => break,
            }
        }
        Ok(s)
    }

    fn duration(&self) -> u64 {
        self.duration
            .unwrap_or_else(|| self.parts.iter().map(|p| p.duration).sum())
    }
}

/// The lead's newest run of segments with consecutive numbers, each with
/// media, oldest first.
fn newest_run(lead: BTreeMap<u64, Spilled>) -> Vec<Spilled> {
    let mut run: Vec<Spilled> = Vec::new();
    for (_, seg) in lead.into_iter().rev() {
        let follows = run.last().is_none_or(|l| seg.msn + 1 == l.msn);
        if !follows || seg.parts.is_empty() {
            break;
        }
        run.push(seg);
    }
    run.reverse();
    run
}

/// The `mfhd` sequence number of a part (`moof` first, `mfhd` its first
/// child, as `part::write_chunk` writes them).
fn chunk_sequence(part: &[u8]) -> Option<u32> {
    if part.get(4..8)? != b"moof" || part.get(12..16)? != b"mfhd" {
        return None;
    }
    let b = part.get(20..24)?;
    Some(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
}

impl LiveStream {
    /// The stream record: everything but the segments.
    pub fn saved_stream(&self) -> Vec<u8> {
        let mut e = Enc::default();
        e.0.extend(STREAM_MAGIC);
        let c = &self.cfg;
        for d in [c.segment_target, c.part_target, c.max_segment, c.dvr_window] {
            e.duration(d);
        }
        e.opt_u64(c.max_bytes);
        e.duration(c.max_lead_wait);
        e.duration(c.max_jump);
        e.u64(c.max_access_unit_bytes as u64);
        e.len(self.tracks.len());
        c.tracks.iter().for_each(|t| e.track_config(t));
        e.len(self.input.len());
        self.input.iter().for_each(|t| e.track_config(t));
        e.i64(self.epoch_unix_ms);
        e.u32(self.generation);
        e.u32(self.session);
        e.u64(self.disc_seq);
        e.i64(self.wall_ns);
        e.len(self.periods.len());
        for (disc, p) in &self.periods {
            e.u64(*disc);
            e.u64(p.start);
            e.i64(p.wall_ns);
            e.u32(p.generation);
        }
        for t in &self.tracks {
            e.opt_i64(t.cts_shift);
            e.opt_u64(t.decode_lead);
            e.opt_u64(t.input_scale.map(|s| u64::from(s.get())));
            e.u32(t.chunk_seq);
            e.len(t.earlier.len());
            for (g, setup) in &t.earlier {
                e.u32(*g);
                e.bytes(&setup.entry.raw);
                e.bytes(&setup.init);
            }
        }
        e.0
    }

    /// The header of segment `msn` of `track`'s record.
    pub fn saved_segment_header(&self, track: TrackId, msn: u64) -> Option<Vec<u8>> {
        let seg = self.tracks.get(track.0)?.window.get(msn)?;
        let mut e = Enc::default();
        e.0.extend(SEGMENT_MAGIC);
        e.u64(seg.msn);
        e.u64(seg.start);
        e.u64(seg.disc_seq);
        e.u32(seg.session);
        e.u8(u8::from(seg.gap));
        Some(e.0)
    }

    /// The record of part `part` of segment `msn` of `track`.
    pub fn saved_part(&self, track: TrackId, msn: u64, part: u32) -> Option<Vec<u8>> {
        let seg = self.tracks.get(track.0)?.window.get(msn)?;
        let p = seg.parts.get(part as usize)?;
        let mut e = Enc(Vec::with_capacity(p.bytes.len() + 18));
        e.u8(PART);
        e.u64(p.duration);
        e.u8(u8::from(p.independent));
        e.bytes(&p.bytes);
        Some(e.0)
    }

    /// The closing record of segment `msn` of `track`, once complete.
    pub fn saved_close(&self, track: TrackId, msn: u64) -> Option<Vec<u8>> {
        let seg = self.tracks.get(track.0)?.window.get(msn)?;
        if !seg.complete {
            return None;
        }
        let mut e = Enc::default();
        e.u8(CLOSE);
        e.u64(seg.duration);
        Some(e.0)
    }

    /// The stream a spill kept: `stream` is its stream record, `segments`
    /// each track's segment records (any order; a track missing at the end
    /// has none). It is as the stream was
    /// when its publisher left: every segment complete, the next publisher
    /// a new session after a discontinuity, media sequence numbers going
    /// on. `now` and `unix_ms` are the same instant. Segments the lead
    /// track does not have in one run up to its newest are dropped, and
    /// then what the DVR window does not allow (as
    /// [`super::Event::SegmentEvicted`]s).
    pub fn restore(
        stream: &[u8],
        segments: &[Vec<Vec<u8>>],
        now: Instant,
        unix_ms: i64,
    ) -> Result<Self> {
        let mut d = Dec(stream);
        if d.take(STREAM_MAGIC.len())? != STREAM_MAGIC {
            return Err(bad("not a stream record"));
        }
        let cfg = d.config()?;
        let input = d.track_configs()?;
        let epoch_unix_ms = d.i64()?;
        let age = Duration::from_millis(u64::try_from(unix_ms - epoch_unix_ms).unwrap_or(0));
        let epoch = now
            .checked_sub(age)
            .ok_or(bad("the stream began before this clock's origin"))?;
        let mut s = LiveStream::new(cfg, epoch, epoch_unix_ms)?;
        s.input = input;
        s.generation = d.u32()?;
        // The session the process died in has ended.
        s.session = d.u32()?.wrapping_add(1);
        s.disc_seq = d.u64()?;
        s.wall_ns = d.i64()?;
        for _ in 0..d.count(28)? {
            let disc = d.u64()?;
            let period = Period {
                start: d.u64()?,
                wall_ns: d.i64()?,
                generation: d.u32()?,
            };
            s.periods.insert(disc, period);
        }
        s.read_track_states(&mut d)?;
        if segments.len() > s.tracks.len() {
            return Err(bad("segments of a track the stream does not have"));
        }
        s.restore_segments(segments);
        s.enforce_window();
        s.forget_setups();
        Ok(s)
    }

    /// Each track's state the stream record keeps.
    fn read_track_states(&mut self, d: &mut Dec<'_>) -> Result<()> {
        for t in &mut self.tracks {
            t.cts_shift = d.opt_i64()?;
            t.decode_lead = d.opt_u64()?;
            t.input_scale = d
                .opt_u64()?
                .and_then(|v| Timescale::new(u32::try_from(v).ok()?));
            t.chunk_seq = d.u32()?;
            for _ in 0..d.count(12)? {
                let generation = d.u32()?;
                let entry = SampleEntry::from_box(d.bytes()?)?;
                let init: Arc<[u8]> = d.bytes()?.into();
                t.earlier.insert(generation, Setup { entry, init });
            }
        }
        Ok(())
    }

    fn restore_segments(&mut self, records: &[Vec<Vec<u8>>]) {
        let mut read: Vec<BTreeMap<u64, Spilled>> = (0..self.tracks.len())
            .map(|i| {
                records
                    .get(i)
                    .into_iter()
                    .flatten()
                    .filter_map(|f| Spilled::read(f).ok())
                    .map(|s| (s.msn, s))
                    .collect()
            })
            .collect();
        let run = newest_run(std::mem::take(&mut read[self.lead]));
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            return;
        };
        let (first, last) = (first.msn, last.msn);
        for seg in &run {
            self.boundaries.insert(
                seg.msn,
                Boundary {
                    start: seg.start,
                    session: seg.session,
                    disc_seq: seg.disc_seq,
                },
            );
        }
        let last_lead = run.last().map(|s| (s.session, s.disc_seq));
        let lead_window: VecDeque<Segment> =
            run.into_iter().map(|s| self.spilled_segment(s)).collect();
        self.set_window(self.lead, lead_window);
        let lead = self.lead;
        for idx in (0..self.tracks.len()).filter(|&i| i != lead) {
            let mut kept = std::mem::take(&mut read[idx]);
            let mut window = VecDeque::new();
            for msn in first..=last {
                let seg = match kept.remove(&msn) {
                    Some(s) if !s.parts.is_empty() || s.gap => self.spilled_segment(s),
                    _ => self.gap_segment(idx, msn, &window),
                };
                window.push_back(seg);
            }
            self.set_window(idx, window);
        }
        for seg in &self.tracks[self.lead].window.segments {
            let scale = u64::from(self.tracks[self.lead].scale.get());
            self.target_duration = self.target_duration.max((seg.duration + scale / 2) / scale);
        }
        self.first_msn = first;
        self.next_msn = last + 1;
        if let Some((session, disc_seq)) = last_lead {
            self.last_boundary_session = Some(session);
            self.disc_seq = self.disc_seq.max(disc_seq);
        }
    }

    fn set_window(&mut self, idx: usize, window: VecDeque<Segment>) {
        let tr = &mut self.tracks[idx];
        tr.next_out = window.back().map_or(0, |s| s.start + s.duration);
        // The stream record may be older than the last parts.
        let last_seq = window
            .iter()
            .rev()
            .find_map(|s| s.parts.last())
            .and_then(|p| chunk_sequence(&p.bytes));
        if let Some(seq) = last_seq {
            tr.chunk_seq = tr.chunk_seq.max(seq.wrapping_add(1));
        }
        self.bytes += window.iter().map(Segment::bytes).sum::<u64>();
        tr.window.segments = window;
    }

    fn spilled_segment(&self, s: Spilled) -> Segment {
        Segment {
            msn: s.msn,
            start: s.start,
            duration: s.duration(),
            complete: true,
            gap: s.gap || s.parts.is_empty(),
            disc_seq: s.disc_seq,
            session: s.session,
            parts: s.parts,
        }
    }

    /// A gap where a follower's segment was not spilled: as long as the
    /// lead's, from where the follower's previous one ended.
    fn gap_segment(&self, idx: usize, msn: u64, before: &VecDeque<Segment>) -> Segment {
        let lead = self.tracks[self.lead]
            .window
            .get(msn)
            .map_or(0, |s| s.duration);
        let b = self.boundaries.get(&msn).copied().unwrap_or(Boundary {
            start: 0,
            session: 0,
            disc_seq: self.disc_seq,
        });
        let at = self.conv(idx, b.start);
        let start = before.back().map_or(at, |p| at.max(p.start + p.duration));
        Segment {
            msn,
            start,
            duration: self.conv(idx, lead),
            parts: Vec::new(),
            complete: true,
            gap: true,
            disc_seq: b.disc_seq,
            session: b.session,
        }
    }
}
