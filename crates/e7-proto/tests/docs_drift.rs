//! Every generated documentation block must be exactly what `e7_proto::docs` prints: a hand edit
//! of a flag table (or a new schema row without regenerating) fails here.

use std::path::Path;

#[test]
fn generated_doc_blocks_match_the_schema() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for &(name, file) in e7_proto::docs::BLOCKS {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let block = e7_proto::docs::splice(&text, name).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert!(
            block.is_current(),
            "{file}: the generated block `{name}` differs from the schema (edited by hand?); \
             regenerate with:\n    {}\n--- on disk ---\n{}--- generated ---\n{}",
            e7_proto::docs::REGENERATE,
            block.current,
            block.generated
        );
    }
}

#[test]
fn splice_finds_blocks_and_names_missing_markers() {
    use e7_proto::docs::{splice, Begin, End, SpliceError};
    let name = "cli-flags";
    let doc = format!("intro\n{}\nstale\n{}\noutro\n", Begin(name), End(name));
    let b = splice(&doc, name).unwrap();
    assert_eq!(b.current, "stale\n");
    assert!(!b.is_current());
    let regenerated = b.to_string();
    assert!(regenerated.starts_with("intro\n") && regenerated.ends_with("\noutro\n"));
    let again = splice(&regenerated, name).unwrap();
    assert!(again.is_current(), "a regenerated document is current");
    assert_eq!(again.to_string(), regenerated, "regenerating is idempotent");
    assert_eq!(
        splice(&doc, "nope").err(),
        Some(SpliceError::UnknownBlock("nope"))
    );
    assert_eq!(
        splice("intro\n", name).err(),
        Some(SpliceError::NoBegin(name))
    );
    let cut = format!("{}\nno end\n", Begin(name));
    let err = splice(&cut, name).err().unwrap();
    assert_eq!(err, SpliceError::NoEnd(name));
    assert!(err
        .to_string()
        .contains("<!-- END generated: cli-flags -->"));
}

#[test]
fn module_parameter_descriptions_name_values_and_default() {
    let d = e7_proto::docs::ParamDoc(e7_proto::Flag::UnkRule).to_string();
    assert_eq!(
        d,
        "verdict for identified programs without a rule: allow or block (default allow)"
    );
    assert_eq!(
        e7_proto::docs::SettableList.to_string(),
        "mode, debug, fail, unkproc, unkprot, norule, squelch, unkrule, drops, accepts, rchngq, longpath, nspath, statsunpriv"
    );
}
