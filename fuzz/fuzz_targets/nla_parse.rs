//! Fuzz target: arbitrary bytes as a generic-netlink attribute block.
//!
//! Runs `e7_proto::fuzzing::check_input`, which walks the attributes, parses the bytes as a
//! request and as a reply for every command byte, and checks that every successful parse
//! survives emit -> parse unchanged. `crates/e7-proto/tests/fuzz_corpus.rs` replays the corpus
//! (fuzz/corpus/nla_parse) through the same function on stable.
//!
//! Run: `cargo +nightly fuzz run nla_parse` (from the repository root).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Err(mismatch) = e7_proto::fuzzing::check_input(data) {
        panic!("{mismatch}");
    }
});
