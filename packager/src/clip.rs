//! Clipping: `?start=` / `?end=` on a manifest make a presentation of part
//! of an asset. The clip begins at the keyframe at or before `start` and
//! ends at the keyframe at or after `end` (or the end of the media), so it
//! decodes without a re-encode; the playlists say where `start` really is
//! (`EXT-X-START`, DASH `presentationTimeOffset`).
//!
//! Segment URLs stay deterministic and shared: every regular segment the
//! clip covers whole is the regular one (`{n}.m4s`); only the one or two
//! segments the clip cuts into are served as *spans*,
//! `t{from_ms}-{to_ms}.m4s`: the samples of that segment between two
//! keyframe times of the reference video, which any rendition resolves to
//! its own nearest samples.

use crate::error::{Error, Result};
use crate::index::sample_number;
use crate::mp4::TrackKind;
use crate::plan::Segment;
use crate::presentation::{Presentation, Rendition};
use crate::time::saturating_u64;

/// A clip of a presentation, in milliseconds of presentation time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Clip {
    /// The requested start.
    pub start_ms: u64,
    /// The requested end, if any.
    pub end_ms: Option<u64>,
    /// The keyframe the clip begins at (≤ `start_ms`).
    pub from_ms: u64,
    /// Where it ends: a keyframe at or after `end_ms`, or the media's end.
    pub to_ms: u64,
    /// Whether it runs to the end of the media (each rendition to its own end).
    pub to_end: bool,
}

/// One media segment of a clipped rendition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Piece {
    /// Regular segment `number` (1-based), whole.
    Shared(u32),
    /// The part of a regular segment between two reference times.
    Span {
        /// Start, milliseconds.
        from_ms: u64,
        /// End, milliseconds.
        to_ms: u64,
    },
}

fn bad(why: String) -> Error {
    Error::BadFilter(why)
}

fn ms_of(p: &Presentation, r: &Rendition, t: i64) -> u64 {
    let scale = u64::from(p.timescale(r).get());
    (u64::try_from(t).unwrap_or(0) * 1000 + scale / 2) / scale
}

/// Half a frame (or audio frame) of `r` in milliseconds, at least 1.
fn tolerance(p: &Presentation, r: &Rendition) -> u64 {
    let s = &p.track(r).samples;
    if s.is_empty() {
        return 1;
    }
    let scale = u64::from(p.timescale(r).get());
    (u64::from(s.duration(0)) * 1000 / scale / 2).max(1)
}

/// Parses a `start`/`end` value: seconds, at most millisecond precision.
pub fn parse_seconds(key: &str, value: &str) -> Result<u64> {
    let bad_value = || {
        bad(format!(
            "'{key}' must be seconds (like 12 or 12.5), not '{value}'"
        ))
    };
    let (whole, frac) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let dangling = value.ends_with('.');
    if dangling
        || whole.is_empty()
        || whole.len() > 9
        || !digits(whole)
        || frac.len() > 3
        || !digits(frac)
    {
        return Err(bad_value());
    }
    let ms: u64 = format!("{frac:0<3}").parse().map_err(|_| bad_value())?;
    Ok(whole.parse::<u64>().map_err(|_| bad_value())? * 1000 + ms)
}

