//! A static DASH MPD (ISO/IEC 23009-1, `urn:mpeg:dash:profile:isoff-live:2011`):
//! one `AdaptationSet` per content type (audio further split by language and
//! codec, which players cannot switch between seamlessly), `SegmentTemplate`
//! with `SegmentTimeline` (§5.3.9.6) at the `AdaptationSet` level when the
//! representations share their timeline, else per `Representation`.

use std::fmt::Write;

use super::ManifestOptions;
use super::hls::display_size;
use crate::clip::{Clip, Piece};
use crate::mp4::TrackKind;
use crate::presentation::{Presentation, Rendition};
use crate::subtitles::SubtitleTrack;
use crate::time::saturating_u64;
use crate::trick;

fn xml_escape(s: &str, out: &mut String) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
}

/// A clip's first keyframe time in ticks of `scale` (as a presentation
/// time, in range: it is a keyframe's).
fn clip_start(clip: &Clip, scale: u32) -> i64 {
    i64::try_from(clip.from_ms * u64::from(scale) / 1000).unwrap_or(i64::MAX)
}

fn duration(out: &mut String, seconds: f64) {
    let _ = write!(out, "PT{seconds:.3}S");
}

/// Writes the MPD of `p`.
pub fn mpd(p: &Presentation, opts: &ManifestOptions<'_>, out: &mut String) {
    let max_segment = opts
        .renditions(p)
        .flat_map(|r| {
            let scale = f64::from(p.timescale(r).get());
            r.segments.iter().map(move |s| s.duration as f64 / scale)
        })
        .fold(0.0, f64::max);
    out.push_str(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
         profiles=\"urn:mpeg:dash:profile:isoff-live:2011\" type=\"static\" mediaPresentationDuration=\"",
    );
    match opts.clip {
        Some(c) => duration(out, (c.to_ms - c.from_ms) as f64 / 1000.0),
        None => duration(out, p.duration),
    }
    out.push_str("\" minBufferTime=\"");
    duration(out, max_segment.max(1.0));
    out.push_str("\">\n  <Period id=\"0\" start=\"PT0S\">\n");

    // Adaptation sets: video together (one switching set); every audio
    // rendition on its own, as in the HLS `EXT-X-MEDIA` list, so two tracks
    // in one language stay two choices for the viewer.
    let video: Vec<&Rendition> = opts
        .renditions(p)
        .filter(|r| r.kind == TrackKind::Video)
        .collect();
    let mut id = 0;
    if !video.is_empty() {
        adaptation_set(p, id, &video, opts, out);
        id += 1;
        if trick_set(p, id, &video, opts, out) {
            id += 1;
        }
    }
    for r in opts.renditions(p).filter(|r| r.kind == TrackKind::Audio) {
        adaptation_set(p, id, &[r], opts, out);
        id += 1;
    }
    for t in &p.subtitles {
        text_set(p, id, t, opts, out);
        id += 1;
    }
    out.push_str("  </Period>\n</MPD>\n");
}

/// The adaptation set `id` of `members`: all the video renditions, or one
/// audio rendition.
fn adaptation_set(
    p: &Presentation,
    id: usize,
    members: &[&Rendition],
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let video = members[0].kind == TrackKind::Video;
    let shared = opts.clip.is_none() && share_timeline(p, members);
    adaptation_set_head(p, id, members, shared, out);
    if !video {
        audio_role(p, members[0], opts, out);
    }
    if shared {
        segment_template(p, members[0], opts, "      ", out);
    }
    for r in members {
        representation(p, r, shared, opts, out);
    }
    out.push_str("    </AdaptationSet>\n");
}

/// Whether `members` have one timescale and the same segments, so one
/// `SegmentTemplate` at the set's level describes them all.
fn share_timeline(p: &Presentation, members: &[&Rendition]) -> bool {
    members.windows(2).all(|w| {
        p.timescale(w[0]) == p.timescale(w[1])
            && w[0].segments.len() == w[1].segments.len()
            && w[0]
                .segments
                .iter()
                .zip(&w[1].segments)
                .all(|(a, b)| a.start == b.start && a.duration == b.duration)
    })
}

