//! Entry points of the fuzz targets (`fuzz/`), compiled only with the
//! `fuzzing` feature: every parser a request's bytes reach before a file
//! is opened, in the order a connection runs them.

use crate::http::date;
use crate::http::range::{self, RangeRequest};
use crate::http::request::{self, Parsed, RequestHead};
use crate::route;

/// Parses `bytes` as the start of a connection's buffer: the head, then
/// its target (route, query pairs), `Range` against a few lengths,
/// `If-None-Match` and `If-Modified-Since`. Panics only on a bug.
pub fn request(bytes: &[u8]) {
    let mut head = RequestHead::default();
    head.ip_header.push_str("x-forwarded-for");
    let Parsed::Complete(len) = head.parse(bytes) else {
        return;
    };
    assert!(len <= bytes.len(), "a head longer than its buffer");
    let (path, query) = route::split_target(&head.target);
    let _ = route::route(path);
    if let Some(q) = query {
        for (k, v) in route::query_pairs(q) {
            let _ = headwater_packager::clip::parse_seconds(&k, &v);
        }
    }
    if let Some(r) = head.range.as_deref() {
        for total in [0, 1, 1 << 20, u64::MAX] {
            if let RangeRequest::Partial { start, end } = range::parse(r, total) {
                assert!(
                    start < end && end <= total,
                    "{r:?} of {total}: {start}..{end}"
                );
            }
        }
    }
    if let Some(inm) = head.if_none_match.as_deref() {
        let _ = request::etag_matches(inm, "\"5f3a\"");
    }
    if let Some(ims) = head.if_modified_since.as_deref() {
        let _ = date::parse(ims);
    }
}
