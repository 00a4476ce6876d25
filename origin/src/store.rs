//! Assets from the media directory, indexed once and cached.
//!
//! `{root}/{asset}.mp4` (or `.m4a`) is a one-file asset; `{root}/{asset}/`
//! holding `.mp4`/`.m4a` files is a multi-rendition asset, each file a
//! rendition or an audio track. Two caches (moka, shared by all cores):
//!
//! - **sources**: one sample index per file, keyed by path, device, inode,
//!   size and mtime, holding the open file the index was built from, so a
//!   response always reads the bytes its index describes;

//! - **assets**: the packaged presentation of each asset, with its rendered
//!   manifests and init segments, and a snapshot of the files it came from.
//!
//! An asset's files are re-checked at most every `check_interval`; a changed
//! snapshot rebuilds the asset (unchanged files keep their cached index).
//! Failures (no such asset, unreadable media) are cached the same way, so a
//! broken file is not re-parsed on every request. Builds happen on the
//! blocking pool, and moka makes concurrent first requests share one build.

use std::collections::HashSet;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use headwater_packager::trick::Keyframe;
use headwater_packager::{Limits, NamedSource, PackagingConfig, Presentation, ReadAt, Source};

use headwater_common::catalog::{CatalogAsset, SharedCatalog};
use headwater_common::lograte::LogRate;
use headwater_common::media_root::{MediaRoot, Symlinks};
use headwater_common::metrics::DataPlane;

use crate::error::AssetError;
use crate::route::is_name;

/// Identity of a file's content as the file system reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct FileId {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
}

impl FileId {
    fn of(m: &std::fs::Metadata) -> Self {
        FileId {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
        }
    }
}

/// What was on disk for an asset when it was last looked at.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Snapshot {
    files: Vec<(PathBuf, Version)>,
    /// Per file, a language the catalog gives its tracks.
    languages: Vec<Option<String>>,
}

/// An indexed file and what its index was built from.
pub(crate) struct IndexedFile {
    pub(crate) source: Arc<Source>,
    pub(crate) data: Data,
}

/// Where an indexed file's bytes are.
pub(crate) enum Data {
    /// The open file in the media directory.
    Local(File),
    /// An object in the library's bucket, at the version indexed.
    Remote(crate::remote::Remote),
}

impl IndexedFile {
    /// Fills `buf` from `offset` (for a remote object, through the chunk
    /// cache: blocking on chunks not held).
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
        match &self.data {
            Data::Local(f) => f.read_exact_at(buf, offset),
            Data::Remote(r) => r.read_exact_at(buf, offset),
        }
    }

    /// Reads what there is of `buf.len()` bytes at `offset`.
    pub(crate) fn read_up_to(&self, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
        let n = (buf.len() as u64).min(self.source.size.saturating_sub(offset)) as usize;
        match &self.data {
            Data::Local(f) => {
                let mut filled = 0;
                while filled < n {
                    match f.read_at(&mut buf[filled..n], offset + filled as u64) {
                        Ok(0) => break,
                        Ok(k) => filled += k,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => return Err(e),
                    }
                }
                Ok(filled)
            }
            Data::Remote(r) => r.read_exact_at(&mut buf[..n], offset).map(|()| n),
        }
    }
}

impl ReadAt for IndexedFile {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.read_up_to(buf, offset)
    }
}

/// The version of a source file a snapshot saw.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Version {
    Local(FileId),
    Remote(headwater_objects::Object),
}

/// Where the library is.
pub(crate) enum Library {
    /// A directory, every open confined to it.
    Dir(MediaRoot),
    /// A bucket, read in ranges, its payload through a chunk cache.
    Bucket {
        bucket: Arc<headwater_objects::Bucket>,
        chunks: Arc<headwater_objects::ChunkCache>,
        metrics: headwater_common::metrics::ObjectMetrics,
    },
}

/// A packaged asset and everything derived from it that is worth keeping.
pub(crate) struct Asset {
    /// Unique to this build of the asset in this process: names its gathered payloads.
    pub(crate) id: u64,
    pub(crate) presentation: Presentation,
    /// Open files, aligned with `presentation.sources`.
    pub(crate) files: Vec<Arc<IndexedFile>>,
    /// `Last-Modified` value: the newest source file's mtime.
    pub(crate) last_modified: String,
    /// Hash of the presentation: names the content in ETags.
    pub(crate) fingerprint: u64,
    pub(crate) rendered: Rendered,
}

