//! Segment boundaries: keyframe-aligned, near a target duration, shared by
//! every rendition whose keyframes line up.
//!
//! Boundaries are chosen on one reference timeline (the first video track,
//! or the first audio track of an audio-only presentation): starting from
//! the first keyframe, the next boundary is the candidate keyframe nearest to
//! `previous + target` (ties go to the later one). A keyframe is a candidate
//! only if every video rendition has a keyframe within half a frame of it;
//! if that leaves segments longer than twice the target, the renditions
//! are not aligned and each gets boundaries of its own. Audio is cut at the
//! audio frame whose presentation time is nearest to each boundary.

use crate::index::{sample_number, signed};
use crate::mp4::Track;
use crate::time::{Timescale, rescale, saturating_i64};
use crate::timing::TrackTiming;

/// One media segment of one rendition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Segment {
    /// First sample (decode order).
    pub first: u32,
    /// One past the last sample.
    pub end: u32,
    /// Presentation start in the track's timescale.
    pub start: i64,
    /// Presentation duration in the track's timescale.
    pub duration: u64,
}

impl Segment {
    /// Presentation end: `start + duration`.
    pub(crate) fn end_time(&self) -> i64 {
        // A duration is the distance from `start` to a later i64 time (or 0).
        self.start
            .checked_add_unsigned(self.duration)
            .expect("a segment ends at an i64 time")
    }

    /// The 1-based number of the segment at `index` in a rendition's list.
    pub(crate) fn number(index: usize) -> u32 {
        // Each segment holds at least one sample, and sample numbers are 32 bits.
        u32::try_from(index + 1).expect("fewer segments than samples")
    }
}

/// A track plus its timing, as the planner sees it.
pub(crate) struct PlanTrack<'a> {
    pub(crate) track: &'a Track,
    pub(crate) timing: TrackTiming,
}

impl PlanTrack<'_> {
    fn scale(&self) -> Timescale {
        self.track.timescale
    }

    /// (earliest presentation time, sample index) of the run of samples each
    /// sync sample starts (up to the next one, in decode order), by time.
    /// In a closed GOP that is the keyframe's own time; in an open GOP the
    /// leading pictures that follow the keyframe in decode order are shown
    /// before it, and the segment starting there starts with them.
    fn keyframes(&self) -> Vec<(i64, usize)> {
        let s = &self.track.samples;
        let shift = self.timing.shift;
        let mut k: Vec<(i64, usize)> = Vec::new();
        if !s.has_cts() {
            k.extend(s.sync_samples().map(|i| (s.cts(i) + shift, i)));
        } else {
            // One sequential pass (decode times are O(1) each this way):
            // the running minimum of each GOP's presentation times.
            let mut sync = s.sync_samples().peekable();
            let mut in_gop = false;
            for (i, (dts, _)) in s.times_from(0).enumerate().take(s.len()) {
                let pts = signed(dts) + i64::from(s.cts_offset(i)) + shift;
                if sync.next_if_eq(&i).is_some() {
                    k.push((pts, i));
                    in_gop = true;
                } else if let Some(last) = k.last_mut().filter(|_| in_gop) {
                    // Samples before the first sync sample belong to no GOP.
                    last.0 = last.0.min(pts);
                }
            }
        }
        k.sort_unstable();
        k
    }

    /// Typical sample duration (the first one's; used only as a tolerance).
    fn frame(&self) -> i64 {
        let s = &self.track.samples;
        if s.is_empty() {
            1
        } else {
            i64::from(s.duration(0)).max(1)
        }
    }
}

/// Picks boundary times from sorted candidates: each the candidate nearest to
/// the previous boundary plus `target`. The end of the track competes as a
/// candidate too, so the last segment is not needlessly short.
fn choose(candidates: &[i64], end: i64, target: i64) -> Vec<i64> {
    let Some(&first) = candidates.first() else {
        return Vec::new();
    };
    let mut candidates = candidates.to_vec();
    if end > candidates[candidates.len() - 1] {
        candidates.push(end);
    }
    let mut out = vec![first];
    let mut i = 0;
    while i + 1 < candidates.len() {
        let goal = out[out.len() - 1] + target;
        // Advance while the next candidate is no farther from the goal.
        let mut j = i + 1;
        while j + 1 < candidates.len()
            && (candidates[j + 1] - goal).abs() <= (candidates[j] - goal).abs()
        {
            j += 1;
        }
        if candidates[j] == end {
            break;
        }
        out.push(candidates[j]);
        i = j;
    }
    out
}

