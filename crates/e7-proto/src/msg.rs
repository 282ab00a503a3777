//! Messages: validated representations of every request and reply, with parsers and emitters.
//!
//! A generic-netlink message body is a command byte (in `genlmsghdr`) followed by attributes.
//! [`parse_request`] turns a user→kernel body into a [`Request`] and [`parse_reply`] a
//! kernel→user body into a [`Reply`]; both check that each attribute is allowed for the command
//! (from the schema table), appears once, has the right type and length, and that its value is
//! valid. The emitters write the same shapes into a [`Writer`]. Both the kernel module and the CLI
//! use this module, and round-trip tests (emit → parse gives back the same value) prove they agree.
//!
//! The attribute branches are the original's (E7 spec §1.5):
//!
//! | command | attributes | meaning |
//! |---|---|---|
//! | BLOCK / ALLOW | none | mode = block / mode = disabled |
//! | BLOCK / ALLOW | PATH, optional PROT (default `any`) | add a rule |
//! | BLOCK / ALLOW | PROT only | **refused**: a rule without a path can never match |
//! | CLEAR | none | remove every rule |
//! | CLEAR | STATE (allow/block) | remove every rule with that state |
//! | CLEAR | PATH, optional PROT | remove one rule |
//! | SET | FLAG and VALUE, both **required** and validated | set a flag |
//! | GET | FLAG (absent = `mode`, as in the original) | read a flag |
//!
//! QUERY replies come in two shapes that [`QueryReply::rules`] reads alike: the original's chain
//! (top-level STATE = mode, then NESTED{rule 0, NESTED{rule 1, NESTED{...}}}) and the flat dump
//! shape (NESTED{rule} NESTED{rule} ... at top level). Each rule nest holds STATE, PROT and PATH.

use core::fmt;

use crate::nla::{
    nla_align, AttrIter, ParseError, RawAttr, WriteError, Writer, NLA_F_NESTED, NLA_HDRLEN,
};
use crate::qual::{
    emit_qualifiers, legacy_path, parse_qualifiers, Addr, Dest, QualWireError, Qualifiers,
};
use crate::schema::{Action, Attr, AttrKind, Command, Const, EventState, Flag, Mode, UnknownValue};
use crate::validate::{
    validate_rule_path, validate_rule_protocol, PathError, ProtocolError, ValueError,
};

// ---- representations ----------------------------------------------------------------------------

/// A rule: protocol, program path, verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct RuleSpec<'a> {
    /// IP protocol number, or `Const::Any` (0xFFFFFFFF) when the request had no PROT.
    pub prot: u32,
    /// Absolute executable path; a trailing `/` makes it a folder rule.
    pub path: &'a str,
    /// Verdict for matching packets.
    pub action: Action,
}

/// Where an event's packet went and whose socket sent it (appended attributes DEST, DPORT, UID;
/// each absent when the module did not know it). A console that knows only STATE, PROT and PATH
/// ignores them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct EventPeer {
    /// Destination address.
    pub dst: Option<Addr>,
    /// Destination port (tcp, udp, udplite, sctp).
    pub dport: Option<u16>,
    /// The uid of the packet's socket (none: no socket).
    pub uid: Option<u32>,
}

/// What a CLEAR request removes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ClearSpec<'a> {
    /// Every rule (no attributes).
    All,
    /// Every rule with this state (STATE attribute).
    Action(Action),
    /// The one rule with this protocol and path (PATH, optional PROT).
    Rule {
        /// Protocol, `Const::Any` if absent.
        prot: u32,
        /// Path.
        path: &'a str,
    },
    /// The one qualified rule with this protocol, path and qualifiers (PATH, optional PROT, and
    /// at least one of DEST, PORTS, UID narrowing it).
    Qualified {
        /// Protocol, `Const::Any` if absent.
        prot: u32,
        /// Path.
        path: &'a str,
        /// The qualifiers (never [`Qualifiers::NONE`]).
        qual: Qualifiers,
    },
}

/// A rule with its qualifiers, as a QUERY reply carries it ([`Qualifiers::NONE`]: a plain rule,
/// written exactly as the original wrote it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryRule<'a> {
    /// Protocol, path (the rule's own, never the `//` text old consoles are shown) and action.
    pub spec: RuleSpec<'a>,
    /// The qualifiers.
    pub qual: Qualifiers,
}

impl<'a> From<RuleSpec<'a>> for QueryRule<'a> {
    fn from(spec: RuleSpec<'a>) -> Self {
        QueryRule {
            spec,
            qual: Qualifiers::NONE,
        }
    }
}

