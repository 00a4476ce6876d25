//! An independent MPEG-TS reader (ISO/IEC 13818-1), written from the spec
//! for these tests: it shares no code with the writer, so it cannot share
//! its mistakes. It panics on anything a conforming stream cannot contain.

use std::collections::HashMap;

pub(crate) const PACKET: usize = 188;

/// One elementary stream of the PMT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Es {
    pub(crate) stream_type: u8,
    pub(crate) pid: u16,
    pub(crate) descriptors: Vec<u8>,
}

/// One PES packet as it came off the wire.
#[derive(Clone, Debug)]
pub(crate) struct Pes {
    pub(crate) pid: u16,
    pub(crate) stream_id: u8,
    pub(crate) pts: u64,
    pub(crate) dts: Option<u64>,
    /// The PCR base in its first TS packet, if any.
    pub(crate) pcr: Option<u64>,
    pub(crate) random_access: bool,
    /// Index of its first TS packet.
    pub(crate) packet: usize,
    pub(crate) payload: Vec<u8>,
}

impl Pes {
    pub(crate) fn decode_time(&self) -> u64 {
        self.dts.unwrap_or(self.pts)
    }
}

/// What a whole stream holds.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    pub(crate) pmt_pid: u16,
    pub(crate) pcr_pid: u16,
    pub(crate) es: Vec<Es>,
    pub(crate) pes: Vec<Pes>,
    /// Packet indices of every PAT and every PMT.
    pub(crate) pats: Vec<usize>,
    pub(crate) pmts: Vec<usize>,
    /// PID of every packet.
    pub(crate) pids: Vec<u16>,
    /// Whether each packet starts a payload unit.
    pub(crate) starts: Vec<bool>,
}