/// The `<AdaptationSet>` start tag: an audio set's language, a video
/// set's largest picture.
fn adaptation_set_head(
    p: &Presentation,
    id: usize,
    members: &[&Rendition],
    shared: bool,
    out: &mut String,
) {
    let video = members[0].kind == TrackKind::Video;
    let lang = if video {
        None
    } else {
        members[0].language.as_deref()
    };
    let (content, mime) = if video {
        ("video", "video/mp4")
    } else {
        ("audio", "audio/mp4")
    };
    let _ = write!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"{shared}\" startWithSAP=\"1\""
    );
    if let Some(l) = lang {
        out.push_str(" lang=\"");
        xml_escape(l, out);
        out.push('"');
    }
    if video {
        let max_w = members
            .iter()
            .map(|r| display_size(p, r).0)
            .max()
            .unwrap_or(0);
        let max_h = members
            .iter()
            .map(|r| display_size(p, r).1)
            .max()
            .unwrap_or(0);
        let _ = write!(out, " maxWidth=\"{max_w}\" maxHeight=\"{max_h}\"");
    }
    out.push_str(">\n");
}

/// An audio set's `Role` and `Label`: the first audio rendition is the
/// main one (the default, as in HLS).
fn audio_role(p: &Presentation, r: &Rendition, opts: &ManifestOptions<'_>, out: &mut String) {
    let first_audio = opts.renditions(p).find(|r| r.kind == TrackKind::Audio);
    let main = first_audio.is_some_and(|a| a.id == r.id);
    let role = if main { "main" } else { "alternate" };
    let _ = writeln!(
        out,
        "      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"{role}\"/>"
    );
    out.push_str("      <Label>");
    xml_escape(&r.name, out);
    out.push_str("</Label>\n");
}

/// The `<Representation>` of `r`; its own segments unless the set's
/// `SegmentTemplate` is `shared`.
fn representation(
    p: &Presentation,
    r: &Rendition,
    shared: bool,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let video = r.kind == TrackKind::Video;
    let track = p.track(r);
    let _ = write!(
        out,
        "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\"",
        r.id, r.codecs, r.peak_bitrate
    );
    if video {
        let (w, h) = display_size(p, r);
        let _ = write!(out, " width=\"{w}\" height=\"{h}\" sar=\"1:1\"");
        if let Some((num, den)) = r.frame_rate {
            if den == 1 {
                let _ = write!(out, " frameRate=\"{num}\"");
            } else {
                let _ = write!(out, " frameRate=\"{num}/{den}\"");
            }
        }
    } else {
        let rate = track.sample_entry.sample_rate;
        if rate > 0 {
            let _ = write!(out, " audioSamplingRate=\"{rate}\"");
        }
    }
    let channels = channel_configuration(track.sample_entry.channels);
    let needs_children = !shared || (!video && channels.is_some());
    if !needs_children {
        out.push_str("/>\n");
        return;
    }
    out.push_str(">\n");
    if let Some(channels) = channels.filter(|_| !video) {
        let _ = writeln!(
            out,
            "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:mpegB:cicp:ChannelConfiguration\" value=\"{channels}\"/>"
        );
    }
    if let Some(clip) = opts.clip {
        segment_list(p, r, clip, opts, out);
    } else if !shared {
        segment_template(p, r, opts, "        ", out);
    }
    out.push_str("      </Representation>\n");
}

