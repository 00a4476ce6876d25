//! CMAF media segments: `styp`, `moof` (`mfhd`, `traf` (`tfhd`, `tfdt`,
//! `trun`)), `mdat` — ISO/IEC 14496-12 §8.8.4–§8.8.12, §8.16.2.
//!
//! A segment is planned, not materialised: the generated header bytes end
//! with the `mdat` header, and the payload is a list of byte ranges of the
//! source file, in order, that the caller appends (with sendfile, a copy,
//! or anything else).

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
    let moof_start = h.len();
    let mut data_offset_at = 0;
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
            b.full(types::TRUN, u8::from(layout.signed_cts), trun_flags, |b| {
                b.put_u32(seg.end - seg.first);
                data_offset_at = b.len();
                b.put_u32(0); // data_offset, patched below
                if trun_flags & 0x004 != 0 {
                    b.put_u32(flags_for(s.is_sync(first)));
                }
                for (i, (_, duration)) in (first..end).zip(s.times_from(first)) {
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
            });
        });
    });
    let moof_len = h.len() - moof_start;
    let payload = s.bytes(first..end);
    let data_offset = u32::try_from(moof_len + mdat_header_len(payload))
        .expect("a moof is below 4 GiB (Put::boxed checks it) and an mdat header 16 bytes");
    h[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    put_mdat_header(h, payload);

    s.byte_ranges(first..end, |offset, len| {
        out.ranges.push(ByteRange { offset, len })
    });
}

/// Size of the segment [`media_segment`] would produce, without writing it.
pub(crate) fn media_segment_len(track: &Track, timing: &TrackTiming, seg: &Segment) -> u64 {
    let layout = Layout::of(track, timing, seg);
    let video = track.kind == TrackKind::Video;
    let n = (seg.end - seg.first) as usize;
    let styp = 8 + 8 + 12;
    let mfhd = 16;
    let tfhd = 12 + 4 + 4 * usize::from(layout.default_duration.is_some()) + 4;
    let tfdt = 20;
    let first_flags = usize::from(layout.trun_flags(video) & 0x004 != 0) * 4;
    let trun = 12 + 4 + 4 + first_flags + n * layout.per_sample_bytes();
    let moof = 8 + mfhd + 8 + tfhd + tfdt + trun;
    let payload = track.samples.bytes(seg.first as usize..seg.end as usize);
    (styp + moof + mdat_header_len(payload)) as u64 + payload
}
