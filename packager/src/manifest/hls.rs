//! HLS playlists for fMP4 segments (RFC 8216bis: §4.4.6.1 `EXT-X-MEDIA`,
//! §4.4.6.2 `EXT-X-STREAM-INF`, §4.4.4.5 `EXT-X-MAP`, §4.4.3.1 `EXT-X-TARGETDURATION`).

use std::fmt::Write;

use super::{
    ManifestOptions, vod_playlist_head, write_clip_pieces, write_clip_start, write_seconds,
};
use crate::clip::Clip;
use crate::codec::VideoRange;
use crate::mp4::TrackKind;
use crate::presentation::{Presentation, Rendition};
use crate::subtitles::SubtitleTrack;
use crate::trick;

/// Audio renditions grouped by codec: `(group id, codecs, members)`.
fn audio_groups<'p>(
    p: &'p Presentation,
    opts: &ManifestOptions<'_>,
) -> Vec<(String, &'p str, Vec<&'p Rendition>)> {
    let mut groups: Vec<(String, &str, Vec<&Rendition>)> = Vec::new();
    for r in opts.renditions(p).filter(|r| r.kind == TrackKind::Audio) {
        match groups.iter_mut().find(|g| g.1 == r.codecs) {
            Some(g) => g.2.push(r),
            None => groups.push((String::new(), &r.codecs, vec![r])),
        }
    }
    let many = groups.len() > 1;
    for (i, g) in groups.iter_mut().enumerate() {
        g.0 = if many {
            format!("audio-{}", i + 1)
        } else {
            "audio".to_owned()
        };
    }
    groups
}

/// Writes the multivariant playlist.
pub fn multivariant(p: &Presentation, opts: &ManifestOptions<'_>, out: &mut String) {
    out.push_str("#EXTM3U\n#EXT-X-VERSION:7\n#EXT-X-INDEPENDENT-SEGMENTS\n");
    let groups = audio_groups(p, opts);
    let video: Vec<&Rendition> = opts
        .renditions(p)
        .filter(|r| r.kind == TrackKind::Video)
        .collect();

    if video.is_empty() {
        // Audio only: every audio rendition is a variant of its own.
        for r in opts.renditions(p).filter(|r| r.kind == TrackKind::Audio) {
            let _ = write!(
                out,
                "\n#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}\"\n",
                r.peak_bitrate, r.average_bitrate, r.codecs
            );
            media_uri(r, opts, out);
        }
        return;
    }

    for (group, _, members) in &groups {
        out.push('\n');
        for (i, r) in members.iter().enumerate() {
            let track = p.track(r);
            let _ = write!(
                out,
                "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{group}\",NAME=\"{}\"",
                quoted(&r.name)
            );
            if let Some(l) = &r.language {
                let _ = write!(out, ",LANGUAGE=\"{l}\"");
            }
            let default = if i == 0 { "YES" } else { "NO" };
            let _ = write!(out, ",DEFAULT={default},AUTOSELECT=YES");
            let channels = track.sample_entry.channels;
            if channels > 0 {
                let _ = write!(out, ",CHANNELS=\"{channels}\"");
            }
            out.push_str(",URI=\"");
            media_uri_inline(r, opts, out);
            out.push_str("\"\n");
        }
    }

    // A clip's subtitle and I-frame playlists are clipped too.
    subtitle_media(p, opts, out);
    let subtitles = if p.subtitles.is_empty() {
        ""
    } else {
        ",SUBTITLES=\"subs\""
    };

    for r in &video {
        let track = p.track(r);
        let variants: Vec<Option<&(String, &str, Vec<&Rendition>)>> = if groups.is_empty() {
            vec![None]
        } else {
            groups.iter().map(Some).collect()
        };
        for g in variants {
            let audio_peak = g.map_or(0, |g| g.2.iter().map(|a| a.peak_bitrate).max().unwrap_or(0));
            let audio_avg = g.map_or(0, |g| {
                g.2.iter().map(|a| a.average_bitrate).max().unwrap_or(0)
            });
            let _ = write!(
                out,
                "\n#EXT-X-STREAM-INF:BANDWIDTH={},AVERAGE-BANDWIDTH={},CODECS=\"{}",
                r.peak_bitrate + audio_peak,
                r.average_bitrate + audio_avg,
                r.codecs
            );
            if let Some(g) = g {
                let _ = write!(out, ",{}", g.1);
            }
            out.push('"');
            let (w, h) = display_size(p, r);
            if w > 0 && h > 0 {
                let _ = write!(out, ",RESOLUTION={w}x{h}");
            }
            if let Some((num, den)) = r.frame_rate {
                let _ = write!(out, ",FRAME-RATE={:.3}", f64::from(num) / f64::from(den));
            }
            // RFC 8216bis §4.4.6.2: SDR is the default, so only PQ/HLG are said.
            let range = track.sample_entry.video_range;
            if range != VideoRange::Sdr {
                let _ = write!(out, ",VIDEO-RANGE={}", range.as_str());
            }
            if let Some(g) = g {
                let _ = write!(out, ",AUDIO=\"{}\"", g.0);
            }
            out.push_str(subtitles);
            out.push('\n');
            media_uri(r, opts, out);
        }
    }
    iframe_streams(p, &video, opts, out);
}

