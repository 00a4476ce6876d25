//! Transport stream packets (ISO/IEC 13818-1 §2.4.3.2) carrying one PES
//! packet: the PCR adaptation field (§2.4.3.4) in the first, adaptation-field
//! stuffing in the last. [`count`] and [`PesPackets`] share [`first_capacity`]
//! so the size of a segment and its bytes cannot disagree.

/// Size of a TS packet.
pub(super) const PACKET: usize = 188;
/// Payload room of a packet without an adaptation field.
const PAYLOAD: usize = PACKET - 4;
/// An adaptation field holding only a PCR: length, flags, 48 bits of PCR.
const PCR_FIELD: usize = 8;

/// What the adaptation field of a PES packet's first TS packet carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Pcr {
    /// `program_clock_reference_base` in 90 kHz ticks (taken modulo 2^33).
    pub(super) base: u64,
    /// `random_access_indicator`: the PES starts a point a decoder can start at.
    pub(super) random_access: bool,
}

/// Payload bytes the first packet of a PES can hold.
fn first_capacity(pcr: bool) -> usize {
    if pcr { PAYLOAD - PCR_FIELD } else { PAYLOAD }
}

/// Number of TS packets a PES packet of `len` bytes takes.
pub(super) fn count(len: usize, pcr: bool) -> usize {
    let first = first_capacity(pcr);
    if len <= first {
        1
    } else {
        1 + (len - first).div_ceil(PAYLOAD)
    }
}

/// Appends the TS packets carrying the PES packet `pes` on `pid`, advancing
/// the continuity counter `cc` once per packet.
#[cfg(test)]
pub(super) fn write_pes(out: &mut Vec<u8>, pid: u16, cc: &mut u8, pcr: Option<Pcr>, pes: &[u8]) {
    let mut packets = PesPackets::new(out, pid, cc, pcr, pes.len());
    packets.push(pes);
    packets.finish().expect("exactly the announced bytes");
}

/// The TS packets of one PES packet of a length known in advance, written
/// as its bytes arrive: each [`PesPackets::push`] copies straight into the
/// packets' payloads, so a PES packet is never assembled on its own.
pub(super) struct PesPackets<'a> {
    out: &'a mut Vec<u8>,
    pid: u16,
    cc: &'a mut u8,
    /// The PCR of the first packet, until that packet is begun.
    pcr: Option<Pcr>,
    /// PES bytes still to come, including those `room` is waiting for.
    left: usize,
    /// Payload bytes the packet begun last still takes.
    room: usize,
    /// Whether no packet is begun yet.
    first: bool,
    /// Whether more bytes were pushed than announced (they are dropped).
    overrun: bool,
}

impl<'a> PesPackets<'a> {
    /// Packets for a PES packet of `len` bytes on `pid`, advancing the
    /// continuity counter `cc` once per packet.
    pub(super) fn new(
        out: &'a mut Vec<u8>,
        pid: u16,
        cc: &'a mut u8,
        pcr: Option<Pcr>,
        len: usize,
    ) -> Self {
        PesPackets {
            out,
            pid,
            cc,
            pcr,
            left: len,
            room: 0,
            first: true,
            overrun: false,
        }
    }

