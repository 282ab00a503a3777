//! A ready, thread-safe firewall object for userspace embedders (feature `std`).
//!
//! Why: the kernel module wires [`Engine`] to its own locks, hooks and netlink; an embedder (a test
//! harness, a userspace proxy, the benches) wants the same decisions behind a plain `&self` API. This
//! wraps an [`Engine`] on `parking_lot` read/write locks, reads the clock itself, resolves executables
//! through `/proc/<tgid>/exe` and copies event paths out for the caller.

use std::boxed::Box;
use std::fmt;
use std::format;
use std::string::ToString;
use std::time::Instant;

use crate::active::ProcessTable;
use crate::decide::{Decision, EventKind, PacketFacts};
use crate::flags::Action;
use crate::path::{strip_deleted, ExePath, PathError, MAX_PATH_LEN};
use crate::rules::{AddOutcome, Rule, RuleError};
use crate::schema::{Flag, ValueError};
use crate::sync::{Engine, ExeLookup, ExeResolver, SocketFacts};

/// The engine type used by [`Firewall`]: default capacities on parking_lot locks.
pub type StdEngine = Engine<parking_lot::RawRwLock>;

/// Resolves executables through `/proc/<tgid>/exe` (the `" (deleted)"` suffix is stripped).
#[derive(Debug, Default, Clone, Copy)]
pub struct ProcExeResolver;

impl ExeResolver for ProcExeResolver {
    fn exe_path(&mut self, tgid: u32, out: &mut ExePath) -> ExeLookup {
        let Ok(target) = std::fs::read_link(format!("/proc/{tgid}/exe")) else {
            return ExeLookup::Gone;
        };
        let bytes = strip_deleted(target.as_os_str().as_encoded_bytes());
        if bytes.len() > MAX_PATH_LEN {
            return ExeLookup::TooLong;
        }
        match out.set(bytes) {
            Ok(()) => ExeLookup::Found,
            Err(PathError::TooLong { .. }) => ExeLookup::TooLong,
            Err(_) => ExeLookup::Gone,
        }
    }
}

/// Why a [`Firewall`] rule edit failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirewallError {
    /// The rule itself is invalid.
    Rule(RuleError),
    /// The rule table is full.
    Full {
        /// The table's capacity.
        capacity: usize,
    },
}

impl fmt::Display for FirewallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirewallError::Rule(e) => e.fmt(f),
            FirewallError::Full { capacity } => write!(
                f,
                "rule table is full ({capacity} rules): remove a rule before adding another"
            ),
        }
    }
}

impl std::error::Error for FirewallError {}

/// An event with its path copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallEvent {
    /// pending / allow / block.
    pub kind: EventKind,
    /// The packet's protocol.
    pub proto: u32,
    /// The executable.
    pub path: ExePath,
}

/// A thread-safe firewall engine with default capacities (see the module docs).
pub struct Firewall {
    engine: Box<StdEngine>,
    start: Instant,
}

impl Default for Firewall {
    fn default() -> Self {
        Self::new()
    }
}

impl Firewall {
    /// A fresh firewall: mode disabled, no rules.
    pub fn new() -> Self {
        // Evaluated at compile time, so the only stack copy is the one `Box::new` moves from (debug
        // builds would otherwise stack several ~420 KiB temporaries and overflow a 2 MiB thread stack).
        #[allow(
            clippy::declare_interior_mutable_const,
            reason = "a fresh copy per use is exactly what is wanted"
        )]
        const FRESH: StdEngine = Engine::new();
        Firewall {
            engine: Box::new(FRESH),
            start: Instant::now(),
        }
    }

    /// The underlying engine.
    pub fn engine(&self) -> &StdEngine {
        &self.engine
    }

    /// Milliseconds since creation (the clock given to the caches).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Validated SET of a flag.
    pub fn set(&self, flag: Flag, value: u32) -> Result<(), ValueError> {
        self.engine.flags.set(flag, value)
    }

    /// GET of a flag (`uptime` is computed).
    pub fn get(&self, flag: Flag) -> u32 {
        if flag == Flag::Uptime {
            let secs = u32::try_from(self.start.elapsed().as_secs()).unwrap_or(u32::MAX);
            self.engine.flags.set_stat(Flag::Uptime, secs);
        }
        self.engine.flags.get(flag)
    }

    /// Adds a rule (validated).
    pub fn add_rule(
        &self,
        proto: u32,
        path: &str,
        action: Action,
    ) -> Result<AddOutcome, FirewallError> {
        let rule = Rule::new(proto, path.as_bytes(), action).map_err(FirewallError::Rule)?;
        self.engine.edit_rules(|r| {
            let capacity = r.capacity();
            r.add(rule).map_err(|_| FirewallError::Full { capacity })
        })
    }

    /// Removes the rule (proto, path).
    pub fn remove_rule(&self, proto: u32, path: &str) -> bool {
        self.engine.edit_rules(|r| r.remove(proto, path.as_bytes()))
    }

    /// Removes every rule; returns how many.
    pub fn clear_rules(&self) -> usize {
        self.engine.edit_rules(|r| r.clear())
    }

    /// Removes every rule with `action`; returns how many.
    pub fn clear_action(&self, action: Action) -> usize {
        self.engine.edit_rules(|r| r.clear_action(action))
    }

    /// The rules in order, as (proto, path, action).
    pub fn rules(&self) -> std::vec::Vec<(u32, std::string::String, Action)> {
        self.engine
            .rules
            .read()
            .iter()
            .map(|r| (r.proto(), r.path().to_string(), r.action()))
            .collect()
    }

    /// Decides a packet, resolving owners with `table` and executables through `/proc`.
    pub fn decide(
        &self,
        facts: &PacketFacts,
        sock: &SocketFacts,
        table: &mut impl ProcessTable,
    ) -> (Decision, Option<FirewallEvent>) {
        self.decide_with(facts, sock, table, &mut ProcExeResolver)
    }

    /// Decides a packet with an explicit executable resolver.
    pub fn decide_with(
        &self,
        facts: &PacketFacts,
        sock: &SocketFacts,
        table: &mut impl ProcessTable,
        resolver: &mut impl ExeResolver,
    ) -> (Decision, Option<FirewallEvent>) {
        let out = self
            .engine
            .decide_packet(facts, sock, self.now_ms(), table, resolver);
        let event = out.event.and_then(|e| {
            let mut path = ExePath::EMPTY;
            self.engine
                .exe_path(e.exe, &mut path)
                .then_some(FirewallEvent {
                    kind: e.kind,
                    proto: e.proto,
                    path,
                })
        });
        (out.decision, event)
    }
}
