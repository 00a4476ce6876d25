//! What publishers put in their URLs: the stream name and the key.
//!
//! Accepted (and nothing else):
//!
//! | protocol | form |
//! |---|---|
//! | RTMP | app `live`, publish name `{stream}?key={key}` (`rtmp://HOST/live/{stream}?key={key}`, or OBS with server `rtmp://HOST/live` and stream key `{stream}?key={key}`) |
//! | RTMP | app `live?key={key}` (the key in the tcUrl's query), publish name `{stream}` |
//! | SRT | `streamid=#!::r=live/{stream},m=publish,k={key}` (SRT access-control syntax; `m` may be left out) |
//! | SRT | `streamid=live/{stream}?key={key}` |
//!
//! `{stream}` is `[A-Za-z0-9_-]{1,128}`. A missing key is an empty key
//! (which the key check refuses unless it allows one).

/// The application name publishers use.
pub(crate) const APP: &str = "live";

/// A stream name and the key its publisher presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Claim {
    pub(crate) stream: String,
    pub(crate) key: String,
}

/// Whether `name` is a valid stream name (`[A-Za-z0-9_-]{1,128}`).
pub(crate) fn valid_stream(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// The value of `key` in a `a=b&c=d` query.
fn query_key(query: &str) -> Option<&str> {
    query.split('&').find_map(|kv| kv.strip_prefix("key="))
}

/// Splits `path?query` into the path and the key from the query.
fn split_key(s: &str) -> (&str, Option<&str>) {
    match s.split_once('?') {
        Some((path, query)) => (path, query_key(query)),
        None => (s, None),
    }
}

/// The claim of an RTMP publish: `app` from `connect`, `name` from `publish`.
pub(crate) fn rtmp(app: &str, name: &str) -> Option<Claim> {
    let (app, app_key) = split_key(app.trim_matches('/'));
    if app != APP {
        return None;
    }
    // Some clients send the whole `live/{stream}` as the publish name.
    let name = name.strip_prefix("live/").unwrap_or(name);
    let (stream, name_key) = split_key(name);
    if !valid_stream(stream) {
        return None;
    }
    Some(Claim {
        stream: stream.to_owned(),
        key: name_key.or(app_key).unwrap_or("").to_owned(),
    })
}

/// The claim of an SRT caller's `streamid`.
pub(crate) fn srt(stream_id: &str) -> Option<Claim> {
    let (resource, key) = if let Some(fields) = stream_id.strip_prefix("#!::") {
        let mut resource = None;
        let mut key = None;
        for field in fields.split(',') {
            let (k, v) = field.split_once('=')?;
            match k {
                "r" => resource = Some(v),
                "k" => key = Some(v),
                "m" if v != "publish" => return None,
                _ => {}
            }
        }
        (resource?, key)
    } else {
        split_key(stream_id)
    };
    let stream = resource.strip_prefix("live/")?;
    if !valid_stream(stream) {
        return None;
    }
    Some(Claim {
        stream: stream.to_owned(),
        key: key.unwrap_or("").to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(stream: &str, key: &str) -> Option<Claim> {
        Some(Claim {
            stream: stream.into(),
            key: key.into(),
        })
    }

    #[test]
    fn rtmp_forms() {
        assert_eq!(rtmp("live", "s1?key=K"), claim("s1", "K"));
        assert_eq!(rtmp("live/", "s1?a=b&key=K"), claim("s1", "K"));
        assert_eq!(rtmp("live?key=K", "s1"), claim("s1", "K"));
        assert_eq!(rtmp("live", "live/s1?key=K"), claim("s1", "K"));
        assert_eq!(rtmp("live", "s1"), claim("s1", ""));
        assert_eq!(rtmp("other", "s1?key=K"), None);
        assert_eq!(rtmp("live", "../x?key=K"), None);
        assert_eq!(rtmp("live", "?key=K"), None);
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_input_never_panics_and_names_are_valid(app in ".{0,40}", name in ".{0,80}") {
            for c in [rtmp(&app, &name), srt(&name)].into_iter().flatten() {
                proptest::prop_assert!(valid_stream(&c.stream));
            }
        }

        #[test]
        fn valid_claims_read_back(stream in "[A-Za-z0-9_-]{1,128}", key in "[A-Za-z0-9_.~-]{0,40}") {
            let want = claim(&stream, &key);
            proptest::prop_assert_eq!(rtmp("live", &format!("{stream}?key={key}")), want.clone());
            proptest::prop_assert_eq!(srt(&format!("#!::r=live/{stream},m=publish,k={key}")), want.clone());
            proptest::prop_assert_eq!(srt(&format!("live/{stream}?key={key}")), want);
        }
    }

    #[test]
    fn srt_forms() {
        assert_eq!(srt("#!::r=live/s2,m=publish,k=K"), claim("s2", "K"));
        assert_eq!(srt("#!::k=K,r=live/s2"), claim("s2", "K"));
        assert_eq!(srt("#!::r=live/s2,m=request,k=K"), None);
        assert_eq!(srt("#!::r=s2,k=K"), None);
        assert_eq!(srt("live/s3?key=K"), claim("s3", "K"));
        assert_eq!(srt("live/s3"), claim("s3", ""));
        assert_eq!(srt("s3?key=K"), None);
        assert_eq!(srt(""), None);
    }
}
