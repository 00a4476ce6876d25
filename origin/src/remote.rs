//! Libraries in object storage (`media.root = "s3://BUCKET/PREFIX"`): the
//! origin's side of `headwater-objects`.
//!
//! An object is indexed from ranged `GET`s of its metadata boxes only
//! ([`ObjectRead`]); sample payload comes through the chunk cache. A media
//! segment's chunks are fetched on the blocking pool before its reply is
//! made ([`prefetch`]), so a worker only ever looks them up, and the
//! connection sends the payload from the chunk files by `sendfile`.
//!
//! Failures of the storage are `503` (`504` when it did not answer in
//! time) with `Retry-After`, never a held connection: every call is
//! bounded by `media.object_timeout_ms`. An object replaced since it was
//! indexed (a new ETag) makes its asset be indexed again.

use std::io;
use std::ops::Range;
use std::sync::Arc;

use headwater_common::metrics::{ObjectErrorLabels, ObjectMetrics};
use headwater_objects::{Bucket, ChunkCache, Error as ObjectError, Object, Piece, Traffic};
use headwater_packager::MediaSegment;
use headwater_packager::{ReadAt, clip};

use crate::error::OriginError;
use crate::route::Route;
use crate::store::{Asset, Data, Store};

/// One object of a library in a bucket, at the version it was indexed.
pub(crate) struct Remote {
    pub(crate) object: Object,
    pub(crate) bucket: Arc<Bucket>,
    pub(crate) chunks: Arc<ChunkCache>,
    pub(crate) metrics: ObjectMetrics,
}

impl Remote {
    /// `ranges` of the object as runs inside cached chunks (fetching the
    /// chunks not held: blocking), counted.
    pub(crate) fn fetch(
        &self,
        ranges: impl IntoIterator<Item = Range<u64>>,
    ) -> Result<Vec<Piece>, ObjectError> {
        let outcome = self.chunks.pieces(&self.bucket, &self.object, ranges);
        match &outcome {
            Ok((_, traffic)) => record(&self.metrics, &self.chunks, *traffic),
            Err(e) => record_error(&self.metrics, e),
        }
        self.metrics.up.set(i64::from(self.bucket.is_healthy()));
        outcome.map(|(p, _)| p)
    }

    /// [`Remote::fetch`] for the paths that speak `std::io`.
    pub(crate) fn pieces(
        &self,
        ranges: impl IntoIterator<Item = Range<u64>>,
    ) -> io::Result<Vec<Piece>> {
        self.fetch(ranges).map_err(to_io)
    }

    /// Fills `buf` from `offset` (blocking on chunks not held).
    pub(crate) fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        let end = offset.saturating_add(buf.len() as u64);
        let mut at = 0usize;
        for p in self.pieces(std::iter::once(offset..end))? {
            let n = p.len as usize;
            std::os::unix::fs::FileExt::read_exact_at(
                &p.chunk.file,
                &mut buf[at..at + n],
                p.offset,
            )?;
            at += n;
        }
        Ok(())
    }
}

/// Counts a lookup's chunk hits and fetches.
fn record(m: &ObjectMetrics, chunks: &ChunkCache, t: Traffic) {
    m.chunk_hits.inc_by(u64::from(t.lookups - t.fetched));
    if t.fetched > 0 {
        m.chunk_fetches.inc_by(u64::from(t.fetched));
        m.fetched_bytes.inc_by(t.fetched_bytes);
        m.cached_bytes
            .set(i64::try_from(chunks.held_bytes_estimate()).unwrap_or(i64::MAX));
    }
}

/// Counts a failed call by kind.
pub(crate) fn record_error(m: &ObjectMetrics, e: &ObjectError) {
    let kind = match e {
        ObjectError::Timeout(_) => "timeout",
        ObjectError::Unavailable(_) | ObjectError::Config(_) => "unavailable",
        ObjectError::Changed(_) => "changed",
        ObjectError::NotFound(_) => "missing",
        ObjectError::Cache(_) => "cache",
    };
    m.errors.get_or_create(&ObjectErrorLabels { kind }).inc();
}

/// An object storage error as an I/O error (for the paths that read
/// samples through `std::io`); [`from_io`] gets the reply back.
pub(crate) fn to_io(e: ObjectError) -> io::Error {
    let kind = match &e {
        ObjectError::Timeout(_) => io::ErrorKind::TimedOut,
        ObjectError::Changed(_) | ObjectError::NotFound(_) => io::ErrorKind::NotFound,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e)
}

/// The reply for an I/O error that is an object storage failure (made by
/// [`to_io`]), if it is one.
pub(crate) fn from_io(e: &io::Error) -> Option<OriginError> {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<ObjectError>())
        .map(error)
}

