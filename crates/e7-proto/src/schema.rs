//! The schema table: the single source of every number, name and rule on the wire.
//!
//! The original E7 described its protocol once, in the x-macro file `defs.x`, and generated the C
//! enums, name tables and netlink policy from it. `e7_schema!` is the same idea as a Rust
//! `macro_rules!`: the one invocation at the bottom of this file lists
//!
//! - the family name and version,
//! - the constants (value, alias, C id name, kind),
//! - the commands (number, C id name, whether CAP_NET_ADMIN is required, which attributes a
//!   request and a reply may carry),
//! - the attributes (number, C id name, netlink type and length limit),
//! - the flags (index, alias, C id name, value class, default),
//!
//! and the macro generates the enums, their `TryFrom` conversions, alias and id-name lookups,
//! `ALL` lists, and compile-time checks that numbering is contiguous and aliases are unique. The C
//! header ([`crate::c_header`]) and the message grammar ([`crate::msg`]) are derived from these
//! generated items, never written by hand.
//!
//! Numbering is the original's; new entries are only appended (see `docs/ARCHITECTURE.md`).

use core::fmt;

/// Longest text (without the NUL) a DEST or PORTS attribute carries: an IPv6 prefix is at most 43
/// bytes, eight port ranges at most 95; 127 leaves room and keeps the attribute small.
pub const QUAL_TEXT_LEN: usize = 127;

