//! The small interface between the command logic and the kernel.
//!
//! Everything above this trait (grammar, scripts, save/restore, output) is plain logic that the unit
//! tests drive with [`crate::fake::FakeKernel`]; only [`crate::netlink`] talks to the real module.
//! The operations are the kernel's commands in owned, already validated form, and the answers are
//! owned values, so nothing above this line sees netlink buffers.

use crate::error::CliError;
use crate::grammar::{Action, ClearSpec};
use e7_proto::qual::Qualifiers;
use e7_proto::Flag;
use std::sync::mpsc::Receiver;

/// A change to the firewall: what a console or script line asks for and what the kernel
/// request carries are the same thing, so the grammar's [`crate::grammar::Statement::Change`] is
/// sent as [`Op::Change`] unaltered. These are the requests that need CAP_NET_ADMIN, apart from
/// SUBSCRIBE (which changes nothing).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// `allow|block [PROTO] PATH` — ALLOW/BLOCK with PROT and PATH: add a rule, or change the
    /// action of the existing one.
    AddRule {
        /// Allow or block.
        action: Action,
        /// Protocol (`any` = 0xFFFF_FFFF when not given).
        prot: u32,
        /// Absolute program path, or folder ending in `/`.
        path: String,
    },
    /// `allow|block [PROTO] PATH to DEST port PORTS user USER` — a rule with qualifiers: ALLOW/BLOCK
    /// with PROT, PATH and the appended DEST/PORTS/UID attributes. Sent only to a module whose
    /// `qualifiers` flag announces every qualifier the rule uses ([`crate::exec`]).
    AddQualified {
        /// Allow or block.
        action: Action,
        /// Protocol (`any` = 0xFFFF_FFFF when not given).
        prot: u32,
        /// Absolute program path, or folder ending in `/`.
        path: String,
        /// Destination, ports, user (at least one set).
        qual: Qualifiers,
    },
    /// `enable` — ENABLE: mode = enabled.
    Enable,
    /// `clear ...` — CLEAR.
    Clear(ClearSpec),
    /// `set FLAG VALUE` (also `block`, `allow` and `disable` with no argument: mode changes) —
    /// SET.
    Set {
        /// The flag.
        flag: Flag,
        /// Its new value, already validated for the flag's class.
        value: u32,
    },
}

impl Change {
    /// The console word for this change (`allow`, `block`, `enable`, `clear`, `set`).
    pub fn word(&self) -> &'static str {
        match self {
            Change::AddRule { action, .. } | Change::AddQualified { action, .. } => action.alias(),
            Change::Enable => "enable",
            Change::Clear(_) => "clear",
            Change::Set { .. } => "set",
        }
    }

    /// The qualifier feature bits ([`e7_proto::qual::FEATURE_DEST`], ...) the module must announce
    /// before this change may be sent: 0 for everything but a qualified rule.
    pub fn needs_features(&self) -> u32 {
        match self {
            Change::AddQualified { qual, .. }
            | Change::Clear(ClearSpec::Qualified { qual, .. }) => qual.features(),
            _ => 0,
        }
    }
}

/// One request to the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Op {
    /// ALLOW/BLOCK, ENABLE, CLEAR or SET.
    Change(Change),
    /// GET FLAG: answered with [`Outcome::Value`].
    Get(Flag),
    /// QUERY: answered with [`Outcome::Rules`].
    Query,
    /// SUBSCRIBE: send this socket the kernel's events.
    Subscribe,
    /// DISCONNECT: stop sending this socket events.
    Disconnect,
    /// STATS: answered with [`Outcome::Stats`] (admin only unless the `statsunpriv` flag is
    /// enabled).
    Stats,
}

impl Op {
    /// The console word for this request, used in error messages (`allow`, `set`...).
    pub fn word(&self) -> &'static str {
        match self {
            Op::Change(change) => change.word(),
            Op::Get(_) => "get",
            Op::Query => "query",
            Op::Subscribe => "monitor",
            Op::Disconnect => "disconnect",
            Op::Stats => "stats",
        }
    }
}

/// One rule as the kernel lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    /// Allow or block.
    pub action: Action,
    /// Protocol number (ANY = 0xFFFF_FFFF).
    pub prot: u32,
    /// Path or folder.
    pub path: String,
    /// Qualifiers ([`Qualifiers::NONE`] for a plain rule).
    pub qual: Qualifiers,
}

/// The answer to QUERY: mode and rules in precedence (insertion) order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    /// The mode flag's value (`enabled`, `disabled` or `block` constant).
    pub mode: u32,
    /// The rules, first match first.
    pub rules: Vec<Rule>,
}

