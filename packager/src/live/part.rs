//! CMAF chunks for live parts: one `moof` (`mfhd`, `traf` (`tfhd`, `tfdt`,
//! `trun`)) and one `mdat` holding the samples — ISO/IEC 14496-12 §8.8.4
//! (`moof`), §8.8.5 (`mfhd`), §8.8.7 (`tfhd`), §8.8.12 (`tfdt`), §8.8.8
//! (`trun`), §8.1.1 (`mdat`); a CMAF chunk is ISO/IEC 23000-19 §7.3.2.3.
//!
//! Unlike the VOD writer (`fmp4::segment`), which plans byte ranges of a
//! source file, a live part owns its bytes: the samples arrived in memory
//! and the part is the only place they are kept.

use std::sync::Arc;

use crate::fmp4::{Put, cts_field, mdat_header_len, put_mdat_header};
use crate::fourcc::types;

/// `sample_depends_on = 2`: a sync sample (§8.8.3.1).
const SYNC_FLAGS: u32 = 0x0200_0000;
/// `sample_depends_on = 1` and `sample_is_non_sync_sample`.
const NON_SYNC_FLAGS: u32 = 0x0101_0000;

/// `tfhd` flags: `default-base-is-moof` (§8.8.7.1).
const TFHD_FLAGS: u32 = 0x2_0000;
/// `trun` flags: data-offset, sample-duration, -size, -flags and
/// composition-time-offset present for every sample (§8.8.8.1).
const TRUN_FLAGS: u32 = 0x001 | 0x100 | 0x200 | 0x400 | 0x800;

/// One access unit as it goes into a part, on the output timeline.
#[derive(Clone, Debug)]
pub(crate) struct Sample {
    /// Decode time (track timescale, output timeline).
    pub(crate) dts: u64,
    /// Duration in ticks.
    pub(crate) duration: u32,
    /// Composition offset on the state machine's timeline (negative for
    /// B-frames: see [`write_chunk`]).
    pub(crate) cts: i32,
    /// A sync sample (keyframe; every audio frame).
    pub(crate) sync: bool,
    /// The sample's bytes (length-prefixed NAL units for AVC/HEVC, a raw
    /// frame for audio), copied into the `mdat` verbatim.
    pub(crate) data: Vec<u8>,
}

/// The `styp` that starts every live segment (§8.16.2): CMAF brands as in
/// the VOD segments.
pub(crate) fn styp() -> Arc<[u8]> {
    let mut b = Vec::with_capacity(28);
    b.boxed(types::STYP, |b| {
        b.put(&types::MSDH.0);
        b.put_u32(0);
        for brand in [types::MSDH, types::MSIX, types::CMFC] {
            b.put(&brand.0);
        }
    });
    b.into()
}

/// Writes one chunk (`moof` + `mdat`) of `samples` for track `track_id`;
/// `sequence` is the `mfhd` sequence number (increasing per track).
/// `samples` must not be empty; their decode times must follow each other.
///
/// The samples' decode times are the state machine's, moved later by the
/// track's B-frame delay so a segment starts at its keyframe's
/// presentation time; `decode_lead` (that delay) is taken back off in the
/// bytes and put on the composition offsets instead, so the `trun` is
/// version 0 with offsets ≥ 0 and the presentation times are unchanged.
/// ffmpeg and GStreamer present negative offsets late by the largest of
/// them (ARCHITECTURE.md, "Timestamps"); every reader reads these alike.
pub(crate) fn write_chunk(
    track_id: u32,
    sequence: u32,
    samples: &[Sample],
    decode_lead: u64,
) -> Vec<u8> {
    let payload: usize = samples.iter().map(|s| s.data.len()).sum();
    let base = samples
        .first()
        .map_or(0, |s| s.dts)
        .saturating_sub(decode_lead);
    let lead = i64::try_from(decode_lead).unwrap_or(i64::MAX);
    let cto = |s: &Sample| i64::from(s.cts).saturating_add(lead);
    // Negative only for an input that presents a frame before decoding it.
    let signed = samples.iter().any(|s| cto(s) < 0);
    let mut h = Vec::with_capacity(128 + 16 * samples.len() + payload);
    let mut data_offset_at = 0;
    h.boxed(types::MOOF, |b| {
        b.full(types::MFHD, 0, 0, |b| b.put_u32(sequence));
        b.boxed(types::TRAF, |b| {
            b.full(types::TFHD, 0, TFHD_FLAGS, |b| b.put_u32(track_id));
            b.full(types::TFDT, 1, 0, |b| b.put_u64(base));
            b.full(types::TRUN, u8::from(signed), TRUN_FLAGS, |b| {
                b.put_u32(
                    u32::try_from(samples.len())
                        .expect("a part lasts a part target: far fewer than 2^32 samples"),
                );
                data_offset_at = b.len();
                b.put_u32(0); // data_offset, patched below
                for s in samples {
                    b.put_u32(s.duration);
                    b.put_u32(
                        u32::try_from(s.data.len())
                            .expect("LiveStream::push refuses access units of 4 GiB or more"),
                    );
                    b.put_u32(if s.sync { SYNC_FLAGS } else { NON_SYNC_FLAGS });
                    b.put_u32(cts_field(cto(s)));
                }
            });
        });
    });
    let data_offset = u32::try_from(h.len() + mdat_header_len(payload as u64))
        .expect("a moof is below 4 GiB (Put::boxed checks it) and an mdat header 16 bytes");
    h[data_offset_at..data_offset_at + 4].copy_from_slice(&data_offset.to_be_bytes());
    put_mdat_header(&mut h, payload as u64);
    for s in samples {
        h.put(&s.data);
    }
    h
}