/// The reply for an object storage failure.
pub(crate) fn error(e: &ObjectError) -> OriginError {
    match e {
        ObjectError::Timeout(_) => OriginError::ObjectStore {
            timeout: true,
            why: e.to_string(),
        },
        _ => OriginError::ObjectStore {
            timeout: false,
            why: e.to_string(),
        },
    }
}

/// Ranged reads of an object for indexing: each read one conditional `GET`.
pub(crate) struct ObjectRead<'a> {
    pub(crate) bucket: &'a Bucket,
    pub(crate) object: &'a Object,
}

impl ReadAt for ObjectRead<'_> {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let end = offset
            .saturating_add(buf.len() as u64)
            .min(self.object.size);
        if offset >= end {
            return Ok(0);
        }
        let bytes = self.bucket.get(self.object, offset..end).map_err(to_io)?;
        buf[..bytes.len()].copy_from_slice(&bytes);
        Ok(bytes.len())
    }
}

/// Fetches, on the blocking pool, the chunks that the media segment `route`
/// names will be sent or written from, so that making and sending its
/// reply only looks them up: an fMP4 segment or span's ranges, and for an
/// MPEG-TS segment the fMP4 segments of the same number of its program's
/// renditions (the samples it is written from, give or take a frame at
/// the edges, which a worker then reads itself). Other routes (manifests,
/// init segments) need nothing here.
pub(crate) async fn prefetch(
    store: &Store,
    asset: &Arc<Asset>,
    route: &Route<'_>,
    seg: &mut MediaSegment,
) -> Result<(), OriginError> {
    for (source, ranges) in planned(asset, route, seg) {
        fetch_ranges(store, asset, route, source, ranges).await?;
    }
    Ok(())
}

/// The source ranges `route` will read, by source file.
fn planned(
    asset: &Asset,
    route: &Route<'_>,
    seg: &mut MediaSegment,
) -> Vec<(usize, Vec<Range<u64>>)> {
    let p = &asset.presentation;
    let rendition = |id: &str| p.renditions.iter().find(|r| r.id == id);
    let ranges = |seg: &MediaSegment| -> Vec<Range<u64>> {
        seg.ranges
            .iter()
            .map(|r| r.offset..r.offset + r.len)
            .collect()
    };
    match *route {
        Route::Segment {
            rendition: id,
            number,
            ..
        } => rendition(id)
            .and_then(|r| {
                p.media_segment(r, number, seg)
                    .ok()
                    .map(|()| vec![(r.source, ranges(seg))])
            })
            .unwrap_or_default(),
        Route::Span {
            rendition: id,
            from_ms,
            to_ms,
            ..
        } => rendition(id)
            .and_then(|r| {
                clip::span_segment(p, r, from_ms, to_ms, seg)
                    .ok()
                    .map(|()| vec![(r.source, ranges(seg))])
            })
            .unwrap_or_default(),
        Route::TsSegment {
            program, number, ..
        } => {
            let Ok(set) = crate::hls_ts::set(asset) else {
                return Vec::new();
            };
            let Some(v) = set.programs.iter().find(|v| v.name == program) else {
                return Vec::new();
            };
            [v.video, v.audio]
                .into_iter()
                .flatten()
                .filter_map(|i| p.renditions.get(i))
                .filter_map(|r| {
                    p.media_segment(r, number, seg)
                        .ok()
                        .map(|()| (r.source, ranges(seg)))
                })
                .collect()
        }
        _ => Vec::new(),
    }
}

/// Fetches `ranges` of source file `source` of `asset`, when it is remote.
async fn fetch_ranges(
    store: &Store,
    asset: &Arc<Asset>,
    route: &Route<'_>,
    source: usize,
    ranges: Vec<Range<u64>>,
) -> Result<(), OriginError> {
    let Some(file) = asset.files.get(source) else {
        return Ok(());
    };
    if !matches!(file.data, Data::Remote(_)) {
        return Ok(());
    }
    let file = file.clone();
    tokio::task::spawn_blocking(move || match &file.data {
        Data::Remote(remote) => remote.fetch(ranges).map(drop),
        Data::Local(_) => Ok(()),
    })
    .await
    .map_err(|e| OriginError::Internal(format!("chunk fetch task failed: {e}")))?
    .map_err(|e| {
        if matches!(e, ObjectError::Changed(_) | ObjectError::NotFound(_)) {
            // Replaced or gone: index it again on the next request.
            store.forget(route.asset().unwrap_or_default());
        }
        error(&e)
    })
}
