//! Rewrites the generated blocks of the documentation (`e7_proto::docs::BLOCKS`) in place.
//!
//! ```text
//! cargo run -q -p e7-proto --example gen_docs
//! ```

use std::path::Path;

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for &(name, file) in e7_proto::docs::BLOCKS {
        let path = root.join(file);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
        let begin = e7_proto::docs::Begin(name).to_string();
        let end = e7_proto::docs::End(name).to_string();
        let body = e7_proto::docs::block(name)
            .expect("listed block")
            .to_string();
        let (Some(b), Some(e)) = (text.find(&begin), text.find(&end)) else {
            panic!("{}: missing the markers\n{begin}\n{end}", path.display());
        };
        let new = format!("{}{begin}\n{body}{}", &text[..b], &text[e..]);
        if new != text {
            std::fs::write(&path, new)
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            println!("updated {file} ({name})");
        }
    }
}