    /// Appends the next `bytes` of the PES packet.
    pub(super) fn push(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            if self.room == 0 {
                if self.left == 0 {
                    self.overrun = true;
                    return;
                }
                self.begin();
            }
            let take = self.room.min(bytes.len());
            self.out.extend_from_slice(&bytes[..take]);
            self.room -= take;
            self.left -= take;
            bytes = &bytes[take..];
        }
    }

    /// Ends the PES packet: an error, with the packets incomplete, unless
    /// exactly the announced number of bytes came.
    pub(super) fn finish(mut self) -> Result<(), &'static str> {
        if self.first {
            // An empty PES packet is one packet of stuffing.
            self.begin();
        }
        if self.overrun || self.left > 0 {
            return Err("a PES packet's bytes differ from its planned length");
        }
        Ok(())
    }

    /// Writes the header (and adaptation field) of the next packet, which
    /// carries as many of the `left` bytes as fit; only the last is short,
    /// its gap becoming adaptation-field stuffing.
    fn begin(&mut self) {
        let pcr = self.pcr.take().filter(|_| self.first);
        let room = if self.first {
            first_capacity(pcr.is_some())
        } else {
            PAYLOAD
        };
        let take = room.min(self.left);
        let stuffing = room - take;
        let adaptation = pcr.is_some() || stuffing > 0;
        let [pid_high, pid_low] = self.pid.to_be_bytes();
        let out = &mut *self.out;
        out.extend_from_slice(&[
            0x47,
            (u8::from(self.first) << 6) | (pid_high & 0x1f),
            pid_low,
            (if adaptation { 0x30 } else { 0x10 }) | *self.cc,
        ]);
        *self.cc = (*self.cc + 1) & 0x0f;
        if let Some(pcr) = pcr {
            out.push(field_length(PCR_FIELD - 1 + stuffing)); // adaptation_field_length
            out.push(0x10 | (u8::from(pcr.random_access) << 6)); // PCR_flag
            out.extend_from_slice(&pcr_bytes(pcr.base));
            out.resize(out.len() + stuffing, 0xff);
        } else if stuffing > 0 {
            // A one-byte field is its length alone (0); longer ones have flags.
            out.push(field_length(stuffing - 1));
            if stuffing > 1 {
                out.push(0);
                out.resize(out.len() + stuffing - 2, 0xff);
            }
        }
        self.room = take;
        self.first = false;
    }
}

/// An `adaptation_field_length`: the field lies inside one packet.
fn field_length(len: usize) -> u8 {
    u8::try_from(len).expect("an adaptation field is shorter than a packet")
}

