//! HLS playlists for MPEG-TS segments (`/hls-ts/`), compatible with
//! protocol version 3 clients: every variant is one muxed program (a video
//! rendition with the first audio rendition), so a client that knows
//! nothing of `EXT-X-MEDIA` plays picture and sound. Further audio
//! renditions are audio-only programs listed as `EXT-X-MEDIA` (the muxed
//! one without a URI, as RFC 8216bis §4.4.6.1.1 has it); I-frame
//! playlists are byte ranges of the muxed segments.
//!
//! Manifest filters and clips work as on the fMP4 playlists: a filter
//! keeps renditions and the programs are made of what it keeps
//! ([`programs_where`]); a clip lists the regular segments it covers whole
//! and spans of the one or two it cuts into ([`crate::ts::TsSpan`]), and no
//! I-frame or subtitle playlists.
//!
//! Renditions TS cannot carry (AV1, Opus) are left out; see [`crate::ts::supports`].

use std::fmt::Write;

use super::{
    ManifestOptions, vod_playlist_head, write_clip_pieces, write_clip_start, write_seconds,
};
use crate::clip::{Clip, Piece};
use crate::mp4::TrackKind;
use crate::plan::Segment;
use crate::presentation::{Presentation, Rendition};
use crate::subtitles::SubtitleTrack;
use crate::time::{peak_and_average, saturating_u64};
use crate::ts::{self, TS_TIME_OFFSET, TsLayout, TsProgram};

/// One TS program: what a TS media playlist and its segments carry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TsVariant {
    /// URL name: `{video}.{audio}`, `{video}` or `{audio}`.
    pub name: String,
    /// Index of the video rendition in `Presentation::renditions`.
    pub video: Option<usize>,
    /// Index of the audio rendition.
    pub audio: Option<usize>,
}

impl TsVariant {
    /// The program as the TS writer takes it.
    pub fn program<'p>(&self, p: &'p Presentation) -> TsProgram<'p> {
        TsProgram {
            video: self.video.map(|i| &p.renditions[i]),
            audio: self.audio.map(|i| &p.renditions[i]),
        }
    }

    /// The rendition whose segments set the program's segment times.
    fn timeline<'p>(&self, p: &'p Presentation) -> &'p Rendition {
        &p.renditions[self
            .video
            .or(self.audio)
            .expect("a program has a rendition")]
    }
}

/// The TS programs of `p`: one muxed program per video rendition, then one
/// audio-only program per further audio rendition. Empty when TS can
/// carry none of the renditions.
pub fn programs(p: &Presentation) -> Vec<TsVariant> {
    programs_where(p, |_| true)
}

/// The TS programs of the renditions `keep` keeps (a manifest filter), made
/// as [`programs`] makes them: each kept video muxed with the first kept
/// audio, the other kept audio audio-only. So a filter that drops the first
/// audio makes muxed programs of another pairing, `{video}.{audio}`: names
/// as deterministic as the unfiltered ones, shared by every filter that
/// makes them (see [`addressable`]).
pub fn programs_where(p: &Presentation, keep: impl Fn(&Rendition) -> bool) -> Vec<TsVariant> {
    let keep = &keep;
    let kinds = |kind| {
        (0..p.renditions.len()).filter(move |&i| {
            let r = &p.renditions[i];
            r.kind == kind && ts::supports(p, r) && keep(r)
        })
    };
    let audio: Vec<usize> = kinds(TrackKind::Audio).collect();
    let mut out: Vec<TsVariant> = kinds(TrackKind::Video)
        .map(|v| TsVariant {
            name: match audio.first() {
                Some(&a) => format!("{}.{}", p.renditions[v].id, p.renditions[a].id),
                None => p.renditions[v].id.clone(),
            },
            video: Some(v),
            audio: audio.first().copied(),
        })
        .collect();
    let muxed = usize::from(!out.is_empty());
    for &a in audio.iter().skip(muxed) {
        out.push(TsVariant {
            name: p.renditions[a].id.clone(),
            video: None,
            audio: Some(a),
        });
    }
    out
}

