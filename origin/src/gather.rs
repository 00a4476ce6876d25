//! Gathered segments: a media segment whose sample payload lies in many separate ranges
//! of its source is copied once, inside the kernel, into one contiguous anonymous file
//! (a sealed `memfd`) together with its generated header (`moof` and `mdat` header), so
//! that every request for it is one `sendfile` of one file, as a static server's is.
//!
//! Why: a muxed mezzanine interleaves audio and video chunk by chunk, so a 4 s video
//! segment is about a hundred ranges (one per frame) and its audio segment as many again.
//! Splicing a hundred page-unaligned ranges to a TCP socket builds packets of many small
//! page fragments; `benches/README.md` measured it at about twice the CPU per segment of
//! one `sendfile` of the same bytes. Copying the ranges once costs about one `memcpy` of
//! the payload, and the copy is made by `sendfile(memfd, source)`, so the payload still
//! never passes through user space. The header goes into the file too: sent from user
//! space before the payload it cost ~6 % more CPU per segment than one `sendfile` of
//! the whole (`benches/README.md`, finding 6).
//!
//! A copy is made only for a segment that comes back: the first request for a
//! segment is sent from its source, and it is copied on a later one only if
//! that comes within the last cache-full of requests (a ghost of the cache, by
//! bytes, remembers what was asked for and not kept). Behind a CDN most
//! segments are asked for once per shield, and a copy nobody asks for again
//! costs more than sending from the source twice (`benches/README.md`, the
//! miss workload); a small hot set is kept from its second request.
//!
//! The copy belongs to one build of one asset (its [`Asset::id`]), so a file replaced on
//! disk can never be answered from an old copy: the rebuilt asset has a new id and the
//! old copies age out. The cache is bounded by `media.segment_cache_mb` (weighed by
//! bytes, which live in shared memory, not in the process's heap); `0` turns
//! gathering off and many-range segments are spliced straight from the source.
//!
//! Where the copies live: by default in memfds, whose pages are 4 KiB each unless the
//! machine's `shmem_enabled` says otherwise. With `media.segment_cache_dir` they are
//! unnamed (`O_TMPFILE`) files in that directory instead, each sized before it is
//! filled. On a tmpfs mounted with `huge=within_size` the kernel then backs them with
//! large folios (up to 2 MiB), and a `sendfile` of a segment walks a few dozen folios
//! instead of hundreds of pages: `benches/README.md` (finding 8) measured 15-20 % more
//! segments per second on all cores, and sending such a copy beats sending even one
//! long range of a source whose pages are small, so in a directory a segment of one or
//! two ranges is kept too, from its second request on. Either way nothing is left
//! behind on a crash.
//!
//! [`Asset::id`]: crate::store::Asset::id

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use headwater_common::metrics::Counter;

use headwater_packager::ByteRange;
use rustix::fs::{MemfdFlags, Mode, OFlags, SealFlags};

/// Segments with fewer ranges are sent straight from the source when the copies are
/// memfds: one or two `sendfile` calls of long runs cost no more than a copy in 4 KiB
/// pages would. Copies in a directory (large folios) are cheaper to send than the
/// source's pages, and such segments are kept there from their second request on.
const MIN_RANGES: usize = 3;

/// Manifests at least this long are kept as files when the cache is in a
/// directory. A shorter one is cheaper to copy than to splice: its head and
/// body leave in one `send`, where a kept body costs a `sendfile` and two
/// `setsockopt`s more.
const MIN_TEXT: usize = 8 << 10;

/// A segment's whole body, contiguous.
pub(crate) struct Gathered {
    /// A memfd sealed against writes and size changes once filled, or an unnamed file
    /// in `media.segment_cache_dir` that nothing else can open.
    pub(crate) file: File,
    /// Its length: the header's plus the sum of the plan's range lengths.
    pub(crate) len: u64,
}

/// Which segment of which asset build.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) struct Key {
    /// [`crate::store::Asset::id`].
    pub(crate) asset: u64,
    /// Rendition index in the presentation (TS program index for [`Kind::Ts`]).
    pub(crate) rendition: u32,
    /// Segment number.
    pub(crate) number: u32,
    /// What is kept: a gathered fMP4 payload or a written MPEG-TS segment.
    pub(crate) kind: Kind,
}

