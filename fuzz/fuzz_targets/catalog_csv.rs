//! Fuzz target: `showfloor::fuzzing::catalog` (the body lives in the crate, where
//! `tests/fuzz_corpus.rs` replays this target's corpus on every `cargo test`).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| showfloor::fuzzing::catalog(data));