/// A validated user→kernel message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Request<'a> {
    /// ERROR: asks the kernel to answer with an (empty) ERROR.
    Error,
    /// DISCONNECT: the subscriber stops receiving events.
    Disconnect,
    /// BLOCK or ALLOW without attributes, or ENABLE: change the mode. BLOCK sets
    /// [`Mode::Block`], ALLOW [`Mode::Disabled`], ENABLE [`Mode::Enabled`].
    SetMode(Mode),
    /// BLOCK or ALLOW with a PATH: add a rule (the action is the command's).
    AddRule(RuleSpec<'a>),
    /// BLOCK or ALLOW with a PATH and DEST/PORTS/UID narrowing it: add a qualified rule. (A
    /// request whose qualifiers narrow nothing, e.g. DEST `any` alone, is an [`Request::AddRule`].)
    AddQualified(RuleSpec<'a>, Qualifiers),
    /// CLEAR.
    Clear(ClearSpec<'a>),
    /// QUERY (plain for the chained reply, with `NLM_F_DUMP` for the flat dump).
    Query,
    /// SET FLAG VALUE.
    Set {
        /// The flag.
        flag: Flag,
        /// Its new, validated value.
        value: u32,
    },
    /// GET FLAG.
    Get {
        /// The flag.
        flag: Flag,
    },
    /// SUBSCRIBE: become the event subscriber.
    Subscribe,
    /// STATS: per-program statistics (sent with `NLM_F_DUMP`).
    Stats,
}

/// A validated kernel→user message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reply<'a> {
    /// GET reply.
    Get {
        /// The flag.
        flag: Flag,
        /// Its value (not checked against the class: the kernel reports what it holds).
        value: u32,
    },
    /// A packet notification.
    Event {
        /// Why the packet is reported.
        state: EventState,
        /// The packet's IP protocol.
        prot: u32,
        /// The sending program's executable path (bytes: Linux paths need not be UTF-8).
        path: &'a [u8],
        /// DEST, DPORT, UID (appended; absent ones `None`).
        peer: EventPeer,
    },
    /// A QUERY reply (either shape).
    Query(QueryReply<'a>),
    /// An error notice.
    Error {
        /// Positive errno, if given.
        errno: Option<u32>,
        /// Human-readable explanation, if given.
        message: Option<&'a str>,
    },
    /// The module is unloading.
    Disconnect,
    /// One message of a STATS dump: per-program entries.
    Stats(crate::stats::StatsReply<'a>),
}

/// A QUERY reply message: mode, total rule count, and the rules it carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryReply<'a> {
    /// Top-level STATE: the mode's raw value (first dump message, every chain message).
    pub mode: Option<u32>,
    /// COUNT: total rules in the table (last chain message, first dump message).
    pub count: Option<u32>,
    attrs: &'a [u8],
    rules_here: usize,
}

impl<'a> QueryReply<'a> {
    /// The mode, if present and one of enabled/disabled/block.
    pub fn mode(&self) -> Option<Mode> {
        self.mode.and_then(Mode::from_value)
    }

    /// Number of rules in this message.
    pub fn rules_in_message(&self) -> usize {
        self.rules_here
    }

    /// The rules in this message, in order (chain and flat shapes alike). Already validated. A
    /// qualified rule's PATH is the text old consoles are shown (`/usr/bin/curl// to 10.0.0.0/8`);
    /// [`QueryReply::qualified_rules`] gives its path and qualifiers.
    pub fn rules(&self) -> QueryRules<'a> {
        QueryRules {
            top: AttrIter::new(self.attrs),
            chain: None,
        }
    }

    /// The rules in this message with their qualifiers, in order; a qualified rule's path is its
    /// own.
    pub fn qualified_rules(&self) -> impl Iterator<Item = QueryRule<'a>> + 'a {
        let mut top = AttrIter::new(self.attrs);
        let mut chain: Option<&'a [u8]> = None;
        core::iter::from_fn(move || loop {
            if let Some(payload) = chain.take() {
                let (rule, next) = parse_rule_nest_qualified(payload).ok()?;
                chain = next;
                return Some(QueryRule {
                    spec: rule.spec,
                    qual: rule.qual,
                });
            }
            let attr = top.next()?.ok()?;
            if attr.kind == Attr::Nested.value() {
                chain = Some(attr.payload);
            }
        })
    }
}

/// Iterator over the rules of a [`QueryReply`].
#[derive(Clone, Debug)]
pub struct QueryRules<'a> {
    top: AttrIter<'a>,
    chain: Option<&'a [u8]>,
}

impl<'a> Iterator for QueryRules<'a> {
    type Item = RuleSpec<'a>;

    fn next(&mut self) -> Option<RuleSpec<'a>> {
        loop {
            if let Some(payload) = self.chain.take() {
                // Validated by parse_reply; an error here cannot happen, but ends iteration.
                let (rule, next) = parse_rule_nest(payload).ok()?;
                self.chain = next;
                return Some(rule);
            }
            let attr = self.top.next()?.ok()?;
            if attr.kind == Attr::Nested.value() {
                self.chain = Some(attr.payload);
            }
        }
    }
}

impl core::iter::FusedIterator for QueryRules<'_> {}

// ---- errors -------------------------------------------------------------------------------------

