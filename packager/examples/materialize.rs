//! Writes the HLS/DASH tree of one or more MP4 files to a directory, exactly
//! as the origin would serve it. A debugging aid: `cargo run --example
//! materialize -- OUTDIR FILE...`.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::sync::Arc;

use headwater_packager::manifest::{ManifestOptions, dash, hls};
use headwater_packager::{
    Limits, MediaSegment, NamedSource, PackagingConfig, Presentation, ReadAt, Source,
};

struct FileSource(fs::File);

impl ReadAt for FileSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (out, files) = args
        .split_first()
        .ok_or("usage: materialize OUTDIR FILE...")?;
    let out = Path::new(out);
    let mut sources = Vec::new();
    let mut handles = Vec::new();
    for f in files {
        let file = fs::File::open(f)?;
        let size = file.metadata()?.len();
        let src = FileSource(file);
        let source = Source::index(&src, size, &Limits::default())?;
        let name = Path::new(f)
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        sources.push(NamedSource::new(name, Arc::new(source)));
        handles.push(src);
    }
    let p = Presentation::new(sources, PackagingConfig::default())?;
    let opts = ManifestOptions::default();
    fs::create_dir_all(out.join("hls"))?;
    fs::create_dir_all(out.join("dash"))?;
    let mut text = String::new();
    hls::multivariant(&p, &opts, &mut text);
    fs::write(out.join("hls/master.m3u8"), &text)?;
    text.clear();
    dash::mpd(&p, &opts, &mut text);
    fs::write(out.join("dash/manifest.mpd"), &text)?;
    for r in &p.renditions {
        text.clear();
        hls::media(&p, r, &opts, &mut text);
        fs::write(out.join(format!("hls/{}.m3u8", r.id)), &text)?;
        let dir = out.join("cmaf").join(&r.id);
        fs::create_dir_all(&dir)?;
        let mut init = Vec::new();
        p.init_segment(r, &mut init);
        fs::write(dir.join("init.mp4"), &init)?;
        let mut seg = MediaSegment::default();
        for n in 1..=r.segments.len() as u32 {
            p.media_segment(r, n, &mut seg)?;
            let mut bytes = seg.header.clone();
            for range in &seg.ranges {
                let mut buf = vec![0; range.len as usize];
                handles[r.source].0.read_exact_at(&mut buf, range.offset)?;
                bytes.extend_from_slice(&buf);
            }
            fs::write(dir.join(format!("{n}.m4s")), &bytes)?;
        }
    }
    Ok(())
}
