//! An asset as viewers see it: renditions, their segments and their numbers.
//!
//! A presentation is built from one or more indexed [`Source`]s. Every audio
//! or video track becomes a *rendition* — a CMAF track with its own init
//! segment and media segments — which HLS and DASH both reference, so a CDN
//! caches one copy of each segment for both formats.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::fmp4::{self, MediaSegment};
use crate::lang::{is_language_tag, language_name, language_tag};
use crate::mp4::{Track, TrackKind};
use crate::plan::{self, PlanTrack, Segment};
use crate::source::Source;
use crate::subtitles::SubtitleTrack;
use crate::time::{Timescale, duration_seconds, saturating_u64, seconds};
use crate::timing::{Delay, TrackTiming};

/// Packaging settings that change what a presentation looks like.
#[derive(Clone, Debug, PartialEq)]
pub struct PackagingConfig {
    /// Target segment duration in seconds.
    pub target_duration: f64,
}

impl Default for PackagingConfig {
    fn default() -> Self {
        Self {
            target_duration: 4.0,
        }
    }
}

/// A named source of a presentation. The name must be URL-safe.
#[derive(Clone, Debug)]
pub struct NamedSource {
    /// Name used in rendition ids (the file stem).
    pub name: String,
    /// The indexed file.
    pub source: Arc<Source>,
    /// A BCP 47 language for its tracks whose `mdhd` says `und`.
    pub language: Option<String>,
}

impl NamedSource {
    /// A source named `name`, with no language of its own.
    pub fn new(name: impl Into<String>, source: Arc<Source>) -> Self {
        Self {
            name: name.into(),
            source,
            language: None,
        }
    }

    /// A source named after a file stem. A stem `base.lang` (`audio.fr`,
    /// `dub.pt-BR`) names the language of its tracks, as subtitle sidecars
    /// do; its rendition ids use `base-lang`. `None` when the stem is not
    /// `[A-Za-z0-9_-]{1,128}` with an optional `.lang`.
    pub fn from_file_stem(stem: &str, source: Arc<Source>) -> Option<Self> {
        let (base, language) = match stem.split_once('.') {
            Some((base, lang)) if is_language_tag(lang) => (base, Some(lang)),
            Some(_) => return None,
            None => (stem, None),
        };
        if !is_url_name(base) {
            return None;
        }
        Some(Self {
            name: match language {
                Some(l) => format!("{base}-{l}"),
                None => base.to_owned(),
            },
            source,
            language: language.map(str::to_owned),
        })
    }
}

fn is_url_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One CMAF track of a presentation.
#[derive(Clone, Debug)]
pub struct Rendition {
    /// URL-safe id, unique in the presentation (`v1`, `720p-v1`, ...).
    pub id: String,
    /// Index of the source in [`Presentation::sources`].
    pub source: usize,
    /// Index of the track in that source's movie.
    pub track: usize,
    /// Video or audio.
    pub kind: TrackKind,
    /// RFC 6381 codec string.
    pub codecs: String,
    /// How output timestamps derive from the source's.
    pub timing: TrackTiming,
    /// Media segments, numbered from 1 in URLs.
    pub segments: Vec<Segment>,
    /// Peak segment bit rate (bits/s), segment headers included.
    pub peak_bitrate: u64,
    /// Average bit rate over the whole rendition (bits/s).
    pub average_bitrate: u64,
    /// Frame rate as a fraction, for video.
    pub frame_rate: Option<(u32, u32)>,
    /// BCP 47 language: from `mdhd`, else from the source's file name.
    pub language: Option<String>,
    /// A name for players' track menus, unique among the presentation's
    /// audio renditions: the `hdlr` name, else the language's English
    /// name, else `audio`;
    /// repeats get ` 2`, ` 3`, ... Two tracks in one language stay two.
    pub name: String,
}

