//! Trick play: every keyframe of a video rendition as a media segment of
//! its own (`styp` + `moof` + `mdat` of that one sample), for HLS I-frame
//! playlists and the DASH trick-mode adaptation set.
//!
//! Why whole resources and not byte ranges of the regular segments: those
//! carry one `moof` for all their samples, so a keyframe in the middle of a
//! segment has no `moof` of its own to start a self-contained range. A
//! one-sample fragment is the same sample bytes (one source range, sent
//! with sendfile like any segment) behind a header of about 100 bytes.
//!
//! Splitting every segment into a keyframe fragment plus a GOP fragment
//! would allow byte ranges, and was tried: ffmpeg's MP4 demuxer derives the
//! shift for B-frame reordering from the first negative composition offset
//! it reads, so a keyframe-only first fragment (offset 0) is presented two
//! frames away from the rest. The lossless tests caught it.

use crate::error::{Error, Result};
use crate::fmp4::{self, MediaSegment};
use crate::mp4::TrackKind;
use crate::plan::Segment;
use crate::presentation::{Presentation, Rendition};
use crate::time::{peak_and_average, seconds};

/// One keyframe of a rendition, in decode order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keyframe {
    /// The sample.
    pub sample: u32,
    /// Presentation time (track timescale).
    pub start: i64,
    /// Time to the next keyframe, or to the end of the rendition.
    pub duration: u64,
    /// Size of its one-sample segment in bytes.
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
            sample: i as u32,
            start: r.timing.presentation(track, i).max(r.timing.start),
            duration: 0,
            size: 0,
        })
        .collect();
    // Presentation order can differ from decode order only for odd
    // streams; durations must not go negative either way.
    for k in 0..out.len() {
        let next = out.get(k + 1).map_or(r.timing.end, |n| n.start);
        out[k].duration = (next - out[k].start).max(0) as u64;
        out[k].size = fmp4::segment_len(track, &r.timing, &out[k].segment());
    }
    out
}

/// Peak and average bit rate of the keyframe segments played in real time.
pub fn bitrates(p: &Presentation, keys: &[Keyframe], r: &Rendition) -> (u64, u64) {
    let scale = p.timescale(r);
    peak_and_average(
        keys.iter()
            .map(|k| (k.size, seconds(k.duration as i64, scale), true)),
    )
}

/// Plans keyframe segment `number` (1-based) of `r` into `out`.
pub fn keyframe_segment(
    p: &Presentation,
    r: &Rendition,
    number: u32,
    out: &mut MediaSegment,
) -> Result<()> {
    let keys = keyframes(p, r);
    let k = number
        .checked_sub(1)
        .and_then(|i| keys.get(i as usize))
        .ok_or(Error::NotFound("keyframe number out of range"))?;
    fmp4::media_segment(p.track(r), &r.timing, &k.segment(), number, out);
    Ok(())
}