/// Generates the schema types from one table. See the module documentation.
macro_rules! e7_schema {
    (
        family $family:literal version $version:literal max_path_len $max_path:literal;
        constants {
            $( #[doc = $cdoc:literal] $cvar:ident = $cval:literal, $calias:literal, $cid:literal, $ckind:ident; )+
        }
        commands {
            $( #[doc = $mdoc:literal] $mvar:ident = $mval:literal, $mid:literal, admin: $madmin:literal,
               request: $mreq:expr, reply: $mrep:expr; )+
        }
        attributes {
            $( #[doc = $adoc:literal] $avar:ident = $aval:literal, $aid:literal, $akind:expr; )+
        }
        flags {
            $( #[doc = $fdoc:literal] $fvar:ident = $fidx:literal, $falias:literal, $fid:literal,
               $fclass:ident, default: $fdef:expr, decides: $fdec:literal, param: $fparam:literal; )+
        }
    ) => {
        /// Generic-netlink family name (`genl_ctrl_resolve` key).
        pub const FAMILY_NAME: &str = $family;
        /// Generic-netlink family version.
        pub const FAMILY_VERSION: u8 = $version;
        /// Longest path (in bytes, without the terminating NUL) a PATH attribute may carry.
        pub const MAX_PATH_LEN: usize = $max_path;

        /// A named wire constant (protocol numbers, rule states, flag values).
        ///
        /// The discriminant is the wire value.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum Const {
            $( #[doc = $cdoc] $cvar = $cval, )+
        }

        impl Const {
            /// Every constant, in table order.
            pub const ALL: &'static [Const] = &[ $( Const::$cvar, )+ ];

            /// The wire value.
            pub const fn value(self) -> u32 {
                self as u32
            }

            /// The word users type for this constant (`allow`, `tcp`, ...).
            pub const fn alias(self) -> &'static str {
                match self { $( Const::$cvar => $calias, )+ }
            }

            /// The C identifier (`E7C_ALLOW`, ...).
            pub const fn id_name(self) -> &'static str {
                match self { $( Const::$cvar => $cid, )+ }
            }

            /// Whether this constant names an IP protocol or is a state/switch word.
            pub const fn kind(self) -> ConstKind {
                match self { $( Const::$cvar => ConstKind::$ckind, )+ }
            }

            /// One-line description.
            pub const fn description(self) -> &'static str {
                match self { $( Const::$cvar => $cdoc.trim_ascii(), )+ }
            }

            /// The constant whose alias is exactly `alias` (case-sensitive, no hashing).
            pub fn from_alias(alias: &str) -> Option<Const> {
                match alias { $( $calias => Some(Const::$cvar), )+ _ => None }
            }

            /// The constant with wire value `value`.
            pub const fn from_value(value: u32) -> Option<Const> {
                match value { $( $cval => Some(Const::$cvar), )+ _ => None }
            }
        }

        /// A generic-netlink command (`genlmsghdr.cmd`).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Command {
            $( #[doc = $mdoc] $mvar = $mval, )+
        }

        impl Command {
            /// Every command, in numeric order.
            pub const ALL: &'static [Command] = &[ $( Command::$mvar, )+ ];
            /// The highest command number (`E7_CMD_MAX`).
            pub const MAX: u8 = Command::ALL[Command::ALL.len() - 1] as u8;

            /// The wire value.
            pub const fn value(self) -> u8 {
                self as u8
            }

            /// Whether the command changes state and therefore needs CAP_NET_ADMIN
            /// (`GENL_ADMIN_PERM`).
            pub const fn admin(self) -> bool {
                match self { $( Command::$mvar => $madmin, )+ }
            }

            /// The C identifier (`ENL_COMM_BLOCK`, ...).
            pub const fn id_name(self) -> &'static str {
                match self { $( Command::$mvar => $mid, )+ }
            }

            /// One-line description.
            pub const fn description(self) -> &'static str {
                match self { $( Command::$mvar => $mdoc.trim_ascii(), )+ }
            }

            /// Attributes a user->kernel message with this command may carry, or `None` if user
            /// space never sends this command.
            pub const fn request_attrs(self) -> Option<&'static [Attr]> {
                match self { $( Command::$mvar => $mreq, )+ }
            }

            /// Attributes a kernel->user message with this command may carry, or `None` if the
            /// kernel never sends this command.
            pub const fn reply_attrs(self) -> Option<&'static [Attr]> {
                match self { $( Command::$mvar => $mrep, )+ }
            }

            /// The command with wire value `value`.
            pub const fn from_value(value: u8) -> Option<Command> {
                match value { $( $mval => Some(Command::$mvar), )+ _ => None }
            }
        }

        /// A netlink attribute type (`nlattr.nla_type` without the flag bits).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u16)]
        pub enum Attr {
            $( #[doc = $adoc] $avar = $aval, )+
        }

        impl Attr {
            /// Every attribute, in numeric order.
            pub const ALL: &'static [Attr] = &[ $( Attr::$avar, )+ ];
            /// The highest attribute number (`E7_ATTR_MAX`).
            pub const MAX: u16 = Attr::ALL[Attr::ALL.len() - 1] as u16;

            /// The wire value.
            pub const fn value(self) -> u16 {
                self as u16
            }

            /// The payload type and its length limit (the netlink policy).
            pub const fn kind(self) -> AttrKind {
                match self { $( Attr::$avar => $akind, )+ }
            }

            /// The C identifier (`ENL_ATTR_PATH`, ...).
            pub const fn id_name(self) -> &'static str {
                match self { $( Attr::$avar => $aid, )+ }
            }

            /// The short name used in messages (`PATH`, ...): the id name without `ENL_ATTR_`.
            pub fn short_name(self) -> &'static str {
                let id = self.id_name();
                id.strip_prefix("ENL_ATTR_").unwrap_or(id)
            }

            /// One-line description.
            pub const fn description(self) -> &'static str {
                match self { $( Attr::$avar => $adoc.trim_ascii(), )+ }
            }

            /// The attribute with wire value `value` (flag bits must already be masked off).
            pub const fn from_value(value: u16) -> Option<Attr> {
                match value { $( $aval => Some(Attr::$avar), )+ _ => None }
            }
        }

        /// A runtime flag, addressed on the wire by its 0-based index (the FLAG attribute).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u32)]
        pub enum Flag {
            $( #[doc = $fdoc] $fvar = $fidx, )+
        }

        impl Flag {
            /// Every flag, in index order.
            pub const ALL: &'static [Flag] = &[ $( Flag::$fvar, )+ ];
            /// Number of flags (`E7_FLAG_COUNT`).
            pub const COUNT: usize = Flag::ALL.len();

            /// The wire index.
            pub const fn index(self) -> u32 {
                self as u32
            }

            /// The word users type for this flag (`mode`, `unkrule`, ...).
            pub const fn alias(self) -> &'static str {
                match self { $( Flag::$fvar => $falias, )+ }
            }

            /// The C identifier (`E7F_MODE`, ...).
            pub const fn id_name(self) -> &'static str {
                match self { $( Flag::$fvar => $fid, )+ }
            }

            /// Which values the flag accepts.
            pub const fn class(self) -> ValueClass {
                match self { $( Flag::$fvar => ValueClass::$fclass, )+ }
            }

            /// The value at module load.
            pub const fn default_value(self) -> u32 {
                match self { $( Flag::$fvar => $fdef, )+ }
            }

            /// One-line description.
            pub const fn description(self) -> &'static str {
                match self { $( Flag::$fvar => $fdoc.trim_ascii(), )+ }
            }

            /// Whether the flag's value changes the verdict or the events of some packet (a
            /// change then invalidates every cached verdict). `debug`, `rchngq` and the
            /// statistics do not.
            pub const fn affects_decisions(self) -> bool {
                match self { $( Flag::$fvar => $fdec, )+ }
            }

            /// The kernel module parameter's description (`MODULE_PARM_DESC`, `modinfo`), for
            /// the flags that are load-time parameters: every settable flag. `None` for the
            /// read-only statistics.
            pub const fn param_description(self) -> Option<&'static str> {
                match self { $( Flag::$fvar => if $fparam.is_empty() { None } else { Some($fparam) }, )+ }
            }

            /// The flag whose alias is exactly `alias` (case-sensitive, no hashing).
            pub fn from_alias(alias: &str) -> Option<Flag> {
                match alias { $( $falias => Some(Flag::$fvar), )+ _ => None }
            }

            /// The flag with wire index `index`.
            pub const fn from_index(index: u32) -> Option<Flag> {
                match index { $( $fidx => Some(Flag::$fvar), )+ _ => None }
            }
        }
    };
}

