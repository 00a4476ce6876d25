//! Low-latency HLS for a live stream (RFC 8216bis, draft 16): the
//! multivariant playlist, media playlists with parts, delta updates, and
//! the blocking-reload decision.
//!
//! Media playlist tags, in order: `EXT-X-VERSION` (§4.4.1.2; 9, for
//! `EXT-X-SKIP`), `EXT-X-TARGETDURATION` (§4.4.3.1), `EXT-X-SERVER-CONTROL`
//! (§4.4.3.8), `EXT-X-PART-INF` (§4.4.3.7), `EXT-X-MEDIA-SEQUENCE`
//! (§4.4.3.2), `EXT-X-DISCONTINUITY-SEQUENCE` (§4.4.3.3), `EXT-X-SKIP`
//! (§4.4.5.2), `EXT-X-MAP` (§4.4.4.5), then per segment
//! `EXT-X-DISCONTINUITY` (§4.4.4.3), `EXT-X-PROGRAM-DATE-TIME` (§4.4.4.6),
//! `EXT-X-PART` (§4.4.4.9), `EXT-X-GAP` (§4.4.4.7), `EXTINF` (§4.4.4.1) and
//! the URI; at the end `EXT-X-PRELOAD-HINT` (§4.4.5.3),
//! `EXT-X-RENDITION-REPORT` (§4.4.5.4) and, once finished, `EXT-X-ENDLIST`.

use std::fmt::Write;

use super::date::format_unix_ms;
use super::stream::{LiveStream, Track};
use super::uri::LiveUri;
use super::window::{Segment, part_number};
use super::{TrackId, ticks};
use crate::error::{Error, Result};
use crate::manifest::write_seconds;
use crate::mp4::TrackKind;
use crate::time::{saturating_i64, saturating_u64};

/// How a media playlist is asked for.
#[derive(Clone, Copy, Debug, Default)]
pub struct HlsOptions<'a> {
    /// `_HLS_skip=YES`: a delta update (§6.2.5.1) that replaces the
    /// segments older than `CAN-SKIP-UNTIL` by `EXT-X-SKIP`.
    pub skip: bool,
    /// A query string (without `?`) carried into every child URI, e.g. a
    /// playback token.
    pub query: Option<&'a str>,
}

/// What to do with a playlist request carrying `_HLS_msn` / `_HLS_part`
/// (RFC 8216bis §6.2.5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reload {
    /// Answer now with the current playlist.
    Ready,
    /// Hold the request until a [`super::Event`] for the track, then ask again.
    Wait,
    /// Answer 400: `_HLS_part` without `_HLS_msn`, an MSN more than two
    /// beyond the last segment, or a part beyond the Advance Part Limit.
    BadRequest,
}

/// The answer to a part request; see [`LiveStream::part_lookup`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PartLookup {
    /// The part's bytes (`moof` + `mdat`).
    Ready(std::sync::Arc<[u8]>),
    /// Not yet published, but expected soon.
    Wait,
    /// Not in the window and not coming (404).
    NotFound,
}

/// Playlist-time durations in the track's ticks: how far from the end of
/// the playlist each segment ends (sum of the durations after it).
fn ages(segments: &[&Segment], open: u64) -> Vec<u64> {
    let mut after = open;
    let mut out = vec![0; segments.len()];
    for (i, s) in segments.iter().enumerate().rev() {
        out[i] = after;
        after += s.duration;
    }
    out
}

fn suffix(out: &mut String, query: Option<&str>) {
    if let Some(q) = query.filter(|q| !q.is_empty()) {
        out.push('?');
        out.push_str(q);
    }
}

impl LiveStream {
    /// `PART-HOLD-BACK` (§4.4.3.8): three part targets, as recommended (at
    /// least two are required).
    pub fn part_hold_back(&self) -> f64 {
        3.0 * self.cfg.part_target.as_secs_f64()
    }

    /// `HOLD-BACK` (§4.4.3.8): three target durations (the minimum).
    pub fn hold_back(&self) -> u64 {
        3 * self.target_duration
    }

    /// `CAN-SKIP-UNTIL` (§4.4.3.8): six target durations (the minimum).
    pub fn can_skip_until(&self) -> u64 {
        6 * self.target_duration
    }

    fn track_ref(&self, track: TrackId) -> Result<&Track> {
        self.tracks.get(track.0).ok_or(Error::UnknownTrack(track.0))
    }

