//! How a track's source timestamps become output timestamps.
//!
//! A sample's *presentation time* is `dts + composition offset + shift`,
//! where the shift comes from the edit list (ISO/IEC 14496-12 §8.6.6): a
//! leading empty edit delays the track, the first media edit's
//! `media_time` says which media time is presented first. Only that first
//! media edit is honoured; later edits (rare outside editing tools) are
//! ignored. Presentation time 0 is where the source's presentation starts;
//! segment boundaries, clips, subtitles and trick play all work in it.
//!
//! The output carries no edit list and no negative composition offset:
//! every reader must present it as the source is presented, and they do
//! not agree on either (ARCHITECTURE.md, "Timestamps", has the evidence
//! per reader). Instead every sample's *output* time is its presentation
//! time plus a delay `D` that the whole presentation shares
//! ([`Delay`]): large enough that no decode time of any track falls below
//! zero once the composition offsets are made non-negative. So:
//!
//! - composition offsets are the source's plus `cts_adjust` (≥ 0, only
//!   for a source with negative offsets), written in a version 0 `trun`;
//! - `tfdt` is `dts + shift − cts_adjust + D`;
//! - audio samples that present before the edit point (AAC encoder
//!   priming, the audio before a trim) are not packaged: `first_sample` is
//!   the first one that is (the frame straddling the edit point counts by
//!   its midpoint). Video keeps every sample (the decoder needs the frames
//!   before a mid-GOP edit point); those present before `D`.

use crate::index::{sample_number, signed};
use crate::mp4::{Track, TrackKind};
use crate::time::{Timescale, rescale};

/// The delay every track of a presentation shares: output time is
/// presentation time plus this. Kept as ticks of a timescale that divides
/// every track's, so it is exact in each of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Delay {
    /// Ticks of `scale`.
    pub ticks: i64,
    /// A divisor of every track's timescale (their greatest common divisor).
    pub scale: Timescale,
}

impl Default for Delay {
    fn default() -> Self {
        Delay {
            ticks: 0,
            scale: Timescale::new(1).expect("one is not zero"),
        }
    }
}

impl Delay {
    /// The smallest delay, exact in every one of `scales`, that is at least
    /// each `(ticks, scale)` of `leads`.
    pub fn covering(scales: &[Timescale], leads: &[(i64, Timescale)]) -> Self {
        let g = scales
            .iter()
            .map(|s| s.get())
            .reduce(gcd)
            .and_then(Timescale::new)
            .unwrap_or(Delay::default().scale);
        let ticks = leads
            .iter()
            .map(|&(t, s)| {
                // Rounded up: the delay must cover the lead.
                let num = i128::from(t.max(0)) * i128::from(g.get());
                let den = i128::from(s.get());
                i64::try_from((num + den - 1) / den).unwrap_or(i64::MAX)
            })
            .max()
            .unwrap_or(0);
        Delay { ticks, scale: g }
    }

