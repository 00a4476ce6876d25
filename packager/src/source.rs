//! Indexing one source file.

use crate::Limits;
use crate::error::Result;
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

impl Source {
    /// Indexes a file of `size` bytes read through `src`.
    pub fn index(src: &dyn ReadAt, size: u64, limits: &Limits) -> Result<Self> {
        let top = scan(src, size, limits)?;
        let movie = Movie::parse(&top.moov, &top.moofs, limits, size)?;
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
