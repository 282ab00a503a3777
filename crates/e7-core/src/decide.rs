//! The per-packet decision: a pure function of (flags, packet facts, identification, rule).
//!
//! Why pure: every mode and default-action flag of the original is encoded here, in one place, and
//! tested exhaustively without a kernel. Caches, locks and event delivery live elsewhere.
//!
//! Order of the checks (the original's order, with its bugs fixed):
//! 1. mode `disabled` → accept, no work; mode `block` → drop everything (B1 fixed: it really drops);
//! 2. malformed packet → `fail`;
//! 3. packets are identified whatever their IP protocol (udplite, sctp, raw sockets of any protocol:
//!    `block any /x` covers them all);
//! 4. no full socket / no owning process → `unkproc` for tcp, udp, icmp and icmpv6 (what the kernel
//!    itself sends: resets, errors, echo replies), `unkprot` for every other protocol (igmp reports,
//!    encapsulations of forwarded traffic, ...); executable path longer than 255 bytes →
//!    `longpath` (never a silent allow); executable with no verified path in the initial mount
//!    namespace and root (a bind mount in a private mount namespace) → `nspath` (no path rule
//!    can allow a borrowed identity);
//! 5. rule allow → accept (+ALLOW event if `accepts`); rule block → drop (+BLOCK event if `drops`);
//!    no rule → `unkrule` (+PENDING event if `norule`, to be rate-limited by
//!    [`Squelch`](crate::Squelch) when `squelch` is on).
//!
//! Steps 1–2 need no identification: [`decide_early`] lets the kernel stop before looking at the
//! socket at all. Events name (state, protocol, [`ExeId`]); the caller copies the path out of the
//! executable table only when an event is actually emitted.

use crate::exe::ExeId;
use crate::flags::{Action, FlagValues, Mode};
use crate::schema::{is_common_protocol, Const};
use crate::socket::Identity;

/// The address family of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Family {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
}

/// What the hook knows about a packet before identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PacketFacts {
    /// IP protocol number (IPv6: the upper-layer protocol after extension headers).
    pub proto: u32,
    /// Address family.
    pub family: Family,
    /// The packet could not be parsed (no IP header, truncated headers): the `fail` action applies.
    pub malformed: bool,
    /// Destination address, when the host reports it (qualified rules; none: no `to`/`port` rule
    /// matches).
    pub dst: Option<crate::qualified::Addr>,
    /// Destination port, for protocols with ports (tcp, udp, udplite, sctp).
    pub dport: Option<u16>,
    /// The uid the packet's socket belongs to (none without a socket).
    pub uid: Option<u32>,
}

impl PacketFacts {
    /// A well-formed packet of protocol `proto`.
    pub const fn new(proto: u32, family: Family) -> Self {
        PacketFacts {
            proto,
            family,
            malformed: false,
            dst: None,
            dport: None,
            uid: None,
        }
    }

    /// The same facts with the destination and uid (what qualified rules match).
    pub const fn with_peer(
        self,
        dst: Option<crate::qualified::Addr>,
        dport: Option<u16>,
        uid: Option<u32>,
    ) -> Self {
        PacketFacts {
            dst,
            dport,
            uid,
            ..self
        }
    }

    /// What a qualified-rule lookup needs.
    pub const fn qual_facts(&self) -> crate::qualified::QualFacts {
        crate::qualified::QualFacts {
            proto: self.proto,
            dst: self.dst,
            dport: self.dport,
            uid: self.uid,
        }
    }

    /// A packet that could not be parsed.
    pub const fn malformed(family: Family) -> Self {
        PacketFacts {
            proto: 0,
            family,
            malformed: true,
            dst: None,
            dport: None,
            uid: None,
        }
    }
}

/// The result of identifying the sending process (the same three outcomes a socket entry stores).
pub type Identification = Identity;

/// Accept or drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// Let the packet through.
    Accept,
    /// Drop the packet.
    Drop,
}

