/* SPDX-License-Identifier: GPL-2.0-only */
/*
 * e7_rust.h - the ABI between the C shim (e7_shim.c) and the Rust staticlib (rust/).
 *
 * Why a hand-written header: the boundary is small (a handful of functions and three flat
 * structs), so bindgen would cost more than it saves. Every struct here is mirrored by a
 * #[repr(C)] struct in rust/src/abi.rs, and both sides check the sizes at compile time
 * (_Static_assert here, const assertions there), so a drift fails the build.
 *
 * Two directions:
 *  - E7_RUST_EXPORT lines: functions implemented in Rust (#[no_mangle]) and called by the shim.
 *    Kbuild reads THIS FILE to build the `ld -r -u <symbol>` list for the partial link of the
 *    staticlib (the list is co-located with the declarations, so adding a Rust entry point is one
 *    line here; forgetting it fails the build at modpost with an undefined symbol).
 *  - E7_C_EXPORT lines: functions implemented in C and called from Rust (rust/src/ffi.rs).
 *
 * Context rules (the Rust side relies on them; see README.md "Locking"):
 *  - e7_hook may run in any context that netfilter LOCAL_OUT runs in (task or softirq).
 *  - e7_genl_doit / e7_genl_dump_query run in process context under genl_mutex;
 *    e7_genl_chain_query runs in process context WITHOUT genl_mutex (a dump started by the
 *    shim itself, continued from the reader's recvmsg under its cb_mutex).
 *  - e7_work_events / e7_work_refill run in process context on the e7 workqueue.
 *  - e7_c_current_exe / e7_c_task_exe take task_lock, which process context takes WITHOUT
 *    disabling BH: never from softirq, and never while a BH-safe lock may be held (process
 *    context with BH disabled). They are only called for packets flagged E7_PKT_IN_TASK
 *    (e7_may_lock_tasks() in the hook) or from the e7 workqueue.
 *  - e7_c_collect_sockets (the process walk, chunk by chunk) takes task_lock and
 *    files->file_lock and reschedules: preemptible process context with no module lock held
 *    only (the refill work); it refuses with -EPERM anywhere else, the hook included.
 *  - e7_rust_port_released runs in process context (netlink notifier chain).
 */
#ifndef E7_RUST_H
#define E7_RUST_H

#include <linux/types.h>

#define E7_RUST_EXPORT extern
#define E7_C_EXPORT extern

/* Capacity of the executable-path buffer: 255 path bytes + NUL, plus room for d_path's
 * " (deleted)" suffix, which is stripped before the length limit is applied. */
#define E7_EXE_BUF 272

/* Descriptors e7_c_current_holds scans at most (a bounded loop: it may run in softirq). */
#define E7_RCU_FD_SCAN 1024

/* e7_pkt.flags */
#define E7_PKT_MALFORMED 0x1u  /* network header unreadable (the `fail` action applies) */
#define E7_PKT_IN_TASK   0x2u  /* process context with BH+IRQs on: task locks allowed */
#define E7_PKT_SENDER    0x4u  /* e7_pkt.sender is current's process image (IN_TASK, a user process) */

/* A packet's destination, read only while a rule depends on it (e7_hook's PEER; NULL otherwise). */
#define E7_PEER_PORT     0x1u  /* dport holds the destination port (tcp, udp, udplite, sctp) */
#define E7_PEER_ROUTED   0x4u  /* the packet names a route (IPv6 routing header, IPv4 LSRR/SSRR):
				* daddr is only its first hop; e7_c_pkt_route reads the others */
struct e7_peer {
	__u8 daddr[16];  /* destination, network order (IPv4: the first 4 bytes) */
	__u16 dport;     /* E7_PEER_PORT: destination port, host order */
	__u8 flags;      /* E7_PEER_* */
	__u8 pad[5];
};

/* Which program a process is running, without its path: the thread group, when its leader
 * started, and the exec generation (self_exec_id, bumped by every execve). Two observations with
 * equal values are the same program image, so a path resolved once can be reused. */
struct e7_task_id {
	__u64 start_ns;  /* group leader's start_boottime */
	__u64 exec_id;   /* self_exec_id */
	__u32 tgid;      /* thread-group id (init pid namespace) */
	__u32 pad;
};

/* Facts about one outgoing packet, gathered cheaply by the shim (inline, no call: the cached hit
 * needs the cookie and, in task context, the sender, and nothing else). */
struct e7_pkt {
	void *sk;        /* full socket (skb_to_full_sk + sk_fullsock) or NULL; opaque to Rust */
	__u64 cookie;    /* sk's cookie (sock_gen_cookie's value; never 0 with a socket), 0 without */
	struct e7_task_id sender; /* current's process image when E7_PKT_SENDER is set, else zero */
	__u32 proto;     /* L4 protocol number (IPv6: after ipv6_skip_exthdr) */
	__u32 uid;       /* sk->sk_uid in the initial user namespace, or 0 without a socket */
	__u8 family;     /* 4 or 6 */
	__u8 flags;      /* E7_PKT_* */
	__u8 pad[6];
};

