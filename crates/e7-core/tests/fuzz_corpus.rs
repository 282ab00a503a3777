//! Replays the `core_ops` fuzz corpus (fuzz/corpus/core_ops/) on stable through the same decoder
//! and model checks the fuzz target uses, plus a deterministic pseudo-random sweep.

use std::path::Path;

#[test]
fn replay_core_ops_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/core_ops");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).expect("fuzz/corpus/core_ops exists") {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if let Err(e) = e7_core::fuzzing::run(&data) {
            panic!("{}: {e}", path.display());
        }
        n += 1;
    }
    assert!(n >= 8, "corpus too small: {n} files");
}

#[test]
fn pseudo_random_op_sequences_agree_with_models() {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for round in 0..400 {
        let len = 64 + (round % 7) * 150;
        let data: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 24) as u8
            })
            .collect();
        if let Err(e) = e7_core::fuzzing::run(&data) {
            panic!("round {round}: {e}\ninput: {data:?}");
        }
    }
}
