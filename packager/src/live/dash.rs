//! A dynamic DASH MPD for a live stream (ISO/IEC 23009-1 5th ed.;
//! low-latency per DASH-IF IOP "Low-latency Modes for DASH").
//!
//! - `MPD@type="dynamic"` (§5.3.1.2), `availabilityStartTime` = output time
//!   0 (the wall-clock time given to [`LiveStream::new`]), `publishTime` =
//!   `now`, `minimumUpdatePeriod` = the segment target,
//!   `timeShiftBufferDepth` = the DVR window; once the stream is finished,
//!   no `minimumUpdatePeriod` but a `mediaPresentationDuration`.
//! - `ServiceDescription` with `Latency@target` and `PlaybackRate`
//!   (Annex K) for catch-up.
//! - One `Period` per publisher session (discontinuity sequence number):
//!   a reconnect is a new Period whose `start` is the wall-clock time of
//!   its first segment (its output time plus the time the publisher was
//!   away, see [`crate::live`]) and whose `presentationTimeOffset` is that
//!   segment's output time, so the timeline needs no discontinuity inside
//!   a Period.
//! - Per `Representation`, a `SegmentTemplate` (§5.3.9.4) with
//!   `$RepresentationID$/$Number$.m4s` — the HLS segment URIs, numbers are
//!   MSNs — and a `SegmentTimeline` (§5.3.9.6) of the complete segments;
//!   `availabilityTimeOffset` = segment target − part target and
//!   `availabilityTimeComplete="false"`: a segment can be fetched as soon
//!   as its first part exists, the origin sending the rest of it with
//!   chunked transfer as parts arrive ([`LiveStream::segment`]).
//! - `UTCTiming` with `urn:mpeg:dash:utc:http-iso:2014` at a URL of the
//!   caller's.

use std::fmt::Write;
use std::time::Instant;

use super::date::format_unix_ms;
use super::stream::{LiveStream, Period, Track};
use super::window::Segment;
use crate::mp4::TrackKind;
use crate::time::rescale;

/// What the MPD needs from the caller.
#[derive(Clone, Copy, Debug)]
pub struct DashOptions<'a> {
    /// The URL of the origin's clock (`UTCTiming`), e.g. `/time`,
    /// answering an ISO 8601 time.
    pub utc_timing_url: &'a str,
    /// A query string (without `?`) carried into every segment URL, e.g.
    /// a playback token.
    pub query: Option<&'a str>,
}

fn duration(out: &mut String, seconds: f64) {
    let _ = write!(out, "PT{seconds:.3}S");
}

fn attr_safe(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ':'))
        .collect()
}

/// A query for an XML attribute: URL-safe characters kept, `&` escaped.
fn query_attr(q: &str) -> String {
    let mut out = String::with_capacity(q.len());
    for c in q.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            c if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '~' | '=' | '%') => {
                out.push(c)
            }
            _ => {}
        }
    }
    out
}

impl LiveStream {
    /// Writes the MPD as of `now`.
    pub fn dash_mpd(&self, now: Instant, opts: &DashOptions<'_>, out: &mut String) {
        let cfg = &self.cfg;
        out.push_str(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<MPD xmlns=\"urn:mpeg:dash:schema:mpd:2011\" \
             profiles=\"urn:mpeg:dash:profile:isoff-live:2011,http://www.dashif.org/guidelines/low-latency-live-v5\" \
             type=\"dynamic\" availabilityStartTime=\"",
        );
        format_unix_ms(self.epoch_unix_ms, out);
        out.push_str("\" publishTime=\"");
        format_unix_ms(self.unix_ms(now), out);
        if self.ended {
            // A finished stream: no more updates, and where it ends (§5.3.1.2).
            let lead = &self.tracks[self.lead];
            let end = lead.window.last().map_or(0.0, |s| {
                (s.start + s.duration) as f64 / f64::from(lead.scale.get())
                    + self.wall_ns(s.disc_seq) as f64 / 1e9
            });
            out.push_str("\" mediaPresentationDuration=\"");
            duration(out, end);
        } else {
            out.push_str("\" minimumUpdatePeriod=\"");
            duration(out, cfg.segment_target.as_secs_f64());
        }
        out.push_str("\" timeShiftBufferDepth=\"");
        duration(out, cfg.dvr_window.as_secs_f64());
        out.push_str("\" maxSegmentDuration=\"");
        duration(out, self.target_duration as f64);
        out.push_str("\" minBufferTime=\"");
        duration(out, cfg.segment_target.as_secs_f64());
        out.push_str("\">\n");
        let target_ms = (cfg.segment_target + 3 * cfg.part_target).as_millis();
        let _ = write!(
            out,
            "  <ServiceDescription id=\"0\">\n    <Latency referenceId=\"0\" target=\"{target_ms}\" min=\"{}\" max=\"{}\"/>\n    \
             <PlaybackRate min=\"0.96\" max=\"1.04\"/>\n  </ServiceDescription>\n",
            (2 * cfg.part_target).as_millis(),
            2 * target_ms
        );
        let lead_scale = self.tracks[self.lead].scale;
        for (&disc, &Period { start, wall_ns, .. }) in &self.periods {
            let mut body = String::new();
            let video: Vec<&Track> = self
                .tracks
                .iter()
                .filter(|t| t.kind == TrackKind::Video)
                .collect();
            let mut set_id = 0;
            if !video.is_empty() {
                self.adaptation_set(&video, disc, start, set_id, opts.query, &mut body);
                set_id += 1;
            }
            for a in self.tracks.iter().filter(|t| t.kind == TrackKind::Audio) {
                self.adaptation_set(&[a], disc, start, set_id, opts.query, &mut body);
                set_id += 1;
            }
            if body.is_empty() {
                continue;
            }
            let _ = write!(out, "  <Period id=\"p{disc}\" start=\"");
            duration(
                out,
                start as f64 / f64::from(lead_scale.get()) + wall_ns as f64 / 1e9,
            );
            out.push_str("\">\n");
            out.push_str(&body);
            out.push_str("  </Period>\n");
        }
        let _ = write!(
            out,
            "  <UTCTiming schemeIdUri=\"urn:mpeg:dash:utc:http-iso:2014\" value=\"{}\"/>\n</MPD>\n",
            attr_safe(opts.utc_timing_url)
        );
    }