/// A message that is malformed or invalid. `Display` names the problem and what was expected.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgError {
    /// The command byte is not in the schema.
    UnknownCommand(u8),
    /// User space never sends this command (EVENT).
    NotARequest(Command),
    /// The kernel never sends this command.
    NotAReply(Command),
    /// An attribute header or payload is malformed.
    Malformed(ParseError),
    /// An attribute number not in the schema.
    UnknownAttr {
        /// The command.
        command: Command,
        /// The attribute number.
        kind: u16,
    },
    /// A known attribute that this command does not take.
    UnexpectedAttr {
        /// The command.
        command: Command,
        /// The attribute.
        attr: Attr,
        /// Whether the message was a request (user→kernel).
        request: bool,
    },
    /// An attribute that appears more than once.
    DuplicateAttr {
        /// The command.
        command: Command,
        /// The attribute.
        attr: Attr,
    },
    /// A required attribute is absent.
    MissingAttr {
        /// The command.
        command: Command,
        /// The attribute.
        attr: Attr,
    },
    /// The PATH is not a valid rule path.
    Path(PathError),
    /// The PATH of a rule is not UTF-8.
    PathNotUtf8,
    /// The PROT cannot be used in a rule.
    Protocol(ProtocolError),
    /// BLOCK/ALLOW/CLEAR with PROT but no PATH.
    ProtocolOnlyRule {
        /// The command.
        command: Command,
        /// The protocol given.
        prot: u32,
    },
    /// CLEAR with STATE and also PROT or PATH.
    ClearStateWithRule,
    /// A STATE value that is not valid here.
    BadState {
        /// The command.
        command: Command,
        /// The value received.
        value: u32,
        /// The valid values.
        expected: &'static [Const],
    },
    /// A FLAG index that names no flag.
    UnknownFlag(UnknownValue),
    /// A flag VALUE the flag refuses.
    Value(ValueError),
    /// A DEST, PORTS or UID attribute is malformed or names no valid qualifier.
    Qualifier(QualWireError),
}

impl MsgError {
    /// The positive errno the kernel reports for this error: `EOPNOTSUPP` (95) for commands it
    /// does not take, `EINVAL` (22) for everything else.
    pub const fn errno(&self) -> u32 {
        match self {
            MsgError::UnknownCommand(_) | MsgError::NotARequest(_) | MsgError::NotAReply(_) => 95,
            _ => 22,
        }
    }
}

impl From<ParseError> for MsgError {
    fn from(e: ParseError) -> Self {
        MsgError::Malformed(e)
    }
}

fn write_attr_list(f: &mut fmt::Formatter<'_>, list: &[Attr]) -> fmt::Result {
    if list.is_empty() {
        return f.write_str("no attributes");
    }
    for (i, a) in list.iter().enumerate() {
        if i > 0 {
            f.write_str(", ")?;
        }
        f.write_str(a.short_name())?;
    }
    Ok(())
}

impl fmt::Display for MsgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            MsgError::UnknownCommand(c) => {
                write!(
                    f,
                    "{}",
                    UnknownValue {
                        table: crate::schema::Table::Command,
                        value: c.into()
                    }
                )
            }
            MsgError::NotARequest(c) => write!(f, "{c} is only sent by the kernel, never to it"),
            MsgError::NotAReply(c) => write!(f, "{c} is only sent to the kernel, never by it"),
            MsgError::Malformed(e) => write!(f, "malformed message: {e}"),
            MsgError::UnknownAttr { command, kind } => write!(
                f,
                "{command} carries unknown attribute type {kind}: expected 1..={}",
                Attr::MAX
            ),
            MsgError::UnexpectedAttr {
                command,
                attr,
                request,
            } => {
                let dir = if request { "request" } else { "reply" };
                write!(
                    f,
                    "attribute {attr} is not allowed in a {command} {dir}: expected "
                )?;
                let list = if request {
                    command.request_attrs()
                } else {
                    command.reply_attrs()
                };
                write_attr_list(f, list.unwrap_or(&[]))
            }
            MsgError::DuplicateAttr { command, attr } => {
                write!(f, "attribute {attr} appears more than once in {command}: expected it at most once")
            }
            MsgError::MissingAttr { command, attr } => {
                write!(
                    f,
                    "{command} needs attribute {attr}: {}",
                    attr.description()
                )
            }
            MsgError::Path(e) => e.fmt(f),
            MsgError::PathNotUtf8 => {
                f.write_str("the rule path is not valid UTF-8: expected UTF-8 text")
            }
            MsgError::Protocol(e) => e.fmt(f),
            MsgError::ProtocolOnlyRule { command, prot } => {
                write!(f, "{command} with protocol ")?;
                match crate::validate::protocol_name(prot) {
                    Some(n) => f.write_str(n)?,
                    None => write!(f, "{prot}")?,
                }
                f.write_str(
                    " but no path: a rule without a path can never match, because rules are \
                     matched against the sending program's path; give a PATH (an absolute \
                     executable path or a folder ending in /)",
                )
            }
            MsgError::ClearStateWithRule => f.write_str(
                "CLEAR takes either STATE (clear all allow or all block rules) or PROT/PATH \
                 (clear one rule), not both",
            ),
            MsgError::BadState {
                command,
                value,
                expected,
            } => {
                write!(f, "STATE {value}")?;
                if let Some(c) = Const::from_value(value) {
                    write!(f, " ({})", c.alias())?;
                }
                write!(f, " is not valid in {command}: expected one of ")?;
                for (i, c) in expected.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    f.write_str(c.alias())?;
                }
                Ok(())
            }
            MsgError::UnknownFlag(e) => e.fmt(f),
            MsgError::Value(e) => e.fmt(f),
            MsgError::Qualifier(e) => write!(f, "invalid rule qualifier: {e}"),
        }
    }
}

impl core::error::Error for MsgError {}

// ---- attribute collection -----------------------------------------------------------------------

const SLOTS: usize = Attr::MAX as usize + 1;