impl Clip {
    /// The clip of `p` for `start_ms`..`end_ms` (milliseconds).
    pub fn new(p: &Presentation, start_ms: u64, end_ms: Option<u64>) -> Result<Self> {
        let duration_ms = saturating_u64((p.duration * 1000.0).round());
        if start_ms >= duration_ms {
            return Err(bad(format!(
                "'start' {:.3} s is not before the end of the asset ({:.3} s)",
                start_ms as f64 / 1000.0,
                p.duration
            )));
        }
        if let Some(end) = end_ms.filter(|&e| e <= start_ms) {
            return Err(bad(format!(
                "'end' {:.3} s is not after 'start' {:.3} s",
                end as f64 / 1000.0,
                start_ms as f64 / 1000.0
            )));
        }
        let r = reference(p).ok_or(Error::NoTracks)?;
        let track = p.track(r);
        let first = r.segments.first().map_or(0, |s| s.first as usize);
        let last = r.segments.last().map_or(0, |s| s.end as usize);
        let mut keys: Vec<u64> = track
            .samples
            .sync_samples()
            .filter(|&i| (first..last).contains(&i))
            .map(|i| ms_of(p, r, r.timing.presentation(track, i).max(r.timing.start)))
            .collect();
        keys.sort_unstable();
        let media_end = ms_of(p, r, r.timing.end);
        let from_ms = keys
            .iter()
            .rev()
            .find(|&&k| k <= start_ms)
            .or(keys.first())
            .copied()
            .unwrap_or(0);
        let to_key = end_ms.and_then(|e| keys.iter().find(|&&k| k >= e && k > from_ms).copied());
        Ok(Clip {
            start_ms,
            end_ms,
            from_ms,
            to_ms: to_key.unwrap_or(media_end),
            to_end: to_key.is_none(),
        })
    }

    /// The query string that asks for this clip (`start=12.5&end=30`).
    pub fn query(&self) -> String {
        let s = |ms: u64| {
            let mut t = format!("{}.{:03}", ms / 1000, ms % 1000);
            while t.ends_with('0') {
                t.pop();
            }
            t.trim_end_matches('.').to_owned()
        };
        match self.end_ms {
            Some(e) => format!("start={}&end={}", s(self.start_ms), s(e)),
            None => format!("start={}", s(self.start_ms)),
        }
    }

    /// Whether a keyframe of `r` presented at `at_ms` is in the clip, and
    /// how long it lasts there: its `duration_ms` (to the next keyframe),
    /// cut at the clip's end. For I-frame playlists of a clip.
    pub fn keyframe(
        &self,
        p: &Presentation,
        r: &Rendition,
        at_ms: u64,
        duration_ms: u64,
    ) -> Option<u64> {
        let tol = tolerance(p, r);
        let inside = at_ms + tol >= self.from_ms && (self.to_end || at_ms + tol < self.to_ms);
        inside.then(|| {
            if self.to_end {
                duration_ms
            } else {
                duration_ms.min(self.to_ms.saturating_sub(at_ms))
            }
        })
    }

    /// The pieces of rendition `r` in the clip, with their sample ranges.
    pub fn pieces(&self, p: &Presentation, r: &Rendition) -> Vec<(Piece, Segment)> {
        let tol = tolerance(p, r);
        let to = if self.to_end {
            u64::MAX / 2
        } else {
            self.to_ms
        };
        let mut out = Vec::new();
        for (i, seg) in r.segments.iter().enumerate() {
            let a = ms_of(p, r, seg.start);
            let b = ms_of(p, r, seg.end_time());
            if b <= self.from_ms + tol || a + tol >= to {
                continue;
            }
            if a + tol >= self.from_ms && b <= to + tol {
                out.push((Piece::Shared(Segment::number(i)), *seg));
                continue;
            }
            let (from_ms, to_ms) = (a.max(self.from_ms), b.min(to));
            if let Ok(s) = span(p, r, from_ms, to_ms) {
                out.push((Piece::Span { from_ms, to_ms }, s));
            }
        }
        out
    }
}

/// The first video rendition, else the first one.
fn reference(p: &Presentation) -> Option<&Rendition> {
    p.renditions
        .iter()
        .find(|r| r.kind == TrackKind::Video)
        .or(p.renditions.first())
}

/// Plans span `from_ms..to_ms` of `r` into `out` (its `mfhd` sequence
/// number is that of the regular segment it is part of).
pub fn span_segment(
    p: &Presentation,
    r: &Rendition,
    from_ms: u64,
    to_ms: u64,
    out: &mut crate::fmp4::MediaSegment,
) -> Result<()> {
    let (seg, number) = span_of(p, r, from_ms, to_ms)?;
    crate::fmp4::media_segment(p.track(r), &r.timing, &seg, number, out);
    Ok(())
}

