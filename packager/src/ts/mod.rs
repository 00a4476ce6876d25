//! MPEG-2 transport stream segments for HLS (ISO/IEC 13818-1; RFC 8216 §3.2).
//!
//! One TS segment carries segment `index` of an optional video rendition and
//! an optional audio rendition of one [`Presentation`] (the planner cuts
//! audio segment k to match video segment k):
//!
//! ```text
//!  TsLayout::new(p, program) ── once per (presentation, program); the origin caches it
//!     │  plan.rs: per segment, PES units merged by DTS (from the index alone)
//!     │  → per-segment sizes, starting continuity counters, keyframe ranges
//!     ▼
//!  layout.write(p, index, read, out)
//!        PAT, PMT ─ PES(video AU: AUD, parameter sets, Annex B NAL units)
//!                 ─ PES(audio: up to 0.1 s of ADTS / AC-3 / E-AC-3 frames) ─ ...
//! ```
//!
//! - **PSI**: program 1, PMT on PID 0x1000, video on 0x100 (H.264 0x1b,
//!   HEVC 0x24), audio on 0x101 (AAC in ADTS 0x0f, AC-3 0x81, E-AC-3 0x87).
//!   A PAT and a PMT start every segment and precede every video sync
//!   sample, so every keyframe's byte range plays on its own (I-frame
//!   playlists).
//! - **Timestamps**: PTS is the rendition's output presentation time — the
//!   one the fMP4 segments present at: presentation time plus the
//!   presentation's delay — at 90 kHz plus [`TS_TIME_OFFSET`]. DTS is the
//!   decode time shifted by the same amount, less the most negative
//!   composition offset, so it never passes the PTS; it is written only when
//!   it differs. Values wrap modulo 2^33.
//! - **PCR** on the video PID (the audio PID when there is no video), in the
//!   first TS packet of every PES packet of that PID: its DTS minus
//!   [`PCR_DELAY`].
//! - **Continuity counters** run on across segments: segment k starts where
//!   k − 1 stopped, so a player reading segments in order sees one stream.
//! - **Sizes** follow from the sample index (see `annexb.rs` for why an
//!   Annex B access unit is its MP4 sample plus a fixed prefix).
//!
//! Key types: [`TsLayout`], [`TsProgram`], [`KeyframeRange`].

mod adts;
mod annexb;
mod packet;
mod pes;
mod plan;
mod psi;
mod span;
mod stream;
mod write;

use crate::error::{Error, Result};
use crate::mp4::TrackKind;
use crate::plan::Segment;
use crate::presentation::{Presentation, Rendition};
use plan::Unit;
use stream::Stream;

pub use span::{TsSpan, span_exists};

/// Added to every 90 kHz PTS, DTS and PCR: 1.4 s, as ffmpeg does, so the
/// frames before zero that B-frame reordering and edit lists produce, and
/// the PCR below the first DTS, stay positive. WebVTT `X-TIMESTAMP-MAP`
/// pairs `MPEGTS:126000` with `LOCAL:00:00:00.000`.
pub const TS_TIME_OFFSET: u64 = 126_000;
/// How far (90 kHz ticks: 0.1 s) the PCR in a PES packet's first TS packet
/// runs behind that packet's DTS: the time the decoder has to receive it.
pub const PCR_DELAY: u64 = 9_000;
/// Size of a TS packet; every segment is a whole number of them.
pub const PACKET_SIZE: usize = packet::PACKET;
/// PID of the program map table.
pub const PMT_PID: u16 = 0x1000;
/// PID of the video elementary stream.
pub const VIDEO_PID: u16 = 0x100;
/// PID of the audio elementary stream.
pub const AUDIO_PID: u16 = 0x101;

/// Index of the video stream in the layout's stream pair.
const VIDEO: usize = 0;
/// Index of the audio stream.
const AUDIO: usize = 1;

/// Where the writers get sample bytes: [`SampleSource::read`] lends the
/// `len` bytes of source `source` (an index in [`Presentation::sources`]) at
/// `offset`. Lending (rather than filling the writer's buffer) lets a
/// reader that reads ahead hand out its own buffer, so a sample's bytes are
/// copied once, into their TS packets.
pub trait SampleSource {
    /// The `len` bytes of source `source` at `offset`, or why not.
    fn read(&mut self, source: usize, offset: u64, len: usize) -> std::io::Result<&[u8]>;
}