/// The attributes of one message (or rule nest), each at most once, payloads type-checked.
struct Found<'a> {
    slots: [Option<RawAttr<'a>>; SLOTS],
}

impl<'a> Found<'a> {
    fn get(&self, attr: Attr) -> Option<RawAttr<'a>> {
        self.slots.get(usize::from(attr.value())).copied().flatten()
    }

    fn has(&self, attr: Attr) -> bool {
        self.get(attr).is_some()
    }

    fn u32(&self, attr: Attr) -> Result<Option<u32>, MsgError> {
        self.get(attr)
            .map(|a| a.u32().map_err(MsgError::from))
            .transpose()
    }

    fn need_u32(&self, command: Command, attr: Attr) -> Result<u32, MsgError> {
        self.u32(attr)?
            .ok_or(MsgError::MissingAttr { command, attr })
    }

    fn bytes(&self, attr: Attr) -> Result<Option<&'a [u8]>, MsgError> {
        let max = match attr.kind() {
            AttrKind::NulString { max_len } => max_len,
            _ => 0,
        };
        self.get(attr)
            .map(|a| a.nul_str(max).map_err(MsgError::from))
            .transpose()
    }
}

/// Collects the attributes in `buf`: each must be known, allowed for `command`, unique (except
/// `repeatable`, whose first occurrence is kept), and its payload must fit its kind.
fn collect<'a>(
    command: Command,
    request: bool,
    buf: &'a [u8],
    allowed: &[Attr],
    repeatable: Option<Attr>,
) -> Result<Found<'a>, MsgError> {
    let mut found = Found {
        slots: [None; SLOTS],
    };
    for raw in AttrIter::new(buf) {
        let raw = raw?;
        let attr = Attr::from_value(raw.kind).ok_or(MsgError::UnknownAttr {
            command,
            kind: raw.kind,
        })?;
        if !allowed.contains(&attr) {
            return Err(MsgError::UnexpectedAttr {
                command,
                attr,
                request,
            });
        }
        match attr.kind() {
            AttrKind::U32 => {
                raw.u32()?;
            }
            AttrKind::U64 => {
                raw.u64()?;
            }
            AttrKind::NulString { max_len } => {
                raw.nul_str(max_len)?;
            }
            AttrKind::Nested => AttrIter::check(raw.payload)?,
        }
        let slot = found
            .slots
            .get_mut(usize::from(raw.kind))
            .ok_or(MsgError::UnknownAttr {
                command,
                kind: raw.kind,
            })?;
        if slot.is_some() {
            if repeatable == Some(attr) {
                continue;
            }
            return Err(MsgError::DuplicateAttr { command, attr });
        }
        *slot = Some(raw);
    }
    Ok(found)
}

/// The DEST/PORTS/UID qualifiers of a rule-shaped request, checked against its protocol.
fn rule_qualifiers(attrs: &[u8], prot: u32) -> Result<Qualifiers, MsgError> {
    parse_qualifiers(attrs, prot).map_err(MsgError::Qualifier)
}

/// PROT (default `any`) and PATH of a rule-shaped request, validated.
fn rule_target<'a>(command: Command, found: &Found<'a>) -> Result<(u32, &'a str), MsgError> {
    let prot = found.u32(Attr::Prot)?.unwrap_or(Const::Any.value());
    validate_rule_protocol(prot).map_err(MsgError::Protocol)?;
    let path = found
        .bytes(Attr::Path)?
        .ok_or(MsgError::ProtocolOnlyRule { command, prot })?;
    validate_rule_path(path).map_err(MsgError::Path)?;
    let path = core::str::from_utf8(path).map_err(|_| MsgError::PathNotUtf8)?;
    Ok((prot, path))
}

// ---- requests -----------------------------------------------------------------------------------

/// Parses and validates a user→kernel message body (`attrs` = the bytes after the genl header).
pub fn parse_request(cmd: u8, attrs: &[u8]) -> Result<Request<'_>, MsgError> {
    let command = Command::from_value(cmd).ok_or(MsgError::UnknownCommand(cmd))?;
    let allowed = command
        .request_attrs()
        .ok_or(MsgError::NotARequest(command))?;
    let found = collect(command, true, attrs, allowed, None)?;
    Ok(match command {
        Command::Error => Request::Error,
        Command::Disconnect => Request::Disconnect,
        Command::Enable => Request::SetMode(Mode::Enabled),
        Command::Query => Request::Query,
        Command::Subscribe => Request::Subscribe,
        Command::Stats => Request::Stats,
        Command::Event => return Err(MsgError::NotARequest(command)),
        Command::Block | Command::Allow => {
            let action = if command == Command::Block {
                Action::Block
            } else {
                Action::Allow
            };
            if !found.has(Attr::Prot) && !found.has(Attr::Path) {
                Request::SetMode(if action == Action::Block {
                    Mode::Block
                } else {
                    Mode::Disabled
                })
            } else {
                let (prot, path) = rule_target(command, &found)?;
                let spec = RuleSpec { prot, path, action };
                match rule_qualifiers(attrs, prot)? {
                    q if q.is_none() => Request::AddRule(spec),
                    q => Request::AddQualified(spec, q),
                }
            }
        }
        Command::Clear => {
            if let Some(state) = found.u32(Attr::State)? {
                if found.has(Attr::Prot) || found.has(Attr::Path) {
                    return Err(MsgError::ClearStateWithRule);
                }
                let action = Action::from_value(state).ok_or(MsgError::BadState {
                    command,
                    value: state,
                    expected: &[Const::Allow, Const::Block],
                })?;
                Request::Clear(ClearSpec::Action(action))
            } else if !found.has(Attr::Prot) && !found.has(Attr::Path) {
                Request::Clear(ClearSpec::All)
            } else {
                let (prot, path) = rule_target(command, &found)?;
                match rule_qualifiers(attrs, prot)? {
                    q if q.is_none() => Request::Clear(ClearSpec::Rule { prot, path }),
                    qual => Request::Clear(ClearSpec::Qualified { prot, path, qual }),
                }
            }
        }
        Command::Set => {
            let index = found.need_u32(command, Attr::Flag)?;
            let flag = Flag::try_from(index).map_err(MsgError::UnknownFlag)?;
            let value = found.need_u32(command, Attr::Value)?;
            flag.validate(value).map_err(MsgError::Value)?;
            Request::Set { flag, value }
        }
        Command::Get => {
            let flag = match found.u32(Attr::Flag)? {
                Some(index) => Flag::try_from(index).map_err(MsgError::UnknownFlag)?,
                None => Flag::Mode,
            };
            Request::Get { flag }
        }
    })
}

