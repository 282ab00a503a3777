/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * e7_proto.h: the eftirlit generic-netlink schema for the e7 kernel shim.
 *
 * GENERATED from the schema table in crates/e7-proto/src/schema.rs. Do not edit.
 * Regenerate: cargo run -q -p e7-proto --example gen_header > crates/e7-kmod/e7_proto.h
 */
#ifndef E7_PROTO_H
#define E7_PROTO_H

#define E7_FAMILY_NAME "eftirlit"
#define E7_FAMILY_VERSION 1
/* longest PATH/MESSAGE string in bytes, not counting the NUL */
#define E7_MAX_PATH_LEN 255

/* constants (u32 wire values) */
#define E7C_IP_ICMP 0x00000001u /* icmp: IPPROTO_ICMP. */
#define E7C_IP_TCP 0x00000006u /* tcp: IPPROTO_TCP. */
#define E7C_IP_UDP 0x00000011u /* udp: IPPROTO_UDP. */
#define E7C_IP_ANY 0xFFFFFFFFu /* any: Wildcard protocol: a rule with it matches packets of every IP protocol. */
#define E7C_BLOCK 0x0000FF00u /* block: Drop: a rule state, an action-flag value and a mode. */
#define E7C_ALLOW 0x0000FF01u /* allow: Accept: a rule state and an action-flag value. */
#define E7C_PENDING 0x0000FF02u /* pending: Event state of a packet that matched no rule. */
#define E7C_ENABLED 0x0000FF03u /* enabled: Boolean on; the filtering mode. */
#define E7C_DISABLED 0x0000FF04u /* disabled: Boolean off; the pass-everything mode. */
#define E7C_IP_ICMPV6 0x0000003Au /* icmpv6: IPPROTO_ICMPV6 (appended). */
#define E7C_IP_IGMP 0x00000002u /* igmp: IPPROTO_IGMP (appended). */
#define E7C_IP_IPIP 0x00000004u /* ipip: IPPROTO_IPIP: IPv4 in IPv4 (appended). */
#define E7C_IP_DCCP 0x00000021u /* dccp: IPPROTO_DCCP (appended). */
#define E7C_IP_IPV6 0x00000029u /* ipv6: IPPROTO_IPV6: IPv6 in IPv4, 6in4 (appended). */
#define E7C_IP_RSVP 0x0000002Eu /* rsvp: IPPROTO_RSVP (appended). */
#define E7C_IP_GRE 0x0000002Fu /* gre: IPPROTO_GRE (appended). */
#define E7C_IP_ESP 0x00000032u /* esp: IPPROTO_ESP: IPsec payload (appended). */
#define E7C_IP_AH 0x00000033u /* ah: IPPROTO_AH: IPsec authentication header (appended). */
#define E7C_IP_OSPF 0x00000059u /* ospf: IPPROTO_OSPF (appended). */
#define E7C_IP_PIM 0x00000067u /* pim: IPPROTO_PIM (appended). */
#define E7C_IP_VRRP 0x00000070u /* vrrp: IPPROTO_VRRP (appended). */
#define E7C_IP_L2TP 0x00000073u /* l2tp: IPPROTO_L2TP: L2TPv3 over IP (appended). */
#define E7C_IP_SCTP 0x00000084u /* sctp: IPPROTO_SCTP (appended). */
#define E7C_IP_UDPLITE 0x00000088u /* udplite: IPPROTO_UDPLITE (appended). */
#define E7C_IP_MPLS 0x00000089u /* mpls: IPPROTO_MPLS: MPLS in IP (appended). */
#define E7C_IP_ETHERNET 0x0000008Fu /* ethernet: IPPROTO_ETHERNET: Ethernet in IP (appended). */