/// The sample source the writers take.
pub type ReadSamples<'a> = dyn SampleSource + 'a;

/// A [`SampleSource`] made of a function that fills a buffer:
/// `fill(source, offset, buf)` fills `buf` with the bytes of `source` at
/// `offset`. The simple way to read samples where copies do not matter.
pub struct Filled<F> {
    fill: F,
    buf: Vec<u8>,
}

impl<F: FnMut(usize, u64, &mut [u8]) -> std::io::Result<()>> Filled<F> {
    /// A source calling `fill` for each sample.
    pub fn new(fill: F) -> Self {
        Filled {
            fill,
            buf: Vec::new(),
        }
    }
}

impl<F: FnMut(usize, u64, &mut [u8]) -> std::io::Result<()>> SampleSource for Filled<F> {
    fn read(&mut self, source: usize, offset: u64, len: usize) -> std::io::Result<&[u8]> {
        self.buf.resize(len, 0);
        (self.fill)(source, offset, &mut self.buf)?;
        Ok(&self.buf)
    }
}

/// The renditions one TS segment carries (at least one is Some).
#[derive(Clone, Copy, Debug)]
pub struct TsProgram<'p> {
    /// A video rendition of the presentation.
    pub video: Option<&'p Rendition>,
    /// An audio rendition of the presentation.
    pub audio: Option<&'p Rendition>,
}

/// Where one video keyframe lies inside a TS segment: for
/// `EXT-X-BYTERANGE` in an I-frame playlist.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyframeRange {
    /// Byte offset in the segment of the PAT that precedes the keyframe.
    pub offset: u64,
    /// Bytes of the PAT, the PMT and the keyframe's PES packet.
    pub len: u64,
    /// Presentation time of the keyframe, in seconds.
    pub time: f64,
    /// Seconds to the next keyframe, or to the end of the segment.
    pub duration: f64,
}

/// What a [`TsLayout`] knows of one segment.
#[derive(Clone, Copy, Debug)]
struct SegmentInfo {
    size: u64,
    /// Continuity counters at its start: PAT, PMT, video, audio.
    cc: [u8; 4],
    /// And after its last packet (where the next segment starts).
    end_cc: [u8; 4],
    /// Its keyframes in [`TsLayout::keyframes`].
    keyframes: (u32, u32),
}

/// The TS segments of one program of a presentation, from the sample index
/// alone: sizes, starting continuity counters and keyframe ranges. Build it
/// once per (presentation, program) and keep it; it holds no borrow.
#[derive(Clone, Debug)]
pub struct TsLayout {
    streams: [Option<Stream>; 2],
    pcr_stream: usize,
    pat: Vec<u8>,
    pmt: Vec<u8>,
    segments: Vec<SegmentInfo>,
    keyframes: Vec<KeyframeRange>,
    fingerprint: u64,
}

impl TsLayout {
    /// Lays out every segment of `prog`; fails if a rendition is not of `p`
    /// or cannot be carried (see [`supports`]), or a sample cannot be framed.
    pub fn new(p: &Presentation, prog: TsProgram<'_>) -> Result<Self> {
        let position = |r: &Rendition| {
            p.renditions
                .iter()
                .position(|x| std::ptr::eq(x, r) || x.id == r.id)
                .ok_or(Error::NotFound("rendition of another presentation"))
        };
        let stream =
            |r: Option<&Rendition>, kind| r.map(|r| Stream::new(p, position(r)?, kind)).transpose();
        let streams = [
            stream(prog.video, TrackKind::Video)?,
            stream(prog.audio, TrackKind::Audio)?,
        ];
        let pcr_stream = if streams[VIDEO].is_some() {
            VIDEO
        } else {
            AUDIO
        };
        let Some(pcr) = &streams[pcr_stream] else {
            return Err(Error::NotFound(
                "a TS program needs a video or an audio rendition",
            ));
        };
        let es: Vec<_> = streams.iter().flatten().map(|s| s.es.clone()).collect();
        let mut layout = TsLayout {
            pat: psi::pat(PMT_PID),
            pmt: psi::pmt(pcr.pid, &es),
            pcr_stream,
            streams,
            segments: Vec::new(),
            keyframes: Vec::new(),
            fingerprint: p.fingerprint(),
        };
        let count = layout
            .streams
            .iter()
            .flatten()
            .map(|s| p.renditions[s.rendition].segments.len())
            .max()
            .unwrap_or(0);
        layout.segments.reserve(count);
        let mut units = Vec::new();
        let mut cc = [0u8; 4];
        for index in 0..count {
            let windows = layout.windows(p, index);
            plan::plan(p, &layout.streams, pcr_stream, windows, &mut units)?;
            let info = layout.account(p, index, &units, &mut cc);
            layout.segments.push(info);
        }
        Ok(layout)
    }

