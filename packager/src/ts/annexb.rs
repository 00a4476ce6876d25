//! Length-prefixed NAL units (ISO/IEC 14496-15) to the Annex B byte stream
//! (ITU-T H.264 / H.265 Annex B) that MPEG-TS carries.
//!
//! Every access unit gets an access unit delimiter and, before every sync
//! sample, the parameter sets of the `avcC` (§5.3.3.1) or `hvcC` (§8.3.3.1).
//! The sample itself keeps its size: each NAL length field becomes a start
//! code of the same size (`00 00 00 01` for 4-byte lengths,
//! `00 00 01` for 3-byte ones), so the Annex B size of a sample is its size
//! in the file and segment sizes follow from the sample index alone.
//! Access unit delimiters already in the sample (GStreamer's muxers keep
//! them) would start a second access unit after ours: they are overwritten
//! with zero bytes, which Annex B allows between NAL units
//! (`trailing_zero_8bits`). Length fields of 1 or 2 bytes cannot become
//! start codes of their size; such tracks are refused. The converted bytes
//! are emitted as slices (start codes, then each NAL unit as read), so the
//! writer copies them once, into their TS packets.

use crate::cursor::Cursor;
use crate::error::{Result, malformed};
use crate::fourcc::types;

/// `access_unit_delimiter_rbsp` of H.264 (nal_unit_type 9) with
/// `primary_pic_type` 7 (any slice type).
const AUD_AVC: &[u8] = &[0, 0, 0, 1, 0x09, 0xf0];
/// H.265 AUD (nal_unit_type 35, layer 0, temporal id 0) with `pic_type` 2
/// (I, P and B slices).
const AUD_HEVC: &[u8] = &[0, 0, 0, 1, 0x46, 0x01, 0x50];
/// A 4-byte start code; its last three bytes are the short one.
const START_CODE: [u8; 4] = [0, 0, 0, 1];
/// Zero bytes, for length fields and delimiters that become padding.
const ZEROS: [u8; 64] = [0; 64];
/// H.265 `nal_unit_type`s copied from `hvcC`: VPS, SPS, PPS, prefix SEI.
const HEVC_CONFIG_TYPES: [u8; 4] = [32, 33, 34, 39];

/// How a track's samples become Annex B access units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct NalFormat {
    hevc: bool,
    /// Size of each NAL unit's length field: 3 or 4.
    length_size: usize,
    /// The configuration's parameter sets, each behind a 4-byte start code.
    parameter_sets: Vec<u8>,
}

/// Why a NAL format cannot be converted.
pub(super) const SHORT_LENGTH_FIELDS: &str = "NAL length fields of 1 or 2 bytes (lengthSizeMinusOne 0 or 1) cannot be converted \
     to Annex B at their size; only 3- and 4-byte length fields are supported";

impl NalFormat {
    /// Reads an `AVCDecoderConfigurationRecord`. `Ok(None)` when its length
    /// fields are too short to convert.
    pub(super) fn avcc(body: &[u8]) -> Result<Option<Self>> {
        let mut c = Cursor::new(body, "avcC");
        if c.u8()? != 1 {
            return Err(malformed(types::AVCC, "configurationVersion is not 1"));
        }
        c.skip(3)?; // profile, compatibility, level
        let length_size = usize::from(c.u8()? & 3) + 1;
        let mut parameter_sets = Vec::new();
        let sps = c.u8()? & 0x1f;
        copy_sets(&mut c, usize::from(sps), &mut parameter_sets)?;
        let pps = c.u8()?;
        copy_sets(&mut c, usize::from(pps), &mut parameter_sets)?;
        Ok(Self::new(false, length_size, parameter_sets))
    }