/// The highest IP protocol number (the protocol field of IPv4, the next header of IPv6, is 8 bits).
pub const MAX_IP_PROTOCOL: u32 = 255;

/// Is this constant an IP protocol (usable as PROT) or a state/switch word?
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConstKind {
    /// An IP protocol number (0..=255), or the `any` wildcard. The constants of this kind are the
    /// one table of protocol names users may type (`tcp`, `sctp`, `gre`, ...).
    Protocol,
    /// A rule state, event state or flag value (`allow`, `enabled`, ...).
    Word,
}

/// The payload type of an attribute, with its length limit. This is the netlink policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AttrKind {
    /// Nested attributes (`NLA_NESTED`, sent with `NLA_F_NESTED`).
    Nested,
    /// A NUL-terminated byte string of at most `max_len` bytes before the NUL (`NLA_NUL_STRING`).
    NulString {
        /// Maximum length in bytes, not counting the NUL.
        max_len: usize,
    },
    /// A 32-bit unsigned integer in host byte order, exactly 4 bytes (`NLA_U32`).
    U32,
    /// A 64-bit unsigned integer in host byte order, exactly 8 bytes (`NLA_U64`; kernel→user only,
    /// unpadded: readers copy it, never cast it in place).
    U64,
}

/// Which values a flag accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueClass {
    /// `enabled`, `disabled` or `block` (the `mode` flag).
    Mode,
    /// `allow` or `block`: a verdict.
    Action,
    /// `enabled` or `disabled`.
    Boolean,
    /// A statistic maintained by the kernel; writes are refused.
    ReadOnly,
}