/// Every program a TS URL can name: [`programs`] first, then every other
/// video and audio pairing (what [`programs_where`] can make; its
/// audio-only programs are all among the unfiltered ones).
pub fn addressable(p: &Presentation) -> Vec<TsVariant> {
    let mut out = programs(p);
    let carried = |kind| {
        (0..p.renditions.len())
            .filter(move |&i| p.renditions[i].kind == kind && ts::supports(p, &p.renditions[i]))
    };
    for v in carried(TrackKind::Video) {
        for a in carried(TrackKind::Audio) {
            let name = format!("{}.{}", p.renditions[v].id, p.renditions[a].id);
            if !out.iter().any(|x| x.name == name) {
                out.push(TsVariant {
                    name,
                    video: Some(v),
                    audio: Some(a),
                });
            }
        }
    }
    out
}

/// Peak and average bit rate of a program's segments.
fn bitrates(p: &Presentation, v: &TsVariant, layout: &TsLayout) -> (u64, u64) {
    let r = v.timeline(p);
    let scale = f64::from(p.timescale(r).get());
    let n = r.segments.len();
    peak_and_average(r.segments.iter().enumerate().map(|(i, s)| {
        let d = s.duration as f64 / scale;
        // A short last segment would overstate the peak.
        let short_last = i + 1 == n && i > 0 && d < p.config.target_duration / 2.0;
        (layout.size(i).unwrap_or(0), d, !short_last)
    }))
}

/// Peak and average bit rate of what a client fetches when it plays
/// program `v` with the alternate audio program `alt`: both, segment by
/// segment (the muxed program still carries its own audio).
fn combined_bitrates(
    p: &Presentation,
    (v, layout): (&TsVariant, &TsLayout),
    alt: &TsLayout,
) -> (u64, u64) {
    let r = v.timeline(p);
    let scale = f64::from(p.timescale(r).get());
    let n = r.segments.len();
    peak_and_average(r.segments.iter().enumerate().map(|(i, s)| {
        let d = s.duration as f64 / scale;
        let short_last = i + 1 == n && i > 0 && d < p.config.target_duration / 2.0;
        let bytes = layout.size(i).unwrap_or(0) + alt.size(i).unwrap_or(0);
        (bytes, d, !short_last)
    }))
}

/// Writes the multivariant playlist; `layouts` align with `programs`.
pub fn multivariant(
    p: &Presentation,
    programs: &[TsVariant],
    layouts: &[&TsLayout],
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    out.push_str("#EXTM3U\n#EXT-X-VERSION:3\n");
    let muxed: Vec<(&TsVariant, &TsLayout)> = programs
        .iter()
        .zip(layouts.iter().copied())
        .filter(|(v, _)| v.video.is_some())
        .collect();
    let audio_only: Vec<&TsVariant> = programs.iter().filter(|v| v.video.is_none()).collect();
    if muxed.is_empty() {
        audio_variants(p, programs, layouts, opts, out);
        return;
    }
    // Alternate audio: the muxed rendition first, without a URI.
    let first_audio = muxed[0].0.audio.map(|a| &p.renditions[a]);
    let alternates: Vec<&Rendition> = first_audio
        .into_iter()
        .chain(
            audio_only
                .iter()
                .filter_map(|v| v.audio.map(|a| &p.renditions[a])),
        )
        .collect();
    let mut audio_codecs: Vec<&str> = Vec::new();
    for r in &alternates {
        if !audio_codecs.contains(&r.codecs.as_str()) {
            audio_codecs.push(&r.codecs);
        }
    }
    let group = !audio_only.is_empty();
    if group {
        out.push('\n');
        audio_media(p, &alternates, opts, out);
    }
    // A clip's subtitle and I-frame playlists are clipped too, as the
    // fMP4 one's are.
    super::hls::subtitle_media(p, opts, out);
    for &(v, layout) in &muxed {
        let (mut peak, mut avg) = bitrates(p, v, layout);
        // With an alternate audio rendition selected, a client fetches the
        // muxed program (its audio included) and the audio-only one: the
        // variant's bit rate covers the largest such pair (RFC 8216bis
        // §4.4.6.2: every rendition combination the variant allows).
        for a in &audio_only {
            if let Some(ai) = programs.iter().position(|x| x == *a) {
                let (ap, aa) = combined_bitrates(p, (v, layout), layouts[ai]);
                peak = peak.max(ap);
                avg = avg.max(aa);
            }
        }
        muxed_stream_inf(p, v, (peak, avg), &audio_codecs, group, opts, out);
    }
    out.push('\n');
    for (v, layout) in &muxed {
        iframe_stream_inf(p, v, layout, opts, out);
    }
}

