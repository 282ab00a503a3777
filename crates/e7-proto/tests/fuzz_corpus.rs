//! Replays every file of the `nla_parse` fuzz corpus through the fuzz target's code
//! (`e7_proto::fuzzing::check_input`), so CI exercises the corpus without nightly.

use std::path::Path;

#[test]
fn replay_nla_parse_corpus() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/nla_parse");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read corpus {}: {e}", dir.display()))
        .map(|e| e.expect("corpus entry").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    assert!(
        files.len() >= 12,
        "expected at least a dozen seed files in {}; regenerate with: \
         cargo run -q -p e7-proto --example gen_corpus -- fuzz/corpus/nla_parse",
        dir.display()
    );
    let (mut valid, mut invalid) = (0, 0);
    for path in &files {
        let data = std::fs::read(path).expect("readable corpus file");
        if let Err(m) = e7_proto::fuzzing::check_input(&data) {
            panic!("{}: {m}", path.display());
        }
        let parses = (0..=u8::MAX).any(|c| {
            e7_proto::msg::parse_request(c, &data).is_ok()
                || e7_proto::msg::parse_reply(c, &data).is_ok()
        });
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with("valid-") {
            assert!(parses, "{name} should parse under some command");
            valid += 1;
        } else if name.starts_with("invalid-") {
            invalid += 1;
        }
    }
    assert!(
        valid >= 6 && invalid >= 6,
        "seed corpus should hold valid and invalid messages"
    );
}
