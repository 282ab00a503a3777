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
        let begin = e7_proto::docs::Begin(name).to_string();
        let end = e7_proto::docs::End(name).to_string();
        let b = text
            .find(&begin)
            .unwrap_or_else(|| panic!("{file}: no `{begin}` marker"));
        let e = text
            .find(&end)
            .unwrap_or_else(|| panic!("{file}: no `{end}` marker"));
        assert!(b < e, "{file}: markers of {name} out of order");
        let on_disk = &text[b + begin.len() + 1..e];
        let generated = e7_proto::docs::block(name).unwrap().to_string();
        assert!(
            on_disk == generated,
            "{file}: the generated block `{name}` differs from the schema (edited by hand?); \
             regenerate with:\n    {}\n--- on disk ---\n{on_disk}--- generated ---\n{generated}",
            e7_proto::docs::REGENERATE
        );
    }
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
        "mode, debug, fail, unkproc, unkprot, norule, squelch, unkrule, drops, accepts, rchngq, longpath, nspath"
    );
}