/// An asset ready to be packaged.
#[derive(Clone, Debug)]
pub struct Presentation {
    /// The sources, in the order given.
    pub sources: Vec<NamedSource>,
    /// Renditions: video ones by ascending bit rate, then audio ones in source order.
    pub renditions: Vec<Rendition>,
    /// Whether all video renditions share segment boundaries.
    pub aligned: bool,
    /// Presentation duration in seconds (the longest rendition).
    pub duration: f64,
    /// The settings it was built with.
    pub config: PackagingConfig,
    /// Subtitle tracks (sidecar WebVTT files, `tx3g` tracks).
    pub subtitles: Vec<SubtitleTrack>,
    /// Output time minus presentation time, the same for every track
    /// (see [`crate::timing`]).
    pub delay: Delay,
    /// How long before the presentation's start (its edit point) the first
    /// video frames present, as `(ticks ≤ 0, timescale)`: the frames a
    /// mid-GOP edit keeps for the decoder. `(0, _)` for most sources.
    pub preroll: (i64, Timescale),
}

impl Presentation {
    /// Builds the presentation of `sources`.
    pub fn new(sources: Vec<NamedSource>, config: PackagingConfig) -> Result<Self> {
        let mut candidates = candidates(&sources)?;
        let delay = share_delay(&mut candidates);
        // Video first so the planner's reference is a video track.
        candidates.sort_by_key(|c| c.track.kind);
        let (planned, aligned) = plan_segments(&candidates, config.target_duration);
        let mut renditions: Vec<Rendition> = candidates
            .iter()
            .zip(planned)
            .map(|(c, segments)| rendition(&sources, c, segments, &config))
            .collect();
        ladder_order(&mut renditions);
        unique_audio_names(&mut renditions);
        let duration = renditions
            .iter()
            .map(|r| {
                let scale = sources[r.source].source.movie.tracks[r.track].timescale;
                seconds(r.timing.end, scale)
            })
            .fold(0.0, f64::max);
        let preroll = preroll(&sources, &renditions);
        Ok(Presentation {
            sources,
            renditions,
            aligned,
            duration,
            config,
            subtitles: Vec::new(),
            delay,
            preroll,
        })
    }

    /// Adds subtitle tracks; ids that repeat get `-2`, `-3`, ... and names
    /// that repeat get ` 2`, ` 3`, ...
    pub fn with_subtitles(mut self, tracks: Vec<SubtitleTrack>) -> Self {
        for mut t in tracks {
            let taken = |p: &Self, id: &str| p.subtitles.iter().any(|s| s.id == id);
            if taken(&self, &t.id) {
                let base = t.id.clone();
                let mut n = 2;
                while taken(&self, &format!("{base}-{n}")) {
                    n += 1;
                }
                t.id = format!("{base}-{n}");
            }
            if self.subtitles.iter().any(|s| s.name == t.name) {
                let base = t.name.clone();
                let mut n = 2;
                while self
                    .subtitles
                    .iter()
                    .any(|s| s.name == format!("{base} {n}"))
                {
                    n += 1;
                }
                t.name = format!("{base} {n}");
            }
            self.subtitles.push(t);
        }
        self
    }

    /// Finds a subtitle track by id.
    pub fn subtitle(&self, id: &str) -> Option<&SubtitleTrack> {
        self.subtitles.iter().find(|t| t.id == id)
    }

    /// The windows of the WebVTT segments, in milliseconds: those of the
    /// first video rendition (else the first audio one), so text segments
    /// line up with media segments; the last one reaches the presentation's end.
    pub fn text_segments(&self) -> Vec<(u64, u64)> {
        let Some(r) = self
            .renditions
            .iter()
            .find(|r| r.kind == TrackKind::Video)
            .or(self.renditions.first())
        else {
            return Vec::new();
        };
        let scale = u64::from(self.timescale(r).get());
        let ms = |t: i64| (u64::try_from(t).unwrap_or(0) * 1000 + scale / 2) / scale;
        let mut out: Vec<(u64, u64)> = r
            .segments
            .iter()
            .map(|s| (ms(s.start), ms(s.end_time())))
            .collect();
        if let Some(first) = out.first_mut() {
            first.0 = 0;
        }
        let end = saturating_u64((self.duration * 1000.0).ceil());
        if let Some(last) = out.last_mut() {
            last.1 = last.1.max(end);
        }
        out
    }

