//! The few schema names e7-core needs from e7-proto (`Flag`, `Const`, `ValueClass`, value validation).
//!
//! Why this module exists: e7-proto is the single source of truth for the wire schema and is written in
//! parallel with this crate. To keep the coupling to one place, every other module of e7-core imports
//! these names from here and nowhere else. While e7-proto does not yet export them, this module holds a
//! faithful local copy written against the documented names in `docs/ARCHITECTURE.md`; once e7-proto
//! lands, the bodies below are replaced by `pub use e7_proto::{..}` and nothing else in the crate changes.

use core::fmt;

/// Protocol number of ICMP.
pub const PROTO_ICMP: u32 = 1;
/// Protocol number of TCP.
pub const PROTO_TCP: u32 = 6;
/// Protocol number of UDP.
pub const PROTO_UDP: u32 = 17;
/// Protocol number of ICMPv6.
pub const PROTO_ICMPV6: u32 = 58;
/// The `any` protocol wildcard of rules.
pub const PROTO_ANY: u32 = 0xFFFF_FFFF;

/// Named constants of the wire schema (`E7C_*`), numbering as the original.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Const {
    /// `icmp` = 1.
    Icmp,
    /// `tcp` = 6.
    Tcp,
    /// `udp` = 17.
    Udp,
    /// `any` = 0xFFFF_FFFF.
    Any,
    /// `block` = 0xFF00.
    Block,
    /// `allow` = 0xFF01.
    Allow,
    /// `pending` = 0xFF02.
    Pending,
    /// `enabled` = 0xFF03.
    Enabled,
    /// `disabled` = 0xFF04.
    Disabled,
    /// `icmpv6` = 58 (appended).
    Icmpv6,
}

impl Const {
    /// Every constant, in schema order.
    pub const ALL: &'static [Const] = &[
        Const::Icmp,
        Const::Tcp,
        Const::Udp,
        Const::Any,
        Const::Block,
        Const::Allow,
        Const::Pending,
        Const::Enabled,
        Const::Disabled,
        Const::Icmpv6,
    ];

    /// The numeric value on the wire.
    pub const fn value(self) -> u32 {
        match self {
            Const::Icmp => PROTO_ICMP,
            Const::Tcp => PROTO_TCP,
            Const::Udp => PROTO_UDP,
            Const::Any => PROTO_ANY,
            Const::Block => 0xFF00,
            Const::Allow => 0xFF01,
            Const::Pending => 0xFF02,
            Const::Enabled => 0xFF03,
            Const::Disabled => 0xFF04,
            Const::Icmpv6 => PROTO_ICMPV6,
        }
    }

    /// The alias used by the console (`tcp`, `allow`, ...).
    pub const fn alias(self) -> &'static str {
        match self {
            Const::Icmp => "icmp",
            Const::Tcp => "tcp",
            Const::Udp => "udp",
            Const::Any => "any",
            Const::Block => "block",
            Const::Allow => "allow",
            Const::Pending => "pending",
            Const::Enabled => "enabled",
            Const::Disabled => "disabled",
            Const::Icmpv6 => "icmpv6",
        }
    }
}

impl Const {
    /// The constant whose wire value is `value`.
    pub const fn from_value(value: u32) -> Option<Const> {
        let mut i = 0;
        while i < Const::ALL.len() {
            if Const::ALL[i].value() == value {
                return Some(Const::ALL[i]);
            }
            i += 1;
        }
        None
    }
}

/// What values a flag accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ValueClass {
    /// `enabled`, `disabled` or `block`.
    Mode,
    /// `allow` or `block`.
    Action,
    /// `enabled` or `disabled`.
    Boolean,
    /// Statistics maintained by the kernel; SET is refused.
    ReadOnly,
}

/// A runtime flag, addressed on the wire by its index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Flag {
    /// 0 `mode`.
    Mode,
    /// 1 `debug`.
    Debug,
    /// 2 `fail`.
    Fail,
    /// 3 `unkproc`.
    UnkProc,
    /// 4 `unkprot`.
    UnkProt,
    /// 5 `norule`.
    NoRule,
    /// 6 `squelch`.
    Squelch,
    /// 7 `unkrule`.
    UnkRule,
    /// 8 `drops`.
    Drops,
    /// 9 `accepts`.
    Accepts,
    /// 10 `rchngq`.
    RChngQ,
    /// 11 `uptime`.
    Uptime,
    /// 12 `qpackets`.
    QPackets,
    /// 13 `longpath`.
    LongPath,
    /// 14 `evlost`.
    EvLost,
}

