//! Hostile input never panics, hangs or allocates without bound: every
//! truncation of real files and seeded random corruptions of their
//! metadata either index cleanly or fail with an error, and whatever
//! indexes can be packaged completely within the file's bounds.

use std::sync::Arc;

use headwater_packager::manifest::{ManifestOptions, dash, hls};
use headwater_packager::{
    Limits, MediaSegment, NamedSource, PackagingConfig, Presentation, Source,
};

/// Indexes and, if that works, packages everything; panics only on a bug.
fn exercise(bytes: &[u8]) {
    let Ok(source) = Source::index(&bytes.to_vec(), bytes.len() as u64, &Limits::default()) else {
        return;
    };
    let named = vec![NamedSource::new("x", Arc::new(source))];
    let Ok(p) = Presentation::new(named, PackagingConfig::default()) else {
        return;
    };
    let mut text = String::new();
    hls::multivariant(&p, &ManifestOptions::default(), &mut text);
    dash::mpd(&p, &ManifestOptions::default(), &mut text);
    let mut seg = MediaSegment::default();
    for r in &p.renditions {
        hls::media(&p, r, &ManifestOptions::default(), &mut text);
        let mut init = Vec::new();
        p.init_segment(r, &mut init);
        for n in 1..=r.segments.len() as u32 {
            p.media_segment(r, n, &mut seg)
                .expect("planned segment exists");
            for range in &seg.ranges {
                assert!(
                    range.offset + range.len <= bytes.len() as u64,
                    "a range escapes the file"
                );
            }
        }
        assert!(
            p.media_segment(r, r.segments.len() as u32 + 1, &mut seg)
                .is_err()
        );
    }
}

/// xorshift64*: deterministic, so a failure names a reproducible seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

fn metadata_span(bytes: &[u8]) -> (usize, usize) {
    let at = |tag: &[u8]| bytes.windows(4).position(|w| w == tag);
    match (at(b"moov"), at(b"moof")) {
        (Some(m), _) => (m.saturating_sub(4), (m + 12_000).min(bytes.len())),
        (None, Some(f)) => (f.saturating_sub(4), (f + 4000).min(bytes.len())),
        _ => (0, bytes.len()),
    }
}

#[test]
fn truncations_never_panic() {
    let media = headwater_testkit::media();
    for name in [
        "bframes.mp4",
        "faststart.mp4",
        "fragmented.mp4",
        "audio-only.m4a",
    ] {
        let bytes = std::fs::read(media.join(name)).unwrap();
        let step = (bytes.len() / 150).max(1);
        for len in (0..bytes.len())
            .step_by(step)
            .chain([bytes.len() - 1, 7, 8, 9, 16])
        {
            exercise(&bytes[..len]);
        }
    }
}

#[test]
fn corrupted_metadata_never_panics() {
    let media = headwater_testkit::media();
    for (k, name) in [
        "bframes.mp4",
        "faststart.mp4",
        "fragmented.mp4",
        "editlist.mp4",
    ]
    .iter()
    .enumerate()
    {
        let original = std::fs::read(media.join(name)).unwrap();
        let (start, end) = metadata_span(&original);
        for seed in 1..=150u64 {
            let mut rng = Rng(seed * 7919 + k as u64);
            let mut bytes = original.clone();
            for _ in 0..1 + rng.next() % 8 {
                let at = start + (rng.next() as usize) % (end - start);
                bytes[at] = match rng.next() % 4 {
                    0 => 0,
                    1 => 0xff,
                    2 => bytes[at] ^ (1 << (rng.next() % 8)),
                    _ => rng.next() as u8,
                };
            }
            exercise(&bytes);
        }
    }
}

#[test]
fn huge_counts_in_tiny_files_are_refused_before_allocating() {
    // An stsz that claims 4 billion one-byte samples in a small file:
    // refused before anything is allocated for them.
    let media = headwater_testkit::media();
    let mut bytes = std::fs::read(media.join("faststart.mp4")).unwrap();
    let stsz = bytes.windows(4).position(|w| w == b"stsz").unwrap();
    bytes[stsz + 8..stsz + 12].copy_from_slice(&1u32.to_be_bytes()); // fixed size 1
    bytes[stsz + 12..stsz + 16].copy_from_slice(&u32::MAX.to_be_bytes()); // count
    let r = Source::index(&bytes, bytes.len() as u64, &Limits::default());
    assert!(r.is_err());
}

#[test]
fn decode_times_past_i64_max_are_errors_not_wrapped() {
    // A fragmented file whose tfdt puts decode times at 2^63 and beyond:
    // they do not fit a signed presentation time, so the index refuses
    // them (they used to wrap to negative times, or overflow).
    let media = headwater_testkit::media();
    let original = std::fs::read(media.join("fragmented.mp4")).unwrap();
    for add in [(1u64 << 63) - 1000, u64::MAX - (1 << 40)] {
        let mut bytes = original.clone();
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(4).position(|w| w == b"tfdt") {
            let i = at + i;
            assert_eq!(bytes[i + 4], 1, "a version 1 tfdt");
            let v = u64::from_be_bytes(bytes[i + 8..i + 16].try_into().unwrap());
            bytes[i + 8..i + 16].copy_from_slice(&v.wrapping_add(add).to_be_bytes());
            at = i + 4;
        }
        let r = Source::index(&bytes, bytes.len() as u64, &Limits::default());
        assert!(
            matches!(r, Err(headwater_packager::Error::Malformed { .. })),
            "{r:?}"
        );
    }
}

#[test]
fn decode_times_just_below_i64_max_package_without_overflow() {
    // Decode times in [2^62, 2^63) fit the index; presentation arithmetic
    // on them (shifts, doubled times when audio is trimmed) used to
    // overflow. Whatever indexes must package, or fail, without a panic.
    let media = headwater_testkit::media();
    let original = std::fs::read(media.join("fragmented.mp4")).unwrap();
    for add in [1u64 << 62, (1u64 << 63) - (1 << 40)] {
        let mut bytes = original.clone();
        let mut at = 0;
        while let Some(i) = bytes[at..].windows(4).position(|w| w == b"tfdt") {
            let i = at + i;
            let v = u64::from_be_bytes(bytes[i + 8..i + 16].try_into().unwrap());
            bytes[i + 8..i + 16].copy_from_slice(&v.wrapping_add(add).to_be_bytes());
            at = i + 4;
        }
        exercise(&bytes);
    }
}
