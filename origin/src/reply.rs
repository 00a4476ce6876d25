//! What a route answers, before conditional and range handling: the data
//! plane's shared vocabulary of replies. Every route family (`vod`,
//! `hls_ts`, `trick`, `live`) builds a [`Reply`]; `conn` sends it.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use headwater_common::metrics::RouteKind;
use headwater_packager::manifest::ManifestOptions;
use headwater_packager::mp4::TrackKind;

use crate::error::OriginError;
use crate::gather::Gathered;
use crate::http::response::Status;
use crate::store::{Asset, IndexedFile};

/// HLS playlists.
pub(crate) const M3U8: &str = "application/vnd.apple.mpegurl";
/// DASH MPDs.
pub(crate) const MPD: &str = "application/dash+xml";
/// WebVTT.
pub(crate) const VTT: &str = "text/vtt; charset=utf-8";
/// MPEG-TS segments.
pub(crate) const MP2T: &str = "video/mp2t";

/// The content type of a rendition's init and media segments.
pub(crate) fn mime(kind: TrackKind) -> &'static str {
    if kind == TrackKind::Audio {
        "audio/mp4"
    } else {
        "video/mp4"
    }
}

/// Which `Cache-Control` a reply carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Caching {
    Segment,
    Manifest,
    NotFound,
    NoStore,
    /// A live playlist or MPD: about half a segment.
    LiveManifest,
    /// A blocking playlist reload: the answer to that query does not change.
    LiveBlocking,
    /// A complete live segment or part: for as long as the DVR window.
    LiveMedia,
}

/// A reply body.
pub(crate) enum Body {
    Empty,
    Text(Bytes),
    /// The header is in the connection's `MediaSegment`; payload from this file.
    Segment(Arc<IndexedFile>),
    /// A trick resource: keyframe fragments planned and sent one at a time.
    Keyframes(crate::trick::Trick),
    /// A whole body kept in a sealed memfd (a gathered fMP4 segment, an
    /// MPEG-TS segment).
    Kept(Arc<Gathered>),
    /// A live segment still being made: sent with chunked transfer coding,
    /// a chunk per part as each is published.
    Growing(crate::growing::Growing),
    /// A live segment still being made on another node: its chunked body
    /// passed on as it arrives.
    Relayed(crate::relay::Streaming),
}

/// A reply before conditional and range handling.
pub(crate) struct Reply {
    pub(crate) status: Status,
    pub(crate) content_type: &'static str,
    pub(crate) caching: Caching,
    pub(crate) etag: Option<u64>,
    pub(crate) asset: Option<Arc<Asset>>,
    pub(crate) body: Body,
    pub(crate) allow: bool,
    pub(crate) close: bool,
    pub(crate) preflight: bool,
    /// The route's kind, for the request metrics.
    pub(crate) route: RouteKind,
}

impl Reply {
    /// A text reply that names no asset.
    pub(crate) fn text(status: Status, caching: Caching, text: impl Into<Bytes>) -> Self {
        Reply {
            status,
            content_type: "text/plain; charset=utf-8",
            caching,
            etag: None,
            asset: None,
            body: Body::Text(text.into()),
            allow: false,
            close: false,
            preflight: false,
            route: RouteKind::Health,
        }
    }

    /// A `200` of an asset's resource.
    pub(crate) fn ok(
        content_type: &'static str,
        caching: Caching,
        body: Body,
        etag: u64,
        asset: Arc<Asset>,
    ) -> Self {
        Reply {
            status: Status::OK,
            content_type,
            caching,
            etag: Some(etag),
            asset: Some(asset),
            body,
            allow: false,
            close: false,
            preflight: false,
            route: RouteKind::Segment,
        }
    }

    /// The error's status and public message.
    pub(crate) fn error(e: &OriginError) -> Self {
        let caching = if e.status() == Status::NOT_FOUND {
            Caching::NotFound
        } else {
            Caching::NoStore
        };
        let mut r = Reply::text(e.status(), caching, format!("{}\n", e.public_message()));
        r.close = e.closes_connection();
        r
    }

    /// The same reply, counted as a `route` request.
    pub(crate) fn on(mut self, route: RouteKind) -> Self {
        self.route = route;
        self
    }
}

/// One resource of an asset, before its ETag.
pub(crate) struct Resource {
    pub(crate) content_type: &'static str,
    pub(crate) caching: Caching,
    pub(crate) body: Body,
    pub(crate) tag: Tag,
}

impl Resource {
    pub(crate) fn new(content_type: &'static str, caching: Caching, body: Body, tag: Tag) -> Self {
        Resource {
            content_type,
            caching,
            body,
            tag,
        }
    }
}