/// Lazily rendered responses of an asset.
#[derive(Default)]
pub(crate) struct Rendered {
    pub(crate) hls_multivariant: OnceLock<Bytes>,
    pub(crate) dash: OnceLock<Bytes>,
    pub(crate) hls_media: Vec<OnceLock<Bytes>>,
    pub(crate) hls_iframes: Vec<OnceLock<Bytes>>,
    pub(crate) init: Vec<OnceLock<Bytes>>,
    pub(crate) hls_subtitles: Vec<OnceLock<Bytes>>,
    pub(crate) hls_ts_subtitles: Vec<OnceLock<Bytes>>,
    pub(crate) ts: OnceLock<Result<Arc<crate::ts_set::TsSet>, String>>,
    pub(crate) vtt_full: Vec<OnceLock<Bytes>>,
    /// Per rendition, its keyframes: the trick resource's layout.
    pub(crate) keyframes: Vec<OnceLock<Arc<[Keyframe]>>>,
}

/// Prefixes an unprocessable-media message with the asset's name.
fn in_asset(e: AssetError, name: &str) -> AssetError {
    match e {
        AssetError::Unprocessable(why) => {
            AssetError::Unprocessable(format!("asset '{name}': {why}"))
        }
        other => other,
    }
}

/// Files that a catalog asset requiring a token is made of: never served
/// as (part of) a directory-mode asset, by name or through a link.
#[derive(Default)]
struct Protected {
    /// The catalog version and when (ms) this was worked out.
    at: Option<(i64, u64)>,
    /// Source paths as the catalog names them (relative to the root).
    paths: HashSet<PathBuf>,
    /// `(device, inode)` of those files: the same file under another name
    /// (a hard link, a symlink the policy allows) is the same file.
    inodes: HashSet<(u64, u64)>,
}

struct Entry {
    outcome: Result<Arc<Asset>, AssetError>,
    snapshot: Option<Snapshot>,
    checked_at_ms: AtomicU64,
    /// The catalog version this was last checked against: a directory-mode
    /// asset is checked again when the catalog changes, because a catalog
    /// asset that requires a token may have claimed its files.
    catalog_version: AtomicI64,
    /// The catalog entry's revision this was built from (`None`: directory mode).
    catalog_rev: Option<i64>,
}

/// The asset store shared by every worker.
pub(crate) struct Store {
    root: Library,
    protected: std::sync::Mutex<Arc<Protected>>,
    limits: Limits,
    packaging: PackagingConfig,
    check_interval: Duration,
    started: Instant,
    sources: moka::sync::Cache<(PathBuf, Version), Arc<IndexedFile>>,
    assets: moka::sync::Cache<String, Arc<Entry>>,
    catalog: SharedCatalog,
    metrics: DataPlane,
}

/// Ids of asset builds; never reused within a process.
static NEXT_ASSET_ID: AtomicU64 = AtomicU64::new(1);

struct FileRead<'a>(&'a File);

impl ReadAt for FileRead<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<usize> {
        self.0.read_at(buf, offset)
    }
}