impl Flag {
    /// Number of flags.
    pub const COUNT: usize = Flag::ALL.len();
    /// Every flag, in index order.
    pub const ALL: &'static [Flag] = &[
        Flag::Mode,
        Flag::Debug,
        Flag::Fail,
        Flag::UnkProc,
        Flag::UnkProt,
        Flag::NoRule,
        Flag::Squelch,
        Flag::UnkRule,
        Flag::Drops,
        Flag::Accepts,
        Flag::RChngQ,
        Flag::Uptime,
        Flag::QPackets,
        Flag::LongPath,
        Flag::EvLost,
    ];

    /// The wire index.
    pub const fn index(self) -> u32 {
        self as u32
    }

    /// The console alias.
    pub const fn alias(self) -> &'static str {
        match self {
            Flag::Mode => "mode",
            Flag::Debug => "debug",
            Flag::Fail => "fail",
            Flag::UnkProc => "unkproc",
            Flag::UnkProt => "unkprot",
            Flag::NoRule => "norule",
            Flag::Squelch => "squelch",
            Flag::UnkRule => "unkrule",
            Flag::Drops => "drops",
            Flag::Accepts => "accepts",
            Flag::RChngQ => "rchngq",
            Flag::Uptime => "uptime",
            Flag::QPackets => "qpackets",
            Flag::LongPath => "longpath",
            Flag::EvLost => "evlost",
        }
    }

    /// The value class.
    pub const fn class(self) -> ValueClass {
        match self {
            Flag::Mode => ValueClass::Mode,
            Flag::Fail | Flag::UnkProc | Flag::UnkProt | Flag::UnkRule | Flag::LongPath => {
                ValueClass::Action
            }
            Flag::Debug
            | Flag::NoRule
            | Flag::Squelch
            | Flag::Drops
            | Flag::Accepts
            | Flag::RChngQ => ValueClass::Boolean,
            Flag::Uptime | Flag::QPackets | Flag::EvLost => ValueClass::ReadOnly,
        }
    }

    /// The value at module load.
    pub const fn default_value(self) -> u32 {
        const ENABLED: u32 = Const::Enabled.value();
        const DISABLED: u32 = Const::Disabled.value();
        const ALLOW: u32 = Const::Allow.value();
        const BLOCK: u32 = Const::Block.value();
        match self {
            Flag::Mode | Flag::Debug | Flag::Drops | Flag::Accepts => DISABLED,
            Flag::Fail | Flag::UnkProc | Flag::UnkProt | Flag::UnkRule => ALLOW,
            Flag::NoRule | Flag::Squelch | Flag::RChngQ => ENABLED,
            Flag::LongPath => BLOCK,
            Flag::Uptime | Flag::QPackets | Flag::EvLost => 0,
        }
    }

    /// The flag at wire index `index`.
    pub const fn from_index(index: u32) -> Option<Flag> {
        if (index as usize) < Flag::COUNT {
            Some(Flag::ALL[index as usize])
        } else {
            None
        }
    }

    /// Checks that `value` is acceptable for SET on this flag.
    pub fn validate(self, value: u32) -> Result<(), ValueError> {
        let ok = match self.class() {
            ValueClass::Mode => {
                value == Const::Enabled.value()
                    || value == Const::Disabled.value()
                    || value == Const::Block.value()
            }
            ValueClass::Action => value == Const::Allow.value() || value == Const::Block.value(),
            ValueClass::Boolean => {
                value == Const::Enabled.value() || value == Const::Disabled.value()
            }
            ValueClass::ReadOnly => false,
        };
        if self.class() == ValueClass::ReadOnly {
            Err(ValueError::ReadOnly { flag: self })
        } else if ok {
            Ok(())
        } else {
            Err(ValueError::Invalid { flag: self, value })
        }
    }
}

/// A value refused by [`Flag::validate`]; `Display` names the flag and the valid aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
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

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            ValueError::ReadOnly { flag } => write!(f, "flag `{}` is read-only", flag.alias()),
            ValueError::Invalid { flag, value } => {
                let valid = match flag.class() {
                    ValueClass::Mode => "enabled, disabled or block",
                    ValueClass::Action => "allow or block",
                    ValueClass::Boolean | ValueClass::ReadOnly => "enabled or disabled",
                };
                write!(
                    f,
                    "invalid value {value} ({value:#x}) for flag `{}`: expected {valid}",
                    flag.alias()
                )
            }
        }
    }
}

/// A rule verdict: the STATE of a rule, the value of an action flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Accept the packet.
    Allow,
    /// Drop the packet.
    Block,
}

impl Action {
    /// The wire value (`allow` = 0xFF01, `block` = 0xFF00).
    pub const fn value(self) -> u32 {
        match self {
            Action::Allow => Const::Allow.value(),
            Action::Block => Const::Block.value(),
        }
    }
    /// `allow` or `block`.
    pub const fn alias(self) -> &'static str {
        match self {
            Action::Allow => "allow",
            Action::Block => "block",
        }
    }
    /// The action whose wire value is `value`.
    pub const fn from_value(value: u32) -> Option<Action> {
        match value {
            0xFF01 => Some(Action::Allow),
            0xFF00 => Some(Action::Block),
            _ => None,
        }
    }
}

/// The firewall mode (value of the `mode` flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Identify the program and apply rules.
    Enabled,
    /// Accept everything without looking (the default at load).
    Disabled,
    /// Drop everything (the original's bug B1, where this acted like Enabled, is fixed).
    Block,
}

impl Mode {
    /// The wire value.
    pub const fn value(self) -> u32 {
        match self {
            Mode::Enabled => Const::Enabled.value(),
            Mode::Disabled => Const::Disabled.value(),
            Mode::Block => Const::Block.value(),
        }
    }
    /// The mode whose wire value is `value`.
    pub const fn from_value(value: u32) -> Option<Mode> {
        match value {
            0xFF03 => Some(Mode::Enabled),
            0xFF04 => Some(Mode::Disabled),
            0xFF00 => Some(Mode::Block),
            _ => None,
        }
    }
}

/// True for the protocols e7 identifies (tcp, udp, icmp, icmpv6).
pub const fn is_identified_protocol(p: u32) -> bool {
    matches!(p, PROTO_TCP | PROTO_UDP | PROTO_ICMP | PROTO_ICMPV6)
}

/// True for the protocols a rule may name (the identified ones plus `any`).
pub const fn is_rule_protocol(p: u32) -> bool {
    is_identified_protocol(p) || p == PROTO_ANY
}
