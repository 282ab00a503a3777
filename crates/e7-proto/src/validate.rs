//! Value validation: flag values by class, rule protocols, rule paths, and CLI token parsing.
//!
//! The original accepted any u32 for any flag and any protocol and path for a rule, and repaired
//! bad values lazily at packet time (E7 issue S7). Here the kernel calls these functions before it
//! changes any state, and the CLI calls the very same functions before it sends anything, so a
//! mistake is reported once, clearly, and with the list of what would have been accepted.
//!
//! Every error type's `Display` names the offending value and lists the valid ones.

use core::fmt;

use crate::schema::{Const, ConstKind, Flag, ValueClass, MAX_IP_PROTOCOL, MAX_PATH_LEN};

// ---- flag values --------------------------------------------------------------------------------

/// A value that a flag does not accept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueError {
    /// `value` is not in the flag's class.
    Invalid {
        /// The flag being written.
        flag: Flag,
        /// The refused value.
        value: u32,
    },
    /// The flag is a read-only statistic.
    ReadOnly {
        /// The flag being written.
        flag: Flag,
    },
}

impl Flag {
    /// Checks that `value` may be written to this flag.
    ///
    /// Mode flags take `enabled`/`disabled`/`block`, action flags `allow`/`block`, boolean flags
    /// `enabled`/`disabled`; read-only statistics refuse every write.
    pub const fn validate(self, value: u32) -> Result<(), ValueError> {
        match self.class() {
            ValueClass::ReadOnly => Err(ValueError::ReadOnly { flag: self }),
            class if class.accepts(value) => Ok(()),
            _ => Err(ValueError::Invalid { flag: self, value }),
        }
    }

    /// Parses a value token for this flag (a constant alias such as `allow`, or a decimal
    /// number) and validates it.
    pub fn parse_value(self, token: &str) -> Result<u32, ValueTokenError<'_>> {
        let value = match Const::from_alias(token) {
            Some(c) => c.value(),
            None => match parse_decimal(token) {
                Some(v) => v,
                None => {
                    if matches!(self.class(), ValueClass::ReadOnly) {
                        return Err(ValueTokenError::Value(ValueError::ReadOnly { flag: self }));
                    }
                    return Err(ValueTokenError::Unrecognized { flag: self, token });
                }
            },
        };
        self.validate(value).map_err(ValueTokenError::Value)?;
        Ok(value)
    }
}

fn write_alias_list(f: &mut fmt::Formatter<'_>, list: &[Const]) -> fmt::Result {
    for (i, c) in list.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(c.alias())?;
    }
    Ok(())
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ValueError::Invalid { flag, value } => {
                write!(f, "value {value}")?;
                if let Some(c) = Const::from_value(value) {
                    write!(f, " ({})", c.alias())?;
                }
                write!(
                    f,
                    " is not valid for flag `{}`: expected one of ",
                    flag.alias()
                )?;
                write_alias_list(f, flag.class().allowed())
            }
            ValueError::ReadOnly { flag } => write!(
                f,
                "flag `{}` is read-only ({}); it cannot be set",
                flag.alias(),
                lower_first(flag.description())
            ),
        }
    }
}

impl core::error::Error for ValueError {}

/// A value token for `set FLAG VALUE` that could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueTokenError<'t> {
    /// The token is neither a constant alias nor a decimal number.
    Unrecognized {
        /// The flag being written.
        flag: Flag,
        /// The token as typed.
        token: &'t str,
    },
    /// The token parsed, but the flag refuses the value.
    Value(ValueError),
}

impl fmt::Display for ValueTokenError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueTokenError::Unrecognized { flag, token } => {
                write!(
                    f,
                    "`{token}` is not a valid value for flag `{}`: expected one of ",
                    flag.alias()
                )?;
                write_alias_list(f, flag.class().allowed())
            }
            ValueTokenError::Value(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for ValueTokenError<'_> {}

/// Formats a description with its first letter in lower case (for use inside a sentence).
struct LowerFirst(&'static str);

fn lower_first(s: &'static str) -> LowerFirst {
    LowerFirst(s)
}

impl fmt::Display for LowerFirst {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = self.0.trim_end_matches('.');
        let mut chars = s.chars();
        if let Some(c) = chars.next() {
            write!(f, "{}", c.to_ascii_lowercase())?;
        }
        f.write_str(chars.as_str())
    }
}

// ---- tokens -------------------------------------------------------------------------------------

/// Parses an unsigned decimal number: ASCII digits only (no sign, no spaces), fits in u32.
fn parse_decimal(token: &str) -> Option<u32> {
    if token.is_empty() || !token.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    token.parse().ok()
}

/// What kind of token was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Expected {
    /// A protocol alias or number.
    Protocol,
    /// A flag alias or index.
    Flag,
}