impl Request<'_> {
    /// The command byte this request is sent with.
    pub const fn command(&self) -> Command {
        match self {
            Request::Error => Command::Error,
            Request::Disconnect => Command::Disconnect,
            Request::SetMode(Mode::Block) => Command::Block,
            Request::SetMode(Mode::Disabled) => Command::Allow,
            Request::SetMode(Mode::Enabled) => Command::Enable,
            Request::AddRule(RuleSpec {
                action: Action::Block,
                ..
            })
            | Request::AddQualified(
                RuleSpec {
                    action: Action::Block,
                    ..
                },
                _,
            ) => Command::Block,
            Request::AddRule(RuleSpec {
                action: Action::Allow,
                ..
            })
            | Request::AddQualified(
                RuleSpec {
                    action: Action::Allow,
                    ..
                },
                _,
            ) => Command::Allow,
            Request::Clear(_) => Command::Clear,
            Request::Query => Command::Query,
            Request::Set { .. } => Command::Set,
            Request::Get { .. } => Command::Get,
            Request::Subscribe => Command::Subscribe,
            Request::Stats => Command::Stats,
        }
    }

    /// Writes the request's attributes (send them with [`Request::command`]). The request is
    /// written as given; build it from validated input (or run it through [`parse_request`]).
    pub fn emit(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        let start = w.len();
        let r = self.emit_inner(w);
        if r.is_err() {
            w.rollback(start);
        }
        r
    }

    fn emit_inner(&self, w: &mut Writer<'_>) -> Result<(), WriteError> {
        match *self {
            Request::Error
            | Request::Disconnect
            | Request::SetMode(_)
            | Request::Query
            | Request::Subscribe
            | Request::Stats
            | Request::Clear(ClearSpec::All) => Ok(()),
            Request::AddRule(RuleSpec { prot, path, .. })
            | Request::Clear(ClearSpec::Rule { prot, path }) => {
                w.put_u32(Attr::Prot.value(), prot)?;
                w.put_str(Attr::Path.value(), path)
            }
            Request::AddQualified(RuleSpec { prot, path, .. }, qual)
            | Request::Clear(ClearSpec::Qualified { prot, path, qual }) => {
                w.put_u32(Attr::Prot.value(), prot)?;
                w.put_str(Attr::Path.value(), path)?;
                emit_qualifiers(w, &qual)
            }
            Request::Clear(ClearSpec::Action(a)) => w.put_u32(Attr::State.value(), a.value()),
            Request::Set { flag, value } => {
                w.put_u32(Attr::Flag.value(), flag.index())?;
                w.put_u32(Attr::Value.value(), value)
            }
            Request::Get { flag } => w.put_u32(Attr::Flag.value(), flag.index()),
        }
    }
}

/// Writes `req`'s attributes into `w`; send them with `req.command()`.
pub fn emit_request(w: &mut Writer<'_>, req: &Request<'_>) -> Result<(), WriteError> {
    req.emit(w)
}

// ---- replies ------------------------------------------------------------------------------------

/// One rule nest: its rule (PATH as on the wire: a qualified rule's is the `//` text old consoles
/// are shown) and, in the chain shape, the payload of the next nest.
fn parse_rule_nest(payload: &[u8]) -> Result<(RuleSpec<'_>, Option<&[u8]>), MsgError> {
    parse_rule_nest_qualified(payload).map(|(r, next)| {
        let mut spec = r.spec;
        if !r.qual.is_none() {
            spec.path = r.wire_path;
        }
        (spec, next)
    })
}

/// A rule nest read with its qualifiers: the rule's own path (the PATH text before `//` when
/// DEST/PORTS/UID narrow it) and the PATH text as sent.
struct NestRule<'a> {
    spec: RuleSpec<'a>,
    qual: Qualifiers,
    wire_path: &'a str,
}

