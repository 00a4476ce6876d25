//! `cargo afl fuzz` harness of the `srt` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::target("srt");
    afl::fuzz!(|data: &[u8]| target(data));
}