    /// Reads an `HEVCDecoderConfigurationRecord`: VPS, SPS, PPS and prefix
    /// SEI arrays, in their order.
    pub(super) fn hvcc(body: &[u8]) -> Result<Option<Self>> {
        let mut c = Cursor::new(body, "hvcC");
        if c.u8()? != 1 {
            return Err(malformed(types::HVCC, "configurationVersion is not 1"));
        }
        c.skip(20)?;
        let length_size = usize::from(c.u8()? & 3) + 1;
        let arrays = c.u8()?;
        let mut parameter_sets = Vec::new();
        for _ in 0..arrays {
            let nal_type = c.u8()? & 0x3f;
            let count = c.u16()?;
            if HEVC_CONFIG_TYPES.contains(&nal_type) {
                copy_sets(&mut c, usize::from(count), &mut parameter_sets)?;
            } else {
                for _ in 0..count {
                    let len = c.u16()?;
                    c.skip(usize::from(len))?;
                }
            }
        }
        Ok(Self::new(true, length_size, parameter_sets))
    }

    fn new(hevc: bool, length_size: usize, parameter_sets: Vec<u8>) -> Option<Self> {
        (length_size >= 3).then_some(NalFormat {
            hevc,
            length_size,
            parameter_sets,
        })
    }

    fn aud(&self) -> &'static [u8] {
        if self.hevc { AUD_HEVC } else { AUD_AVC }
    }

    /// Bytes written before a sample's own: the AUD, and for a sync sample
    /// the parameter sets.
    pub(super) fn prefix_len(&self, sync: bool) -> usize {
        self.aud().len() + if sync { self.parameter_sets.len() } else { 0 }
    }

    /// Emits what [`Self::prefix_len`] counts.
    pub(super) fn write_prefix(&self, sync: bool, emit: &mut impl FnMut(&[u8])) {
        emit(self.aud());
        if sync {
            emit(&self.parameter_sets);
        }
    }

    /// Emits one sample converted to Annex B (as many bytes as it has), or
    /// says why its NAL lengths do not add up to it; on an error, part of
    /// it may have been emitted.
    pub(super) fn write_sample(
        &self,
        sample: &[u8],
        emit: &mut impl FnMut(&[u8]),
    ) -> Result<(), &'static str> {
        let l = self.length_size;
        let mut pos = 0;
        while pos < sample.len() {
            let field = sample
                .get(pos..pos + l)
                .ok_or("a NAL length field runs past the end of the sample")?;
            let len = field.iter().fold(0usize, |n, &b| (n << 8) | usize::from(b));
            let end = (pos + l)
                .checked_add(len)
                .filter(|&e| e <= sample.len())
                .ok_or("a NAL unit runs past the end of the sample")?;
            if len == 0 {
                // Nothing to start: the zero length field is padding already.
                emit(&ZEROS[..l]);
            } else if self.is_aud(sample[pos + l]) {
                for chunk in (pos..end).step_by(ZEROS.len()) {
                    emit(&ZEROS[..(end - chunk).min(ZEROS.len())]);
                }
            } else {
                emit(&START_CODE[START_CODE.len() - l..]);
                emit(&sample[pos + l..end]);
            }
            pos = end;
        }
        Ok(())
    }

    fn is_aud(&self, header: u8) -> bool {
        if self.hevc {
            (header >> 1) & 0x3f == 35
        } else {
            header & 0x1f == 9
        }
    }
}

