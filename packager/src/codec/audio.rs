//! Audio configuration boxes: `esds`, `dac3`, `dec3`, `dOps`.

use super::{Bits, Codec};
use crate::cursor::Cursor;
use crate::error::{Result, malformed};
use crate::fourcc::types;

/// What an audio configuration box says.
pub(super) struct AudioFacts {
    pub(super) codec: Codec,
    /// Output channels, 0 when the box does not say.
    pub(super) channels: u16,
    pub(super) sample_rate: Option<u32>,
}

/// Reads an MPEG-4 descriptor header (ISO/IEC 14496-1 §8.3.3): tag and size.
fn descriptor<'a>(c: &mut Cursor<'a>) -> Result<(u8, Cursor<'a>)> {
    let tag = c.u8()?;
    let mut len = 0usize;
    for _ in 0..4 {
        let b = c.u8()?;
        len = (len << 7) | usize::from(b & 0x7f);
        if b & 0x80 == 0 {
            break;
        }
    }
    Ok((
        tag,
        Cursor::new(c.bytes(len.min(c.remaining()))?, "descriptor"),
    ))
}

/// `esds`: the decoder config's object type and its `AudioSpecificConfig`.
pub(super) fn esds(body: &[u8]) -> Result<AudioFacts> {
    let (object_type, asc) = parse_esds(body)?;
    let (audio_object_type, sample_rate, channel_config) = parse_audio_specific_config(asc);
    Ok(AudioFacts {
        codec: Codec::Mpeg4Audio {
            object_type,
            audio_object_type,
            channel_config,
        },
        channels: u16::from(channel_config),
        sample_rate,
    })
}

/// The `DecoderSpecificInfo` bytes of an `esds` payload, if it has any.
pub(super) fn decoder_specific_info(body: &[u8]) -> Option<&[u8]> {
    parse_esds(body)
        .ok()
        .map(|(_, dsi)| dsi)
        .filter(|d| !d.is_empty())
}

/// Returns the `objectTypeIndication` and the `DecoderSpecificInfo` bytes.
fn parse_esds(body: &[u8]) -> Result<(u8, &[u8])> {
    let mut c = Cursor::new(body, "esds");
    c.version_flags()?;
    let (tag, mut es) = descriptor(&mut c)?;
    if tag != 0x03 {
        return Err(malformed(types::ESDS, "no ES_Descriptor"));
    }
    es.u16()?; // ES_ID
    let flags = es.u8()?;
    if flags & 0x80 != 0 {
        es.u16()?; // dependsOn_ES_ID
    }
    if flags & 0x40 != 0 {
        let len = es.u8()?;
        es.skip(usize::from(len))?; // URL
    }
    if flags & 0x20 != 0 {
        es.u16()?; // OCR_ES_Id
    }
    let (tag, mut dc) = descriptor(&mut es)?;
    if tag != 0x04 {
        return Err(malformed(types::ESDS, "no DecoderConfigDescriptor"));
    }
    let object_type = dc.u8()?;
    dc.skip(12)?; // streamType, bufferSizeDB, maxBitrate, avgBitrate
    if dc.remaining() == 0 {
        return Ok((object_type, &[]));
    }
    let (tag, dsi) = descriptor(&mut dc)?;
    Ok((object_type, if tag == 0x05 { dsi.rest() } else { &[] }))
}

/// Reads audio object type, sampling frequency and channel configuration
/// from an `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1).
fn parse_audio_specific_config(asc: &[u8]) -> (u8, Option<u32>, u8) {
    const RATES: [u32; 13] = [
        96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
    ];
    let mut bits = Bits::new(asc);
    let mut aot = bits.take(5).unwrap_or(0);
    if aot == 31 {
        aot = 32 + bits.take(6).unwrap_or(0);
    }
    let rate = match bits.take(4) {
        Some(15) => bits.take(24),
        Some(i) => RATES.get(i as usize).copied(),
        None => None,
    };
    let channels = bits.take_u8(4).unwrap_or(0);
    (aot.min(255) as u8, rate, channels)
}

/// Full-bandwidth channels of an AC-3 `acmod` (ETSI TS 102 366 Table 4.3).
const ACMOD_CHANNELS: [u16; 8] = [2, 1, 2, 3, 3, 4, 4, 5];
/// AC-3 `fscod` → sample rate.
const FSCOD_RATES: [Option<u32>; 4] = [Some(48000), Some(44100), Some(32000), None];

/// `AC3SpecificBox` (ETSI TS 102 366 §F.4).
pub(super) fn dac3(body: &[u8]) -> Result<AudioFacts> {
    let mut bits = Bits::new(body);
    let mut take = |n| bits.take(n).ok_or(malformed(types::DAC3, "truncated"));
    let fscod = take(2)?;
    take(5)?; // bsid
    take(3)?; // bsmod
    let acmod = take(3)?;
    let lfeon = take(1)?;
    Ok(AudioFacts {
        codec: Codec::Ac3,
        channels: ACMOD_CHANNELS[acmod as usize] + u16::from(lfeon == 1),
        sample_rate: FSCOD_RATES[fscod as usize],
    })
}