/// The two kinds of kept segment bytes.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub(crate) enum Kind {
    /// An fMP4 segment: its header and payload.
    Payload,
    /// A whole MPEG-TS segment.
    Ts,
    /// A clip span of an MPEG-TS segment (`number` is 0).
    TsSpan {
        /// Start, milliseconds.
        from_ms: u64,
        /// End, milliseconds.
        to_ms: u64,
    },
    /// A rendered manifest, named by its route's ETag tag (`rendition` and
    /// `number` are 0).
    Text(u64),
}

/// The bounded cache of gathered payloads, shared by every worker.
pub(crate) struct GatherCache {
    cache: Option<moka::sync::Cache<Key, Arc<Gathered>>>,
    /// Where the copies are made: `None` for memfds, else a directory for unnamed files.
    dir: Option<PathBuf>,
    /// Admission: the segments asked for lately and not kept, weighed by their
    /// length, as many bytes of them as the cache holds (a ghost of the cache).
    seen: Option<moka::sync::Cache<Key, u32>>,
    hits: Counter,
    misses: Counter,
    /// When a failed copy was last logged (ms after `started`), and how many since.
    started: Instant,
    last_warning_ms: AtomicU64,
    unlogged: AtomicU64,
}

/// At most one warning about failed copies in this long: a full cache
/// directory fails every request's copy, and each is sent from its source.
const WARN_EVERY_MS: u64 = 10_000;

