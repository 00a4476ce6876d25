//! `cargo afl fuzz` harness of the `srt` target (headwater_fuzz::TARGETS).
//!
//! cargo-afl turns overflow checks on in every crate; headwater's builds
//! turn them off in srt-protocol, whose clock arithmetic wraps by design
//! (32-bit SRT timestamps; see the workspace Cargo.toml). So an
//! arithmetic-overflow panic inside srt-protocol is what production does
//! not do and is not a crash here; any other panic is.

use std::cell::Cell;

thread_local! {
    static WRAPS_IN_PRODUCTION: Cell<bool> = const { Cell::new(false) };
}

fn main() {
    let target = headwater_fuzz::target("srt");
    std::panic::set_hook(Box::new(|info| {
        let overflow = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.starts_with("attempt to") && m.ends_with("with overflow"));
        let in_srt_protocol = info
            .location()
            .is_some_and(|l| l.file().contains("/srt-protocol-"));
        WRAPS_IN_PRODUCTION.with(|w| w.set(overflow && in_srt_protocol));
    }));
    afl::fuzz_nohook!(|data: &[u8]| {
        if std::panic::catch_unwind(|| target(data)).is_err()
            && !WRAPS_IN_PRODUCTION.with(Cell::get)
        {
            std::process::abort();
        }
    });
}