impl Store {
    pub(crate) fn new(
        root: Library,
        limits: Limits,
        packaging: PackagingConfig,
        check_interval: Duration,
        cache_bytes: u64,
        catalog: SharedCatalog,
        metrics: DataPlane,
    ) -> Self {
        let sources = moka::sync::Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|_, v: &Arc<IndexedFile>| {
                u32::try_from(v.source.heap_bytes()).unwrap_or(u32::MAX)
            })
            .build();
        let assets = moka::sync::Cache::builder()
            .max_capacity(cache_bytes)
            .weigher(|_, e: &Arc<Entry>| match &e.outcome {
                Ok(a) => u32::try_from(a.weight()).unwrap_or(u32::MAX),
                Err(_) => 256,
            })
            .build();
        Store {
            root,
            protected: std::sync::Mutex::default(),
            limits,
            packaging,
            check_interval,
            started: Instant::now(),
            sources,
            assets,
            catalog,
            metrics,
        }
    }

    /// The catalog entry for `name`, if the catalog has one.
    fn catalog_entry(&self, name: &str) -> Option<Arc<CatalogAsset>> {
        self.catalog.load().assets.get(name).cloned()
    }

    /// Whether the library can be read: the media directory is one, or
    /// the bucket answered its last call (when it did not, a probe on the
    /// blocking pool asks again, so service resumes by itself).
    pub(crate) fn ready(&self) -> Result<(), &'static str> {
        match &self.root {
            Library::Dir(root) if root.path().is_dir() => Ok(()),
            Library::Dir(_) => Err("media root is not a readable directory"),
            Library::Bucket {
                bucket, metrics, ..
            } if bucket.is_healthy() => {
                metrics.up.set(1);
                Ok(())
            }
            Library::Bucket {
                bucket, metrics, ..
            } => {
                metrics.up.set(0);
                static PROBING: std::sync::atomic::AtomicBool =
                    std::sync::atomic::AtomicBool::new(false);
                if !PROBING.swap(true, Ordering::AcqRel) {
                    let bucket = bucket.clone();
                    let probe = move || {
                        bucket.probe();
                        PROBING.store(false, Ordering::Release);
                    };
                    match tokio::runtime::Handle::try_current() {
                        Ok(rt) => drop(rt.spawn_blocking(probe)),
                        Err(_) => probe(),
                    }
                }
                Err("object storage is not answering")
            }
        }
    }

    /// Whether the library is in a bucket.
    pub(crate) fn in_bucket(&self) -> bool {
        matches!(self.root, Library::Bucket { .. })
    }

    /// Drops the cached asset `name`: the next request indexes it again.
    pub(crate) fn forget(&self, name: &str) {
        self.assets.invalidate(name);
    }

    /// The media directory, for a library that is one.
    fn dir(&self) -> Option<&MediaRoot> {
        match &self.root {
            Library::Dir(root) => Some(root),
            Library::Bucket { .. } => None,
        }
    }

    /// The files protected by tokens, worked out again when the catalog
    /// changed or a check interval passed (a protected file replaced on
    /// disk has a new inode). Blocking: stats the protected sources.
    fn protected(&self) -> Arc<Protected> {
        let view = self.catalog.load();
        let now = self.now_ms();
        let interval = self.check_interval.as_millis() as u64;
        let mut cell = self.protected.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = cell
            .at
            .is_some_and(|(v, t)| v == view.version && now.saturating_sub(t) < interval);
        if !fresh {
            let mut p = Protected {
                at: Some((view.version, now)),
                ..Protected::default()
            };
            for spec in view
                .assets
                .values()
                .filter(|a| a.require_token)
                .flat_map(|a| &a.sources)
            {
                // A bucket's source may be named by its full URL: the key.
                let key = match &self.root {
                    Library::Bucket { bucket, .. } => bucket.key_of(&spec.path),
                    Library::Dir(_) => Some(spec.path.as_str()),
                };
                let rel = PathBuf::from(key.unwrap_or(&spec.path));
                // Through the same policy: a link to it is caught by inode.
                if let Some(m) = self.dir().and_then(|root| {
                    MediaRoot::new(root.path().to_owned(), Symlinks::Follow)
                        .metadata(&rel)
                        .ok()
                }) {
                    p.inodes.insert((m.dev(), m.ino()));
                }
                p.paths.insert(rel);
            }
            *cell = Arc::new(p);
        }
        cell.clone()
    }

    fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// Returns the cached asset without blocking, unless the caller must
    /// call [`Store::load`] on a blocking thread: when there is no entry, or
    /// when the entry is due for a check and this caller won the right to
    /// do it (the others keep using the entry meanwhile).
    pub(crate) fn get_cached(&self, name: &str) -> Option<Result<Arc<Asset>, AssetError>> {
        let Some(entry) = self.assets.get(name) else {
            self.metrics.asset_misses.inc();
            return None;
        };
        // A catalog change applies at once (no waiting for the file check).
        let view = self.catalog.load();
        let rev = view.assets.get(name).map(|a| a.revision);
        let claimable =
            rev.is_none() && entry.catalog_version.load(Ordering::Relaxed) != view.version;
        if rev != entry.catalog_rev || claimable {
            self.metrics.asset_misses.inc();
            return None;
        }
        let now = self.now_ms();
        let checked = entry.checked_at_ms.load(Ordering::Relaxed);
        let due = now.saturating_sub(checked) >= self.check_interval.as_millis() as u64;
        if due
            && entry
                .checked_at_ms
                .compare_exchange(checked, now, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.metrics.asset_misses.inc();
            return None;
        }
        self.metrics.asset_hits.inc();
        Some(entry.outcome.clone())
    }

    /// Loads an asset, or revalidates the cached entry against the file
    /// system. Blocking: reads the file system.
    pub(crate) fn load(&self, name: &str) -> Result<Arc<Asset>, AssetError> {
        debug_assert!(is_name(name));
        if let Some(entry) = self.assets.get(name) {
            let version = self.catalog.load().version;
            let rev = self.catalog_entry(name).map(|a| a.revision);
            match self.snapshot(name) {
                Ok(s) if s == entry.snapshot && rev == entry.catalog_rev => {
                    entry.catalog_version.store(version, Ordering::Relaxed);
                    return entry.outcome.clone();
                }
                // The bucket did not answer: what was indexed is still
                // served (its chunks are checked against its ETag).
                Err(AssetError::ObjectStore { .. })
                    if entry.outcome.is_ok() && rev == entry.catalog_rev =>
                {
                    return entry.outcome.clone();
                }
                _ => {
                    tracing::info!(asset = name, "asset changed on disk; re-indexing");
                    self.assets.invalidate(name);
                }
            }
        }
        let entry = self
            .assets
            .get_with(name.to_owned(), || Arc::new(self.build(name)));
        entry.outcome.clone()
    }

    /// Lists the files of an asset and their identities.
    fn snapshot(&self, name: &str) -> Result<Option<Snapshot>, AssetError> {
        if let Some(entry) = self.catalog_entry(name) {
            return self.catalog_snapshot(&entry).map(Some);
        }
        let root = match &self.root {
            Library::Dir(root) => root,
            Library::Bucket { bucket, .. } => return self.bucket_snapshot(bucket, name),
        };
        let protected = self.protected();
        let usable = |rel: &Path, m: &std::fs::Metadata| {
            m.is_file()
                && !protected.paths.contains(rel)
                && !protected.inodes.contains(&(m.dev(), m.ino()))
        };
        for ext in ["mp4", "m4a"] {
            let rel = PathBuf::from(format!("{name}.{ext}"));
            match root.metadata(&rel) {
                Ok(m) if usable(&rel, &m) => {
                    return Ok(Some(Snapshot {
                        files: vec![(rel, Version::Local(FileId::of(&m)))],
                        languages: vec![None],
                    }));
                }
                Ok(_) => {}
                Err(e) => self.not_there(&rel, e)?,
            }
        }
        let dir = Path::new(name);
        let names = match root.read_dir(dir) {
            Ok(r) => r,
            Err(e) => {
                self.not_there(dir, e)?;
                return Ok(None);
            }
        };
        let mut files = Vec::new();
        for item in names {
            let rel = dir.join(&item);
            if !is_source_file(&rel) {
                continue;
            }
            match root.metadata(&rel) {
                Ok(m) if usable(&rel, &m) => {
                    add_file(&mut files, (rel, Version::Local(FileId::of(&m))), name)?;
                }
                Ok(_) => {}
                Err(e) => self.not_there(&rel, e)?,
            }
        }
        Ok(directory(files))
    }

    /// The directory-mode layout, from a bucket: `{name}.mp4`/`.m4a`, or
    /// the objects under `{name}/`.
    fn bucket_snapshot(
        &self,
        bucket: &headwater_objects::Bucket,
        name: &str,
    ) -> Result<Option<Snapshot>, AssetError> {
        let protected = self.protected();
        for ext in ["mp4", "m4a"] {
            let rel = format!("{name}.{ext}");
            if protected.paths.contains(Path::new(&rel)) {
                continue;
            }
            if let Some(o) = bucket.head(&rel).map_err(AssetError::from)? {
                return Ok(Some(Snapshot {
                    files: vec![(PathBuf::from(rel), Version::Remote(o))],
                    languages: vec![None],
                }));
            }
        }
        let (objects, _) = bucket.list(name).map_err(AssetError::from)?;
        let mut files = Vec::new();
        for o in objects {
            let rel = PathBuf::from(&o.rel);
            if !is_source_file(&rel) || protected.paths.contains(&rel) {
                continue;
            }
            add_file(&mut files, (rel, Version::Remote(o)), name)?;
        }
        Ok(directory(files))
    }

    /// Whether an error opening `rel` means "no such asset" (`Ok`): the
    /// file is not there, is not of the kind looked for, or is a symlink
    /// the policy refuses (logged at most every 10 s: an operator may not
    /// know); anything else is a storage error.
    fn not_there(&self, rel: &Path, e: std::io::Error) -> Result<(), AssetError> {
        use std::io::ErrorKind::{NotADirectory, NotFound, PermissionDenied};
        match e.kind() {
            NotFound | NotADirectory => Ok(()),
            PermissionDenied if self.dir().is_some_and(|r| r.symlinks() != Symlinks::Follow) => {
                static REFUSED: LogRate = LogRate::new();
                if let Some(suppressed) = REFUSED.allow() {
                    tracing::warn!(path = %rel.display(), error = %e, suppressed, "not served: outside the media root or through a symlink (media.symlinks)");
                }
                Ok(())
            }
            _ => Err(AssetError::Storage(format!("{}: {e}", rel.display()))),
        }
    }

    /// The files of a catalog asset, in the catalog's order. A missing
    /// file makes the asset unprocessable (the catalog says it exists).
    fn catalog_snapshot(&self, entry: &CatalogAsset) -> Result<Snapshot, AssetError> {
        let mut files = Vec::with_capacity(entry.sources.len());
        let mut languages = Vec::with_capacity(entry.sources.len());
        for spec in &entry.sources {
            let path = PathBuf::from(&spec.path);
            let missing = |e: &dyn std::fmt::Display| {
                AssetError::Unprocessable(format!(
                    "asset '{}': source '{}': {e}",
                    entry.id, spec.path
                ))
            };
            let version = match &self.root {
                Library::Dir(_) if headwater_objects::Bucket::is_url(&spec.path) => {
                    return Err(missing(
                        &"an s3:// source needs the library in that bucket (media.root)",
                    ));
                }
                Library::Dir(root) => {
                    let m = root.metadata(&path).map_err(|e| missing(&e))?;
                    Version::Local(FileId::of(&m))
                }
                Library::Bucket { bucket, .. } => {
                    let key = bucket
                        .key_of(&spec.path)
                        .ok_or_else(|| missing(&"not in the library's bucket and prefix"))?;
                    match bucket.head(key) {
                        Ok(Some(o)) => Version::Remote(o),
                        Ok(None) => return Err(missing(&"no such object")),
                        Err(e) => return Err(AssetError::from(e)),
                    }
                }
            };
            files.push((path, version));
            languages.push(spec.language.clone());
        }
        Ok(Snapshot { files, languages })
    }

    fn build(&self, name: &str) -> Entry {
        let started = Instant::now();
        let entry = self.build_entry(name);
        tracing::debug!(
            asset = name,
            micros = started.elapsed().as_micros() as u64,
            "asset built"
        );
        entry
    }

    fn build_entry(&self, name: &str) -> Entry {
        let now = self.now_ms();
        // Read before the files: a change in between makes the next
        // request check again.
        let version = self.catalog.load().version;
        let catalog_rev = self.catalog_entry(name).map(|a| a.revision);
        let snapshot = match self.snapshot(name) {
            Ok(s) => s,
            Err(e) => {
                return Entry {
                    outcome: Err(e),
                    snapshot: None,
                    checked_at_ms: AtomicU64::new(now),
                    catalog_version: AtomicI64::new(version),
                    catalog_rev,
                };
            }
        };
        let outcome = match &snapshot {
            None => Err(AssetError::NotFound),
            Some(s) => self.package(name, s),
        };
        if let Err(AssetError::Unprocessable(why)) = &outcome {
            tracing::warn!(asset = name, error = %why, "asset cannot be packaged");
        }
        Entry {
            outcome,
            snapshot,
            checked_at_ms: AtomicU64::new(now),
            catalog_version: AtomicI64::new(version),
            catalog_rev,
        }
    }

    fn package(&self, name: &str, snapshot: &Snapshot) -> Result<Arc<Asset>, AssetError> {
        let mut named = Vec::with_capacity(snapshot.files.len());
        let mut files = Vec::with_capacity(snapshot.files.len());
        let mut newest = UNIX_EPOCH;
        let mut sidecars = Vec::new();
        let mut stems: Vec<String> = Vec::new();
        for ((path, id), language) in snapshot.files.iter().zip(&snapshot.languages) {
            newest = newest.max(id.modified());
            if path.extension().is_some_and(|e| e == "vtt") {
                let bytes = self.whole(path, id)?;
                sidecars.push(crate::subs::sidecar(path, &bytes).map_err(|e| in_asset(e, name))?);
                continue;
            }
            let indexed = self.index_file(path, id)?;
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or(name);
            let mut source = NamedSource::from_file_stem(stem, indexed.source.clone())
                .unwrap_or_else(|| NamedSource::new(name, indexed.source.clone()));
            // Catalog sources may share a stem (`a/source.mp4`, `b/source.mp4`).
            if stems.contains(&source.name) {
                source.name = format!("{}-{}", source.name, stems.len() + 1);
            }
            stems.push(source.name.clone());
            if language.is_some() {
                source.language.clone_from(language);
            }
            named.push(source);
            files.push(indexed);
        }
        let mut subtitles = crate::subs::embedded(&named, &files).map_err(|e| in_asset(e, name))?;
        subtitles.extend(sidecars);
        let presentation = Presentation::new(named, self.packaging.clone())
            .map_err(|e| AssetError::Unprocessable(format!("asset '{name}': {e}")))?
            .with_subtitles(subtitles);
        let n = presentation.renditions.len();
        let t = presentation.subtitles.len();
        let fingerprint = presentation.fingerprint();
        Ok(Arc::new(Asset {
            id: NEXT_ASSET_ID.fetch_add(1, Ordering::Relaxed),
            presentation,
            files,
            last_modified: crate::http::date::format(
                newest
                    .max(UNIX_EPOCH + Duration::from_secs(1))
                    .min(SystemTime::now()),
            ),
            fingerprint,
            rendered: Rendered {
                hls_media: (0..n).map(|_| OnceLock::new()).collect(),
                hls_iframes: (0..n).map(|_| OnceLock::new()).collect(),
                init: (0..n).map(|_| OnceLock::new()).collect(),
                hls_subtitles: (0..t).map(|_| OnceLock::new()).collect(),
                hls_ts_subtitles: (0..t).map(|_| OnceLock::new()).collect(),
                vtt_full: (0..t).map(|_| OnceLock::new()).collect(),
                keyframes: (0..n).map(|_| OnceLock::new()).collect(),
                ..Rendered::default()
            },
        }))
    }

    /// A small file (a WebVTT sidecar) whole, bounded by what a sidecar
    /// may be plus one byte (so that too long is seen as such).
    fn whole(&self, path: &Path, id: &Version) -> Result<Vec<u8>, AssetError> {
        use std::io::Read;
        let limit = headwater_packager::subtitles::webvtt::MAX_BYTES as u64 + 1;
        match (&self.root, id) {
            (Library::Bucket { bucket, .. }, Version::Remote(o)) => bucket
                .get(o, 0..o.size.min(limit))
                .map(|b| b.to_vec())
                .map_err(AssetError::from),
            (Library::Dir(root), _) => {
                let mut bytes = Vec::new();
                root.open(path)
                    .and_then(|f| f.take(limit).read_to_end(&mut bytes))
                    .map_err(|e| AssetError::Storage(format!("{}: {e}", path.display())))?;
                Ok(bytes)
            }
            _ => Err(AssetError::Storage("a file of another library".into())),
        }
    }

    fn index_file(&self, path: &Path, id: &Version) -> Result<Arc<IndexedFile>, AssetError> {
        self.sources
            .try_get_with((path.to_owned(), id.clone()), || {
                let started = Instant::now();
                let (source, data) = match (&self.root, id) {
                    (Library::Bucket { .. }, Version::Remote(object)) => {
                        self.index_object(path, object)?
                    }
                    (Library::Dir(root), _) => self.index_local(root, path)?,
                    _ => return Err(AssetError::Storage("a file of another library".into())),
                };
                tracing::debug!(
                    file = %path.display(),
                    reads = source.reads,
                    micros = started.elapsed().as_micros() as u64,
                    "indexed"
                );
                Ok(Arc::new(IndexedFile {
                    source: Arc::new(source),
                    data,
                }))
            })
            .map_err(|e: Arc<AssetError>| (*e).clone())
    }

    /// Indexes a file of the media directory.
    fn index_local(&self, root: &MediaRoot, path: &Path) -> Result<(Source, Data), AssetError> {
        let file = root
            .open(path)
            .map_err(|e| AssetError::Storage(format!("{}: {e}", path.display())))?;
        let size = file
            .metadata()
            .map_err(|e| AssetError::Storage(e.to_string()))?
            .len();
        let source = Source::index(&FileRead(&file), size, &self.limits)
            .map_err(|e| unprocessable(path, e))?;
        Ok((source, Data::Local(file)))
    }

    /// Indexes an object of the bucket from ranged reads of its metadata.
    fn index_object(
        &self,
        path: &Path,
        object: &headwater_objects::Object,
    ) -> Result<(Source, Data), AssetError> {
        let Library::Bucket {
            bucket,
            chunks,
            metrics,
        } = &self.root
        else {
            return Err(AssetError::Storage("an object without a bucket".into()));
        };
        let read = crate::remote::ObjectRead { bucket, object };
        let source = Source::index(&read, object.size, &self.limits).map_err(|e| match e {
            // A read of the bucket that failed is the storage's fault.
            headwater_packager::Error::Read { source, .. } => AssetError::from_io(&source),
            e => unprocessable(path, e),
        })?;
        let remote = crate::remote::Remote {
            object: object.clone(),
            bucket: bucket.clone(),
            chunks: chunks.clone(),
            metrics: metrics.clone(),
        };
        Ok((source, Data::Remote(remote)))
    }
}

