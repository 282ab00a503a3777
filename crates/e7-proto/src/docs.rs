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

/// Block `name` located in a document: the text around its markers, what is between them now,
/// and what the schema generates. Displays as the document with the block regenerated.
///
/// One home for finding a block: `examples/gen_docs.rs` rewrites with it and
/// `tests/docs_drift.rs` compares with it.
pub struct Splice<'t> {
    /// The document up to and including the BEGIN marker's line.
    pub before: &'t str,
    /// What is between the markers now.
    pub current: &'t str,
    /// The document from the END marker on.
    pub after: &'t str,
    /// What belongs between the markers ([`block`]).
    pub generated: &'static dyn fmt::Display,
}

impl Splice<'_> {
    /// Whether the block on disk is what the schema generates.
    pub fn is_current(&self) -> bool {
        let mut check = SameAs(self.current);
        fmt::write(&mut check, format_args!("{}", self.generated)).is_ok() && check.0.is_empty()
    }
}

impl fmt::Display for Splice<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{}", self.before, self.generated, self.after)
    }
}

/// Compares formatted output with a string without allocating: each piece must be the next
/// part of the string; what is left at the end must be nothing.
struct SameAs<'a>(&'a str);

impl fmt::Write for SameAs<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match self.0.strip_prefix(s) {
            Some(rest) => {
                self.0 = rest;
                Ok(())
            }
            None => Err(fmt::Error),
        }
    }
}

/// Why a generated block could not be found in a document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpliceError<'n> {
    /// `name` is not one of [`BLOCKS`].
    UnknownBlock(&'n str),
    /// The document lacks the BEGIN marker of this block.
    NoBegin(&'n str),
    /// The document lacks the END marker of this block (after its BEGIN line).
    NoEnd(&'n str),
}

impl fmt::Display for SpliceError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            SpliceError::UnknownBlock(n) => write!(f, "no generated block is called `{n}`"),
            SpliceError::NoBegin(n) => write!(f, "no `{}` marker (on a line of its own)", Begin(n)),
            SpliceError::NoEnd(n) => write!(f, "no `{}` marker after `{}`", End(n), Begin(n)),
        }
    }
}

impl core::error::Error for SpliceError<'_> {}

/// Finds block `name` in `text` (see [`Splice`]).
pub fn splice<'t, 'n>(text: &'t str, name: &'n str) -> Result<Splice<'t>, SpliceError<'n>> {
    let generated = block(name).ok_or(SpliceError::UnknownBlock(name))?;
    // The markers are found by their text; formatted into a fixed buffer (no allocation).
    let mut begin = Line::new();
    let mut end = Line::new();
    fmt::write(&mut begin, format_args!("{}\n", Begin(name)))
        .map_err(|_| SpliceError::NoBegin(name))?;
    fmt::write(&mut end, format_args!("{}", End(name))).map_err(|_| SpliceError::NoEnd(name))?;
    let b = text
        .find(begin.as_str())
        .ok_or(SpliceError::NoBegin(name))?;
    let body = b.saturating_add(begin.as_str().len());
    let rest = text.get(body..).ok_or(SpliceError::NoBegin(name))?;
    let e = rest.find(end.as_str()).ok_or(SpliceError::NoEnd(name))?;
    Ok(Splice {
        before: text.get(..body).ok_or(SpliceError::NoBegin(name))?,
        current: rest.get(..e).ok_or(SpliceError::NoEnd(name))?,
        after: rest.get(e..).ok_or(SpliceError::NoEnd(name))?,
        generated,
    })
}

/// A marker line formatted into a fixed buffer.
struct Line {
    buf: [u8; 256],
    len: usize,
}

impl Line {
    fn new() -> Self {
        Line {
            buf: [0; 256],
            len: 0,
        }
    }

    fn as_str(&self) -> &str {
        self.buf
            .get(..self.len)
            .and_then(|b| core::str::from_utf8(b).ok())
            .unwrap_or("")
    }
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len.checked_add(s.len()).ok_or(fmt::Error)?;
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
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