e7_schema! {
    family "eftirlit" version 1 max_path_len 255;

    constants {
        /// IPPROTO_ICMP.
        Icmp = 1, "icmp", "E7C_IP_ICMP", Protocol;
        /// IPPROTO_TCP.
        Tcp = 6, "tcp", "E7C_IP_TCP", Protocol;
        /// IPPROTO_UDP.
        Udp = 17, "udp", "E7C_IP_UDP", Protocol;
        /// Wildcard protocol: a rule with it matches packets of every IP protocol.
        Any = 0xFFFF_FFFF, "any", "E7C_IP_ANY", Protocol;
        /// Drop: a rule state, an action-flag value and a mode.
        Block = 0xFF00, "block", "E7C_BLOCK", Word;
        /// Accept: a rule state and an action-flag value.
        Allow = 0xFF01, "allow", "E7C_ALLOW", Word;
        /// Event state of a packet that matched no rule.
        Pending = 0xFF02, "pending", "E7C_PENDING", Word;
        /// Boolean on; the filtering mode.
        Enabled = 0xFF03, "enabled", "E7C_ENABLED", Word;
        /// Boolean off; the pass-everything mode.
        Disabled = 0xFF04, "disabled", "E7C_DISABLED", Word;
        /// IPPROTO_ICMPV6 (appended).
        Icmpv6 = 58, "icmpv6", "E7C_IP_ICMPV6", Protocol;
        /// IPPROTO_IGMP (appended).
        Igmp = 2, "igmp", "E7C_IP_IGMP", Protocol;
        /// IPPROTO_IPIP: IPv4 in IPv4 (appended).
        Ipip = 4, "ipip", "E7C_IP_IPIP", Protocol;
        /// IPPROTO_DCCP (appended).
        Dccp = 33, "dccp", "E7C_IP_DCCP", Protocol;
        /// IPPROTO_IPV6: IPv6 in IPv4, 6in4 (appended).
        Ipv6 = 41, "ipv6", "E7C_IP_IPV6", Protocol;
        /// IPPROTO_RSVP (appended).
        Rsvp = 46, "rsvp", "E7C_IP_RSVP", Protocol;
        /// IPPROTO_GRE (appended).
        Gre = 47, "gre", "E7C_IP_GRE", Protocol;
        /// IPPROTO_ESP: IPsec payload (appended).
        Esp = 50, "esp", "E7C_IP_ESP", Protocol;
        /// IPPROTO_AH: IPsec authentication header (appended).
        Ah = 51, "ah", "E7C_IP_AH", Protocol;
        /// IPPROTO_OSPF (appended).
        Ospf = 89, "ospf", "E7C_IP_OSPF", Protocol;
        /// IPPROTO_PIM (appended).
        Pim = 103, "pim", "E7C_IP_PIM", Protocol;
        /// IPPROTO_VRRP (appended).
        Vrrp = 112, "vrrp", "E7C_IP_VRRP", Protocol;
        /// IPPROTO_L2TP: L2TPv3 over IP (appended).
        L2tp = 115, "l2tp", "E7C_IP_L2TP", Protocol;
        /// IPPROTO_SCTP (appended).
        Sctp = 132, "sctp", "E7C_IP_SCTP", Protocol;
        /// IPPROTO_UDPLITE (appended).
        Udplite = 136, "udplite", "E7C_IP_UDPLITE", Protocol;
        /// IPPROTO_MPLS: MPLS in IP (appended).
        Mpls = 137, "mpls", "E7C_IP_MPLS", Protocol;
        /// IPPROTO_ETHERNET: Ethernet in IP (appended).
        Ethernet = 143, "ethernet", "E7C_IP_ETHERNET", Protocol;
    }

    commands {
        /// Error notice (kernel->user); a request for one is answered with one.
        Error = 1, "ENL_COMM_ERROR", admin: false,
            request: Some(&[]), reply: Some(&[Attr::Errno, Attr::Message]);
        /// The module is unloading (kernel->user), or the subscriber leaves (user->kernel).
        Disconnect = 2, "ENL_COMM_DISCONNECT", admin: false,
            request: Some(&[]), reply: Some(&[]);
        /// Add a block rule, or with no attributes set mode = block.
        Block = 3, "ENL_COMM_BLOCK", admin: true,
            request: Some(&[Attr::Prot, Attr::Path, Attr::Dest, Attr::Ports, Attr::Uid]), reply: None;
        /// Add an allow rule, or with no attributes set mode = disabled.
        Allow = 4, "ENL_COMM_ALLOW", admin: true,
            request: Some(&[Attr::Prot, Attr::Path, Attr::Dest, Attr::Ports, Attr::Uid]), reply: None;
        /// Set mode = enabled.
        Enable = 5, "ENL_COMM_ENABLE", admin: true,
            request: Some(&[]), reply: None;
        /// Remove all rules, the rules of one state, or one rule.
        Clear = 6, "ENL_COMM_CLEAR", admin: true,
            request: Some(&[Attr::State, Attr::Prot, Attr::Path, Attr::Dest, Attr::Ports, Attr::Uid]), reply: None;
        /// Request (user->kernel) or report (kernel->user) the mode and every rule.
        Query = 7, "ENL_COMM_QUERY", admin: false,
            request: Some(&[]), reply: Some(&[Attr::State, Attr::Nested, Attr::Count]);
        /// A packet notification (kernel->user only).
        Event = 8, "ENL_COMM_EVENT", admin: false,
            request: None, reply: Some(&[Attr::State, Attr::Prot, Attr::Path, Attr::Dest, Attr::Dport, Attr::Uid]);
        /// Set a flag.
        Set = 9, "ENL_COMM_SET", admin: true,
            request: Some(&[Attr::Flag, Attr::Value]), reply: None;
        /// Read a flag (request) or report its value (reply).
        Get = 10, "ENL_COMM_GET", admin: false,
            request: Some(&[Attr::Flag]), reply: Some(&[Attr::Flag, Attr::Value]);
        /// Become the event subscriber (appended).
        Subscribe = 11, "ENL_COMM_SUBSCRIBE", admin: true,
            request: Some(&[]), reply: None;
        /// Per-program statistics, one NESTED entry per program (a dump; appended). Not GENL_ADMIN_PERM: the module refuses it (EPERM) to a client without CAP_NET_ADMIN unless the `statsunpriv` flag is enabled.
        Stats = 12, "ENL_COMM_STATS", admin: false,
            request: Some(&[]), reply: Some(&[Attr::Nested]);
    }

    attributes {
        /// Nested attributes: one rule in a QUERY reply.
        Nested = 1, "ENL_ATTR_NESTED", AttrKind::Nested;
        /// Executable path of a rule or event.
        Path = 2, "ENL_ATTR_PATH", AttrKind::NulString { max_len: MAX_PATH_LEN };
        /// Flag index.
        Flag = 3, "ENL_ATTR_FLAG", AttrKind::U32;
        /// IP protocol number, or `any`.
        Prot = 4, "ENL_ATTR_PROT", AttrKind::U32;
        /// A state constant: mode, rule state, event state.
        State = 5, "ENL_ATTR_STATE", AttrKind::U32;
        /// Flag value.
        Value = 6, "ENL_ATTR_VALUE", AttrKind::U32;
        /// Positive errno of an ERROR message (appended).
        Errno = 7, "ENL_ATTR_ERRNO", AttrKind::U32;
        /// Human-readable text of an ERROR message (appended).
        Message = 8, "ENL_ATTR_MESSAGE", AttrKind::NulString { max_len: MAX_PATH_LEN };
        /// Total number of rules in a QUERY reply (appended).
        Count = 9, "ENL_ATTR_COUNT", AttrKind::U32;
        /// A rule's destination qualifier in the CLI's text form (`10.0.0.0/8`, `lan`), parsed by `qual::Dest::parse` (appended; in BLOCK/ALLOW/CLEAR requests and QUERY rule nests; a client sends it only to a module announcing the `qualifiers` flag's FEATURE_DEST bit).
        Dest = 10, "ENL_ATTR_DEST", AttrKind::NulString { max_len: QUAL_TEXT_LEN };
        /// A rule's port qualifier in the CLI's text form (`80,443`, `1024-65535`), parsed by `qual::Ports::parse` (appended; FEATURE_PORTS).
        Ports = 11, "ENL_ATTR_PORTS", AttrKind::NulString { max_len: QUAL_TEXT_LEN };
        /// A rule's user qualifier: the uid a packet's socket must belong to (appended; FEATURE_USER).
        Uid = 12, "ENL_ATTR_UID", AttrKind::U32;
        /// An event's destination port (tcp, udp, udplite, sctp; appended). The event's destination address is a DEST (its text form, e.g. `93.184.216.34`) and the socket's uid a UID.
        Dport = 13, "ENL_ATTR_DPORT", AttrKind::U32;
        /// Packets of a program that were accepted, in a STATS entry (appended).
        AcceptPackets = 14, "ENL_ATTR_ACCEPT_PACKETS", AttrKind::U64;
        /// Bytes (IP packet length) of a program that were accepted, in a STATS entry (appended).
        AcceptBytes = 15, "ENL_ATTR_ACCEPT_BYTES", AttrKind::U64;
        /// Packets of a program that were dropped, in a STATS entry (appended).
        DropPackets = 16, "ENL_ATTR_DROP_PACKETS", AttrKind::U64;
        /// Bytes of a program that were dropped, in a STATS entry (appended).
        DropBytes = 17, "ENL_ATTR_DROP_BYTES", AttrKind::U64;
        /// Seconds from a program's first counted packet to this STATS reply (monotonic clock), in a STATS entry (appended).
        FirstSeen = 18, "ENL_ATTR_FIRST_SEEN", AttrKind::U32;
        /// Seconds from a program's latest packet to this STATS reply (monotonic clock), in a STATS entry (appended).
        LastSeen = 19, "ENL_ATTR_LAST_SEEN", AttrKind::U32;
        /// Why a program's latest packet got its verdict (`rule`, `norule`, ...: `stats::Reason`), in a STATS entry (appended).
        Reason = 20, "ENL_ATTR_REASON", AttrKind::NulString { max_len: 15 };
    }

    flags {
        /// Firewall mode: enabled filters, disabled passes everything, block drops everything.
        Mode = 0, "mode", "E7F_MODE", Mode, default: Const::Disabled.value(),
            decides: true, param: "the firewall mode at load";
        /// Rate-limited decision logging.
        Debug = 1, "debug", "E7F_DEBUG", Boolean, default: Const::Disabled.value(),
            decides: false, param: "rate-limited decision logging";
        /// Verdict when the packet cannot be inspected at all.
        Fail = 2, "fail", "E7F_FAILPATH_ACTION", Action, default: Const::Allow.value(),
            decides: true, param: "verdict for packets that cannot be inspected (malformed)";
        /// Verdict when the sending process cannot be identified.
        UnkProc = 3, "unkproc", "E7F_UNKN_PROCESS_ACTION", Action, default: Const::Allow.value(),
            decides: true, param: "verdict when no owning process is found (tcp, udp, icmp, icmpv6)";
        /// Verdict for packets no program owns whose protocol is not tcp, udp, icmp or icmpv6.
        UnkProt = 4, "unkprot", "E7F_UNKN_PROTOCOL_ACTION", Action, default: Const::Allow.value(),
            decides: true, param: "verdict when no owning process is found, other protocols (igmp, tunnels, ...)";
        /// Send a pending event for packets that match no rule.
        NoRule = 5, "norule", "E7F_NORULE_NOTIFY", Boolean, default: Const::Enabled.value(),
            decides: true, param: "send a pending event for packets matching no rule";
        /// Rate-limit pending events per (protocol, program).
        Squelch = 6, "squelch", "E7F_NORULE_SQUELCH", Boolean, default: Const::Enabled.value(),
            decides: true, param: "rate-limit pending events to one per program and protocol per second";
        /// Verdict for identified packets that match no rule.
        UnkRule = 7, "unkrule", "E7F_NORULE_ACTION", Action, default: Const::Allow.value(),
            decides: true, param: "verdict for identified programs without a rule";
        /// Send a block event for every packet a rule drops.
        Drops = 8, "drops", "E7F_RULE_DROPS", Boolean, default: Const::Disabled.value(),
            decides: true, param: "send an event for every packet dropped by a rule";
        /// Send an allow event for every packet a rule accepts.
        Accepts = 9, "accepts", "E7F_RULE_ACCEPTS", Boolean, default: Const::Disabled.value(),
            decides: true, param: "send an event for every packet accepted by a rule";
        /// Send a QUERY reply after every rule or mode change.
        RChngQ = 10, "rchngq", "E7F_RULE_CHANGE_QUERY", Boolean, default: Const::Enabled.value(),
            decides: false, param: "push a QUERY to the sender after a rule or mode change";
        /// Seconds since the module was loaded.
        Uptime = 11, "uptime", "E7F_STAT_UPTIME", ReadOnly, default: 0,
            decides: false, param: "";
        /// Packets decided while mode was not disabled.
        QPackets = 12, "qpackets", "E7F_STAT_PACKETS", ReadOnly, default: 0,
            decides: false, param: "";
        /// Verdict for a process whose executable path exceeds 255 bytes (appended).
        LongPath = 13, "longpath", "E7F_LONGPATH_ACTION", Action, default: Const::Block.value(),
            decides: true, param: "verdict for programs whose path exceeds 255 bytes";
        /// Events dropped because the bounded event queue was full (appended).
        EvLost = 14, "evlost", "E7F_STAT_EVLOST", ReadOnly, default: 0,
            decides: false, param: "";
        /// Verdict for a program whose executable has no verified path in the initial mount namespace and root (appended).
        NsPath = 15, "nspath", "E7F_NSPATH_ACTION", Action, default: Const::Block.value(),
            decides: true, param: "verdict for programs without a verified path in the initial mount namespace and root";
        /// Rule qualifiers the module enforces, a bit set: 1 destinations, 2 ports, 4 users (7 since issue 11; 0: a module that enforces none, which the CLI never sends a qualified rule) (appended).
        Qualifiers = 16, "qualifiers", "E7F_QUALIFIERS", ReadOnly, default: 0,
            decides: false, param: "";
        /// Let users without CAP_NET_ADMIN read the per-program statistics (STATS); they reveal every program's network use (appended).
        StatsUnpriv = 17, "statsunpriv", "E7F_STATS_UNPRIV", Boolean, default: Const::Disabled.value(),
            decides: false, param: "let unprivileged users read per-program statistics (e7 stats, e7 top)";
    }
}