    /// Writes the multivariant playlist: one `EXT-X-STREAM-INF` per video
    /// track with an `EXT-X-MEDIA` audio group per audio codec (§4.4.6.1,
    /// §4.4.6.2); without video, one variant per audio track.
    pub fn hls_multivariant(&self, query: Option<&str>, out: &mut String) {
        out.push_str("#EXTM3U\n#EXT-X-VERSION:9\n");
        let audio: Vec<&Track> = self
            .tracks
            .iter()
            .filter(|t| t.kind == TrackKind::Audio)
            .collect();
        let video: Vec<&Track> = self
            .tracks
            .iter()
            .filter(|t| t.kind == TrackKind::Video)
            .collect();
        if video.is_empty() {
            for t in &audio {
                let _ = write!(
                    out,
                    "\n#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}\"\n",
                    self.bandwidth(t),
                    t.entry.rfc6381().unwrap_or_default()
                );
                media_uri(t, query, out);
                out.push('\n');
            }
            return;
        }
        let groups = audio_groups(&audio);
        for (gi, group) in groups.iter().enumerate() {
            out.push('\n');
            audio_media(&group_id(&groups, gi), &group.1, query, out);
        }
        for v in &video {
            if groups.is_empty() {
                self.video_variant(v, None, query, out);
            }
            for gi in 0..groups.len() {
                self.video_variant(v, Some((&groups, gi)), query, out);
            }
        }
    }