fn parse_rule_nest_qualified(payload: &[u8]) -> Result<(NestRule<'_>, Option<&[u8]>), MsgError> {
    let command = Command::Query;
    let found = collect(
        command,
        false,
        payload,
        &[
            Attr::State,
            Attr::Prot,
            Attr::Path,
            Attr::Nested,
            Attr::Dest,
            Attr::Ports,
            Attr::Uid,
        ],
        None,
    )?;
    let state = found.need_u32(command, Attr::State)?;
    let action = Action::from_value(state).ok_or(MsgError::BadState {
        command,
        value: state,
        expected: &[Const::Allow, Const::Block],
    })?;
    let prot = found.need_u32(command, Attr::Prot)?;
    let path = found.bytes(Attr::Path)?.ok_or(MsgError::MissingAttr {
        command,
        attr: Attr::Path,
    })?;
    let wire_path = core::str::from_utf8(path).map_err(|_| MsgError::PathNotUtf8)?;
    let qual = rule_qualifiers(payload, prot)?;
    let path = if qual.is_none() {
        wire_path
    } else {
        // `legacy_path`: the rule's path, `//`, the qualifiers (which start with a space). A
        // canonical path has no `//`, so the first `//` is the marker, or starts one byte early
        // when the path is a folder (`/usr/bin/` + `//`).
        let own = match crate::qual::find_pair(wire_path, *b"//") {
            Some(at) if wire_path.as_bytes().get(at.saturating_add(2)) == Some(&b'/') => {
                wire_path.get(..at.saturating_add(1))
            }
            Some(at) => wire_path.get(..at),
            None => None,
        }
        .unwrap_or(wire_path);
        validate_rule_path(own.as_bytes()).map_err(MsgError::Path)?;
        own
    };
    let next = found.get(Attr::Nested).map(|a| a.payload);
    Ok((
        NestRule {
            spec: RuleSpec { prot, path, action },
            qual,
            wire_path,
        },
        next,
    ))
}

/// Parses and validates a kernel→user message body.
pub fn parse_reply(cmd: u8, attrs: &[u8]) -> Result<Reply<'_>, MsgError> {
    let command = Command::from_value(cmd).ok_or(MsgError::UnknownCommand(cmd))?;
    let allowed = command.reply_attrs().ok_or(MsgError::NotAReply(command))?;
    if command == Command::Stats {
        // Many NESTED entries, each validated by its own grammar.
        return Ok(Reply::Stats(crate::stats::parse_entries(attrs)?));
    }
    let repeatable = if command == Command::Query {
        Some(Attr::Nested)
    } else {
        None
    };
    let found = collect(command, false, attrs, allowed, repeatable)?;
    Ok(match command {
        Command::Error => {
            let message = match found.get(Attr::Message) {
                Some(a) => Some(a.str(crate::MAX_PATH_LEN)?),
                None => None,
            };
            Reply::Error {
                errno: found.u32(Attr::Errno)?,
                message,
            }
        }
        Command::Disconnect => Reply::Disconnect,
        Command::Event => {
            let value = found.need_u32(command, Attr::State)?;
            let state = EventState::from_value(value).ok_or(MsgError::BadState {
                command,
                value,
                expected: &[Const::Pending, Const::Allow, Const::Block],
            })?;
            let prot = found.need_u32(command, Attr::Prot)?;
            let path = found.bytes(Attr::Path)?.ok_or(MsgError::MissingAttr {
                command,
                attr: Attr::Path,
            })?;
            let dst = match found.get(Attr::Dest) {
                None => None,
                Some(a) => match Dest::parse(a.str(crate::QUAL_TEXT_LEN)?) {
                    Ok(Dest::V4 { net, len: 32 }) => Some(Addr::V4(net)),
                    Ok(Dest::V6 { net, len: 128 }) => Some(Addr::V6(net)),
                    _ => return Err(MsgError::Qualifier(QualWireError::Attr(Attr::Dest))),
                },
            };
            let dport = match found.u32(Attr::Dport)? {
                None => None,
                Some(p) => Some(
                    u16::try_from(p)
                        .map_err(|_| MsgError::Qualifier(QualWireError::Attr(Attr::Dport)))?,
                ),
            };
            let peer = EventPeer {
                dst,
                dport,
                uid: found.u32(Attr::Uid)?,
            };
            Reply::Event {
                state,
                prot,
                path,
                peer,
            }
        }
        Command::Get => {
            let index = found.need_u32(command, Attr::Flag)?;
            let flag = Flag::try_from(index).map_err(MsgError::UnknownFlag)?;
            Reply::Get {
                flag,
                value: found.need_u32(command, Attr::Value)?,
            }
        }
        Command::Query => {
            // Validate every rule now so that iteration cannot fail later.
            let mut rules_here = 0usize;
            for raw in AttrIter::new(attrs) {
                let raw = raw?;
                if raw.kind != Attr::Nested.value() {
                    continue;
                }
                let mut next = Some(raw.payload);
                while let Some(payload) = next {
                    let (_, n) = parse_rule_nest_qualified(payload)?;
                    rules_here += 1;
                    next = n;
                }
            }
            Reply::Query(QueryReply {
                mode: found.u32(Attr::State)?,
                count: found.u32(Attr::Count)?,
                attrs,
                rules_here,
            })
        }
        Command::Stats => return Err(MsgError::NotAReply(command)),
        Command::Block
        | Command::Allow
        | Command::Enable
        | Command::Clear
        | Command::Set
        | Command::Subscribe => return Err(MsgError::NotAReply(command)),
    })
}

