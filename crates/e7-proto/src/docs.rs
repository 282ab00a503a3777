//! Documentation generated from the flag rows of the schema: one home per fact.
//!
//! Adding a flag is one row in the schema table (name, C name, class, default, whether it affects
//! decisions, module-parameter description) plus its behaviour. Everything that lists flags is
//! generated from the rows or checked against them:
//! - the kernel shim's module parameters: `E7_MODULE_PARAMS` in the generated C header
//!   ([`crate::header`]);
//! - the tables in `docs/ARCHITECTURE.md` ([`FlagTable`]) and `crates/e7-kmod/README.md`
//!   ([`ParamTable`]) and the flag summary of `crates/e7-cli/README.md` ([`FlagSummary`]), each
//!   between `<!-- BEGIN generated: NAME -->` and `<!-- END generated: NAME -->` markers;
//!   `tests/docs_drift.rs` fails when a block differs from the generator (for example after a
//!   hand edit), and `cargo run -q -p e7-proto --example gen_docs` rewrites the blocks;
//! - the CLI's flag lists and the module's parameter error are built from [`Flag::ALL`] at run
//!   time, or checked by a test.

use core::fmt;

use crate::schema::{Const, Flag, ValueClass};

/// The command that rewrites every generated block.
pub const REGENERATE: &str = "cargo run -q -p e7-proto --example gen_docs";

/// The generated blocks: (marker name, file relative to the repository root).
pub const BLOCKS: &[(&str, &str)] = &[
    ("flags", "docs/ARCHITECTURE.md"),
    ("module-parameters", "crates/e7-kmod/README.md"),
    ("cli-flags", "crates/e7-cli/README.md"),
];

/// The generated text of block `name` (see [`BLOCKS`]), without the markers.
pub fn block(name: &str) -> Option<&'static dyn fmt::Display> {
    match name {
        "flags" => Some(&FlagTable),
        "module-parameters" => Some(&ParamTable),
        "cli-flags" => Some(&FlagSummary),
        _ => None,
    }
}

/// `<!-- BEGIN generated: NAME -->`.
pub struct Begin<'a>(pub &'a str);

impl fmt::Display for Begin<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "<!-- BEGIN generated: {} (from the schema's flag rows; edit crates/e7-proto/src/schema.rs, then run `{}`) -->",
            self.0, REGENERATE
        )
    }
}

/// `<!-- END generated: NAME -->`.
pub struct End<'a>(pub &'a str);

impl fmt::Display for End<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<!-- END generated: {} -->", self.0)
    }
}

/// `a, b or c` for a class's value aliases.
pub struct Values(pub ValueClass);

impl fmt::Display for Values {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let allowed = self.0.allowed();
        for (i, c) in allowed.iter().enumerate() {
            let sep = match (i, allowed.len().saturating_sub(i)) {
                (0, _) => "",
                (_, 1) => " or ",
                _ => ", ",
            };
            write!(f, "{sep}{}", c.alias())?;
        }
        Ok(())
    }
}

/// A flag's default as users write it: a constant's alias, or a number.
pub struct DefaultText(pub Flag);

impl fmt::Display for DefaultText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.0.default_value();
        match Const::from_value(v) {
            Some(c) if self.0.class() != ValueClass::ReadOnly => f.write_str(c.alias()),
            _ => write!(f, "{v}"),
        }
    }
}

/// The module parameter's full description: `MODULE_PARM_DESC` text (`modinfo e7`).
pub struct ParamDoc(pub Flag);

impl fmt::Display for ParamDoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} (default {})",
            self.0.param_description().unwrap_or(""),
            Values(self.0.class()),
            DefaultText(self.0)
        )
    }
}

fn class_name(c: ValueClass) -> &'static str {
    match c {
        ValueClass::Mode => "Mode",
        ValueClass::Action => "Action",
        ValueClass::Boolean => "Boolean",
        ValueClass::ReadOnly => "ReadOnly",
    }
}

/// The flag table of `docs/ARCHITECTURE.md`.
pub struct FlagTable;

impl fmt::Display for FlagTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "| idx | alias | C name | class | default | affects decisions | meaning |"
        )?;
        writeln!(f, "|---|---|---|---|---|---|---|")?;
        for fl in Flag::ALL {
            writeln!(
                f,
                "| {} | {} | `{}` | {} | {} | {} | {} |",
                fl.index(),
                fl.alias(),
                fl.id_name(),
                class_name(fl.class()),
                DefaultText(*fl),
                if fl.affects_decisions() { "yes" } else { "no" },
                fl.description()
            )?;
        }
        Ok(())
    }
}

/// The module-parameter table of `crates/e7-kmod/README.md`.
pub struct ParamTable;

impl fmt::Display for ParamTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| parameter | values | default | meaning |")?;
        writeln!(f, "|---|---|---|---|")?;
        for fl in Flag::ALL {
            let Some(desc) = fl.param_description() else {
                continue;
            };
            writeln!(
                f,
                "| `{}` | {} | `{}` | {} |",
                fl.alias(),
                Values(fl.class()),
                DefaultText(*fl),
                desc
            )?;
        }
        Ok(())
    }
}

/// The settable flags' aliases, comma-separated (`mode, debug, ...`).
pub struct SettableList;

impl fmt::Display for SettableList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for fl in Flag::ALL {
            if fl.class() == ValueClass::ReadOnly {
                continue;
            }
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            f.write_str(fl.alias())?;
        }
        Ok(())
    }
}

/// The one-paragraph flag summary of `crates/e7-cli/README.md`, grouped by class.
pub struct FlagSummary;

impl fmt::Display for FlagSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let group = |f: &mut fmt::Formatter<'_>, class: ValueClass| -> fmt::Result {
            let mut first = true;
            for fl in Flag::ALL.iter().filter(|fl| fl.class() == class) {
                write!(f, "{}`{}`", if first { "" } else { ", " }, fl.alias())?;
                first = false;
            }
            Ok(())
        };
        f.write_str("Flags: ")?;
        group(f, ValueClass::Mode)?;
        write!(f, " ({}); the actions ", Values(ValueClass::Mode))?;
        group(f, ValueClass::Action)?;
        write!(f, " ({}); the booleans ", Values(ValueClass::Action))?;
        group(f, ValueClass::Boolean)?;
        write!(
            f,
            " ({}); the read-only statistics ",
            Values(ValueClass::Boolean)
        )?;
        group(f, ValueClass::ReadOnly)?;
        writeln!(f, ".")
    }
}
