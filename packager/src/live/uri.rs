//! The URIs live playlists and MPDs write, and their parsing back: the
//! origin routes a request path (below the stream's `hls/` or `dash/`) to
//! the bytes with [`LiveUri::parse`].

use std::fmt;

/// A live resource below a stream's manifest directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LiveUri {
    /// `{rendition}.m3u8`: a media playlist.
    MediaPlaylist {
        /// The rendition (track) name.
        rendition: String,
    },
    /// `{rendition}/init.mp4` (the first codec configuration), or
    /// `{rendition}/init-{generation}.mp4` after a returning publisher
    /// changed it ([`crate::live::LiveStream::reconfigure`]).
    Init {
        /// The rendition name.
        rendition: String,
        /// The configuration's generation, from 0.
        generation: u32,
    },
    /// `{rendition}/{msn}.m4s`: a whole segment.
    Segment {
        /// The rendition name.
        rendition: String,
        /// Media sequence number.
        msn: u64,
    },
    /// `{rendition}/{msn}.{part}.m4s`: one part.
    Part {
        /// The rendition name.
        rendition: String,
        /// Media sequence number of its segment.
        msn: u64,
        /// Part index from 0.
        part: u32,
    },
}

fn name_ok(n: &str) -> bool {
    (1..=64).contains(&n.len())
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A decimal number without sign or leading zeros (so one URI per value).
fn number<T: std::str::FromStr>(s: &str) -> Option<T> {
    let canonical =
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    if canonical { s.parse().ok() } else { None }
}

impl LiveUri {
    /// Parses a relative path (no query) as written by [`fmt::Display`].
    pub fn parse(path: &str) -> Option<Self> {
        if let Some(r) = path.strip_suffix(".m3u8") {
            return name_ok(r).then(|| LiveUri::MediaPlaylist {
                rendition: r.to_owned(),
            });
        }
        let (r, file) = path.split_once('/')?;
        if !name_ok(r) {
            return None;
        }
        let rendition = r.to_owned();
        if file == "init.mp4" {
            return Some(LiveUri::Init {
                rendition,
                generation: 0,
            });
        }
        if let Some(g) = file
            .strip_prefix("init-")
            .and_then(|f| f.strip_suffix(".mp4"))
        {
            // `init-0.mp4` would be a second name for `init.mp4`.
            return number(g)
                .filter(|&g| g > 0)
                .map(|generation| LiveUri::Init {
                    rendition,
                    generation,
                });
        }
        let stem = file.strip_suffix(".m4s")?;
        match stem.split_once('.') {
            None => Some(LiveUri::Segment {
                rendition,
                msn: number(stem)?,
            }),
            Some((m, p)) => Some(LiveUri::Part {
                rendition,
                msn: number(m)?,
                part: number(p)?,
            }),
        }
    }
}

impl fmt::Display for LiveUri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveUri::MediaPlaylist { rendition } => write!(f, "{rendition}.m3u8"),
            LiveUri::Init {
                rendition,
                generation: 0,
            } => write!(f, "{rendition}/init.mp4"),
            LiveUri::Init {
                rendition,
                generation,
            } => write!(f, "{rendition}/init-{generation}.mp4"),
            LiveUri::Segment { rendition, msn } => write!(f, "{rendition}/{msn}.m4s"),
            LiveUri::Part {
                rendition,
                msn,
                part,
            } => write!(f, "{rendition}/{msn}.{part}.m4s"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        for s in [
            "v720.m3u8",
            "a/init.mp4",
            "a/init-3.mp4",
            "v/12.m4s",
            "v/12.0.m4s",
            "x_1-b/0.3.m4s",
        ] {
            assert_eq!(LiveUri::parse(s).unwrap().to_string(), s);
        }
        for s in [
            "../x.m3u8",
            "v/01.m4s",
            "v/1.+2.m4s",
            "v/a.m4s",
            "v/1.2.3.m4s",
            "v/x/1.m4s",
            "v/init-0.mp4",
            "v/init-01.mp4",
            "v/init-.mp4",
        ] {
            assert_eq!(LiveUri::parse(s), None, "{s}");
        }
    }
}