/// The six PCR bytes: 33-bit base, 6 reserved bits, 9-bit extension 0.
fn pcr_bytes(base: u64) -> [u8; 6] {
    // The low 48 bits of base << 15 | reserved << 9 | extension, big-endian.
    let field = ((base & ((1 << 33) - 1)) << 15) | (0x3f << 9);
    let b = field.to_be_bytes();
    [b[2], b[3], b[4], b[5], b[6], b[7]]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits written packets and checks what every packet must satisfy.
    fn packets(out: &[u8]) -> Vec<&[u8]> {
        assert_eq!(out.len() % PACKET, 0);
        out.chunks(PACKET).collect()
    }

    /// The payload of a packet, after its adaptation field.
    fn payload(p: &[u8]) -> &[u8] {
        match p[3] & 0x30 {
            0x10 => &p[4..],
            0x30 => &p[5 + usize::from(p[4])..],
            _ => panic!("no payload"),
        }
    }

    fn roundtrip(len: usize, pcr: Option<Pcr>) -> Vec<u8> {
        let pes: Vec<u8> = (0..=u8::MAX).cycle().take(len).collect();
        let mut out = Vec::new();
        let mut cc = 14;
        write_pes(&mut out, 0x101, &mut cc, pcr, &pes);
        let ps = packets(&out);
        assert_eq!(ps.len(), count(len, pcr.is_some()), "{len} bytes");
        assert_eq!(
            cc,
            u8::try_from((14 + ps.len()) % 16).unwrap(),
            "one counter step per packet"
        );
        let joined: Vec<u8> = ps.iter().flat_map(|p| payload(p).to_vec()).collect();
        assert_eq!(joined, pes, "{len} bytes survive packetization");
        for (k, p) in ps.iter().enumerate() {
            assert_eq!(p[0], 0x47);
            assert_eq!(
                p[1] & 0x40 != 0,
                k == 0,
                "start indicator on the first only"
            );
            assert_eq!(u16::from_be_bytes([p[1] & 0x1f, p[2]]), 0x101);
        }
        out
    }

    #[test]
    fn sizes_at_the_edges_without_pcr() {
        assert_eq!(count(183, false), 1);
        assert_eq!(count(184, false), 1);
        assert_eq!(count(185, false), 2);
        assert_eq!(count(368, false), 2);
        assert_eq!(count(369, false), 3);
        // 183 bytes: a one-byte adaptation field (length 0, no flags).
        let out = roundtrip(183, None);
        assert_eq!(&out[3..5], &[0x30 | 14, 0]);
        // 184 bytes fill the packet: no adaptation field.
        let out = roundtrip(184, None);
        assert_eq!(out[3], 0x10 | 14);
        // 185: a full packet, then 1 byte behind 183 of adaptation field.
        let out = roundtrip(185, None);
        assert_eq!(out[PACKET + 3], 0x30 | 15);
        assert_eq!(&out[PACKET + 4..PACKET + 6], &[182, 0]);
        assert!(out[PACKET + 6..2 * PACKET - 1].iter().all(|&b| b == 0xff));
        roundtrip(2, None);
    }

    #[test]
    fn sizes_at_the_edges_with_pcr() {
        let pcr = Some(Pcr {
            base: (1 << 33) + 0x1_2345_6789,
            random_access: true,
        });
        for len in [183, 184, 185] {
            assert_eq!(count(len, true), 2, "{len}");
        }
        assert_eq!(count(176, true), 1);
        assert_eq!(count(177, true), 2);
        assert_eq!(count(360, true), 2);
        assert_eq!(count(361, true), 3);
        for len in [1, 175, 176, 177, 183, 184, 185, 360, 361] {
            roundtrip(len, pcr);
        }
        // A short PES: the PCR field grows by the stuffing.
        let out = roundtrip(100, pcr);
        assert_eq!(out[4], 7 + 76);
        assert_eq!(out[5], 0x50, "PCR_flag and random_access_indicator");
        // 33-bit base 0x1_2345_6789 (the 2^33 wraps away), extension 0.
        let b: u64 = 0x1_2345_6789;
        let got = (u64::from(out[6]) << 25)
            | (u64::from(out[7]) << 17)
            | (u64::from(out[8]) << 9)
            | (u64::from(out[9]) << 1)
            | u64::from(out[10] >> 7);
        assert_eq!(got, b);
        assert_eq!(out[10] & 0x7f, 0x7e);
        assert_eq!(out[11], 0);
    }

    #[test]
    fn pushed_in_pieces_equals_pushed_whole() {
        let pes: Vec<u8> = (0..=u8::MAX).cycle().take(1000).collect();
        let pcr = Some(Pcr {
            base: 90_000,
            random_access: false,
        });
        let whole = roundtrip(1000, pcr);
        for piece in [1, 3, 176, 184, 185, 999] {
            let (mut out, mut cc) = (Vec::new(), 14);
            let mut packets = PesPackets::new(&mut out, 0x101, &mut cc, pcr, pes.len());
            pes.chunks(piece).for_each(|c| packets.push(c));
            packets.finish().unwrap();
            assert_eq!(out, whole, "pieces of {piece}");
        }
    }

    #[test]
    fn a_length_other_than_announced_is_an_error() {
        let (mut out, mut cc) = (Vec::new(), 0);
        let mut packets = PesPackets::new(&mut out, 0x100, &mut cc, None, 10);
        packets.push(&[1; 9]);
        assert!(packets.finish().is_err(), "one byte short");
        let (mut out, mut cc) = (Vec::new(), 0);
        let mut packets = PesPackets::new(&mut out, 0x100, &mut cc, None, 10);
        packets.push(&[1; 11]);
        assert!(packets.finish().is_err(), "one byte over");
        assert_eq!(
            out.len(),
            PACKET,
            "the extra byte is dropped, not looped on"
        );
    }
}
