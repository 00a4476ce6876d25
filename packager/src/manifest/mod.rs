//! HLS and DASH manifest text, written by typed writers of our own.
//!
//! Both formats point at the same CMAF segment URLs, relative to the
//! manifest: `../cmaf/{rendition}/init.mp4` and `../cmaf/{rendition}/{n}.m4s`.

pub mod dash;
pub mod hls;

use std::fmt::Write;

/// What child URIs carry besides their path.
#[derive(Clone, Copy, Debug, Default)]
pub struct ManifestOptions<'a> {
    /// A query string (without `?`) appended to every child URI, so that
    /// per-request credentials survive relative URL resolution.
    pub query: Option<&'a str>,
}

impl ManifestOptions<'_> {
    pub(crate) fn suffix(&self, out: &mut String) {
        if let Some(q) = self.query.filter(|q| !q.is_empty()) {
            out.push('?');
            out.push_str(q);
        }
    }
}

/// Writes seconds with at least three decimals and at most six, trimming
/// trailing zeros beyond the third: `4.000`, `4.004`, `0.100100` → `0.1001`.
pub(crate) fn write_seconds(out: &mut String, ticks: i64, timescale: u32) {
    let micros =
        (i128::from(ticks) * 1_000_000 + i128::from(timescale) / 2) / i128::from(timescale);
    let (whole, mut frac) = (micros / 1_000_000, (micros % 1_000_000).abs());
    let mut digits = 6;
    while digits > 3 && frac % 10 == 0 {
        frac /= 10;
        digits -= 1;
    }
    let _ = write!(out, "{whole}.{frac:0digits$}");
}

/// Maps an ISO 639-2 code from `mdhd` to the shortest BCP 47 tag; `None` for `und`.
pub(crate) fn language_tag(iso639_2: &str) -> Option<&str> {
    const TWO_LETTER: &[(&str, &str)] = &[
        ("ara", "ar"),
        ("ces", "cs"),
        ("cze", "cs"),
        ("chi", "zh"),
        ("zho", "zh"),
        ("dan", "da"),
        ("deu", "de"),
        ("ger", "de"),
        ("dut", "nl"),
        ("nld", "nl"),
        ("ell", "el"),
        ("gre", "el"),
        ("eng", "en"),
        ("fin", "fi"),
        ("fra", "fr"),
        ("fre", "fr"),
        ("heb", "he"),
        ("hin", "hi"),
        ("hun", "hu"),
        ("ind", "id"),
        ("ita", "it"),
        ("jpn", "ja"),
        ("kor", "ko"),
        ("nor", "no"),
        ("pol", "pl"),
        ("por", "pt"),
        ("ron", "ro"),
        ("rum", "ro"),
        ("rus", "ru"),
        ("spa", "es"),
        ("swe", "sv"),
        ("tha", "th"),
        ("tur", "tr"),
        ("ukr", "uk"),
        ("vie", "vi"),
    ];
    match iso639_2 {
        "und" | "" | "zxx" | "mis" | "mul" => None,
        code => Some(
            TWO_LETTER
                .iter()
                .find(|(k, _)| *k == code)
                .map_or(code, |(_, v)| v),
        ),
    }
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
