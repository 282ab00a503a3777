//! The few schema names e7-core needs from e7-proto, in one place.
//!
//! Why this module exists: e7-proto is the single source of truth for the wire schema (flags, their
//! classes and defaults, constants, value and rule validation). Every other module of e7-core imports
//! these names from here and nowhere else, so the coupling between the two crates is this one file.
//! The types are re-exported unchanged, so `e7_core::Flag` *is* `e7_proto::Flag` and the kernel module
//! can mix both crates freely.

pub use e7_proto::{
    validate_rule_path, validate_rule_protocol, Action, Const, Flag, Mode, PathError,
    ProtocolError, ValueClass, ValueError, MAX_PATH_LEN,
};

/// Protocol number of ICMP.
pub const PROTO_ICMP: u32 = Const::Icmp.value();
/// Protocol number of TCP.
pub const PROTO_TCP: u32 = Const::Tcp.value();
/// Protocol number of UDP.
pub const PROTO_UDP: u32 = Const::Udp.value();
/// Protocol number of ICMPv6.
pub const PROTO_ICMPV6: u32 = Const::Icmpv6.value();
/// The `any` protocol wildcard of rules.
pub const PROTO_ANY: u32 = Const::Any.value();

/// True for the protocols whose packets the kernel itself commonly sends without a program
/// (tcp resets, icmp and icmpv6 errors and replies, udp from kernel sockets): a packet that no
/// program owns gets the `unkproc` action when its protocol is one of these, and the `unkprot`
/// action otherwise (igmp reports, tunnel encapsulations of forwarded traffic, ...). Packets a
/// program's socket sends are identified whatever their protocol.
pub const fn is_common_protocol(p: u32) -> bool {
    p == PROTO_TCP || p == PROTO_UDP || p == PROTO_ICMP || p == PROTO_ICMPV6
}
