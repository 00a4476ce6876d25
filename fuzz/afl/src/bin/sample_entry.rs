//! `cargo afl fuzz` harness of the `sample_entry` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::target("sample_entry");
    afl::fuzz!(|data: &[u8]| target(data));
}