/* commands (genlmsghdr.cmd); 0 is reserved */
enum e7_command {
	ENL_COMM_UNSUPP = 0,
	ENL_COMM_ERROR = 1, /* Error notice (kernel->user); a request for one is answered with one. */
	ENL_COMM_DISCONNECT = 2, /* The module is unloading (kernel->user), or the subscriber leaves (user->kernel). */
	ENL_COMM_BLOCK = 3, /* Add a block rule, or with no attributes set mode = block. */
	ENL_COMM_ALLOW = 4, /* Add an allow rule, or with no attributes set mode = disabled. */
	ENL_COMM_ENABLE = 5, /* Set mode = enabled. */
	ENL_COMM_CLEAR = 6, /* Remove all rules, the rules of one state, or one rule. */
	ENL_COMM_QUERY = 7, /* Request (user->kernel) or report (kernel->user) the mode and every rule. */
	ENL_COMM_EVENT = 8, /* A packet notification (kernel->user only). */
	ENL_COMM_SET = 9, /* Set a flag. */
	ENL_COMM_GET = 10, /* Read a flag (request) or report its value (reply). */
	ENL_COMM_SUBSCRIBE = 11, /* Become the event subscriber (appended). */
	ENL_COMM_STATS = 12, /* Per-program statistics, one NESTED entry per program (a dump; appended). Not GENL_ADMIN_PERM: the module refuses it (EPERM) to a client without CAP_NET_ADMIN unless the `statsunpriv` flag is enabled. */
};
#define E7_CMD_MAX 12
/* 1 if the command needs CAP_NET_ADMIN (GENL_ADMIN_PERM) */
#define ENL_COMM_ERROR_ADMIN 0
#define ENL_COMM_DISCONNECT_ADMIN 0
#define ENL_COMM_BLOCK_ADMIN 1
#define ENL_COMM_ALLOW_ADMIN 1
#define ENL_COMM_ENABLE_ADMIN 1
#define ENL_COMM_CLEAR_ADMIN 1
#define ENL_COMM_QUERY_ADMIN 0
#define ENL_COMM_EVENT_ADMIN 0
#define ENL_COMM_SET_ADMIN 1
#define ENL_COMM_GET_ADMIN 0
#define ENL_COMM_SUBSCRIBE_ADMIN 1
#define ENL_COMM_STATS_ADMIN 0
/* genl_ops.flags for each command */
#define ENL_COMM_ERROR_GENL_FLAGS 0
#define ENL_COMM_DISCONNECT_GENL_FLAGS 0
#define ENL_COMM_BLOCK_GENL_FLAGS GENL_ADMIN_PERM
#define ENL_COMM_ALLOW_GENL_FLAGS GENL_ADMIN_PERM
#define ENL_COMM_ENABLE_GENL_FLAGS GENL_ADMIN_PERM
#define ENL_COMM_CLEAR_GENL_FLAGS GENL_ADMIN_PERM
#define ENL_COMM_QUERY_GENL_FLAGS 0
#define ENL_COMM_EVENT_GENL_FLAGS 0
#define ENL_COMM_SET_GENL_FLAGS GENL_ADMIN_PERM
#define ENL_COMM_GET_GENL_FLAGS 0
#define ENL_COMM_SUBSCRIBE_GENL_FLAGS GENL_ADMIN_PERM
#define ENL_COMM_STATS_GENL_FLAGS 0

