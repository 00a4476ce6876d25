//! Program-specific information: the program association and program map
//! sections (ISO/IEC 13818-1 §2.4.4.3, §2.4.4.8), their CRC (Annex A) and
//! the one TS packet each of them fills.

use super::packet::PACKET;

/// The program association table's PID (fixed by §2.4.4.4).
pub(super) const PAT_PID: u16 = 0;
/// `table_id` of a program association section.
const PAT_TABLE_ID: u8 = 0x00;
/// `table_id` of a program map section.
const PMT_TABLE_ID: u8 = 0x02;
/// The one program of every stream we write.
const PROGRAM_NUMBER: u16 = 1;
/// `transport_stream_id` (any value; ffmpeg writes 1 too).
const TRANSPORT_STREAM_ID: u16 = 1;
/// `reserved '11'`, `version_number` 0, `current_next_indicator` 1.
const VERSION_CURRENT: u8 = 0xc1;

/// The CRC of ISO/IEC 13818-1 Annex A (CRC-32/MPEG-2): polynomial
/// 0x04C11DB7, register preset to all ones, most significant bit first, no
/// final inversion. A section followed by its CRC has a CRC of 0.
pub(super) fn crc32(data: &[u8]) -> u32 {
    data.iter().fold(0xffff_ffff, |crc, &b| {
        CRC_TABLE[((crc >> 24) as u8 ^ b) as usize] ^ (crc << 8)
    })
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0u32;
    while i < 256 {
        let mut c = i << 24;
        let mut bit = 0;
        while bit < 8 {
            c = if c & 0x8000_0000 != 0 {
                (c << 1) ^ 0x04c1_1db7
            } else {
                c << 1
            };
            bit += 1;
        }
        table[i as usize] = c;
        i += 1;
    }
    table
};

/// One elementary stream of the program map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct EsInfo {
    /// `stream_type` (Table 2-34, or ATSC's 0x81 / 0x87).
    pub(super) stream_type: u8,
    /// `elementary_PID`.
    pub(super) pid: u16,
    /// The `ES_info` descriptors, whole (tag, length, body).
    pub(super) descriptors: Vec<u8>,
}

/// Appends a section: `table_id`, the syntax-indicator flags and
/// `section_length`, then `body` (from the 16-bit id field on), then the CRC.
fn section(out: &mut Vec<u8>, table_id: u8, body: &[u8]) {
    let start = out.len();
    // section_length counts what follows it: the body and the CRC. Our
    // sections stay far below the 1021-byte limit (one TS packet).
    let len = u16::try_from(body.len() + 4).expect("a section fits one packet");
    let [len_high, len_low] = len.to_be_bytes();
    out.push(table_id);
    out.push(0xb0 | len_high); // section_syntax_indicator 1, '0', reserved '11'
    out.push(len_low);
    out.extend_from_slice(body);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// The program association section: program 1 → the PMT at `pmt_pid`.
pub(super) fn pat(pmt_pid: u16) -> Vec<u8> {
    let mut body = Vec::with_capacity(9);
    body.extend_from_slice(&TRANSPORT_STREAM_ID.to_be_bytes());
    body.extend_from_slice(&[VERSION_CURRENT, 0, 0]); // section_number, last_section_number
    body.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
    body.extend_from_slice(&(0xe000 | pmt_pid).to_be_bytes());
    let mut out = Vec::with_capacity(16);
    section(&mut out, PAT_TABLE_ID, &body);
    out
}

/// The program map section of program 1.
pub(super) fn pmt(pcr_pid: u16, streams: &[EsInfo]) -> Vec<u8> {
    let mut body = Vec::with_capacity(64);
    body.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
    body.extend_from_slice(&[VERSION_CURRENT, 0, 0]);
    body.extend_from_slice(&(0xe000 | pcr_pid).to_be_bytes());
    body.extend_from_slice(&0xf000u16.to_be_bytes()); // program_info_length 0
    for s in streams {
        body.push(s.stream_type);
        body.extend_from_slice(&(0xe000 | s.pid).to_be_bytes());
        let info_len =
            u16::try_from(s.descriptors.len()).expect("two short descriptors at most: 12 bits");
        body.extend_from_slice(&(0xf000 | info_len).to_be_bytes());
        body.extend_from_slice(&s.descriptors);
    }
    let mut out = Vec::with_capacity(body.len() + 8);
    section(&mut out, PMT_TABLE_ID, &body);
    out
}

/// Appends a TS packet carrying `section` whole: `payload_unit_start_indicator`
/// set, `pointer_field` 0, the rest stuffed with 0xFF (§2.4.4.1).
pub(super) fn write_packet(out: &mut Vec<u8>, pid: u16, cc: &mut u8, section: &[u8]) {
    debug_assert!(section.len() <= PACKET - 5, "a section fits one packet");
    let start = out.len();
    let [pid_high, pid_low] = pid.to_be_bytes();
    out.extend_from_slice(&[
        0x47,
        0x40 | pid_high,
        pid_low,
        0x10 | *cc, // payload only
        0,          // pointer_field
    ]);
    *cc = (*cc + 1) & 0x0f;
    out.extend_from_slice(section);
    out.resize(start + PACKET, 0xff);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        // The catalogued check value of CRC-32/MPEG-2.
        assert_eq!(crc32(b"123456789"), 0x0376_e6e7);
    }

    #[test]
    fn pat_of_program_one_at_0x1000() {
        // ffmpeg's PAT for the same program, byte for byte, CRC 2A B1 04 B2.
        assert_eq!(
            pat(0x1000),
            [
                0x00, 0xb0, 0x0d, 0x00, 0x01, 0xc1, 0x00, 0x00, 0x00, 0x01, 0xf0, 0x00, 0x2a, 0xb1,
                0x04, 0xb2
            ]
        );
        assert_eq!(crc32(&pat(0x1000)), 0, "a section with its CRC checks to 0");
    }

    #[test]
    fn pmt_fields() {
        let s = pmt(
            0x100,
            &[
                EsInfo {
                    stream_type: 0x1b,
                    pid: 0x100,
                    descriptors: vec![],
                },
                EsInfo {
                    stream_type: 0x81,
                    pid: 0x101,
                    descriptors: b"\x05\x04AC-3".to_vec(),
                },
            ],
        );
        let section_length = usize::from(u16::from_be_bytes([s[1], s[2]]) & 0x0fff);
        assert_eq!(section_length + 3, s.len());
        assert_eq!(&s[8..10], &[0xe1, 0x00], "PCR_PID");
        assert_eq!(&s[12..17], &[0x1b, 0xe1, 0x00, 0xf0, 0x00]);
        assert_eq!(&s[17..22], &[0x81, 0xe1, 0x01, 0xf0, 0x06]);
        assert_eq!(crc32(&s), 0);
    }

    #[test]
    fn psi_packet_layout() {
        let mut out = Vec::new();
        let mut cc = 15;
        write_packet(&mut out, 0x1000, &mut cc, &pat(0x1000));
        assert_eq!(out.len(), PACKET);
        assert_eq!(&out[..5], &[0x47, 0x50, 0x00, 0x1f, 0x00]);
        assert_eq!(cc, 0, "the counter wraps at 16");
        assert!(out[5 + 16..].iter().all(|&b| b == 0xff));
    }
}
