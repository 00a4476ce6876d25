//! `cargo afl fuzz` harness of the `http` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::target("http");
    afl::fuzz!(|data: &[u8]| target(data));
}
