//! Clip spans of TS segments (`/ts/{program}/t{from}-{to}.ts`): the part of
//! one regular TS segment between two times, for the one or two segments a
//! clip cuts into (see [`crate::clip`]; the segments it covers whole are
//! the regular ones).
//!
//! Each stream of the program is cut as its fMP4 span is: video at
//! keyframes (or the segment's ends), audio at the frames nearest the two
//! times. Timestamps are those of the regular segments. So that a clip
//! reads as one stream, the continuity counters are chosen to join the
//! neighbouring regular segment: a span that ends where its segment ends
//! (a clip's first piece) ends at the counters that segment ends at, where
//! the next regular segment starts; any other span (a clip's last piece)
//! starts where its segment starts, after the regular segment before it.

use super::plan::{self, Unit};
use super::{AUDIO, ReadSamples, TsLayout, TsProgram, VIDEO, walk};
use crate::clip;
use crate::error::{Error, Result};
use crate::plan::Segment;
use crate::presentation::{Presentation, Rendition};

/// One clip span of one TS program, sized from the index alone.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsSpan {
    windows: [Option<Segment>; 2],
    cc: [u8; 4],
    size: u64,
}

impl TsSpan {
    /// Size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }
}

/// Where a span lies: per stream its samples, the index of the regular
/// segment it is part of, and whether it runs to that segment's end.
struct Cut {
    windows: [Option<Segment>; 2],
    index: usize,
    to_segment_end: bool,
}

/// Cuts `from_ms..to_ms` out of the segment of `renditions` ([video,
/// audio]) that holds it; the first present rendition sets the timeline.
fn cut(
    p: &Presentation,
    renditions: [Option<&Rendition>; 2],
    from_ms: u64,
    to_ms: u64,
) -> Result<Cut> {
    let timeline = if renditions[VIDEO].is_some() {
        VIDEO
    } else {
        AUDIO
    };
    let r = renditions[timeline].ok_or(Error::NotFound("a TS program without renditions"))?;
    let (seg, number) = clip::span_of(p, r, from_ms, to_ms)?;
    let index = (number as usize).saturating_sub(1);
    let to_segment_end = r.segments.get(index).is_some_and(|s| s.end == seg.end);
    let mut windows = [None, None];
    windows[timeline] = Some(seg);
    let other = 1 - timeline;
    if let Some(o) = renditions[other] {
        // Cut in the same regular segment (the planner cuts audio segment k
        // to match video segment k); one this stream has no part in (audio
        // ending before the video) is carried without it, so is its span.
        windows[other] = match o.segments.get(index) {
            Some(_) => Some(clip::span_in(p, o, index, from_ms, to_ms)?),
            None => None,
        };
    }
    Ok(Cut {
        windows,
        index,
        to_segment_end,
    })
}

/// Whether `prog` has a span `from_ms..to_ms` (what [`TsLayout::span`]
/// would find): for listing a clip's pieces without a layout.
pub fn span_exists(p: &Presentation, prog: TsProgram<'_>, from_ms: u64, to_ms: u64) -> bool {
    cut(p, [prog.video, prog.audio], from_ms, to_ms).is_ok()
}

impl TsLayout {
    /// The span `from_ms..to_ms` of one of the program's segments: it must
    /// lie inside one regular segment and, for video, start and end at
    /// keyframes or that segment's ends (else [`Error::NotFound`]).
    pub fn span(&self, p: &Presentation, from_ms: u64, to_ms: u64) -> Result<TsSpan> {
        let renditions = self
            .streams
            .each_ref()
            .map(|s| s.as_ref().and_then(|s| p.renditions.get(s.rendition)));
        let cut = cut(p, renditions, from_ms, to_ms)?;
        let seg = self.segment(cut.index)?;
        let mut units: Vec<Unit> = Vec::new();
        plan::plan(p, &self.streams, self.pcr_stream, cut.windows, &mut units)?;
        // Packets per counter, modulo 16.
        let mut advance = [0u8; 4];
        let size = walk(&units, &mut advance, |_, _, _| {});
        let cc = if cut.to_segment_end {
            std::array::from_fn(|k| (seg.end_cc[k] + 16 - advance[k]) % 16)
        } else {
            seg.cc
        };
        Ok(TsSpan {
            windows: cut.windows,
            cc,
            size,
        })
    }

    /// Appends `span` (of this layout) to `out`, reading sample bytes with
    /// `read`; exactly [`TsSpan::size`] bytes, or none on an error.
    pub fn write_span(
        &self,
        p: &Presentation,
        span: &TsSpan,
        read: &mut ReadSamples<'_>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        self.write_units(p, span.windows, span.cc, span.size, read, out)
    }
}
