//! The fuzz targets: one function per parser family that reads outside
//! input, each taking arbitrary bytes and panicking only on a bug (a
//! broken invariant is asserted here, so the fuzzer finds it too).
//!
//! `fuzz/afl` wraps each in afl.rs's harness for coverage-guided fuzzing;
//! `tests/replay.rs` runs every input kept under `fuzz/corpus/{target}`
//! (seeds, what the fuzzer found interesting, and every crash turned
//! regression) through them in CI. [`TARGETS`] names them for both.

#![forbid(unsafe_code)]

use std::net::IpAddr;
use std::sync::Arc;

use headwater_packager::manifest::{Filter, ManifestOptions, dash, hls, hls_ts};
use headwater_packager::subtitles::{SubtitleTrack, tx3g, webvtt as vtt};
use headwater_packager::timing::TrackTiming;
use headwater_packager::{
    Limits, MediaSegment, NamedSource, PackagingConfig, Presentation, Source, clip, codec, ts,
};

/// A target: its name (its corpus directory and afl binary) and function.
pub type Target = (&'static str, fn(&[u8]));

/// Every target.
pub const TARGETS: &[Target] = &[
    ("mp4", mp4),
    ("sample_entry", sample_entry),
    ("webvtt", webvtt),
    ("http", headwater_origin::fuzzing::request),
    ("query", query),
    ("token", token),
    ("config", config),
    ("rtmp", headwater_ingest::fuzzing::rtmp),
    ("srt", headwater_ingest::fuzzing::srt),
    ("stream_ids", headwater_ingest::fuzzing::stream_ids),
];

/// The target called `name`: what an afl harness binary runs.
pub fn target(name: &str) -> fn(&[u8]) {
    TARGETS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
        .unwrap_or_else(|| panic!("no fuzz target {name}"))
}

/// An MP4 file (progressive or fragmented) as the origin meets one: the
/// index, the presentation, every manifest, every init, fMP4 and MPEG-TS
/// segment and every tx3g track's cues. No range may leave the file and a
/// TS segment is as long as its layout said.
pub fn mp4(bytes: &[u8]) {
    let Some(p) = presentation(bytes) else {
        return;
    };
    let opts = ManifestOptions::default();
    let mut text = String::new();
    hls::multivariant(&p, &opts, &mut text);
    dash::mpd(&p, &opts, &mut text);
    let mut seg = MediaSegment::default();
    for r in &p.renditions {
        hls::media(&p, r, &opts, &mut text);
        let mut init = Vec::new();
        p.init_segment(r, &mut init);
        for n in 1..=u32::try_from(r.segments.len()).unwrap_or(u32::MAX) {
            p.media_segment(r, n, &mut seg)
                .expect("a planned segment exists");
            for range in &seg.ranges {
                assert!(
                    range.offset + range.len <= bytes.len() as u64,
                    "a range escapes the file"
                );
            }
        }
    }
    ts_segments(&p, bytes);
    tx3g_cues(&p, bytes);
}

fn presentation(bytes: &[u8]) -> Option<Presentation> {
    let source = Source::index(&bytes.to_vec(), bytes.len() as u64, &Limits::default()).ok()?;
    let named = vec![NamedSource::new("x", Arc::new(source))];
    Presentation::new(named, PackagingConfig::default()).ok()
}

fn ts_segments(p: &Presentation, bytes: &[u8]) {
    let mut text = String::new();
    let opts = ManifestOptions::default();
    let programs = hls_ts::programs(p);
    let Ok(layouts) = programs
        .iter()
        .map(|v| ts::TsLayout::new(p, v.program(p)))
        .collect::<Result<Vec<_>, _>>()
    else {
        return;
    };
    let refs: Vec<&ts::TsLayout> = layouts.iter().collect();
    hls_ts::multivariant(p, &programs, &refs, &opts, &mut text);
    for (v, layout) in programs.iter().zip(&layouts) {
        hls_ts::media(p, v, &opts, &mut text);
        for i in 0..layout.segment_count() {
            let (Ok(size), mut out) = (layout.size(i), Vec::new()) else {
                continue;
            };
            let mut read = Lent(bytes);
            if layout.write(p, i, &mut read, &mut out).is_ok() {
                assert_eq!(
                    out.len() as u64,
                    size,
                    "TS segment {i} is as long as planned"
                );
            }
        }
    }
}

fn tx3g_cues(p: &Presentation, bytes: &[u8]) {
    for s in &p.sources {
        let movie = &s.source.movie;
        for track in movie.tracks.iter().filter(|t| tx3g::is_tx3g(t)) {
            let timing = TrackTiming::of(track, movie.timescale);
            let _ = SubtitleTrack::from_tx3g("t".into(), track, &timing, &bytes.to_vec());
        }
    }
}

/// A sample-entry box as a live encoder's configuration arrives (avc1 with
/// avcC, hvc1 with hvcC, av01 with av1C, mp4a with esds, Opus with dOps,
/// ac-3 with dac3, ec-3 with dec3, ...), and what is derived from it.
pub fn sample_entry(bytes: &[u8]) {
    if let Ok(entry) = codec::SampleEntry::from_box(bytes) {
        let _ = entry.rfc6381();
        let _ = entry.audio_specific_config();
        let _ = entry.config_box();
        let _ = entry.is_supported();
    }
}

/// A WebVTT file.
pub fn webvtt(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = vtt::parse(text.as_bytes());
    }
}

