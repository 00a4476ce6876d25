//! The FLV byte stream we hand `flvdemux`: RTMP audio and video message
//! bodies are FLV `AUDIODATA`/`VIDEODATA` bodies, so an RTMP publish becomes
//! an FLV file by framing each message as a tag (Adobe Flash Video File
//! Format Specification v10.1, §E.2 header, §E.3 body, §E.4.1 tags).

/// Tag type of audio data (8).
pub(crate) const TAG_AUDIO: u8 = 8;
/// Tag type of video data (9).
pub(crate) const TAG_VIDEO: u8 = 9;

/// Largest tag body: `DataSize` is 24 bits.
pub(crate) const MAX_TAG_BODY: usize = (1 << 24) - 1;

/// The FLV header (§E.2) and `PreviousTagSize0`, announcing audio and video.
pub(crate) fn header() -> [u8; 13] {
    [
        b'F', b'L', b'V', 1,    // signature, version
        0x05, // TypeFlagsAudio (4) | TypeFlagsVideo (1)
        0, 0, 0, 9, // DataOffset: the header's size
        0, 0, 0, 0, // PreviousTagSize0
    ]
}

/// Appends one tag (§E.4.1) and its `PreviousTagSize` to `out`.
/// `timestamp` is in milliseconds (32 bits: 24 + `TimestampExtended`).
/// Returns `false`, writing nothing, when `body` is too large for a tag.
pub(crate) fn write_tag(out: &mut Vec<u8>, tag_type: u8, timestamp: u32, body: &[u8]) -> bool {
    if body.len() > MAX_TAG_BODY {
        return false;
    }
    let size = body.len() as u32;
    let ts = timestamp.to_be_bytes();
    out.reserve(11 + body.len() + 4);
    out.push(tag_type & 0x1f);
    out.extend_from_slice(&size.to_be_bytes()[1..]);
    out.extend_from_slice(&[ts[1], ts[2], ts[3], ts[0]]);
    out.extend_from_slice(&[0, 0, 0]); // StreamID
    out.extend_from_slice(body);
    out.extend_from_slice(&(11 + size).to_be_bytes());
    true
}

/// How far before the first message of a session later messages may be
/// stamped (audio that starts a little before video) and still map.
const CLOCK_MARGIN_MS: u32 = 10_000;

/// Maps RTMP's 32-bit millisecond timestamps, which may start anywhere
/// (some encoders use their uptime or the wall clock), onto FLV timestamps
/// that start at [`CLOCK_MARGIN_MS`]: the publisher's clock is rebased at
/// its first message, so it wraps only after 49.7 days of publishing
/// rather than whenever the encoder's clock happens to cross 2^32 ms.
/// Differences are kept exactly, so A/V sync is unchanged.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clock {
    base: Option<u32>,
}

impl Clock {
    /// A clock that keeps the publisher's timestamps as they are (the
    /// input timeline of redundant ingest: two nodes fed the same stream
    /// must see the same times, whenever each publisher connected).
    pub(crate) fn raw() -> Self {
        Clock { base: Some(0) }
    }

    /// The FLV timestamp of an RTMP message stamped `rtmp_ms`.
    pub(crate) fn map(&mut self, rtmp_ms: u32) -> u32 {
        let base = *self
            .base
            .get_or_insert(rtmp_ms.wrapping_sub(CLOCK_MARGIN_MS));
        rtmp_ms.wrapping_sub(base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// An independent reader: (type, timestamp, body) of every tag.
    fn read_tags(mut b: &[u8]) -> Option<Vec<(u8, u32, Vec<u8>)>> {
        let mut tags = Vec::new();
        while !b.is_empty() {
            if b.len() < 11 {
                return None;
            }
            let size = u32::from_be_bytes([0, b[1], b[2], b[3]]) as usize;
            let ts = u32::from_be_bytes([b[7], b[4], b[5], b[6]]);
            let body = b.get(11..11 + size)?.to_vec();
            let prev = b.get(11 + size..15 + size)?;
            if u32::from_be_bytes(prev.try_into().ok()?) as usize != 11 + size {
                return None;
            }
            if b[8..11] != [0, 0, 0] {
                return None;
            }
            tags.push((b[0], ts, body));
            b = &b[15 + size..];
        }
        Some(tags)
    }

    #[test]
    fn header_is_an_flv_header() {
        let h = header();
        assert_eq!(&h[..3], b"FLV");
        assert_eq!(u32::from_be_bytes([h[5], h[6], h[7], h[8]]), 9);
    }

    #[test]
    fn oversized_body_is_refused() {
        let mut out = Vec::new();
        assert!(!write_tag(
            &mut out,
            TAG_VIDEO,
            0,
            &vec![0; MAX_TAG_BODY + 1]
        ));
        assert!(out.is_empty());
    }

    #[test]
    fn clock_rebases_across_the_32_bit_wrap() {
        let mut c = Clock::default();
        let start = u32::MAX - 1_000;
        assert_eq!(c.map(start), CLOCK_MARGIN_MS);
        assert_eq!(c.map(start - 20), CLOCK_MARGIN_MS - 20);
        assert_eq!(c.map(start.wrapping_add(2_000)), CLOCK_MARGIN_MS + 2_000);
    }

    proptest! {
        #[test]
        fn clock_keeps_differences(start in any::<u32>(), steps in proptest::collection::vec(0u32..5_000, 0..50)) {
            let mut c = Clock::default();
            let mut ts = start;
            let mut prev = c.map(ts);
            for s in steps {
                ts = ts.wrapping_add(s);
                let now = c.map(ts);
                prop_assert_eq!(now - prev, s);
                prev = now;
            }
        }

        #[test]
        fn tags_read_back(tags in proptest::collection::vec(
            (prop_oneof![Just(TAG_AUDIO), Just(TAG_VIDEO)], any::<u32>(),
             proptest::collection::vec(any::<u8>(), 0..300)), 0..20)) {
            let mut out = Vec::new();
            for (t, ts, body) in &tags {
                prop_assert!(write_tag(&mut out, *t, *ts, body));
            }
            prop_assert_eq!(read_tags(&out), Some(tags));
        }
    }
}
