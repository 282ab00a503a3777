//! Runtime flags: one atomic `u32` per [`Flag`], validated on SET, plus a policy generation.
//!
//! Why atomics: packets read flags on every decision from softirq on any CPU while an admin may SET
//! them; a relaxed load per flag is as cheap as a plain load and needs no lock. A packet reads a
//! [`FlagValues`] snapshot once, so one decision never mixes old and new values of the same flag.
//!
//! Why a generation: the known-socket cache stores each socket's last decision tagged with the policy
//! generation it was computed under. Every SET that changes a verdict-affecting flag (mode, default
//! actions, event switches) bumps [`Flags::generation`]; the kernel adds it to the rule ring's
//! generation ([`policy_generation`]), so a mode or rule change applies to already-open sockets from
//! their very next packet. Flags that do not affect decisions (`debug`, `rchngq`, statistics) do not
//! bump it, so toggling them keeps the caches warm.

use core::sync::atomic::{
    AtomicU32,
    Ordering::{Acquire, Relaxed, Release},
};

pub use crate::schema::{Action, Mode};
use crate::schema::{Const, Flag, ValueClass, ValueError};

/// The combined policy generation that tags cached verdicts: `flags_gen + rules_gen` (wrapping).
///
/// Both inputs only ever increase (by one per change), so the sum changes on every change of either;
/// it can repeat only after 2³² changes.
pub const fn policy_generation(flags_gen: u32, rules_gen: u32) -> u32 {
    flags_gen.wrapping_add(rules_gen)
}

/// A consistent, typed snapshot of the flags that decisions use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlagValues {
    /// `mode`.
    pub mode: Mode,
    /// `debug`: rate-limited decision logging by the kernel.
    pub debug: bool,
    /// `fail`: verdict for a malformed packet.
    pub fail: Action,
    /// `unkproc`: verdict when no full socket or no owning process was found (tcp, udp, icmp and
    /// icmpv6 packets).
    pub unkproc: Action,
    /// `unkprot`: verdict for packets no program owns, of protocols other than
    /// tcp/udp/icmp/icmpv6.
    pub unkprot: Action,
    /// `norule`: emit a PENDING event for packets that match no rule.
    pub norule: bool,
    /// `squelch`: rate-limit PENDING events per (protocol, executable).
    pub squelch: bool,
    /// `unkrule`: verdict for identified packets that match no rule.
    pub unkrule: Action,
    /// `drops`: emit a BLOCK event for every packet dropped by a rule.
    pub drops: bool,
    /// `accepts`: emit an ALLOW event for every packet accepted by a rule.
    pub accepts: bool,
    /// `longpath`: verdict for a process whose executable path exceeds 255 bytes.
    pub longpath: Action,
    /// `nspath`: verdict for a process whose executable has no verified path in the initial mount
    /// namespace and root (a bind mount in a private mount namespace, a mount no one else sees).
    pub nspath: Action,
}

impl FlagValues {
    /// The documented defaults (what a fresh [`Flags`] holds), read from the schema's flag rows
    /// (`Flag::default_value`): the values have one home, this only says which field is which flag.
    pub const DEFAULT: FlagValues = FlagValues {
        mode: match Mode::from_value(Flag::Mode.default_value()) {
            Some(m) => m,
            None => Mode::Disabled,
        },
        debug: default_bool(Flag::Debug),
        fail: default_action(Flag::Fail),
        unkproc: default_action(Flag::UnkProc),
        unkprot: default_action(Flag::UnkProt),
        norule: default_bool(Flag::NoRule),
        squelch: default_bool(Flag::Squelch),
        unkrule: default_action(Flag::UnkRule),
        drops: default_bool(Flag::Drops),
        accepts: default_bool(Flag::Accepts),
        longpath: default_action(Flag::LongPath),
        nspath: default_action(Flag::NsPath),
    };
}

const fn default_bool(f: Flag) -> bool {
    f.default_value() == Const::Enabled.value()
}

const fn default_action(f: Flag) -> Action {
    match Action::from_value(f.default_value()) {
        Some(a) => a,
        // Unreachable: the schema checks at compile time that defaults fit their class.
        None => Action::Allow,
    }
}

impl Default for FlagValues {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// The flag store: an atomic `u32` per flag and a generation (see the module docs).
///
/// Laid out for the per-packet read: the flags' generation, the rules' generation (published by
/// the engine after every rule edit, [`Flags::publish_rules_generation`]) and the first flags
/// (`mode`, `debug`, ...) share the first 64-byte line, so a cached verdict's validity check (mode,
/// policy generation) reads that one read-mostly line.
#[repr(C, align(64))]
pub struct Flags {
    generation: AtomicU32,
    rules_generation: AtomicU32,
    values: [AtomicU32; Flag::COUNT],
}

impl Default for Flags {
    fn default() -> Self {
        Self::new()
    }
}

impl Flags {
    /// Flags at their defaults, generation 0.
    pub const fn new() -> Self {
        let mut values = [const { AtomicU32::new(0) }; Flag::COUNT];
        let mut i = 0;
        while i < Flag::COUNT {
            // Direct indexing is fine in const evaluation (an error here is a compile error).
            values[i] = AtomicU32::new(Flag::ALL[i].default_value());
            i = i.wrapping_add(1);
        }
        Flags {
            generation: AtomicU32::new(0),
            rules_generation: AtomicU32::new(0),
            values,
        }
    }

