//! `cargo afl fuzz` harness of the `rtmp` target (headwater_fuzz::TARGETS).
//!
//! rml_rtmp 0.8 panics on some malformed chunks and AMF0 commands (an
//! unchecked subtraction in its chunk deserializer, a `drain` past the end
//! of a short command); the connection code catches those (`guarded` in
//! ingest/src/rtmp.rs) and drops the connection, as production does. So
//! this harness does not turn every panic into an abort: only one that
//! escapes the connection code is a crash.

fn main() {
    let target = headwater_fuzz::target("rtmp");
    // Caught panics are expected here; printing each would slow the run.
    std::panic::set_hook(Box::new(|_| {}));
    afl::fuzz_nohook!(|data: &[u8]| target(data));
}
