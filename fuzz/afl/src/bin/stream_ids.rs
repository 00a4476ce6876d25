//! `cargo afl fuzz` harness of the `stream_ids` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::target("stream_ids");
    afl::fuzz!(|data: &[u8]| target(data));
}
