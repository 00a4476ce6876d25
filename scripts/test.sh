#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what is missing, checks
# formatting and lints, builds once, then runs every test (unit, property,
# integration with real ffmpeg/GStreamer media, HTTP, golden files, real
# players in headless Chromium) with cargo-nextest, and the criterion
# benchmarks once each in test mode.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings
cargo build --workspace --all-targets --locked
# Make the media corpus once, before tests race for it.
tests/media/generate.sh target/test-media >/dev/null
cargo nextest run --workspace --locked --profile ci
cargo test --doc --workspace --locked
# Benchmarks compile and run one iteration each; timing is not asserted.
cargo test --benches -p headwater-benches --locked
# Ten minutes of mixed load (VOD, three live streams with LL-HLS viewers,
# API writes) on the debug build: no error, memory and descriptors flat.
python3 benches/soak.py --minutes 10 --dvr 120 --bin target/debug/headwater \
  --loadtest target/debug/loadtest --out target/soak
echo "test: all passed"
