//! The packager's hot paths on a one-hour asset (54,000 video and 169,200
//! audio samples): building the sample index from the file's bytes,
//! planning the presentation, rendering manifests, and planning one media
//! segment. `cargo bench -p headwater-benches`; in CI, `cargo test
//! --benches` runs each once without timing anything.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use headwater_packager::manifest::{ManifestOptions, dash, hls};
use headwater_packager::{
    Limits, MediaSegment, NamedSource, PackagingConfig, Presentation, Source,
};

fn hour() -> Vec<u8> {
    let dir = headwater_testkit::workspace().join("target/test-media-long");
    let status = std::process::Command::new(
        headwater_testkit::workspace().join("tests/media/generate-long.sh"),
    )
    .arg(&dir)
    .status()
    .expect("run tests/media/generate-long.sh");
    assert!(status.success());
    std::fs::read(dir.join("hour.mp4")).expect("hour.mp4")
}

fn benches(c: &mut Criterion) {
    let bytes = hour();
    let size = bytes.len() as u64;
    let limits = Limits::default();
    c.bench_function("index_1h", |b| {
        b.iter(|| Source::index(black_box(&bytes), size, &limits).unwrap())
    });

    let source = Arc::new(Source::index(&bytes, size, &limits).unwrap());
    let named = vec![NamedSource::new("hour", source)];
    c.bench_function("plan_1h", |b| {
        b.iter(|| Presentation::new(black_box(named.clone()), PackagingConfig::default()).unwrap())
    });

    let p = Presentation::new(named, PackagingConfig::default()).unwrap();
    let opts = ManifestOptions::default();
    let video = &p.renditions[0];
    let mut text = String::with_capacity(1 << 16);
    c.bench_function("hls_media_playlist_1h", |b| {
        b.iter(|| {
            text.clear();
            hls::media(&p, video, &opts, &mut text);
        })
    });
    c.bench_function("hls_multivariant_1h", |b| {
        b.iter(|| {
            text.clear();
            hls::multivariant(&p, &opts, &mut text);
        })
    });
    c.bench_function("dash_mpd_1h", |b| {
        b.iter(|| {
            text.clear();
            dash::mpd(&p, &opts, &mut text);
        })
    });
    let mut seg = MediaSegment::default();
    c.bench_function("media_segment_plan", |b| {
        b.iter(|| p.media_segment(video, black_box(450), &mut seg).unwrap())
    });
    let mut init = Vec::new();
    c.bench_function("init_segment", |b| {
        b.iter(|| {
            init.clear();
            p.init_segment(video, &mut init);
        })
    });
}

criterion_group!(packager, benches);
criterion_main!(packager);