/// Segments of a video (or reference) track cut at the given boundary times
/// (in the track's timescale). Every boundary must be a keyframe of the track.
fn cut_at_keyframes(t: &PlanTrack<'_>, keyframes: &[(i64, usize)], bounds: &[i64]) -> Vec<Segment> {
    let n = sample_number(t.track.samples.len());
    let mut starts: Vec<(i64, u32)> = Vec::with_capacity(bounds.len());
    let mut k = 0;
    for &b in bounds {
        while k < keyframes.len() && keyframes[k].0 < b - t.frame() / 2 {
            k += 1;
        }
        if let Some(&(time, idx)) = keyframes.get(k) {
            let idx = sample_number(idx);
            if starts.last().is_none_or(|&(_, last)| idx > last) {
                starts.push((time, idx));
            }
        }
    }
    // The first segment starts with its first frame: before the edit point
    // when a mid-GOP edit keeps frames for the decoder (its duration, and so
    // EXTINF and the DASH timeline, include them; players are told to start
    // at the edit point: `Presentation::preroll_seconds`).
    let earliest = keyframes.first().map_or(t.timing.start, |k| k.0);
    if let Some(first) = starts.first_mut() {
        *first = (t.timing.start.min(earliest), t.timing.first_sample);
    }
    segments_from_starts(&starts, n, t.timing.end)
}

fn segments_from_starts(starts: &[(i64, u32)], n: u32, end: i64) -> Vec<Segment> {
    let mut out = Vec::with_capacity(starts.len());
    for (i, &(start, first)) in starts.iter().enumerate() {
        let (next_time, next_first) = starts.get(i + 1).copied().unwrap_or((end, n));
        if next_first <= first {
            continue;
        }
        out.push(Segment {
            first,
            end: next_first,
            start,
            duration: u64::try_from(next_time - start).unwrap_or(0),
        });
    }
    out
}

/// Cuts a track whose every sample is a sync sample (audio) at the samples
/// nearest to `bounds` (given in `bounds_scale`).
fn cut_nearest(t: &PlanTrack<'_>, bounds: &[i64], bounds_scale: Timescale) -> Vec<Segment> {
    let s = &t.track.samples;
    let n = s.len();
    let mut starts: Vec<(i64, u32)> = Vec::with_capacity(bounds.len());
    let pts = |i: usize| t.timing.presentation(t.track, i);
    // Whether sample i's midpoint lies at or before time b. Without
    // composition offsets presentation order is decode order, and the
    // index finds the sample from its time runs directly.
    let before = |i: usize, b: i64| pts(i) + i64::from(s.duration(i)) / 2 <= b;
    // Samples before the first packaged one (audio before the edit
    // point) belong to no segment.
    let mut i = t.timing.first_sample as usize;
    for (k, &b) in bounds.iter().enumerate() {
        let b = rescale(b, bounds_scale, t.scale());
        if k == 0 {
            starts.push((t.timing.start, t.timing.first_sample));
            continue;
        }
        // First sample whose midpoint lies after the boundary.
        if s.has_cts() {
            while i < n && before(i, b) {
                i += 1;
            }
        } else {
            i = s.first_after_midpoint(i, b - t.timing.shift);
        }
        if i >= n {
            break;
        }
        if starts
            .last()
            .is_none_or(|&(_, last)| sample_number(i) > last)
        {
            starts.push((pts(i), sample_number(i)));
        }
    }
    segments_from_starts(&starts, sample_number(n), t.timing.end)
}

