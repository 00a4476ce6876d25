//! HLS discovery (RFC 8216): multivariant playlist → renditions, media playlist → resources.
//!
//! Renditions come from `EXT-X-STREAM-INF` (video or muxed, audio-only when the codecs say
//! so; I-frame playlists are skipped) and from `EXT-X-MEDIA` tags that have a `URI`
//! (§4.3.4.1). A media playlist gives one `EXT-X-MAP` init resource per distinct map
//! (§4.3.2.5) and one resource per segment; `EXT-X-BYTERANGE` (§4.3.2.2) becomes a
//! `Range` request, its offset defaulting to the end of the previous sub-range of the same
//! URI. A rendition's `init` is its first map; later maps (after a discontinuity) are
//! catalogued too.

use std::collections::HashMap;

use anyhow::{Context, bail};
use m3u8_rs::{AlternativeMediaType, MasterPlaylist, MediaPlaylist, Playlist};
use url::Url;

use crate::catalog::{ByteRange, Catalog, Kind, Rendition, Resource, TrackKind};

/// A rendition named by a multivariant playlist.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct PlaylistRef {
    /// Absolute URL of its media playlist.
    pub(crate) url: Url,
    /// Id shown to the user (`--renditions`).
    pub(crate) id: String,
    /// Video, audio or other.
    pub(crate) kind: TrackKind,
    /// `BANDWIDTH` (0 for `EXT-X-MEDIA`).
    pub(crate) bandwidth: u64,
}

/// Parses a playlist of either kind.
pub(crate) fn parse(text: &[u8]) -> anyhow::Result<Playlist> {
    m3u8_rs::parse_playlist_res(text).map_err(|e| {
        let e =
            e.map_input(|rest| String::from_utf8_lossy(&rest[..rest.len().min(60)]).into_owned());
        anyhow::anyhow!("not a valid HLS playlist: {e}")
    })
}

/// Parses a playlist that must be a media playlist.
pub(crate) fn parse_media(text: &[u8]) -> anyhow::Result<MediaPlaylist> {
    match parse(text)? {
        Playlist::MediaPlaylist(m) => Ok(m),
        Playlist::MasterPlaylist(_) => bail!("expected a media playlist, got a multivariant one"),
    }
}

/// The renditions of a multivariant playlist at `base`, deduplicated by URL.
pub(crate) fn renditions(master: &MasterPlaylist, base: &Url) -> anyhow::Result<Vec<PlaylistRef>> {
    let mut out: Vec<(PlaylistRef, String)> = Vec::new();
    let mut push = |uri: &str, kind: TrackKind, bandwidth: u64| -> anyhow::Result<()> {
        let url = base
            .join(uri)
            .with_context(|| format!("playlist URI `{uri}`"))?;
        if out.iter().any(|(r, _)| r.url == url) {
            return Ok(());
        }
        let written = uri.split(['?', '#']).next().unwrap_or(uri);
        let written = written.strip_suffix(".m3u8").unwrap_or(written).to_owned();
        let stem = written.rsplit('/').next().unwrap_or(&written).to_owned();
        out.push((
            PlaylistRef {
                url,
                id: stem,
                kind,
                bandwidth,
            },
            written,
        ));
        Ok(())
    };
    for v in master.variants.iter().filter(|v| !v.is_i_frame) {
        let audio_only = v.resolution.is_none()
            && v.codecs.as_deref().is_some_and(|c| {
                c.split(',').all(|c| {
                    let c = c.trim();
                    ["mp4a", "ac-3", "ec-3", "opus", "flac", "mp3"]
                        .iter()
                        .any(|a| c.starts_with(a))
                })
            });
        let kind = if audio_only {
            TrackKind::Audio
        } else {
            TrackKind::Video
        };
        push(&v.uri, kind, v.bandwidth)?;
    }
    for m in &master.alternatives {
        let Some(uri) = &m.uri else { continue };
        let kind = match m.media_type {
            AlternativeMediaType::Audio => TrackKind::Audio,
            AlternativeMediaType::Video => TrackKind::Video,
            _ => TrackKind::Other,
        };
        push(uri, kind, 0)?;
    }
    // File stems are the friendly ids; fall back to the written URI where they collide.
    let mut seen: HashMap<String, usize> = HashMap::new();
    for (r, _) in &out {
        *seen.entry(r.id.clone()).or_default() += 1;
    }
    Ok(out
        .into_iter()
        .map(|(mut r, written)| {
            if seen[&r.id] > 1 {
                r.id = written;
            }
            r
        })
        .collect())
}