/// `EC3SpecificBox` (ETSI TS 102 366 §F.6): the channels of the first
/// independent substream and its dependent substreams.
pub(super) fn dec3(body: &[u8]) -> Result<AudioFacts> {
    // Channels each `chan_loc` bit adds (Table F.6.1), bit 0 first.
    const CHAN_LOC: [u16; 9] = [2, 2, 1, 1, 2, 2, 2, 1, 1];
    let mut bits = Bits::new(body);
    let mut take = |n| bits.take(n).ok_or(malformed(types::DEC3, "truncated"));
    take(13)?; // data_rate
    take(3)?; // num_ind_sub - 1
    let fscod = take(2)?;
    take(5)?; // bsid
    take(1)?; // reserved
    take(1)?; // asvc
    take(3)?; // bsmod
    let acmod = take(3)?;
    let lfeon = take(1)?;
    take(3)?; // reserved
    let num_dep_sub = take(4)?;
    let mut channels = ACMOD_CHANNELS[acmod as usize] + u16::from(lfeon == 1);
    if num_dep_sub > 0 {
        let chan_loc = take(9)?;
        channels += (0..9)
            .filter(|i| chan_loc & (1 << i) != 0)
            .map(|i| CHAN_LOC[i])
            .sum::<u16>();
    }
    Ok(AudioFacts {
        codec: Codec::Eac3,
        channels,
        sample_rate: FSCOD_RATES[fscod as usize],
    })
}

/// `OpusSpecificBox` (Encapsulation of Opus in ISO BMFF §4.3.2). Opus always
/// decodes at 48 kHz whatever the input rate was.
pub(super) fn dops(body: &[u8]) -> Result<AudioFacts> {
    let mut c = Cursor::new(body, "dOps");
    if c.u8()? != 0 {
        return Err(malformed(types::DOPS, "unknown version"));
    }
    let channels = c.u8()?;
    if channels == 0 {
        return Err(malformed(types::DOPS, "no output channels"));
    }
    Ok(AudioFacts {
        codec: Codec::Opus,
        channels: u16::from(channels),
        sample_rate: Some(48000),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aac_lc_config() {
        // AAC-LC, 48 kHz, stereo: 00010 0011 0010 000
        assert_eq!(
            parse_audio_specific_config(&[0x11, 0x90]),
            (2, Some(48000), 2)
        );
    }

    #[test]
    fn he_aac_escape() {
        // Object type 5 (SBR), 44.1 kHz index 4, stereo.
        assert_eq!(
            parse_audio_specific_config(&[0x2a, 0x10]),
            (5, Some(44100), 2)
        );
    }

    #[test]
    fn ac3_five_one() {
        // fscod 0 (48 kHz), bsid 8, bsmod 0, acmod 7 (3/2), lfeon 1, bit_rate_code 14.
        // 00 01000 000 111 1 01110 00000
        let f = dac3(&[0b0001_0000, 0b0011_1101, 0b1100_0000]).unwrap();
        assert_eq!((f.channels, f.sample_rate), (6, Some(48000)));
        assert!(dac3(&[0x10]).is_err());
    }

    #[test]
    fn eac3_with_a_dependent_substream() {
        // data_rate, num_ind_sub 0; fscod 0, bsid 16, acmod 7, lfeon 1,
        // num_dep_sub 1, chan_loc with Lrs/Rrs (bit 1): 7.1.
        let fields: [(u32, u32); 12] = [
            (384, 13),
            (0, 3),
            (0, 2),
            (16, 5),
            (0, 1),
            (0, 1),
            (0, 3),
            (7, 3),
            (1, 1),
            (0, 3),
            (1, 4),
            (0b10, 9),
        ];
        let mut acc: u64 = 0;
        let mut n = 0;
        for (v, w) in fields {
            acc = (acc << w) | u64::from(v);
            n += w;
        }
        acc <<= 64 - n;
        let bytes = acc.to_be_bytes();
        let f = dec3(&bytes[..(n as usize).div_ceil(8)]).unwrap();
        assert_eq!(f.channels, 8);
    }

    #[test]
    fn opus_channels() {
        let f = dops(&[0, 2, 0x01, 0x38, 0, 0, 0xbb, 0x80, 0, 0, 0]).unwrap();
        assert_eq!((f.channels, f.sample_rate), (2, Some(48000)));
        assert!(dops(&[0, 0, 0, 0]).is_err());
        assert!(dops(&[1]).is_err());
    }
}
