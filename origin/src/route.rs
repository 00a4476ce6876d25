//! Data-plane URL routing: a request path becomes a typed [`Route`].
//!
//! Every path segment is checked against a strict character set before
//! anything touches the file system, so `..`, `%2e%2e`, backslashes and
//! NUL bytes can never reach a path: they are a `400` here.

/// A recognised data-plane URL. `asset` and `rendition` are names checked
/// by [`is_name`]; `number` is a 1-based segment number.
#[allow(missing_docs)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Route<'a> {
    /// `/healthz`
    Health,
    /// `/readyz`
    Ready,
    /// `/time`: the origin's clock (DASH `UTCTiming`).
    Time,
    /// `/live/{stream}/hls/{file}` (`hls: true`) or `/live/{stream}/dash/{file}`:
    /// `file` is `master.m3u8`, `manifest.mpd` or a live packager URI
    /// (`{rendition}.m3u8`, `{rendition}/init.mp4`, `{rendition}/{msn}.m4s`,
    /// `{rendition}/{msn}.{part}.m4s`).
    Live {
        stream: &'a str,
        hls: bool,
        file: &'a str,
    },
    /// `/vod/{asset}/hls/master.m3u8`
    HlsMultivariant { asset: &'a str },
    /// `/vod/{asset}/hls/{rendition}.m3u8`
    HlsMedia { asset: &'a str, rendition: &'a str },
    /// `/vod/{asset}/hls/{rendition}.iframes.m3u8`
    HlsIframes { asset: &'a str, rendition: &'a str },
    /// `/vod/{asset}/hls/{track}.vtt.m3u8`
    HlsSubtitles { asset: &'a str, track: &'a str },
    /// `/vod/{asset}/hls-ts/master.m3u8`
    TsMultivariant { asset: &'a str },
    /// `/vod/{asset}/hls-ts/{program}.m3u8` (`{video}.{audio}`, `{video}` or `{audio}`)
    TsMedia { asset: &'a str, program: &'a str },
    /// `/vod/{asset}/hls-ts/{program}.iframes.m3u8`
    TsIframes { asset: &'a str, program: &'a str },
    /// `/vod/{asset}/hls-ts/{track}.vtt.m3u8`
    TsSubtitles { asset: &'a str, track: &'a str },
    /// `/vod/{asset}/ts/{program}/{n}.ts`
    TsSegment {
        asset: &'a str,
        program: &'a str,
        number: u32,
    },
    /// `/vod/{asset}/ts/{program}/t{from}-{to}.ts`: the part of one TS
    /// segment between two times (milliseconds), for clips.
    TsSpan {
        asset: &'a str,
        program: &'a str,
        from_ms: u64,
        to_ms: u64,
    },
    /// `/vod/{asset}/dash/manifest.mpd`
    DashManifest { asset: &'a str },
    /// `/vod/{asset}/cmaf/{rendition}/init.mp4`
    Init { asset: &'a str, rendition: &'a str },
    /// `/vod/{asset}/cmaf/{rendition}/{n}.m4s`
    Segment {
        asset: &'a str,
        rendition: &'a str,
        number: u32,
    },
    /// `/vod/{asset}/vtt/{track}/{n}.vtt` (fMP4 timeline) and
    /// `.../ts-{n}.vtt` (MPEG-TS timeline): WebVTT segment `n`.
    VttSegment {
        asset: &'a str,
        track: &'a str,
        number: u32,
        ts: bool,
    },
    /// `/vod/{asset}/vtt/{track}/all.vtt`: the whole track.
    VttFull { asset: &'a str, track: &'a str },
    /// `/vod/{asset}/vtt/{track}/t{from}-{to}.vtt`: the cues between two
    /// times (milliseconds), moved to start at 0, for clipped MPDs.
    VttSpan {
        asset: &'a str,
        track: &'a str,
        from_ms: u64,
        to_ms: u64,
    },
    /// `/vod/{asset}/cmaf/{rendition}/t{from}-{to}.m4s`: the samples of one
    /// segment between two times (milliseconds), for clips.
    Span {
        asset: &'a str,
        rendition: &'a str,
        from_ms: u64,
        to_ms: u64,
    },
    /// `/vod/{asset}/cmaf/{rendition}/iframes.m4s`: every keyframe's
    /// fragment back to back, for I-frame playlists' byte ranges.
    Iframes { asset: &'a str, rendition: &'a str },
    /// `/vod/{asset}/cmaf/{rendition}/k{n}.m4s`: keyframe `n` alone.
    Keyframe {
        asset: &'a str,
        rendition: &'a str,
        number: u32,
    },
}

impl<'a> Route<'a> {
    /// The VOD asset the route names; `None` for health, time and live.
    pub fn asset(&self) -> Option<&'a str> {
        match *self {
            Route::Health | Route::Ready | Route::Time | Route::Live { .. } => None,
            Route::HlsMultivariant { asset }
            | Route::HlsMedia { asset, .. }
            | Route::HlsIframes { asset, .. }
            | Route::HlsSubtitles { asset, .. }
            | Route::TsMultivariant { asset }
            | Route::TsMedia { asset, .. }
            | Route::TsIframes { asset, .. }
            | Route::TsSubtitles { asset, .. }
            | Route::TsSegment { asset, .. }
            | Route::TsSpan { asset, .. }
            | Route::VttSegment { asset, .. }
            | Route::VttFull { asset, .. }
            | Route::VttSpan { asset, .. }
            | Route::DashManifest { asset }
            | Route::Keyframe { asset, .. }
            | Route::Iframes { asset, .. }
            | Route::Span { asset, .. }
            | Route::Init { asset, .. }
            | Route::Segment { asset, .. } => Some(asset),
        }
    }

    /// Whether the route is one of the MPEG-TS ones (`/hls-ts/`, `/ts/`).
    pub fn is_ts(&self) -> bool {
        matches!(
            self,
            Route::TsMultivariant { .. }
                | Route::TsMedia { .. }
                | Route::TsIframes { .. }
                | Route::TsSegment { .. }
                | Route::TsSpan { .. }
        )
    }
}

/// Why a path is not a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The path is malformed (bad characters, empty or overlong segments).
    Malformed,
    /// The path is well formed but names nothing the server knows.
    NotFound,
}