/// The samples of `r` in `from_ms..to_ms`, which must lie in one regular
/// segment; video spans must start and end at keyframes (or the segment's
/// ends), audio spans at the frames nearest the two times.
pub fn span(p: &Presentation, r: &Rendition, from_ms: u64, to_ms: u64) -> Result<Segment> {
    span_of(p, r, from_ms, to_ms).map(|(s, _)| s)
}

/// [`span`], and the 1-based number of the regular segment it is part of.
pub(crate) fn span_of(
    p: &Presentation,
    r: &Rendition,
    from_ms: u64,
    to_ms: u64,
) -> Result<(Segment, u32)> {
    if to_ms <= from_ms {
        return Err(Error::NotFound("no such span of a segment"));
    }
    let tol = tolerance(p, r);
    let index = r
        .segments
        .iter()
        .position(|seg| {
            let a = ms_of(p, r, seg.start);
            let b = ms_of(p, r, seg.end_time());
            a <= from_ms + tol && to_ms <= b + tol
        })
        .ok_or(Error::NotFound("span outside any one segment"))?;
    span_in(p, r, index, from_ms, to_ms).map(|s| (s, Segment::number(index)))
}

/// The samples of regular segment `index` (0-based) of `r` in
/// `from_ms..to_ms`, cut as [`span`] cuts: for a TS span's audio, which
/// is cut in the segment its video span is in, at the video's times.
pub(crate) fn span_in(
    p: &Presentation,
    r: &Rendition,
    index: usize,
    from_ms: u64,
    to_ms: u64,
) -> Result<Segment> {
    let not_found = || Error::NotFound("no such span of a segment");
    let seg = r.segments.get(index).ok_or_else(not_found)?;
    if to_ms <= from_ms {
        return Err(not_found());
    }
    let tol = tolerance(p, r);
    let track = p.track(r);
    let s = &track.samples;
    let pts = |i: usize| r.timing.presentation(track, i);
    let (a, b) = (ms_of(p, r, seg.start), ms_of(p, r, seg.end_time()));
    let video = r.kind == TrackKind::Video;
    // The sample a cut at `t` starts at: seg.first/seg.end at the segment's
    // ends; inside, a keyframe within half a frame (video) or the first
    // frame whose middle is after `t`, else the segment's end (audio: a
    // TS span cuts its audio at the video's times, which can fall in the
    // segment's last audio frame).
    let cut = |t: u64, at_start: usize, at_end: usize| -> Option<usize> {
        if t <= a + tol {
            return Some(at_start);
        }
        if t + tol >= b {
            return Some(at_end);
        }
        let found = (at_start..at_end).find(|&i| {
            let ms = ms_of(p, r, pts(i));
            if video {
                s.is_sync(i) && ms.abs_diff(t) <= tol
            } else {
                ms_of(p, r, pts(i) + i64::from(s.duration(i)) / 2) > t
            }
        });
        if video { found } else { found.or(Some(at_end)) }
    };
    let (first, end) = (seg.first as usize, seg.end as usize);
    let i = cut(from_ms, first, end).ok_or_else(not_found)?;
    let j = cut(to_ms, first, end).ok_or(Error::NotFound("no keyframe at the span's end"))?;
    if j <= i {
        return Err(Error::NotFound("empty span"));
    }
    let start = if i == first { seg.start } else { pts(i) };
    let stop = if j == end { seg.end_time() } else { pts(j) };
    Ok(Segment {
        first: sample_number(i),
        end: sample_number(j),
        start,
        duration: u64::try_from(stop - start).unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds() {
        assert_eq!(parse_seconds("start", "12").unwrap(), 12_000);
        assert_eq!(parse_seconds("start", "12.5").unwrap(), 12_500);
        assert_eq!(parse_seconds("start", "0.001").unwrap(), 1);
        for bad in ["", "-1", "1e3", "1.2345", ".5", "5.", "x", "nan", "1 "] {
            let e = parse_seconds("start", bad).unwrap_err().to_string();
            assert!(e.contains("'start'"), "{bad}: {e}");
        }
    }
}