/// Copies `count` length-prefixed (16-bit) NAL units, each behind a start code.
fn copy_sets(c: &mut Cursor<'_>, count: usize, out: &mut Vec<u8>) -> Result<()> {
    for _ in 0..count {
        let len = c.u16()?;
        let nal = c.bytes(usize::from(len))?;
        if !nal.is_empty() {
            out.extend_from_slice(&[0, 0, 0, 1]);
            out.extend_from_slice(nal);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `write_sample` emits for `sample`, joined.
    fn convert(f: &NalFormat, sample: &[u8]) -> Result<Vec<u8>, &'static str> {
        let mut out = Vec::new();
        f.write_sample(sample, &mut |b| out.extend_from_slice(b))?;
        Ok(out)
    }

    fn prefix(f: &NalFormat, sync: bool) -> Vec<u8> {
        let mut out = Vec::new();
        f.write_prefix(sync, &mut |b| out.extend_from_slice(b));
        out
    }

    fn avc() -> NalFormat {
        // avcC: version 1, High 4.0, 4-byte lengths, one SPS, one PPS.
        let body = [
            1, 0x64, 0, 0x28, 0xff, 0xe1, 0, 3, 0x67, 0xaa, 0xbb, 1, 0, 2, 0x68, 0xcc,
        ];
        NalFormat::avcc(&body).unwrap().unwrap()
    }

    #[test]
    fn avc_prefix_and_in_place_conversion() {
        let f = avc();
        let prefix = prefix(&f, true);
        assert_eq!(
            prefix,
            [
                0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0xaa, 0xbb, 0, 0, 0, 1, 0x68, 0xcc
            ]
        );
        assert_eq!(f.prefix_len(true), prefix.len());
        assert_eq!(f.prefix_len(false), 6);
        // An AUD in the sample becomes zeros; slices get start codes.
        let sample = [
            0, 0, 0, 2, 0x09, 0xf0, 0, 0, 0, 3, 0x65, 1, 2, 0, 0, 0, 1, 0x41,
        ];
        assert_eq!(
            convert(&f, &sample).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x65, 1, 2, 0, 0, 0, 1, 0x41]
        );
    }

    #[test]
    fn overruns_are_errors() {
        let f = avc();
        assert!(convert(&f, &[0, 0, 0, 5, 0x65, 1]).is_err());
        assert!(convert(&f, &[0, 0, 0, 1, 0x65, 0, 0]).is_err());
        assert!(convert(&f, &[0xff, 0xff, 0xff, 0xff, 0]).is_err());
        assert_eq!(convert(&f, &[]), Ok(vec![]));
        // Zero-length units stay zeros; a long AUD becomes zeros of its size.
        let mut sample = vec![0, 0, 0, 0, 0, 0, 0, 200, 0x09];
        sample.extend_from_slice(&[0xf0; 199]);
        assert_eq!(convert(&f, &sample).unwrap(), vec![0; sample.len()]);
    }

    #[test]
    fn three_byte_lengths_become_short_start_codes() {
        let body = [1, 0x64, 0, 0x28, 0xfe, 0xe0, 0];
        let f = NalFormat::avcc(&body).unwrap().unwrap();
        assert_eq!(
            convert(&f, &[0, 0, 2, 0x65, 7]).unwrap(),
            [0, 0, 1, 0x65, 7]
        );
    }

    #[test]
    fn short_length_fields_are_refused() {
        for b in [0xfc, 0xfd] {
            assert_eq!(
                NalFormat::avcc(&[1, 0x64, 0, 0x28, b, 0xe0, 0]).unwrap(),
                None
            );
        }
    }

    #[test]
    fn hevc_arrays_and_aud() {
        let mut body = vec![1];
        body.extend_from_slice(&[0; 20]);
        body.push(0xf3); // lengthSizeMinusOne 3
        body.push(3); // arrays: VPS, an unknown type 40 (skipped), SPS
        body.extend_from_slice(&[0x20, 0, 1, 0, 2, 0x40, 0x01]);
        body.extend_from_slice(&[0x28, 0, 1, 0, 1, 0x50]);
        body.extend_from_slice(&[0x21, 0, 1, 0, 2, 0x42, 0x01]);
        let f = NalFormat::hvcc(&body).unwrap().unwrap();
        let prefix = prefix(&f, true);
        assert_eq!(
            prefix,
            [
                0, 0, 0, 1, 0x46, 0x01, 0x50, 0, 0, 0, 1, 0x40, 0x01, 0, 0, 0, 1, 0x42, 0x01
            ]
        );
        let sample = [0, 0, 0, 3, 0x46, 0x01, 0x50, 0, 0, 0, 2, 0x26, 0x01];
        assert_eq!(
            convert(&f, &sample).unwrap(),
            [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0x26, 0x01]
        );
        assert!(NalFormat::hvcc(&body[..body.len() - 1]).is_err());
    }
}
