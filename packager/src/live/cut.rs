//! Where samples go: the lead track cuts segments (keyframe after the
//! segment target, any frame after `max_segment`, a new session), the
//! other tracks follow its boundaries. See the cut rules in [`crate::live`].

use std::time::Instant;

use super::stream::{Boundary, LiveStream, Period, Queued, SlotWatch};
use super::window::Segment;
use super::{Event, Timeline, TrackId};
use crate::mp4::TrackKind;
use crate::time::rescale;

impl LiveStream {
    pub(super) fn place(&mut self, now: Instant, idx: usize, q: Queued) {
        if idx == self.lead {
            self.place_lead(now, q);
            self.drain_all(now);
        } else {
            self.tracks[idx].queue.push_back(q);
            self.drain(now, idx);
        }
    }

    fn place_lead(&mut self, now: Instant, q: Queued) {
        let idx = self.lead;
        let input = self.cfg.timeline == Timeline::Input;
        let t = q.s.dts;
        let first_key = input && self.watch_slots(q.session, t, q.s.sync);
        let tr = &self.tracks[idx];
        let slot = |x: u64| x / tr.seg_ticks;
        let cut = match tr.window.open() {
            None => true,
            Some(c) if c.session != q.session => true,
            Some(c) => {
                let el = t.saturating_sub(c.start);
                let due = if input {
                    slot(t) > slot(c.start)
                } else {
                    el >= tr.seg_ticks
                };
                (q.s.sync && due) || el >= tr.max_seg_ticks
            }
        };
        if cut {
            let video = tr.kind == TrackKind::Video;
            let fresh = tr.window.open().is_none_or(|c| c.session != q.session);
            // On the input timeline a first segment starts at a slot's
            // first keyframe, as on every node fed the same input.
            if fresh && ((video && !q.s.sync) || (input && !first_key)) {
                self.tracks[idx].stats.dropped += 1;
                return;
            }
            self.close_segment(idx);
            let disc = self.last_boundary_session.is_some_and(|s| s != q.session)
                && !(input && self.continues);
            if disc {
                self.disc_seq += 1;
            }
            let msn = if input {
                self.input_msn(t, fresh)
            } else {
                self.next_msn
            };
            self.next_msn = msn + 1;
            self.last_boundary_session = Some(q.session);
            self.boundaries.insert(
                msn,
                Boundary {
                    start: t,
                    session: q.session,
                    disc_seq: self.disc_seq,
                },
            );
            let wall_ns = self.wall_ns;
            self.periods.entry(self.disc_seq).or_insert(Period {
                start: t,
                wall_ns,
                generation: self.generation,
            });
            self.open_segment(idx, msn, t, q.session);
        }
        self.append(now, idx, q.s);
    }

    /// Notes a lead access unit at `t` of `session`; whether it is the
    /// first keyframe of its slot, that slot seen from its start.
    pub(super) fn watch_slots(&mut self, session: u32, t: u64, key: bool) -> bool {
        let seg = self.tracks[self.lead].seg_ticks;
        let slot = t / seg;
        let w = self.slots.get_or_insert(SlotWatch {
            session,
            from: t,
            key_slot: None,
        });
        if w.session != session {
            *w = SlotWatch {
                session,
                from: t,
                key_slot: None,
            };
        }
        let first = key && w.from <= slot * seg && w.key_slot != Some(slot);
        if key {
            w.key_slot = Some(slot);
        }
        first
    }

    /// [`Timeline::Input`]: the number of a lead segment starting at `t`:
    /// its slot's for the stream's first segment and for a `fresh`
    /// session's that skipped slots (the skipped numbers become gaps,
    /// their boundaries on the slots); else the next number.
    fn input_msn(&mut self, t: u64, fresh: bool) -> u64 {
        let seg = self.tracks[self.lead].seg_ticks;
        let slot = t / seg;
        if self.next_msn == 0 && self.boundaries.is_empty() {
            self.first_msn = slot;
            return slot;
        }
        if !fresh || slot <= self.next_msn {
            return self.next_msn;
        }
        // Tagged with the session that ended: no sample of the new one
        // belongs to them (followers fill them as gaps too).
        let session = self.last_boundary_session.unwrap_or(0);
        for g in self.next_msn..slot {
            self.boundaries.insert(
                g,
                Boundary {
                    start: g * seg,
                    session,
                    disc_seq: self.disc_seq,
                },
            );
        }
        slot
    }

    pub(super) fn drain_all(&mut self, now: Instant) {
        for i in 0..self.tracks.len() {
            if i != self.lead {
                self.drain(now, i);
            }
        }
    }

    fn drain(&mut self, now: Instant, idx: usize) {
        while let Some(q) = self.tracks[idx].queue.front() {
            match self.decide(idx, q) {
                Decision::Wait => break,
                Decision::Drop => {
                    let tr = &mut self.tracks[idx];
                    tr.queue.pop_front();
                    tr.stats.dropped += 1;
                }
                Decision::Place(msn) => {
                    let Some(q) = self.tracks[idx].queue.pop_front() else {
                        break;
                    };
                    if self.tracks[idx].window.open().is_none_or(|c| c.msn != msn) {
                        self.close_segment(idx);
                        self.open_segment(idx, msn, q.s.dts, q.session);
                    }
                    self.append(now, idx, q.s);
                }
            }
        }
    }

    /// Lead time `t` in the timescale of track `idx`.
    pub(super) fn conv(&self, idx: usize, t: u64) -> u64 {
        let from = self.tracks[self.lead].scale;
        let t = i64::try_from(t).unwrap_or(i64::MAX);
        u64::try_from(rescale(t, from, self.tracks[idx].scale)).unwrap_or(0)
    }