// ---- compile-time checks on the table -------------------------------------------------------

const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

const _: () = {
    // Commands are numbered 1..=MAX without gaps (0 is the reserved UNSUPP).
    let mut i = 0;
    while i < Command::ALL.len() {
        assert!(
            Command::ALL[i] as usize == i + 1,
            "commands must be numbered 1, 2, 3, ..."
        );
        i += 1;
    }
    // Attributes likewise.
    let mut i = 0;
    while i < Attr::ALL.len() {
        assert!(
            Attr::ALL[i] as usize == i + 1,
            "attributes must be numbered 1, 2, 3, ..."
        );
        i += 1;
    }
    // Flags are indexed 0..COUNT without gaps; defaults are valid for their class.
    let mut i = 0;
    while i < Flag::ALL.len() {
        let f = Flag::ALL[i];
        assert!(f as usize == i, "flags must be indexed 0, 1, 2, ...");
        assert!(f.class().accepts(f.default_value()) || matches!(f.class(), ValueClass::ReadOnly));
        // Every settable flag is a module parameter (with a description); statistics are not,
        // and never affect decisions.
        let read_only = matches!(f.class(), ValueClass::ReadOnly);
        assert!(
            f.param_description().is_some() != read_only,
            "settable flags need `param: \"description\"`, read-only ones `param: \"\"`"
        );
        assert!(
            !(read_only && f.affects_decisions()),
            "a statistic cannot affect decisions"
        );
        i += 1;
    }
    // Protocol constants name IP protocol numbers (0..=255), except the `any` wildcard.
    let mut i = 0;
    while i < Const::ALL.len() {
        let c = Const::ALL[i];
        assert!(
            !matches!(c.kind(), ConstKind::Protocol)
                || c.value() <= MAX_IP_PROTOCOL
                || c.value() == Const::Any.value(),
            "a protocol constant must be an IP protocol number 0..=255 or `any`"
        );
        i += 1;
    }
    // Aliases are unique within constants and within flags.
    let mut i = 0;
    while i < Const::ALL.len() {
        let mut j = i + 1;
        while j < Const::ALL.len() {
            assert!(
                !str_eq(Const::ALL[i].alias(), Const::ALL[j].alias()),
                "duplicate constant alias"
            );
            j += 1;
        }
        i += 1;
    }
    let mut i = 0;
    while i < Flag::ALL.len() {
        let mut j = i + 1;
        while j < Flag::ALL.len() {
            assert!(
                !str_eq(Flag::ALL[i].alias(), Flag::ALL[j].alias()),
                "duplicate flag alias"
            );
            j += 1;
        }
        i += 1;
    }
};

