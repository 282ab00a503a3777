//! The C header for the kernel shim, generated from the schema table.
//!
//! The kernel module's C shim registers the generic-netlink family, its ops and its attribute
//! policy, which needs the command and attribute numbers, the admin bits and the policy types as
//! C constants. Instead of a second hand-written list (which would drift), [`c_header`] prints
//! them from the same table the Rust code uses. `crates/e7-kmod/e7_proto.h` is this output,
//! checked in so the kernel build needs no Rust step to find it; `tests/header_drift.rs` fails
//! when it is stale. Regenerate with:
//!
//! ```text
//! cargo run -q -p e7-proto --example gen_header > crates/e7-kmod/e7_proto.h
//! ```

use core::fmt;

use crate::schema::{
    Attr, AttrKind, Command, Const, Flag, ValueClass, FAMILY_NAME, FAMILY_VERSION, MAX_PATH_LEN,
};

/// The command that regenerates the checked-in header.
pub const REGENERATE: &str =
    "cargo run -q -p e7-proto --example gen_header > crates/e7-kmod/e7_proto.h";

/// The C header text (see the module documentation). Implements [`fmt::Display`].
#[derive(Clone, Copy, Debug, Default)]
pub struct CHeader;

/// Returns the C header for the kernel shim.
pub fn c_header() -> CHeader {
    CHeader
}

fn class_id(c: ValueClass) -> &'static str {
    match c {
        ValueClass::Mode => "E7_CLASS_MODE",
        ValueClass::Action => "E7_CLASS_ACTION",
        ValueClass::Boolean => "E7_CLASS_BOOLEAN",
        ValueClass::ReadOnly => "E7_CLASS_READONLY",
    }
}

/// The C expression for a flag's default: a constant's id name, or a number.
struct DefaultExpr(u32);

impl fmt::Display for DefaultExpr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Const::from_value(self.0) {
            Some(c) => f.write_str(c.id_name()),
            None => write!(f, "{}u", self.0),
        }
    }
}