    /// The samples of each stream that regular segment `index` carries.
    fn windows(&self, p: &Presentation, index: usize) -> [Option<Segment>; 2] {
        self.streams.each_ref().map(|s| {
            s.as_ref()
                .and_then(|s| p.renditions.get(s.rendition)?.segments.get(index).copied())
        })
    }

    /// Sizes segment `index` from its units, advances the counters past it
    /// and records its keyframes.
    fn account(
        &mut self,
        p: &Presentation,
        index: usize,
        units: &[Unit],
        cc: &mut [u8; 4],
    ) -> SegmentInfo {
        let start_cc = *cc;
        let first_keyframe = self.keyframes.len();
        let video = self.streams[VIDEO].as_ref();
        let keyframes = &mut self.keyframes;
        let size = walk(units, cc, |u, at, len| {
            if let (VIDEO, true, Some(v)) = (u.stream, u.sync, video) {
                let s = &p.track(&p.renditions[v.rendition]).samples;
                let i = u.first as usize;
                keyframes.push(KeyframeRange {
                    offset: at,
                    len,
                    time: v.seconds(v.presentation(s.dts(i), s.cts_offset(i))),
                    duration: 0.0,
                });
            }
        });
        if let Some(v) = &self.streams[VIDEO] {
            let r = &p.renditions[v.rendition];
            let end = r
                .segments
                .get(index)
                .map_or(0.0, |seg| v.seconds(seg.end_time()));
            let ks = &mut self.keyframes[first_keyframe..];
            for k in 0..ks.len() {
                let next = ks.get(k + 1).map_or(end, |n| n.time);
                ks[k].duration = (next - ks[k].time).max(0.0);
            }
        }
        SegmentInfo {
            size,
            cc: start_cc,
            end_cc: *cc,
            keyframes: (
                keyframe_number(first_keyframe),
                keyframe_number(self.keyframes.len()),
            ),
        }
    }

    fn segment(&self, index: usize) -> Result<&SegmentInfo> {
        self.segments
            .get(index)
            .ok_or(Error::NotFound("TS segment index out of range"))
    }

    /// Number of segments: the longer of the two renditions' segment lists.
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }

    /// Size in bytes of segment `index`.
    pub fn size(&self, index: usize) -> Result<u64> {
        Ok(self.segment(index)?.size)
    }

    /// The keyframe ranges of segment `index`, in decode order.
    pub fn keyframes(&self, index: usize) -> Result<&[KeyframeRange]> {
        let (a, b) = self.segment(index)?.keyframes;
        Ok(&self.keyframes[a as usize..b as usize])
    }

    /// Appends segment `index` to `out`, reading sample bytes from `read`. `p` must
    /// be the presentation the layout was built from. Exactly
    /// [`Self::size`] bytes are appended; on an error, none are.
    pub fn write(
        &self,
        p: &Presentation,
        index: usize,
        read: &mut ReadSamples<'_>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        let seg = self.segment(index)?;
        self.write_units(p, self.windows(p, index), seg.cc, seg.size, read, out)
    }

    /// Writes the segment made of `windows`, starting at counters `cc`,
    /// which the layout sized at `size` bytes (checked: on a mismatch or
    /// an error nothing is appended).
    fn write_units(
        &self,
        p: &Presentation,
        windows: [Option<Segment>; 2],
        mut cc: [u8; 4],
        size: u64,
        read: &mut ReadSamples<'_>,
        out: &mut Vec<u8>,
    ) -> Result<()> {
        if p.fingerprint() != self.fingerprint {
            return Err(Error::NotFound(
                "a TS layout used with a presentation it was not built from",
            ));
        }
        let mut units = Vec::new();
        plan::plan(p, &self.streams, self.pcr_stream, windows, &mut units)?;
        let start = out.len();
        // The size is the samples' (bounded by the file) plus TS overhead.
        out.reserve(usize::try_from(size).unwrap_or(0));
        let writer = write::Writer {
            p,
            streams: &self.streams,
            pat: &self.pat,
            pmt: &self.pmt,
        };
        if let Err(e) = writer.write(&units, &mut cc, read, out) {
            out.truncate(start);
            return Err(e);
        }
        if (out.len() - start) as u64 != size {
            out.truncate(start);
            return Err(Error::NotFound("a TS segment differs from its layout"));
        }
        Ok(())
    }

    /// Approximate heap size, for cache weighing.
    pub fn heap_bytes(&self) -> usize {
        self.segments.capacity() * std::mem::size_of::<SegmentInfo>()
            + self.keyframes.capacity() * std::mem::size_of::<KeyframeRange>()
            + self.pat.capacity()
            + self.pmt.capacity()
            + 512
    }
}