/* attributes (nlattr.nla_type); 0 is reserved */
enum e7_attr {
	ENL_ATTR_UNSUPP = 0,
	ENL_ATTR_NESTED = 1, /* Nested attributes: one rule in a QUERY reply. */
	ENL_ATTR_PATH = 2, /* Executable path of a rule or event. */
	ENL_ATTR_FLAG = 3, /* Flag index. */
	ENL_ATTR_PROT = 4, /* IP protocol number, or `any`. */
	ENL_ATTR_STATE = 5, /* A state constant: mode, rule state, event state. */
	ENL_ATTR_VALUE = 6, /* Flag value. */
	ENL_ATTR_ERRNO = 7, /* Positive errno of an ERROR message (appended). */
	ENL_ATTR_MESSAGE = 8, /* Human-readable text of an ERROR message (appended). */
	ENL_ATTR_COUNT = 9, /* Total number of rules in a QUERY reply (appended). */
	ENL_ATTR_DEST = 10, /* A rule's destination qualifier in the CLI's text form (`10.0.0.0/8`, `lan`), parsed by `qual::Dest::parse` (appended; in BLOCK/ALLOW/CLEAR requests and QUERY rule nests; a client sends it only to a module announcing the `qualifiers` flag's FEATURE_DEST bit). */
	ENL_ATTR_PORTS = 11, /* A rule's port qualifier in the CLI's text form (`80,443`, `1024-65535`), parsed by `qual::Ports::parse` (appended; FEATURE_PORTS). */
	ENL_ATTR_UID = 12, /* A rule's user qualifier: the uid a packet's socket must belong to (appended; FEATURE_USER). */
	ENL_ATTR_DPORT = 13, /* An event's destination port (tcp, udp, udplite, sctp; appended). The event's destination address is a DEST (its text form, e.g. `93.184.216.34`) and the socket's uid a UID. */
	ENL_ATTR_ACCEPT_PACKETS = 14, /* Packets of a program that were accepted, in a STATS entry (appended). */
	ENL_ATTR_ACCEPT_BYTES = 15, /* Bytes (IP packet length) of a program that were accepted, in a STATS entry (appended). */
	ENL_ATTR_DROP_PACKETS = 16, /* Packets of a program that were dropped, in a STATS entry (appended). */
	ENL_ATTR_DROP_BYTES = 17, /* Bytes of a program that were dropped, in a STATS entry (appended). */
	ENL_ATTR_FIRST_SEEN = 18, /* Seconds from a program's first counted packet to this STATS reply (monotonic clock), in a STATS entry (appended). */
	ENL_ATTR_LAST_SEEN = 19, /* Seconds from a program's latest packet to this STATS reply (monotonic clock), in a STATS entry (appended). */
	ENL_ATTR_REASON = 20, /* Why a program's latest packet got its verdict (`rule`, `norule`, ...: `stats::Reason`), in a STATS entry (appended). */
};
#define E7_ATTR_MAX 20
/* nla_policy initializer of each attribute */
#define ENL_ATTR_NESTED_POLICY { .type = NLA_NESTED }
#define ENL_ATTR_PATH_POLICY { .type = NLA_NUL_STRING, .len = 255 }
#define ENL_ATTR_FLAG_POLICY { .type = NLA_U32 }
#define ENL_ATTR_PROT_POLICY { .type = NLA_U32 }
#define ENL_ATTR_STATE_POLICY { .type = NLA_U32 }
#define ENL_ATTR_VALUE_POLICY { .type = NLA_U32 }
#define ENL_ATTR_ERRNO_POLICY { .type = NLA_U32 }
#define ENL_ATTR_MESSAGE_POLICY { .type = NLA_NUL_STRING, .len = 255 }
#define ENL_ATTR_COUNT_POLICY { .type = NLA_U32 }
#define ENL_ATTR_DEST_POLICY { .type = NLA_NUL_STRING, .len = 127 }
#define ENL_ATTR_PORTS_POLICY { .type = NLA_NUL_STRING, .len = 127 }
#define ENL_ATTR_UID_POLICY { .type = NLA_U32 }
#define ENL_ATTR_DPORT_POLICY { .type = NLA_U32 }
#define ENL_ATTR_ACCEPT_PACKETS_POLICY { .type = NLA_U64 }
#define ENL_ATTR_ACCEPT_BYTES_POLICY { .type = NLA_U64 }
#define ENL_ATTR_DROP_PACKETS_POLICY { .type = NLA_U64 }
#define ENL_ATTR_DROP_BYTES_POLICY { .type = NLA_U64 }
#define ENL_ATTR_FIRST_SEEN_POLICY { .type = NLA_U32 }
#define ENL_ATTR_LAST_SEEN_POLICY { .type = NLA_U32 }
#define ENL_ATTR_REASON_POLICY { .type = NLA_NUL_STRING, .len = 15 }
/* static const struct nla_policy e7_policy[E7_ATTR_MAX + 1] = { E7_POLICY_INIT }; */
#define E7_POLICY_INIT \
	[ENL_ATTR_NESTED] = ENL_ATTR_NESTED_POLICY, \
	[ENL_ATTR_PATH] = ENL_ATTR_PATH_POLICY, \
	[ENL_ATTR_FLAG] = ENL_ATTR_FLAG_POLICY, \
	[ENL_ATTR_PROT] = ENL_ATTR_PROT_POLICY, \
	[ENL_ATTR_STATE] = ENL_ATTR_STATE_POLICY, \
	[ENL_ATTR_VALUE] = ENL_ATTR_VALUE_POLICY, \
	[ENL_ATTR_ERRNO] = ENL_ATTR_ERRNO_POLICY, \
	[ENL_ATTR_MESSAGE] = ENL_ATTR_MESSAGE_POLICY, \
	[ENL_ATTR_COUNT] = ENL_ATTR_COUNT_POLICY, \
	[ENL_ATTR_DEST] = ENL_ATTR_DEST_POLICY, \
	[ENL_ATTR_PORTS] = ENL_ATTR_PORTS_POLICY, \
	[ENL_ATTR_UID] = ENL_ATTR_UID_POLICY, \
	[ENL_ATTR_DPORT] = ENL_ATTR_DPORT_POLICY, \
	[ENL_ATTR_ACCEPT_PACKETS] = ENL_ATTR_ACCEPT_PACKETS_POLICY, \
	[ENL_ATTR_ACCEPT_BYTES] = ENL_ATTR_ACCEPT_BYTES_POLICY, \
	[ENL_ATTR_DROP_PACKETS] = ENL_ATTR_DROP_PACKETS_POLICY, \
	[ENL_ATTR_DROP_BYTES] = ENL_ATTR_DROP_BYTES_POLICY, \
	[ENL_ATTR_FIRST_SEEN] = ENL_ATTR_FIRST_SEEN_POLICY, \
	[ENL_ATTR_LAST_SEEN] = ENL_ATTR_LAST_SEEN_POLICY, \
	[ENL_ATTR_REASON] = ENL_ATTR_REASON_POLICY,