// ---- value classes ---------------------------------------------------------------------------

impl ValueClass {
    /// Every class, in the order of the C header's `enum e7_value_class`.
    pub const ALL: &'static [ValueClass] = &[
        ValueClass::Mode,
        ValueClass::Action,
        ValueClass::Boolean,
        ValueClass::ReadOnly,
    ];

    /// The constants this class accepts (empty for [`ValueClass::ReadOnly`]).
    pub const fn allowed(self) -> &'static [Const] {
        match self {
            ValueClass::Mode => &[Const::Enabled, Const::Disabled, Const::Block],
            ValueClass::Action => &[Const::Allow, Const::Block],
            ValueClass::Boolean => &[Const::Enabled, Const::Disabled],
            ValueClass::ReadOnly => &[],
        }
    }

    /// Whether `value` may be written to a flag of this class.
    pub const fn accepts(self, value: u32) -> bool {
        let allowed = self.allowed();
        let mut i = 0;
        while i < allowed.len() {
            if allowed[i] as u32 == value {
                return true;
            }
            i += 1;
        }
        false
    }

    /// Lower-case name (`mode`, `action`, `boolean`, `read-only`).
    pub const fn name(self) -> &'static str {
        match self {
            ValueClass::Mode => "mode",
            ValueClass::Action => "action",
            ValueClass::Boolean => "boolean",
            ValueClass::ReadOnly => "read-only",
        }
    }
}

