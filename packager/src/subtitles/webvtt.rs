//! WebVTT (W3C WebVTT §4) reading and writing: enough to cut a file into
//! segments and write it back, keeping cue ids, settings, payloads and the
//! header's `STYLE`/`REGION` blocks as they were.

use std::fmt::Write;

use super::Cue;
use crate::error::{Error, Result};

/// Largest sidecar file accepted.
pub const MAX_BYTES: usize = 16 << 20;
/// Most cues in one track.
pub const MAX_CUES: usize = 200_000;

/// A parsed WebVTT file.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WebVtt {
    /// `STYLE` and `REGION` blocks before the first cue, verbatim.
    pub header_blocks: Vec<String>,
    /// The cues, in file order.
    pub cues: Vec<Cue>,
}

fn bad(line: usize, why: &str) -> Error {
    Error::BadSubtitles(format!("line {line}: {why}"))
}

/// Parses WebVTT text. A missing `WEBVTT` signature or a malformed cue
/// timing line is an error naming the line.
pub fn parse(bytes: &[u8]) -> Result<WebVtt> {
    if bytes.len() > MAX_BYTES {
        return Err(Error::BadSubtitles(format!(
            "{} bytes, above the limit of {MAX_BYTES}",
            bytes.len()
        )));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| Error::BadSubtitles(format!("not UTF-8 (byte {})", e.valid_up_to())))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let normalized = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut lines = normalized.split('\n').enumerate().peekable();
    let first = lines.next().map_or("", |(_, l)| l);
    let signature_ok = first == "WEBVTT"
        || first
            .strip_prefix("WEBVTT")
            .is_some_and(|rest| rest.starts_with([' ', '\t']));
    if !signature_ok {
        return Err(bad(1, "a WebVTT file starts with 'WEBVTT'"));
    }
    // The rest of the header block.
    while lines.next_if(|(_, l)| !l.is_empty()).is_some() {}

    let mut out = WebVtt::default();
    loop {
        while lines.next_if(|(_, l)| l.is_empty()).is_some() {}
        let Some((n, line)) = lines.next() else { break };
        let mut block = vec![(n, line)];
        while let Some((n, l)) = lines.next_if(|(_, l)| !l.is_empty()) {
            block.push((n, l));
        }
        let head = block[0].1;
        if head.starts_with("NOTE") && (head.len() == 4 || head[4..].starts_with([' ', '\t'])) {
            continue;
        }
        let is_header_block =
            (head == "STYLE" || head == "REGION") && !block.iter().any(|(_, l)| l.contains("-->"));
        if is_header_block {
            if out.cues.is_empty() {
                out.header_blocks
                    .push(block.iter().map(|(_, l)| *l).collect::<Vec<_>>().join("\n"));
            }
            continue;
        }
        let (id, timing_at) = if head.contains("-->") {
            (None, 0)
        } else {
            (Some(head.to_owned()), 1)
        };
        let Some(&(tn, timing)) = block.get(timing_at) else {
            return Err(bad(n + 1, "a cue id without a timing line"));
        };
        let (start, end, settings) = parse_timing(timing).ok_or_else(|| {
            bad(
                tn + 1,
                "malformed cue timing (want 'hh:mm:ss.ttt --> hh:mm:ss.ttt')",
            )
        })?;
        if out.cues.len() == MAX_CUES {
            return Err(Error::BadSubtitles(format!("more than {MAX_CUES} cues")));
        }
        out.cues.push(Cue {
            id,
            start_ms: start,
            end_ms: end.max(start),
            settings: settings.to_owned(),
            payload: block[timing_at + 1..]
                .iter()
                .map(|(_, l)| *l)
                .collect::<Vec<_>>()
                .join("\n"),
        });
    }
    Ok(out)
}

/// `start --> end settings`.
fn parse_timing(line: &str) -> Option<(u64, u64, &str)> {
    let (start, rest) = line.split_once("-->")?;
    let start = timestamp(start.trim())?;
    let rest = rest.trim_start();
    let (end, settings) = rest
        .split_once([' ', '\t'])
        .map_or((rest, ""), |(e, s)| (e, s.trim()));
    Some((start, timestamp(end)?, settings))
}