/* flag value classes */
enum e7_value_class {
	E7_CLASS_MODE = 0, /* mode */
	E7_CLASS_ACTION = 1, /* action */
	E7_CLASS_BOOLEAN = 2, /* boolean */
	E7_CLASS_READONLY = 3, /* read-only */
};

/* flags, addressed by index (ENL_ATTR_FLAG) */
enum e7_flag {
	E7F_MODE = 0, /* mode: Firewall mode: enabled filters, disabled passes everything, block drops everything. */
	E7F_DEBUG = 1, /* debug: Rate-limited decision logging. */
	E7F_FAILPATH_ACTION = 2, /* fail: Verdict when the packet cannot be inspected at all. */
	E7F_UNKN_PROCESS_ACTION = 3, /* unkproc: Verdict when the sending process cannot be identified. */
	E7F_UNKN_PROTOCOL_ACTION = 4, /* unkprot: Verdict for packets no program owns whose protocol is not tcp, udp, icmp or icmpv6. */
	E7F_NORULE_NOTIFY = 5, /* norule: Send a pending event for packets that match no rule. */
	E7F_NORULE_SQUELCH = 6, /* squelch: Rate-limit pending events per (protocol, program). */
	E7F_NORULE_ACTION = 7, /* unkrule: Verdict for identified packets that match no rule. */
	E7F_RULE_DROPS = 8, /* drops: Send a block event for every packet a rule drops. */
	E7F_RULE_ACCEPTS = 9, /* accepts: Send an allow event for every packet a rule accepts. */
	E7F_RULE_CHANGE_QUERY = 10, /* rchngq: Send a QUERY reply after every rule or mode change. */
	E7F_STAT_UPTIME = 11, /* uptime: Seconds since the module was loaded. */
	E7F_STAT_PACKETS = 12, /* qpackets: Packets decided while mode was not disabled. */
	E7F_LONGPATH_ACTION = 13, /* longpath: Verdict for a process whose executable path exceeds 255 bytes (appended). */
	E7F_STAT_EVLOST = 14, /* evlost: Events dropped because the bounded event queue was full (appended). */
	E7F_NSPATH_ACTION = 15, /* nspath: Verdict for a program whose executable has no verified path in the initial mount namespace and root (appended). */
	E7F_QUALIFIERS = 16, /* qualifiers: Rule qualifiers the module enforces, a bit set: 1 destinations, 2 ports, 4 users (7 since issue 11; 0: a module that enforces none, which the CLI never sends a qualified rule) (appended). */
	E7F_STATS_UNPRIV = 17, /* statsunpriv: Let users without CAP_NET_ADMIN read the per-program statistics (STATS); they reveal every program's network use (appended). */
};
#define E7_FLAG_COUNT 18
#define E7F_MODE_DEFAULT E7C_DISABLED
#define E7F_MODE_CLASS E7_CLASS_MODE
#define E7F_DEBUG_DEFAULT E7C_DISABLED
#define E7F_DEBUG_CLASS E7_CLASS_BOOLEAN
#define E7F_FAILPATH_ACTION_DEFAULT E7C_ALLOW
#define E7F_FAILPATH_ACTION_CLASS E7_CLASS_ACTION
#define E7F_UNKN_PROCESS_ACTION_DEFAULT E7C_ALLOW
#define E7F_UNKN_PROCESS_ACTION_CLASS E7_CLASS_ACTION
#define E7F_UNKN_PROTOCOL_ACTION_DEFAULT E7C_ALLOW
#define E7F_UNKN_PROTOCOL_ACTION_CLASS E7_CLASS_ACTION
#define E7F_NORULE_NOTIFY_DEFAULT E7C_ENABLED
#define E7F_NORULE_NOTIFY_CLASS E7_CLASS_BOOLEAN
#define E7F_NORULE_SQUELCH_DEFAULT E7C_ENABLED
#define E7F_NORULE_SQUELCH_CLASS E7_CLASS_BOOLEAN
#define E7F_NORULE_ACTION_DEFAULT E7C_ALLOW
#define E7F_NORULE_ACTION_CLASS E7_CLASS_ACTION
#define E7F_RULE_DROPS_DEFAULT E7C_DISABLED
#define E7F_RULE_DROPS_CLASS E7_CLASS_BOOLEAN
#define E7F_RULE_ACCEPTS_DEFAULT E7C_DISABLED
#define E7F_RULE_ACCEPTS_CLASS E7_CLASS_BOOLEAN
#define E7F_RULE_CHANGE_QUERY_DEFAULT E7C_ENABLED
#define E7F_RULE_CHANGE_QUERY_CLASS E7_CLASS_BOOLEAN
#define E7F_STAT_UPTIME_DEFAULT 0u
#define E7F_STAT_UPTIME_CLASS E7_CLASS_READONLY
#define E7F_STAT_PACKETS_DEFAULT 0u
#define E7F_STAT_PACKETS_CLASS E7_CLASS_READONLY
#define E7F_LONGPATH_ACTION_DEFAULT E7C_BLOCK
#define E7F_LONGPATH_ACTION_CLASS E7_CLASS_ACTION
#define E7F_STAT_EVLOST_DEFAULT 0u
#define E7F_STAT_EVLOST_CLASS E7_CLASS_READONLY
#define E7F_NSPATH_ACTION_DEFAULT E7C_BLOCK
#define E7F_NSPATH_ACTION_CLASS E7_CLASS_ACTION
#define E7F_QUALIFIERS_DEFAULT 0u
#define E7F_QUALIFIERS_CLASS E7_CLASS_READONLY
#define E7F_STATS_UNPRIV_DEFAULT E7C_DISABLED
#define E7F_STATS_UNPRIV_CLASS E7_CLASS_BOOLEAN
/* u32 e7_flag_defaults[E7_FLAG_COUNT] = { E7_FLAG_DEFAULTS_INIT }; */
#define E7_FLAG_DEFAULTS_INIT \
	[E7F_MODE] = E7F_MODE_DEFAULT, \
	[E7F_DEBUG] = E7F_DEBUG_DEFAULT, \
	[E7F_FAILPATH_ACTION] = E7F_FAILPATH_ACTION_DEFAULT, \
	[E7F_UNKN_PROCESS_ACTION] = E7F_UNKN_PROCESS_ACTION_DEFAULT, \
	[E7F_UNKN_PROTOCOL_ACTION] = E7F_UNKN_PROTOCOL_ACTION_DEFAULT, \
	[E7F_NORULE_NOTIFY] = E7F_NORULE_NOTIFY_DEFAULT, \
	[E7F_NORULE_SQUELCH] = E7F_NORULE_SQUELCH_DEFAULT, \
	[E7F_NORULE_ACTION] = E7F_NORULE_ACTION_DEFAULT, \
	[E7F_RULE_DROPS] = E7F_RULE_DROPS_DEFAULT, \
	[E7F_RULE_ACCEPTS] = E7F_RULE_ACCEPTS_DEFAULT, \
	[E7F_RULE_CHANGE_QUERY] = E7F_RULE_CHANGE_QUERY_DEFAULT, \
	[E7F_STAT_UPTIME] = E7F_STAT_UPTIME_DEFAULT, \
	[E7F_STAT_PACKETS] = E7F_STAT_PACKETS_DEFAULT, \
	[E7F_LONGPATH_ACTION] = E7F_LONGPATH_ACTION_DEFAULT, \
	[E7F_STAT_EVLOST] = E7F_STAT_EVLOST_DEFAULT, \
	[E7F_NSPATH_ACTION] = E7F_NSPATH_ACTION_DEFAULT, \
	[E7F_QUALIFIERS] = E7F_QUALIFIERS_DEFAULT, \
	[E7F_STATS_UNPRIV] = E7F_STATS_UNPRIV_DEFAULT,