impl Verdict {
    /// The verdict an action stands for.
    pub const fn of(action: Action) -> Verdict {
        match action {
            Action::Allow => Verdict::Accept,
            Action::Block => Verdict::Drop,
        }
    }
}

/// The kind of event a decision asks for; the event's STATE attribute is [`EventKind::state`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// No rule matched (flag `norule`).
    Pending,
    /// An allow rule accepted the packet (flag `accepts`).
    Allow,
    /// A block rule dropped the packet (flag `drops`).
    Block,
}

impl EventKind {
    /// The STATE value on the wire (`pending`, `allow`, `block`).
    pub const fn state(self) -> u32 {
        match self {
            EventKind::Pending => Const::Pending.value(),
            EventKind::Allow => Const::Allow.value(),
            EventKind::Block => Const::Block.value(),
        }
    }
}

/// Which rule of behaviour produced a decision (for debug logging and tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// Mode `disabled`.
    Disabled,
    /// Mode `block`.
    BlockMode,
    /// Malformed packet → `fail`.
    Malformed,
    /// No owning program, protocol other than tcp/udp/icmp/icmpv6 → `unkprot`.
    UnknownProtocol,
    /// No full socket or no process, protocol tcp/udp/icmp/icmpv6 → `unkproc`.
    UnknownProcess,
    /// Executable path too long → `longpath`.
    PathTooLong,
    /// Executable without a verified path in the initial mount namespace → `nspath`.
    NoHostPath,
    /// A rule matched.
    Rule,
    /// No rule matched → `unkrule`.
    NoRule,
    /// The socket's owner could not be found right now (softirq or timer with the socket not
    /// cached, or the process walk rate-limited): dropped, never `unkproc` — TCP retransmits, and
    /// the deferred identification caches the socket for its next packet.
    Deferred,
}

/// An event to deliver: (state, protocol, executable).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Event {
    /// Which event.
    pub kind: EventKind,
    /// The packet's protocol (never `any`).
    pub proto: u32,
    /// The executable; the path is copied from the executable table only when sending.
    pub exe: ExeId,
}

/// The outcome of [`decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    /// Accept or drop.
    pub verdict: Verdict,
    /// The event to emit, if any.
    pub event: Option<EventKind>,
    /// True when `event` is a PENDING event that must pass [`Squelch::permit`](crate::Squelch::permit)
    /// first (flag `squelch`).
    pub squelch: bool,
    /// Why.
    pub reason: Reason,
}

impl Decision {
    /// The decision for a packet whose owner could not be found right now: drop, no event (see
    /// [`Reason::Deferred`]). Never cached.
    pub const DEFERRED: Decision = Decision::plain(Verdict::Drop, Reason::Deferred);

    const fn plain(verdict: Verdict, reason: Reason) -> Decision {
        Decision {
            verdict,
            event: None,
            squelch: false,
            reason,
        }
    }

    /// The event record for this decision (needs the identified executable; `None` otherwise).
    pub fn event_record(&self, facts: &PacketFacts, ident: &Identification) -> Option<Event> {
        match (self.event, ident) {
            (Some(kind), Identity::Exe(exe)) => Some(Event {
                kind,
                proto: facts.proto,
                exe: *exe,
            }),
            _ => None,
        }
    }

    /// Whether packed bits ([`Decision::to_bits`]) ask for no event (the hit path's test, without
    /// decoding).
    #[inline(always)]
    pub const fn bits_have_no_event(bits: u8) -> bool {
        bits & 0b110 == 0
    }

    /// Whether packed bits ([`Decision::to_bits`]) ask for an event that the squelch rate-limits.
    #[inline(always)]
    pub const fn bits_squelched(bits: u8) -> bool {
        bits & 0b110 != 0 && bits & 0b1000 != 0
    }