/// The answer to one [`Op`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Acknowledged, nothing to report.
    Done,
    /// The value of a flag (answer to GET).
    Value {
        /// The flag.
        flag: Flag,
        /// Its value.
        value: u32,
    },
    /// The rule table (answer to QUERY).
    Rules(RuleSet),
    /// Per-program statistics (answer to STATS), in the kernel's order.
    Stats(Vec<ProgStat>),
}

/// One program's statistics as the kernel reports them (a STATS entry).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProgStat {
    /// The executable's path.
    pub path: String,
    /// IP protocol of its latest packet.
    pub prot: u32,
    /// Verdict of its latest packet.
    pub verdict: Action,
    /// Why the latest packet got that verdict.
    pub reason: e7_proto::stats::Reason,
    /// Packets accepted.
    pub accept_packets: u64,
    /// Bytes accepted.
    pub accept_bytes: u64,
    /// Packets dropped.
    pub drop_packets: u64,
    /// Bytes dropped.
    pub drop_bytes: u64,
    /// Seconds since its first counted packet.
    pub first_seen_ago: u32,
    /// Seconds since its latest packet.
    pub last_seen_ago: u32,
}

impl ProgStat {
    /// Packets in all.
    pub fn packets(&self) -> u64 {
        self.accept_packets.saturating_add(self.drop_packets)
    }

    /// Bytes in all.
    pub fn bytes(&self) -> u64 {
        self.accept_bytes.saturating_add(self.drop_bytes)
    }

    /// From a validated STATS entry.
    pub fn from_entry(e: &e7_proto::stats::Entry<'_>) -> ProgStat {
        ProgStat {
            path: String::from_utf8_lossy(e.path).into_owned(),
            prot: e.prot,
            verdict: if e.state == e7_proto::Const::Block.value() {
                Action::Block
            } else {
                Action::Allow
            },
            reason: e.reason,
            accept_packets: e.accept_packets,
            accept_bytes: e.accept_bytes,
            drop_packets: e.drop_packets,
            drop_bytes: e.drop_bytes,
            first_seen_ago: e.first_seen,
            last_seen_ago: e.last_seen,
        }
    }
}

/// A packet notification from the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// `pending` (no rule matched), `allow` or `block` constant.
    pub state: u32,
    /// IP protocol number.
    pub prot: u32,
    /// The program's path (empty when unknown).
    pub path: String,
    /// Where the packet went and whose socket sent it (each part `None` when the module did not
    /// say: an older module, or a packet without ports or socket).
    pub peer: e7_proto::msg::EventPeer,
}

/// Something the kernel said without being asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A packet event.
    Event(Event),
    /// The socket buffer overflowed: this many or more events were lost.
    Lost,
    /// The kernel sent DISCONNECT (the module is being unloaded).
    Disconnected,
    /// Reading from the kernel failed; no more notices will come.
    Failed(String),
}

/// The kernel, as seen by the command logic.
pub trait Kernel {
    /// Send one request and wait for its answer.
    fn call(&mut self, op: &Op) -> Result<Outcome, CliError>;

    /// Check that the module is still the one this connection talks to (used by long-running
    /// commands, since the kernel's DISCONNECT at unload can be lost under an event flood).
    fn check_alive(&mut self) -> Result<(), CliError> {
        Ok(())
    }

    /// Take the stream of unsolicited notices (events). Returns `None` when already taken.
    /// Notices only flow after a successful [`Op::Subscribe`].
    fn notices(&mut self) -> Option<Receiver<Notice>>;
}

/// GET a flag's value.
pub fn get(kernel: &mut dyn Kernel, flag: Flag) -> Result<u32, CliError> {
    match kernel.call(&Op::Get(flag))? {
        Outcome::Value { value, .. } => Ok(value),
        other => Err(CliError::Failed(format!(
            "unexpected answer to `get {}`: {other:?}",
            flag.alias()
        ))),
    }
}

/// QUERY the rule table.
pub fn query(kernel: &mut dyn Kernel) -> Result<RuleSet, CliError> {
    match kernel.call(&Op::Query)? {
        Outcome::Rules(set) => Ok(set),
        other => Err(CliError::Failed(format!(
            "unexpected answer to `query`: {other:?}"
        ))),
    }
}

/// STATS: every program's statistics.
pub fn stats(kernel: &mut dyn Kernel) -> Result<Vec<ProgStat>, CliError> {
    match kernel.call(&Op::Stats)? {
        Outcome::Stats(list) => Ok(list),
        other => Err(CliError::Failed(format!(
            "unexpected answer to `stats`: {other:?}"
        ))),
    }
}
