//! Indexing one source file.

use crate::error::{Error, Result};
use crate::limits::Limits;
use crate::mp4::Movie;
use crate::mp4::locate::{ReadAt, scan};

/// One indexed source file: its tracks and sample indexes.
#[derive(Clone, Debug)]
pub struct Source {
    /// The parsed movie with every sample index.
    pub movie: Movie,
    /// Size of the file the index was built from.
    pub size: u64,
    /// A hash of the file's metadata boxes and size: equal files give equal
    /// fingerprints on every machine, so it can name cacheable content.
    pub fingerprint: u64,
    /// Reads issued to find the metadata.
    pub reads: u32,
}

/// Checks that every sample lies inside an `mdat` payload. A sample table
/// that points anywhere else (into the `moov`, across box headers, at
/// padding) would have the origin serve bytes that are not media, or a
/// TS writer choke on them per request; better one clear `422` when the
/// file is indexed.
fn check_payload(movie: &Movie, mdats: &[(u64, u64)]) -> Result<()> {
    let inside = |start: u64, end: u64| {
        // The last payload starting at or before `start` must hold it all.
        let i = mdats.partition_point(|m| m.0 <= start);
        i > 0 && end <= mdats[i - 1].1
    };
    for t in &movie.tracks {
        let mut outside = None;
        t.samples.byte_ranges(0..t.samples.len(), |offset, len| {
            if outside.is_none() && !inside(offset, offset.saturating_add(len)) {
                outside = Some(offset);
            }
        });
        if let Some(offset) = outside {
            return Err(Error::SampleOutsideMdat {
                track: t.id,
                offset,
            });
        }
    }
    Ok(())
}

impl Source {
    /// Indexes a file of `size` bytes read through `src`.
    pub fn index(src: &dyn ReadAt, size: u64, limits: &Limits) -> Result<Self> {
        let top = scan(src, size, limits)?;
        let movie = Movie::parse(&top.moov, &top.moofs, limits, size)?;
        check_payload(&movie, &top.mdats)?;
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&size.to_be_bytes());
        h.update(&top.moov);
        for (offset, moof) in &top.moofs {
            h.update(&offset.to_be_bytes());
            h.update(moof);
        }
        Ok(Source {
            movie,
            size,
            fingerprint: h.digest(),
            reads: top.reads,
        })
    }

    /// Approximate heap size, for cache weighing.
    pub fn heap_bytes(&self) -> usize {
        self.movie
            .tracks
            .iter()
            .map(|t| t.samples.heap_bytes() + t.sample_entry.raw.len() + 256)
            .sum::<usize>()
            + 256
    }
}
