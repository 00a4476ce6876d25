//! Manifest filters: query parameters on a multivariant playlist or MPD
//! that keep a subset of the renditions, as Unified Origin and MediaPackage
//! offer. The filtered manifest still points at the shared media playlists
//! and segments, so a CDN caches those once whatever the filter.
//!
//! | parameter | value | keeps |
//! |---|---|---|
//! | `video_bitrate` | `MIN-MAX` bits/s, either end optional (`-3000000`, `500000-`) | video renditions whose peak bit rate is in range |
//! | `video_height` | `MIN-MAX` pixels | video renditions whose height is in range |
//! | `video_codec` | comma list of CODECS prefixes (`avc1`, `hvc1,hev1`) | video renditions whose CODECS starts with one |
//! | `audio_bitrate` | `MIN-MAX` bits/s | audio renditions in range |
//! | `audio_language` | comma list of BCP 47 tags (`en,fr`); `und` keeps tracks without one | audio renditions in one of them (a tag matches its subtags: `pt` keeps `pt-BR`) |
//! | `audio_codec` | comma list of CODECS prefixes (`mp4a`, `ac-3,ec-3`) | audio renditions whose CODECS starts with one |
//!
//! Other parameters are not filters and are ignored here. A malformed value,
//! a parameter given twice, or a filter that leaves no rendition of a kind
//! the asset has is an error naming the parameter.

use crate::error::Error;
use crate::mp4::TrackKind;
use crate::presentation::{Presentation, Rendition};

/// The names of the filter parameters.
pub const PARAMETERS: [&str; 6] = [
    "video_bitrate",
    "video_height",
    "video_codec",
    "audio_bitrate",
    "audio_language",
    "audio_codec",
];

/// A parsed filter; the default keeps everything.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    video_bitrate: Option<(u64, u64)>,
    video_height: Option<(u64, u64)>,
    video_codec: Option<Vec<String>>,
    audio_bitrate: Option<(u64, u64)>,
    audio_language: Option<Vec<String>>,
    audio_codec: Option<Vec<String>>,
}

/// Why a filter was refused: [`Error::BadFilter`], naming the parameter.
type FilterError = Error;
#[allow(non_snake_case)]
fn FilterError(why: String) -> Error {
    Error::BadFilter(why)
}

impl Filter {
    /// Builds a filter from decoded query pairs, ignoring non-filter keys.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, FilterError> {
        let mut f = Filter::default();
        for (key, value) in pairs {
            if !PARAMETERS.contains(&key) {
                continue;
            }
            let twice = || FilterError(format!("filter '{key}' is given more than once"));
            match key {
                "video_bitrate" => {
                    set(&mut f.video_bitrate, range(key, value)?).ok_or_else(twice)?
                }
                "video_height" => set(&mut f.video_height, range(key, value)?).ok_or_else(twice)?,
                "audio_bitrate" => {
                    set(&mut f.audio_bitrate, range(key, value)?).ok_or_else(twice)?
                }
                "video_codec" => set(&mut f.video_codec, codecs(key, value)?).ok_or_else(twice)?,
                "audio_codec" => set(&mut f.audio_codec, codecs(key, value)?).ok_or_else(twice)?,
                _ => set(&mut f.audio_language, languages(key, value)?).ok_or_else(twice)?,
            }
        }
        Ok(f)
    }

    /// Whether the filter keeps everything.
    pub fn is_empty(&self) -> bool {
        *self == Filter::default()
    }

    /// Whether `r` of `p` passes.
    pub fn keeps(&self, p: &Presentation, r: &Rendition) -> bool {
        let in_range =
            |range: Option<(u64, u64)>, v: u64| range.is_none_or(|(lo, hi)| (lo..=hi).contains(&v));
        let codec_ok = |list: &Option<Vec<String>>| {
            list.as_ref()
                .is_none_or(|l| l.iter().any(|c| r.codecs.starts_with(c.as_str())))
        };
        match r.kind {
            TrackKind::Video => {
                let height = u64::from(super::hls::display_size(p, r).1);
                in_range(self.video_bitrate, r.peak_bitrate)
                    && in_range(self.video_height, height)
                    && codec_ok(&self.video_codec)
            }
            TrackKind::Audio => {
                let lang_ok = self.audio_language.as_ref().is_none_or(|l| {
                    l.iter().any(|want| match &r.language {
                        None => want == "und",
                        Some(have) => language_matches(want, have),
                    })
                });
                in_range(self.audio_bitrate, r.peak_bitrate)
                    && codec_ok(&self.audio_codec)
                    && lang_ok
            }
            TrackKind::Other => false,
        }
    }

    /// Checks that the filter leaves a rendition of every kind `p` has.
    pub fn check(&self, p: &Presentation) -> Result<(), FilterError> {
        self.check_among(p, |_| true)
    }

    /// [`Self::check`] among the renditions `among` accepts: those a
    /// format can carry (MPEG-TS carries no AV1 or Opus).
    pub fn check_among(
        &self,
        p: &Presentation,
        among: impl Fn(&Rendition) -> bool,
    ) -> Result<(), FilterError> {
        for (kind, what, keys) in [
            (
                TrackKind::Video,
                "video",
                "video_bitrate, video_height and video_codec",
            ),
            (
                TrackKind::Audio,
                "audio",
                "audio_bitrate, audio_language and audio_codec",
            ),
        ] {
            let has = p.renditions.iter().any(|r| r.kind == kind && among(r));
            let kept = p
                .renditions
                .iter()
                .any(|r| r.kind == kind && among(r) && self.keeps(p, r));
            if has && !kept {
                return Err(FilterError(format!(
                    "the filter leaves no {what} rendition (check {keys})"
                )));
            }
        }
        Ok(())
    }
}

