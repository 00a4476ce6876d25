//! The read-through cache of object payload: aligned chunks on local disk.
//!
//! Chunk `i` of an object version holds its bytes `i*size .. (i+1)*size`
//! (the last one shorter). It is fetched by one ranged `GET`, however many
//! requests wait for it (moka's `try_get_with` shares one fetch among
//! concurrent callers), written to a temporary name and renamed, and kept
//! open: requests send its bytes by `sendfile`. The cache is bounded by
//! bytes; an evicted chunk's file is unlinked, and a request still sending
//! from it keeps its open handle.
//!
//! Each process keeps its chunks in a directory of its own (named by its
//! pid) under the configured one, so an upgraded process and its
//! predecessor never evict each other's files; directories of processes
//! that are gone are removed at start.

use std::fs::File;
use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::bucket::{Bucket, Object};
use crate::error::Error;

/// One cached chunk: an open file and its length.
#[derive(Debug)]
pub struct Chunk {
    /// The chunk's bytes, from offset 0.
    pub file: File,
    /// How many bytes it holds.
    pub len: u64,
}

/// A run of an object's bytes inside one chunk.
#[derive(Clone, Debug)]
pub struct Piece {
    /// The chunk holding it.
    pub chunk: Arc<Chunk>,
    /// Offset inside the chunk.
    pub offset: u64,
    /// Length.
    pub len: u64,
}

/// What one lookup of runs cost: chunks looked up, and of those, fetched.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Distinct chunks looked up.
    pub lookups: u32,
    /// Of those, fetched from the storage.
    pub fetched: u32,
    /// Bytes fetched.
    pub fetched_bytes: u64,
}

/// Chunks of object versions on local disk, bounded by bytes.
pub struct ChunkCache {
    dir: PathBuf,
    size: u64,
    chunks: moka::sync::Cache<String, Arc<Chunk>>,
}

impl std::fmt::Debug for ChunkCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChunkCache")
            .field("dir", &self.dir)
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

impl ChunkCache {
    /// A cache of `capacity` bytes in chunks of `size` bytes under `dir`
    /// (created if need be).
    pub fn open(dir: &Path, capacity: u64, size: u64) -> Result<Self, Error> {
        if size == 0 {
            return Err(Error::Config("the chunk size must not be 0".into()));
        }
        std::fs::create_dir_all(dir)?;
        remove_stale(dir);
        let own = dir.join(std::process::id().to_string());
        if own.exists() {
            std::fs::remove_dir_all(&own)?;
        }
        std::fs::create_dir_all(&own)?;
        let unlink_dir = own.clone();
        let chunks = moka::sync::Cache::builder()
            .max_capacity(capacity)
            .weigher(|_, c: &Arc<Chunk>| u32::try_from(c.len).unwrap_or(u32::MAX))
            .eviction_listener(move |name: Arc<String>, _, _| {
                let _ = std::fs::remove_file(unlink_dir.join(name.as_str()));
            })
            .build();
        Ok(ChunkCache {
            dir: own,
            size,
            chunks,
        })
    }

    fn name(bucket: &Bucket, object: &Object, index: u64) -> String {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for part in [bucket.url(), &object.rel, &object.etag] {
            h.update(part.as_bytes());
            h.update(&[0]);
        }
        format!("{:016x}-{index}", h.digest())
    }

    /// Chunk `index` of `object`, from the cache or fetched now; whether
    /// it was fetched.
    pub fn chunk(
        &self,
        bucket: &Bucket,
        object: &Object,
        index: u64,
    ) -> Result<(Arc<Chunk>, bool), Error> {
        let start = index.saturating_mul(self.size);
        if start >= object.size {
            return Err(Error::Changed(object.rel.clone()));
        }
        let end = start.saturating_add(self.size).min(object.size);
        let name = Self::name(bucket, object, index);
        let mut fetched = false;
        let chunk = self
            .chunks
            .try_get_with(name.clone(), || {
                fetched = true;
                let bytes = bucket.get(object, start..end)?;
                self.store(&name, &bytes)
            })
            .map_err(|e: Arc<Error>| match &*e {
                Error::Timeout(t) => Error::Timeout(*t),
                Error::Changed(k) => Error::Changed(k.clone()),
                Error::NotFound(k) => Error::NotFound(k.clone()),
                other => Error::Unavailable(other.to_string()),
            })?;
        Ok((chunk, fetched))
    }

    /// Writes a fetched chunk under a temporary name, renames it, and
    /// opens it for reading.
    fn store(&self, name: &str, bytes: &[u8]) -> Result<Arc<Chunk>, Error> {
        let mut salt = [0u8; 8];
        getrandom::fill(&mut salt).map_err(|e| Error::Cache(std::io::Error::other(e)))?;
        let tmp = self
            .dir
            .join(format!("{name}.{:016x}.part", u64::from_le_bytes(salt)));
        let done = self.dir.join(name);
        let written = (|| {
            let mut f = File::create(&tmp)?;
            f.write_all(bytes)?;
            std::fs::rename(&tmp, &done)?;
            File::open(&done)
        })();
        let file = written.inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })?;
        Ok(Arc::new(Chunk {
            file,
            len: bytes.len() as u64,
        }))
    }

    /// Bytes held now, as last counted (no pending evictions run).
    pub fn held_bytes_estimate(&self) -> u64 {
        self.chunks.weighted_size()
    }

    /// `ranges` of `object` (in order) as runs inside chunks, fetching the
    /// chunks not held; what that took.
    pub fn pieces(
        &self,
        bucket: &Bucket,
        object: &Object,
        ranges: impl IntoIterator<Item = Range<u64>>,
    ) -> Result<(Vec<Piece>, Traffic), Error> {
        let mut out = Vec::new();
        let mut traffic = Traffic::default();
        let mut last: Option<(u64, Arc<Chunk>)> = None;
        for r in ranges {
            if r.end > object.size {
                return Err(Error::Changed(object.rel.clone()));
            }
            let mut at = r.start;
            while at < r.end {
                let index = at / self.size;
                let chunk = match &last {
                    Some((i, c)) if *i == index => c.clone(),
                    _ => {
                        let (c, f) = self.chunk(bucket, object, index)?;
                        traffic.lookups += 1;
                        if f {
                            traffic.fetched += 1;
                            traffic.fetched_bytes += c.len;
                        }
                        last = Some((index, c.clone()));
                        c
                    }
                };
                let offset = at - index * self.size;
                let len = (chunk.len - offset).min(r.end - at);
                if len == 0 {
                    return Err(Error::Changed(object.rel.clone()));
                }
                out.push(Piece { chunk, offset, len });
                at += len;
            }
        }
        Ok((out, traffic))
    }
}

/// Removes the chunk directories of processes that are gone.
fn remove_stale(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if !Path::new("/proc").join(pid.to_string()).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}
