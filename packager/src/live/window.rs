//! What a track holds: its segments in the DVR window, each a list of
//! parts, and the byte access the origin serves them through.
//!
//! Segments of every track are kept in media-sequence order from the
//! stream's first held MSN, without holes: a track that had nothing for a
//! segment (an audio track that started late) holds a *gap* segment there,
//! written as `EXT-X-GAP` (RFC 8216bis §4.4.4.7).

use std::collections::VecDeque;
use std::sync::Arc;

use super::part;
use super::stream::LiveStream;
use super::{Event, TrackId, ticks};

/// A published part: one CMAF chunk (`moof` + `mdat`).
#[derive(Clone, Debug)]
pub(crate) struct Part {
    /// Sum of its sample durations.
    pub(crate) duration: u64,
    /// Whether it starts with a sync sample (`INDEPENDENT=YES`).
    pub(crate) independent: bool,
    /// The chunk's bytes.
    pub(crate) bytes: Arc<[u8]>,
}

/// One segment of one track.
#[derive(Clone, Debug)]
pub(crate) struct Segment {
    /// Media sequence number (shared by all tracks of the stream).
    pub(crate) msn: u64,
    /// Decode time of its first sample (track timescale).
    pub(crate) start: u64,
    /// Sum of its parts' durations (for a gap: the lead's segment duration).
    pub(crate) duration: u64,
    /// Its parts, in order.
    pub(crate) parts: Vec<Part>,
    /// No part will be added any more.
    pub(crate) complete: bool,
    /// The track had no samples for this segment.
    pub(crate) gap: bool,
    /// Discontinuity sequence number of the segment (RFC 8216bis §4.4.3.3).
    pub(crate) disc_seq: u64,
    /// The publisher session its samples came from.
    pub(crate) session: u32,
}

impl Segment {
    /// Bytes held by its parts.
    pub(crate) fn bytes(&self) -> u64 {
        self.parts.iter().map(|p| p.bytes.len() as u64).sum()
    }
}

/// A track's segments, oldest first, MSNs consecutive.
#[derive(Clone, Debug, Default)]
pub(crate) struct Window {
    pub(crate) segments: VecDeque<Segment>,
}

impl Window {
    /// The segment with number `msn`.
    pub(crate) fn get(&self, msn: u64) -> Option<&Segment> {
        let first = self.segments.front()?.msn;
        let i = usize::try_from(msn.checked_sub(first)?).ok()?;
        self.segments.get(i)
    }

    /// The segment being written, if any (always the last one).
    pub(crate) fn open(&self) -> Option<&Segment> {
        self.segments.back().filter(|s| !s.complete)
    }

    /// The last segment.
    pub(crate) fn last(&self) -> Option<&Segment> {
        self.segments.back()
    }

    /// The last published part: `(msn, part index)`.
    pub(crate) fn last_part(&self) -> Option<(u64, u32)> {
        self.segments
            .iter()
            .rev()
            .find(|s| !s.parts.is_empty())
            .map(|s| (s.msn, part_number(s.parts.len() - 1)))
    }

    /// The newest complete segment's number.
    pub(crate) fn last_complete(&self) -> Option<u64> {
        self.segments
            .iter()
            .rev()
            .find(|s| s.complete)
            .map(|s| s.msn)
    }
}

/// A segment's bytes: `styp` then its parts, shared rather than copied.
#[derive(Clone, Debug)]
pub struct SegmentBytes {
    /// `styp`, then one `moof` + `mdat` chunk per part. Concatenated, they
    /// are the segment.
    pub chunks: Vec<Arc<[u8]>>,
    /// Whether the segment is finished. An unfinished one (for low-latency
    /// DASH's chunked transfer) grows by a chunk per [`super::Event::PartReady`].
    pub complete: bool,
}

impl SegmentBytes {
    /// Total length in bytes.
    pub fn len(&self) -> u64 {
        self.chunks.iter().map(|c| c.len() as u64).sum()
    }

    /// Whether there are no bytes at all.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The bytes in one buffer (a copy; tests and small callers).
    pub fn to_vec(&self) -> Vec<u8> {
        self.chunks.iter().flat_map(|c| c.iter().copied()).collect()
    }
}

/// A segment that left the DVR window, handed to the caller to spill or
/// record (returned by [`super::LiveStream::poll_event`]).
#[derive(Clone, Debug)]
pub struct EvictedSegment {
    /// The track it belongs to.
    pub track: TrackId,
    /// Its media sequence number.
    pub msn: u64,
    /// Decode time of its first sample, in the track's timescale.
    pub start: u64,
    /// Its duration in the track's timescale.
    pub duration: u64,
    /// Its discontinuity sequence number.
    pub discontinuity_sequence: u64,
    /// Its bytes; `None` for a gap segment (the track had no samples).
    pub bytes: Option<SegmentBytes>,
}

impl LiveStream {
    /// Evicts what the DVR window and the byte cap no longer allow. Either
    /// keeps at least three target durations of complete segments: a live
    /// playlist may not get shorter than that (RFC 8216bis §6.2.2).
    pub(super) fn enforce_window(&mut self) {
        let lead = &self.tracks[self.lead];
        let scale = lead.scale.get();
        let window = ticks(self.cfg.dvr_window, scale);
        let min_keep = 3 * self.target_duration * u64::from(scale);
        let mut complete: u64 = lead
            .window
            .segments
            .iter()
            .filter(|s| s.complete)
            .map(|s| s.duration)
            .sum();
        while let Some(front) = self.tracks[self.lead].window.segments.front() {
            if !front.complete {
                break;
            }
            let rest = complete - front.duration;
            let over_bytes = self.cfg.max_bytes.is_some_and(|m| self.bytes > m);
            if (rest < window && !over_bytes) || rest < min_keep {
                break;
            }
            complete = rest;
            let msn = front.msn;
            self.evict(msn);
        }
    }

    fn evict(&mut self, msn: u64) {
        let styp = part::styp();
        for i in 0..self.tracks.len() {
            if self.tracks[i]
                .window
                .segments
                .front()
                .is_none_or(|s| s.msn != msn)
            {
                continue;
            }
            if self.tracks[i]
                .window
                .segments
                .front()
                .is_some_and(|s| !s.complete)
            {
                // A follower's open segment (only the last one can be open).
                self.close_segment(i);
            }
            let Some(seg) = self.tracks[i].window.segments.pop_front() else {
                continue;
            };
            self.bytes = self.bytes.saturating_sub(seg.bytes());
            let bytes = (!seg.gap).then(|| SegmentBytes {
                chunks: std::iter::once(styp.clone())
                    .chain(seg.parts.iter().map(|p| p.bytes.clone()))
                    .collect(),
                complete: true,
            });
            self.events.push_back(Event::SegmentEvicted(EvictedSegment {
                track: TrackId(i),
                msn,
                start: seg.start,
                duration: seg.duration,
                discontinuity_sequence: seg.disc_seq,
                bytes,
            }));
        }
        self.first_msn = msn + 1;
        self.boundaries = self.boundaries.split_off(&self.first_msn);
        if let Some(d) = self.boundaries.values().next().map(|b| b.disc_seq) {
            self.periods = self.periods.split_off(&d);
        }
        self.forget_setups();
    }
}

/// The number of part `i` of a segment, as URIs and playlists give it:
/// a part lasts a tick at least and holds a `moof` of its own, so memory
/// runs out long before a segment has 2^32 of them.
pub(crate) fn part_number(i: usize) -> u32 {
    u32::try_from(i).expect("fewer than 2^32 parts in a segment")
}