// ---- typed views of constants -----------------------------------------------------------------

/// A rule verdict: the STATE of a rule, the value of an action flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Action {
    /// Accept the packet.
    Allow,
    /// Drop the packet.
    Block,
}

impl Action {
    /// The wire constant.
    pub const fn to_const(self) -> Const {
        match self {
            Action::Allow => Const::Allow,
            Action::Block => Const::Block,
        }
    }
    /// The wire value.
    pub const fn value(self) -> u32 {
        self.to_const().value()
    }
    /// `allow` or `block`.
    pub const fn alias(self) -> &'static str {
        self.to_const().alias()
    }
    /// The action whose wire value is `value`. (Compared with the two values directly rather than
    /// through [`Const::from_value`], whose match over every constant is not inlined: the flags
    /// snapshot of every packet decision calls this once per action flag.)
    pub const fn from_value(value: u32) -> Option<Action> {
        if value == Const::Allow.value() {
            Some(Action::Allow)
        } else if value == Const::Block.value() {
            Some(Action::Block)
        } else {
            None
        }
    }
    /// The action named exactly `alias`.
    pub fn from_alias(alias: &str) -> Option<Action> {
        Const::from_alias(alias).and_then(|c| Action::from_value(c.value()))
    }
}

/// The firewall mode (value of the `mode` flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Identify the program and apply rules.
    Enabled,
    /// Accept everything without looking.
    Disabled,
    /// Drop everything.
    Block,
}

