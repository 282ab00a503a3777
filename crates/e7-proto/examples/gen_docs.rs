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
        let block = e7_proto::docs::splice(&text, name)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if !block.is_current() {
            std::fs::write(&path, block.to_string())
                .unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
            println!("updated {file} ({name})");
        }
    }
}