/// Whether `s` is a valid asset or rendition name: `[A-Za-z0-9_-]{1,128}`.
pub fn is_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 128
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The `key=value` pairs of a query string, percent-decoded (`+` is a
/// space). Pairs that do not decode to UTF-8 are kept as `\u{fffd}` text,
/// which no filter accepts.
pub fn query_pairs(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .take(64)
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let hex = |c: u8| (c as char).to_digit(16);
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => match (hex(b[i + 1]), hex(b[i + 2])) {
                (Some(h), Some(l)) => {
                    out.push((h * 16 + l) as u8);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a request target into path and query (without `?`).
pub fn split_target(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

/// Routes a path (without its query).
pub fn route(path: &str) -> Result<Route<'_>, RouteError> {
    let Some(rest) = path.strip_prefix('/') else {
        return Err(RouteError::Malformed);
    };
    if rest.is_empty() {
        return Err(RouteError::NotFound);
    }
    let parts: Vec<&str> = rest.split('/').collect();
    if parts.len() > 5 {
        return Err(if parts.iter().all(|p| segment_ok(p)) {
            RouteError::NotFound
        } else {
            RouteError::Malformed
        });
    }
    if !parts.iter().all(|p| segment_ok(p)) {
        return Err(RouteError::Malformed);
    }
    match parts.as_slice() {
        ["healthz"] => Ok(Route::Health),
        ["readyz"] => Ok(Route::Ready),
        ["time"] => Ok(Route::Time),
        ["live", stream, dir @ ("hls" | "dash"), _, ..] => {
            if !is_name(stream) {
                return Err(RouteError::Malformed);
            }
            let prefix = "/live/".len() + stream.len() + 1 + dir.len() + 1;
            Ok(Route::Live {
                stream,
                hls: *dir == "hls",
                file: &path[prefix..],
            })
        }
        ["vod", asset, rest @ ..] => {
            if !is_name(asset) {
                return Err(RouteError::Malformed);
            }
            vod(asset, rest)
        }
        _ => Err(RouteError::NotFound),
    }
}

fn vod<'a>(asset: &'a str, rest: &[&'a str]) -> Result<Route<'a>, RouteError> {
    let named = |file: &'a str, ext: &str| -> Result<&'a str, RouteError> {
        let stem = file.strip_suffix(ext).ok_or(RouteError::NotFound)?;
        if is_name(stem) {
            Ok(stem)
        } else {
            Err(RouteError::Malformed)
        }
    };
    match rest {
        ["hls", "master.m3u8"] => Ok(Route::HlsMultivariant { asset }),
        ["hls", file] if file.ends_with(".vtt.m3u8") => Ok(Route::HlsSubtitles {
            asset,
            track: named(file, ".vtt.m3u8")?,
        }),
        ["hls", file] if file.ends_with(".iframes.m3u8") => Ok(Route::HlsIframes {
            asset,
            rendition: named(file, ".iframes.m3u8")?,
        }),
        ["hls", file] => Ok(Route::HlsMedia {
            asset,
            rendition: named(file, ".m3u8")?,
        }),
        ["vtt", track, file] => vtt(asset, track, file),
        ["hls-ts", "master.m3u8"] => Ok(Route::TsMultivariant { asset }),
        ["hls-ts", file] if file.ends_with(".vtt.m3u8") => Ok(Route::TsSubtitles {
            asset,
            track: named(file, ".vtt.m3u8")?,
        }),
        ["hls-ts", file] if file.ends_with(".iframes.m3u8") => Ok(Route::TsIframes {
            asset,
            program: program(file.strip_suffix(".iframes.m3u8").unwrap_or(""))?,
        }),
        ["hls-ts", file] => Ok(Route::TsMedia {
            asset,
            program: program(file.strip_suffix(".m3u8").ok_or(RouteError::NotFound)?)?,
        }),
        ["ts", prog, file] => ts(asset, prog, file),
        ["dash", "manifest.mpd"] => Ok(Route::DashManifest { asset }),
        ["cmaf", rendition, file] => cmaf(asset, rendition, file),
        _ => Err(RouteError::NotFound),
    }
}

/// `/vod/{asset}/vtt/{track}/...`: the whole track, a clip's span, or a
/// segment (`ts-` for the TS timeline).
fn vtt<'a>(asset: &'a str, track: &'a str, file: &'a str) -> Result<Route<'a>, RouteError> {
    if !is_name(track) {
        return Err(RouteError::Malformed);
    }
    if file == "all.vtt" {
        return Ok(Route::VttFull { asset, track });
    }
    let stem = file.strip_suffix(".vtt").ok_or(RouteError::NotFound)?;
    let span = stem
        .strip_prefix('t')
        .filter(|s| !s.starts_with('s'))
        .and_then(|s| s.split_once('-'));
    if let Some((from, to)) = span {
        let (from_ms, to_ms) = (millis(from)?, millis(to)?);
        if from_ms >= to_ms {
            return Err(RouteError::NotFound);
        }
        return Ok(Route::VttSpan {
            asset,
            track,
            from_ms,
            to_ms,
        });
    }
    let (ts, digits) = match stem.strip_prefix("ts-") {
        Some(d) => (true, d),
        None => (false, stem),
    };
    Ok(Route::VttSegment {
        asset,
        track,
        number: segment_number(digits)?,
        ts,
    })
}

/// `/vod/{asset}/ts/{program}/...`: a TS segment or a clip's span.
fn ts<'a>(asset: &'a str, prog: &'a str, file: &'a str) -> Result<Route<'a>, RouteError> {
    let digits = file.strip_suffix(".ts").ok_or(RouteError::NotFound)?;
    if let Some((from, to)) = digits.strip_prefix('t').and_then(|s| s.split_once('-')) {
        return Ok(Route::TsSpan {
            asset,
            program: program(prog)?,
            from_ms: millis(from)?,
            to_ms: millis(to)?,
        });
    }
    Ok(Route::TsSegment {
        asset,
        program: program(prog)?,
        number: segment_number(digits)?,
    })
}

/// `/vod/{asset}/cmaf/{rendition}/...`: init segment, trick resource,
/// span, keyframe fragment or media segment.
fn cmaf<'a>(asset: &'a str, rendition: &'a str, file: &'a str) -> Result<Route<'a>, RouteError> {
    if !is_name(rendition) {
        return Err(RouteError::Malformed);
    }
    match file {
        "init.mp4" => return Ok(Route::Init { asset, rendition }),
        "iframes.m4s" => return Ok(Route::Iframes { asset, rendition }),
        _ => {}
    }
    let stem = file.strip_suffix(".m4s").ok_or(RouteError::NotFound)?;
    if let Some((from, to)) = stem.strip_prefix('t').and_then(|s| s.split_once('-')) {
        return Ok(Route::Span {
            asset,
            rendition,
            from_ms: millis(from)?,
            to_ms: millis(to)?,
        });
    }
    Ok(match stem.strip_prefix('k') {
        Some(digits) => Route::Keyframe {
            asset,
            rendition,
            number: segment_number(digits)?,
        },
        None => Route::Segment {
            asset,
            rendition,
            number: segment_number(stem)?,
        },
    })
}

