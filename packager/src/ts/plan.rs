//! The plan of one TS segment: its PES packets in stream order, with their
//! timestamps and sizes, computed from the sample index alone. Sizes,
//! continuity counters, keyframe ranges and the writer all walk this one
//! list, so they cannot disagree.

use super::adts;
use super::pes::{self, MAX_BOUNDED_PAYLOAD};
use super::stream::{Payload, Stream, track_of};
use super::{AUDIO, VIDEO, packet};
use crate::error::{Error, Result};
use crate::index::sample_number;
use crate::plan::Segment;
use crate::presentation::Presentation;

/// Audio frames share a PES packet while they start less than this many
/// 90 kHz ticks (0.1 s) after its first frame, as long as the packet stays
/// below 64 KiB: a few frames per packet keeps the PES overhead low and
/// the interleaving with video fine-grained.
const AUDIO_PES_TICKS: i64 = 9000;

/// One PES packet of a segment, and the PSI that may precede it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Unit {
    /// [`VIDEO`] or [`AUDIO`].
    pub(super) stream: usize,
    /// Its samples, `first..end` in decode order (one for video).
    pub(super) first: u32,
    pub(super) end: u32,
    /// 90 kHz PTS and DTS of the first sample, before the 2^33 wrap.
    pub(super) pts: i64,
    pub(super) dts: i64,
    /// PES payload bytes.
    pub(super) payload: usize,
    /// Whether it starts with a sync sample.
    pub(super) sync: bool,
    /// Whether a PAT and a PMT precede it.
    pub(super) psi: bool,
    /// Whether its first TS packet carries the PCR.
    pub(super) pcr: bool,
}

impl Unit {
    /// Whether the header carries a DTS: only when it differs from the PTS.
    pub(super) fn has_dts(&self) -> bool {
        self.dts != self.pts
    }

    /// Bytes of the whole PES packet.
    pub(super) fn pes_len(&self) -> usize {
        pes::header_len(self.has_dts()) + self.payload
    }

    /// TS packets of the PES packet (the PSI not included).
    pub(super) fn pes_packets(&self) -> usize {
        packet::count(self.pes_len(), self.pcr)
    }
}

/// Plans the segment made of `windows` (per stream, the samples it
/// carries: a regular segment's, or a clip span's) into `out`: video access
/// units and audio frame groups merged by DTS (video first on ties), a PAT
/// and a PMT before the first packet and before every video sync sample.
pub(super) fn plan(
    p: &Presentation,
    streams: &[Option<Stream>; 2],
    pcr_stream: usize,
    windows: [Option<Segment>; 2],
    out: &mut Vec<Unit>,
) -> Result<()> {
    out.clear();
    let mut video = Vec::new();
    let mut audio = Vec::new();
    if let (Some(s), Some(w)) = (&streams[VIDEO], &windows[VIDEO]) {
        video_units(p, s, w, &mut video)?;
    }
    if let (Some(s), Some(w)) = (&streams[AUDIO], &windows[AUDIO]) {
        audio_units(p, s, w, &mut audio)?;
    }
    out.reserve(video.len() + audio.len());
    let (mut v, mut a) = (video.into_iter().peekable(), audio.into_iter().peekable());
    loop {
        let next = match (v.peek(), a.peek()) {
            (Some(x), Some(y)) if x.dts <= y.dts => v.next(),
            (Some(_), Some(_)) => a.next(),
            (Some(_), None) => v.next(),
            (None, _) => a.next(),
        };
        let Some(mut u) = next else { break };
        u.psi = out.is_empty() || (u.stream == VIDEO && u.sync);
        u.pcr = u.stream == pcr_stream;
        out.push(u);
    }
    Ok(())
}

fn video_units(p: &Presentation, v: &Stream, seg: &Segment, out: &mut Vec<Unit>) -> Result<()> {
    let Some(r) = p.renditions.get(v.rendition) else {
        return Err(Error::NotFound("rendition of another presentation"));
    };
    let Some(track) = track_of(p, r) else {
        return Ok(());
    };
    if seg.first > seg.end || seg.end as usize > track.samples.len() {
        return Err(Error::NotFound("a segment outside its track"));
    }
    let Payload::Nal(nal) = &v.payload else {
        // Stream::new gives every video stream a NAL payload.
        return Err(Error::NotFound("a video stream without NAL units"));
    };
    let s = &track.samples;
    let first = seg.first as usize;
    out.reserve(seg.end.saturating_sub(seg.first) as usize);
    for (i, (dts, _)) in (first..seg.end as usize).zip(s.times_from(first)) {
        let sync = s.is_sync(i);
        out.push(Unit {
            stream: VIDEO,
            first: sample_number(i),
            end: sample_number(i) + 1,
            pts: v.pts(dts, s.cts_offset(i)),
            dts: v.dts(dts),
            payload: nal.prefix_len(sync) + s.size(i) as usize,
            sync,
            psi: false,
            pcr: false,
        });
    }
    Ok(())
}

fn audio_units(p: &Presentation, a: &Stream, seg: &Segment, out: &mut Vec<Unit>) -> Result<()> {
    let Some(r) = p.renditions.get(a.rendition) else {
        return Err(Error::NotFound("rendition of another presentation"));
    };
    let Some(track) = track_of(p, r) else {
        return Ok(());
    };
    if seg.first > seg.end || seg.end as usize > track.samples.len() {
        return Err(Error::NotFound("a segment outside its track"));
    }
    let s = &track.samples;
    let header = if matches!(a.payload, Payload::Adts(_)) {
        adts::HEADER_LEN
    } else {
        0
    };
    let frame_len = |i: usize| {
        let size = s.size(i) as usize;
        let bad = |reason| Error::BadSample {
            rendition: r.id.clone(),
            sample: sample_number(i),
            reason,
        };
        if header > 0 && size > adts::MAX_FRAME {
            return Err(bad("an AAC frame longer than an ADTS header can describe"));
        }
        if size + header > MAX_BOUNDED_PAYLOAD {
            return Err(bad("an audio frame longer than a PES packet can hold"));
        }
        Ok(size + header)
    };
    let (first, end) = (seg.first as usize, seg.end as usize);
    let mut times = (first..end).zip(s.times_from(first)).peekable();
    while let Some((i, (dts, _))) = times.next() {
        let pts = a.pts(dts, s.cts_offset(i));
        let mut unit = Unit {
            stream: AUDIO,
            first: sample_number(i),
            end: sample_number(i) + 1,
            pts,
            dts: a.dts(dts),
            payload: frame_len(i)?,
            sync: true,
            psi: false,
            pcr: false,
        };
        while let Some(&(j, (next_dts, _))) = times.peek() {
            let len = frame_len(j)?;
            if a.pts(next_dts, s.cts_offset(j)).saturating_sub(pts) >= AUDIO_PES_TICKS
                || unit.payload + len > MAX_BOUNDED_PAYLOAD
            {
                break;
            }
            unit.payload += len;
            unit.end = sample_number(j) + 1;
            times.next();
        }
        out.push(unit);
    }
    Ok(())
}
