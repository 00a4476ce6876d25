//! HTTP dates (RFC 9110 §5.6.7), formatted once per second per thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static NOW: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

/// Appends the current time as an IMF-fixdate.
pub(crate) fn now(out: &mut Vec<u8>) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    NOW.with(|cell| {
        let mut c = cell.borrow_mut();
        if c.0 != secs {
            c.1 = httpdate::fmt_http_date(UNIX_EPOCH + std::time::Duration::from_secs(secs));
            c.0 = secs;
        }
        out.extend_from_slice(c.1.as_bytes());
    });
}

/// Formats a time as an IMF-fixdate.
pub(crate) fn format(t: SystemTime) -> String {
    httpdate::fmt_http_date(t)
}

/// Parses an HTTP date.
pub(crate) fn parse(s: &str) -> Option<SystemTime> {
    httpdate::parse_http_date(s).ok()
}