impl GatherCache {
    /// A cache of at most `bytes` of payload, in memfds or, with `dir`, in unnamed
    /// files there; `0` disables gathering.
    pub(crate) fn new(bytes: u64, dir: Option<PathBuf>, hits: Counter, misses: Counter) -> Self {
        // Least recently used goes first, in both: admission is decided here
        // (`seen`), so the cache must not refuse what was admitted (moka's
        // default policy would, by its own frequency estimate, after the copy
        // was paid for).
        let cache = (bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, g: &Arc<Gathered>| u32::try_from(g.len).unwrap_or(u32::MAX))
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build()
        });
        let seen = (bytes > 0).then(|| {
            moka::sync::Cache::builder()
                .max_capacity(bytes)
                .weigher(|_, len: &u32| *len)
                .eviction_policy(moka::policy::EvictionPolicy::lru())
                .build()
        });
        if let Some(dir) = dir.as_deref().filter(|_| bytes > 0) {
            // Not fatal: a copy that does not fit is sent from its source.
            if let Ok(fs) = rustix::fs::statvfs(dir) {
                let free = fs.f_bavail.saturating_mul(fs.f_frsize);
                if free < bytes {
                    tracing::warn!(
                        dir = %dir.display(),
                        free_mib = free >> 20,
                        segment_cache_mb = bytes >> 20,
                        "media.segment_cache_dir has less room than media.segment_cache_mb"
                    );
                }
            }
        }
        GatherCache {
            cache,
            seen,
            dir,
            hits,
            misses,
            started: Instant::now(),
            last_warning_ms: AtomicU64::new(0),
            unlogged: AtomicU64::new(0),
        }
    }

    /// Logs a failed copy, at most once every [`WARN_EVERY_MS`].
    fn warn(&self, what: &str, e: &dyn std::fmt::Display) {
        let now = self.started.elapsed().as_millis() as u64 + WARN_EVERY_MS;
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) < WARN_EVERY_MS
            || self
                .last_warning_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            self.unlogged.fetch_add(1, Ordering::Relaxed);
            return;
        }
        let also = self.unlogged.swap(0, Ordering::Relaxed);
        tracing::warn!(error = %e, also_since_last = also, "{what}; sent without keeping a copy");
    }

    fn count(&self, built: bool) {
        if built {
            self.misses.inc();
        } else {
            self.hits.inc();
        }
    }

    /// The gathered body of the segment `key`, `head` then `ranges` of `source`, built
    /// on first use (concurrent first requests share one build). `None` when the segment
    /// is better sent from the source directly, gathering is off, or the copy failed
    /// (logged; the caller splices from the source instead).
    pub(crate) fn get(
        &self,
        key: Key,
        head: &[u8],
        source: &File,
        ranges: &[ByteRange],
    ) -> Option<Arc<Gathered>> {
        let cache = self.cache.as_ref()?;
        let len: u64 = head.len() as u64 + ranges.iter().map(|r| r.len).sum::<u64>();
        if ranges.len() < MIN_RANGES && self.dir.is_none() {
            // One or two runs of the source cost no more to send than a copy in
            // 4 KiB memfd pages would.
            return None;
        }
        if !cache.contains_key(&key) && !self.admit(key, len) {
            return None;
        }
        let mut built = false;
        let gathered = cache
            .try_get_with(key, || {
                built = true;
                gather(self.dir.as_deref(), head, source, ranges).map(Arc::new)
            })
            .map_err(|e| self.warn("cannot gather a segment payload", &e))
            .ok()?;
        self.count(built);
        // The key names one build of one asset, whose plans never change.
        (gathered.len == len).then_some(gathered)
    }

    /// Whether a copy of `key` (`len` bytes), not kept now, is worth making:
    /// only when it was asked for before, recently enough that a copy made
    /// then would still be here (within the last cache-full of requests).
    /// A segment asked for once, as a CDN's cache miss is, costs no copy;
    /// one that comes back is kept from its second request.
    fn admit(&self, key: Key, len: u64) -> bool {
        let Some(seen) = self.seen.as_ref() else {
            return false;
        };
        if seen.remove(&key).is_some() {
            return true;
        }
        seen.insert(key, u32::try_from(len).unwrap_or(u32::MAX));
        false
    }

    /// A file holding `text`, the rendered manifest `key`, to send with `sendfile`; `None`
    /// (send the bytes) unless the cache is in a directory and `text` is long. It took
    /// the one-hour asset's 31 KB media playlists from 0.90 to 1.02-1.06 of nginx's
    /// requests per second (`benches/README.md`, finding 10); from 4 KiB memfd pages it
    /// gained 2 %, less than a file descriptor per manifest is worth.
    pub(crate) fn text(&self, key: Key, text: &[u8]) -> Option<Arc<Gathered>> {
        let cache = self.cache.as_ref()?;
        if self.dir.is_none() || text.len() < MIN_TEXT {
            return None;
        }
        let mut built = false;
        let kept = cache
            .try_get_with(key, || {
                built = true;
                keep(self.dir.as_deref(), "headwater-text", text).map(Arc::new)
            })
            .map_err(|e: Arc<io::Error>| self.warn("cannot keep a manifest", &e))
            .ok()?;
        self.count(built);
        Some(kept)
    }

    /// Segment bytes made by `make` (about `len` of them), kept like gathered
    /// payloads (sent with sendfile, counted as shared memory) once admitted
    /// (see [`GatherCache::admit`]); otherwise, or when keeping them fails
    /// (a full `segment_cache_dir`: logged, at a bounded rate), the bytes
    /// themselves. `make` runs once per key at a time; an error is
    /// `make`'s.
    pub(crate) fn made(
        &self,
        key: Key,
        len: u64,
        make: impl Fn() -> io::Result<Vec<u8>>,
    ) -> io::Result<Made> {
        let Some(cache) = self.cache.as_ref() else {
            return make().map(Made::Bytes);
        };
        if !cache.contains_key(&key) && !self.admit(key, len) {
            return make().map(Made::Bytes);
        }
        let mut built = false;
        let mut unkept = None;
        let kept = cache.try_get_with(key, || {
            built = true;
            let bytes = make()?;
            keep(self.dir.as_deref(), "headwater-ts", &bytes)
                .map(Arc::new)
                .inspect_err(|_| unkept = Some(bytes))
        });
        match kept {
            Ok(kept) => {
                self.count(built);
                Ok(Made::Kept(kept))
            }
            Err(e) => match unkept {
                Some(bytes) => {
                    self.warn("cannot keep a TS segment", &e);
                    Ok(Made::Bytes(bytes))
                }
                None if built => Err(io::Error::new(e.kind(), e.to_string())),
                // Another request's build failed, perhaps only its keeping.
                None => make().map(Made::Bytes),
            },
        }
    }
}

/// What [`GatherCache::made`] gives: a kept copy, or bytes to send.
pub(crate) enum Made {
    Kept(Arc<Gathered>),
    Bytes(Vec<u8>),
}

/// `bytes` in a new file of their own (see [`new_file`]), sealed when it is a memfd.
fn keep(dir: Option<&Path>, name: &str, bytes: &[u8]) -> io::Result<Gathered> {
    let mut file = new_file(dir, name, bytes.len() as u64)?;
    io::Write::write_all(&mut file, bytes)?;
    seal(&file, dir.is_none())?;
    Ok(Gathered {
        file,
        len: bytes.len() as u64,
    })
}