impl Mode {
    /// The wire constant.
    pub const fn to_const(self) -> Const {
        match self {
            Mode::Enabled => Const::Enabled,
            Mode::Disabled => Const::Disabled,
            Mode::Block => Const::Block,
        }
    }
    /// The wire value.
    pub const fn value(self) -> u32 {
        self.to_const().value()
    }
    /// `enabled`, `disabled` or `block`.
    pub const fn alias(self) -> &'static str {
        self.to_const().alias()
    }
    /// The mode whose wire value is `value` (direct comparisons, as [`Action::from_value`]).
    pub const fn from_value(value: u32) -> Option<Mode> {
        if value == Const::Enabled.value() {
            Some(Mode::Enabled)
        } else if value == Const::Disabled.value() {
            Some(Mode::Disabled)
        } else if value == Const::Block.value() {
            Some(Mode::Block)
        } else {
            None
        }
    }
}

/// The STATE of an EVENT: why the kernel reports a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventState {
    /// The packet matched no rule (`norule`).
    Pending,
    /// An allow rule accepted it (`accepts`).
    Allow,
    /// A block rule dropped it (`drops`).
    Block,
}

impl EventState {
    /// The wire constant.
    pub const fn to_const(self) -> Const {
        match self {
            EventState::Pending => Const::Pending,
            EventState::Allow => Const::Allow,
            EventState::Block => Const::Block,
        }
    }
    /// The wire value.
    pub const fn value(self) -> u32 {
        self.to_const().value()
    }
    /// `pending`, `allow` or `block`.
    pub const fn alias(self) -> &'static str {
        self.to_const().alias()
    }
    /// The event state whose wire value is `value`.
    pub const fn from_value(value: u32) -> Option<EventState> {
        match Const::from_value(value) {
            Some(Const::Pending) => Some(EventState::Pending),
            Some(Const::Allow) => Some(EventState::Allow),
            Some(Const::Block) => Some(EventState::Block),
            _ => None,
        }
    }
}

// ---- TryFrom and Display ----------------------------------------------------------------------

/// Which table an unknown number was looked up in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Table {
    /// [`Const`].
    Const,
    /// [`Command`].
    Command,
    /// [`Attr`].
    Attr,
    /// [`Flag`].
    Flag,
}

/// A number that names no entry of a schema table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct UnknownValue {
    /// The table that was searched.
    pub table: Table,
    /// The number that was not found.
    pub value: u32,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.table {
            Table::Const => {
                write!(f, "{} is not an e7 constant: expected one of ", self.value)?;
                let mut first = true;
                for c in Const::ALL {
                    if !first {
                        f.write_str(", ")?;
                    }
                    first = false;
                    write!(f, "{} ({})", c.alias(), c.value())?;
                }
                Ok(())
            }
            Table::Command => write!(
                f,
                "unknown command {}: expected 1..={} (ENL_COMM_ERROR..{})",
                self.value,
                Command::MAX,
                Command::ALL[Command::ALL.len() - 1].id_name()
            ),
            Table::Attr => write!(
                f,
                "unknown attribute type {}: expected 1..={} (ENL_ATTR_NESTED..{})",
                self.value,
                Attr::MAX,
                Attr::ALL[Attr::ALL.len() - 1].id_name()
            ),
            Table::Flag => {
                write!(
                    f,
                    "flag index {} does not exist: expected 0..={} (",
                    self.value,
                    Flag::COUNT - 1
                )?;
                let mut first = true;
                for fl in Flag::ALL {
                    if !first {
                        f.write_str(", ")?;
                    }
                    first = false;
                    f.write_str(fl.alias())?;
                }
                f.write_str(")")
            }
        }
    }
}

impl core::error::Error for UnknownValue {}

impl TryFrom<u32> for Const {
    type Error = UnknownValue;
    fn try_from(value: u32) -> Result<Self, UnknownValue> {
        Const::from_value(value).ok_or(UnknownValue {
            table: Table::Const,
            value,
        })
    }
}

impl TryFrom<u8> for Command {
    type Error = UnknownValue;
    fn try_from(value: u8) -> Result<Self, UnknownValue> {
        Command::from_value(value).ok_or(UnknownValue {
            table: Table::Command,
            value: value.into(),
        })
    }
}

impl TryFrom<u16> for Attr {
    type Error = UnknownValue;
    fn try_from(value: u16) -> Result<Self, UnknownValue> {
        Attr::from_value(value).ok_or(UnknownValue {
            table: Table::Attr,
            value: value.into(),
        })
    }
}

impl TryFrom<u32> for Flag {
    type Error = UnknownValue;
    fn try_from(value: u32) -> Result<Self, UnknownValue> {
        Flag::from_index(value).ok_or(UnknownValue {
            table: Table::Flag,
            value,
        })
    }
}

impl fmt::Display for Const {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alias())
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id_name())
    }
}

impl fmt::Display for Attr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.short_name())
    }
}

impl fmt::Display for Flag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alias())
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alias())
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alias())
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alias())
    }
}
