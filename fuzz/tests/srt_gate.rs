//! What the SRT gate is for: each input under `corpus/srt/` named for a
//! shape srt-protocol 0.4 panics on is a real libsrt handshake followed by
//! that datagram. Through srt-protocol alone it panics (in production that
//! panic is in the listener task, and SRT ingest would end for every
//! caller); through the gate, as the port runs, it does not. If a new
//! srt-protocol stops panicking on one, this test says so and the gate may
//! admit it again.

use std::path::Path;

const PANICS: &[&str] = &[
    "congestion-extension",
    "empty-stream-id",
    "key-material-without-passphrase",
    "key-response-in-request",
    "congestion-warning",
    "peer-error",
    "srt-stream-id-control",
];

#[test]
fn the_gate_keeps_out_what_srt_protocol_panics_on() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/srt");
    let mut wrong = Vec::new();
    for name in PANICS {
        let bytes = std::fs::read(dir.join(name)).expect("a corpus file");
        let ungated = quietly(|| headwater_ingest::fuzzing::srt_ungated(&bytes));
        if ungated.is_ok() {
            wrong.push(format!("{name}: srt-protocol no longer panics"));
        }
        if quietly(|| headwater_ingest::fuzzing::srt(&bytes)).is_err() {
            wrong.push(format!("{name}: the gate let it through"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}

#[test]
fn recorded_libsrt_sessions_open_through_the_gate() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/srt");
    for name in ["libsrt-session", "libsrt-session-encrypted"] {
        let bytes = std::fs::read(dir.join(name)).expect("a corpus file");
        assert!(
            headwater_ingest::fuzzing::srt_opens_a_session(&bytes),
            "{name}"
        );
    }
}

fn quietly(f: impl FnOnce() + std::panic::UnwindSafe) -> std::thread::Result<()> {
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let result = std::panic::catch_unwind(f);
    std::panic::set_hook(hook);
    result
}