    fn slot(&self, flag: Flag) -> Option<&AtomicU32> {
        self.values.get(flag.index() as usize)
    }

    /// The raw value of a flag.
    pub fn get(&self, flag: Flag) -> u32 {
        self.slot(flag).map_or(0, |a| a.load(Relaxed))
    }

    /// Validated SET. Read-only flags (`uptime`, `qpackets`, `evlost`) are refused. Bumps the
    /// generation if the flag affects decisions and its value changed.
    pub fn set(&self, flag: Flag, value: u32) -> Result<(), ValueError> {
        flag.validate(value)?;
        // Value first, then the generation (release): a packet that reads the new generation
        // (acquire, before its flags) reads the new value too; one that reads the old generation
        // tags its verdict with it, so the verdict is recomputed at the socket's next packet.
        let old = self.slot(flag).map_or(value, |a| a.swap(value, Relaxed));
        if old != value && affects_decisions(flag) {
            self.generation.fetch_add(1, Release);
        }
        Ok(())
    }

    /// Sets a statistic (read-only class) flag, for the kernel (e.g. `uptime` before a GET reply).
    /// Returns false, changing nothing, for flags that are not read-only.
    pub fn set_stat(&self, flag: Flag, value: u32) -> bool {
        if flag.class() != ValueClass::ReadOnly {
            return false;
        }
        if let Some(a) = self.slot(flag) {
            a.store(value, Relaxed);
        }
        true
    }

    /// Adds one to a statistic flag (wrapping), e.g. `qpackets` per decided packet.
    pub fn count(&self, flag: Flag) {
        if flag.class() == ValueClass::ReadOnly {
            if let Some(a) = self.slot(flag) {
                a.fetch_add(1, Relaxed);
            }
        }
    }

    /// Resets every flag to its default (bumping the generation if anything decision-relevant changed).
    pub fn reset(&self) {
        for &flag in Flag::ALL {
            if let Some(a) = self.slot(flag) {
                let old = a.swap(flag.default_value(), Relaxed);
                if old != flag.default_value() && affects_decisions(flag) {
                    self.generation.fetch_add(1, Release);
                }
            }
        }
    }

    /// The flags' generation (bumped by every decision-relevant change). Acquire: read it BEFORE
    /// the flags a decision uses ([`Flags::snapshot`]), so a decision tagged with a generation
    /// saw at least that generation's values (see [`Flags::set`]).
    pub fn generation(&self) -> u32 {
        self.generation.load(Acquire)
    }

    /// The rule table's generation as last published (acquire; see [`Flags::generation`]).
    pub fn rules_generation(&self) -> u32 {
        self.rules_generation.load(Acquire)
    }

    /// Publishes the rule table's generation after an edit (release: a packet that reads it reads
    /// the edited rules). Only the engine's rule edit calls it.
    pub fn publish_rules_generation(&self, g: u32) {
        self.rules_generation.store(g, Release);
    }

    /// The policy generation ([`policy_generation`] of both), read from one line.
    pub fn policy_generation(&self) -> u32 {
        policy_generation(self.generation(), self.rules_generation())
    }

    /// Starts the generation at `v` (tests use it for wrap-around).
    pub fn set_generation(&self, v: u32) {
        self.generation.store(v, Release);
    }

    /// The atomic holding the `mode` flag: the one home of the mode, which a host may read directly
    /// before anything else on its packet path (the kernel module's hook reads it first, so a
    /// disabled firewall costs one load). Write it only through [`Flags::set`].
    pub fn mode_word(&self) -> &AtomicU32 {
        const { assert!(Flag::Mode.index() == 0, "mode is the first flag") };
        let [mode, ..] = &self.values;
        mode
    }

    /// The mode alone (cheapest check: the disabled-mode gate needs only this load).
    pub fn mode(&self) -> Mode {
        mode_of(self.get(Flag::Mode))
    }

    /// A typed snapshot for one decision.
    pub fn snapshot(&self) -> FlagValues {
        let action = |f: Flag, dflt: Action| Action::from_value(self.get(f)).unwrap_or(dflt);
        let boolean = |f: Flag| self.get(f) == Const::Enabled.value();
        let d = FlagValues::DEFAULT;
        FlagValues {
            mode: self.mode(),
            debug: boolean(Flag::Debug),
            fail: action(Flag::Fail, d.fail),
            unkproc: action(Flag::UnkProc, d.unkproc),
            unkprot: action(Flag::UnkProt, d.unkprot),
            norule: boolean(Flag::NoRule),
            squelch: boolean(Flag::Squelch),
            unkrule: action(Flag::UnkRule, d.unkrule),
            drops: boolean(Flag::Drops),
            accepts: boolean(Flag::Accepts),
            longpath: action(Flag::LongPath, d.longpath),
            nspath: action(Flag::NsPath, d.nspath),
        }
    }
}

/// Decodes the `mode` value. Values are validated on SET, so the fallback (Disabled, the load default)
/// is unreachable through [`Flags::set`].
fn mode_of(v: u32) -> Mode {
    Mode::from_value(v).unwrap_or(Mode::Disabled)
}

/// True for the flags whose value changes a decision (verdict or event) of some packet: the
/// schema row's `decides` ([`Flag::affects_decisions`]).
pub const fn affects_decisions(flag: Flag) -> bool {
    flag.affects_decisions()
}