/// The id of a media playlist given directly: its file stem.
pub(crate) fn stem_of(url: &Url) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .unwrap_or("media");
    last.strip_suffix(".m3u8").unwrap_or(last).to_owned()
}

/// Adds the init and media segments of `playlist` (at `url`) to rendition `rendition`.
pub(crate) fn add_media(
    catalog: &mut Catalog,
    rendition: usize,
    url: &Url,
    playlist: &MediaPlaylist,
) -> anyhow::Result<()> {
    // End of the last sub-range per URI, for EXT-X-BYTERANGE without an offset.
    let mut range_end: HashMap<Url, u64> = HashMap::new();
    for segment in &playlist.segments {
        if let Some(map) = &segment.map {
            let map_url = url
                .join(&map.uri)
                .with_context(|| format!("EXT-X-MAP URI `{}`", map.uri))?;
            let range = match &map.byte_range {
                Some(b) => Some(byte_range(b.length, b.offset.unwrap_or(0))?),
                None => None,
            };
            let index = catalog.add(Resource {
                url: map_url,
                range,
                kind: Kind::Init,
                rendition: Some(rendition),
                duration: 0.0,
            });
            let r = &mut catalog.renditions[rendition];
            if r.init.is_none() {
                r.init = Some(index);
            }
        }
        let segment_url = url
            .join(&segment.uri)
            .with_context(|| format!("segment URI `{}`", segment.uri))?;
        let range = match &segment.byte_range {
            Some(b) => {
                let offset = match b.offset {
                    Some(o) => o,
                    None => range_end.get(&segment_url).copied().unwrap_or(0),
                };
                range_end.insert(segment_url.clone(), offset + b.length);
                Some(byte_range(b.length, offset)?)
            }
            None => None,
        };
        let index = catalog.add(Resource {
            url: segment_url,
            range,
            kind: Kind::Segment,
            rendition: Some(rendition),
            duration: f64::from(segment.duration),
        });
        catalog.renditions[rendition].segments.push(index);
    }
    if catalog.renditions[rendition].segments.is_empty() {
        bail!("media playlist {url} lists no segments");
    }
    Ok(())
}

fn byte_range(len: u64, first: u64) -> anyhow::Result<ByteRange> {
    if len == 0 {
        bail!("empty EXT-X-BYTERANGE");
    }
    Ok(ByteRange { first, len })
}