/// The variants of a presentation without video: one per audio program.
fn audio_variants(
    p: &Presentation,
    programs: &[TsVariant],
    layouts: &[&TsLayout],
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    for (v, layout) in programs.iter().zip(layouts) {
        let (peak, avg) = bitrates(p, v, layout);
        let r = v.timeline(p);
        let _ = write!(
            out,
            "\n#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS=\"{}\"\n{}.m3u8",
            r.codecs, v.name
        );
        opts.playlist_suffix(out);
        out.push('\n');
    }
}

/// The `EXT-X-MEDIA` audio group: `alternates[0]` is the muxed program's
/// audio (the default, no URI), the rest audio-only programs.
fn audio_media(
    p: &Presentation,
    alternates: &[&Rendition],
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    for (i, r) in alternates.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"audio\",NAME=\"{}\"",
            r.name.replace('"', "'")
        );
        if let Some(l) = &r.language {
            let _ = write!(out, ",LANGUAGE=\"{l}\"");
        }
        let default = if i == 0 { "YES" } else { "NO" };
        let _ = write!(out, ",DEFAULT={default},AUTOSELECT=YES");
        let channels = p.track(r).sample_entry.channels;
        if channels > 0 {
            let _ = write!(out, ",CHANNELS=\"{channels}\"");
        }
        if i > 0 {
            let _ = write!(out, ",URI=\"{}.m3u8", r.id);
            opts.playlist_suffix(out);
            out.push('"');
        }
        out.push('\n');
    }
}

