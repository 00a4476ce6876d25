//! ISO BMFF sample entries built from what the parsers say in their caps:
//! `avc1` + `avcC` (ISO/IEC 14496-15 §5.4.2), `hvc1` + `hvcC` (§8.4.1) and
//! `mp4a` + `esds` (ISO/IEC 14496-14 §5.6, descriptors of ISO/IEC
//! 14496-1 §7.2.6). The entries go into init segments verbatim.

/// Appends a box of type `fourcc` whose payload `f` writes, and patches
/// its size in afterwards (ISO/IEC 14496-12 §4.2).
fn write_box(out: &mut Vec<u8>, fourcc: &[u8; 4], f: impl FnOnce(&mut Vec<u8>)) {
    let start = out.len();
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(fourcc);
    f(out);
    let size = u32::try_from(out.len() - start).unwrap_or(u32::MAX);
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
}

/// Fourcc `avc1` (0x61766331).
const AVC1: &[u8; 4] = b"avc1";
/// Fourcc `avcC` (0x61766343).
const AVCC: &[u8; 4] = b"avcC";
/// Fourcc `hvc1` (0x68766331).
const HVC1: &[u8; 4] = b"hvc1";
/// Fourcc `hvcC` (0x68766343).
const HVCC: &[u8; 4] = b"hvcC";
/// Fourcc `mp4a` (0x6d703461).
const MP4A: &[u8; 4] = b"mp4a";
/// Fourcc `esds` (0x65736473).
const ESDS: &[u8; 4] = b"esds";

/// The video codecs ingest passes through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum VideoCodec {
    /// H.264, `codec_data` is an `AVCDecoderConfigurationRecord`.
    Avc,
    /// H.265, `codec_data` is an `HEVCDecoderConfigurationRecord`.
    Hevc,
}

/// A `VisualSampleEntry` (ISO/IEC 14496-12 §12.1.3) with its codec
/// configuration box holding `config`.
pub(crate) fn video(codec: VideoCodec, width: u16, height: u16, config: &[u8]) -> Vec<u8> {
    let (entry, config_box) = match codec {
        VideoCodec::Avc => (AVC1, AVCC),
        VideoCodec::Hevc => (HVC1, HVCC),
    };
    let mut out = Vec::with_capacity(86 + config.len() + 8);
    write_box(&mut out, entry, |b| {
        b.extend_from_slice(&[0; 6]); // reserved
        b.extend_from_slice(&1u16.to_be_bytes()); // data_reference_index
        b.extend_from_slice(&[0; 16]); // pre_defined, reserved, pre_defined[3]
        b.extend_from_slice(&width.to_be_bytes());
        b.extend_from_slice(&height.to_be_bytes());
        b.extend_from_slice(&0x0048_0000u32.to_be_bytes()); // 72 dpi
        b.extend_from_slice(&0x0048_0000u32.to_be_bytes());
        b.extend_from_slice(&[0; 4]); // reserved
        b.extend_from_slice(&1u16.to_be_bytes()); // frame_count
        b.extend_from_slice(&[0; 32]); // compressorname
        b.extend_from_slice(&0x0018u16.to_be_bytes()); // depth
        b.extend_from_slice(&(-1i16).to_be_bytes()); // pre_defined
        write_box(b, config_box, |c| c.extend_from_slice(config));
    });
    out
}

/// Appends a descriptor (ISO/IEC 14496-1 §8.3.3): tag, size in 7-bit
/// groups, body.
fn write_descriptor(out: &mut Vec<u8>, tag: u8, body: &[u8]) {
    out.push(tag);
    let len = body.len();
    let mut groups = Vec::with_capacity(4);
    let mut rest = len;
    loop {
        groups.push((rest & 0x7f) as u8);
        rest >>= 7;
        if rest == 0 {
            break;
        }
    }
    for (i, g) in groups.iter().rev().enumerate() {
        let more = if i + 1 < groups.len() { 0x80 } else { 0 };
        out.push(g | more);
    }
    out.extend_from_slice(body);
}

