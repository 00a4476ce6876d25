//! Every input kept under `fuzz/corpus/{target}` (the seeds, what the
//! fuzzer found that reached new code, and every crash turned regression)
//! runs through its target: none may panic. Seconds in CI.

use std::path::Path;

#[test]
fn every_corpus_input_runs_clean() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, target) in headwater_fuzz::TARGETS {
        let dir = root.join(name);
        let mut inputs: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("a directory entry").path())
            .collect();
        inputs.sort();
        assert!(!inputs.is_empty(), "{name} has a corpus");
        for input in inputs {
            let bytes = std::fs::read(&input).expect("a corpus file");
            let run = std::panic::catch_unwind(|| target(&bytes));
            assert!(run.is_ok(), "{} panics {name}", input.display());
        }
    }
}