fn crc32_mpeg2(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// A PSI section from a packet payload with pointer_field; checks its CRC.
fn section(payload: &[u8], table_id: u8) -> Vec<u8> {
    let pointer = usize::from(payload[0]);
    let s = &payload[1 + pointer..];
    assert_eq!(s[0], table_id, "table_id");
    assert_eq!(s[1] & 0xc0, 0x80, "section_syntax_indicator 1, '0'");
    let len = usize::from(u16::from_be_bytes([s[1], s[2]]) & 0x0fff);
    let whole = &s[..3 + len];
    assert_eq!(crc32_mpeg2(whole), 0, "section CRC");
    assert!(
        s[3 + len..].iter().all(|&b| b == 0xff),
        "stuffing after a section is 0xFF"
    );
    assert_eq!(whole[5] & 0x01, 1, "current_next_indicator");
    assert_eq!((whole[6], whole[7]), (0, 0), "one section");
    whole[8..whole.len() - 4].to_vec()
}

fn timestamp(b: &[u8], prefix: u8) -> u64 {
    assert_eq!(b[0] >> 4, prefix, "timestamp prefix");
    assert!(
        b[0] & 1 == 1 && b[2] & 1 == 1 && b[4] & 1 == 1,
        "marker bits"
    );
    (u64::from((b[0] >> 1) & 7) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

struct Pending {
    pes: Pes,
    bytes: Vec<u8>,
}

fn finish(p: Pending) -> Pes {
    let b = p.bytes;
    assert_eq!(&b[..3], &[0, 0, 1], "PES start code");
    let stream_id = b[3];
    let len = usize::from(u16::from_be_bytes([b[4], b[5]]));
    if len != 0 {
        assert_eq!(len, b.len() - 6, "PES_packet_length");
    } else {
        assert_eq!(stream_id & 0xf0, 0xe0, "only video may leave the length 0");
    }
    assert_eq!(b[6] & 0xc0, 0x80, "'10' marker");
    assert_eq!(b[6] & 0x30, 0, "not scrambled");
    let flags = b[7] >> 6;
    let header_len = usize::from(b[8]);
    let (pts, dts) = match flags {
        0b10 => (timestamp(&b[9..14], 0b0010), None),
        0b11 => (
            timestamp(&b[9..14], 0b0011),
            Some(timestamp(&b[14..19], 0b0001)),
        ),
        _ => panic!("every PES carries a PTS"),
    };
    if let Some(dts) = dts {
        assert!(dts <= pts, "DTS {dts} after PTS {pts}");
        assert_ne!(dts, pts, "a DTS equal to the PTS is not written");
    }
    let mut pes = p.pes;
    pes.stream_id = stream_id;
    pes.pts = pts;
    pes.dts = dts;
    pes.payload = b[9 + header_len..].to_vec();
    if let Some(pcr) = pes.pcr {
        assert!(
            pcr <= pes.decode_time(),
            "PCR {pcr} after DTS {}",
            pes.decode_time()
        );
    }
    pes
}

/// Reads a whole stream, checking sync bytes, continuity counters, PSI
/// CRCs, adaptation fields and PES headers.
pub(crate) fn read(ts: &[u8]) -> Stream {
    assert_eq!(ts.len() % PACKET, 0, "whole packets");
    let mut out = Stream {
        pmt_pid: u16::MAX,
        ..Stream::default()
    };
    let mut cc: HashMap<u16, u8> = HashMap::new();
    let mut pending: HashMap<u16, Pending> = HashMap::new();
    let mut last_pcr = None;
    for (n, p) in ts.chunks(PACKET).enumerate() {
        assert_eq!(p[0], 0x47, "sync byte of packet {n}");
        assert_eq!(p[1] & 0x80, 0, "transport_error_indicator");
        let start = p[1] & 0x40 != 0;
        let pid = u16::from_be_bytes([p[1] & 0x1f, p[2]]);
        assert_eq!(p[3] & 0xc0, 0, "not scrambled");
        let control = (p[3] >> 4) & 3;
        assert!(control == 1 || control == 3, "every packet has a payload");
        let c = p[3] & 0x0f;
        if let Some(prev) = cc.insert(pid, c) {
            assert_eq!(
                c,
                (prev + 1) % 16,
                "continuity of PID {pid:#x} at packet {n}"
            );
        }
        out.pids.push(pid);
        out.starts.push(start);
        let mut at = 4;
        let mut pcr = None;
        let mut random_access = false;
        if control == 3 {
            let len = usize::from(p[4]);
            assert!(len <= 183, "adaptation field fits");
            if len > 0 {
                let flags = p[5];
                random_access = flags & 0x40 != 0;
                let mut f = 6;
                if flags & 0x10 != 0 {
                    let b = &p[6..12];
                    let base = (u64::from(b[0]) << 25)
                        | (u64::from(b[1]) << 17)
                        | (u64::from(b[2]) << 9)
                        | (u64::from(b[3]) << 1)
                        | u64::from(b[4] >> 7);
                    assert_eq!(b[4] & 0x7e, 0x7e, "reserved PCR bits");
                    pcr = Some(base);
                    f = 12;
                }
                assert_eq!(flags & 0x0f, 0, "no other adaptation fields");
                assert!(
                    p[f..5 + len].iter().all(|&b| b == 0xff),
                    "adaptation stuffing is 0xFF"
                );
            }
            at = 5 + len;
        }
        let payload = &p[at..];
        if let Some(pcr) = pcr {
            assert!(start, "PCR only at the start of a PES");
            assert!(last_pcr.is_none_or(|l| l <= pcr), "PCR goes backwards");
            last_pcr = Some(pcr);
        }
        if pid == 0 {
            assert!(start);
            let s = section(payload, 0x00);
            assert_eq!(s.len(), 4, "one program");
            assert_eq!(u16::from_be_bytes([s[0], s[1]]), 1, "program_number");
            out.pmt_pid = u16::from_be_bytes([s[2] & 0x1f, s[3]]);
            out.pats.push(n);
        } else if pid == out.pmt_pid {
            assert!(start);
            let s = section(payload, 0x02);
            out.pcr_pid = u16::from_be_bytes([s[0] & 0x1f, s[1]]);
            let info = usize::from(u16::from_be_bytes([s[2], s[3]]) & 0x0fff);
            let mut rest = &s[4 + info..];
            let mut es = Vec::new();
            while !rest.is_empty() {
                let len = usize::from(u16::from_be_bytes([rest[3], rest[4]]) & 0x0fff);
                es.push(Es {
                    stream_type: rest[0],
                    pid: u16::from_be_bytes([rest[1] & 0x1f, rest[2]]),
                    descriptors: rest[5..5 + len].to_vec(),
                });
                rest = &rest[5 + len..];
            }
            if !out.es.is_empty() {
                assert_eq!(out.es, es, "every PMT is the same");
            }
            out.es = es;
            out.pmts.push(n);
        } else {
            assert!(
                out.es.iter().any(|e| e.pid == pid),
                "PID {pid:#x} before or outside the PMT"
            );
            if pid == out.pcr_pid {
                assert_eq!(start, pcr.is_some(), "PCR in the first packet of every PES");
            }
            if start {
                if let Some(done) = pending.remove(&pid) {
                    out.pes.push(finish(done));
                }
                pending.insert(
                    pid,
                    Pending {
                        pes: Pes {
                            pid,
                            stream_id: 0,
                            pts: 0,
                            dts: None,
                            pcr,
                            random_access,
                            packet: n,
                            payload: Vec::new(),
                        },
                        bytes: payload.to_vec(),
                    },
                );
            } else {
                pending
                    .get_mut(&pid)
                    .expect("a PES continues only after it started")
                    .bytes
                    .extend_from_slice(payload);
            }
        }
    }
    let mut rest: Vec<Pending> = pending.into_values().collect();
    rest.sort_by_key(|p| p.pes.packet);
    out.pes.extend(rest.into_iter().map(finish));
    out.pes.sort_by_key(|p| p.packet);
    out
}