/// A token that names nothing of the expected kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TokenError<'t> {
    /// The token as typed.
    pub token: &'t str,
    /// What the token should have been.
    pub expected: Expected,
}

impl fmt::Display for TokenError<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.expected {
            Expected::Protocol => {
                write!(f, "`{}` is not a protocol: expected one of ", self.token)?;
                write_alias_list(f, RULE_PROTOCOLS)?;
                write!(f, " or a protocol number 0..={MAX_IP_PROTOCOL}")
            }
            Expected::Flag => {
                write!(f, "`{}` is not a flag: expected one of ", self.token)?;
                for (i, fl) in Flag::ALL.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(fl.alias())?;
                }
                write!(f, " or an index 0..={}", Flag::COUNT - 1)
            }
        }
    }
}

impl core::error::Error for TokenError<'_> {}

/// Parses a protocol token: a protocol name from the schema (`tcp`, `sctp`, `any`, ...) or a
/// decimal number. The result is not yet checked with [`validate_rule_protocol`].
pub fn parse_protocol_token(token: &str) -> Result<u32, TokenError<'_>> {
    match Const::from_alias(token) {
        Some(c) if c.kind() == ConstKind::Protocol => Ok(c.value()),
        Some(_) => Err(TokenError {
            token,
            expected: Expected::Protocol,
        }),
        None => parse_decimal(token).ok_or(TokenError {
            token,
            expected: Expected::Protocol,
        }),
    }
}

/// Parses a flag token: a flag alias (`mode`, ...) or its decimal index.
pub fn parse_flag_token(token: &str) -> Result<Flag, TokenError<'_>> {
    let err = TokenError {
        token,
        expected: Expected::Flag,
    };
    match Flag::from_alias(token) {
        Some(f) => Ok(f),
        None => parse_decimal(token).and_then(Flag::from_index).ok_or(err),
    }
}

// ---- rule protocols -----------------------------------------------------------------------------

const fn count_protocols() -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < Const::ALL.len() {
        if matches!(Const::ALL[i].kind(), ConstKind::Protocol) {
            n += 1;
        }
        i += 1;
    }
    n
}

const N_PROTOCOLS: usize = count_protocols();

const fn collect_protocols() -> [Const; N_PROTOCOLS] {
    let mut out = [Const::Any; N_PROTOCOLS];
    let mut n = 0;
    let mut i = 0;
    // The schema's protocol constants in table order, `any` last.
    while i < Const::ALL.len() {
        let c = Const::ALL[i];
        if matches!(c.kind(), ConstKind::Protocol) && c.value() != Const::Any.value() {
            out[n] = c;
            n += 1;
        }
        i += 1;
    }
    out
}

/// The protocol names a rule may use, in the order they are listed to users: every
/// [`ConstKind::Protocol`] constant of the schema (the one table of protocol names), `any` last.
/// Any other IP protocol is named by its number.
pub const RULE_PROTOCOLS: &[Const] = &collect_protocols();

/// The name of protocol `p` (`tcp`, `sctp`, `any`, ...), or `None` for a number without a name
/// (it is then written as the number) or a value that is not a protocol.
pub fn protocol_name(p: u32) -> Option<&'static str> {
    RULE_PROTOCOLS
        .iter()
        .find(|c| c.value() == p)
        .map(|c| c.alias())
}

/// A protocol that a rule cannot name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProtocolError {
    /// The refused protocol number.
    pub prot: u32,
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match Const::from_value(self.prot) {
            Some(c) if c.kind() == ConstKind::Word => {
                write!(f, "{} ({}) is not a protocol", self.prot, c.alias())?;
            }
            _ => write!(
                f,
                "protocol {} does not exist: IP protocol numbers are 0..={MAX_IP_PROTOCOL}",
                self.prot
            )?,
        }
        f.write_str(": expected a protocol name (")?;
        write_alias_list(f, RULE_PROTOCOLS)?;
        write!(f, ") or a number 0..={MAX_IP_PROTOCOL}")
    }
}