    /// The `EXT-X-STREAM-INF` of video track `v` with audio group `group`
    /// (the groups and an index in them), if any.
    fn video_variant(
        &self,
        v: &Track,
        group: Option<(&[AudioGroup<'_>], usize)>,
        query: Option<&str>,
        out: &mut String,
    ) {
        let audio_bw = group.map_or(0, |(groups, g)| {
            groups[g]
                .1
                .iter()
                .map(|a| self.bandwidth(a))
                .max()
                .unwrap_or(0)
        });
        let _ = write!(
            out,
            "\n#EXT-X-STREAM-INF:BANDWIDTH={},CODECS=\"{}",
            self.bandwidth(v) + audio_bw,
            v.entry.rfc6381().unwrap_or_default()
        );
        if let Some((groups, g)) = group {
            let _ = write!(out, ",{}", groups[g].0);
        }
        out.push('"');
        if v.entry.width > 0 && v.entry.height > 0 {
            let _ = write!(out, ",RESOLUTION={}x{}", v.entry.width, v.entry.height);
        }
        if v.entry.video_range != crate::codec::VideoRange::Sdr {
            let _ = write!(out, ",VIDEO-RANGE={}", v.entry.video_range.as_str());
        }
        if let Some((groups, g)) = group {
            let _ = write!(out, ",AUDIO=\"{}\"", group_id(groups, g));
        }
        out.push('\n');
        media_uri(v, query, out);
        out.push('\n');
    }

    /// The configured bit rate, else the highest measured segment bit rate
    /// in the window, at least 1 (bits/s).
    pub(crate) fn bandwidth(&self, t: &Track) -> u64 {
        if let Some(b) = t.bandwidth {
            return b.max(1);
        }
        let scale = f64::from(t.scale.get());
        t.window
            .segments
            .iter()
            .filter(|s| s.complete && !s.gap && s.duration > 0)
            .map(|s| saturating_u64((s.bytes() as f64 * 8.0 / (s.duration as f64 / scale)).ceil()))
            .max()
            .unwrap_or(1)
            .max(1)
    }

    /// Writes the media playlist of `track`.
    pub fn hls_media_playlist(
        &self,
        track: TrackId,
        opts: &HlsOptions<'_>,
        out: &mut String,
    ) -> Result<()> {
        let t = self.track_ref(track)?;
        self.media_playlist_head(out);
        self.media_playlist_segments(t, opts, out);
        if !self.ended {
            self.preload_hint(t, opts.query, out);
        }
        self.rendition_reports(track, opts.query, out);
        if self.ended {
            out.push_str("#EXT-X-ENDLIST\n");
        }
        Ok(())
    }

    /// `#EXTM3U` through `EXT-X-PART-INF`: the tags that do not depend on
    /// the track.
    fn media_playlist_head(&self, out: &mut String) {
        let td = self.target_duration;
        let _ = write!(
            out,
            "#EXTM3U\n#EXT-X-VERSION:9\n#EXT-X-TARGETDURATION:{td}\n\
             #EXT-X-SERVER-CONTROL:CAN-BLOCK-RELOAD=YES,CAN-SKIP-UNTIL={}.0,PART-HOLD-BACK=",
            self.can_skip_until()
        );
        write_seconds(
            out,
            saturating_i64((self.part_hold_back() * 1e6).round()),
            1_000_000,
        );
        let _ = write!(
            out,
            ",HOLD-BACK={}.0\n#EXT-X-PART-INF:PART-TARGET=",
            self.hold_back()
        );
        let part_target = i64::try_from(self.cfg.part_target.as_micros()).unwrap_or(i64::MAX);
        write_seconds(out, part_target, 1_000_000);
        out.push('\n');
    }

    /// `EXT-X-MEDIA-SEQUENCE` through the open segment's parts: the
    /// segments of `t` (those older than `CAN-SKIP-UNTIL` as an
    /// `EXT-X-SKIP` in a delta update), with the parts of the recent ones.
    fn media_playlist_segments(&self, t: &Track, opts: &HlsOptions<'_>, out: &mut String) {
        let scale = t.scale.get();
        let q = opts.query;
        let complete: Vec<&Segment> = t.window.segments.iter().filter(|s| s.complete).collect();
        let open = t.window.open();
        let open_duration = open.map_or(0, |s| s.duration);
        let first = t.window.segments.front();
        let _ = write!(
            out,
            "#EXT-X-MEDIA-SEQUENCE:{}\n#EXT-X-DISCONTINUITY-SEQUENCE:{}\n",
            first.map_or(self.first_msn, |s| s.msn),
            first.map_or_else(|| self.current_disc_seq(), |s| s.disc_seq)
        );
        let ages = ages(&complete, open_duration);
        let skip_until = u64::from(scale) * self.can_skip_until();
        let skipped = if opts.skip {
            ages.iter().take_while(|&&a| a >= skip_until).count()
        } else {
            0
        };
        if skipped > 0 {
            let _ = writeln!(out, "#EXT-X-SKIP:SKIPPED-SEGMENTS={skipped}");
        }
        // The configuration of the first segment listed (after a skip);
        // a later one that differs gets its own map after its discontinuity.
        let first_listed = complete.get(skipped).copied().or(open);
        let mut listed = Listed {
            // The segment before the first listed one (a skipped one) decides
            // whether that one starts with a discontinuity.
            disc: skipped
                .checked_sub(1)
                .and_then(|i| complete.get(i))
                .map(|s| s.disc_seq),
            generation: first_listed.map_or(self.generation, |s| self.generation_of(s.disc_seq)),
        };
        map_tag(t, listed.generation, q, out);

        // Parts are listed for the segments ending within three target
        // durations of the end of the playlist (§4.4.4.9 allows removing older ones).
        let parts_window = 3 * self.target_duration * u64::from(scale);
        for (s, &age) in complete.iter().zip(&ages).skip(skipped) {
            self.segment_head(t, s, &mut listed, q, out);
            if age < parts_window && !s.gap {
                self.parts(t, s, q, out);
            }
            segment_entry(t, s, q, out);
        }
        if let Some(s) = open.filter(|s| !s.parts.is_empty()) {
            self.segment_head(t, s, &mut listed, q, out);
            self.parts(t, s, q, out);
        }
    }

    /// `EXT-X-PRELOAD-HINT` (§4.4.5.3): the part after the last one.
    fn preload_hint(&self, t: &Track, q: Option<&str>, out: &mut String) {
        let (hint_msn, hint_part) = match (t.window.open(), t.window.last()) {
            (Some(s), _) => (s.msn, part_number(s.parts.len())),
            (None, Some(l)) => (l.msn + 1, 0),
            (None, None) => (self.first_msn, 0),
        };
        let _ = write!(
            out,
            "#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"{}",
            LiveUri::Part {
                rendition: t.name.clone(),
                msn: hint_msn,
                part: hint_part
            }
        );
        suffix(out, q);
        out.push_str("\"\n");
    }

    /// `EXT-X-RENDITION-REPORT` (§4.4.5.4) of every track but `track`.
    fn rendition_reports(&self, track: TrackId, q: Option<&str>, out: &mut String) {
        for (i, other) in self.tracks.iter().enumerate() {
            if i == track.0 {
                continue;
            }
            let Some((msn, part)) = last_listed_part(other) else {
                continue;
            };
            out.push_str("#EXT-X-RENDITION-REPORT:URI=\"");
            media_uri(other, q, out);
            let _ = writeln!(out, "\",LAST-MSN={msn},LAST-PART={part}");
        }
    }

    /// `EXT-X-DISCONTINUITY` (and an `EXT-X-MAP` if the configuration
    /// changed) where `s` starts a new discontinuity sequence, then its
    /// `EXT-X-PROGRAM-DATE-TIME`.
    fn segment_head(
        &self,
        t: &Track,
        s: &Segment,
        listed: &mut Listed,
        q: Option<&str>,
        out: &mut String,
    ) {
        if listed.disc.is_some_and(|d| d != s.disc_seq) {
            out.push_str("#EXT-X-DISCONTINUITY\n");
            let g = self.generation_of(s.disc_seq);
            if g != listed.generation {
                map_tag(t, g, q, out);
                listed.generation = g;
            }
        }
        listed.disc = Some(s.disc_seq);
        out.push_str("#EXT-X-PROGRAM-DATE-TIME:");
        // Output time plus the period's wall-clock offset, rounded once.
        let ns = i128::from(s.start) * 1_000_000_000 / i128::from(t.scale.get())
            + i128::from(self.wall_ns(s.disc_seq));
        let ms = i64::try_from((ns + 500_000).div_euclid(1_000_000)).unwrap_or(i64::MAX);
        format_unix_ms(self.epoch_unix_ms.saturating_add(ms), out);
        out.push('\n');
    }

    fn parts(&self, t: &Track, s: &Segment, q: Option<&str>, out: &mut String) {
        for (i, p) in s.parts.iter().enumerate() {
            out.push_str("#EXT-X-PART:DURATION=");
            write_seconds(out, p.duration, t.scale.get());
            let _ = write!(
                out,
                ",URI=\"{}",
                LiveUri::Part {
                    rendition: t.name.clone(),
                    msn: s.msn,
                    part: part_number(i)
                }
            );
            suffix(out, q);
            out.push('"');
            if p.independent {
                out.push_str(",INDEPENDENT=YES");
            }
            out.push('\n');
        }
    }

    /// The blocking-reload decision for a media playlist request with
    /// `_HLS_msn=msn` and `_HLS_part=part` (§6.2.5.2): the request is
    /// satisfied once the playlist holds segment `msn` complete (no part
    /// asked) or part `part` of segment `msn` or a later part.
    pub fn hls_reload(&self, track: TrackId, msn: Option<u64>, part: Option<u32>) -> Reload {
        let Some(t) = self.tracks.get(track.0) else {
            return Reload::BadRequest;
        };
        let Some(m) = msn else {
            return if part.is_some() {
                Reload::BadRequest
            } else {
                Reload::Ready
            };
        };
        let w = &t.window;
        // The last segment in the playlist (the open one counts once it has a part).
        let last = w
            .open()
            .filter(|s| !s.parts.is_empty())
            .map(|s| s.msn)
            .or(w.last_complete());
        let last_or_before = last.map_or(i128::from(self.first_msn) - 1, i128::from);
        if i128::from(m) > last_or_before + 2 {
            return Reload::BadRequest;
        }
        if self.ended {
            return Reload::Ready;
        }
        let Some(p) = part else {
            return if w.last_complete().is_some_and(|c| c >= m) {
                Reload::Ready
            } else {
                Reload::Wait
            };
        };
        let lp = w.last_part();
        if lp.is_some_and(|lp| lp >= (m, p)) {
            return Reload::Ready;
        }
        // The Advance Part Limit: 3 / PART-TARGET below one second, else 3.
        let pt = self.cfg.part_target.as_secs_f64();
        let limit = if pt < 1.0 {
            saturating_u64(3.0 / pt)
        } else {
            3
        };
        let ahead = match lp {
            Some((lm, lpart)) if lm == m => u64::from(p).saturating_sub(u64::from(lpart)),
            Some((lm, _)) if m == lm + 1 => u64::from(p) + 1,
            _ => u64::from(p),
        };
        if ahead > limit {
            Reload::BadRequest
        } else {
            Reload::Wait
        }
    }

    /// A part request, typically for the `EXT-X-PRELOAD-HINT` URI, which
    /// clients ask for before it exists (§6.2.5.3: the server holds it):
    /// the bytes, [`PartLookup::Wait`] for a part that will come (hold the
    /// request until the next [`super::Event::PartReady`] of the track), or
    /// [`PartLookup::NotFound`] for one that never will or is long gone.
    pub fn part_lookup(&self, track: TrackId, msn: u64, part: u32) -> PartLookup {
        let Some(t) = self.tracks.get(track.0) else {
            return PartLookup::NotFound;
        };
        if let Some(seg) = t.window.get(msn) {
            if let Some(p) = seg.parts.get(part as usize) {
                return PartLookup::Ready(p.bytes.clone());
            }
            if seg.complete {
                return PartLookup::NotFound;
            }
        }
        match self.hls_reload(track, Some(msn), Some(part)) {
            Reload::Wait => PartLookup::Wait,
            Reload::Ready | Reload::BadRequest => PartLookup::NotFound,
        }
    }

    /// Ticks of the part target in `track`'s timescale (tests and callers
    /// checking `EXT-X-PART` durations).
    pub fn part_target_ticks(&self, track: TrackId) -> Option<u64> {
        self.tracks
            .get(track.0)
            .map(|t| ticks(self.cfg.part_target, t.scale.get()))
    }
}

/// What a media playlist listed last, for the segment after it.
struct Listed {
    /// The discontinuity sequence of the previous segment.
    disc: Option<u64>,
    /// The configuration the last `EXT-X-MAP` names.
    generation: u32,
}

/// A complete segment's `EXT-X-GAP`, `EXTINF` and URI.
fn segment_entry(t: &Track, s: &Segment, q: Option<&str>, out: &mut String) {
    if s.gap {
        out.push_str("#EXT-X-GAP\n");
    }
    out.push_str("#EXTINF:");
    write_seconds(out, s.duration, t.scale.get());
    out.push_str(",\n");
    let _ = write!(
        out,
        "{}",
        LiveUri::Segment {
            rendition: t.name.clone(),
            msn: s.msn
        }
    );
    suffix(out, q);
    out.push('\n');
}

/// Audio tracks grouped by codec string: one `EXT-X-MEDIA` group each.
type AudioGroup<'a> = (String, Vec<&'a Track>);

fn audio_groups<'a>(audio: &[&'a Track]) -> Vec<AudioGroup<'a>> {
    let mut groups: Vec<AudioGroup<'a>> = Vec::new();
    for t in audio {
        let codecs = t.entry.rfc6381().unwrap_or_default();
        match groups.iter_mut().find(|g| g.0 == codecs) {
            Some(g) => g.1.push(t),
            None => groups.push((codecs, vec![t])),
        }
    }
    groups
}