/// Index `i` of a layout's keyframe ranges: one per video sample at most,
/// and sample numbers are 32 bits.
fn keyframe_number(i: usize) -> u32 {
    u32::try_from(i).expect("fewer keyframes than samples")
}

/// Walks a segment's units as they will be written: advances the counters
/// `cc` past them, calls `on_unit(unit, offset, len)` with each one's bytes
/// (its PSI included) and returns the segment's size.
fn walk(units: &[Unit], cc: &mut [u8; 4], mut on_unit: impl FnMut(&Unit, u64, u64)) -> u64 {
    let mut offset = 0u64;
    let step = |c: &mut u8, n: usize| {
        *c = u8::try_from((usize::from(*c) + n) % 16).expect("below 16");
    };
    for u in units {
        let at = offset;
        if u.psi {
            step(&mut cc[write::CC_PAT], 1);
            step(&mut cc[write::CC_PMT], 1);
            offset += 2 * PACKET_SIZE as u64;
        }
        let n = u.pes_packets();
        step(&mut cc[write::cc_of(u.stream)], n);
        offset += (n * PACKET_SIZE) as u64;
        on_unit(u, at, offset - at);
    }
    offset
}

/// Size in bytes of TS segment `index`, computed from the sample index
/// alone (no sample bytes read). Builds a [`TsLayout`]; keep one instead
/// when asking for more than one segment.
pub fn segment_size(p: &Presentation, prog: TsProgram<'_>, index: usize) -> Result<u64> {
    TsLayout::new(p, prog)?.size(index)
}

/// Writes TS segment `index`, reading sample bytes from `read`; appends to
/// `out`; the number of bytes appended equals [`segment_size`].
pub fn write_segment(
    p: &Presentation,
    prog: TsProgram<'_>,
    index: usize,
    read: &mut ReadSamples<'_>,
    out: &mut Vec<u8>,
) -> Result<()> {
    TsLayout::new(p, prog)?.write(p, index, read, out)
}

/// Whether a rendition's codec can be carried in TS by this writer: H.264
/// (`avc1`, `avc3`) and HEVC (`hvc1`, `hev1`) with 3- or 4-byte NAL length
/// fields, AAC (`mp4a`, object type 0x40) whose configuration an ADTS
/// header can describe, AC-3 and E-AC-3.
pub fn supports(p: &Presentation, r: &Rendition) -> bool {
    matches!(r.kind, TrackKind::Video | TrackKind::Audio) && stream::payload_of(p, r).is_ok()
}

/// Byte offset and length, inside TS segment `index` of `prog`, of each
/// video keyframe's PAT, PMT and PES packets, with the keyframe's
/// presentation time and the time to the next keyframe or the segment's
/// end. Computed from the index alone.
pub fn keyframe_ranges(
    p: &Presentation,
    prog: TsProgram<'_>,
    index: usize,
) -> Result<Vec<KeyframeRange>> {
    Ok(TsLayout::new(p, prog)?.keyframes(index)?.to_vec())
}
