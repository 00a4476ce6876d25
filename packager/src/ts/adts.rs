//! ADTS headers for AAC frames (ISO/IEC 13818-7 §6.2 / ISO/IEC 14496-3
//! §1.A.3.2), built from the track's `AudioSpecificConfig` (14496-3 §1.6.2.1).

use crate::codec::Bits;

/// Length of a header without CRC (`protection_absent` = 1).
pub(super) const HEADER_LEN: usize = 7;
/// Largest raw frame an ADTS header can frame: `frame_length` has 13 bits.
pub(super) const MAX_FRAME: usize = (1 << 13) - 1 - HEADER_LEN;

/// What every ADTS header of a track repeats.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Adts {
    /// `profile`: the audio object type minus one (0 Main, 1 LC, 2 SSR, 3 LTP).
    profile: u8,
    /// `sampling_frequency_index`.
    frequency_index: u8,
    /// `channel_configuration` (1–7).
    channels: u8,
}

impl Adts {
    /// Reads an `AudioSpecificConfig`; `None` when ADTS cannot describe it
    /// (object types beyond LTP other than explicitly signalled SBR/PS, an
    /// explicit sampling frequency, or channels given by a program config
    /// element).
    pub(super) fn from_config(asc: &[u8]) -> Option<Self> {
        let mut bits = Bits::new(asc);
        let object_type = |bits: &mut Bits<'_>| match bits.take(5)? {
            31 => Some(32 + bits.take(6)?),
            t => Some(t),
        };
        let mut aot = object_type(&mut bits)?;
        let frequency_index = bits.take(4)?;
        let channels = bits.take(4)?;
        if aot == 5 || aot == 29 {
            // HE-AAC signalled explicitly: the core object type follows
            // the extension rate; ADTS carries the core (implicit SBR).
            if bits.take(4)? == 15 {
                bits.take(24)?;
            }
            aot = object_type(&mut bits)?;
        }
        if !(1..=4).contains(&aot) || frequency_index > 12 || !(1..=7).contains(&channels) {
            return None;
        }
        let field = |v: u32| u8::try_from(v).expect("checked above");
        Some(Adts {
            profile: field(aot - 1),
            frequency_index: field(frequency_index),
            channels: field(channels),
        })
    }

    /// The header of a frame of `frame` raw bytes (at most [`MAX_FRAME`]).
    pub(super) fn header(&self, frame: usize) -> [u8; HEADER_LEN] {
        // frame_length: 13 bits.
        let len = u16::try_from(frame + HEADER_LEN)
            .ok()
            .filter(|&l| l < 1 << 13)
            .expect("the layout refuses frames above MAX_FRAME");
        [
            0xff,
            0xf1, // syncword, MPEG-4, layer 0, protection_absent
            (self.profile << 6) | (self.frequency_index << 2) | (self.channels >> 2),
            ((self.channels & 3) << 6) | (len >> 11) as u8,
            ((len >> 3) & 0xff) as u8,
            (((len & 7) as u8) << 5) | 0x1f, // adts_buffer_fullness 0x7FF: VBR
            0xfc,                            // ... and one raw data block
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lc_stereo_48k_header_bits() {
        // AAC-LC, 48 kHz (index 3), stereo: 00010 0011 0010 000
        let a = Adts::from_config(&[0x11, 0x90]).unwrap();
        let h = a.header(371);
        let mut bits = Bits::new(&h);
        let mut field = |n| bits.take(n).unwrap();
        assert_eq!(field(12), 0xfff, "syncword");
        assert_eq!(field(1), 0, "ID: MPEG-4");
        assert_eq!(field(2), 0, "layer");
        assert_eq!(field(1), 1, "protection_absent");
        assert_eq!(field(2), 1, "profile LC");
        assert_eq!(field(4), 3, "48 kHz");
        assert_eq!(field(1), 0, "private_bit");
        assert_eq!(field(3), 2, "channel_configuration");
        assert_eq!(field(4), 0, "original, home, copyright bits");
        assert_eq!(field(13), 371 + 7, "frame_length includes the header");
        assert_eq!(field(11), 0x7ff, "buffer fullness: VBR");
        assert_eq!(field(2), 0, "one raw data block");
    }

    #[test]
    fn largest_frame_and_mono_5_1() {
        // 5.1 (config 6) needs the channel bit that spills into byte 2.
        let a = Adts::from_config(&[0x11, 0xb0]).unwrap();
        let h = a.header(MAX_FRAME);
        assert_eq!(h[2] & 1, 1);
        assert_eq!(h[3] >> 6, 2);
        let len = (usize::from(h[3] & 3) << 11) | (usize::from(h[4]) << 3) | usize::from(h[5] >> 5);
        assert_eq!(len, 8191);
    }

    #[test]
    fn he_aac_uses_the_core() {
        // AOT 5 (SBR), core 24 kHz (index 6), stereo, extension 48 kHz (3), core AOT 2.
        // 00101 0110 0010 0011 00010 ...
        let a = Adts::from_config(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(
            a,
            Adts {
                profile: 1,
                frequency_index: 6,
                channels: 2
            }
        );
    }

    #[test]
    fn unrepresentable_configs() {
        // Channels from a program config element.
        assert_eq!(Adts::from_config(&[0x11, 0x80]), None);
        // An explicit 24-bit sampling frequency (index 15).
        assert_eq!(Adts::from_config(&[0x17, 0x80, 0, 0, 0x10]), None);
        // Object type 42 (USAC) through the escape.
        assert_eq!(Adts::from_config(&[0xf9, 0x46, 0x40]), None);
        assert_eq!(Adts::from_config(&[]), None);
    }
}
