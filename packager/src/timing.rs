//! How a track's source timestamps become output timestamps.
//!
//! A sample's presentation time is `dts + composition offset + shift`, where
//! the shift comes from the edit list (ISO/IEC 14496-12 §8.6.6): a leading
//! empty edit delays the track, the first media edit's `media_time` says
//! which media time is presented first. Only that first media edit is
//! honoured; later edits (rare outside editing tools) are ignored.
//!
//! In the output the shift is either *baked* into the timestamps — tracks
//! with composition offsets get signed offsets in a version 1 `trun`, the
//! CMAF way, so no player has to understand edit lists — or, for tracks
//! without composition offsets whose edit skips media (AAC encoder priming),
//! *carried* as a one-entry edit list in the init segment, because only an
//! edit list tells a decoder to drop the priming samples.

use crate::mp4::{Track, TrackKind};
use crate::time::{Timescale, rescale};

/// The timing of one output track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackTiming {
    /// Presentation time = composition time + `shift` (media timescale).
    pub shift: i64,
    /// Added to source decode times to get `tfdt` values.
    pub decode_offset: u64,
    /// Added to source composition offsets in the output `trun`.
    pub cts_adjust: i64,
    /// `media_time` of the edit list written to the init segment, if any.
    pub edit_media_time: Option<i64>,
    /// Presentation time at which the track starts (the edit's start).
    pub start: i64,
    /// Presentation time at which the track ends.
    pub end: i64,
}

impl TrackTiming {
    /// Works out the timing of `track` in a movie of timescale `movie_scale`.
    pub fn of(track: &Track, movie_scale: Timescale) -> Self {
        let scale = track.timescale;
        let s = &track.samples;
        let mut empty = 0i64;
        let mut media = None;
        for e in &track.edits {
            if e.media_time == -1 {
                if media.is_none() {
                    empty += rescale(
                        e.segment_duration.min(i64::MAX as u64) as i64,
                        movie_scale,
                        scale,
                    );
                }
            } else if media.is_none() {
                media = Some(*e);
            }
        }
        let media_time = media.map_or(0, |e| e.media_time);
        let shift = empty - media_time;

        let presented = |i: usize| s.cts(i) + shift;
        // Reordering reaches back a few frames at most, so the latest
        // presentation end is among the last samples in decode order.
        let natural_end = (s.len().saturating_sub(256)..s.len())
            .map(|i| presented(i) + i64::from(s.duration(i)))
            .max()
            .unwrap_or(empty);
        let end = match media {
            Some(e) if e.segment_duration > 0 => {
                let d = rescale(
                    e.segment_duration.min(i64::MAX as u64) as i64,
                    movie_scale,
                    scale,
                );
                (empty + d).min(natural_end)
            }
            _ => natural_end,
        };
        let first = (0..s.len().min(64)).map(presented).min().unwrap_or(empty);
        let start = first.max(empty).min(end);

        let carry = media_time > 0 && !s.has_cts() && track.kind != TrackKind::Video;
        if carry {
            TrackTiming {
                shift,
                decode_offset: empty.max(0) as u64,
                cts_adjust: 0,
                edit_media_time: Some(media_time),
                start,
                end,
            }
        } else {
            TrackTiming {
                shift,
                decode_offset: shift.max(0) as u64,
                cts_adjust: shift.min(0),
                edit_media_time: None,
                start,
                end,
            }
        }
    }

    /// Presentation time of sample `i` of `track`.
    pub fn presentation(&self, track: &Track, i: usize) -> i64 {
        track.samples.cts(i) + self.shift
    }
}