    /// The track behind a rendition.
    pub fn track(&self, r: &Rendition) -> &Track {
        &self.sources[r.source].source.movie.tracks[r.track]
    }

    /// Finds a rendition by id.
    pub fn rendition(&self, id: &str) -> Option<&Rendition> {
        self.renditions.iter().find(|r| r.id == id)
    }

    /// Appends the init segment of `r` to `out`.
    pub fn init_segment(&self, r: &Rendition, out: &mut Vec<u8>) {
        fmp4::write_init(self.track(r), &r.timing, out);
    }

    /// Plans media segment `number` (1-based) of `r` into `out`.
    pub fn media_segment(&self, r: &Rendition, number: u32, out: &mut MediaSegment) -> Result<()> {
        let seg = number
            .checked_sub(1)
            .and_then(|i| r.segments.get(i as usize))
            .ok_or(Error::NotFound("segment number out of range"))?;
        fmp4::media_segment(self.track(r), &r.timing, seg, number, out);
        Ok(())
    }

    /// Timescale of a rendition's track.
    pub fn timescale(&self, r: &Rendition) -> Timescale {
        self.track(r).timescale
    }

    /// The output (media) time, in `r`'s timescale, where a player's
    /// timeline should begin: the first video frame's, so the decoder gets
    /// the whole first GOP (DASH `presentationTimeOffset`). The delay for
    /// most sources; earlier by the [`Self::preroll`] of a mid-GOP edit.
    pub fn origin(&self, r: &Rendition) -> i64 {
        let scale = self.timescale(r);
        self.delay.in_scale(scale) + crate::time::rescale(self.preroll.0, self.preroll.1, scale)
    }

    /// Seconds of video before the edit point that a player shows unless
    /// told to start later (HLS `EXT-X-START`): 0 for most sources.
    pub fn preroll_seconds(&self) -> f64 {
        -seconds(self.preroll.0, self.preroll.1)
    }

    /// [`Self::preroll_seconds`] in whole milliseconds.
    pub fn preroll_ms(&self) -> u64 {
        saturating_u64((self.preroll_seconds() * 1000.0).round())
    }

    /// The delay in 90 kHz ticks: where WebVTT's local time 0 is on the
    /// media's MPEG-2 clock (`X-TIMESTAMP-MAP`), before a TS offset.
    pub fn delay_90k(&self) -> u64 {
        let k90 = Timescale::new(90_000).expect("not zero");
        u64::try_from(crate::time::rescale(
            self.delay.ticks,
            self.delay.scale,
            k90,
        ))
        .unwrap_or(0)
    }

    /// A stable hash of everything the presentation's bytes depend on.
    pub fn fingerprint(&self) -> u64 {
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for s in &self.sources {
            h.update(s.name.as_bytes());
            h.update(&s.source.fingerprint.to_be_bytes());
        }
        h.update(&self.config.target_duration.to_bits().to_be_bytes());
        for t in &self.subtitles {
            t.hash(&mut h);
        }
        h.digest()
    }
}

/// A track that becomes a rendition, before its segments are planned.
struct Candidate<'a> {
    source: usize,
    track: &'a Track,
    track_index: usize,
    timing: TrackTiming,
}

/// The audio and video tracks of `sources` with samples, in source order;
/// an error for one whose codec the packager does not support.
fn candidates(sources: &[NamedSource]) -> Result<Vec<Candidate<'_>>> {
    let mut candidates: Vec<Candidate<'_>> = Vec::new();
    for (si, s) in sources.iter().enumerate() {
        let movie = &s.source.movie;
        for (ti, track) in movie.tracks.iter().enumerate() {
            if track.kind == TrackKind::Other || track.samples.is_empty() {
                continue;
            }
            if !track.sample_entry.is_supported() {
                return Err(Error::UnsupportedCodec {
                    source_name: s.name.clone(),
                    track: track.id,
                    fourcc: track.sample_entry.fourcc,
                });
            }
            if is_duplicate_audio(&candidates, track) {
                continue;
            }
            candidates.push(Candidate {
                source: si,
                track,
                track_index: ti,
                timing: TrackTiming::of(track, movie.timescale),
            });
        }
    }
    if candidates.is_empty() {
        return Err(Error::NoTracks);
    }
    Ok(candidates)
}

