//! `cargo afl fuzz` harness of the `query` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::target("query");
    afl::fuzz!(|data: &[u8]| target(data));
}