impl Reply<'_> {
    /// The command byte this reply is sent with.
    pub const fn command(&self) -> Command {
        match self {
            Reply::Get { .. } => Command::Get,
            Reply::Event { .. } => Command::Event,
            Reply::Query(_) => Command::Query,
            Reply::Error { .. } => Command::Error,
            Reply::Disconnect => Command::Disconnect,
            Reply::Stats(_) => Command::Stats,
        }
    }
}

/// Writes a GET reply: FLAG, VALUE.
pub fn emit_get_reply(w: &mut Writer<'_>, flag: Flag, value: u32) -> Result<(), WriteError> {
    let start = w.len();
    let r = w
        .put_u32(Attr::Flag.value(), flag.index())
        .and_then(|()| w.put_u32(Attr::Value.value(), value));
    if r.is_err() {
        w.rollback(start);
    }
    r
}

/// Writes an EVENT: STATE, PROT, PATH. `path` must be at most [`crate::MAX_PATH_LEN`] bytes
/// without NUL.
pub fn emit_event(
    w: &mut Writer<'_>,
    state: EventState,
    prot: u32,
    path: &[u8],
) -> Result<(), WriteError> {
    emit_event_peer(w, state, prot, path, &EventPeer::default())
}

/// [`emit_event`] with where the packet went and whose socket sent it: DEST (the address as
/// text, the form a `to` qualifier takes), DPORT, UID, each only when known.
pub fn emit_event_peer(
    w: &mut Writer<'_>,
    state: EventState,
    prot: u32,
    path: &[u8],
    peer: &EventPeer,
) -> Result<(), WriteError> {
    check_path_bytes(path)?;
    let start = w.len();
    let r = (|| {
        w.put_u32(Attr::State.value(), state.value())?;
        w.put_u32(Attr::Prot.value(), prot)?;
        w.put_str(Attr::Path.value(), path)?;
        if let Some(a) = peer.dst {
            let d = match a {
                Addr::V4(net) => Dest::V4 { net, len: 32 },
                Addr::V6(net) => Dest::V6 { net, len: 128 },
            };
            let mut q = Qualifiers::NONE;
            q.dest = d;
            // The qualifier writer formats it: one printer for addresses.
            emit_qualifiers(w, &q)?;
        }
        if let Some(p) = peer.dport {
            w.put_u32(Attr::Dport.value(), u32::from(p))?;
        }
        if let Some(u) = peer.uid {
            w.put_u32(Attr::Uid.value(), u)?;
        }
        Ok(())
    })();
    if r.is_err() {
        w.rollback(start);
    }
    r
}

/// Writes an ERROR: optional ERRNO, optional MESSAGE (truncated to 255 bytes at a character
/// boundary).
pub fn emit_error(
    w: &mut Writer<'_>,
    errno: Option<u32>,
    message: Option<&str>,
) -> Result<(), WriteError> {
    match message {
        Some(m) => emit_error_display(w, errno, &m),
        None => {
            let start = w.len();
            let r = errno.map_or(Ok(()), |e| w.put_u32(Attr::Errno.value(), e));
            if r.is_err() {
                w.rollback(start);
            }
            r
        }
    }
}

/// Writes an ERROR whose MESSAGE is `message` formatted in place (no allocation), truncated to
/// 255 bytes at a character boundary. Handy for `emit_error_display(w, Some(e.errno()), &e)`.
pub fn emit_error_display(
    w: &mut Writer<'_>,
    errno: Option<u32>,
    message: &dyn fmt::Display,
) -> Result<(), WriteError> {
    let start = w.len();
    let r = errno
        .map_or(Ok(()), |e| w.put_u32(Attr::Errno.value(), e))
        .and_then(|()| {
            w.put_fmt(
                Attr::Message.value(),
                crate::MAX_PATH_LEN,
                format_args!("{message}"),
            )
        });
    if r.is_err() {
        w.rollback(start);
    }
    r
}

/// How far a multi-message QUERY emission got.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryProgress {
    /// Rules written into this message; skip this many in the next call.
    pub written: usize,
    /// Whether the rule iterator was exhausted (this was the last message).
    pub done: bool,
}

/// The first message of a flat QUERY dump carries the mode and the total rule count.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QueryHeader {
    /// Raw mode value.
    pub mode: u32,
    /// Total number of rules.
    pub count: u32,
}

fn check_path_bytes(path: &[u8]) -> Result<(), WriteError> {
    if path.len() > crate::MAX_PATH_LEN {
        return Err(WriteError::TooLong);
    }
    if path.contains(&0) {
        return Err(WriteError::InteriorNul);
    }
    Ok(())
}

/// Bytes one rule nest occupies: nest header, STATE, PROT, PATH, and a qualified rule's
/// DEST/PORTS/UID.
fn rule_cost(rule: &QueryRule<'_>) -> Result<usize, WriteError> {
    check_path_bytes(rule.spec.path.as_bytes())?;
    if rule.qual.is_none() {
        return Ok(NLA_HDRLEN + 8 + 8 + nla_align(NLA_HDRLEN + rule.spec.path.len() + 1));
    }
    let mut scratch = [0u8; crate::MAX_PATH_LEN + 2 * crate::QUAL_TEXT_LEN + 64];
    let mut w = Writer::new(&mut scratch);
    emit_rule_attrs(&mut w, rule)?;
    Ok(NLA_HDRLEN + w.len())
}

