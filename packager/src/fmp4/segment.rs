//! CMAF media segments: `styp`, `moof` (`mfhd`, `traf` (`tfhd`, `tfdt`,
//! `trun`)), `mdat` — ISO/IEC 14496-12 §8.8.4–§8.8.12, §8.16.2.
//!
//! A segment is planned, not materialised: the generated header bytes end
//! with the `mdat` header, and the payload is a list of byte ranges of the
//! source file, in order, that the caller appends (with sendfile, a copy,
//! or anything else).
//!
//! A track interleaved with others in its source (a muxed mezzanine: a
//! video frame, then audio, then the next frame) has its samples in many
//! runs. When what lies between them is little (at most an eighth of the
//! track's own bytes, as another track's audio is beside video), the
//! payload is the one source range that spans the runs, and the `traf`
//! has one `trun` per run, each pointing at its run by its `data_offset`
//! (§8.8.8: a run's samples are contiguous, runs need not be); the bytes
//! between runs are in the `mdat` but belong to no sample. The segment is
//! then one range to send, as a file per rendition is, instead of about a
//! hundred. Otherwise (audio beside video is mostly video) the payload is
//! the runs themselves, back to back, under one `trun`.

use super::Put;
use crate::fourcc::types;
use crate::mp4::{Track, TrackKind};
use crate::plan::Segment;
use crate::timing::TrackTiming;

/// A contiguous run of source bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    /// File offset of the first byte.
    pub offset: u64,
    /// Number of bytes.
    pub len: u64,
}

/// The plan of one media segment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MediaSegment {
    /// `styp`, `moof` and the `mdat` header.
    pub header: Vec<u8>,
    /// Source byte ranges forming the `mdat` payload, in order.
    pub ranges: Vec<ByteRange>,
}

impl MediaSegment {
    /// Total size of the segment in bytes.
    pub fn len(&self) -> u64 {
        self.header.len() as u64 + self.ranges.iter().map(|r| r.len).sum::<u64>()
    }

    /// Whether the segment is empty (never true for a planned segment).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The source byte ranges that bytes `start..end` of the segment come
    /// from, in order; the header's bytes in the window are not among them.
    pub fn payload_window(&self, start: u64, end: u64) -> impl Iterator<Item = ByteRange> + '_ {
        let mut pos = self.header.len() as u64;
        self.ranges.iter().filter_map(move |r| {
            let (a, b) = (pos, pos + r.len);
            pos = b;
            let (from, to) = (a.max(start), b.min(end));
            (from < to).then(|| ByteRange {
                offset: r.offset + (from - a),
                len: to - from,
            })
        })
    }
}

/// Samples `first..first + count` of a track, contiguous in its source.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Run {
    first: usize,
    count: usize,
    offset: u64,
    len: u64,
}

/// How a segment's payload comes from its source.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Payload {
    /// The runs back to back, under one `trun`.
    Runs,
    /// One range from the first run's start to the last run's end, a
    /// `trun` per run (see the module documentation).
    Span(Vec<Run>),
}

/// Bytes between a track's runs, relative to its own, that a span may
/// carry: one eighth.
const SPAN_WASTE_SHIFT: u32 = 3;

impl Payload {
    fn of(track: &Track, seg: &Segment) -> Self {
        let s = &track.samples;
        let mut runs: Vec<Run> = Vec::new();
        for i in seg.first as usize..seg.end as usize {
            let (offset, size) = (s.offset(i), u64::from(s.size(i)));
            match runs.last_mut() {
                Some(r) if r.offset + r.len == offset => {
                    r.count += 1;
                    r.len += size;
                }
                _ => runs.push(Run {
                    first: i,
                    count: 1,
                    offset,
                    len: size,
                }),
            }
        }
        // Runs in file order, not overlapping (anything else, as a corrupt
        // index may give, is sent run by run).
        let ascending = runs.windows(2).all(|w| {
            w[0].offset
                .checked_add(w[0].len)
                .is_some_and(|e| e <= w[1].offset)
        });
        let (Some(a), Some(z)) = (runs.first(), runs.last()) else {
            return Payload::Runs;
        };
        let own: u64 = runs.iter().map(|r| r.len).sum();
        let between = z
            .offset
            .checked_add(z.len)
            .and_then(|end| end.checked_sub(a.offset))
            .and_then(|span| span.checked_sub(own));
        match between {
            Some(b) if runs.len() > 1 && ascending && b <= own >> SPAN_WASTE_SHIFT => {
                Payload::Span(runs)
            }
            _ => Payload::Runs,
        }
    }