/* Socket facts fetched lazily (only on a known-socket-cache miss). */
#define E7_SOCK_DETACHED 0 /* no struct socket: orphaned, or a child not yet accept()ed */
#define E7_SOCK_KERNEL   1 /* struct socket without a file: a kernel socket, no process owns it */
#define E7_SOCK_USER     2 /* struct socket with a file: a userspace descriptor exists */
struct e7_sockinfo {
	__u64 ino;       /* inode of the socket's struct socket, 0 if none */
	__u32 kind;      /* E7_SOCK_* */
	__u32 pad;
};


/* The executable of a task, as resolved by d_path. */
struct e7_exe {
	__s32 status;    /* 0 ok; -ENAMETOOLONG path too long; -ENOENT no mm/exe; -ESRCH no task */
	__u32 len;       /* bytes of path in buf (no NUL) when status == 0 */
	struct e7_task_id task; /* the process (task.tgid is the owner) */
	char buf[E7_EXE_BUF];
};

/* Where a reply or event goes: a netlink port in init_net, and the request's sequence number. */
struct e7_dest {
	__u32 portid;
	__u32 seq;
};

/* One chunk of the process walk visits at most this many process ids and descriptors (so one
 * file_lock hold visits at most E7_WALK_FILES descriptors). */
#define E7_WALK_TASKS 64
#define E7_WALK_FILES 1024

/* Position of the process walk: process id (init pid namespace) and descriptor number to resume
 * at; the shim sets DONE when no process is left. */
struct e7_walk_pos {
	__u32 tgid;
	__u32 fd;
	__u32 done;
	__u32 pad;
};

/* One (socket inode, owner) pair: e7-core's SocketOwner (#[repr(C)]; 16 bytes with padding). */
struct e7_sock_owner {
	__u64 ino;
	__u32 tgid;
};

/* ---- implemented in Rust ---- */

/* Apply one module parameter (flag alias NAME, value alias or number VAL) before anything is
 * registered. Returns 0 or -EINVAL and writes a NUL-terminated reason into err. */
E7_RUST_EXPORT int e7_param_set(const char *name, const char *val, char *err, __u32 err_len);
/* Load-time initialisation (clock origin); returns 0. */
E7_RUST_EXPORT int e7_rust_init(void);
/* The mode flag's value (Rust's atomic u32, the mode's one home), valid until unload: the hook
 * reads it first and accepts without any other work while it is E7C_DISABLED. */
E7_RUST_EXPORT const __u32 *e7_rust_mode_word(void);
/* Nonzero (one byte, Rust's atomic) while some rule depends on the packet's destination or port:
 * only then does the hook read the destination (the cached hit path without such rules pays one
 * load for it). Valid until unload. */
E7_RUST_EXPORT const __u8 *e7_rust_peer_word(void);
/* The secret key of the socket cache's IPv6 destination hash: random bytes, once, before the hooks
 * exist. Process context. */
E7_RUST_EXPORT void e7_rust_set_dest_secret(__u64 k0, __u64 k1);
/* The netfilter hooks could not be registered: set the mode to `disabled` (what the kernel then
 * does), so no reader believes it enforces. Process context. */
E7_RUST_EXPORT void e7_rust_mode_failsafe(void);
/* Stop kicking work and queuing events (module unload has begun). */
E7_RUST_EXPORT void e7_rust_stop(void);
/* The per-packet decision: E7_HOOK_ACCEPT set = NF_ACCEPT, clear = NF_DROP; E7_HOOK_CACHED:
 * the verdict came from a still-valid cached one (the hook counts the hit per CPU);
 * E7_HOOK_REASON: the decision's reason; from bit E7_HOOK_EXE_SHIFT on, the program's ExeId
 * (generation << 16 | slot, 0 = none): the hook counts the packet for it (per-program
 * statistics) without another call into Rust. */
#define E7_HOOK_ACCEPT 0x1u
#define E7_HOOK_CACHED 0x2u
#define E7_HOOK_REASON 0xf0u
#define E7_HOOK_EXE_SHIFT 8
/* PEER: the destination while a rule depends on it (e7_rust_peer_word), else NULL. SKB: the packet,
 * opaque to Rust, valid for the call (e7_c_pkt_dest reads its destination for an event). Arguments,
 * not e7_pkt fields, so the hit path without such rules stores nothing more. */
