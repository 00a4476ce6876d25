//! Video configuration boxes: `avcC`, `hvcC`, `av1C`, and `colr`.

use std::fmt::Write;

use super::{Bits, Codec, VideoRange};
use crate::cursor::Cursor;
use crate::error::{Result, malformed};
use crate::fourcc::{FourCc, types};

/// `AVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §5.3.3.1).
pub(super) fn avcc(body: &[u8]) -> Result<Codec> {
    let mut a = Cursor::new(body, "avcC");
    a.u8()?; // configurationVersion
    Ok(Codec::Avc {
        profile: a.u8()?,
        compatibility: a.u8()?,
        level: a.u8()?,
    })
}

/// `HEVCDecoderConfigurationRecord` (ISO/IEC 14496-15 §8.3.3.1): the
/// profile, tier and level fields at its start.
pub(super) fn hvcc(body: &[u8]) -> Result<Codec> {
    let mut c = Cursor::new(body, "hvcC");
    if c.u8()? != 1 {
        return Err(malformed(types::HVCC, "configurationVersion is not 1"));
    }
    let b = c.u8()?;
    let compatibility = c.u32()?;
    let mut constraints = [0u8; 6];
    constraints.copy_from_slice(c.bytes(6)?);
    Ok(Codec::Hevc {
        profile_space: b >> 6,
        high_tier: b & 0x20 != 0,
        profile_idc: b & 0x1f,
        compatibility,
        constraints,
        level: c.u8()?,
    })
}

/// The HEVC `CODECS` string of ISO/IEC 14496-15 Annex E.3, for example
/// `hvc1.1.6.L93.B0`: profile space and idc, the compatibility flags in
/// reverse bit order as hex, tier and level, then the constraint bytes with
/// trailing zero bytes left out.
pub(super) fn hevc_codecs(
    fourcc: FourCc,
    profile_space: u8,
    high_tier: bool,
    profile_idc: u8,
    compatibility: u32,
    constraints: [u8; 6],
    level: u8,
) -> String {
    let space = ["", "A", "B", "C"][usize::from(profile_space & 3)];
    let tier = if high_tier { 'H' } else { 'L' };
    let mut s = format!(
        "{fourcc}.{space}{profile_idc}.{:X}.{tier}{level}",
        compatibility.reverse_bits()
    );
    let used = constraints
        .iter()
        .rposition(|&b| b != 0)
        .map_or(0, |i| i + 1);
    for b in &constraints[..used] {
        let _ = write!(s, ".{b:X}");
    }
    s
}

/// `AV1CodecConfigurationRecord` (AV1 in ISO BMFF §2.3.3).
pub(super) fn av1c(body: &[u8]) -> Result<Codec> {
    let mut bits = Bits::new(body);
    let mut take = |n| bits.take(n).ok_or(malformed(types::AV1C, "truncated"));
    let marker = take(1)?;
    let version = take(7)?;
    if marker != 1 || version != 1 {
        return Err(malformed(types::AV1C, "not marker 1, version 1"));
    }
    let profile = u8::try_from(take(3)?).expect("3 bits");
    let level = u8::try_from(take(5)?).expect("5 bits");
    let high_tier = take(1)? == 1;
    let high_bitdepth = take(1)? == 1;
    let twelve_bit = take(1)? == 1;
    let bit_depth = match (profile, high_bitdepth, twelve_bit) {
        (2, true, true) => 12,
        (_, true, _) => 10,
        _ => 8,
    };
    Ok(Codec::Av1 {
        profile,
        level,
        high_tier,
        bit_depth,
    })
}

/// `ColourInformationBox` (ISO/IEC 14496-12 §12.1.5): the transfer
/// characteristics of an `nclx` (or QuickTime `nclc`) colour type. ICC
/// profiles and unreadable boxes say nothing, which is SDR.
pub(super) fn colr(body: &[u8]) -> VideoRange {
    let mut c = Cursor::new(body, "colr");
    let (Ok(kind), Ok(_primaries), Ok(transfer)) = (c.fourcc(), c.u16(), c.u16()) else {
        return VideoRange::Sdr;
    };
    if kind != types::NCLX && kind.0 != *b"nclc" {
        return VideoRange::Sdr;
    }
    match transfer {
        16 => VideoRange::Pq,
        18 => VideoRange::Hlg,
        _ => VideoRange::Sdr,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hevc_string_of_ffmpeg_main_profile() {
        // hvcC of an x265 Main-profile 320x180 stream made by ffmpeg.
        let body = [0x01, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 0x3c];
        let Codec::Hevc {
            profile_space,
            high_tier,
            profile_idc,
            compatibility,
            constraints,
            level,
        } = hvcc(&body).unwrap()
        else {
            panic!("not HEVC")
        };
        let s = hevc_codecs(
            types::HVC1,
            profile_space,
            high_tier,
            profile_idc,
            compatibility,
            constraints,
            level,
        );
        assert_eq!(s, "hvc1.1.6.L60.90");
    }

    #[test]
    fn hevc_string_of_the_annex_example() {
        // 14496-15 E.3: Main 10, high tier, level 120... written by hand
        // from the example "hev1.2.4.H120.B0".
        let s = hevc_codecs(
            types::HEV1,
            0,
            true,
            2,
            0x2000_0000,
            [0xb0, 0, 0, 0, 0, 0],
            120,
        );
        assert_eq!(s, "hev1.2.4.H120.B0");
    }

    #[test]
    fn av1_string_fields() {
        // Main profile, level 8 (4.0), main tier, 10-bit.
        assert_eq!(
            av1c(&[0x81, 0x08, 0x4c, 0x00]).unwrap(),
            Codec::Av1 {
                profile: 0,
                level: 8,
                high_tier: false,
                bit_depth: 10
            }
        );
        assert!(av1c(&[0x01]).is_err());
    }

    #[test]
    fn colr_transfer() {
        let nclx = |t: u16| {
            let mut b = b"nclx".to_vec();
            b.extend_from_slice(&9u16.to_be_bytes());
            b.extend_from_slice(&t.to_be_bytes());
            b.extend_from_slice(&[0, 9, 0]);
            b
        };
        assert_eq!(colr(&nclx(16)), VideoRange::Pq);
        assert_eq!(colr(&nclx(18)), VideoRange::Hlg);
        assert_eq!(colr(&nclx(1)), VideoRange::Sdr);
        assert_eq!(colr(b"prof"), VideoRange::Sdr);
    }
}