/// Copies `head`, then `ranges` of `source` in order, into a new file (see [`new_file`]),
/// sealed when it is a memfd.
fn gather(
    dir: Option<&Path>,
    head: &[u8],
    source: &File,
    ranges: &[ByteRange],
) -> io::Result<Gathered> {
    let total = head.len() as u64 + ranges.iter().map(|r| r.len).sum::<u64>();
    let mut file = new_file(dir, "headwater-segment", total)?;
    io::Write::write_all(&mut file, head)?;
    let mut len = head.len() as u64;
    for range in ranges {
        let mut offset = range.offset;
        let end = range.offset + range.len;
        while offset < end {
            let want = usize::try_from(end - offset)
                .unwrap_or(usize::MAX)
                .min(1 << 30);
            // sendfile(2) to a regular file: a page-cache to page-cache copy in the kernel.
            let n = rustix::fs::sendfile(&file, source, Some(&mut offset), want)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "source file shorter than planned",
                ));
            }
            len += n as u64;
        }
    }
    seal(&file, dir.is_none())?;
    Ok(Gathered { file, len })
}

/// A new empty file for one kept segment of `len` bytes: a memfd, or an unnamed file in
/// `dir`. Its size is set first: a tmpfs mounted `huge=within_size` gives large folios
/// only to pages inside the file's size, and a file grown write by write never has them.
fn new_file(dir: Option<&Path>, name: &str, len: u64) -> io::Result<File> {
    let file = match dir {
        None => File::from(rustix::fs::memfd_create(
            name,
            MemfdFlags::CLOEXEC | MemfdFlags::ALLOW_SEALING,
        )?),
        Some(dir) => File::from(rustix::fs::open(
            dir,
            OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
            Mode::RUSR | Mode::WUSR,
        )?),
    };
    rustix::fs::ftruncate(&file, len)?;
    Ok(file)
}

