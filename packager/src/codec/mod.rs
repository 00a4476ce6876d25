//! Sample entries (ISO/IEC 14496-12 §8.5.2) and the codec facts manifests need.
//!
//! The entry's bytes pass through to the init segment untouched; only what
//! manifests need is parsed out of it: the RFC 6381 `CODECS` string,
//! dimensions, channels, sample rate and the video range. Adding a codec
//! means adding a case to [`SampleEntry::parse`] and a configuration-box
//! reader in `video.rs` or `audio.rs`.

mod audio;
mod video;

use crate::cursor::{BoxIter, Cursor};
use crate::error::{Result, malformed};
use crate::fourcc::{FourCc, types};

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
    /// H.265/HEVC (`hvc1`, `hev1`) with its `hvcC` (ISO/IEC 14496-15 §8.3.3).
    Hevc {
        /// `general_profile_space` (0–3).
        profile_space: u8,
        /// `general_tier_flag`: high tier.
        high_tier: bool,
        /// `general_profile_idc`.
        profile_idc: u8,
        /// `general_profile_compatibility_flags`.
        compatibility: u32,
        /// `general_constraint_indicator_flags`, six bytes.
        constraints: [u8; 6],
        /// `general_level_idc`.
        level: u8,
    },
    /// AV1 (`av01`) with its `av1C` (AV1 in ISO BMFF §2.3).
    Av1 {
        /// `seq_profile`.
        profile: u8,
        /// `seq_level_idx_0`.
        level: u8,
        /// `seq_tier_0`: high tier.
        high_tier: bool,
        /// Bit depth (8, 10 or 12).
        bit_depth: u8,
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
    /// AC-3 (`ac-3`) with its `dac3` (ETSI TS 102 366 Annex F).
    Ac3,
    /// E-AC-3 (`ec-3`) with its `dec3` (ETSI TS 102 366 Annex F).
    Eac3,
    /// Opus (`Opus`) with its `dOps` (Opus in ISO BMFF §4.3).
    Opus,
    /// A sample entry this version cannot package.
    Unsupported,
}

/// The transfer function a video track signals in its `colr` box, as HLS
/// `VIDEO-RANGE` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum VideoRange {
    /// Not signalled, or a standard-dynamic-range transfer.
    #[default]
    Sdr,
    /// SMPTE ST 2084 (transfer characteristics 16).
    Pq,
    /// ARIB STD-B67 hybrid log-gamma (transfer characteristics 18).
    Hlg,
}