/// `GROUP-ID` of group `i`: `audio`, or `audio-{i + 1}` when there are several.
fn group_id(groups: &[AudioGroup<'_>], i: usize) -> String {
    if groups.len() > 1 {
        format!("audio-{}", i + 1)
    } else {
        "audio".to_owned()
    }
}

/// The `EXT-X-MEDIA` of every track of an audio group; the first is the default.
fn audio_media(group_id: &str, members: &[&Track], query: Option<&str>, out: &mut String) {
    for (i, t) in members.iter().enumerate() {
        let _ = write!(
            out,
            "#EXT-X-MEDIA:TYPE=AUDIO,GROUP-ID=\"{group_id}\",NAME=\"{}\"",
            t.name
        );
        if let Some(l) = &t.language {
            let clean: String = l
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            let _ = write!(out, ",LANGUAGE=\"{clean}\"");
        }
        let default = if i == 0 { "YES" } else { "NO" };
        let _ = write!(out, ",DEFAULT={default},AUTOSELECT=YES");
        if t.entry.channels > 0 {
            let _ = write!(out, ",CHANNELS=\"{}\"", t.entry.channels);
        }
        out.push_str(",URI=\"");
        media_uri(t, query, out);
        out.push_str("\"\n");
    }
}

/// `LAST-MSN` and `LAST-PART` of a rendition (§4.4.5.4): its last
/// segment, in progress or complete, and that segment's last part; `None`
/// when that segment is a gap or has no part yet.
fn last_listed_part(t: &Track) -> Option<(u64, u32)> {
    let last = t.window.last()?;
    let last = if last.parts.is_empty() && !last.complete {
        t.window.segments.iter().rev().nth(1)?
    } else {
        last
    };
    (!last.parts.is_empty()).then(|| (last.msn, part_number(last.parts.len() - 1)))
}

fn media_uri(t: &Track, q: Option<&str>, out: &mut String) {
    let _ = write!(
        out,
        "{}",
        LiveUri::MediaPlaylist {
            rendition: t.name.clone()
        }
    );
    suffix(out, q);
}

/// `EXT-X-MAP` (RFC 8216bis §4.4.4.5) naming the init segment of
/// configuration `generation`.
fn map_tag(t: &Track, generation: u32, q: Option<&str>, out: &mut String) {
    let _ = write!(
        out,
        "#EXT-X-MAP:URI=\"{}",
        LiveUri::Init {
            rendition: t.name.clone(),
            generation,
        }
    );
    suffix(out, q);
    out.push_str("\"\n");
}