/// Seals a filled memfd against writes and size changes. Unnamed files in a directory
/// cannot be sealed; nothing else can open them.
fn seal(file: &File, memfd: bool) -> io::Result<()> {
    if memfd {
        rustix::fs::fcntl_add_seals(
            file,
            SealFlags::WRITE | SealFlags::GROW | SealFlags::SHRINK | SealFlags::SEAL,
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    fn source(bytes: &[u8]) -> File {
        let fd = rustix::fs::memfd_create("test-source", MemfdFlags::CLOEXEC).unwrap();
        let mut f = File::from(fd);
        f.write_all(bytes).unwrap();
        f
    }

    fn contents(g: &Gathered) -> Vec<u8> {
        let mut out = Vec::new();
        let mut f = g.file.try_clone().unwrap();
        std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0)).unwrap();
        f.read_to_end(&mut out).unwrap();
        out
    }

    const KEY: Key = Key {
        asset: 1,
        rendition: 0,
        number: 1,
        kind: Kind::Payload,
    };

    fn r(offset: u64, len: u64) -> ByteRange {
        ByteRange { offset, len }
    }

    fn cache(bytes: u64) -> GatherCache {
        GatherCache::new(bytes, None, Counter::default(), Counter::default())
    }

    #[test]
    fn gathers_ranges_in_plan_order() {
        let src = source(b"0123456789abcdefghij");
        let cache = cache(1 << 20);
        let key = KEY;
        let ranges = [r(10, 3), r(0, 2), r(18, 2)];
        // Asked for once: sent from the source, no copy made.
        assert!(cache.get(key, b"HEAD", &src, &ranges).is_none());
        assert_eq!((cache.misses.get(), cache.hits.get()), (0, 0));
        // Asked for again while a copy would still be here: copied.
        let g = cache.get(key, b"HEAD", &src, &ranges).unwrap();
        assert_eq!(g.len, 11);
        assert_eq!(contents(&g), b"HEADabc01ij");
        // Sealed: the copy cannot be changed behind a response.
        assert!(g.file.try_clone().unwrap().write_all(b"x").is_err());
        // The next request gets the same copy.
        let again = cache.get(key, b"HEAD", &src, &ranges).unwrap();
        assert!(Arc::ptr_eq(&g, &again));
        assert_eq!((cache.misses.get(), cache.hits.get()), (1, 1));
    }

    #[test]
    fn few_ranges_or_disabled_are_sent_from_the_source() {
        let src = source(b"0123456789");
        let key = KEY;
        assert!(
            cache(1 << 20)
                .get(key, b"", &src, &[r(0, 2), r(4, 2)])
                .is_none()
        );
        assert!(
            cache(0)
                .get(key, b"", &src, &[r(0, 2), r(4, 2), r(8, 2)])
                .is_none()
        );
    }

    #[test]
    fn copies_in_a_directory_are_unnamed_and_keep_one_range_segments_once_asked_again() {
        let dir = std::env::temp_dir().join(format!("headwater-gather-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let cache = GatherCache::new(
            1 << 20,
            Some(dir.clone()),
            Counter::default(),
            Counter::default(),
        );
        let src = source(b"0123456789abcdefghij");
        // One range: sent from the source the first time, kept the second.
        assert!(cache.get(KEY, b"H", &src, &[r(2, 5)]).is_none());
        let g = cache.get(KEY, b"H", &src, &[r(2, 5)]).unwrap();
        assert_eq!(contents(&g), b"H23456");
        assert!(Arc::ptr_eq(
            &g,
            &cache.get(KEY, b"H", &src, &[r(2, 5)]).unwrap()
        ));
        // Many ranges: the same.
        let other = Key { number: 2, ..KEY };
        let ranges = [r(10, 3), r(0, 2), r(18, 2)];
        assert!(cache.get(other, b"", &src, &ranges).is_none());
        let g = cache.get(other, b"", &src, &ranges).unwrap();
        assert_eq!((g.len, contents(&g)), (7, b"abc01ij".to_vec()));
        // Written TS segments too.
        let ts = Key {
            kind: Kind::Ts,
            ..KEY
        };
        let first = cache.made(ts, 2, || Ok(b"TS".to_vec())).unwrap();
        assert!(
            matches!(first, Made::Bytes(b) if b == b"TS"),
            "a one-off is not kept"
        );
        let Made::Kept(t) = cache.made(ts, 2, || Ok(b"TS".to_vec())).unwrap() else {
            panic!("kept from the second request");
        };
        assert_eq!(contents(&t), b"TS");
        // A failed make is the caller's error, whether or not admitted.
        let bad = Key { number: 9, ..ts };
        for _ in 0..2 {
            let r = cache.made(bad, 2, || Err(io::ErrorKind::InvalidData.into()));
            assert!(matches!(r, Err(e) if e.kind() == io::ErrorKind::InvalidData));
        }
        // Unnamed: the directory holds nothing a crash could leave behind.
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        std::fs::remove_dir(&dir).unwrap();
    }

    #[test]
    fn a_truncated_source_is_not_gathered() {
        let src = source(b"0123456789");
        let key = KEY;
        let cache = cache(1 << 20);
        let ranges = [r(0, 2), r(4, 2), r(8, 5)];
        assert!(cache.get(key, b"H", &src, &ranges).is_none());
        assert!(cache.get(key, b"H", &src, &ranges).is_none());
    }

    #[test]
    fn a_segment_that_comes_back_after_a_cache_full_of_others_is_not_copied() {
        let src = source(&[7u8; 100]);
        // Room for two 30-byte copies.
        let cache = cache(60);
        let ranges = [r(0, 10), r(20, 10), r(40, 10)];
        let key = |number| Key { number, ..KEY };
        // A cycle of five segments, each asked for once per cycle: every one
        // comes back after 120 bytes of others, so a copy would be gone by
        // then. None is ever copied.
        for _ in 0..4 {
            for n in 1..=5 {
                assert!(cache.get(key(n), b"", &src, &ranges).is_none());
                cache.seen.as_ref().unwrap().run_pending_tasks();
            }
        }
        assert_eq!(cache.misses.get(), 0);
        // A segment that comes straight back is copied, and kept.
        assert!(cache.get(key(9), b"", &src, &ranges).is_none());
        assert!(cache.get(key(9), b"", &src, &ranges).is_some());
        assert!(cache.get(key(9), b"", &src, &ranges).is_some());
        assert_eq!((cache.misses.get(), cache.hits.get()), (1, 1));
    }
}
