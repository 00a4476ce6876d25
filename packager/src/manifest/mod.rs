//! HLS and DASH manifest text, written by typed writers of our own.
//!
//! Both formats point at the same CMAF segment URLs, relative to the
//! manifest: `../cmaf/{rendition}/init.mp4` and `../cmaf/{rendition}/{n}.m4s`.
//! Trick play is the exception the formats force (see [`crate::trick`]):
//! HLS I-frame playlists are byte ranges of `../cmaf/{rendition}/iframes.m4s`,
//! the DASH trick-mode set the same fragments as `k{n}.m4s`. MPEG-TS
//! playlists ([`hls_ts`]) point at `../ts/{program}/{n}.ts`.

pub mod dash;
pub mod filter;
pub mod hls;
pub mod hls_ts;

pub use filter::Filter;

use crate::presentation::{Presentation, Rendition};

use std::fmt::Write;

/// What child URIs carry besides their path.
#[derive(Clone, Copy, Debug, Default)]
pub struct ManifestOptions<'a> {
    /// A query string (without `?`) appended to every child URI, so that
    /// per-request credentials survive relative URL resolution.
    pub query: Option<&'a str>,
    /// Keeps a subset of the renditions (multivariant playlists and MPDs).
    pub filter: Option<&'a Filter>,
    /// Makes every manifest describe part of the asset.
    pub clip: Option<&'a crate::clip::Clip>,
}

impl<'a> ManifestOptions<'a> {
    /// The renditions the manifest lists, in order.
    pub(crate) fn renditions<'p>(
        self,
        p: &'p Presentation,
    ) -> impl Iterator<Item = &'p Rendition> + use<'p, 'a> {
        let filter = self.filter;
        p.renditions
            .iter()
            .filter(move |r| filter.is_none_or(|f| f.keeps(p, r)))
    }

    pub(crate) fn suffix(&self, out: &mut String) {
        if let Some(q) = self.query.filter(|q| !q.is_empty()) {
            out.push('?');
            out.push_str(q);
        }
    }

    /// The query of a media playlist URI in a multivariant playlist: the
    /// clip's (so the media playlist is clipped too), then the carried one.
    pub(crate) fn playlist_suffix(&self, out: &mut String) {
        match self.clip {
            Some(c) => {
                out.push('?');
                out.push_str(&c.query());
                if let Some(q) = self.query.filter(|q| !q.is_empty()) {
                    out.push('&');
                    out.push_str(q);
                }
            }
            None => self.suffix(out),
        }
    }
}

/// Writes the head of a VOD media playlist, `#EXTM3U` through
/// `#EXT-X-PLAYLIST-TYPE:VOD`, for segments lasting `durations` ticks of
/// `timescale`: `EXT-X-TARGETDURATION` is the smallest valid one, the
/// longest duration rounded (RFC 8216bis §4.4.3.1), at least 1.
pub(crate) fn vod_playlist_head(
    out: &mut String,
    version: u8,
    durations: impl Iterator<Item = u64>,
    timescale: u32,
) {
    let scale = u64::from(timescale.max(1));
    let target = durations
        .map(|d| (d + scale / 2) / scale)
        .max()
        .unwrap_or(1)
        .max(1);
    let _ = write!(
        out,
        "#EXTM3U\n#EXT-X-VERSION:{version}\n#EXT-X-TARGETDURATION:{target}\n\
         #EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-PLAYLIST-TYPE:VOD\n"
    );
}

/// Writes the `EXT-X-START` of a clipped media playlist (RFC 8216bis
/// §4.4.2.2): where the requested start is, after the keyframe the clip
/// begins at.
pub(crate) fn write_clip_start(out: &mut String, clip: &crate::clip::Clip) {
    out.push_str("#EXT-X-START:TIME-OFFSET=");
    write_seconds(out, clip.start_ms.saturating_sub(clip.from_ms), 1000);
    out.push_str(",PRECISE=YES\n");
}

/// Writes a clipped media playlist's segments and `EXT-X-ENDLIST`: whole
/// regular segments as `../{dir}/{id}/{n}.{ext}`, cut ones as
/// `../{dir}/{id}/t{from}-{to}.{ext}`.
pub(crate) fn write_clip_pieces(
    out: &mut String,
    pieces: &[(crate::clip::Piece, crate::plan::Segment)],
    (dir, id, ext): (&str, &str, &str),
    scale: u32,
    opts: &ManifestOptions<'_>,
) {
    use crate::clip::Piece;
    for (piece, s) in pieces {
        out.push_str("#EXTINF:");
        write_seconds(out, s.duration, scale);
        let _ = match piece {
            Piece::Shared(n) => write!(out, ",\n../{dir}/{id}/{n}.{ext}"),
            Piece::Span { from_ms, to_ms } => {
                write!(out, ",\n../{dir}/{id}/t{from_ms}-{to_ms}.{ext}")
            }
        };
        opts.suffix(out);
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
}

/// Writes seconds with at least three decimals and at most six, trimming
/// trailing zeros beyond the third: `4.000`, `4.004`, `0.100100` → `0.1001`.
/// `ticks` is any integer up to 64 bits, signed or not.
pub(crate) fn write_seconds(out: &mut String, ticks: impl Into<i128>, timescale: u32) {
    let micros = (ticks.into() * 1_000_000 + i128::from(timescale) / 2) / i128::from(timescale);
    let (whole, mut frac) = (micros / 1_000_000, (micros % 1_000_000).abs());
    let mut digits = 6;
    while digits > 3 && frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    let _ = write!(out, "{whole}.{frac:0digits$}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_are_exact_and_short() {
        let s = |t, ts| {
            let mut o = String::new();
            write_seconds(&mut o, t, ts);
            o
        };
        assert_eq!(s(4 * 90000, 90000), "4.000");
        assert_eq!(s(120_120, 30000), "4.004");
        assert_eq!(s(3003, 30000), "0.1001");
        assert_eq!(s(1, 3), "0.333333");
        assert_eq!(s(1024, 48000), "0.021333");
    }
}
