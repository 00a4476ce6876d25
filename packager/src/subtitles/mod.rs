//! Subtitles: WebVTT sidecar files and `tx3g` tracks inside MP4 files
//! become one model (cues in milliseconds), written back as segmented
//! WebVTT for HLS (`X-TIMESTAMP-MAP`, §3.5 of RFC 8216bis) and as one
//! whole WebVTT file for DASH.

pub mod tx3g;
pub mod webvtt;

use crate::error::Result;
use crate::lang::{language_name, language_tag};
use crate::mp4::{ReadAt, Track};
use crate::timing::TrackTiming;

/// One cue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cue {
    /// The cue identifier line, if any.
    pub id: Option<String>,
    /// Start, in milliseconds of presentation time.
    pub start_ms: u64,
    /// End, in milliseconds (not before the start).
    pub end_ms: u64,
    /// Cue settings (`align:start line:0`), verbatim.
    pub settings: String,
    /// Cue text, verbatim WebVTT (lines joined by `\n`, no blank line).
    pub payload: String,
}

/// A subtitle track of a presentation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubtitleTrack {
    /// URL-safe id, unique among the presentation's subtitle tracks.
    pub id: String,
    /// BCP 47 language, if known.
    pub language: Option<String>,
    /// A name for players' menus.
    pub name: String,
    /// WebVTT `STYLE`/`REGION` blocks written before the cues.
    pub header_blocks: Vec<String>,
    /// Cues, in start order.
    pub cues: Vec<Cue>,
}

impl SubtitleTrack {
    /// A sidecar WebVTT file whose stem is `name` or `name.lang` (the id is
    /// the stem with `.` as `-`, the language the part after the dot).
    pub fn from_webvtt(stem: &str, bytes: &[u8]) -> Result<Self> {
        let parsed = webvtt::parse(bytes)?;
        let (base, language) = match stem.split_once('.') {
            Some((b, l)) => (b, Some(l.to_owned())),
            None => (stem, None),
        };
        let name = language
            .as_deref()
            .map_or_else(|| base.to_owned(), language_name);
        Ok(Self::new(stem.replace('.', "-"), language, name, parsed))
    }

    /// The `tx3g` track `track` of a source, read through `src`. `id` is
    /// the id its audio and video renditions would get (`t3`, `main-t3`).
    pub fn from_tx3g(
        id: String,
        track: &Track,
        timing: &TrackTiming,
        src: &dyn ReadAt,
    ) -> Result<Self> {
        let cues = tx3g::cues(track, timing, src)?;
        let language = language_tag(&track.language).map(str::to_owned);
        let name = track
            .name
            .clone()
            .or_else(|| language.as_deref().map(language_name))
            .unwrap_or_else(|| "subtitles".to_owned());
        let parsed = webvtt::WebVtt {
            header_blocks: Vec::new(),
            cues,
        };
        Ok(Self::new(id, language, name, parsed))
    }

    fn new(id: String, language: Option<String>, name: String, mut v: webvtt::WebVtt) -> Self {
        v.cues.sort_by_key(|c| (c.start_ms, c.end_ms));
        Self {
            id,
            language,
            name,
            header_blocks: v.header_blocks,
            cues: v.cues,
        }
    }

    fn header(&self, out: &mut String) {
        out.push_str("WEBVTT\n\n");
        for b in &self.header_blocks {
            out.push_str(b);
            out.push_str("\n\n");
        }
    }

    /// The whole track as one WebVTT file, every cue `later_ms` later (a
    /// DASH period that starts before the presentation does, at the video
    /// frames a mid-GOP edit keeps: see `Presentation::origin`).
    pub fn write_full(&self, later_ms: u64, out: &mut String) {
        self.header(out);
        for c in &self.cues {
            let moved = Cue {
                start_ms: c.start_ms + later_ms,
                end_ms: c.end_ms + later_ms,
                ..c.clone()
            };
            webvtt::write_cue(out, &moved);
        }
    }

    /// The cues that overlap `[from_ms, to_ms)`, cut to it and moved so
    /// that `from_ms` is time 0, as one WebVTT file: a clip's subtitles for
    /// a DASH period that starts at `from_ms`.
    pub fn write_span(&self, from_ms: u64, to_ms: u64, out: &mut String) {
        self.header(out);
        for c in self.cues.iter().take_while(|c| c.start_ms < to_ms) {
            if c.end_ms <= from_ms {
                continue;
            }
            let cut = Cue {
                start_ms: c.start_ms.max(from_ms) - from_ms,
                end_ms: c.end_ms.min(to_ms) - from_ms,
                ..c.clone()
            };
            webvtt::write_cue(out, &cut);
        }
    }

    /// The cues that overlap `[start_ms, end_ms)` as one WebVTT segment
    /// whose local time 0 is MPEG-2 time `mpegts` (90 kHz). A cue that spans
    /// a boundary is in both segments, unchanged, as players expect.
    pub fn write_segment(&self, start_ms: u64, end_ms: u64, mpegts: u64, out: &mut String) {
        out.push_str("WEBVTT\n");
        out.push_str("X-TIMESTAMP-MAP=MPEGTS:");
        out.push_str(&mpegts.to_string());
        out.push_str(",LOCAL:00:00:00.000\n\n");
        for b in &self.header_blocks {
            out.push_str(b);
            out.push_str("\n\n");
        }
        // Cues are sorted by start: the ones that start after the window end
        // the scan; a long cue that started earlier is still found.
        for c in self.cues.iter().take_while(|c| c.start_ms < end_ms) {
            let overlaps =
                c.end_ms > start_ms || (c.start_ms == c.end_ms && c.start_ms >= start_ms);
            if overlaps {
                webvtt::write_cue(out, c);
            }
        }
    }

    /// A hash of everything the track's output depends on.
    pub(crate) fn hash(&self, h: &mut xxhash_rust::xxh3::Xxh3) {
        for s in [&self.id, &self.name] {
            h.update(s.as_bytes());
        }
        h.update(self.language.as_deref().unwrap_or("").as_bytes());
        for b in &self.header_blocks {
            h.update(b.as_bytes());
        }
        for c in &self.cues {
            h.update(&c.start_ms.to_be_bytes());
            h.update(&c.end_ms.to_be_bytes());
            h.update(c.id.as_deref().unwrap_or("").as_bytes());
            h.update(c.settings.as_bytes());
            h.update(c.payload.as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_repeat_spanning_cues() {
        let t = SubtitleTrack::from_webvtt(
            "subs.en",
            b"WEBVTT\n\n00:01.000 --> 00:05.000\nlong\n\n00:05.000 --> 00:06.000\nlater\n",
        )
        .unwrap();
        assert_eq!((t.id.as_str(), t.name.as_str()), ("subs-en", "English"));
        let seg = |a, b| {
            let mut s = String::new();
            t.write_segment(a, b, 0, &mut s);
            s
        };
        assert!(seg(0, 4000).contains("long") && !seg(0, 4000).contains("later"));
        assert!(seg(4000, 8000).contains("long") && seg(4000, 8000).contains("later"));
        assert!(
            !seg(5000, 8000).contains("long"),
            "ends at the window start"
        );
        assert!(
            seg(0, 4000).starts_with("WEBVTT\nX-TIMESTAMP-MAP=MPEGTS:0,LOCAL:00:00:00.000\n\n")
        );
    }
}