/// A rule's STATE, PROT and PATH; a qualified rule's PATH is [`legacy_path`]'s text (so a console
/// that knows only these three never reads it as a plain rule), followed by DEST/PORTS/UID.
fn emit_rule_attrs(w: &mut Writer<'_>, rule: &QueryRule<'_>) -> Result<(), WriteError> {
    w.put_u32(Attr::State.value(), rule.spec.action.value())?;
    w.put_u32(Attr::Prot.value(), rule.spec.prot)?;
    if rule.qual.is_none() {
        return w.put_str(Attr::Path.value(), rule.spec.path);
    }
    let mut buf = [0u8; crate::MAX_PATH_LEN];
    let shown = legacy_path(rule.spec.path.as_bytes(), &rule.qual, &mut buf);
    w.put_str(Attr::Path.value(), shown)?;
    emit_qualifiers(w, &rule.qual)
}

/// Writes one message of the compatible (chained) QUERY reply: STATE = `mode`, then as many of
/// `rules` as fit as a chain of nests, then, if that was the last rule, COUNT = `total`.
///
/// Call it once per message, each time with the rules after those already written (e.g.
/// `ring.iter().skip(sent)`), until [`QueryProgress::done`]. Fails with [`WriteError::Full`] (and
/// writes nothing) if not even one remaining rule fits.
pub fn emit_query_chain<'r, I>(
    w: &mut Writer<'_>,
    mode: u32,
    rules: I,
    total: u32,
) -> Result<QueryProgress, WriteError>
where
    I: IntoIterator,
    I::Item: Into<QueryRule<'r>>,
{
    const COUNT_COST: usize = NLA_HDRLEN + 4;
    let start = w.len();
    let result = (|| {
        w.put_u32(Attr::State.value(), mode)?;
        let chain_start = w.len();
        let mut iter = rules.into_iter().map(Into::into).peekable();
        let mut written = 0usize;
        while let Some(rule) = iter.peek() {
            let cost = rule_cost(rule)?;
            let after = w.len().saturating_add(cost);
            if after.saturating_add(COUNT_COST) > w.capacity()
                || after - chain_start > usize::from(u16::MAX)
            {
                break;
            }
            // The nest's length is fixed below, once the chain's end is known.
            let _open = w.nest_start(Attr::Nested.value())?;
            emit_rule_attrs(w, rule)?;
            iter.next();
            written += 1;
        }
        let done = iter.peek().is_none();
        if written == 0 && !done {
            return Err(WriteError::Full);
        }
        // Every nest of the chain ends where the chain ends.
        let chain_end = w.len();
        let mut at = chain_start;
        while at < chain_end {
            let len = u16::try_from(chain_end - at).map_err(|_| WriteError::TooLong)?;
            w.set_len_at(at, len)?;
            let mut p = at + NLA_HDRLEN;
            let mut next = None;
            while p < chain_end {
                let (l, ty) = w.header_at(p).ok_or(WriteError::BadNest)?;
                if ty & NLA_F_NESTED != 0 {
                    next = Some(p);
                    break;
                }
                p += nla_align(usize::from(l).max(NLA_HDRLEN));
            }
            match next {
                Some(n) => at = n,
                None => break,
            }
        }
        if done {
            w.put_u32(Attr::Count.value(), total)?;
        }
        Ok(QueryProgress { written, done })
    })();
    if result.is_err() {
        w.rollback(start);
    }
    result
}

/// Writes one message of the flat QUERY dump: `header` (mode STATE and COUNT, first message
/// only), then as many of `rules` as fit, each as one top-level NESTED {STATE, PROT, PATH}.
///
/// Call it once per dump message with the rules not yet sent. Fails with [`WriteError::Full`]
/// (and writes nothing) if neither the header nor one rule fits.
pub fn emit_query_dump<'r, I>(
    w: &mut Writer<'_>,
    header: Option<QueryHeader>,
    rules: I,
) -> Result<QueryProgress, WriteError>
where
    I: IntoIterator,
    I::Item: Into<QueryRule<'r>>,
{
    let start = w.len();
    let result = (|| {
        if let Some(h) = header {
            w.put_u32(Attr::State.value(), h.mode)?;
            w.put_u32(Attr::Count.value(), h.count)?;
        }
        let mut iter = rules.into_iter().map(Into::into).peekable();
        let mut written = 0usize;
        while let Some(rule) = iter.peek() {
            let mark = w.len();
            let r = w.nest_start(Attr::Nested.value()).and_then(|nest| {
                emit_rule_attrs(w, rule)?;
                w.nest_end(nest)
            });
            match r {
                Ok(()) => {
                    iter.next();
                    written += 1;
                }
                Err(WriteError::Full) => {
                    w.rollback(mark);
                    break;
                }
                Err(e) => return Err(e),
            }
        }
        let done = iter.peek().is_none();
        if written == 0 && !done && header.is_none() {
            return Err(WriteError::Full);
        }
        Ok(QueryProgress { written, done })
    })();
    if result.is_err() {
        w.rollback(start);
    }
    result
}
