//! `cargo afl fuzz` harness of the `stream_ids` target (headwater_fuzz::TARGETS).

fn main() {
    let target = headwater_fuzz::TARGETS
        .iter()
        .find(|(name, _)| *name == "stream_ids")
        .map(|(_, f)| *f)
        .expect("a target of this name");
    afl::fuzz!(|data: &[u8]| target(data));
}