/// The `EXT-X-STREAM-INF` of muxed program `v`, with bit rates
/// `(peak, avg)`, its video codec then `audio_codecs`, and the audio
/// group when there is one.
fn muxed_stream_inf(
    p: &Presentation,
    v: &TsVariant,
    (peak, avg): (u64, u64),
    audio_codecs: &[&str],
    group: bool,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let r = &p.renditions[v.video.expect("muxed")];
    let mut codecs = r.codecs.clone();
    for c in audio_codecs {
        codecs.push(',');
        codecs.push_str(c);
    }
    let _ = write!(
        out,
        "\n#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS=\"{codecs}\""
    );
    let (w, h) = super::hls::display_size(p, r);
    if w > 0 && h > 0 {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    if let Some((num, den)) = r.frame_rate {
        let _ = write!(out, ",FRAME-RATE={:.3}", f64::from(num) / f64::from(den));
    }
    if group {
        out.push_str(",AUDIO=\"audio\"");
    }
    if !p.subtitles.is_empty() {
        out.push_str(",SUBTITLES=\"subs\"");
    }
    let _ = write!(out, "\n{}.m3u8", v.name);
    opts.playlist_suffix(out);
    out.push('\n');
}

/// The `EXT-X-I-FRAME-STREAM-INF` of muxed program `v`.
fn iframe_stream_inf(
    p: &Presentation,
    v: &TsVariant,
    layout: &TsLayout,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let r = &p.renditions[v.video.expect("muxed")];
    let (peak, avg) = iframe_bitrates(layout);
    let _ = write!(
        out,
        "#EXT-X-I-FRAME-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={avg},CODECS=\"{}\"",
        r.codecs
    );
    let (w, h) = super::hls::display_size(p, r);
    if w > 0 && h > 0 {
        let _ = write!(out, ",RESOLUTION={w}x{h}");
    }
    let _ = write!(out, ",URI=\"{}.iframes.m3u8", v.name);
    opts.playlist_suffix(out);
    out.push_str("\"\n");
}

fn iframe_bitrates(layout: &TsLayout) -> (u64, u64) {
    peak_and_average(
        (0..layout.segment_count())
            .flat_map(|i| layout.keyframes(i).unwrap_or(&[]))
            .map(|k| (k.len, k.duration, true)),
    )
}

/// Writes the media playlist of program `v`: clipped when `opts` has a
/// clip (the segments it covers whole, spans `t{from}-{to}.ts` of the ones
/// it cuts, and an `EXT-X-START` at the requested start).
pub fn media(p: &Presentation, v: &TsVariant, opts: &ManifestOptions<'_>, out: &mut String) {
    if let Some(clip) = opts.clip {
        clipped_media(p, v, clip, opts, out);
        return;
    }
    let r = v.timeline(p);
    let scale = p.timescale(r).get();
    vod_playlist_head(out, 3, r.segments.iter().map(|s| s.duration), scale);
    super::hls::write_preroll_start(p, r, out);
    for (i, s) in r.segments.iter().enumerate() {
        out.push_str("#EXTINF:");
        write_seconds(out, s.duration, scale);
        let _ = write!(out, ",\n../ts/{}/{}.ts", v.name, i + 1);
        opts.suffix(out);
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
}

fn clipped_media(
    p: &Presentation,
    v: &TsVariant,
    clip: &Clip,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let r = v.timeline(p);
    let scale = p.timescale(r).get();
    let prog = v.program(p);
    let pieces: Vec<(Piece, Segment)> = clip
        .pieces(p, r)
        .into_iter()
        .filter(|(piece, _)| match *piece {
            Piece::Shared(_) => true,
            Piece::Span { from_ms, to_ms } => ts::span_exists(p, prog, from_ms, to_ms),
        })
        .collect();
    vod_playlist_head(out, 3, pieces.iter().map(|(_, s)| s.duration), scale);
    write_clip_start(out, clip);
    write_clip_pieces(out, &pieces, ("ts", &v.name, "ts"), scale, opts);
}

/// Writes the I-frame playlist of muxed program `v`: every keyframe as a
/// byte range of a regular segment.
///
/// Every segment starts with its PAT and PMT, which are the resource's
/// Media Initialization Section, and RFC 8216bis §4.4.3.6 says an I-frame
/// range must not include that: a segment's first keyframe is listed from
/// just after them (`@376`, as Apple's segmenter does), and an
/// `EXT-X-MAP` (version 5) names the first segment's PAT and PMT, which
/// are those of every segment but for continuity counters, so a client
/// that fetches any one range has the tables. Later keyframes of a segment
/// keep the PAT and PMT the muxer puts before each of them.
pub fn iframes(
    p: &Presentation,
    layout: &TsLayout,
    v: &TsVariant,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    const PSI: u64 = 2 * ts::PACKET_SIZE as u64;
    let r = v.timeline(p);
    let ms = |secs: f64| saturating_u64((secs * 1000.0).round());
    // A clip's keyframes, the last one lasting to the clip's end; they
    // stay ranges of the regular segments (shared, cacheable).
    let keys: Vec<(usize, ts::KeyframeRange)> = (0..layout.segment_count())
        .flat_map(|i| {
            layout
                .keyframes(i)
                .unwrap_or(&[])
                .iter()
                .map(move |k| (i, *k))
        })
        .filter_map(|(i, mut k)| match opts.clip {
            None => Some((i, k)),
            Some(c) => c.keyframe(p, r, ms(k.time), ms(k.duration)).map(|d| {
                if d < ms(k.duration) {
                    k.duration = d as f64 / 1000.0;
                }
                (i, k)
            }),
        })
        .collect();
    let micros = |secs: f64| saturating_u64((secs * 1_000_000.0).round());
    vod_playlist_head(
        out,
        5,
        keys.iter().map(|(_, k)| micros(k.duration)),
        1_000_000,
    );
    out.push_str("#EXT-X-I-FRAMES-ONLY\n");
    if !keys.is_empty() {
        let _ = write!(out, "#EXT-X-MAP:URI=\"../ts/{}/1.ts", v.name);
        opts.suffix(out);
        let _ = writeln!(out, "\",BYTERANGE=\"{PSI}@0\"");
    }
    for (i, k) in keys {
        let (offset, len) = if k.offset == 0 {
            (PSI, k.len - PSI)
        } else {
            (k.offset, k.len)
        };
        out.push_str("#EXTINF:");
        write_seconds(out, micros(k.duration), 1_000_000);
        let _ = write!(
            out,
            ",\n#EXT-X-BYTERANGE:{len}@{offset}\n../ts/{}/{}.ts",
            v.name,
            i + 1
        );
        opts.suffix(out);
        out.push('\n');
    }
    out.push_str("#EXT-X-ENDLIST\n");
}

/// Writes the TS-timeline subtitle playlist of `track`: the same windows
/// as the fMP4 one, segments mapped to `MPEGTS:126000`.
pub fn subtitle_media_playlist(
    p: &Presentation,
    track: &SubtitleTrack,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let mut s = String::new();
    super::hls::subtitle_media_playlist(p, track, opts, &mut s);
    let from = format!("../vtt/{}/", track.id);
    let to = format!("../vtt/{}/ts-", track.id);
    out.push_str(&s.replace(&from, &to));
}

/// The `X-TIMESTAMP-MAP` MPEG-2 time of TS subtitle segments.
pub const SUBTITLE_MPEGTS: u64 = TS_TIME_OFFSET;
