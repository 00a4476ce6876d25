//! `cargo afl fuzz` harness of the `webvtt` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::target("webvtt");
    afl::fuzz!(|data: &[u8]| target(data));
}