/// A new, empty rendition from a playlist reference.
pub(crate) fn rendition(r: &PlaylistRef, playlist: Option<usize>) -> Rendition {
    Rendition {
        id: r.id.clone(),
        kind: r.kind,
        bandwidth: r.bandwidth,
        playlist,
        init: None,
        segments: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"audio\",DEFAULT=YES,URI=\"a2.m3u8\"
#EXT-X-STREAM-INF:BANDWIDTH=353880,CODECS=\"avc1.64000c,mp4a.40.2\",RESOLUTION=320x180,AUDIO=\"audio\"
v1.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=953880,CODECS=\"avc1.64000c,mp4a.40.2\",RESOLUTION=640x360,AUDIO=\"audio\"
hi/v2.m3u8?token=1
#EXT-X-STREAM-INF:BANDWIDTH=99000,CODECS=\"mp4a.40.2\"
aonly/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=99000,CODECS=\"mp4a.40.2\",AUDIO=\"other\"
aonly/index.m3u8
#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH=10000,URI=\"iframes.m3u8\"
";

    #[test]
    fn master_renditions() {
        let base = Url::parse("http://h/vod/x/hls/master.m3u8").unwrap();
        let Playlist::MasterPlaylist(m) = parse(MASTER.as_bytes()).unwrap() else {
            panic!("not a master")
        };
        let r = renditions(&m, &base).unwrap();
        let got: Vec<(&str, &str, TrackKind, u64)> = r
            .iter()
            .map(|r| (r.id.as_str(), r.url.as_str(), r.kind, r.bandwidth))
            .collect();
        assert_eq!(
            got,
            vec![
                ("v1", "http://h/vod/x/hls/v1.m3u8", TrackKind::Video, 353880),
                (
                    "v2",
                    "http://h/vod/x/hls/hi/v2.m3u8?token=1",
                    TrackKind::Video,
                    953880
                ),
                (
                    "index",
                    "http://h/vod/x/hls/aonly/index.m3u8",
                    TrackKind::Audio,
                    99000
                ),
                ("a2", "http://h/vod/x/hls/a2.m3u8", TrackKind::Audio, 0),
            ]
        );
    }

    #[test]
    fn colliding_stems_use_the_written_uri() {
        let text = "#EXTM3U
#EXT-X-STREAM-INF:BANDWIDTH=1
stream_0/index.m3u8
#EXT-X-STREAM-INF:BANDWIDTH=2
stream_1/index.m3u8
";
        let Playlist::MasterPlaylist(m) = parse(text.as_bytes()).unwrap() else {
            panic!("not a master")
        };
        let base = Url::parse("http://h/a/master.m3u8").unwrap();
        let ids: Vec<String> = renditions(&m, &base)
            .unwrap()
            .into_iter()
            .map(|r| r.id)
            .collect();
        assert_eq!(ids, ["stream_0/index", "stream_1/index"]);
    }

    #[test]
    fn byte_ranges_and_maps() {
        let text = "#EXTM3U
#EXT-X-VERSION:7
#EXT-X-TARGETDURATION:4
#EXT-X-MAP:URI=\"main.mp4\",BYTERANGE=\"720@0\"
#EXTINF:4.0,
#EXT-X-BYTERANGE:1000@720
main.mp4
#EXTINF:4.0,
#EXT-X-BYTERANGE:2000
main.mp4
#EXTINF:2.5,
#EXT-X-BYTERANGE:500
main.mp4
#EXTINF:4.0,
../other/seg.ts
#EXT-X-ENDLIST
";
        let url = Url::parse("http://h/vod/a/v.m3u8").unwrap();
        let mut catalog = Catalog::new(url.clone());
        let r = catalog.add_rendition(Rendition {
            id: "v".into(),
            kind: TrackKind::Video,
            bandwidth: 0,
            playlist: Some(0),
            init: None,
            segments: Vec::new(),
        });
        add_media(
            &mut catalog,
            r,
            &url,
            &parse_media(text.as_bytes()).unwrap(),
        )
        .unwrap();
        type Row = (Kind, String, Option<(u64, u64)>, f64);
        let got: Vec<Row> = catalog.resources[1..]
            .iter()
            .map(|r| {
                (
                    r.kind,
                    r.url.path().to_owned(),
                    r.range.map(|b| (b.first, b.len)),
                    r.duration,
                )
            })
            .collect();
        assert_eq!(
            got,
            vec![
                (Kind::Init, "/vod/a/main.mp4".into(), Some((0, 720)), 0.0),
                (
                    Kind::Segment,
                    "/vod/a/main.mp4".into(),
                    Some((720, 1000)),
                    4.0
                ),
                (
                    Kind::Segment,
                    "/vod/a/main.mp4".into(),
                    Some((1720, 2000)),
                    4.0
                ),
                (
                    Kind::Segment,
                    "/vod/a/main.mp4".into(),
                    Some((3720, 500)),
                    2.5
                ),
                (Kind::Segment, "/vod/other/seg.ts".into(), None, 4.0),
            ]
        );
        assert_eq!(catalog.renditions[r].init, Some(1));
        assert_eq!(catalog.renditions[r].segments, [2, 3, 4, 5]);
    }

    #[test]
    fn stems() {
        assert_eq!(
            stem_of(&Url::parse("http://h/x/index.m3u8").unwrap()),
            "index"
        );
    }
}