/// Plans the segments of every track. `tracks[reference]` defines the
/// boundaries; `video` lists the tracks cut at keyframes.
pub(crate) fn plan(
    tracks: &[PlanTrack<'_>],
    video: &[usize],
    target_seconds: f64,
) -> Vec<Vec<Segment>> {
    let mut out = vec![Vec::new(); tracks.len()];
    if tracks.is_empty() {
        return out;
    }
    let target_in =
        |scale: Timescale| saturating_i64((target_seconds * f64::from(scale.get())).round()).max(1);

    let Some(&reference) = video.first() else {
        // Audio only: boundaries from the first track's own frames.
        let r = &tracks[0];
        let s = &r.track.samples;
        let times: Vec<i64> = s
            .times_from(0)
            .enumerate()
            .skip(r.timing.first_sample as usize)
            .map(|(i, (dts, _))| signed(dts) + i64::from(s.cts_offset(i)) + r.timing.shift)
            .collect();
        let bounds = choose(&times, r.timing.end, target_in(r.scale()));
        for (t, seg) in tracks.iter().zip(out.iter_mut()) {
            *seg = cut_nearest(t, &bounds, r.scale());
        }
        return out;
    };

    let r = &tracks[reference];
    let keyframes: Vec<Vec<(i64, usize)>> = video.iter().map(|&v| tracks[v].keyframes()).collect();
    // Reference keyframes that every video rendition shares.
    let shared: Vec<i64> = keyframes[0]
        .iter()
        .map(|&(t, _)| t)
        .filter(|&t| {
            video.iter().zip(&keyframes).skip(1).all(|(&v, kf)| {
                let other = &tracks[v];
                let want = rescale(t, r.scale(), other.scale());
                let tol = other.frame() / 2;
                let pos = kf.partition_point(|&(x, _)| x < want - tol);
                kf.get(pos).is_some_and(|&(x, _)| (x - want).abs() <= tol)
            })
        })
        .collect();
    let target = target_in(r.scale());
    let mut bounds = choose(&shared, r.timing.end, target);
    let aligned = !bounds.is_empty()
        && bounds.first() == keyframes[0].first().map(|k| &k.0)
        && bounds.windows(2).all(|w| w[1] - w[0] <= 2 * target)
        && r.timing.end - bounds[bounds.len() - 1] <= 2 * target.max(1);
    if !aligned {
        bounds = choose(
            &keyframes[0].iter().map(|k| k.0).collect::<Vec<_>>(),
            r.timing.end,
            target,
        );
    }

    for (i, t) in tracks.iter().enumerate() {
        out[i] = match video.iter().position(|&v| v == i) {
            Some(0) => cut_at_keyframes(t, &keyframes[0], &bounds),
            Some(p) if aligned => {
                let b: Vec<i64> = bounds
                    .iter()
                    .map(|&b| rescale(b, r.scale(), t.scale()))
                    .collect();
                cut_at_keyframes(t, &keyframes[p], &b)
            }
            Some(p) => {
                let own: Vec<i64> = keyframes[p].iter().map(|k| k.0).collect();
                cut_at_keyframes(
                    t,
                    &keyframes[p],
                    &choose(&own, t.timing.end, target_in(t.scale())),
                )
            }
            None => cut_nearest(t, &bounds, r.scale()),
        };
    }
    out
}

#[cfg(test)]
mod tests {
    use super::choose;

    #[test]
    fn choose_nearest_to_target() {
        assert_eq!(choose(&[0, 2, 4, 6, 8, 10], 12, 4), vec![0, 4, 8]);
        // The end competes: a keyframe 0.04 s before the end is not a boundary.
        assert_eq!(
            choose(&[0, 200, 400, 600, 800, 1000], 1004, 400),
            vec![0, 400, 800]
        );
        assert_eq!(choose(&[0, 3, 6, 9, 12], 13, 4), vec![0, 3, 6, 9]);
        assert_eq!(choose(&[0, 5, 10], 15, 4), vec![0, 5, 10]);
        // Irregular GOPs: short ones then a long one.
        assert_eq!(choose(&[0, 1, 2, 10, 11, 12], 13, 4), vec![0, 2, 10]);
        // A last GOP of a few frames stays its own segment.
        assert_eq!(choose(&[0, 400, 800], 810, 400), vec![0, 400, 800]);
    }
}
