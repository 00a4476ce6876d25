//! Trick play: every keyframe of a video rendition as a media fragment of
//! its own (`styp` + `moof` + `mdat` of that one sample), for HLS I-frame
//! playlists and the DASH trick-mode adaptation set.
//!
//! ```text
//!  ../cmaf/{r}/iframes.m4s   k1 fragment | k2 fragment | k3 fragment | ...
//!                            ^0          ^k1.size      ^k1.size+k2.size
//!  HLS I-frame playlist      #EXT-X-BYTERANGE:{size}@{offset}  per keyframe
//!  DASH trick-mode set       ../cmaf/{r}/k{n}.m4s: the same bytes as fragment n
//! ```
//!
//! **The trick resource.** RFC 8216bis §4.4.3.6 (`EXT-X-I-FRAMES-ONLY`)
//! describes I-frame segments as byte ranges (§4.4.4.2 `EXT-X-BYTERANGE`)
//! of a media resource, whose Media Initialization Section is the
//! `EXT-X-MAP` (so no range includes it). Each rendition has one such
//! resource, `iframes.m4s`: the one-sample fragments of all its keyframes
//! back to back, fragment `n` carrying `mfhd` sequence number `n`. Every
//! offset and size follows from the sample index ([`Keyframe::offset`],
//! [`Keyframe::size`]), so the resource's length, `HEAD` and any `Range`
//! are answered without making its bytes, and [`window`] names the
//! fragments a byte range touches: a range request plans only those, and
//! their sample payload is a source range (sendfile) like any segment's.
//! DASH's `SegmentTemplate` cannot address byte ranges, so the trick-mode
//! set keeps `k{n}.m4s`, fragment `n` as a resource of its own.
//!
//! **Why not ranges of the regular segments.** Those carry one `moof` for
//! all their samples, so a keyframe in the middle of a segment has no
//! `moof` of its own to start a self-contained range. Splitting every
//! segment into a keyframe fragment plus a GOP fragment would make one,
//! and was tried: ffmpeg's MP4 demuxer derives the shift for B-frame
//! reordering from the first negative composition offset it reads, so a
//! keyframe-only first fragment (offset 0) is presented two frames away
//! from the rest. The lossless tests caught it. A one-sample fragment is
//! the same sample bytes behind a header of about 150 bytes.

use crate::error::{Error, Result};
use crate::fmp4::{self, MediaSegment};
use crate::index::sample_number;
use crate::mp4::TrackKind;
use crate::plan::Segment;
use crate::presentation::{Presentation, Rendition};
use crate::time::{duration_seconds, peak_and_average};

/// One keyframe of a rendition, in decode order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyframe {
    /// The sample.
    pub sample: u32,
    /// Presentation time (track timescale).
    pub start: i64,
    /// Time to the next keyframe, or to the end of the rendition.
    pub duration: u64,
    /// Byte offset of its fragment in the rendition's trick resource.
    pub offset: u64,
    /// Size of its one-sample fragment in bytes.
    pub size: u64,
}

impl Keyframe {
    fn segment(&self) -> Segment {
        Segment {
            first: self.sample,
            end: self.sample + 1,
            start: self.start,
            duration: self.duration,
        }
    }
}

/// The keyframes of `r` inside `clip`, the last one lasting only to the
/// clip's end, and the 1-based number of the first in the whole rendition
/// (its `k{n}.m4s`): the trick play of a clip.
pub fn keyframes_in_clip(
    p: &Presentation,
    r: &Rendition,
    clip: &crate::clip::Clip,
) -> (usize, Vec<Keyframe>) {
    let scale = u64::from(p.timescale(r).get());
    let ms = |t: u64| (t * 1000 + scale / 2) / scale;
    let mut first = None;
    let mut kept = Vec::new();
    for (i, mut k) in keyframes(p, r).into_iter().enumerate() {
        let full = ms(k.duration);
        if let Some(d) = clip.keyframe(p, r, ms(u64::try_from(k.start).unwrap_or(0)), full) {
            if d < full {
                k.duration = d * scale / 1000;
            }
            first.get_or_insert(i + 1);
            kept.push(k);
        }
    }
    (first.unwrap_or(1), kept)
}

