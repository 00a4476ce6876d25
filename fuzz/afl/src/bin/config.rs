//! `cargo afl fuzz` harness of the `config` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::target("config");
    afl::fuzz!(|data: &[u8]| target(data));
}
