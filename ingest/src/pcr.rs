//! The first PCR of an MPEG-TS byte stream (ISO/IEC 13818-1 §2.4.3.5).
//!
//! GStreamer's `tsdemux` times its output from the first PCR it sees: a
//! PTS comes out as PTS − first PCR. On the input timeline (redundant
//! ingest) two nodes joined at different moments must see the same
//! times, so ingest adds the first PCR back, and an SRT publisher's
//! timestamps reach the packager as the encoder wrote them.

/// Scans a TS byte stream for its first PCR.
#[derive(Debug, Default)]
pub(crate) struct FirstPcr {
    /// Bytes of a packet cut off at the end of the last push.
    carry: Vec<u8>,
    scanned: usize,
    done: bool,
}

/// TS packets are this long.
const PACKET: usize = 188;
/// How far into a stream to look for a PCR before giving up (a stream
/// without one cannot be timed by `tsdemux` anyway).
const LOOK_WITHIN: usize = 4 << 20;

impl FirstPcr {
    /// Looks at the next bytes of the stream: the first PCR's time in
    /// nanoseconds once it is found (once only; `None` after that).
    pub(crate) fn scan(&mut self, data: &[u8]) -> Option<u64> {
        if self.done {
            return None;
        }
        self.scanned += data.len();
        self.carry.extend_from_slice(data);
        let mut i = 0;
        while self.carry.len() - i >= PACKET {
            if self.carry[i] != 0x47 {
                i += 1;
                continue;
            }
            if let Some(ns) = pcr_ns(&self.carry[i..i + PACKET]) {
                self.done = true;
                self.carry = Vec::new();
                return Some(ns);
            }
            i += PACKET;
        }
        self.carry.drain(..i);
        if self.scanned > LOOK_WITHIN {
            self.done = true;
            self.carry = Vec::new();
        }
        None
    }
}

/// The PCR of one packet, in nanoseconds, if it carries one.
fn pcr_ns(p: &[u8]) -> Option<u64> {
    let adaptation = (p[3] >> 4) & 2 != 0;
    if !adaptation || p[4] < 7 || p[5] & 0x10 == 0 {
        return None;
    }
    let b = &p[6..12];
    let base = u64::from(b[0]) << 25
        | u64::from(b[1]) << 17
        | u64::from(b[2]) << 9
        | u64::from(b[3]) << 1
        | u64::from(b[4]) >> 7;
    let ext = u64::from(b[4] & 1) << 8 | u64::from(b[5]);
    // 27 MHz ticks to nanoseconds.
    Some((base * 300 + ext) * 1000 / 27)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet with a PCR of `base` (90 kHz) and `ext` (27 MHz).
    fn with_pcr(base: u64, ext: u64) -> Vec<u8> {
        let mut p = vec![0x47, 0x01, 0x00, 0x30, 183, 0x10];
        p.extend([
            (base >> 25) as u8,
            (base >> 17) as u8,
            (base >> 9) as u8,
            (base >> 1) as u8,
            ((base & 1) << 7) as u8 | 0x7e | (ext >> 8) as u8,
            ext as u8,
        ]);
        p.resize(PACKET, 0xff);
        p
    }

    fn without_pcr() -> Vec<u8> {
        let mut p = vec![0x47, 0x01, 0x00, 0x10];
        p.resize(PACKET, 0);
        p
    }

    #[test]
    fn the_first_pcr_is_found_across_pushes_and_only_once() {
        let mut stream = without_pcr();
        stream.extend(with_pcr(640_920, 150));
        stream.extend(with_pcr(900_000, 0));
        let mut f = FirstPcr::default();
        // Cut mid-packet, and with a byte of garbage before the packets.
        let mut bytes = vec![0x00];
        bytes.extend(&stream);
        let (a, b) = bytes.split_at(250);
        assert_eq!(f.scan(a), None);
        let ns = 640_920 * 1_000_000_000 / 90_000 + 150 * 1000 / 27;
        assert_eq!(f.scan(b), Some(ns));
        assert_eq!(f.scan(&with_pcr(1, 0)), None);
    }

    #[test]
    fn a_stream_without_pcr_is_given_up_on() {
        let mut f = FirstPcr::default();
        for _ in 0..(LOOK_WITHIN / PACKET + 2) {
            assert_eq!(f.scan(&without_pcr()), None);
        }
        assert!(f.done && f.carry.is_empty());
        assert_eq!(f.scan(&with_pcr(5, 0)), None);
    }
}