    /// The delay in ticks of `scale` (exact when `self.scale` divides it).
    pub fn in_scale(&self, scale: Timescale) -> i64 {
        if scale.get() % self.scale.get() == 0 {
            self.ticks
                .saturating_mul(i64::from(scale.get() / self.scale.get()))
        } else {
            rescale(self.ticks, self.scale, scale)
        }
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The timing of one output track.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackTiming {
    /// Presentation time = composition time + `shift` (media timescale).
    pub shift: i64,
    /// Added to source composition offsets in the output `trun`: the
    /// negative of the track's most negative offset, else 0.
    pub cts_adjust: i64,
    /// The presentation's [`Delay`] in this track's timescale.
    pub delay: i64,
    /// The first sample packaged (decode order): audio samples that start
    /// before the edit point are left out.
    pub first_sample: u32,
    /// Presentation time at which the track starts (the edit's start, or
    /// the first packaged audio sample).
    pub start: i64,
    /// Presentation time at which the track ends.
    pub end: i64,
}

impl TrackTiming {
    /// Works out the timing of `track` in a movie of timescale
    /// `movie_scale`, with no delay yet ([`Self::with_delay`]).
    pub fn of(track: &Track, movie_scale: Timescale) -> Self {
        let scale = track.timescale;
        let s = &track.samples;
        let mut empty = 0i64;
        let mut media = None;
        for e in &track.edits {
            if e.media_time == -1 {
                if media.is_none() {
                    empty = empty.saturating_add(rescale(
                        i64::try_from(e.segment_duration).unwrap_or(i64::MAX),
                        movie_scale,
                        scale,
                    ));
                }
            } else if media.is_none() {
                media = Some(*e);
            }
        }
        let media_time = media.map_or(0, |e| e.media_time);
        // Saturating throughout: times near i64's range are hostile input
        // (the index refuses decode times past it), never a reason to wrap.
        let shift = empty.saturating_sub(media_time);

        let presented = |i: usize| s.cts(i).saturating_add(shift);
        // Reordering reaches back a few frames at most, so the latest
        // presentation end is among the last samples in decode order.
        let natural_end = (s.len().saturating_sub(256)..s.len())
            .map(|i| presented(i).saturating_add(i64::from(s.duration(i))))
            .max()
            .unwrap_or(empty);
        let end = match media {
            Some(e) if e.segment_duration > 0 => {
                let d = rescale(
                    i64::try_from(e.segment_duration).unwrap_or(i64::MAX),
                    movie_scale,
                    scale,
                );
                empty.saturating_add(d).min(natural_end)
            }
            _ => natural_end,
        };
        let first = (0..s.len().min(64)).map(presented).min().unwrap_or(empty);
        let mut start = first.max(empty).min(end);
        let mut first_sample = 0;
        if track.kind != TrackKind::Video {
            // Audio before the edit point (encoder priming, audio before a
            // trim) must not be presented, and no reader of fragmented MP4
            // drops it consistently (ffmpeg and GStreamer ignore the edit
            // list that would say so): left out, up to the frame that
            // straddles the edit point, which is kept when most of it
            // comes after. The first audio a player outputs is then within
            // half a frame of the source's (exactly it for the common
            // 1024-sample AAC priming).
            let kept = (0..s.len()).find(|&i| {
                2 * i128::from(presented(i)) + i128::from(s.duration(i)) > 2 * i128::from(start)
            });
            first_sample = sample_number(kept.map_or(s.len(), |i| i));
            if let Some(i) = kept {
                start = presented(i).min(end);
            }
        }
        let cts_adjust = if s.has_cts() {
            (-s.min_cts_offset(0..s.len())).max(0)
        } else {
            0
        };
        TrackTiming {
            shift,
            cts_adjust,
            delay: 0,
            first_sample,
            start,
            end,
        }
    }

    /// How far before output time 0 the track would decode without a
    /// delay (ticks; ≤ 0 when it would not): what the presentation's
    /// [`Delay`] must cover.
    pub fn lead(&self, track: &Track) -> i64 {
        let s = &track.samples;
        if s.is_empty() || self.first_sample as usize >= s.len() {
            return 0;
        }
        signed(s.dts(self.first_sample as usize))
            .saturating_add(self.shift)
            .saturating_sub(self.cts_adjust)
            .saturating_neg()
    }

    /// This timing with the presentation's delay.
    pub fn with_delay(mut self, delay: Delay, scale: Timescale) -> Self {
        self.delay = delay.in_scale(scale);
        self
    }

    /// Presentation time of sample `i` of `track`.
    pub fn presentation(&self, track: &Track, i: usize) -> i64 {
        track.samples.cts(i).saturating_add(self.shift)
    }

    /// The `tfdt` of a sample decoded at `dts`.
    pub fn output_decode_time(&self, dts: u64) -> u64 {
        let t = i128::from(dts) + i128::from(self.shift) - i128::from(self.cts_adjust)
            + i128::from(self.delay);
        u64::try_from(t.max(0)).unwrap_or(u64::MAX)
    }

    /// The output (media timeline) time of presentation time `t`.
    pub fn output(&self, t: i64) -> i64 {
        t.saturating_add(self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_is_exact_in_every_timescale_and_covers_every_lead() {
        let ts = |t| Timescale::new(t).unwrap();
        // 80 ms of video at 12800, 21.3 ms of AAC priming at 48000.
        let d = Delay::covering(
            &[ts(12800), ts(48000)],
            &[(1024, ts(12800)), (1024, ts(48000))],
        );
        assert_eq!(d.scale, ts(3200));
        assert_eq!(d.in_scale(ts(12800)), 1024);
        assert_eq!(d.in_scale(ts(48000)), 3840);
        // A lead that is not a multiple of the common unit is rounded up.
        let d = Delay::covering(&[ts(90000), ts(44100)], &[(1, ts(90000))]);
        assert_eq!(d.scale, ts(900));
        assert_eq!(d.in_scale(ts(90000)), 100);
        assert_eq!(d.in_scale(ts(44100)), 49);
        // Nothing to cover: no delay.
        assert_eq!(Delay::covering(&[ts(1000)], &[(-5, ts(1000))]).ticks, 0);
    }
}