E7_RUST_EXPORT __u64 e7_hook(const struct e7_pkt *pkt, const struct e7_peer *peer, void *skb);
/* e7_genl_doit's answer "start the chain-shaped QUERY reply as a dump" (no ack). */
#define E7_DOIT_QUERY_CHAIN 1
/* One generic-netlink request (doit). ATTRS/LEN: attributes after the genl header; ADMIN: the
 * sender has CAP_NET_ADMIN. Returns 0 or a negative errno for the ack, or E7_DOIT_QUERY_CHAIN;
 * *extack_msg may be set to a static string. */
E7_RUST_EXPORT int e7_genl_doit(__u8 cmd, const __u8 *attrs, __u32 len,
				const struct e7_dest *dest, __u32 admin, const char **extack_msg);
/* Fill one flat QUERY dump message body into BUF (ROOM bytes). CURSOR (two u64, zero at first)
 * tracks progress; *GENERATION receives the rule-table generation it was built from (for
 * genl_dump_check_consistent). Returns bytes written, 0 when the dump is complete, or a negative
 * errno. */
E7_RUST_EXPORT int e7_genl_dump_query(__u8 *buf, __u32 room, __u64 *cursor, __u32 *generation);
/* STATS: 0 if a client (ADMIN: it has CAP_NET_ADMIN) may read the per-program statistics, else
 * -EPERM (the `statsunpriv` flag opens them to everybody). Process context. */
E7_RUST_EXPORT int e7_genl_stats_permitted(__u32 admin);
/* Fill one STATS dump message body (one NESTED entry per program) into BUF (ROOM bytes); CURSOR
 * (two u64, zero at first) tracks progress. Returns bytes written, 0 when complete, or a negative
 * errno. Process context. */
E7_RUST_EXPORT int e7_genl_dump_stats(__u8 *buf, __u32 room, __u64 *cursor);
/* Same contract for the chain-shaped reply to a plain QUERY: one message (as many rules as fit,
 * the last one with COUNT) per call. BUF must be initialised (the shim zeroes it). */
E7_RUST_EXPORT int e7_genl_chain_query(__u8 *buf, __u32 room, __u64 *cursor, __u32 *generation);
/* Work items (process context, e7 workqueue). */
E7_RUST_EXPORT void e7_work_events(void);
E7_RUST_EXPORT void e7_work_refill(void);
/* Unload (and init unwinding): send DISCONNECT to every subscriber and forget them; never
 * blocks. Returns how many could not be delivered (also counted and logged). */
E7_RUST_EXPORT __u32 e7_rust_disconnect_all(void);
/* NETLINK_URELEASE for a generic-netlink port in init_net: forget that subscriber. */
E7_RUST_EXPORT void e7_rust_port_released(__u32 portid);
/* The process walk's counters as one line into BUF (LEN bytes, NUL-terminated); returns the
 * length without the NUL (the read-only module parameter walk_stats). */
E7_RUST_EXPORT int e7_rust_walk_stats(__u8 *buf, __u32 len);

/* ---- implemented in C (e7_shim.c) ---- */

E7_C_EXPORT void e7_rust_panic(const char *file, __u32 len, __u32 line);
E7_C_EXPORT void e7_c_log(__u32 level, const char *msg, __u32 len);
E7_C_EXPORT __u64 e7_c_now_ms(void);
E7_C_EXPORT __u64 e7_c_now_ns(void);
E7_C_EXPORT __u64 e7_c_sk_cookie(void *sk);
E7_C_EXPORT void e7_c_sk_info(void *sk, struct e7_sockinfo *out);
/* Inside the hook, any context: the destination address and port of the hook's packet SKB (FAMILY
 * 4 or 6) into OUT (daddr, E7_PEER_PORT/dport). Returns 0, or -EINVAL when the headers cannot be
 * read. For events: the decision gets the destination inline only while a rule needs it. */
E7_C_EXPORT int e7_c_pkt_dest(void *skb, __u8 family, struct e7_peer *out);
/* Inside the hook, any context, bounded by the header's own length: the INDEX-th address the route
 * of the hook's packet SKB (FAMILY 4 or 6) names beyond its IP destination, into OUT (16 bytes;
 * IPv4: the first 4), in header order: IPv6, every address of each type 0 or 2 routing header and
 * segments 0..first_segment of each type 4 (segment routing) one, segment 0 being the final
 * destination; IPv4, every address slot of each loose or strict source route option. Returns 1, 0
 * when the route names fewer addresses, or -EINVAL when it cannot be read (truncated, another
 * routing header type, more than E7_EXTHDR_MAX extension headers). */
E7_C_EXPORT int e7_c_pkt_route(void *skb, __u8 family, __u32 index, __u8 *out);
/* Task context: the sending task (current, if a user process; io-wq workers count as their
 * process) whether or not an fd table holds the socket. Lock-free; returns 1 and fills OUT. */
