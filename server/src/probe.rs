//! `headwater probe`: what the packager sees in a file.

use std::fmt::Write;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use headwater_packager::mp4::{Track, TrackKind};
use headwater_packager::time::seconds;
use headwater_packager::{Limits, NamedSource, PackagingConfig, Presentation, ReadAt, Source};

struct FileRead(File);

impl ReadAt for FileRead {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
}

/// Describes `files` (the files of one asset) as the packager sees them:
/// tracks, codecs, durations, keyframe cadence and the segment plan.
pub(crate) fn describe(files: &[&Path], config: &PackagingConfig) -> anyhow::Result<String> {
    let mut out = String::new();
    let mut sources = Vec::new();
    for path in files {
        let file = File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let size = file.metadata()?.len();
        let source = Source::index(&FileRead(file), size, &Limits::default())
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let _ = writeln!(
            out,
            "{}: {} bytes, {}{} track(s), metadata found in {} read(s)",
            path.display(),
            size,
            if source.movie.fragmented {
                "fragmented, "
            } else {
                ""
            },
            source.movie.tracks.len(),
            source.reads
        );
        for t in &source.movie.tracks {
            track(t, &mut out);
        }
        let stem = path
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("source");
        let source = Arc::new(source);
        sources.push(
            NamedSource::from_file_stem(stem, source.clone())
                .unwrap_or_else(|| NamedSource::new("source", source)),
        );
    }
    let p = Presentation::new(sources, config.clone())
        .map_err(|e| anyhow::anyhow!("cannot package: {e}"))?;
    plan(&p, &mut out);
    Ok(out)
}

/// One line per track: codec, timing, and what its kind adds.
fn track(t: &Track, out: &mut String) {
    let s = &t.samples;
    let scale = t.timescale;
    let codec = t
        .sample_entry
        .rfc6381()
        .unwrap_or_else(|| format!("unsupported ({})", t.sample_entry.fourcc));
    let _ = write!(
        out,
        "  track {} {:?} {} timescale {} lang {} samples {} duration {:.3}s",
        t.id,
        t.kind,
        codec,
        scale.get(),
        t.language,
        s.len(),
        seconds(s.end_dts() as i64, scale)
    );
    match t.kind {
        TrackKind::Video => {
            let _ = write!(out, " {}x{}", t.width, t.height);
            keyframes(t, out);
        }
        TrackKind::Audio => {
            let _ = write!(
                out,
                " {} Hz {} ch",
                t.sample_entry.sample_rate, t.sample_entry.channels
            );
        }
        TrackKind::Other => {}
    }
    if !t.edits.is_empty() {
        let _ = write!(
            out,
            " edits {:?}",
            t.edits
                .iter()
                .map(|e| (e.segment_duration, e.media_time))
                .collect::<Vec<_>>()
        );
    }
    out.push('\n');
}

/// How many keyframes, and the shortest and longest gap between them.
fn keyframes(t: &Track, out: &mut String) {
    let s = &t.samples;
    let keys: Vec<f64> = s
        .sync_samples()
        .map(|i| seconds(s.dts(i) as i64, t.timescale))
        .collect();
    let gaps: Vec<f64> = keys.windows(2).map(|w| w[1] - w[0]).collect();
    if gaps.is_empty() {
        let _ = write!(out, " keyframes {}", keys.len());
        return;
    }
    let min = gaps.iter().copied().fold(f64::INFINITY, f64::min);
    let max = gaps.iter().copied().fold(0.0, f64::max);
    let _ = write!(
        out,
        " keyframes {} every {:.3}..{:.3}s",
        keys.len(),
        min,
        max
    );
}

/// The presentation: its renditions and every segment of each.
fn plan(p: &Presentation, out: &mut String) {
    let _ = writeln!(
        out,
        "presentation: {:.3}s, {} rendition(s), video boundaries {}",
        p.duration,
        p.renditions.len(),
        if p.aligned { "shared" } else { "per rendition" }
    );
    for r in &p.renditions {
        let scale = p.timescale(r);
        let _ = writeln!(
            out,
            "  rendition {} {:?} {} peak {} b/s average {} b/s, {} segment(s):",
            r.id,
            r.kind,
            r.codecs,
            r.peak_bitrate,
            r.average_bitrate,
            r.segments.len()
        );
        for (i, s) in r.segments.iter().enumerate() {
            let _ = writeln!(
                out,
                "    {:>4}  start {:>10.6}s  duration {:.6}s  samples {}..{}",
                i + 1,
                seconds(s.start, scale),
                seconds(s.duration as i64, scale),
                s.first,
                s.end
            );
        }
    }
}
