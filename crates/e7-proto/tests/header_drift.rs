//! The checked-in C header must be exactly what `c_header()` prints.

use std::path::Path;

#[test]
fn checked_in_header_matches_generator() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e7-kmod/e7_proto.h");
    let on_disk = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; regenerate it with: {}",
            path.display(),
            e7_proto::header::REGENERATE
        )
    });
    let generated = e7_proto::c_header().to_string();
    assert!(
        on_disk == generated,
        "{} is stale (it differs from e7_proto::c_header()); regenerate it with:\n    {}",
        path.display(),
        e7_proto::header::REGENERATE
    );
}

#[test]
fn header_is_ascii_and_balanced() {
    let h = e7_proto::c_header().to_string();
    assert!(h.is_ascii(), "the C header must be plain ASCII");
    assert_eq!(
        h.matches("/*").count(),
        h.matches("*/").count(),
        "unbalanced C comments"
    );
    assert!(h.starts_with("/* SPDX-License-Identifier: GPL-2.0-only */"));
    assert!(h.contains("#ifndef E7_PROTO_H\n#define E7_PROTO_H\n"));
    assert!(h.trim_end().ends_with("#endif /* E7_PROTO_H */"));
}