/// An `mp4a` `AudioSampleEntry` (ISO/IEC 14496-12 §12.2.3) whose `esds`
/// carries the AAC `AudioSpecificConfig` `asc`.
pub(crate) fn aac(channels: u16, rate: u32, asc: &[u8]) -> Vec<u8> {
    // DecoderConfigDescriptor (§7.2.6.6): MPEG-4 audio, stream type 5.
    let mut dcd = vec![0x40, (0x05 << 2) | 1, 0, 0, 0];
    dcd.extend_from_slice(&[0; 8]); // maxBitrate, avgBitrate unknown
    write_descriptor(&mut dcd, 0x05, asc); // DecoderSpecificInfo
    // ES_Descriptor (§7.2.6.5): ES_ID 0, no flags.
    let mut es = vec![0, 0, 0];
    write_descriptor(&mut es, 0x04, &dcd);
    write_descriptor(&mut es, 0x06, &[0x02]); // SLConfigDescriptor, MP4 predefined
    let mut out = Vec::with_capacity(36 + es.len() + 16);
    write_box(&mut out, MP4A, |b| {
        b.extend_from_slice(&[0; 6]); // reserved
        b.extend_from_slice(&1u16.to_be_bytes()); // data_reference_index
        b.extend_from_slice(&[0; 8]); // reserved
        b.extend_from_slice(&channels.to_be_bytes());
        b.extend_from_slice(&16u16.to_be_bytes()); // samplesize
        b.extend_from_slice(&[0; 4]); // pre_defined, reserved
        let rate16 = if rate < 0x1_0000 { rate << 16 } else { 0 };
        b.extend_from_slice(&rate16.to_be_bytes());
        write_box(b, ESDS, |e| {
            e.extend_from_slice(&[0; 4]); // version, flags
            write_descriptor(e, 0x03, &es);
        });
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use headwater_packager::codec::{Codec, SampleEntry};

    /// x264's avcC for 320x240 High 4:0 profile, level 1.3 (from ffmpeg).
    const AVCC_BYTES: &[u8] = &[
        0x01, 0x64, 0x00, 0x0d, 0xff, 0xe1, 0x00, 0x19, 0x67, 0x64, 0x00, 0x0d, 0xac, 0xd9, 0x41,
        0x41, 0xfb, 0x01, 0x10, 0x00, 0x00, 0x03, 0x00, 0x10, 0x00, 0x00, 0x03, 0x03, 0x20, 0xf1,
        0x42, 0x99, 0x60, 0x01, 0x00, 0x06, 0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0,
    ];

    #[test]
    fn avc1_reads_back() {
        let raw = video(VideoCodec::Avc, 320, 240, AVCC_BYTES);
        let e = SampleEntry::from_box(&raw).expect("our avc1 parses");
        assert_eq!((e.width, e.height), (320, 240));
        assert_eq!(e.rfc6381().as_deref(), Some("avc1.64000d"));
        assert_eq!(e.config_box(), Some(AVCC_BYTES));
    }

    #[test]
    fn mp4a_reads_back() {
        // AAC-LC, 48 kHz, stereo.
        let asc = [0x11, 0x90];
        let raw = aac(2, 48_000, &asc);
        let e = SampleEntry::from_box(&raw).expect("our mp4a parses");
        assert_eq!(e.channels, 2);
        assert_eq!(e.sample_rate, 48_000);
        assert_eq!(e.rfc6381().as_deref(), Some("mp4a.40.2"));
        assert_eq!(e.audio_specific_config(), Some(&asc[..]));
        assert!(matches!(e.codec, Codec::Mpeg4Audio { .. }));
    }

    #[test]
    fn long_descriptor_sizes() {
        // A body of 200 bytes needs two size bytes.
        let mut out = Vec::new();
        write_descriptor(&mut out, 5, &[7; 200]);
        assert_eq!(&out[..3], &[5, 0x81, 0x48]);
        assert_eq!(out.len(), 203);
    }
}
