//! `cargo afl fuzz` harness of the `token` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::target("token");
    afl::fuzz!(|data: &[u8]| target(data));
}