    fn decide(&self, idx: usize, q: &Queued) -> Decision {
        let tr = &self.tracks[idx];
        let t = q.s.dts;
        // The latest boundary of the sample's session at or before it.
        let cand = self
            .boundaries
            .iter()
            .rev()
            .filter(|(_, b)| b.session == q.session)
            .find(|(_, b)| self.conv(idx, b.start) <= t)
            .map(|(m, _)| *m);
        if let Some(c) = tr.window.open().filter(|c| c.session == q.session) {
            let forced = t.saturating_sub(c.start) >= tr.max_seg_ticks;
            if !q.s.sync && !forced {
                return Decision::Place(c.msn);
            }
            let m = cand.filter(|&m| m > c.msn).unwrap_or(c.msn);
            return self.settle(idx, m, t, q.session);
        }
        let Some((&m0, first)) = self.boundaries.iter().find(|(_, b)| b.session == q.session)
        else {
            return if self.session > q.session {
                Decision::Drop
            } else {
                Decision::Wait
            };
        };
        if !q.s.sync {
            return Decision::Drop;
        }
        if t < self.conv(idx, first.start) {
            // Before the lead's first keyframe of the session (audio that
            // started a little earlier, a rendition with a smaller B-frame
            // delay): kept in that first segment when within a part target
            // of it, dropped when earlier (audio from while the lead waited
            // for its first keyframe would make the segment too long).
            let near = t + tr.part_ticks >= self.conv(idx, first.start);
            // Only right after the track's previous segment: a gap segment
            // in between would claim a later time than these frames have.
            let next = tr.window.last().map_or(self.first_msn, |l| l.msn + 1);
            let fresh = next == m0;
            return if near && fresh {
                Decision::Place(m0)
            } else {
                Decision::Drop
            };
        }
        let Some(m) = cand else {
            return Decision::Drop;
        };
        if tr.window.last().is_some_and(|l| l.msn >= m) {
            return Decision::Drop;
        }
        self.settle(idx, m, t, q.session)
    }

    /// A sample at `t` belongs to segment `m` unless the lead may still
    /// start a later segment before `t`.
    fn settle(&self, idx: usize, m: u64, t: u64, session: u32) -> Decision {
        if self.boundaries.contains_key(&(m + 1)) || self.session > session || self.ended {
            return Decision::Place(m);
        }
        let Some(b) = self.boundaries.get(&m) else {
            return Decision::Place(m);
        };
        // The lead cuts no earlier than a segment target after `b.start`
        // (on the input timeline, than the next slot); two ticks of slack
        // for the rescaling.
        let earliest = match self.cfg.timeline {
            Timeline::Arrival => self.conv(idx, b.start) + self.tracks[idx].seg_ticks,
            Timeline::Input => {
                let seg = self.tracks[self.lead].seg_ticks;
                self.conv(idx, (b.start / seg + 1) * seg)
            }
        };
        if t + 2 < earliest {
            Decision::Place(m)
        } else {
            Decision::Wait
        }
    }

    /// Starts segment `msn` of track `idx` at `start`, with gap segments
    /// for any numbers the track skipped.
    pub(super) fn open_segment(&mut self, idx: usize, msn: u64, start: u64, session: u32) {
        let from = self.tracks[idx]
            .window
            .last()
            .map_or(self.first_msn, |s| s.msn + 1)
            .max(self.first_msn);
        // A gap never starts before the track's own last segment ends: a
        // follower whose keyframes come later than the lead's (another
        // rendition's GOPs) can end past the lead's next boundary, and its
        // timeline (so its PDT) must not go back.
        let mut floor = self.tracks[idx]
            .window
            .last()
            .map_or(0, |l| l.start.saturating_add(l.duration));
        for g in from..msn {
            // Every number below `next_msn` and from `first_msn` on has a
            // boundary; the fallbacks only keep the numbering dense.
            let b = self.boundaries.get(&g).copied().unwrap_or(Boundary {
                start: 0,
                session,
                disc_seq: self.disc_seq,
            });
            // As long as the lead's segment (the boundaries may also span
            // a reconnect's pause); the lead's own gaps (slots a publisher
            // on the input timeline missed) reach the next boundary, the
            // first from where the lead's last segment ended.
            let (start, duration) = if idx == self.lead {
                let next = self.boundaries.get(&(g + 1)).map_or(start, |n| n.start);
                let from = if floor > 0 { floor } else { b.start };
                (from, next.saturating_sub(from))
            } else {
                let lead = self.tracks[self.lead]
                    .window
                    .get(g)
                    .map_or(0, |s| s.duration);
                let (at, length) = (self.conv(idx, b.start), self.conv(idx, lead));
                let start = at.max(floor);
                (start, length.saturating_sub(start - at))
            };
            floor = start + duration;
            self.tracks[idx].window.segments.push_back(Segment {
                msn: g,
                start,
                duration,
                parts: Vec::new(),
                complete: true,
                gap: true,
                disc_seq: b.disc_seq,
                session: b.session,
            });
            self.events.push_back(Event::SegmentReady {
                track: TrackId(idx),
                msn: g,
            });
        }
        let disc_seq = self
            .boundaries
            .get(&msn)
            .map_or(self.disc_seq, |b| b.disc_seq);
        self.tracks[idx].window.segments.push_back(Segment {
            msn,
            start,
            duration: 0,
            parts: Vec::new(),
            complete: false,
            gap: false,
            disc_seq,
            session,
        });
    }
}

/// Where a follower's next sample goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Place(u64),
    Wait,
    Drop,
}