fn set<T>(slot: &mut Option<T>, v: T) -> Option<()> {
    if slot.is_some() {
        return None;
    }
    *slot = Some(v);
    Some(())
}

/// `MIN-MAX`, `MIN-`, `-MAX` or `N` (exactly N).
fn range(key: &str, value: &str) -> Result<(u64, u64), FilterError> {
    let bad = || {
        FilterError(format!(
            "filter '{key}' must be MIN-MAX with whole numbers (either end may be left out), not '{value}'"
        ))
    };
    let num = |s: &str, default: u64| -> Result<u64, FilterError> {
        if s.is_empty() {
            Ok(default)
        } else if s.len() <= 19 && s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().map_err(|_| bad())
        } else {
            Err(bad())
        }
    };
    let (lo, hi) = match value.split_once('-') {
        Some((lo, hi)) if !(lo.is_empty() && hi.is_empty()) => (num(lo, 0)?, num(hi, u64::MAX)?),
        Some(_) => return Err(bad()),
        None if !value.is_empty() => {
            let n = num(value, 0)?;
            (n, n)
        }
        None => return Err(bad()),
    };
    if lo > hi {
        return Err(FilterError(format!(
            "filter '{key}': the minimum {lo} is above the maximum {hi}"
        )));
    }
    Ok((lo, hi))
}

fn list<'a>(
    key: &str,
    value: &'a str,
    what: &str,
    ok: impl Fn(&str) -> bool,
) -> Result<Vec<&'a str>, FilterError> {
    let items: Vec<&str> = value.split(',').collect();
    if items.len() > 32 {
        return Err(FilterError(format!(
            "filter '{key}' lists more than 32 values"
        )));
    }
    for item in &items {
        if !ok(item) {
            return Err(FilterError(format!(
                "filter '{key}': '{item}' is not {what}"
            )));
        }
    }
    Ok(items)
}

fn codecs(key: &str, value: &str) -> Result<Vec<String>, FilterError> {
    let ok = |s: &str| {
        (1..=64).contains(&s.len())
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
    };
    Ok(
        list(key, value, "a CODECS prefix such as avc1 or mp4a.40.2", ok)?
            .into_iter()
            .map(str::to_owned)
            .collect(),
    )
}

fn languages(key: &str, value: &str) -> Result<Vec<String>, FilterError> {
    Ok(list(
        key,
        value,
        "a language tag such as en or pt-BR",
        crate::lang::is_language_tag,
    )?
    .into_iter()
    .map(str::to_ascii_lowercase)
    .collect())
}

/// RFC 4647 basic filtering: `want` matches `have` or a longer tag of it.
fn language_matches(want: &str, have: &str) -> bool {
    let have = have.to_ascii_lowercase();
    have == want
        || have
            .strip_prefix(want)
            .is_some_and(|rest| rest.starts_with('-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(q: &[(&str, &str)]) -> Result<Filter, FilterError> {
        Filter::from_pairs(q.iter().copied())
    }

    #[test]
    fn ranges() {
        assert_eq!(range("k", "10-20").unwrap(), (10, 20));
        assert_eq!(range("k", "-20").unwrap(), (0, 20));
        assert_eq!(range("k", "10-").unwrap(), (10, u64::MAX));
        assert_eq!(range("k", "7").unwrap(), (7, 7));
        for bad in [
            "",
            "-",
            "a-b",
            "1-2-3",
            "20-10",
            "1.5-2",
            "99999999999999999999",
            " 1",
        ] {
            let e = range("video_bitrate", bad).unwrap_err().to_string();
            assert!(e.contains("video_bitrate"), "{bad}: {e}");
        }
    }

    #[test]
    fn garbage_is_refused_with_the_parameter_named() {
        for (q, needle) in [
            (&[("video_height", "tall")][..], "video_height"),
            (&[("audio_language", "english!")][..], "audio_language"),
            (&[("audio_language", "")][..], "audio_language"),
            (&[("video_codec", "avc1,")][..], "video_codec"),
            (&[("video_codec", "<script>")][..], "video_codec"),
            (
                &[("video_bitrate", "1-2"), ("video_bitrate", "3-4")][..],
                "more than once",
            ),
        ] {
            let e = parse(q).unwrap_err().to_string();
            assert!(e.contains(needle), "{q:?}: {e}");
        }
        assert!(parse(&[("token", "x"), ("start", "3")]).unwrap().is_empty());
    }

    #[test]
    fn language_subtags_match() {
        assert!(language_matches("pt", "pt-BR"));
        assert!(language_matches("pt-br", "pt-BR"));
        assert!(!language_matches("p", "pt"));
        assert!(!language_matches("pt-br", "pt"));
    }
}