/// A manifest: the asset's cached text, or, when a query must be carried
/// into its child URIs, text rendered for this request.
pub(crate) fn manifest(
    cell: &OnceLock<Bytes>,
    carry: Option<&str>,
    render: impl Fn(&ManifestOptions<'_>, &mut String),
) -> Bytes {
    match carry {
        None => cell
            .get_or_init(|| {
                let mut s = String::new();
                render(&ManifestOptions::default(), &mut s);
                Bytes::from(s)
            })
            .clone(),
        Some(q) => {
            let mut s = String::new();
            let opts = ManifestOptions {
                query: Some(q),
                ..ManifestOptions::default()
            };
            render(&opts, &mut s);
            Bytes::from(s)
        }
    }
}

/// What a resource of an asset is, for its ETag: with the asset's
/// fingerprint, it names the content. The numbers are frozen (they are in
/// ETags CDNs hold): each kind has its own, in the low byte; the rendition,
/// program or track index above it, and a segment number above that.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Tag {
    HlsMultivariant,
    HlsMedia {
        rendition: usize,
    },
    DashManifest,
    Init {
        rendition: usize,
    },
    Segment {
        rendition: usize,
        number: u32,
    },
    HlsIframes {
        rendition: usize,
    },
    Keyframe {
        rendition: usize,
        number: u32,
    },
    HlsSubtitles {
        track: usize,
    },
    VttFull {
        track: usize,
    },
    VttSegment {
        track: usize,
        number: u32,
    },
    TsMultivariant,
    TsMedia {
        program: usize,
    },
    TsIframes {
        program: usize,
    },
    TsSegment {
        program: usize,
        number: u32,
    },
    TsSubtitles {
        track: usize,
    },
    Iframes {
        rendition: usize,
    },
    /// A WebVTT segment of the TS playlists (cue times on the TS clock).
    TsVttSegment {
        track: usize,
        number: u32,
    },
    /// Clip spans: the window and the thing cut, hashed.
    Span {
        rendition: usize,
        from_ms: u64,
        to_ms: u64,
    },
    TsSpan {
        program: usize,
        from_ms: u64,
        to_ms: u64,
    },
    VttSpan {
        track: usize,
        from_ms: u64,
        to_ms: u64,
    },
}

impl Tag {
    /// The number hashed with the asset's fingerprint.
    pub(crate) fn value(self) -> u64 {
        let at = |kind: u64, index: usize, number: u32| {
            (u64::from(number) << 16) | (index as u64) << 8 | kind
        };
        let window =
            |parts: [u64; 3]| xxhash_rust::xxh3::xxh3_64(&parts.map(u64::to_le_bytes).concat());
        match self {
            Tag::HlsMultivariant => 1,
            Tag::HlsMedia { rendition } => at(2, rendition, 0),
            Tag::DashManifest => 3,
            Tag::Init { rendition } => at(4, rendition, 0),
            Tag::Segment { rendition, number } => at(5, rendition, number),
            Tag::HlsIframes { rendition } => at(6, rendition, 0),
            Tag::Keyframe { rendition, number } => at(7, rendition, number),
            Tag::HlsSubtitles { track } => at(8, track, 0),
            Tag::VttFull { track } => at(9, track, 0),
            Tag::VttSegment { track, number } => at(10, track, number),
            Tag::TsMultivariant => 11,
            Tag::TsMedia { program } => at(12, program, 0),
            Tag::TsIframes { program } => at(13, program, 0),
            Tag::TsSegment { program, number } => at(14, program, number),
            Tag::TsSubtitles { track } => at(15, track, 0),
            Tag::Iframes { rendition } => at(16, rendition, 0),
            Tag::TsVttSegment { track, number } => at(26, track, number),
            Tag::Span {
                rendition,
                from_ms,
                to_ms,
            } => window([from_ms, to_ms, rendition as u64]),
            Tag::TsSpan {
                program,
                from_ms,
                to_ms,
            } => window([from_ms, to_ms, (program as u64) << 8 | 17]),
            Tag::VttSpan {
                track,
                from_ms,
                to_ms,
            } => window([from_ms, to_ms, (track as u64) << 8 | 18]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ETags CDNs hold must not change with the code: these are the values
    /// the tags had when they were written out by hand.
    #[test]
    fn tag_values_are_frozen() {
        assert_eq!(Tag::HlsMultivariant.value(), 1);
        assert_eq!(
            Tag::Segment {
                rendition: 1,
                number: 7
            }
            .value(),
            (7 << 16) | (1 << 8) | 5
        );
        assert_eq!(
            Tag::VttSegment {
                track: 2,
                number: 3
            }
            .value(),
            (3 << 16) | (2 << 8) | 10
        );
        assert_eq!(
            Tag::TsVttSegment {
                track: 2,
                number: 3
            }
            .value(),
            (3 << 16) | (2 << 8) | 10 | (1 << 4)
        );
        assert_eq!(
            Tag::TsSegment {
                program: 0,
                number: 4
            }
            .value(),
            (4 << 16) | 14
        );
        assert_eq!(Tag::Iframes { rendition: 3 }.value(), (3 << 8) | 16);
    }
}
