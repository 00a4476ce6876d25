//! PES packet headers (ISO/IEC 13818-1 §2.4.3.6, §2.4.3.7): start code,
//! `stream_id`, `PES_packet_length`, and a PTS with an optional DTS.

/// `stream_id` of the first MPEG video stream.
pub(super) const STREAM_ID_VIDEO: u8 = 0xe0;
/// `stream_id` of the first MPEG audio stream (AAC, as ffmpeg writes it).
pub(super) const STREAM_ID_AUDIO: u8 = 0xc0;
/// `private_stream_1`: AC-3 and E-AC-3 (ATSC A/52 Annex A, as ffmpeg writes them).
pub(super) const STREAM_ID_PRIVATE_1: u8 = 0xbd;

/// Bytes after `PES_packet_length` that are not payload: the flags, the
/// header length, and a PTS (5 bytes) or a PTS and a DTS (10).
fn optional_len(has_dts: bool) -> usize {
    3 + if has_dts { 10 } else { 5 }
}

/// Length of the header [`write_header`] writes.
pub(super) fn header_len(has_dts: bool) -> usize {
    6 + optional_len(has_dts)
}

/// Largest payload a PES packet with a bounded `PES_packet_length` and a
/// PTS only can hold.
pub(super) const MAX_BOUNDED_PAYLOAD: usize = u16::MAX as usize - 8;

/// Appends a PES header. `pts`/`dts` are 90 kHz ticks, taken modulo 2^33.
/// `payload_len` sets `PES_packet_length`; `None` writes 0 ("unbounded"),
/// which only video streams may use. An error, and nothing appended, when
/// `payload_len` and the header's optional fields exceed its 16 bits.
pub(super) fn write_header(
    out: &mut Vec<u8>,
    stream_id: u8,
    pts: u64,
    dts: Option<u64>,
    payload_len: Option<usize>,
) -> Result<(), &'static str> {
    let rest = optional_len(dts.is_some());
    let packet_len = match payload_len {
        None => 0,
        // The layout keeps payloads within MAX_BOUNDED_PAYLOAD, which
        // leaves room for a PTS only.
        Some(n) => u16::try_from(n + rest)
            .map_err(|_| "a PES packet longer than its PES_packet_length can give")?,
    };
    out.extend_from_slice(&[0, 0, 1, stream_id]);
    out.extend_from_slice(&packet_len.to_be_bytes());
    // '10', not scrambled, no priority, data_alignment_indicator (every PES
    // starts with an access unit or an audio frame), no copyright, copy.
    out.push(0x84);
    out.push(if dts.is_some() { 0xc0 } else { 0x80 }); // PTS_DTS_flags
    out.push(u8::try_from(rest - 3).expect("a PTS and a DTS at most")); // PES_header_data_length
    match dts {
        Some(dts) => {
            out.extend_from_slice(&timestamp(0b0011, pts));
            out.extend_from_slice(&timestamp(0b0001, dts));
        }
        None => out.extend_from_slice(&timestamp(0b0010, pts)),
    }
    Ok(())
}

/// A 33-bit timestamp behind a 4-bit prefix, with its three marker bits.
fn timestamp(prefix: u8, t: u64) -> [u8; 5] {
    let t = t & ((1 << 33) - 1);
    [
        (prefix << 4) | ((((t >> 30) & 0x07) as u8) << 1) | 1,
        ((t >> 22) & 0xff) as u8,
        ((((t >> 15) & 0x7f) as u8) << 1) | 1,
        ((t >> 7) & 0xff) as u8,
        (((t & 0x7f) as u8) << 1) | 1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_timestamp(b: &[u8]) -> u64 {
        (u64::from(b[0] >> 1 & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1)
    }

    #[test]
    fn pts_and_dts() {
        let mut out = Vec::new();
        let (pts, dts) = (0x1_ffff_fffe, 126_000);
        write_header(&mut out, STREAM_ID_VIDEO, pts, Some(dts), None).unwrap();
        assert_eq!(out.len(), header_len(true));
        assert_eq!(&out[..9], &[0, 0, 1, 0xe0, 0, 0, 0x84, 0xc0, 10]);
        assert_eq!(out[9] >> 4, 0b0011);
        assert_eq!(out[14] >> 4, 0b0001);
        for at in [9, 14] {
            assert_eq!(out[at] & 1, 1);
            assert_eq!(out[at + 2] & 1, 1);
            assert_eq!(out[at + 4] & 1, 1);
        }
        assert_eq!(read_timestamp(&out[9..14]), pts);
        assert_eq!(read_timestamp(&out[14..19]), dts);
    }

    #[test]
    fn bounded_audio_packet() {
        let mut out = Vec::new();
        write_header(&mut out, STREAM_ID_AUDIO, 1 << 33 | 5, None, Some(1000)).unwrap();
        assert_eq!(out.len(), header_len(false));
        assert_eq!(u16::from_be_bytes([out[4], out[5]]), 1000 + 8);
        assert_eq!(&out[6..9], &[0x84, 0x80, 5]);
        assert_eq!(read_timestamp(&out[9..14]), 5, "taken modulo 2^33");
    }
}