/// A manifest query (`start=`, `end=`, filters) against a presentation:
/// the bytes are the query, the presentation the corpus's small file.
pub fn query(bytes: &[u8]) {
    let Ok(q) = std::str::from_utf8(bytes) else {
        return;
    };
    let pairs = headwater_origin::route::query_pairs(q);
    let Ok(filter) = Filter::from_pairs(pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()))) else {
        return;
    };
    let p = small_presentation();
    let _ = filter.check(p);
    let seconds = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .and_then(|(_, v)| clip::parse_seconds(key, v).ok())
    };
    let clip = match (seconds("start"), seconds("end")) {
        (None, None) => None,
        (start, end) => clip::Clip::new(p, start.unwrap_or(0), end).ok(),
    };
    let opts = ManifestOptions {
        query: Some(q),
        filter: (!filter.is_empty()).then_some(&filter),
        clip: clip.as_ref(),
    };
    let mut text = String::new();
    hls::multivariant(p, &opts, &mut text);
    dash::mpd(p, &opts, &mut text);
    for r in &p.renditions {
        hls::media(p, r, &opts, &mut text);
        if let Some(c) = &clip {
            let _ = c.pieces(p, r);
        }
    }
}

/// The presentation the query target filters and clips: a 2-second
/// H.264 + AAC file kept in the corpus.
fn small_presentation() -> &'static Presentation {
    static P: std::sync::OnceLock<Presentation> = std::sync::OnceLock::new();
    P.get_or_init(|| presentation(include_bytes!("../small.mp4")).expect("fuzz/small.mp4 packages"))
}

/// A playback token as the query carries it, against one key, for an
/// asset and a stream, bound and unbound.
pub fn token(bytes: &[u8]) {
    use headwater_common::token::{Scope, SigningKey, verify};
    let Ok(t) = std::str::from_utf8(bytes) else {
        return;
    };
    static KEY: std::sync::OnceLock<SigningKey> = std::sync::OnceLock::new();
    let key = KEY.get_or_init(|| SigningKey {
        id: "k1".into(),
        secret: vec![7; 32],
    });
    let client = IpAddr::from([192, 0, 2, 1]);
    for scope in [Scope::Asset("a"), Scope::Stream("s")] {
        let _ = verify(t, scope, 1_800_000_000, client, std::slice::from_ref(key));
    }
}

/// A configuration file.
pub fn config(bytes: &[u8]) {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let _ = headwater_origin::config::Config::from_toml(text);
    }
}

/// A whole input file lending sample bytes to the TS writer.
struct Lent<'a>(&'a [u8]);

impl ts::SampleSource for Lent<'_> {
    fn read(&mut self, _source: usize, offset: u64, len: usize) -> std::io::Result<&[u8]> {
        let at = usize::try_from(offset).map_err(std::io::Error::other)?;
        let end = at.checked_add(len).filter(|e| *e <= self.0.len());
        let end = end.ok_or_else(|| std::io::Error::other("past the end"))?;
        Ok(&self.0[at..end])
    }
}