    /// Packs into 8 bits (for caching in an atomic); [`Decision::from_bits`] inverts it.
    pub const fn to_bits(self) -> u8 {
        let v = match self.verdict {
            Verdict::Accept => 0,
            Verdict::Drop => 1,
        };
        let e = match self.event {
            None => 0,
            Some(EventKind::Pending) => 1,
            Some(EventKind::Allow) => 2,
            Some(EventKind::Block) => 3,
        };
        let r = match self.reason {
            Reason::Disabled => 0,
            Reason::BlockMode => 1,
            Reason::Malformed => 2,
            Reason::UnknownProtocol => 3,
            Reason::UnknownProcess => 4,
            Reason::PathTooLong => 5,
            Reason::Rule => 6,
            Reason::NoRule => 7,
            Reason::Deferred => 8,
            Reason::NoHostPath => 9,
        };
        v | (e << 1) | ((self.squelch as u8) << 3) | (r << 4)
    }

    /// Unpacks [`Decision::to_bits`]; `None` for bit patterns it never produces.
    pub const fn from_bits(b: u8) -> Option<Decision> {
        let verdict = if b & 1 == 0 {
            Verdict::Accept
        } else {
            Verdict::Drop
        };
        let event = match (b >> 1) & 3 {
            0 => None,
            1 => Some(EventKind::Pending),
            2 => Some(EventKind::Allow),
            _ => Some(EventKind::Block),
        };
        let reason = match b >> 4 {
            0 => Reason::Disabled,
            1 => Reason::BlockMode,
            2 => Reason::Malformed,
            3 => Reason::UnknownProtocol,
            4 => Reason::UnknownProcess,
            5 => Reason::PathTooLong,
            6 => Reason::Rule,
            7 => Reason::NoRule,
            8 => Reason::Deferred,
            9 => Reason::NoHostPath,
            _ => return None,
        };
        Some(Decision {
            verdict,
            event,
            squelch: b & 8 != 0,
            reason,
        })
    }
}

/// The part of the decision that needs no identification: `Some` for mode disabled/block and
/// malformed packets. `None` means "identify the process, look up the rule, then
/// call [`decide`]".
pub fn decide_early(flags: &FlagValues, facts: &PacketFacts) -> Option<Decision> {
    match flags.mode {
        Mode::Disabled => return Some(Decision::plain(Verdict::Accept, Reason::Disabled)),
        Mode::Block => return Some(Decision::plain(Verdict::Drop, Reason::BlockMode)),
        Mode::Enabled => {}
    }
    if facts.malformed {
        return Some(Decision::plain(Verdict::of(flags.fail), Reason::Malformed));
    }
    None
}

/// The whole decision (see the module docs for the order). `rule` is the action of the matching
/// rule, from [`RuleRing::lookup`](crate::RuleRing::lookup); it is ignored unless the process was
/// identified.
pub fn decide(
    flags: &FlagValues,
    facts: &PacketFacts,
    ident: &Identification,
    rule: Option<Action>,
) -> Decision {
    if let Some(d) = decide_early(flags, facts) {
        return d;
    }
    match ident {
        Identity::Unknown if is_common_protocol(facts.proto) => {
            Decision::plain(Verdict::of(flags.unkproc), Reason::UnknownProcess)
        }
        Identity::Unknown => Decision::plain(Verdict::of(flags.unkprot), Reason::UnknownProtocol),
        Identity::PathTooLong => Decision::plain(Verdict::of(flags.longpath), Reason::PathTooLong),
        Identity::NoHostPath => Decision::plain(Verdict::of(flags.nspath), Reason::NoHostPath),
        Identity::Exe(_) => match rule {
            Some(Action::Allow) => Decision {
                verdict: Verdict::Accept,
                event: flags.accepts.then_some(EventKind::Allow),
                squelch: false,
                reason: Reason::Rule,
            },
            Some(Action::Block) => Decision {
                verdict: Verdict::Drop,
                event: flags.drops.then_some(EventKind::Block),
                squelch: false,
                reason: Reason::Rule,
            },
            None => Decision {
                verdict: Verdict::of(flags.unkrule),
                event: flags.norule.then_some(EventKind::Pending),
                squelch: flags.norule && flags.squelch,
                reason: Reason::NoRule,
            },
        },
    }
}
