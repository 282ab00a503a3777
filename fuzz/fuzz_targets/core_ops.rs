//! Fuzz target: random operation sequences on e7-core's caches, executable table and rule ring,
//! checked against simple models after every operation (decoder and models live in
//! `e7_core::fuzzing`, shared with the stable replay test `crates/e7-core/tests/fuzz_corpus.rs`).
//!
//! Run: `cargo +nightly fuzz run core_ops fuzz/corpus/core_ops`
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(e) = e7_core::fuzzing::run(data) {
        panic!("core_ops model mismatch: {e}");
    }
});