impl fmt::Display for CHeader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "/* SPDX-License-Identifier: GPL-2.0-only */")?;
        writeln!(f, "/*")?;
        writeln!(
            f,
            " * e7_proto.h: the eftirlit generic-netlink schema for the e7 kernel shim."
        )?;
        writeln!(f, " *")?;
        writeln!(
            f,
            " * GENERATED from the schema table in crates/e7-proto/src/schema.rs. Do not edit."
        )?;
        writeln!(f, " * Regenerate: {REGENERATE}")?;
        writeln!(f, " */")?;
        writeln!(f, "#ifndef E7_PROTO_H")?;
        writeln!(f, "#define E7_PROTO_H")?;
        writeln!(f)?;
        writeln!(f, "#define E7_FAMILY_NAME \"{FAMILY_NAME}\"")?;
        writeln!(f, "#define E7_FAMILY_VERSION {FAMILY_VERSION}")?;
        writeln!(
            f,
            "/* longest PATH/MESSAGE string in bytes, not counting the NUL */"
        )?;
        writeln!(f, "#define E7_MAX_PATH_LEN {MAX_PATH_LEN}")?;
        writeln!(f)?;

        writeln!(f, "/* constants (u32 wire values) */")?;
        for c in Const::ALL {
            writeln!(
                f,
                "#define {} 0x{:08X}u /* {}: {} */",
                c.id_name(),
                c.value(),
                c.alias(),
                c.description()
            )?;
        }
        writeln!(f)?;

        writeln!(f, "/* commands (genlmsghdr.cmd); 0 is reserved */")?;
        writeln!(f, "enum e7_command {{")?;
        writeln!(f, "\tENL_COMM_UNSUPP = 0,")?;
        for c in Command::ALL {
            writeln!(
                f,
                "\t{} = {}, /* {} */",
                c.id_name(),
                c.value(),
                c.description()
            )?;
        }
        writeln!(f, "}};")?;
        writeln!(f, "#define E7_CMD_MAX {}", Command::MAX)?;
        writeln!(
            f,
            "/* 1 if the command needs CAP_NET_ADMIN (GENL_ADMIN_PERM) */"
        )?;
        for c in Command::ALL {
            writeln!(f, "#define {}_ADMIN {}", c.id_name(), u8::from(c.admin()))?;
        }
        writeln!(f, "/* genl_ops.flags for each command */")?;
        for c in Command::ALL {
            let flags = if c.admin() { "GENL_ADMIN_PERM" } else { "0" };
            writeln!(f, "#define {}_GENL_FLAGS {}", c.id_name(), flags)?;
        }
        writeln!(f)?;

        writeln!(f, "/* attributes (nlattr.nla_type); 0 is reserved */")?;
        writeln!(f, "enum e7_attr {{")?;
        writeln!(f, "\tENL_ATTR_UNSUPP = 0,")?;
        for a in Attr::ALL {
            writeln!(
                f,
                "\t{} = {}, /* {} */",
                a.id_name(),
                a.value(),
                a.description()
            )?;
        }
        writeln!(f, "}};")?;
        writeln!(f, "#define E7_ATTR_MAX {}", Attr::MAX)?;
        writeln!(f, "/* nla_policy initializer of each attribute */")?;
        for a in Attr::ALL {
            write!(f, "#define {}_POLICY ", a.id_name())?;
            match a.kind() {
                AttrKind::Nested => writeln!(f, "{{ .type = NLA_NESTED }}")?,
                AttrKind::NulString { max_len } => {
                    writeln!(f, "{{ .type = NLA_NUL_STRING, .len = {max_len} }}")?
                }
                AttrKind::U32 => writeln!(f, "{{ .type = NLA_U32 }}")?,
                AttrKind::U64 => writeln!(f, "{{ .type = NLA_U64 }}")?,
            }
        }
        writeln!(f, "/* static const struct nla_policy e7_policy[E7_ATTR_MAX + 1] = {{ E7_POLICY_INIT }}; */")?;
        writeln!(f, "#define E7_POLICY_INIT \\")?;
        for (i, a) in Attr::ALL.iter().enumerate() {
            let cont = if i + 1 < Attr::ALL.len() { " \\" } else { "" };
            writeln!(f, "\t[{}] = {}_POLICY,{}", a.id_name(), a.id_name(), cont)?;
        }
        writeln!(f)?;

        writeln!(f, "/* flag value classes */")?;
        writeln!(f, "enum e7_value_class {{")?;
        for (i, c) in [
            ValueClass::Mode,
            ValueClass::Action,
            ValueClass::Boolean,
            ValueClass::ReadOnly,
        ]
        .into_iter()
        .enumerate()
        {
            writeln!(f, "\t{} = {}, /* {} */", class_id(c), i, c.name())?;
        }
        writeln!(f, "}};")?;
        writeln!(f)?;

        writeln!(f, "/* flags, addressed by index (ENL_ATTR_FLAG) */")?;
        writeln!(f, "enum e7_flag {{")?;
        for fl in Flag::ALL {
            writeln!(
                f,
                "\t{} = {}, /* {}: {} */",
                fl.id_name(),
                fl.index(),
                fl.alias(),
                fl.description()
            )?;
        }
        writeln!(f, "}};")?;
        writeln!(f, "#define E7_FLAG_COUNT {}", Flag::COUNT)?;
        for fl in Flag::ALL {
            writeln!(
                f,
                "#define {}_DEFAULT {}",
                fl.id_name(),
                DefaultExpr(fl.default_value())
            )?;
            writeln!(f, "#define {}_CLASS {}", fl.id_name(), class_id(fl.class()))?;
        }
        writeln!(
            f,
            "/* u32 e7_flag_defaults[E7_FLAG_COUNT] = {{ E7_FLAG_DEFAULTS_INIT }}; */"
        )?;
        writeln!(f, "#define E7_FLAG_DEFAULTS_INIT \\")?;
        for (i, fl) in Flag::ALL.iter().enumerate() {
            let cont = if i + 1 < Flag::ALL.len() { " \\" } else { "" };
            writeln!(
                f,
                "\t[{}] = {}_DEFAULT,{}",
                fl.id_name(),
                fl.id_name(),
                cont
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "/* module parameters: one per settable flag, X(name, MODULE_PARM_DESC text) */"
        )?;
        writeln!(f, "#define E7_MODULE_PARAMS(X) \\")?;
        let params: usize = Flag::ALL
            .iter()
            .filter(|fl| fl.param_description().is_some())
            .count();
        for (i, fl) in Flag::ALL
            .iter()
            .filter(|fl| fl.param_description().is_some())
            .enumerate()
        {
            let cont = if i + 1 < params { " \\" } else { "" };
            writeln!(
                f,
                "\tX({}, \"{}\"){}",
                fl.alias(),
                crate::docs::ParamDoc(*fl),
                cont
            )?;
        }
        writeln!(f)?;
        writeln!(f, "#endif /* E7_PROTO_H */")
    }
}
