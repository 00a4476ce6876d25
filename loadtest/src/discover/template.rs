//! DASH `SegmentTemplate` identifiers (ISO/IEC 23009-1 §5.3.9.4.4, Table 16).
//!
//! `$RepresentationID$`, `$Number$`, `$Time$` and `$Bandwidth$`, each numeric one with an
//! optional printf width (`$Number%05d$`; `d`, `x`, `X` and `o` conversions), and `$$` for
//! a literal dollar sign.

use anyhow::{Context, bail};

/// The values substituted into one URL.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Vars<'a> {
    /// `$RepresentationID$`.
    pub(crate) representation_id: &'a str,
    /// `$Bandwidth$`.
    pub(crate) bandwidth: u64,
    /// `$Number$`, if known here.
    pub(crate) number: Option<u64>,
    /// `$Time$`, if known here.
    pub(crate) time: Option<u64>,
}

/// Expands every identifier of `template`.
pub(crate) fn expand(template: &str, vars: &Vars<'_>) -> anyhow::Result<String> {
    let mut out = String::with_capacity(template.len() + 16);
    let mut rest = template;
    while let Some(start) = rest.find('$') {
        out.push_str(&rest[..start]);
        let after = &rest[start + 1..];
        let end = after
            .find('$')
            .with_context(|| format!("template `{template}`: unclosed `$`"))?;
        let ident = &after[..end];
        rest = &after[end + 1..];
        if ident.is_empty() {
            out.push('$');
            continue;
        }
        let (name, format) = match ident.split_once('%') {
            Some((n, f)) => (n, Some(f)),
            None => (ident, None),
        };
        let value = match name {
            "RepresentationID" => {
                if format.is_some() {
                    bail!("template `{template}`: $RepresentationID$ takes no format");
                }
                out.push_str(vars.representation_id);
                continue;
            }
            "Bandwidth" => vars.bandwidth,
            "Number" => vars
                .number
                .with_context(|| format!("template `{template}`: $Number$ not available"))?,
            "Time" => vars
                .time
                .with_context(|| format!("template `{template}`: $Time$ not available"))?,
            other => bail!("template `{template}`: unsupported identifier `${other}$`"),
        };
        match format {
            None => out.push_str(&value.to_string()),
            Some(f) => out.push_str(
                &printf(f, value)
                    .with_context(|| format!("template `{template}`: bad format `%{f}`"))?,
            ),
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// Formats `value` by a printf spec without the `%`: `05d`, `d`, `8x`, ...
fn printf(spec: &str, value: u64) -> anyhow::Result<String> {
    let conversion = spec.chars().last().context("empty format")?;
    let width_text = &spec[..spec.len() - conversion.len_utf8()];
    let zero = width_text.starts_with('0');
    let width: usize = if width_text.is_empty() {
        0
    } else {
        width_text.parse().context("bad width")?
    };
    if width > 64 {
        bail!("width too large");
    }
    let digits = match conversion {
        'd' | 'i' | 'u' => value.to_string(),
        'x' => format!("{value:x}"),
        'X' => format!("{value:X}"),
        'o' => format!("{value:o}"),
        _ => bail!("unsupported conversion `{conversion}`"),
    };
    let pad = if zero { '0' } else { ' ' };
    let mut out: String = std::iter::repeat_n(pad, width.saturating_sub(digits.len())).collect();
    out.push_str(&digits);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(number: Option<u64>, time: Option<u64>) -> Vars<'static> {
        Vars {
            representation_id: "720p-v1",
            bandwidth: 2_500_000,
            number,
            time,
        }
    }

    #[test]
    fn identifiers() {
        let v = vars(Some(7), Some(360_000));
        assert_eq!(
            expand("../cmaf/$RepresentationID$/$Number$.m4s", &v).unwrap(),
            "../cmaf/720p-v1/7.m4s"
        );
        assert_eq!(expand("seg-$Number%05d$.m4s", &v).unwrap(), "seg-00007.m4s");
        assert_eq!(
            expand("t$Time$_b$Bandwidth$", &v).unwrap(),
            "t360000_b2500000"
        );
        assert_eq!(expand("$Time%08x$", &v).unwrap(), "00057e40");
        assert_eq!(expand("$Number%3d$", &v).unwrap(), "  7");
        assert_eq!(expand("cost$$5", &v).unwrap(), "cost$5");
        assert_eq!(
            expand("$Number%02d$", &vars(Some(123), None)).unwrap(),
            "123"
        );
    }

    #[test]
    fn errors() {
        let v = vars(None, None);
        assert!(expand("$Number$", &v).is_err());
        assert!(expand("$Time$", &v).is_err());
        assert!(expand("$Nope$", &v).is_err());
        assert!(expand("open$Number", &v).is_err());
        assert!(expand("$Number%05q$", &vars(Some(1), None)).is_err());
        assert_eq!(
            expand("init-$RepresentationID$.mp4", &v).unwrap(),
            "init-720p-v1.mp4"
        );
    }
}