/* module parameters: one per settable flag, X(name, MODULE_PARM_DESC text) */
#define E7_MODULE_PARAMS(X) \
	X(mode, "the firewall mode at load: enabled, disabled or block (default disabled)") \
	X(debug, "rate-limited decision logging: enabled or disabled (default disabled)") \
	X(fail, "verdict for packets that cannot be inspected (malformed): allow or block (default allow)") \
	X(unkproc, "verdict when no owning process is found (tcp, udp, icmp, icmpv6): allow or block (default allow)") \
	X(unkprot, "verdict when no owning process is found, other protocols (igmp, tunnels, ...): allow or block (default allow)") \
	X(norule, "send a pending event for packets matching no rule: enabled or disabled (default enabled)") \
	X(squelch, "rate-limit pending events to one per program and protocol per second: enabled or disabled (default enabled)") \
	X(unkrule, "verdict for identified programs without a rule: allow or block (default allow)") \
	X(drops, "send an event for every packet dropped by a rule: enabled or disabled (default disabled)") \
	X(accepts, "send an event for every packet accepted by a rule: enabled or disabled (default disabled)") \
	X(rchngq, "push a QUERY to the sender after a rule or mode change: enabled or disabled (default enabled)") \
	X(longpath, "verdict for programs whose path exceeds 255 bytes: allow or block (default block)") \
	X(nspath, "verdict for programs without a verified path in the initial mount namespace and root: allow or block (default block)") \
	X(statsunpriv, "let unprivileged users read per-program statistics (e7 stats, e7 top): enabled or disabled (default disabled)")

#endif /* E7_PROTO_H */