/// One `EXT-X-MEDIA:TYPE=SUBTITLES` per subtitle track, in group `subs`.
pub(crate) fn subtitle_media(p: &Presentation, opts: &ManifestOptions<'_>, out: &mut String) {
    if p.subtitles.is_empty() {
        return;
    }
    out.push('\n');
    for t in &p.subtitles {
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=SUBTITLES,GROUP-ID=\"subs\",NAME=\"{}\"",
            quoted(&t.name)
        );
        if let Some(l) = &t.language {
            let _ = write!(out, ",LANGUAGE=\"{l}\"");
        }
        let _ = write!(out, ",DEFAULT=NO,AUTOSELECT=YES,URI=\"{}.vtt.m3u8", t.id);
        opts.playlist_suffix(out);
        out.push_str("\"\n");
    }
}

/// Writes the media playlist of subtitle track `id`: one WebVTT segment per
/// media segment window of the presentation. A clip lists the windows it
/// overlaps, each lasting as long as the clip's piece of it (so they line
/// up with the clipped media playlists), as the shared segments: a cue
/// outside the clip is never reached, and `X-TIMESTAMP-MAP` places the
/// rest, because clipped media keeps the source's media times.
pub fn subtitle_media_playlist(
    p: &Presentation,
    track: &SubtitleTrack,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let windows: Vec<(usize, u64, u64)> = p
        .text_segments()
        .into_iter()
        .enumerate()
        .filter_map(|(i, (a, b))| match opts.clip {
            None => Some((i, a, b)),
            Some(c) => {
                let (a, b) = (a.max(c.from_ms), if c.to_end { b } else { b.min(c.to_ms) });
                (a < b).then_some((i, a, b))
            }
        })
        .collect();
    vod_playlist_head(out, 7, windows.iter().map(|(_, a, b)| b - a), 1000);
    if let Some(c) = opts.clip {
        super::write_clip_start(out, c);
    }
    for (i, a, b) in &windows {
        out.push_str("#EXTINF:");
        write_seconds(out, b - a, 1000);
        let _ = write!(out, ",\n../vtt/{}/{}.vtt", track.id, i + 1);
        opts.suffix(out);
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
}

/// Writes one `EXT-X-I-FRAME-STREAM-INF` per video rendition (§4.4.6.3).
fn iframe_streams(
    p: &Presentation,
    video: &[&Rendition],
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let mut any = false;
    for r in video {
        let keys = trick::keyframes(p, r);
        if keys.is_empty() {
            continue;
        }
        if !any {
            out.push('\n');
            any = true;
        }
        let (peak, avg) = trick::bitrates(p, &keys, r);
        let _ = write!(
            out,
            "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS=\"{}\"",
            r.codecs
        );
        let (w, h) = display_size(p, r);
        if w > 0 && h > 0 {
            let _ = write!(out, ",RESOLUTION={w}x{h}");
        }
        let range = p.track(r).sample_entry.video_range;
        if range != VideoRange::Sdr {
            let _ = write!(out, ",VIDEO-RANGE={}", range.as_str());
        }
        out.push_str(",URI=\"");
        out.push_str(&r.id);
        out.push_str(".iframes.m3u8");
        opts.playlist_suffix(out);
        out.push_str("\"\n");
    }
}

/// Writes the I-frame playlist of video rendition `r` (§4.4.3.6): every
/// keyframe as a one-sample fragment, lasting until the next keyframe, at
/// its `EXT-X-BYTERANGE` (§4.4.4.2) of the trick resource `iframes.m4s`
/// (see [`crate::trick`]).
pub fn iframes(p: &Presentation, r: &Rendition, opts: &ManifestOptions<'_>, out: &mut String) {
    let scale = p.timescale(r).get();
    // A clip's keyframes, the last one lasting to the clip's end.
    let keys = match opts.clip {
        None => trick::keyframes(p, r),
        Some(clip) => trick::keyframes_in_clip(p, r, clip).1,
    };
    vod_playlist_head(out, 7, keys.iter().map(|k| k.duration), scale);
    let _ = write!(
        out,
        "#EXT-X-I-FRAMES-ONLY\n#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"../cmaf/{}/init.mp4",
        r.id
    );
    opts.suffix(out);
    out.push_str("\"\n");
    for k in &keys {
        out.push_str("#EXTINF:");
        write_seconds(out, k.duration, scale);
        let _ = write!(
            out,
            ",\n#EXT-X-BYTERANGE:{}@{}\n../cmaf/{}/iframes.m4s",
            k.size, k.offset, r.id
        );
        opts.suffix(out);
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
}

/// A quoted-string attribute value (RFC 8216bis §4.2): no `"`, CR or LF.
fn quoted(s: &str) -> String {
    s.chars()
        .map(|c| {
            if matches!(c, '"' | '\r' | '\n') {
                '\''
            } else {
                c
            }
        })
        .collect()
}

/// Display size of a video rendition: `tkhd` dimensions, else the coded ones.
/// The size of the frames a decoder outputs: the sample entry's (the coded
/// picture, cropped), which HLS `RESOLUTION` and DASH `width`/`height`
/// both give. The track header's size is a display size, scaled by the
/// pixel aspect ratio (853.33 for 854 pixels of aspect 1280:1281), so it
/// is only the fallback when the sample entry says nothing.
pub(crate) fn display_size(p: &Presentation, r: &Rendition) -> (u32, u32) {
    let t = p.track(r);
    let (w, h) = (
        u32::from(t.sample_entry.width),
        u32::from(t.sample_entry.height),
    );
    if w > 0 && h > 0 {
        (w, h)
    } else {
        (t.width, t.height)
    }
}

fn media_uri_inline(r: &Rendition, opts: &ManifestOptions<'_>, out: &mut String) {
    out.push_str(&r.id);
    out.push_str(".m3u8");
    opts.playlist_suffix(out);
}

/// `EXT-X-START` (RFC 8216bis §4.4.2.2) past the video frames a mid-GOP
/// edit keeps for the decoder (the first segment of video rendition `r`
/// starts with them), so a player that honours it (hls.js) starts at the
/// edit point. Audio playlists start at the edit point already. In media
/// playlists only: ffmpeg 5.1 takes an `EXT-X-START` in a multivariant
/// playlist for one more media playlist.
pub(super) fn write_preroll_start(p: &Presentation, r: &Rendition, out: &mut String) {
    let preroll = r
        .segments
        .first()
        .filter(|_| r.kind == TrackKind::Video)
        .map_or(0.0, |s| -crate::time::seconds(s.start, p.timescale(r)));
    if preroll > 0.0 {
        let _ = writeln!(out, "#EXT-X-START:TIME-OFFSET={preroll:.3},PRECISE=YES");
    }
}

fn media_uri(r: &Rendition, opts: &ManifestOptions<'_>, out: &mut String) {
    media_uri_inline(r, opts, out);
    out.push('\n');
}

/// Writes the media playlist of rendition `r` clipped to `clip`: the
/// regular segments it covers whole, spans of the ones it cuts, and an
/// `EXT-X-START` at the requested start (the first segment begins at the
/// keyframe before it).
fn clipped_media(
    p: &Presentation,
    r: &Rendition,
    clip: &Clip,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let scale = p.timescale(r).get();
    let pieces = clip.pieces(p, r);
    vod_playlist_head(out, 7, pieces.iter().map(|(_, s)| s.duration), scale);
    out.push_str("#EXT-X-INDEPENDENT-SEGMENTS\n");
    write_clip_start(out, clip);
    let _ = write!(out, "#EXT-X-MAP:URI=\"../cmaf/{}/init.mp4", r.id);
    opts.suffix(out);
    out.push_str("\"\n");
    write_clip_pieces(out, &pieces, ("cmaf", &r.id, "m4s"), scale, opts);
}

/// Writes the media playlist of rendition `r`.
pub fn media(p: &Presentation, r: &Rendition, opts: &ManifestOptions<'_>, out: &mut String) {
    if let Some(clip) = opts.clip {
        clipped_media(p, r, clip, opts, out);
        return;
    }
    let scale = p.timescale(r).get();
    vod_playlist_head(out, 7, r.segments.iter().map(|s| s.duration), scale);
    write_preroll_start(p, r, out);
    let _ = write!(
        out,
        "#EXT-X-INDEPENDENT-SEGMENTS\n#EXT-X-MAP:URI=\"../cmaf/{}/init.mp4",
        r.id
    );
    opts.suffix(out);
    out.push_str("\"\n");
    for (i, s) in r.segments.iter().enumerate() {
        out.push_str("#EXTINF:");
        write_seconds(out, s.duration, scale);
        let _ = write!(out, ",\n../cmaf/{}/{}.m4s", r.id, i + 1);
        opts.suffix(out);
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
}