/// The segments of `r` in `clip` as a `SegmentList` (ISO/IEC 23009-1
/// §5.3.9.3): the shared segments by number, the cut ones as spans; the
/// period starts at the clip's first keyframe (`presentationTimeOffset`).
fn segment_list(
    p: &Presentation,
    r: &Rendition,
    clip: &Clip,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let scale = p.timescale(r).get();
    let pieces = clip.pieces(p, r);
    // The clip's first keyframe time in this rendition's timescale (as an
    // output time), the same instant for every rendition, so they stay in
    // sync at the period start.
    let pto = r.timing.output(clip_start(clip, scale));
    let mut query = String::new();
    opts.suffix(&mut query);
    let query = query.replace('&', "&amp;");
    let _ = write!(
        out,
        "        <SegmentList timescale=\"{scale}\" presentationTimeOffset=\"{pto}\">\n          \
         <Initialization sourceURL=\"../cmaf/{}/init.mp4{query}\"/>\n          <SegmentTimeline>\n",
        r.id
    );
    timeline(
        pieces
            .iter()
            .map(|(_, s)| (r.timing.output(s.start), s.duration)),
        "            ",
        out,
    );
    out.push_str("          </SegmentTimeline>\n");
    for (piece, _) in &pieces {
        let _ = match piece {
            Piece::Shared(n) => writeln!(
                out,
                "          <SegmentURL media=\"../cmaf/{}/{n}.m4s{query}\"/>",
                r.id
            ),
            Piece::Span { from_ms, to_ms } => writeln!(
                out,
                "          <SegmentURL media=\"../cmaf/{}/t{from_ms}-{to_ms}.m4s{query}\"/>",
                r.id
            ),
        };
    }
    out.push_str("        </SegmentList>\n");
}

/// A subtitle track as a side-loaded WebVTT file (DASH-IF IOP §6.4.5).
fn text_set(
    p: &Presentation,
    id: usize,
    t: &SubtitleTrack,
    opts: &ManifestOptions<'_>,
    out: &mut String,
) {
    let _ = write!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"text\" mimeType=\"text/vtt\""
    );
    if let Some(l) = &t.language {
        out.push_str(" lang=\"");
        xml_escape(l, out);
        out.push('"');
    }
    out.push_str(">\n      <Role schemeIdUri=\"urn:mpeg:dash:role:2011\" value=\"subtitle\"/>\n      <Label>");
    xml_escape(&t.name, out);
    let mut full = String::new();
    t.write_full(0, &mut full);
    let bandwidth = if p.duration > 0.0 {
        saturating_u64((full.len() as f64 * 8.0 / p.duration).ceil()).max(1)
    } else {
        1
    };
    let mut query = String::new();
    opts.suffix(&mut query);
    let _ = write!(
        out,
        "</Label>\n      <Representation id=\"{}\" bandwidth=\"{bandwidth}\">\n        <BaseURL>../vtt/{}/",
        t.id, t.id
    );
    // A clip's period starts at its first keyframe: its cues, moved there.
    let _ = match opts.clip {
        None => write!(out, "all.vtt"),
        Some(c) => write!(out, "t{}-{}.vtt", c.from_ms, c.to_ms),
    };
    xml_escape(&query, out);
    out.push_str("</BaseURL>\n      </Representation>\n    </AdaptationSet>\n");
}

