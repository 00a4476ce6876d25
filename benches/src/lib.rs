//! Benchmarks live in `benches/`; this crate has no library code. See
//! `benches/README.md` for the side-by-side load benchmarks.
#![forbid(unsafe_code)]
