//! 3GPP timed text (`tx3g`, 3GPP TS 26.245 §5.16) samples → WebVTT cues:
//! each sample is a 16-bit text length, the text (UTF-8, or UTF-16 with a
//! byte-order mark) and style boxes, which are dropped. Empty samples are
//! the gaps between subtitles.

use super::Cue;
use crate::error::{Error, Result};
use crate::mp4::locate::read_exact;
use crate::mp4::{ReadAt, Track};
use crate::timing::TrackTiming;

/// Most text read from one track.
const MAX_TEXT_BYTES: u64 = 16 << 20;

/// Whether `track` is a 3GPP timed-text track.
pub fn is_tx3g(track: &Track) -> bool {
    track.sample_entry.fourcc.0 == *b"tx3g"
}

/// Reads every sample of `track` through `src` and returns its cues.
pub fn cues(track: &Track, timing: &TrackTiming, src: &dyn ReadAt) -> Result<Vec<Cue>> {
    let s = &track.samples;
    let total: u64 = s.bytes(0..s.len());
    if total > MAX_TEXT_BYTES {
        return Err(Error::BadSubtitles(format!(
            "tx3g track {} holds {total} bytes of text, above the limit of {MAX_TEXT_BYTES}",
            track.id
        )));
    }
    let scale = u64::from(track.timescale.get());
    let ms = |t: i64| (u64::try_from(t).unwrap_or(0) * 1000 + scale / 2) / scale;
    let mut out = Vec::new();
    let mut buf = Vec::new();
    for (i, (_, duration)) in (0..s.len()).zip(s.times_from(0)) {
        buf.resize(s.size(i) as usize, 0);
        read_exact(src, s.offset(i), &mut buf, "tx3g sample")?;
        let text = sample_text(&buf).ok_or_else(|| {
            Error::BadSubtitles(format!(
                "tx3g track {} sample {}: text length beyond the sample",
                track.id,
                i + 1
            ))
        })?;
        let payload = to_payload(&text);
        if payload.is_empty() {
            continue;
        }
        let start = timing.presentation(track, i);
        out.push(Cue {
            id: None,
            start_ms: ms(start),
            end_ms: ms(start + i64::from(duration)),
            settings: String::new(),
            payload,
        });
    }
    Ok(out)
}

/// The text of one sample.
fn sample_text(sample: &[u8]) -> Option<String> {
    if sample.len() < 2 {
        return Some(String::new());
    }
    let len = usize::from(u16::from_be_bytes([sample[0], sample[1]]));
    let text = sample.get(2..2 + len)?;
    Some(match text {
        [0xfe, 0xff, rest @ ..] => String::from_utf16_lossy(
            &rest
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect::<Vec<_>>(),
        ),
        _ => String::from_utf8_lossy(text).into_owned(),
    })
}

/// WebVTT cue text: `&`, `<`, `>` escaped, `-->` and blank lines (which
/// would end the cue) removed.
fn to_payload(text: &str) -> String {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut out = String::new();
    for line in text
        .split('\n')
        .map(str::trim_end)
        .filter(|l| !l.is_empty())
    {
        if !out.is_empty() {
            out.push('\n');
        }
        let line = line.replace("-->", "->");
        for c in line.chars() {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                c => out.push(c),
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_texts() {
        assert_eq!(sample_text(&[0, 2, b'h', b'i', 0, 0, 0, 8]).unwrap(), "hi");
        assert_eq!(sample_text(&[0, 0]).unwrap(), "");
        assert_eq!(sample_text(&[]).unwrap(), "");
        assert_eq!(sample_text(&[0, 4, 0xfe, 0xff, 0, b'A']).unwrap(), "A");
        assert!(sample_text(&[0, 9, b'x']).is_none());
    }

    #[test]
    fn payloads_cannot_break_the_cue() {
        assert_eq!(
            to_payload("a < b && c\r\n\r\n--> d\n"),
            "a &lt; b &amp;&amp; c\n-&gt; d"
        );
        assert_eq!(to_payload(" \n"), "");
    }
}