impl core::error::Error for ProtocolError {}

/// Checks that a rule may name protocol `p`: any IP protocol number 0..=255, or `any`
/// (0xFFFFFFFF). Every packet a socket sends is identified whatever its protocol, so a rule for
/// any protocol can match.
pub fn validate_rule_protocol(p: u32) -> Result<(), ProtocolError> {
    if p <= MAX_IP_PROTOCOL || p == Const::Any.value() {
        Ok(())
    } else {
        Err(ProtocolError { prot: p })
    }
}

// ---- rule paths ---------------------------------------------------------------------------------

/// Why a rule path was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PathError {
    /// The path is empty.
    Empty,
    /// The path does not start with `/`.
    NotAbsolute,
    /// The path is longer than [`MAX_PATH_LEN`] bytes.
    TooLong {
        /// Its length in bytes.
        len: usize,
    },
    /// The path contains a NUL byte.
    ContainsNul {
        /// Byte offset of the first NUL.
        offset: usize,
    },
    /// The path contains `//` (an empty component).
    EmptyComponent {
        /// Byte offset of the component.
        offset: usize,
    },
    /// The path contains a `.` or `..` component.
    DotComponent {
        /// Byte offset of the component.
        offset: usize,
    },
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const RIGHT: &str = "expected an absolute, canonical path such as /usr/bin/curl, \
                             or a folder ending in / such as /usr/bin/";
        match *self {
            PathError::Empty => write!(f, "the path is empty: {RIGHT}"),
            PathError::NotAbsolute => write!(f, "the path does not start with /: {RIGHT}"),
            PathError::TooLong { len } => {
                write!(
                    f,
                    "the path is {len} bytes long: at most {MAX_PATH_LEN} bytes are allowed"
                )
            }
            PathError::ContainsNul { offset } => {
                write!(
                    f,
                    "the path contains a NUL byte at offset {offset}: {RIGHT}"
                )
            }
            PathError::EmptyComponent { offset } => {
                write!(f, "the path contains `//` at offset {offset}: {RIGHT}")
            }
            PathError::DotComponent { offset } => write!(
                f,
                "the path contains a `.` or `..` component at offset {offset}; rules match the \
                 resolved executable path, so {RIGHT}"
            ),
        }
    }
}

impl core::error::Error for PathError {}

/// Checks a rule path: absolute, at most [`MAX_PATH_LEN`] bytes, no NUL, no empty, `.` or `..`
/// components. A trailing `/` is allowed and makes the rule a folder rule ([`is_folder_path`]).
///
/// Paths are compared byte for byte with the kernel's resolved executable path, which is always in
/// this canonical form, so a non-canonical rule could never match.
pub fn validate_rule_path(path: &[u8]) -> Result<(), PathError> {
    if path.is_empty() {
        return Err(PathError::Empty);
    }
    if path.len() > MAX_PATH_LEN {
        return Err(PathError::TooLong { len: path.len() });
    }
    if let Some(offset) = path.iter().position(|&b| b == 0) {
        return Err(PathError::ContainsNul { offset });
    }
    if path.first() != Some(&b'/') {
        return Err(PathError::NotAbsolute);
    }
    // Walk the components after the leading '/'. The last component may be empty (folder rule).
    let mut start = 1;
    while start <= path.len() {
        let rest = path.get(start..).unwrap_or(&[]);
        let end = rest
            .iter()
            .position(|&b| b == b'/')
            .map_or(path.len(), |i| start.saturating_add(i));
        let comp = path.get(start..end).unwrap_or(&[]);
        let is_last = end == path.len();
        if comp.is_empty() && !is_last {
            return Err(PathError::EmptyComponent {
                offset: start.saturating_sub(1),
            });
        }
        if comp == b"." || comp == b".." {
            return Err(PathError::DotComponent { offset: start });
        }
        start = end.saturating_add(1);
    }
    Ok(())
}

/// Whether a (valid) rule path names a folder: it ends in `/`.
pub fn is_folder_path(path: &[u8]) -> bool {
    path.last() == Some(&b'/')
}