/// The keyframes of video rendition `r` (empty for audio).
pub fn keyframes(p: &Presentation, r: &Rendition) -> Vec<Keyframe> {
    let (Some(first), Some(last)) = (r.segments.first(), r.segments.last()) else {
        return Vec::new();
    };
    if r.kind != TrackKind::Video {
        return Vec::new();
    }
    let track = p.track(r);
    let range = first.first as usize..last.end as usize;
    let mut out: Vec<Keyframe> = track
        .samples
        .sync_samples()
        .skip_while(|&i| i < range.start)
        .take_while(|&i| i < range.end)
        .map(|i| Keyframe {
            sample: sample_number(i),
            start: r.timing.presentation(track, i).max(r.timing.start),
            duration: 0,
            offset: 0,
            size: 0,
        })
        .collect();
    // Presentation order can differ from decode order only for odd
    // streams; durations must not go negative either way.
    let mut offset = 0;
    for k in 0..out.len() {
        let next = out.get(k + 1).map_or(r.timing.end, |n| n.start);
        out[k].duration = u64::try_from(next - out[k].start).unwrap_or(0);
        out[k].size = fmp4::segment_len(track, &r.timing, &out[k].segment());
        out[k].offset = offset;
        offset += out[k].size;
    }
    out
}

/// Length in bytes of the trick resource made of `keys`.
pub fn resource_len(keys: &[Keyframe]) -> u64 {
    keys.last().map_or(0, |k| k.offset + k.size)
}

/// The fragments of the trick resource that bytes `start..end` touch: for
/// each, its index in `keys` and the part of it inside the window, as a
/// range of the fragment's own bytes.
pub fn window(
    keys: &[Keyframe],
    start: u64,
    end: u64,
) -> impl Iterator<Item = (usize, std::ops::Range<u64>)> + '_ {
    let first = keys.partition_point(|k| k.offset + k.size <= start);
    keys.iter()
        .enumerate()
        .skip(first)
        .take_while(move |(_, k)| k.offset < end)
        .map(move |(i, k)| {
            let from = start.saturating_sub(k.offset);
            let to = (end - k.offset).min(k.size);
            (i, from..to)
        })
}

/// Peak and average bit rate of the keyframe segments played in real time.
pub fn bitrates(p: &Presentation, keys: &[Keyframe], r: &Rendition) -> (u64, u64) {
    let scale = p.timescale(r);
    peak_and_average(
        keys.iter()
            .map(|k| (k.size, duration_seconds(k.duration, scale), true)),
    )
}

/// Plans the fragment of `keys[index]` (its sequence number `index + 1`)
/// into `out`; `keys` must be [`keyframes`] of `r`.
pub fn fragment(
    p: &Presentation,
    r: &Rendition,
    keys: &[Keyframe],
    index: usize,
    out: &mut MediaSegment,
) -> Result<()> {
    let k = keys
        .get(index)
        .ok_or(Error::NotFound("keyframe number out of range"))?;
    let track = p.track(r);
    if k.sample as usize >= track.samples.len() {
        return Err(Error::NotFound("a keyframe outside its track"));
    }
    let number = u32::try_from(index + 1).map_err(|_| Error::NotFound("too many keyframes"))?;
    fmp4::media_segment(track, &r.timing, &k.segment(), number, out);
    Ok(())
}

/// Plans keyframe segment `number` (1-based) of `r` into `out`: fragment
/// `number` of the trick resource, as a resource of its own (`k{n}.m4s`).
pub fn keyframe_segment(
    p: &Presentation,
    r: &Rendition,
    number: u32,
    out: &mut MediaSegment,
) -> Result<()> {
    let index = number
        .checked_sub(1)
        .ok_or(Error::NotFound("keyframe number out of range"))?;
    fragment(p, r, &keyframes(p, r), index as usize, out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(sizes: &[u64]) -> Vec<Keyframe> {
        let mut offset = 0;
        sizes
            .iter()
            .enumerate()
            .map(|(i, &size)| {
                let k = Keyframe {
                    sample: u32::try_from(i).unwrap(),
                    start: 0,
                    duration: 0,
                    offset,
                    size,
                };
                offset += size;
                k
            })
            .collect()
    }

    fn touched(keys: &[Keyframe], start: u64, end: u64) -> Vec<(usize, u64, u64)> {
        window(keys, start, end)
            .map(|(i, r)| (i, r.start, r.end))
            .collect()
    }

    #[test]
    fn windows_name_the_fragments_a_range_touches() {
        let k = keys(&[100, 50, 200]);
        assert_eq!(resource_len(&k), 350);
        assert_eq!(touched(&k, 0, 350), [(0, 0, 100), (1, 0, 50), (2, 0, 200)]);
        // Exactly one fragment, as an I-frame playlist asks.
        assert_eq!(touched(&k, 100, 150), [(1, 0, 50)]);
        // Straddling a boundary, and inside one fragment.
        assert_eq!(touched(&k, 90, 160), [(0, 90, 100), (1, 0, 50), (2, 0, 10)]);
        assert_eq!(touched(&k, 160, 170), [(2, 10, 20)]);
        assert_eq!(touched(&k, 349, 350), [(2, 199, 200)]);
        assert!(touched(&k, 350, 400).is_empty());
        assert!(touched(&[], 0, 10).is_empty());
    }
}