    /// The segments of `t` listed in Period `disc`: the complete ones after
    /// the last gap (a `$Number$` timeline cannot skip a number).
    fn period_segments<'a>(&self, t: &'a Track, disc: u64) -> Vec<&'a Segment> {
        let mut out: Vec<&Segment> = Vec::new();
        for s in t
            .window
            .segments
            .iter()
            .filter(|s| s.disc_seq == disc && s.complete)
        {
            if s.gap {
                out.clear();
            } else {
                out.push(s);
            }
        }
        out
    }

    fn adaptation_set(
        &self,
        members: &[&Track],
        disc: u64,
        start: u64,
        id: usize,
        query: Option<&str>,
        out: &mut String,
    ) {
        let q = query
            .filter(|q| !q.is_empty())
            .map(|q| format!("?{}", query_attr(q)))
            .unwrap_or_default();
        let listed: Vec<(&Track, Vec<&Segment>)> = members
            .iter()
            .map(|t| (*t, self.period_segments(t, disc)))
            .filter(|(_, s)| !s.is_empty())
            .collect();
        if listed.is_empty() {
            return;
        }
        let video = members[0].kind == TrackKind::Video;
        let (content, mime) = if video {
            ("video", "video/mp4")
        } else {
            ("audio", "audio/mp4")
        };
        let _ = write!(
            out,
            "    <AdaptationSet id=\"{id}\" contentType=\"{content}\" mimeType=\"{mime}\" segmentAlignment=\"true\" startWithSAP=\"1\""
        );
        if let Some(l) = members[0].language.as_deref().filter(|_| !video) {
            let _ = write!(out, " lang=\"{}\"", attr_safe(l));
        }
        out.push_str(">\n");
        let lead_scale = self.tracks[self.lead].scale;
        let ato = (self.cfg.segment_target - self.cfg.part_target).as_secs_f64();
        // Each Period has the codec configuration its publisher sent.
        let generation = self.generation_of(disc);
        let init = if generation == 0 {
            "init.mp4".to_owned()
        } else {
            format!("init-{generation}.mp4")
        };
        for (t, segs) in listed {
            let entry = self.entry_of(t, generation);
            let _ = write!(
                out,
                "      <Representation id=\"{}\" codecs=\"{}\" bandwidth=\"{}\"",
                t.name,
                entry.rfc6381().unwrap_or_default(),
                self.bandwidth(t)
            );
            if video {
                let _ = write!(
                    out,
                    " width=\"{}\" height=\"{}\"",
                    entry.width, entry.height
                );
            } else if entry.sample_rate > 0 {
                let _ = write!(out, " audioSamplingRate=\"{}\"", entry.sample_rate);
            }
            out.push_str(">\n");
            if !video && entry.channels > 0 {
                let _ = writeln!(
                    out,
                    "        <AudioChannelConfiguration schemeIdUri=\"urn:mpeg:dash:23003:3:audio_channel_configuration:2011\" value=\"{}\"/>",
                    entry.channels
                );
            }
            let pto = rescale(
                i64::try_from(start).unwrap_or(i64::MAX),
                lead_scale,
                t.scale,
            )
            .max(0);
            let _ = write!(
                out,
                "        <SegmentTemplate timescale=\"{}\" initialization=\"$RepresentationID$/{init}{q}\" \
                 media=\"$RepresentationID$/$Number$.m4s{q}\" startNumber=\"{}\" presentationTimeOffset=\"{pto}\" \
                 availabilityTimeOffset=\"{ato:.3}\" availabilityTimeComplete=\"false\">\n          <SegmentTimeline>\n",
                t.scale.get(),
                segs[0].msn
            );
            timeline(&segs, out);
            out.push_str("          </SegmentTimeline>\n        </SegmentTemplate>\n      </Representation>\n");
        }
        out.push_str("    </AdaptationSet>\n");
    }
}

/// `S` elements: `t` where the timeline does not simply continue, `r` for
/// repeats of one duration.
fn timeline(segs: &[&Segment], out: &mut String) {
    let mut i = 0;
    let mut expected: Option<u64> = None;
    while i < segs.len() {
        let s = segs[i];
        let mut r = 0;
        while i + r + 1 < segs.len() {
            let (a, b) = (segs[i + r], segs[i + r + 1]);
            if b.duration == s.duration && b.start == a.start + a.duration {
                r += 1;
            } else {
                break;
            }
        }
        out.push_str("            <S");
        if expected != Some(s.start) {
            let _ = write!(out, " t=\"{}\"", s.start);
        }
        let _ = write!(out, " d=\"{}\"", s.duration);
        if r > 0 {
            let _ = write!(out, " r=\"{r}\"");
        }
        out.push_str("/>\n");
        let last = segs[i + r];
        expected = Some(last.start + last.duration);
        i += r + 1;
    }
}