E7_C_EXPORT int e7_c_current_task(struct e7_task_id *out);
/* Task context with task locks allowed: current's executable (0 or a negative errno in OUT). */
E7_C_EXPORT int e7_c_current_exe(struct e7_exe *out);
/* Any context, lock-free: does the current (in softirq: the interrupted) task hold a descriptor for
 * SK? Scans at most E7_RCU_FD_SCAN descriptors under RCU, takes no lock a process-context holder
 * could hold. Returns 1 and fills OUT if so. */
E7_C_EXPORT int e7_c_current_holds(void *sk, struct e7_task_id *out);
E7_C_EXPORT int e7_c_task_exe(__u32 tgid, struct e7_exe *out);
/* Preemptible process context, no module lock held: one chunk of the process walk from *POS
 * (at most MAX pairs into OUT, E7_WALK_TASKS process ids, E7_WALK_FILES descriptors); updates
 * *POS. Returns the pairs written, or -EPERM (nothing written) in any other context. */
E7_C_EXPORT int e7_c_collect_sockets(struct e7_walk_pos *pos, struct e7_sock_owner *out, __u32 max);
E7_C_EXPORT void e7_c_kick_events(void);
E7_C_EXPORT void e7_c_kick_refill(__u32 delay_ms);
E7_C_EXPORT void *e7_c_msg_new(__u8 cmd, const struct e7_dest *dest, __u8 **buf, __u32 *room);
E7_C_EXPORT int e7_c_msg_send(void *msg, __u32 used, __u32 portid);
E7_C_EXPORT void e7_c_msg_free(void *msg);
/* Seconds of CLOCK_MONOTONIC (the timekeeper's own field: no clock read, no division). Any
 * context. */
E7_C_EXPORT __u64 e7_c_now_secs(void);
/* Per-CPU statistics (alloc_percpu): E7_STATS counters indexed by e7-core's Stat::index. inc:
 * this CPU's counter, any context, no shared cache line written; sum: every possible CPU's. */
#define E7_STATS 8
/* Stat::Packets (`qpackets`): counted by the hook itself, inline, for every packet past the mode check. */
#define E7_STAT_PACKETS 0
/* Stat::Hits: counted by the hook from e7_hook's E7_HOOK_CACHED bit. */
#define E7_STAT_HITS 1
E7_C_EXPORT void e7_c_stat_inc(__u32 idx);
E7_C_EXPORT __u64 e7_c_stat_sum(__u32 idx);
/* Per-program statistics (issue 12): one record per executable-table slot per CPU
 * (alloc_percpu at load, never per packet). ID is e7-core's ExeId::to_u64 (generation << 16 |
 * slot): a record counts for one generation only, so a reused slot starts from zero and a packet
 * of a retired generation is not counted. INFO: bit 0 drop, bits 4..7 the reason (as in
 * Decision::to_bits), protocol << 8. Counted by the hook itself from e7_hook's result (IRQs off on
 * this CPU for the few stores: no lock, no shared line); read: process context, sums every CPU's
 * record of ID into OUT, returns 1 if any packet was counted. */
#define E7_PROG_SLOTS 256
struct e7_prog_sum {
	__u64 packets[2]; /* [0] accepted, [1] dropped */
	__u64 bytes[2];
	__u64 first;      /* seconds since the first packet counted (earliest CPU) */
	__u64 last;       /* seconds since the latest packet */
	__u32 info;       /* INFO of the latest packet */
	__u32 pad;
};
E7_C_EXPORT int e7_c_prog_read(__u64 id, struct e7_prog_sum *out);
/* Kernel rwlock_t stored inline in Rust statics (rust/src/klock.rs): LOCK points at 8 zeroed,
 * 8-aligned bytes, which is an unlocked rwlock_t on this kernel configuration (checked at build
 * time by size and at load time by content). Readers run in softirq, writers in process context,
 * so every function uses the _bh variants. */
E7_C_EXPORT void e7_c_rwl_read_lock(void *lock);
E7_C_EXPORT void e7_c_rwl_read_unlock(void *lock);
E7_C_EXPORT int e7_c_rwl_read_trylock(void *lock);
E7_C_EXPORT void e7_c_rwl_write_lock(void *lock);
E7_C_EXPORT void e7_c_rwl_write_unlock(void *lock);
E7_C_EXPORT int e7_c_rwl_write_trylock(void *lock);

/* Size of the inline lock storage on the Rust side: room for the kernel rwlock the shim keeps there
 * (rwlock_t is 8 bytes; on PREEMPT_RT a ready flag plus the 40-byte rt_mutex-based rwlock_t). */
#define E7_RWLOCK_BYTES 64

#endif /* E7_RUST_H */