    /// The `mdat` payload's length.
    fn len(&self, track: &Track, seg: &Segment) -> u64 {
        match self {
            Payload::Runs => track.samples.bytes(seg.first as usize..seg.end as usize),
            Payload::Span(runs) => {
                let (a, z) = (runs[0], runs[runs.len() - 1]);
                z.offset + z.len - a.offset
            }
        }
    }
}

/// `sample_depends_on = 2`: a sync sample (§8.8.3.1).
const SYNC_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample`.
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

/// How a segment's `trun` is laid out; shared by the writer and the size
/// calculation so the two cannot disagree.
struct Layout {
    default_duration: Option<u32>,
    per_sample_flags: bool,
    cts: bool,
    signed_cts: bool,
}

impl Layout {
    fn of(track: &Track, timing: &TrackTiming, seg: &Segment) -> Self {
        let s = &track.samples;
        let (first, end) = (seg.first as usize, seg.end as usize);
        let d0 = s.duration(first);
        let uniform = s.uniform_durations(first..end);
        let per_sample_flags = track.kind == TrackKind::Video && s.sync_count(first + 1..end) > 0;
        let cts = s.has_cts();
        let signed_cts = cts && s.min_cts_offset(first..end) + timing.cts_adjust < 0;
        Layout {
            default_duration: uniform.then_some(d0),
            per_sample_flags,
            cts,
            signed_cts,
        }
    }

    fn tfhd_flags(&self) -> u32 {
        let mut f = 0x2_0000; // default-base-is-moof
        if self.default_duration.is_some() {
            f |= 0x08;
        }
        f | 0x20 // default-sample-flags
    }

    fn trun_flags(&self, video: bool) -> u32 {
        let mut f = 0x001 | 0x200; // data-offset, sample-size
        if self.default_duration.is_none() {
            f |= 0x100;
        }
        if self.per_sample_flags {
            f |= 0x400;
        } else if video {
            f |= 0x004; // first-sample-flags
        }
        if self.cts {
            f |= 0x800;
        }
        f
    }

    fn per_sample_bytes(&self) -> usize {
        4 + 4 * usize::from(self.default_duration.is_none())
            + 4 * usize::from(self.per_sample_flags)
            + 4 * usize::from(self.cts)
    }
}

fn flags_for(sync: bool) -> u32 {
    if sync { SYNC_FLAGS } else { NON_SYNC_FLAGS }
}

/// A `trun` composition offset field (§8.8.8): clamped to what 32 bits
/// hold, a negative one (version 1, signed) as its two's complement.
pub(crate) fn cts_field(c: i64) -> u32 {
    match i32::try_from(c) {
        Ok(signed) => u32::from_be_bytes(signed.to_be_bytes()),
        Err(_) if c < 0 => u32::from_be_bytes(i32::MIN.to_be_bytes()),
        Err(_) => u32::try_from(c).unwrap_or(u32::MAX),
    }
}

/// Appends the `mdat` header (§8.1.1) of `payload` bytes: 8 bytes, or 16
/// with a 64-bit `largesize` when the box would not fit 32 bits.
pub(crate) fn put_mdat_header(out: &mut Vec<u8>, payload: u64) {
    match u32::try_from(payload + 8) {
        Ok(size) => {
            out.put_u32(size);
            out.put(&types::MDAT.0);
        }
        Err(_) => {
            out.put_u32(1);
            out.put(&types::MDAT.0);
            out.put_u64(payload + 16);
        }
    }
}

/// The length of [`put_mdat_header`]'s header.
pub(crate) fn mdat_header_len(payload: u64) -> usize {
    if u32::try_from(payload + 8).is_ok() {
        8
    } else {
        16
    }
}

/// Plans media segment `seg` of `track`; `sequence` is its 1-based number.
pub fn media_segment(
    track: &Track,
    timing: &TrackTiming,
    seg: &Segment,
    sequence: u32,
    out: &mut MediaSegment,
) {
    let s = &track.samples;
    let (first, end) = (seg.first as usize, seg.end as usize);
    let layout = Layout::of(track, timing, seg);
    let video = track.kind == TrackKind::Video;
    let trun_flags = layout.trun_flags(video);
    let h = &mut out.header;
    h.clear();
    out.ranges.clear();

    h.boxed(types::STYP, |b| {
        b.put(&types::MSDH.0);
        b.put_u32(0);
        for brand in [types::MSDH, types::MSIX, types::CMFC] {
            b.put(&brand.0);
        }
    });
    let payload = Payload::of(track, seg);
    let mut offsets_at = Vec::new();
    let moof_start = h.len();
    h.boxed(types::MOOF, |b| {
        b.full(types::MFHD, 0, 0, |b| b.put_u32(sequence));
        b.boxed(types::TRAF, |b| {
            b.full(types::TFHD, 0, layout.tfhd_flags(), |b| {
                b.put_u32(track.id);
                if let Some(d) = layout.default_duration {
                    b.put_u32(d);
                }
                b.put_u32(if video { NON_SYNC_FLAGS } else { SYNC_FLAGS });
            });
            b.full(types::TFDT, 1, 0, |b| {
                b.put_u64(timing.output_decode_time(s.dts(first)))
            });
            let whole = [Run {
                first,
                count: end - first,
                offset: 0,
                len: 0,
            }];
            let runs = match &payload {
                Payload::Runs => &whole[..],
                Payload::Span(runs) => &runs[..],
            };
            for (k, run) in runs.iter().enumerate() {
                // The first-sample-flags field only in the first trun: the
                // segment's only sync sample (if any) is its first.
                let flags = if k == 0 {
                    trun_flags
                } else {
                    trun_flags & !0x004
                };
                b.full(types::TRUN, u8::from(layout.signed_cts), flags, |b| {
                    offsets_at.push(put_run(b, track, timing, &layout, flags, run));
                });
            }
        });
    });
    let moof_len = h.len() - moof_start;
    let payload_len = payload.len(track, seg);
    let base = moof_len + mdat_header_len(payload_len);
    let span_start = match &payload {
        Payload::Runs => 0,
        Payload::Span(runs) => runs[0].offset,
    };
    for (k, &at) in offsets_at.iter().enumerate() {
        let within = match &payload {
            Payload::Runs => 0,
            Payload::Span(runs) => runs[k].offset - span_start,
        };
        let data_offset = u32::try_from(base as u64 + within).expect(
            "a moof is below 4 GiB (Put::boxed checks it) and a span within a segment's 4 GiB",
        );
        h[at..at + 4].copy_from_slice(&data_offset.to_be_bytes());
    }
    put_mdat_header(h, payload_len);

    match &payload {
        Payload::Runs => s.byte_ranges(first..end, |offset, len| {
            out.ranges.push(ByteRange { offset, len })
        }),
        Payload::Span(_) => out.ranges.push(ByteRange {
            offset: span_start,
            len: payload_len,
        }),
    }
}

/// A `trun`'s fields after version and flags: the sample count, the
/// data offset (0 here, patched once the `moof`'s length is known: its
/// position is returned), the first sample's flags if `flags` says so,
/// then each sample's fields.
fn put_run(
    b: &mut Vec<u8>,
    track: &Track,
    timing: &TrackTiming,
    layout: &Layout,
    flags: u32,
    run: &Run,
) -> usize {
    let s = &track.samples;
    b.put_u32(u32::try_from(run.count).expect("a segment holds fewer than 2^32 samples"));
    let data_offset_at = b.len();
    b.put_u32(0);
    if flags & 0x004 != 0 {
        b.put_u32(flags_for(s.is_sync(run.first)));
    }
    let samples = run.first..run.first + run.count;
    for (i, (_, duration)) in samples.clone().zip(s.times_from(run.first)) {
        if layout.default_duration.is_none() {
            b.put_u32(duration);
        }
        b.put_u32(s.size(i));
        if layout.per_sample_flags {
            b.put_u32(flags_for(s.is_sync(i)));
        }
        if layout.cts {
            b.put_u32(cts_field(i64::from(s.cts_offset(i)) + timing.cts_adjust));
        }
    }
    data_offset_at
}

/// Size of the segment [`media_segment`] would produce, without writing it.
pub(crate) fn media_segment_len(track: &Track, timing: &TrackTiming, seg: &Segment) -> u64 {
    let layout = Layout::of(track, timing, seg);
    let payload = Payload::of(track, seg);
    let video = track.kind == TrackKind::Video;
    let n = (seg.end - seg.first) as usize;
    let truns = match &payload {
        Payload::Runs => 1,
        Payload::Span(runs) => runs.len(),
    };
    let styp = 8 + 8 + 12;
    let mfhd = 16;
    let tfhd = 12 + 4 + 4 * usize::from(layout.default_duration.is_some()) + 4;
    let tfdt = 20;
    let first_flags = usize::from(layout.trun_flags(video) & 0x004 != 0) * 4;
    let trun = truns * (12 + 4 + 4) + first_flags + n * layout.per_sample_bytes();
    let moof = 8 + mfhd + 8 + tfhd + tfdt + trun;
    let payload_len = payload.len(track, seg);
    (styp + moof + mdat_header_len(payload_len)) as u64 + payload_len
}