/// A TS program name: one or two names joined by `.`.
fn program(s: &str) -> Result<&str, RouteError> {
    let mut parts = s.split('.');
    let ok = parts.next().is_some_and(is_name)
        && parts.next().is_none_or(is_name)
        && parts.next().is_none();
    if ok {
        Ok(s)
    } else {
        Err(RouteError::Malformed)
    }
}

/// Milliseconds: at most ten digits, no leading zero but in `0` itself.
fn millis(digits: &str) -> Result<u64, RouteError> {
    let canonical = digits == "0" || !digits.starts_with('0');
    if digits.is_empty()
        || digits.len() > 10
        || !canonical
        || !digits.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(RouteError::NotFound);
    }
    digits.parse().map_err(|_| RouteError::NotFound)
}

/// A 1-based number without leading zeros, at most nine digits.
fn segment_number(digits: &str) -> Result<u32, RouteError> {
    if digits.is_empty()
        || digits.len() > 9
        || !digits.bytes().all(|b| b.is_ascii_digit())
        || digits.starts_with('0')
    {
        return Err(RouteError::NotFound);
    }
    digits.parse().map_err(|_| RouteError::NotFound)
}

/// A path segment may hold only `[A-Za-z0-9_.-]` and may not be `.` or `..`.
fn segment_ok(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 160
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_decode() {
        assert_eq!(
            query_pairs("a=1&audio_language=en%2Cfr&&b&c=%zz&d=x+y&e=%4"),
            [
                ("a", "1"),
                ("audio_language", "en,fr"),
                ("b", ""),
                ("c", "%zz"),
                ("d", "x y"),
                ("e", "%4"),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn vtt_spans_and_segments() {
        assert_eq!(
            route("/vod/a/vtt/en/t2000-6000.vtt"),
            Ok(Route::VttSpan {
                asset: "a",
                track: "en",
                from_ms: 2000,
                to_ms: 6000
            })
        );
        assert_eq!(
            route("/vod/a/vtt/en/ts-1.vtt"),
            Ok(Route::VttSegment {
                asset: "a",
                track: "en",
                number: 1,
                ts: true
            })
        );
        for bad in ["t6000-2000", "t5-5", "t01-5", "t-5", "t5-", "tx-5"] {
            assert_eq!(
                route(&format!("/vod/a/vtt/en/{bad}.vtt")),
                Err(RouteError::NotFound),
                "{bad}"
            );
        }
    }

    #[test]
    fn routes() {
        assert_eq!(
            route("/vod/a/hls/master.m3u8"),
            Ok(Route::HlsMultivariant { asset: "a" })
        );
        assert_eq!(
            route("/vod/a/hls/v1.m3u8"),
            Ok(Route::HlsMedia {
                asset: "a",
                rendition: "v1"
            })
        );
        assert_eq!(
            route("/vod/a/dash/manifest.mpd"),
            Ok(Route::DashManifest { asset: "a" })
        );
        assert_eq!(
            route("/vod/a/cmaf/v1/init.mp4"),
            Ok(Route::Init {
                asset: "a",
                rendition: "v1"
            })
        );
        assert_eq!(
            route("/vod/a/cmaf/v1/12.m4s"),
            Ok(Route::Segment {
                asset: "a",
                rendition: "v1",
                number: 12
            })
        );
        assert_eq!(
            route("/vod/a/cmaf/v1/iframes.m4s"),
            Ok(Route::Iframes {
                asset: "a",
                rendition: "v1"
            })
        );
        assert_eq!(
            route("/vod/a/ts/v1.a2/t2000-4000.ts"),
            Ok(Route::TsSpan {
                asset: "a",
                program: "v1.a2",
                from_ms: 2000,
                to_ms: 4000
            })
        );
        assert_eq!(route("/healthz"), Ok(Route::Health));
    }

    #[test]
    fn traversal_and_garbage_are_malformed() {
        for p in [
            "/vod/../etc/passwd",
            "/vod/a/../../etc/passwd",
            "/vod/%2e%2e/hls/master.m3u8",
            "/vod/a\\b/hls/master.m3u8",
            "/vod//hls/master.m3u8",
            "vod/a/hls/master.m3u8",
            "/vod/a.b/hls/master.m3u8",
            "/vod/a/cmaf/../init.mp4",
        ] {
            assert_eq!(route(p), Err(RouteError::Malformed), "{p}");
        }
    }

    #[test]
    fn unknown_is_not_found() {
        for p in [
            "/",
            "/favicon.ico",
            "/vod/a",
            "/vod/a/hls/x.txt",
            "/vod/a/cmaf/v1/0.m4s",
            "/vod/a/cmaf/v1/01.m4s",
            "/vod/a/cmaf/v1/9999999999.m4s",
            "/vod/a/cmaf/v1/iframes.mp4",
            "/vod/a/ts/v1/t02-4.ts",
            "/vod/a/ts/v1/t2-.ts",
        ] {
            assert_eq!(route(p), Err(RouteError::NotFound), "{p}");
        }
    }
}
