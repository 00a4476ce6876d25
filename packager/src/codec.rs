//! Sample entries (ISO/IEC 14496-12 §8.5.2) and the codec facts manifests need.
//!
//! The entry's bytes pass through to the init segment untouched; only what
//! manifests need is parsed out of it: the RFC 6381 `CODECS` string,
//! dimensions, channels and sample rate. Adding a codec means adding a case
//! to [`SampleEntry::parse`] and a configuration-box reader here.

use crate::error::{Result, malformed};
use crate::mp4::fourcc::types;
use crate::mp4::{BoxIter, Cursor, FourCc};

/// What the packager knows about a track's codec.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Codec {
    /// H.264/AVC (`avc1`, `avc3`) with its `avcC` (ISO/IEC 14496-15 §5.3.3).
    Avc {
        /// `AVCProfileIndication`.
        profile: u8,
        /// `profile_compatibility`.
        compatibility: u8,
        /// `AVCLevelIndication`.
        level: u8,
    },
    /// MPEG-4 audio (`mp4a`) with its `esds` (ISO/IEC 14496-1 §7.2.6).
    Mpeg4Audio {
        /// `objectTypeIndication` of the decoder config (0x40 for AAC).
        object_type: u8,
        /// Audio object type from the `AudioSpecificConfig` (2 = AAC-LC).
        audio_object_type: u8,
        /// Channel configuration from the `AudioSpecificConfig`.
        channel_config: u8,
    },
    /// A sample entry this version cannot package.
    Unsupported,
}

/// A track's sample entry: its raw bytes and what was parsed from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleEntry {
    /// The sample entry type (`avc1`, `mp4a`, ...).
    pub fourcc: FourCc,
    /// The whole sample-entry box, copied verbatim into init segments.
    pub raw: Vec<u8>,
    /// The parsed codec configuration.
    pub codec: Codec,
    /// Coded width from a visual sample entry.
    pub width: u16,
    /// Coded height from a visual sample entry.
    pub height: u16,
    /// Channel count from an audio sample entry.
    pub channels: u16,
    /// Sample rate from an audio sample entry (integer part).
    pub sample_rate: u32,
}

/// Size of the fixed part of a `VisualSampleEntry` (§12.1.3).
const VISUAL_FIXED: usize = 78;
/// Size of the fixed part of an `AudioSampleEntry` (§12.2.3), version 0.
const AUDIO_FIXED: usize = 28;

impl SampleEntry {
    /// Parses the first entry of an `stsd` box payload.
    pub(crate) fn from_stsd(stsd_body: &[u8]) -> Result<Self> {
        let mut c = Cursor::new(stsd_body, "stsd");
        c.version_flags()?;
        let count = c.u32()?;
        if count == 0 {
            return Err(malformed(types::STSD, "no sample entries"));
        }
        let entry = BoxIter::new(c.rest())
            .next()
            .ok_or(malformed(types::STSD, "no sample entries"))??;
        Self::parse(entry.fourcc, entry.whole, entry.body)
    }

    fn parse(fourcc: FourCc, raw: &[u8], body: &[u8]) -> Result<Self> {
        let mut entry = SampleEntry {
            fourcc,
            raw: raw.to_vec(),
            codec: Codec::Unsupported,
            width: 0,
            height: 0,
            channels: 0,
            sample_rate: 0,
        };
        match fourcc {
            types::AVC1 | types::AVC3 => {
                let mut c = Cursor::new(body, "visual sample entry");
                c.skip(24)?;
                entry.width = c.u16()?;
                entry.height = c.u16()?;
                let children = body
                    .get(VISUAL_FIXED..)
                    .ok_or(malformed(fourcc, "shorter than a visual sample entry"))?;
                let avcc = BoxIter::new(children)
                    .find(types::AVCC)?
                    .ok_or(malformed(fourcc, "no avcC"))?;
                let mut a = avcc.cursor();
                a.u8()?; // configurationVersion
                entry.codec = Codec::Avc {
                    profile: a.u8()?,
                    compatibility: a.u8()?,
                    level: a.u8()?,
                };
            }
            types::MP4A => {
                let mut c = Cursor::new(body, "audio sample entry");
                c.skip(8)?;
                // QuickTime sound description versions 1 and 2 extend the entry.
                let version = c.u16()?;
                c.skip(6)?;
                entry.channels = c.u16()?;
                c.skip(6)?;
                entry.sample_rate = c.u32()? >> 16;
                let extra = match version {
                    0 => 0,
                    1 => 16,
                    2 => 36,
                    _ => return Err(malformed(fourcc, "unknown sound description version")),
                };
                let children = body
                    .get(AUDIO_FIXED + extra..)
                    .ok_or(malformed(fourcc, "shorter than an audio sample entry"))?;
                let esds = BoxIter::new(children)
                    .find(types::ESDS)?
                    .ok_or(malformed(fourcc, "no esds"))?;
                let (object_type, asc) = parse_esds(esds.body)?;
                let (audio_object_type, rate, channel_config) = parse_audio_specific_config(asc);
                if let Some(rate) = rate {
                    if entry.sample_rate == 0 || version == 2 {
                        entry.sample_rate = rate;
                    }
                }
                if entry.channels == 0 && channel_config > 0 {
                    entry.channels = u16::from(channel_config);
                }
                entry.codec = Codec::Mpeg4Audio {
                    object_type,
                    audio_object_type,
                    channel_config,
                };
            }
            _ => {}
        }
        Ok(entry)
    }

    /// The RFC 6381 codec string, or `None` for unsupported entries.
    pub fn rfc6381(&self) -> Option<String> {
        match self.codec {
            Codec::Avc {
                profile,
                compatibility,
                level,
            } => Some(format!(
                "{}.{profile:02x}{compatibility:02x}{level:02x}",
                self.fourcc
            )),
            Codec::Mpeg4Audio {
                object_type,
                audio_object_type,
                ..
            } => {
                if object_type == 0x40 && audio_object_type != 0 {
                    Some(format!("mp4a.40.{audio_object_type}"))
                } else {
                    Some(format!("mp4a.{object_type:02x}"))
                }
            }
            Codec::Unsupported => None,
        }
    }

    /// Whether the packager can pass this entry through.
    pub fn is_supported(&self) -> bool {
        self.codec != Codec::Unsupported
    }
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
    let mut bits = Bits { data: asc, pos: 0 };
    let mut aot = bits.take(5).unwrap_or(0);
    if aot == 31 {
        aot = 32 + bits.take(6).unwrap_or(0);
    }
    let rate = match bits.take(4) {
        Some(15) => bits.take(24),
        Some(i) => RATES.get(i as usize).copied(),
        None => None,
    };
    let channels = bits.take(4).unwrap_or(0) as u8;
    (aot.min(255) as u8, rate, channels)
}

struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl Bits<'_> {
    fn take(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }
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
}