impl VideoRange {
    /// The `VIDEO-RANGE` attribute value.
    pub fn as_str(self) -> &'static str {
        match self {
            VideoRange::Sdr => "SDR",
            VideoRange::Pq => "PQ",
            VideoRange::Hlg => "HLG",
        }
    }
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
    /// Channel count: from the codec configuration where it has one (the
    /// sample entry's own field is fixed at 2 for several codecs).
    pub channels: u16,
    /// Sample rate from an audio sample entry (integer part).
    pub sample_rate: u32,
    /// Video range from a `colr` box of type `nclx`/`nclc`.
    pub video_range: VideoRange,
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

    /// Parses a whole sample-entry box (an `avc1` box with its `avcC`, an
    /// `mp4a` box with its `esds`, ...), as a live encoder configures it.
    /// Trailing bytes after the box are an error.
    pub fn from_box(raw: &[u8]) -> Result<Self> {
        let mut boxes = BoxIter::new(raw);
        let entry = boxes
            .next()
            .ok_or(malformed(types::STSD, "empty sample entry"))??;
        if boxes.next().is_some() {
            return Err(malformed(entry.fourcc, "bytes after the sample entry"));
        }
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
            video_range: VideoRange::Sdr,
        };
        match fourcc {
            types::AVC1 | types::AVC3 | types::HVC1 | types::HEV1 | types::AV01 => {
                let mut c = Cursor::new(body, "visual sample entry");
                c.skip(24)?;
                entry.width = c.u16()?;
                entry.height = c.u16()?;
                let children = children(fourcc, body)?;
                let config = |kind| {
                    BoxIter::new(children)
                        .find(kind)?
                        .ok_or(malformed(fourcc, "no codec configuration box"))
                };
                entry.codec = match fourcc {
                    types::AVC1 | types::AVC3 => video::avcc(config(types::AVCC)?.body)?,
                    types::AV01 => video::av1c(config(types::AV1C)?.body)?,
                    _ => video::hvcc(config(types::HVCC)?.body)?,
                };
                if let Some(colr) = BoxIter::new(children).find(types::COLR)? {
                    entry.video_range = video::colr(colr.body);
                }
            }
            types::MP4A | types::AC_3 | types::EC_3 | types::OPUS => {
                let mut c = Cursor::new(body, "audio sample entry");
                c.skip(8)?;
                // QuickTime sound description versions 1 and 2 extend the entry.
                let version = c.u16()?;
                c.skip(6)?;
                entry.channels = c.u16()?;
                c.skip(6)?;
                entry.sample_rate = c.u32()? >> 16;
                let children = children(fourcc, body)?;
                let config = |kind| {
                    BoxIter::new(children)
                        .find(kind)?
                        .ok_or(malformed(fourcc, "no codec configuration box"))
                };
                let facts = match fourcc {
                    types::MP4A => audio::esds(config(types::ESDS)?.body)?,
                    types::AC_3 => audio::dac3(config(types::DAC3)?.body)?,
                    types::EC_3 => audio::dec3(config(types::DEC3)?.body)?,
                    _ => audio::dops(config(types::DOPS)?.body)?,
                };
                if let Some(rate) = facts.sample_rate {
                    if entry.sample_rate == 0 || version == 2 || fourcc == types::OPUS {
                        entry.sample_rate = rate;
                    }
                }
                // The configuration box knows the channels; the entry's
                // field is a fixed 2 for AC-3/E-AC-3 in some muxers.
                if facts.channels > 0 && (entry.channels == 0 || fourcc != types::MP4A) {
                    entry.channels = facts.channels;
                }
                entry.codec = facts.codec;
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
            Codec::Hevc {
                profile_space,
                high_tier,
                profile_idc,
                compatibility,
                constraints,
                level,
            } => Some(video::hevc_codecs(
                self.fourcc,
                profile_space,
                high_tier,
                profile_idc,
                compatibility,
                constraints,
                level,
            )),
            Codec::Av1 {
                profile,
                level,
                high_tier,
                bit_depth,
            } => Some(format!(
                "av01.{profile}.{level:02}{}.{bit_depth:02}",
                if high_tier { 'H' } else { 'M' }
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
            Codec::Ac3 => Some("ac-3".to_owned()),
            Codec::Eac3 => Some("ec-3".to_owned()),
            Codec::Opus => Some("opus".to_owned()),
            Codec::Unsupported => None,
        }
    }

    /// Whether the packager can pass this entry through.
    pub fn is_supported(&self) -> bool {
        self.codec != Codec::Unsupported
    }

    /// The payload of the codec configuration box (`avcC`, `hvcC`, `av1C`,
    /// `esds`, `dac3`, `dec3` or `dOps`), read again from [`Self::raw`].
    /// `None` for unsupported entries or when the box is missing.
    pub fn config_box(&self) -> Option<&[u8]> {
        let kind = match self.codec {
            Codec::Avc { .. } => types::AVCC,
            Codec::Hevc { .. } => types::HVCC,
            Codec::Av1 { .. } => types::AV1C,
            Codec::Mpeg4Audio { .. } => types::ESDS,
            Codec::Ac3 => types::DAC3,
            Codec::Eac3 => types::DEC3,
            Codec::Opus => types::DOPS,
            Codec::Unsupported => return None,
        };
        let entry = BoxIter::new(&self.raw).next()?.ok()?;
        let children = children(self.fourcc, entry.body).ok()?;
        Some(BoxIter::new(children).find(kind).ok()??.body)
    }

    /// The `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1) of an `mp4a`
    /// entry: the `DecoderSpecificInfo` bytes of its `esds`.
    pub fn audio_specific_config(&self) -> Option<&[u8]> {
        match self.codec {
            Codec::Mpeg4Audio { .. } => audio::decoder_specific_info(self.config_box()?),
            _ => None,
        }
    }
}

/// The child boxes of a sample entry: what follows the fixed fields of a
/// visual (§12.1.3) or audio (§12.2.3, QuickTime versions 1 and 2) entry.
fn children(fourcc: FourCc, body: &[u8]) -> Result<&[u8]> {
    match fourcc {
        types::AVC1 | types::AVC3 | types::HVC1 | types::HEV1 | types::AV01 => body
            .get(VISUAL_FIXED..)
            .ok_or(malformed(fourcc, "shorter than a visual sample entry")),
        _ => {
            let mut c = Cursor::new(body, "audio sample entry");
            c.skip(8)?;
            let extra = match c.u16()? {
                0 => 0,
                1 => 16,
                2 => 36,
                _ => return Err(malformed(fourcc, "unknown sound description version")),
            };
            body.get(AUDIO_FIXED + extra..)
                .ok_or(malformed(fourcc, "shorter than an audio sample entry"))
        }
    }
}

/// A most-significant-bit-first reader over a byte slice.
pub(crate) struct Bits<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Bits<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self { data, pos: 0 }
    }

    /// The next `n` (≤ 32) bits, or `None` past the end.
    pub(crate) fn take(&mut self, n: usize) -> Option<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            let byte = *self.data.get(self.pos / 8)?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Some(v)
    }

    /// Reads an `n`-bit unsigned field, `n` ≤ 8.
    pub(crate) fn take_u8(&mut self, n: usize) -> Option<u8> {
        debug_assert!(n <= 8);
        self.take(n)
            .map(|v| u8::try_from(v).expect("at most 8 bits"))
    }
}