impl Version {
    /// When the file was last modified.
    fn modified(&self) -> SystemTime {
        match self {
            Version::Local(id) => {
                UNIX_EPOCH + Duration::from_nanos(u64::try_from(id.mtime_ns).unwrap_or(0))
            }
            Version::Remote(o) => o.modified,
        }
    }
}

impl Asset {
    /// The keyframes of rendition `i` (none for audio), found on first use.
    pub(crate) fn keyframes(&self, i: usize) -> Arc<[Keyframe]> {
        let p = &self.presentation;
        match (self.rendered.keyframes.get(i), p.renditions.get(i)) {
            (Some(cell), Some(r)) => cell
                .get_or_init(|| headwater_packager::trick::keyframes(p, r).into())
                .clone(),
            _ => Arc::from([]),
        }
    }

    fn weight(&self) -> usize {
        let sources: usize = self.files.iter().map(|f| f.source.heap_bytes()).sum();
        let segments: usize = self
            .presentation
            .renditions
            .iter()
            .map(|r| r.segments.len() * 32 + 256)
            .sum();
        sources + segments + 4096
    }
}

/// Why `path` cannot be indexed, naming the file.
fn unprocessable(path: &Path, e: headwater_packager::Error) -> AssetError {
    AssetError::Unprocessable(format!(
        "{}: {e}",
        path.file_name().unwrap_or_default().to_string_lossy()
    ))
}