/// The trick-mode adaptation set of the video set `0` (DASH-IF IOP
/// §3.2.9): every keyframe as a segment of its own (in a clip, the clip's
/// keyframes, numbered as in the whole asset, so the URLs stay shared).
/// Returns whether there was anything to write.
fn trick_set(
    p: &Presentation,
    id: usize,
    video: &[&Rendition],
    opts: &ManifestOptions<'_>,
    out: &mut String,
) -> bool {
    // (rendition, its first keyframe's number, the keyframes)
    let keyed: Vec<(&Rendition, usize, Vec<trick::Keyframe>)> = video
        .iter()
        .map(|r| match opts.clip {
            None => (*r, 1, trick::keyframes(p, r)),
            Some(clip) => {
                let (first, kept) = trick::keyframes_in_clip(p, r, clip);
                (*r, first, kept)
            }
        })
        .filter(|(_, _, k)| !k.is_empty())
        .collect();
    if keyed.is_empty() {
        return false;
    }
    let max_w = keyed
        .iter()
        .map(|(r, _, _)| display_size(p, r).0)
        .max()
        .unwrap_or(0);
    let max_h = keyed
        .iter()
        .map(|(r, _, _)| display_size(p, r).1)
        .max()
        .unwrap_or(0);
    let _ = write!(
        out,
        "    <AdaptationSet id=\"{id}\" contentType=\"video\" mimeType=\"video/mp4\" segmentAlignment=\"true\" startWithSAP=\"1\" maxWidth=\"{max_w}\" maxHeight=\"{max_h}\">\n      \
         <EssentialProperty schemeIdUri=\"http://dashif.org/guidelines/trickmode\" value=\"0\"/>\n"
    );
    let mut query = String::new();
    opts.suffix(&mut query);
    let query = query.replace('&', "&amp;");
    for (r, first, keys) in &keyed {
        let scale = p.timescale(r).get();
        // The period starts where the main set's does: the first video
        // frame, or a clip's first keyframe.
        let pto = opts
            .clip
            .map_or(p.origin(r), |c| r.timing.output(clip_start(c, scale)));
        let pto = format!(" presentationTimeOffset=\"{pto}\"");
        let (peak, _) = trick::bitrates(p, keys, r);
        let (w, h) = display_size(p, r);
        // Keyframes per second of media: how much faster than real time
        // the set plays when every keyframe is shown for its frame time.
        let frames = p.track(r).samples.len() as f64;
        let count = if opts.clip.is_some() {
            trick::keyframes(p, r).len()
        } else {
            keys.len()
        };
        let rate = (frames / count as f64).round().max(1.0);
        let _ = write!(
            out,
            "      <Representation id=\"{}-trick\" codecs=\"{}\" bandwidth=\"{peak}\" width=\"{w}\" height=\"{h}\" sar=\"1:1\" maxPlayoutRate=\"{rate}\" codingDependency=\"false\">\n        \
             <SegmentTemplate timescale=\"{scale}\" initialization=\"../cmaf/{id}/init.mp4{query}\" media=\"../cmaf/{id}/k$Number$.m4s{query}\" startNumber=\"{first}\"{pto}>\n          \
             <SegmentTimeline>\n",
            r.id,
            r.codecs,
            id = r.id,
        );
        timeline(
            keys.iter().map(|k| (r.timing.output(k.start), k.duration)),
            "            ",
            out,
        );
        out.push_str(
            "          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n",
        );
    }
    out.push_str("    </AdaptationSet>\n");
    true
}

/// `S` elements for `(start, duration)` pairs, repeats folded into `r`.
fn timeline(items: impl Iterator<Item = (i64, u64)>, indent: &str, out: &mut String) {
    let items: Vec<(i64, u64)> = items.collect();
    let mut i = 0;
    while i < items.len() {
        let d = items[i].1;
        let mut repeat = 0;
        while i + repeat + 1 < items.len() && items[i + repeat + 1].1 == d {
            repeat += 1;
        }
        let _ = write!(out, "{indent}<S ");
        if i == 0 {
            let _ = write!(out, "t=\"{}\" ", items[0].0.max(0));
        }
        let _ = write!(out, "d=\"{d}\"");
        if repeat > 0 {
            let _ = write!(out, " r=\"{repeat}\"");
        }
        out.push_str("/>\n");
        i += repeat + 1;
    }
}

/// The ISO/IEC 23091-3 `ChannelConfiguration` for a channel count: the
/// same number for 1–6 channels, 6.1 and 7.1 for 7 and 8, and nothing for
/// layouts the count alone does not name.
fn channel_configuration(channels: u16) -> Option<u16> {
    match channels {
        1..=6 => Some(channels),
        7 => Some(11),
        8 => Some(12),
        _ => None,
    }
}

fn segment_template(
    p: &Presentation,
    r: &Rendition,
    opts: &ManifestOptions<'_>,
    indent: &str,
    out: &mut String,
) {
    let scale = p.timescale(r).get();
    let mut query = String::new();
    opts.suffix(&mut query);
    let query = query.replace('&', "&amp;");
    // Segment times are output (media) times; the period starts at the
    // first video frame's (see `Presentation::origin`).
    let pto = p.origin(r);
    let _ = write!(
        out,
        "{indent}<SegmentTemplate timescale=\"{scale}\" initialization=\"../cmaf/$RepresentationID$/init.mp4{query}\" \
         media=\"../cmaf/$RepresentationID$/$Number$.m4s{query}\" startNumber=\"1\" presentationTimeOffset=\"{pto}\">\n{indent}  <SegmentTimeline>\n"
    );
    let inner = format!("{indent}    ");
    timeline(
        r.segments
            .iter()
            .map(|s| (r.timing.output(s.start), s.duration)),
        &inner,
        out,
    );
    let _ = write!(
        out,
        "{indent}  </SegmentTimeline>\n{indent}</SegmentTemplate>\n"
    );
}
