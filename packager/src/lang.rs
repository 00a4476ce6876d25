//! Language tags: BCP 47 tags (RFC 5646) as manifests carry them, and the
//! ISO 639-2 codes of `mdhd` (ISO/IEC 14496-12 §8.4.2.3), with English
//! names for track menus.

/// A BCP 47 tag of the simple shape `ll[l](-xxxx)*` (RFC 5646 §2.1).
pub fn is_language_tag(s: &str) -> bool {
    let mut parts = s.split('-');
    let primary = parts.next().unwrap_or("");
    s.len() <= 35
        && (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_alphabetic())
        && parts.all(|p| (1..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// ISO 639-2 (B and T) codes, their ISO 639-1 tags, and English names.
const LANGUAGES: &[(&str, &str, &str)] = &[
    ("ara", "ar", "Arabic"),
    ("ces", "cs", "Czech"),
    ("cze", "cs", "Czech"),
    ("chi", "zh", "Chinese"),
    ("zho", "zh", "Chinese"),
    ("dan", "da", "Danish"),
    ("deu", "de", "German"),
    ("ger", "de", "German"),
    ("dut", "nl", "Dutch"),
    ("nld", "nl", "Dutch"),
    ("ell", "el", "Greek"),
    ("gre", "el", "Greek"),
    ("eng", "en", "English"),
    ("fin", "fi", "Finnish"),
    ("fra", "fr", "French"),
    ("fre", "fr", "French"),
    ("heb", "he", "Hebrew"),
    ("hin", "hi", "Hindi"),
    ("hun", "hu", "Hungarian"),
    ("ind", "id", "Indonesian"),
    ("ita", "it", "Italian"),
    ("jpn", "ja", "Japanese"),
    ("kor", "ko", "Korean"),
    ("nor", "no", "Norwegian"),
    ("pol", "pl", "Polish"),
    ("por", "pt", "Portuguese"),
    ("ron", "ro", "Romanian"),
    ("rum", "ro", "Romanian"),
    ("rus", "ru", "Russian"),
    ("spa", "es", "Spanish"),
    ("swe", "sv", "Swedish"),
    ("tha", "th", "Thai"),
    ("tur", "tr", "Turkish"),
    ("ukr", "uk", "Ukrainian"),
    ("vie", "vi", "Vietnamese"),
];

/// Maps an ISO 639-2 code from `mdhd` to the shortest BCP 47 tag; `None` for `und`.
pub(crate) fn language_tag(iso639_2: &str) -> Option<&str> {
    match iso639_2 {
        "und" | "" | "zxx" | "mis" | "mul" => None,
        code => Some(
            LANGUAGES
                .iter()
                .find(|(k, _, _)| *k == code)
                .map_or(code, |(_, v, _)| v),
        ),
    }
}

/// An English name for a BCP 47 tag whose primary subtag is in the table
/// (`pt-BR` → `Portuguese (BR)`), else the tag itself.
pub(crate) fn language_name(tag: &str) -> String {
    let (primary, region) = tag
        .split_once('-')
        .map_or((tag, None), |(p, r)| (p, Some(r)));
    let primary = primary.to_ascii_lowercase();
    match LANGUAGES
        .iter()
        .find(|(t, one, _)| *one == primary || *t == primary)
    {
        Some((_, _, name)) => match region {
            Some(r) => format!("{name} ({r})"),
            None => (*name).to_owned(),
        },
        None => tag.to_owned(),
    }
}

/// The ISO 639-2/T code for a BCP 47 tag's primary subtag, for `mdhd`.
pub(crate) fn iso639_2(tag: &str) -> &'static str {
    let primary = tag.split('-').next().unwrap_or(tag);
    const CODES: &[(&str, &str)] = &[
        ("en", "eng"),
        ("fr", "fra"),
        ("de", "deu"),
        ("es", "spa"),
        ("it", "ita"),
        ("pt", "por"),
        ("nl", "nld"),
        ("ja", "jpn"),
        ("zh", "zho"),
        ("ko", "kor"),
        ("ru", "rus"),
        ("ar", "ara"),
    ];
    CODES
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(primary))
        .map_or("und", |(_, v)| v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_names() {
        assert_eq!(language_tag("fra"), Some("fr"));
        assert_eq!(language_tag("und"), None);
        assert_eq!(language_name("fr"), "French");
        assert_eq!(language_name("pt-BR"), "Portuguese (BR)");
        assert_eq!(language_name("tlh"), "tlh");
    }
}