/// Adds a file of asset directory `name`; more than 64 are refused.
fn add_file(
    files: &mut Vec<(PathBuf, Version)>,
    file: (PathBuf, Version),
    name: &str,
) -> Result<(), AssetError> {
    files.push(file);
    if files.len() > 64 {
        return Err(AssetError::Unprocessable(format!(
            "asset directory '{name}' holds more than 64 media files"
        )));
    }
    Ok(())
}

/// The snapshot of an asset directory's files, in name order; none when
/// it has none.
fn directory(mut files: Vec<(PathBuf, Version)>) -> Option<Snapshot> {
    if files.is_empty() {
        return None;
    }
    files.sort_by(|a, b| a.0.cmp(&b.0));
    let languages = vec![None; files.len()];
    Some(Snapshot { files, languages })
}

/// Whether `rel` (in an asset directory) is a file the asset is made of.
fn is_source_file(rel: &Path) -> bool {
    rel.extension()
        .is_some_and(|e| e == "mp4" || e == "m4a" || e == "vtt")
        && rel
            .file_stem()
            .and_then(|s| s.to_str())
            .is_some_and(is_source_stem)
}

/// A file stem a multi-file asset takes: a URL-safe name, optionally
/// followed by `.lang` (`audio.fr`), which gives its tracks a language.
fn is_source_stem(stem: &str) -> bool {
    match stem.split_once('.') {
        Some((base, lang)) => is_name(base) && headwater_packager::is_language_tag(lang),
        None => is_name(stem),
    }
}
