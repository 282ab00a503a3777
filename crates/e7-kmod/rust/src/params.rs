//! Module parameters: the initial flag values, applied before anything is registered.
//!
//! Why: so a machine can boot with e7 already enforcing (`mode=enabled unkrule=block`), without a
//! window where traffic passes before a client configures it. Values are parsed and validated by
//! e7-proto exactly like `e7 set` (an alias such as `block`, or a number); an invalid one makes the
//! load fail with a message naming the parameter and the valid values.
#![forbid(unsafe_code)]

use core::fmt;

use e7_core::sync::RawRwLock;
use e7_proto::{Flag, ValueClass, ValueTokenError};

use crate::state::Module;

/// Why a module parameter was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamError<'a> {
    /// Not the alias of a settable flag.
    UnknownName(&'a str),
    /// The value is not valid for the flag.
    Value(ValueTokenError<'a>),
}

impl fmt::Display for ParamError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamError::UnknownName(n) => write!(
                f,
                "`{n}` is not a settable flag (mode, debug, fail, unkproc, unkprot, norule, \
                 squelch, unkrule, drops, accepts, rchngq, longpath, nspath)"
            ),
            ParamError::Value(e) => e.fmt(f),
        }
    }
}

impl<R: RawRwLock> Module<R> {
    /// Applies `name=value` (flag alias, value alias or number).
    pub fn param_set<'a>(&self, name: &'a str, value: &'a str) -> Result<(), ParamError<'a>> {
        let flag = Flag::from_alias(name)
            .filter(|f| f.class() != ValueClass::ReadOnly)
            .ok_or(ParamError::UnknownName(name))?;
        let v = flag.parse_value(value.trim()).map_err(ParamError::Value)?;
        let core = e7_core::Flag::from_index(flag.index()).ok_or(ParamError::UnknownName(name))?;
        // parse_value validated it with the same schema; a refusal here would be a schema drift.
        self.engine
            .flags
            .set(core, v)
            .map_err(|_| ParamError::UnknownName(name))
    }
}
