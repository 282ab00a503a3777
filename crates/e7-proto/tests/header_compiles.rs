//! The generated C header compiles warning-free with the C compiler, and every number in it equals
//! the Rust schema's (checked by `_Static_assert`s generated here from the Rust side).
//!
//! The kernel's `struct nla_policy` and `GENL_ADMIN_PERM` are stubbed with the same field names
//! and the same NLA_* names as linux/netlink.h, so the policy initializer is checked for syntax and
//! field names without a kernel build tree (the real kernel build is `make -C crates/e7-kmod`).

use std::fmt::Write as _;
use std::process::Command;

use e7_proto::{Attr, AttrKind, Command as Cmd, Const, Flag, ValueClass};

fn c_test_program() -> String {
    let mut c = String::new();
    c.push_str(
        "#include <stdint.h>\n\
         typedef uint16_t u16; typedef uint8_t u8; typedef uint32_t u32;\n\
         enum { NLA_UNSPEC, NLA_U8, NLA_U16, NLA_U32, NLA_U64, NLA_STRING, NLA_FLAG, NLA_MSECS, NLA_NESTED, \
         NLA_NESTED_ARRAY, NLA_NUL_STRING };\n\
         struct nla_policy { u8 type; u8 validation_type; u16 len; };\n\
         #define GENL_ADMIN_PERM 0x01\n",
    );
    c.push_str(&e7_proto::c_header().to_string());
    c.push_str("static const struct nla_policy e7_policy[E7_ATTR_MAX + 1] = { E7_POLICY_INIT };\n");
    c.push_str("static const u32 e7_defaults[E7_FLAG_COUNT] = { E7_FLAG_DEFAULTS_INIT };\n");
    let mut sa = |cond: String| {
        writeln!(c, "_Static_assert({cond}, \"{}\");", cond.replace('"', "'")).unwrap()
    };
    sa(format!(
        "sizeof(E7_FAMILY_NAME) == {}",
        e7_proto::FAMILY_NAME.len() + 1
    ));
    sa(format!("E7_MAX_PATH_LEN == {}", e7_proto::MAX_PATH_LEN));
    sa(format!("E7_CMD_MAX == {}", Cmd::MAX));
    sa(format!("E7_ATTR_MAX == {}", Attr::MAX));
    sa(format!("E7_FLAG_COUNT == {}", Flag::COUNT));
    for k in Const::ALL {
        sa(format!("{} == {}u", k.id_name(), k.value()));
    }
    for m in Cmd::ALL {
        sa(format!("{} == {}", m.id_name(), m.value()));
        sa(format!("{}_ADMIN == {}", m.id_name(), u8::from(m.admin())));
        sa(format!(
            "{}_GENL_FLAGS == {}",
            m.id_name(),
            if m.admin() { 1 } else { 0 }
        ));
    }
    for a in Attr::ALL {
        sa(format!("{} == {}", a.id_name(), a.value()));
    }
    for f in Flag::ALL {
        sa(format!("{} == {}", f.id_name(), f.index()));
        sa(format!("{}_DEFAULT == {}u", f.id_name(), f.default_value()));
        let class = ValueClass::ALL
            .iter()
            .position(|c| *c == f.class())
            .unwrap();
        sa(format!("{}_CLASS == {}", f.id_name(), class));
    }
    c
}

/// Asserts (at run time, in a function the compiler must accept) that the policy array holds the
/// right types and lengths.
fn policy_checks() -> String {
    let mut c = String::from("int policy_ok(void) {\n\tint ok = 1;\n");
    for a in Attr::ALL {
        let (ty, len) = match a.kind() {
            AttrKind::Nested => ("NLA_NESTED", 0),
            AttrKind::NulString { max_len } => ("NLA_NUL_STRING", max_len),
            AttrKind::U32 => ("NLA_U32", 0),
            AttrKind::U64 => ("NLA_U64", 0),
        };
        writeln!(
            c,
            "\tok &= e7_policy[{}].type == {ty} && e7_policy[{}].len == {len};",
            a.id_name(),
            a.id_name()
        )
        .unwrap();
    }
    c.push_str("\treturn ok;\n}\n");
    c
}

#[test]
fn header_compiles_and_agrees_with_rust() {
    let dir = std::env::temp_dir().join(format!("e7-proto-header-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let src = dir.join("t.c");
    let exe = dir.join("t");
    let program = c_test_program()
        + &policy_checks()
        + "int main(void) { return policy_ok() && e7_defaults[E7F_MODE] == E7C_DISABLED ? 0 : 1; }\n";
    std::fs::write(&src, &program).unwrap();
    let out = Command::new("cc")
        .args(["-std=gnu11", "-Wall", "-Wextra", "-Werror", "-o"])
        .arg(&exe)
        .arg(&src)
        .output()
        .expect("a C compiler (`cc`) is needed for this test");
    assert!(
        out.status.success(),
        "the generated header does not compile:\n{}\n--- program ---\n{program}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = Command::new(&exe).status().unwrap();
    assert!(
        status.success(),
        "policy types/lengths or flag defaults in C differ from the Rust schema"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
