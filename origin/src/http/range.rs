//! Single byte ranges (RFC 9110 §14.1.2).

/// What a `Range` header asks of a representation of `len` bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RangeRequest {
    /// Send everything (no header, several ranges, or a syntax we ignore).
    Full,
    /// Send bytes `start..end`.
    Partial { start: u64, end: u64 },
    /// No byte of the request lies within the representation.
    Unsatisfiable,
}

/// Interprets a `Range` header value for a representation of `len` bytes.
///
/// Only single ranges are honoured; multiple ranges are answered with the
/// whole representation, which RFC 9110 allows.
pub(crate) fn parse(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeRequest::Full;
    };
    let num = |s: &str| -> Option<u64> {
        if s.is_empty() || s.len() > 19 || !s.bytes().all(|b| b.is_ascii_digit()) {
            None
        } else {
            s.parse().ok()
        }
    };
    match (first.trim(), last.trim()) {
        ("", suffix) => match num(suffix) {
            Some(0) => RangeRequest::Unsatisfiable,
            Some(_) if len == 0 => RangeRequest::Unsatisfiable,
            Some(n) => RangeRequest::Partial {
                start: len.saturating_sub(n),
                end: len,
            },
            None => RangeRequest::Full,
        },
        (a, "") => match num(a) {
            Some(a) if a < len => RangeRequest::Partial { start: a, end: len },
            Some(_) => RangeRequest::Unsatisfiable,
            None => RangeRequest::Full,
        },
        (a, b) => match (num(a), num(b)) {
            (Some(a), Some(b)) if a > b => RangeRequest::Full,
            (Some(a), Some(_)) if a >= len => RangeRequest::Unsatisfiable,
            (Some(a), Some(b)) => RangeRequest::Partial {
                start: a,
                end: b.saturating_add(1).min(len),
            },
            _ => RangeRequest::Full,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use RangeRequest::*;

    #[test]
    fn ranges() {
        assert_eq!(parse("bytes=0-9", 100), Partial { start: 0, end: 10 });
        assert_eq!(
            parse("bytes=90-", 100),
            Partial {
                start: 90,
                end: 100
            }
        );
        assert_eq!(
            parse("bytes=-10", 100),
            Partial {
                start: 90,
                end: 100
            }
        );
        assert_eq!(parse("bytes=-1000", 100), Partial { start: 0, end: 100 });
        assert_eq!(
            parse("bytes=50-1000", 100),
            Partial {
                start: 50,
                end: 100
            }
        );
        assert_eq!(parse("bytes=100-", 100), Unsatisfiable);
        assert_eq!(parse("bytes=100-200", 100), Unsatisfiable);
        assert_eq!(parse("bytes=-0", 100), Unsatisfiable);
        assert_eq!(parse("bytes=0-1,5-6", 100), Full);
        assert_eq!(parse("items=0-1", 100), Full);
        assert_eq!(parse("bytes=9-1", 100), Full);
        assert_eq!(parse("bytes=x-1", 100), Full);
        assert_eq!(parse("bytes=99999999999999999999-", 100), Full);
    }
}