/// The same audio muxed into several rendition files is listed once.
fn is_duplicate_audio(candidates: &[Candidate<'_>], track: &Track) -> bool {
    track.kind == TrackKind::Audio
        && candidates.iter().any(|c| {
            c.track.kind == TrackKind::Audio
                && c.track.sample_entry.raw == track.sample_entry.raw
                && c.track.language == track.language
                && c.track.samples.sizes == track.samples.sizes
        })
}

/// One delay for every track, so all keep the source's A/V offsets and
/// every rung of a ladder presents at the same times: applied to every
/// candidate's timing, and returned.
fn share_delay(candidates: &mut [Candidate<'_>]) -> Delay {
    let scales: Vec<Timescale> = candidates.iter().map(|c| c.track.timescale).collect();
    let leads: Vec<(i64, Timescale)> = candidates
        .iter()
        .map(|c| (c.timing.lead(c.track), c.track.timescale))
        .collect();
    let delay = Delay::covering(&scales, &leads);
    for c in candidates {
        c.timing = c.timing.with_delay(delay, c.track.timescale);
    }
    delay
}

/// Every candidate's segments (video ones first in `candidates`), and
/// whether all video candidates share segment boundaries.
fn plan_segments(candidates: &[Candidate<'_>], target_duration: f64) -> (Vec<Vec<Segment>>, bool) {
    let plan_tracks: Vec<PlanTrack<'_>> = candidates
        .iter()
        .map(|c| PlanTrack {
            track: c.track,
            timing: c.timing,
        })
        .collect();
    let video: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].track.kind == TrackKind::Video)
        .collect();
    let planned = plan::plan(&plan_tracks, &video, target_duration);
    let aligned = video_aligned(candidates, &planned, &video);
    (planned, aligned)
}

/// Whether the video candidates `video` have as many segments as each
/// other, each lasting what the first's does (within half a frame).
fn video_aligned(candidates: &[Candidate<'_>], planned: &[Vec<Segment>], video: &[usize]) -> bool {
    video.len() <= 1 || {
        let n = planned[video[0]].len();
        video.iter().all(|&v| planned[v].len() == n)
            && (0..n).all(|k| {
                let d0 = duration_seconds(
                    planned[video[0]][k].duration,
                    candidates[video[0]].track.timescale,
                );
                video.iter().all(|&v| {
                    let d = duration_seconds(planned[v][k].duration, candidates[v].track.timescale);
                    (d - d0).abs() < 0.5 * frame_seconds(candidates[v].track).max(1e-3)
                })
            })
    }
}

/// The rendition of candidate `c` with its planned `segments`.
fn rendition(
    sources: &[NamedSource],
    c: &Candidate<'_>,
    segments: Vec<Segment>,
    config: &PackagingConfig,
) -> Rendition {
    let video = c.track.kind == TrackKind::Video;
    let kind_letter = if video { 'v' } else { 'a' };
    let id = if sources.len() == 1 {
        format!("{kind_letter}{}", c.track.id)
    } else {
        format!("{}-{kind_letter}{}", sources[c.source].name, c.track.id)
    };
    let codecs = c.track.sample_entry.rfc6381().unwrap_or_default();
    let (peak_bitrate, average_bitrate) =
        bitrates(c.track, &c.timing, &segments, config.target_duration);
    let frame_rate = video.then(|| frame_rate(c.track)).flatten();
    let language = language_tag(&c.track.language)
        .map(str::to_owned)
        .or_else(|| sources[c.source].language.clone());
    let name = c
        .track
        .name
        .clone()
        .or_else(|| language.as_deref().map(language_name))
        .unwrap_or_else(|| if video { "video" } else { "audio" }.to_owned());
    Rendition {
        id,
        language,
        name,
        source: c.source,
        track: c.track_index,
        kind: c.track.kind,
        codecs,
        timing: c.timing,
        segments,
        peak_bitrate,
        average_bitrate,
        frame_rate,
    }
}

/// Video by bit rate (the ladder's order); audio in source order (files
/// by name, tracks as stored): the first is the default.
fn ladder_order(renditions: &mut [Rendition]) {
    renditions.sort_by(|a, b| {
        a.kind.cmp(&b.kind).then_with(|| {
            if a.kind == TrackKind::Video {
                a.peak_bitrate.cmp(&b.peak_bitrate).then(a.id.cmp(&b.id))
            } else {
                std::cmp::Ordering::Equal
            }
        })
    });
}

/// Audio names are unique: players list them side by side. A repeat gets
/// ` 2`, ` 3`, ... (the first number no rendition has taken).
fn unique_audio_names(renditions: &mut [Rendition]) {
    for i in 0..renditions.len() {
        if renditions[i].kind != TrackKind::Audio {
            continue;
        }
        let same = renditions[..i]
            .iter()
            .filter(|r| r.kind == TrackKind::Audio && r.name == renditions[i].name)
            .count();
        if same > 0 {
            let base = renditions[i].name.clone();
            let mut n = same + 1;
            while renditions.iter().any(|r| r.name == format!("{base} {n}")) {
                n += 1;
            }
            renditions[i].name = format!("{base} {n}");
        }
    }
}

/// The earliest presentation time among the first segment's frames of the
/// video renditions, if before 0 (a mid-GOP edit point), else 0.
fn preroll(sources: &[NamedSource], renditions: &[Rendition]) -> (i64, Timescale) {
    let mut out = (0, Timescale::new(1).expect("one is not zero"));
    let mut earliest = 0.0;
    for r in renditions.iter().filter(|r| r.kind == TrackKind::Video) {
        let track = &sources[r.source].source.movie.tracks[r.track];
        let Some(seg) = r.segments.first() else {
            continue;
        };
        let t = (seg.first as usize..seg.end as usize)
            .map(|i| r.timing.presentation(track, i))
            .min()
            .unwrap_or(0);
        if seconds(t, track.timescale) < earliest {
            earliest = seconds(t, track.timescale);
            out = (t, track.timescale);
        }
    }
    out
}

fn frame_seconds(track: &Track) -> f64 {
    let s = &track.samples;
    if s.is_empty() {
        0.0
    } else {
        f64::from(s.duration(0)) / f64::from(track.timescale.get())
    }
}

fn bitrates(track: &Track, timing: &TrackTiming, segments: &[Segment], target: f64) -> (u64, u64) {
    let scale = track.timescale;
    let mut total_bytes = 0u64;
    let mut peak = 0f64;
    for (i, seg) in segments.iter().enumerate() {
        let bytes = fmp4::segment_len(track, timing, seg);
        total_bytes += bytes;
        let d = duration_seconds(seg.duration, scale);
        // A short last segment would overstate the peak; it is counted
        // only when it is all there is.
        let short_last = i + 1 == segments.len() && i > 0 && d < target / 2.0;
        if d > 0.0 && !short_last {
            peak = peak.max(bytes as f64 * 8.0 / d);
        }
    }
    let total = seconds((timing.end - timing.start).max(0), scale);
    let avg = if total > 0.0 {
        total_bytes as f64 * 8.0 / total
    } else {
        0.0
    };
    (
        saturating_u64(peak.max(avg).ceil()),
        saturating_u64(avg.ceil()),
    )
}

/// The most common sample duration as a frame rate, reduced.
fn frame_rate(track: &Track) -> Option<(u32, u32)> {
    let s = &track.samples;
    let mut counts: Vec<(u32, u32)> = Vec::new();
    for (_, d) in s.times_from(0).take(4096) {
        if let Some(c) = counts.iter_mut().find(|(x, _)| *x == d) {
            c.1 += 1;
        } else if counts.len() < 64 {
            counts.push((d, 1));
        }
    }
    let (delta, _) = counts
        .into_iter()
        .filter(|&(d, _)| d > 0)
        .max_by_key(|&(_, n)| n)?;
    let scale = track.timescale.get();
    let g = gcd(scale, delta);
    Some((scale / g, delta / g))
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}