/// `[hh:]mm:ss.ttt` in milliseconds.
fn timestamp(s: &str) -> Option<u64> {
    let (clock, millis) = s.split_once('.')?;
    let digits = |p: &str, len: Option<usize>| {
        (!p.is_empty()
            && p.len() <= 10
            && len.is_none_or(|l| p.len() == l)
            && p.bytes().all(|b| b.is_ascii_digit()))
        .then(|| p.parse::<u64>().ok())
        .flatten()
    };
    let ms = digits(millis, Some(3))?;
    let parts: Vec<&str> = clock.split(':').collect();
    let (h, m, sec) = match parts.as_slice() {
        [m, s] => (0, digits(m, Some(2))?, digits(s, Some(2))?),
        [h, m, s] if h.len() >= 2 => (digits(h, None)?, digits(m, Some(2))?, digits(s, Some(2))?),
        _ => return None,
    };
    if m > 59 || sec > 59 {
        return None;
    }
    Some(((h * 60 + m) * 60 + sec) * 1000 + ms)
}

/// Writes `ms` as `hh:mm:ss.ttt`.
pub(crate) fn write_timestamp(out: &mut String, ms: u64) {
    let _ = write!(
        out,
        "{:02}:{:02}:{:02}.{:03}",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
}

/// Writes one cue block, followed by a blank line.
pub(crate) fn write_cue(out: &mut String, cue: &Cue) {
    if let Some(id) = &cue.id {
        out.push_str(id);
        out.push('\n');
    }
    write_timestamp(out, cue.start_ms);
    out.push_str(" --> ");
    write_timestamp(out, cue.end_ms);
    if !cue.settings.is_empty() {
        out.push(' ');
        out.push_str(&cue.settings);
    }
    out.push('\n');
    out.push_str(&cue.payload);
    out.push_str("\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cues_ids_settings_and_header_blocks() {
        let text = "\u{feff}WEBVTT - a title\r\nKind: captions\r\n\r\nSTYLE\r\n::cue { color: lime }\r\n\r\n\
                    NOTE a comment\r\n\r\n1\r\n00:00.500 --> 00:02.000 align:start\r\nHello\r\nworld\r\n\r\n\
                    01:00:03.250 --> 01:00:04.000\r\n<b>bold</b>\r\n";
        let v = parse(text.as_bytes()).unwrap();
        assert_eq!(v.header_blocks, ["STYLE\n::cue { color: lime }"]);
        assert_eq!(v.cues.len(), 2);
        assert_eq!(v.cues[0].id.as_deref(), Some("1"));
        assert_eq!((v.cues[0].start_ms, v.cues[0].end_ms), (500, 2000));
        assert_eq!(v.cues[0].settings, "align:start");
        assert_eq!(v.cues[0].payload, "Hello\nworld");
        assert_eq!(v.cues[1].start_ms, 3_603_250);
        let mut s = String::new();
        write_cue(&mut s, &v.cues[1]);
        assert_eq!(s, "01:00:03.250 --> 01:00:04.000\n<b>bold</b>\n\n");
    }

    #[test]
    fn garbage_is_an_error_naming_the_line() {
        for (text, needle) in [
            ("not a subtitle file", "line 1"),
            ("WEBVTTX\n", "line 1"),
            ("WEBVTT\n\n00:01.000 -> 00:02.000\nx\n", "line 4"),
            ("WEBVTT\n\n00:61.000 --> 00:62.000\nx\n", "line 3"),
            ("WEBVTT\n\nid only\n", "line 3"),
        ] {
            let e = parse(text.as_bytes()).unwrap_err().to_string();
            assert!(e.contains(needle), "{text:?}: {e}");
        }
        assert!(parse(&[0xff, 0xfe]).is_err());
        assert!(parse(b"WEBVTT").unwrap().cues.is_empty());
    }
}
