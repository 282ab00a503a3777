// SPDX-License-Identifier: GPL-2.0-only
/*
 * e7_shim.c - the C half of the e7 kernel module.
 *
 * Why a C shim at all: the Debian 6.1 kernel has no Rust support, and everything that touches
 * kernel structs, macros or static inline functions (netfilter registration, skb and socket
 * accessors, task/file locking, d_path, generic netlink, workqueues, rwlocks) is only usable from
 * C. So this file does exactly that and nothing else: it gathers facts and performs kernel
 * operations on request. Every decision (modes, default actions, rules, caches, validation,
 * message parsing and building) lives in the Rust staticlib (rust/), reached through the small
 * ABI in e7_rust.h.
 *
 * Contexts and the one locking hazard (see README.md "Locking"):
 *  - the netfilter hook runs in task context (sendmsg/connect) or in softirq (TCP timers, ACKs,
 *    SYN-ACKs of listeners, qdisc requeues);
 *  - task_lock() and files->file_lock are taken by process context WITHOUT disabling bottom
 *    halves, so taking them from softirq can deadlock against the interrupted owner on the same
 *    CPU. Nor may they be taken by process context that has BH disabled while holding a
 *    BH-safe lock: tcp_release_cb() transmits under the socket's slock (taken by softirq
 *    tcp_v4_rcv), so "slock -> task_lock" on one CPU plus "task_lock, interrupted by a softirq
 *    spinning on slock" on another is an ABBA deadlock, although in_task() is true. So the hook
 *    marks a packet E7_PKT_IN_TASK only when e7_may_lock_tasks() (process context, BH and IRQs
 *    enabled); the functions that take those locks (e7_c_current_exe, e7_c_task_exe) are only
 *    reached for such packets or from the e7 workqueue, and refuse otherwise; the process walk
 *    (e7_c_collect_sockets) runs only from the e7 workqueue, preemptible, with no module lock
 *    held, and refuses anywhere else (the hook included). Every other miss uses the lock-free
 *    e7_c_current_holds, or else the packet is dropped and the socket deferred to one bounded,
 *    rate-limited work item (e7_refill_work);
 *  - the rwlocks that protect the Rust state are always taken with the _bh variants, so a
 *    process-context writer can never be interrupted by a softirq reader on its own CPU.
 */
#include <linux/module.h>
#include <linux/kernel.h>
#include <linux/init.h>
#include <linux/errno.h>
#include <linux/string.h>
#include <linux/netfilter.h>
#include <linux/netfilter_ipv4.h>
#include <linux/netfilter_ipv6.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/skbuff.h>
#include <linux/fs.h>
#include <linux/fdtable.h>
#include <linux/dcache.h>
#include <linux/file.h>
#include <linux/net.h>
#include <linux/rcupdate.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/task.h>
#include <linux/sched/mm.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/spinlock.h>
#include <linux/workqueue.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/timekeeping.h>
#include <linux/sock_diag.h>
#include <linux/uidgid.h>
#include <linux/random.h>
#include <net/sock.h>
#include <net/inet_sock.h>
#include <net/ipv6.h>
#include <net/ip.h>
#include <linux/seg6.h>
#include <net/net_namespace.h>
#include <net/genetlink.h>
#include <linux/netlink.h>
#include <linux/notifier.h>

/* Generated from the e7-proto schema table (never edited by hand): numbers, policy, admin flags. */
#include "e7_proto.h"
#include "e7_rust.h"

#define E7_MOD_VERSION "0.1.0"

/* ------------------------------------------------------------------------------------------ */
/* Kernel-version compatibility: the ONLY place that tests LINUX_VERSION_CODE. Each difference  */
/* gets one named switch (what changed, and since when) and one wrapper the code calls; nothing */
/* below this section knows kernel versions. Supported: Debian's 6.1, 6.12 (+ PREEMPT_RT), sid. */

#include <linux/version.h>
#include <linux/fs_struct.h>
#include <linux/namei.h>
#include <linux/path.h>

/*
 * 6.7 made struct file SLAB_TYPESAFE_BY_RCU: get_file_rcu() now takes the RCU-protected pointer
 * itself (struct file __rcu **) and returns the pinned file, re-reading the pointer if the file
 * was freed and reused meanwhile; before, it took the file and returned whether it got a reference.
 */
#define E7_GET_FILE_RCU_TAKES_RCU_POINTER (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 7, 0))

/* e7_get_file_rcu(fp): a reference on the file *fp points to, or NULL. Caller holds rcu_read_lock. */
static inline struct file *e7_get_file_rcu(struct file __rcu **fp)
{
#if E7_GET_FILE_RCU_TAKES_RCU_POINTER
	return get_file_rcu(fp);
#else
	struct file *f = rcu_dereference(*fp);

	return f && get_file_rcu(f) ? f : NULL;
#endif
}

/*
 * fs_struct's lock: a spinlock_t `lock` (plus a seqcount) up to 6.12, a seqlock_t `seq` on sid's 7.x
 * (the rows bracket the change; the release that made it, taken here as 6.15, was not verified on
 * a row of its own). e7_fs_root_peek copies a task's root WITHOUT taking references (the caller
 * holds RCU: dentries and mounts are freed only after a grace period), so the hook never has to
 * drop one (path_put may sleep).
 */
#define E7_FS_STRUCT_SEQLOCK (LINUX_VERSION_CODE >= KERNEL_VERSION(6, 15, 0))

static inline void e7_fs_root_peek(struct fs_struct *fs, struct path *root)
{
#if E7_FS_STRUCT_SEQLOCK
	read_seqlock_excl(&fs->seq);
	*root = fs->root;
	read_sequnlock_excl(&fs->seq);
#else
	spin_lock(&fs->lock);
	*root = fs->root;
	spin_unlock(&fs->lock);
#endif
}

/*
 * vfs_path_lookup is exported on every row (EXPORT_SYMBOL in fs/namei.c) but 6.1 declares it only
 * in fs/internal.h; 6.12 and later declare it in <linux/namei.h>. Redeclaring it with the same
 * signature is harmless where the header has it.
 */
extern int vfs_path_lookup(struct dentry *dentry, struct vfsmount *mnt, const char *name,
			   unsigned int flags, struct path *path);

/*
 * PREEMPT_RT (a configuration, not a version: Debian's -rt flavour) makes rwlock_t an rt_mutex-
 * based sleeping lock (40 bytes) whose unlocked state is not zero bytes: its reader count starts at
 * READER_BIAS. It cannot live unprepared in the Rust side's zero-initialised static storage, so on
 * RT the slot holds a ready flag before the lock, and the lock is initialised on first use (once,
 * with preemption off so a waiter never spins on a preempted initialiser; rwlock_init only stores).
 * A plain mutex would not do: readers nest and take several of these locks in either order, which
 * only a reader/writer lock allows. Elsewhere the slot IS the rwlock_t (unlocked = zero bytes).
 */
#ifdef CONFIG_PREEMPT_RT
#define E7_RWL_LAZY_INIT 1
struct e7_rwl {
	atomic_t ready; /* 0 = zero bytes as left by Rust, 1 = being initialised, 2 = ready */
	rwlock_t lock;
};

static rwlock_t *e7_rwl_of(void *slot)
{
	struct e7_rwl *l = slot;

	if (likely(atomic_read_acquire(&l->ready) == 2))
		return &l->lock;
	preempt_disable();
	if (atomic_cmpxchg(&l->ready, 0, 1) == 0) {
		rwlock_init(&l->lock);
		atomic_set_release(&l->ready, 2);
	} else {
		while (atomic_read_acquire(&l->ready) != 2)
			cpu_relax();
	}
	preempt_enable();
	return &l->lock;
}
#else
#define E7_RWL_LAZY_INIT 0
struct e7_rwl {
	rwlock_t lock;
};

static inline rwlock_t *e7_rwl_of(void *slot)
{
	return &((struct e7_rwl *)slot)->lock;
}
#endif

/* ------------------------------------------------------------------------------------------ */
/* ABI size checks (mirrored by const assertions in rust/src/abi.rs)                          */

_Static_assert(sizeof(struct e7_pkt) == 56, "e7_pkt ABI");
_Static_assert(sizeof(struct e7_peer) == 24, "e7_peer ABI");
_Static_assert(sizeof(struct e7_sockinfo) == 16, "e7_sockinfo ABI");
_Static_assert(sizeof(struct e7_task_id) == 24, "e7_task_id ABI");
_Static_assert(sizeof(struct e7_exe) == 32 + E7_EXE_BUF, "e7_exe ABI");
_Static_assert(sizeof(struct e7_dest) == 8, "e7_dest ABI");
_Static_assert(sizeof(struct e7_prog_sum) == 56, "e7_prog_sum ABI");
_Static_assert(sizeof(struct e7_walk_pos) == 16, "e7_walk_pos ABI");
_Static_assert(sizeof(struct e7_sock_owner) == 16, "e7_sock_owner ABI (e7-core's SocketOwner)");

/* ------------------------------------------------------------------------------------------ */
/* Module parameters: initial flag values, validated by Rust (e7-proto) before anything is    */
/* registered, so a machine can boot with e7 enforcing.                                        */

/* One charp parameter per settable flag, named and described by the schema's flag rows
 * (E7_MODULE_PARAMS in the generated e7_proto.h): adding a flag adds its parameter. */
#define E7_PARAM_DECLARE(name, desc)                             \
	static char *e7_p_##name;                                \
	module_param_named(name, e7_p_##name, charp, 0444);      \
	MODULE_PARM_DESC(name, desc);
E7_MODULE_PARAMS(E7_PARAM_DECLARE)

#define E7_PARAM_ENTRY(name, desc) { #name, &e7_p_##name },

static const struct {
	const char *name;
	char **value;
} e7_params[] = { E7_MODULE_PARAMS(E7_PARAM_ENTRY) };

/*
 * walk_stats: read-only counters of the process walk (one line; see README.md "Identification"):
 * slices, cycles, pairs merged, the most pairs merged under one lock hold, the chunk size (its
 * bound), pairs the latest cycle could not record, merges, and the total and longest merge lock
 * hold in nanoseconds (the longest bottom-halves-off section a walk causes). Not a flag: it has no
 * value to set.
 */
static int e7_walk_stats_get(char *buffer, const struct kernel_param *kp)
{
	int n = e7_rust_walk_stats((__u8 *)buffer, PAGE_SIZE - 1);

	if (n < 0)
		return n;
	buffer[n] = '\n';
	return n + 1;
}

static int e7_walk_stats_set(const char *val, const struct kernel_param *kp)
{
	pr_err("e7: walk_stats is read-only (walk counters), it cannot be set\n");
	return -EPERM;
}

static const struct kernel_param_ops e7_walk_stats_ops = {
	.set = e7_walk_stats_set,
	.get = e7_walk_stats_get,
};
module_param_cb(walk_stats, &e7_walk_stats_ops, NULL, 0444);
MODULE_PARM_DESC(walk_stats, "process-walk counters (read-only): slices, cycles, merged, max_merge, "
			     "chunk, dropped, merges, total_lock_ns, max_lock_ns");

static int __init e7_apply_params(void)
{
	char err[160] = "";
	size_t i;

	for (i = 0; i < ARRAY_SIZE(e7_params); i++) {
		const char *val = *e7_params[i].value;

		if (!val)
			continue;
		err[0] = '\0';
		if (e7_param_set(e7_params[i].name, val, err, sizeof(err))) {
			pr_err("e7: invalid module parameter %s=%s: %s\n", e7_params[i].name, val, err);
			return -EINVAL;
		}
	}
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Services for Rust: panic, log, clock, locks                                                */

void e7_rust_panic(const char *file, __u32 len, __u32 line)
{
	pr_emerg("e7: rust panic at %.*s:%u\n", (int)len, file, line);
	BUG();
}

void e7_c_log(__u32 level, const char *msg, __u32 len)
{
	switch (level) {
	case 0:
		pr_err_ratelimited("e7: %.*s\n", (int)len, msg);
		break;
	case 1:
		pr_info_ratelimited("e7: %.*s\n", (int)len, msg);
		break;
	default:
		pr_notice_ratelimited("e7: %.*s\n", (int)len, msg);
		break;
	}
}

__u64 e7_c_now_ms(void)
{
	return div_u64(ktime_get_boottime_ns(), NSEC_PER_MSEC);
}

__u64 e7_c_now_ns(void)
{
	return ktime_get_boottime_ns();
}

__u64 e7_c_now_secs(void)
{
	return ktime_get_seconds();
}

/* The packet path's counters, one set per CPU: a packet increments its own CPU's copy (one
 * `inc %gs:` on x86, IRQ-safe), so no cache line is written by two CPUs; reads (a GET of
 * `qpackets`) add up every CPU's. Allocated before anything can count, freed after the hooks,
 * the work items and the family are gone. */
struct e7_pcpu_stats {
	u64 c[E7_STATS];
};
static struct e7_pcpu_stats __percpu *e7_stats __read_mostly;

void e7_c_stat_inc(__u32 idx)
{
	if (idx < E7_STATS)
		this_cpu_inc(e7_stats->c[idx]);
}

__u64 e7_c_stat_sum(__u32 idx)
{
	u64 sum = 0;
	int cpu;

	if (idx >= E7_STATS)
		return 0;
	for_each_possible_cpu(cpu)
		sum += per_cpu_ptr(e7_stats, cpu)->c[idx];
	return sum;
}

/* Per-program statistics (issue 12): one 64-byte record per executable-table slot per CPU,
 * allocated once at load. A packet updates only its own CPU's record, with IRQs off on this CPU
 * for the few stores (the hook runs in task context with BH enabled, and a softirq packet on the
 * same CPU, or a migration, must not interleave with the generation check): no lock, no atomic,
 * no cache line another CPU writes. A record counts for one ExeId (generation << 16 | slot): a
 * newer generation of the slot (the slot was reused for another program) starts it from zero,
 * an older one (a cached verdict of a retired program) is not counted, so one program's counts
 * are never shown as another's. Reads sum the records of exactly that id. */
struct e7_prog_stat {
	u64 id;
	u64 packets[2];
	u64 bytes[2];
	unsigned long first; /* jiffies: one load, no clock read (converted when read) */
	unsigned long last;
	u32 info;
	u32 pad;
} __aligned(64);
struct e7_prog_stats {
	struct e7_prog_stat s[E7_PROG_SLOTS];
};
static struct e7_prog_stats __percpu *e7_pstats __read_mostly;

static __always_inline void e7_prog_count(__u64 id, __u32 info, __u32 len)
{
	u32 slot = (u32)(id & 0xffff);
	unsigned int v = info & 1; /* Decision::to_bits: bit 0 = drop */
	struct e7_prog_stat *s;
	unsigned long flags, now;

	if (unlikely(slot >= E7_PROG_SLOTS))
		return;
	now = READ_ONCE(jiffies);
	local_irq_save(flags);
	s = this_cpu_ptr(&e7_pstats->s[slot]);
	if (unlikely(s->id != id)) {
		/* Same slot, so ids order by generation. */
		if (s->id > id)
			goto out;
		memset(s, 0, sizeof(*s));
		s->id = id;
		s->first = now;
	}
	s->packets[v]++;
	s->bytes[v] += len;
	s->last = now;
	s->info = info;
out:
	local_irq_restore(flags);
}

int e7_c_prog_read(__u64 id, struct e7_prog_sum *out)
{
	u32 slot = (u32)(id & 0xffff);
	unsigned long now = READ_ONCE(jiffies), first = 0, last = 0;
	int cpu, any = 0;

	memset(out, 0, sizeof(*out));
	if (slot >= E7_PROG_SLOTS)
		return 0;
	for_each_possible_cpu(cpu) {
		const struct e7_prog_stat *s = &per_cpu_ptr(e7_pstats, cpu)->s[slot];
		struct e7_prog_stat c;

		/* Another CPU may be counting: copy, then keep the copy only if the record still
		 * counts this id (a reset meanwhile drops this CPU's share, never mixes programs). */
		if (READ_ONCE(s->id) != id)
			continue;
		c.packets[0] = READ_ONCE(s->packets[0]);
		c.packets[1] = READ_ONCE(s->packets[1]);
		c.bytes[0] = READ_ONCE(s->bytes[0]);
		c.bytes[1] = READ_ONCE(s->bytes[1]);
		c.first = READ_ONCE(s->first);
		c.last = READ_ONCE(s->last);
		c.info = READ_ONCE(s->info);
		smp_rmb();
		if (READ_ONCE(s->id) != id)
			continue;
		out->packets[0] += c.packets[0];
		out->packets[1] += c.packets[1];
		out->bytes[0] += c.bytes[0];
		out->bytes[1] += c.bytes[1];
		if (!any || time_before(c.first, first))
			first = c.first;
		if (!any || time_after_eq(c.last, last)) {
			last = c.last;
			out->info = c.info;
		}
		any = 1;
	}
	if (any) {
		out->first = jiffies_to_msecs(now - first) / MSEC_PER_SEC;
		out->last = jiffies_to_msecs(now - last) / MSEC_PER_SEC;
	}
	return any;
}

/* Kernel rwlocks stored inline in Rust statics (rust/src/klock.rs) back Rust's
 * lock_api::RawRwLock. Readers run in softirq, writers in process context: always the _bh
 * variants (the original's B4 deadlock). The Rust side reserves E7_RWLOCK_BYTES zeroed bytes per
 * lock, which is an unlocked rwlock_t here (on PREEMPT_RT one initialised on first use, see the
 * compat section): checked by size at build time and by content at load time
 * (e7_check_rwlock_layout), so a kernel with spinlock debugging fails loudly, not subtly. */
_Static_assert(sizeof(struct e7_rwl) <= E7_RWLOCK_BYTES,
	       "the kernel rwlock does not fit the Rust side's E7_RWLOCK_BYTES (spinlock debugging?)");
_Static_assert(__alignof__(struct e7_rwl) <= 8, "rwlock_t alignment");

static int __init e7_check_rwlock_layout(void)
{
	rwlock_t probe = __RW_LOCK_UNLOCKED(probe);

	if (!E7_RWL_LAZY_INIT && memchr_inv(&probe, 0, sizeof(probe))) {
		pr_err("e7: an unlocked rwlock_t is not all zero bytes on this kernel; refusing to load\n");
		return -EINVAL;
	}
	return 0;
}

void e7_c_rwl_read_lock(void *lock)
{
	read_lock_bh(e7_rwl_of(lock));
}

void e7_c_rwl_read_unlock(void *lock)
{
	read_unlock_bh(e7_rwl_of(lock));
}

int e7_c_rwl_read_trylock(void *lock)
{
	rwlock_t *l = e7_rwl_of(lock);

	local_bh_disable();
	if (read_trylock(l))
		return 1;
	local_bh_enable();
	return 0;
}

void e7_c_rwl_write_lock(void *lock)
{
	write_lock_bh(e7_rwl_of(lock));
}

void e7_c_rwl_write_unlock(void *lock)
{
	write_unlock_bh(e7_rwl_of(lock));
}

int e7_c_rwl_write_trylock(void *lock)
{
	rwlock_t *l = e7_rwl_of(lock);

	local_bh_disable();
	if (write_trylock(l))
		return 1;
	local_bh_enable();
	return 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Socket and process facts                                                                    */

/*
 * May this context take task_lock()/files->file_lock? Only process context with bottom halves
 * and interrupts enabled: then no BH-safe lock (a socket's slock, our own _bh rwlocks) can be
 * held, so no "BH-safe lock -> task_lock" order is ever created (see the comment at the top).
 * in_interrupt() covers hardirq, softirq AND local_bh_disable() sections.
 */
static __always_inline bool e7_may_lock_tasks(void)
{
	return !in_interrupt() && !irqs_disabled();
}

__u64 e7_c_sk_cookie(void *skv)
{
	__u32 c[2];

	/* sock_gen_cookie() is inline around the unexported __sock_gen_cookie(); this exported
	 * wrapper returns the same never-reused 64-bit cookie (assigned once, kept when orphaned). */
	sock_diag_save_cookie(skv, c);
	return ((__u64)c[1] << 32) | c[0];
}

/*
 * The socket's struct socket without sk_callback_lock: the hook runs under RCU (nf_hook), and a
 * struct socket lives in a sockfs inode, which is freed only after an RCU grace period; sk_socket
 * and sock->file are read once. This avoids any lock-order question with code that transmits
 * while holding sk_callback_lock. The file pointer is only ever compared, never dereferenced.
 */
static struct socket *e7_sk_socket(struct sock *sk, const void **file)
{
	struct socket *sock = READ_ONCE(sk->sk_socket);

	*file = sock ? READ_ONCE(sock->file) : NULL;
	return sock;
}

/*
 * A file-less TCP socket may carry a user's traffic (issue 7 hole 3): an AF_SMC socket without RDMA
 * or ISM devices falls back to TCP over its internal, kernel-created TCP socket (its `clcsock`), and
 * on the fallback SMC hands that socket the user socket's file (clcsock->file); from then on its
 * owner is found like any user socket's, by that file. Before the fallback nothing marks it reliably
 * (syn_smc is cleared by a SYN-ACK without the SMC option), so no file-less TCP socket's verdict is
 * cached as a kernel socket's: its packets get `unkproc` and are decided again until a file shows up.
 * (Kernel TCP users such as NFS, CIFS or iSCSI pay one uncached decision per packet; file-less UDP
 * sockets -- tunnels, WireGuard -- stay cached kernel sockets.)
 */
static bool e7_sk_may_gain_file(const struct sock *sk)
{
	return sk->sk_type == SOCK_STREAM && sk->sk_protocol == IPPROTO_TCP;
}

void e7_c_sk_info(void *skv, struct e7_sockinfo *out)
{
	struct socket *sock;
	const void *file;

	out->ino = 0;
	out->kind = E7_SOCK_DETACHED;
	out->pad = 0;
	rcu_read_lock();
	sock = e7_sk_socket(skv, &file);
	if (sock) {
		out->ino = SOCK_INODE(sock)->i_ino;
		if (file)
			out->kind = E7_SOCK_USER;
		else if (e7_sk_may_gain_file(skv))
			out->kind = E7_SOCK_DETACHED; /* an owner may show up: not cached */
		else
			out->kind = E7_SOCK_KERNEL;
	}
	rcu_read_unlock();
}

/* Which program image P runs (see struct e7_task_id). Caller holds RCU (group_leader). */
static __always_inline void e7_task_id_of(struct task_struct *p, struct e7_task_id *id)
{
	id->tgid = task_tgid_nr(p);
	id->start_ns = READ_ONCE(p->group_leader->start_boottime);
	id->exec_id = READ_ONCE(p->self_exec_id);
	id->pad = 0;
}

/*
 * The task running the refill work, while it runs: the only caller of e7_exe_of that may sleep
 * (a path lookup may). The hook runs under RCU and must not; it answers -EAGAIN instead when a
 * path needs that lookup, and the refill work verifies it (issue 7 hole 4).
 */
static struct task_struct *e7_refill_task;

static bool e7_may_sleep(void)
{
	return READ_ONCE(e7_refill_task) == current && e7_may_lock_tasks();
}

/* Pid 1 of the initial pid namespace, referenced, or NULL. */
static struct task_struct *e7_get_init_task(void)
{
	struct task_struct *init;

	rcu_read_lock();
	init = pid_task(find_pid_ns(1, &init_pid_ns), PIDTYPE_PID);
	if (init)
		get_task_struct(init);
	rcu_read_unlock();
	return init;
}

/*
 * Without sleeping (hook, task context): is the path d_path gives for EXE the path in the initial
 * mount namespace and root? Yes when the current task's root is pid 1's root and EXE's mount is in
 * the mount tree under that root (a mount of a private mount namespace, and a file reached through
 * a chroot, are not). The roots are copied under the fs lock without references: their dentries and
 * mounts are freed only after an RCU grace period, and we hold RCU throughout. Lock order
 * task_lock -> fs's lock is the kernel's own (chroot_fs_refs); mount_lock (path_is_under) is taken
 * with nothing of ours held.
 */
static bool e7_fast_verified(const struct path *exe)
{
	struct task_struct *init = e7_get_init_task();
	struct fs_struct *fs;
	struct path init_root = {}, cur_root = {};
	bool ok = false;

	if (!init)
		return false;
	rcu_read_lock();
	task_lock(init);
	fs = init->fs;
	if (fs)
		e7_fs_root_peek(fs, &init_root);
	task_unlock(init);
	fs = current->fs; /* current's own fs: only current changes it */
	if (fs)
		e7_fs_root_peek(fs, &cur_root);
	if (init_root.mnt && cur_root.mnt && path_equal(&init_root, &cur_root))
		ok = path_is_under(exe, &init_root);
	rcu_read_unlock();
	put_task_struct(init);
	return ok;
}

/* d_path of F (relative to the current root) moved to the start of BUF, NUL-terminated. */
static int e7_d_path(const struct path *f, char *buf, size_t size, size_t *len)
{
	char *s = d_path(f, buf, size);

	if (IS_ERR(s))
		return PTR_ERR(s);
	*len = strnlen(s, buf + size - s);
	memmove(buf, s, *len);
	buf[*len] = '\0'; /* d_path's NUL was inside BUF, so *len < size */
	return 0;
}

/* Does NAME, looked up from ROOT without following any symbolic link, name the inode of WANT? */
static bool e7_lookup_is(const struct path *root, const char *name, struct dentry *want)
{
	struct path found;
	bool same;

	if (vfs_path_lookup(root->dentry, root->mnt, name,
			    LOOKUP_NO_SYMLINKS | LOOKUP_NO_MAGICLINKS, &found))
		return false;
	same = d_inode(found.dentry) == d_inode(want);
	path_put(&found);
	return same;
}

/*
 * Process context that may sleep (the refill work): verify OUT's path (d_path from the worker's
 * root, in the executable's own mount namespace) from pid 1's root: it must name the very inode
 * that runs, with no symbolic link on the way (so the string is also canonical there). A deleted
 * executable (replaced by an upgrade, or removed) keeps its old path when that path's directory
 * is still the directory it was deleted from. Anything else has no path in the initial mount
 * namespace and root: -EXDEV, the `nspath` flag decides.
 */
static int e7_verify_exe(const struct path *exe, struct e7_exe *out)
{
	static const char deleted[] = " (deleted)";
	const size_t dlen = sizeof(deleted) - 1;
	struct task_struct *init = e7_get_init_task();
	struct path root = {};
	struct dentry *parent;
	char *slash;
	bool ok = false;

	if (!init)
		return -EXDEV;
	task_lock(init);
	if (init->fs)
		get_fs_root(init->fs, &root);
	task_unlock(init);
	put_task_struct(init);
	if (!root.mnt)
		return -EXDEV;
	if (!d_unlinked(exe->dentry)) {
		ok = e7_lookup_is(&root, out->buf, exe->dentry);
	} else if (out->len > dlen && !strcmp(out->buf + out->len - dlen, deleted)) {
		slash = strrchr(out->buf, '/');
		parent = dget_parent(exe->dentry);
		if (slash && slash != out->buf) {
			*slash = '\0';
			ok = e7_lookup_is(&root, out->buf, parent);
			*slash = '/';
		} else if (slash) {
			ok = e7_lookup_is(&root, "/", parent);
		}
		dput(parent);
	}
	path_put(&root);
	return ok ? 0 : -EXDEV;
}

/*
 * Executable path of task P, as the initial mount namespace and root see it: task_lock keeps
 * p->mm stable, mm->exe_file is RCU-protected and pinned with get_file_rcu; d_path runs after
 * task_unlock on the pinned file. No reference is leaked (the original's B6). Process context
 * only. Status -EAGAIN: the path must be verified by the refill work (see e7_fast_verified);
 * -EXDEV: no verified path (see e7_verify_exe).
 */
static int e7_exe_of(struct task_struct *p, struct e7_exe *out)
{
	struct file *exe = NULL;
	size_t len = 0;
	int rc;

	out->len = 0;
	rcu_read_lock(); /* group_leader */
	e7_task_id_of(p, &out->task);
	rcu_read_unlock();
	task_lock(p);
	if (p->mm && !(p->flags & PF_KTHREAD)) {
		rcu_read_lock();
		exe = e7_get_file_rcu(&p->mm->exe_file);
		rcu_read_unlock();
	}
	task_unlock(p);
	if (!exe) {
		out->status = -ENOENT;
		return out->status;
	}
	if (e7_may_sleep()) {
		rc = e7_d_path(&exe->f_path, out->buf, sizeof(out->buf), &len);
		out->len = len;
		if (!rc)
			rc = e7_verify_exe(&exe->f_path, out);
	} else if (e7_fast_verified(&exe->f_path)) {
		rc = e7_d_path(&exe->f_path, out->buf, sizeof(out->buf), &len);
	} else {
		rc = -EAGAIN;
	}
	fput(exe);
	if (rc) {
		/* -ENAMETOOLONG: the `longpath` flag decides; -EXDEV: `nspath`; -EAGAIN: deferred */
		out->len = 0;
		out->status = rc;
		return rc;
	}
	out->len = len;
	out->status = 0;
	return 0;
}

/* The socket's file, only ever compared as an identity. Caller holds RCU. */
static const void *e7_sk_file(struct sock *sk)
{
	const void *file;

	e7_sk_socket(sk, &file);
	return file;
}

/*
 * Lock-free "does current hold SK": in softirq, `current` is the task the softirq interrupted,
 * which cannot run (and so cannot change its files pointer or free its fd table) until we return;
 * the fd table itself is RCU-protected. No files->file_lock, no task_lock: safe in any context.
 * Bounded to E7_RCU_FD_SCAN descriptors. Typical hit: loopback traffic whose receive softirq runs
 * on the sender's stack, e.g. a local listener's SYN-ACK.
 */
int e7_c_current_holds(void *skv, struct e7_task_id *out)
{
	struct files_struct *files;
	struct fdtable *fdt;
	const void *want;
	unsigned int i, n;
	int found = 0;

	if (in_nmi() || in_hardirq() || (current->flags & (PF_KTHREAD | PF_EXITING)))
		return 0;
	rcu_read_lock();
	want = e7_sk_file(skv);
	files = READ_ONCE(current->files);
	if (!want || !files) {
		rcu_read_unlock();
		return 0;
	}
	fdt = files_fdtable(files);
	n = min_t(unsigned int, fdt->max_fds, E7_RCU_FD_SCAN);
	for (i = 0; i < n; i++) {
		if (rcu_access_pointer(fdt->fd[i]) == want) {
			found = 1;
			break;
		}
	}
	if (found)
		e7_task_id_of(current, out);
	rcu_read_unlock();
	return found;
}

/*
 * The task sending a task-context packet: current, if it is a user process. That holds whether
 * or not any fd table holds the socket (an io_uring registered file whose descriptor was closed,
 * a descriptor passed on and closed): the task transmitting is the one that asked to. io_uring's
 * io-wq and SQPOLL workers are PF_IO_WORKER threads of their process (its tgid, group leader and
 * exec generation), not kernel threads. Lock-free (current's own fields), any task context.
 */
int e7_c_current_task(struct e7_task_id *out)
{
	if (!in_task() || (current->flags & (PF_KTHREAD | PF_EXITING)) || !current->mm)
		return 0;
	rcu_read_lock(); /* group_leader */
	e7_task_id_of(current, out);
	rcu_read_unlock();
	return 1;
}

/* Task context with task locks allowed: the executable of current (the sender, see above). */
int e7_c_current_exe(struct e7_exe *out)
{
	out->status = -ESRCH;
	out->len = 0;
	out->task.tgid = 0;
	if (!e7_may_lock_tasks() || (current->flags & (PF_KTHREAD | PF_EXITING)))
		return -ESRCH;
	return e7_exe_of(current, out);
}

int e7_c_task_exe(__u32 tgid, struct e7_exe *out)
{
	struct task_struct *leader, *t, *p = NULL;
	struct pid *pid;
	int rc;

	out->status = -ESRCH;
	out->len = 0;
	out->task.tgid = tgid;
	if (!e7_may_lock_tasks())
		return -EPERM;
	rcu_read_lock();
	pid = find_pid_ns(tgid, &init_pid_ns);
	leader = pid ? pid_task(pid, PIDTYPE_TGID) : NULL;
	if (leader) {
		/* A leader that called pthread_exit has no mm: use a live thread of the group. */
		for_each_thread(leader, t) {
			if (!(t->flags & PF_EXITING)) {
				p = t;
				break;
			}
		}
		if (!p)
			p = leader;
		get_task_struct(p);
	}
	rcu_read_unlock();
	if (!p)
		return -ESRCH;
	rc = e7_exe_of(p, out);
	put_task_struct(p);
	return rc;
}

/*
 * The process walk, one bounded chunk per call (see README.md "Identification"): the pairs
 * (socket inode, owner tgid) from position *POS on, into OUT (at most MAX), visiting at most
 * E7_WALK_TASKS process ids and E7_WALK_FILES descriptors. The Rust side calls it with NO module
 * lock held and merges each chunk under a short lock afterwards, so nothing here runs with bottom
 * halves off, and it reschedules between processes.
 *
 * Why resume by numbers: between chunks (and between processes) nothing is held — no RCU read
 * side, no task reference — so the position cannot be a task pointer, which may be freed
 * meanwhile. Like /proc's own readdir (next_tgid() in fs/proc/base.c), the position is a process
 * id in the initial pid namespace, found again with find_ge_pid() under RCU, plus a descriptor
 * number within that process; the task is pinned with get_task_struct() before RCU is left.
 * A process created behind the position during a cycle is seen by the next cycle.
 *
 * Per process: task_lock keeps p->files stable and iterate_fd holds files->file_lock (both taken
 * by process context without disabling BH, never from softirq); the callback stops once the chunk
 * is full or E7_WALK_FILES descriptors were visited, and the position records the descriptor to
 * resume at. A process whose group leader has exited (pthread_exit) is walked through one of its
 * live threads. Kernel threads are skipped.
 *
 * Context: preemptible process context only. Refused (-EPERM, nothing written) in interrupt or
 * softirq context, with IRQs or BH off, in an atomic section, or inside an RCU read-side section
 * (the netfilter hook runs under rcu_read_lock) — so the hook can never walk.
 */
struct e7_collect {
	struct e7_sock_owner *out;
	__u32 max;
	__u32 n;
	__u32 files;
	__u32 tgid;
	unsigned int stop_fd;
};

static int e7_collect_fd(const void *v, struct file *f, unsigned int fd)
{
	struct e7_collect *c = (struct e7_collect *)v;
	struct inode *inode;

	if (c->n >= c->max || c->files >= E7_WALK_FILES) {
		c->stop_fd = fd; /* resume here */
		return 1;
	}
	c->files++;
	inode = file_inode(f);
	if (S_ISSOCK(inode->i_mode)) {
		c->out[c->n].ino = inode->i_ino;
		c->out[c->n].tgid = c->tgid;
		c->n++;
	}
	return 0;
}

/* A thread of the group LEADER (itself if it is not exiting) whose files can be walked, pinned;
 * NULL for kernel threads. Caller holds RCU. */
static struct task_struct *e7_walk_task(struct task_struct *leader)
{
	struct task_struct *t, *p = NULL;

	if (leader->flags & PF_KTHREAD)
		return NULL;
	for_each_thread(leader, t) {
		if (!(t->flags & PF_EXITING) && READ_ONCE(t->files)) {
			p = t;
			break;
		}
	}
	if (p)
		get_task_struct(p);
	return p;
}

int e7_c_collect_sockets(struct e7_walk_pos *pos, struct e7_sock_owner *out, __u32 max)
{
	struct e7_collect c = { .out = out, .max = max };
	unsigned int tasks = 0;

	if (!in_task() || irqs_disabled() || in_atomic() || rcu_preempt_depth())
		return -EPERM;
	might_sleep();
	pos->done = 0;
	while (c.n < c.max && c.files < E7_WALK_FILES && tasks < E7_WALK_TASKS) {
		struct task_struct *leader, *p = NULL;
		struct pid *pid;
		int res = 0;
		__u32 nr;

		rcu_read_lock();
		pid = find_ge_pid(pos->tgid, &init_pid_ns);
		if (!pid) {
			rcu_read_unlock();
			pos->done = 1;
			break;
		}
		nr = pid_nr(pid);
		if (nr != pos->tgid)
			pos->fd = 0; /* a new process: from its first descriptor */
		pos->tgid = nr;
		leader = pid_task(pid, PIDTYPE_TGID); /* NULL for a thread's own pid */
		if (leader)
			p = e7_walk_task(leader);
		rcu_read_unlock();
		tasks++;
		if (p) {
			c.tgid = nr;
			task_lock(p);
			if (p->files)
				res = iterate_fd(p->files, pos->fd, e7_collect_fd, &c);
			task_unlock(p);
			put_task_struct(p);
			if (res) {
				pos->fd = c.stop_fd; /* chunk full inside this process */
				break;
			}
		}
		if (nr == U32_MAX || nr >= (__u32)PID_MAX_LIMIT) {
			pos->done = 1;
			break;
		}
		pos->tgid = nr + 1;
		pos->fd = 0;
		cond_resched();
	}
	return c.n;
}

/* ------------------------------------------------------------------------------------------ */
/* Work items                                                                                  */

static struct workqueue_struct *e7_wq;
static void e7_event_work_fn(struct work_struct *work);
static void e7_refill_work_fn(struct work_struct *work);
static DECLARE_WORK(e7_event_work, e7_event_work_fn);
static DECLARE_DELAYED_WORK(e7_refill_work, e7_refill_work_fn);

static void e7_event_work_fn(struct work_struct *work)
{
	e7_work_events();
}

static void e7_refill_work_fn(struct work_struct *work)
{
	WRITE_ONCE(e7_refill_task, current);
	e7_work_refill();
	WRITE_ONCE(e7_refill_task, NULL);
}

void e7_c_kick_events(void)
{
	struct workqueue_struct *wq = READ_ONCE(e7_wq);

	if (wq)
		queue_work(wq, &e7_event_work);
}

void e7_c_kick_refill(__u32 delay_ms)
{
	struct workqueue_struct *wq = READ_ONCE(e7_wq);

	if (wq)
		queue_delayed_work(wq, &e7_refill_work, msecs_to_jiffies(delay_ms));
}

/* ------------------------------------------------------------------------------------------ */
/* Generic netlink                                                                             */

static struct genl_family e7_family;

/*
 * Attribute room of one message. QUERY: NLMSG_GOODSIZE including the netlink and genl headers, so
 * the skb is exactly one page and a message never exceeds what a reader with a page-sized buffer
 * can take (genlmsg_new(NLMSG_GOODSIZE) would round up to an 8 KiB allocation and let a chain
 * grow past 4 KiB). Everything else (EVENT, ERROR, GET, DISCONNECT) is at most a 255-byte string
 * plus two u32 attributes: a small skb instead of a page per event.
 */
#define E7_MSG_QUERY_ROOM (NLMSG_GOODSIZE - NLMSG_HDRLEN - GENL_HDRLEN)
#define E7_MSG_SMALL_ROOM 512

void *e7_c_msg_new(__u8 cmd, const struct e7_dest *dest, __u8 **buf, __u32 *room)
{
	size_t want = cmd == ENL_COMM_QUERY ? E7_MSG_QUERY_ROOM : E7_MSG_SMALL_ROOM;
	struct sk_buff *skb;
	void *hdr;

	*buf = NULL;
	*room = 0;
	skb = genlmsg_new(want, GFP_KERNEL);
	if (!skb)
		return NULL;
	/* Replies carry the request's port and sequence; events and DISCONNECT carry 0/0 like
	 * the original. */
	hdr = genlmsg_put(skb, dest->portid, dest->seq, &e7_family, 0, cmd);
	if (!hdr) {
		nlmsg_free(skb);
		return NULL;
	}
	*buf = skb_tail_pointer(skb);
	*room = min_t(size_t, skb_tailroom(skb), want);
	/* Rust writes through a &mut [u8] over this area, which must not cover uninitialised
	 * bytes. */
	memset(*buf, 0, *room);
	return skb;
}

int e7_c_msg_send(void *msg, __u32 used, __u32 portid)
{
	struct sk_buff *skb = msg;

	if (used > skb_tailroom(skb)) {
		nlmsg_free(skb);
		return -EMSGSIZE;
	}
	skb_put(skb, used);
	nlmsg_end(skb, (struct nlmsghdr *)skb->data);
	return genlmsg_unicast(&init_net, skb, portid); /* consumes skb */
}

void e7_c_msg_free(void *msg)
{
	nlmsg_free(msg);
}

/*
 * Both QUERY dumps resume by position, so a rule edit between two messages could skip or repeat
 * rules. Every call records the rule-table generation its message was built from; the first is
 * kept in cb->args[E7_CB_GEN0]. Once any call sees another generation the dump is marked
 * (cb->args[E7_CB_CHANGED]) and cb->seq differs from cb->prev_seq at every later check, so that
 * message, every later one AND the final NLMSG_DONE carry NLM_F_DUMP_INTR (the kernel checks the
 * DONE too). cb->seq is set on every call, the final empty one included: the DONE compared a
 * stale value before, and a dump cut short by an edit just before its end was not flagged.
 * An undisturbed dump keeps cb->seq at 1 and is never flagged (prev_seq 0 = first message).
 */
#define E7_CB_GEN0 2
#define E7_CB_CHANGED 3

static void e7_dump_seq(struct netlink_callback *cb, __u32 gen)
{
	if (!cb->args[E7_CB_GEN0])
		cb->args[E7_CB_GEN0] = (1ULL << 32) | gen;
	else if ((__u32)cb->args[E7_CB_GEN0] != gen)
		cb->args[E7_CB_CHANGED] = 1;
	cb->seq = cb->args[E7_CB_CHANGED] ? (cb->prev_seq + 2) | 1 : 1;
}

typedef int (*e7_dump_fill)(__u8 *buf, __u32 room, __u64 *cursor, __u32 *generation);

/* One QUERY message of a dump; MAX_ROOM bounds the attribute area. */
static int e7_dump_one(struct sk_buff *skb, struct netlink_callback *cb, e7_dump_fill fill,
		       size_t max_room)
{
	__u32 gen = 0;
	size_t room;
	void *hdr;
	int n;

	BUILD_BUG_ON(sizeof(cb->args[0]) != sizeof(__u64));
	BUILD_BUG_ON(ARRAY_SIZE(cb->args) <= E7_CB_CHANGED);
	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq, &e7_family,
			  NLM_F_MULTI, ENL_COMM_QUERY);
	if (!hdr)
		return -EMSGSIZE;
	room = min_t(size_t, skb_tailroom(skb), max_room);
	/* Initialised memory for Rust's &mut [u8]. */
	memset(skb_tail_pointer(skb), 0, room);
	n = fill(skb_tail_pointer(skb), room, (__u64 *)&cb->args[0], &gen);
	e7_dump_seq(cb, gen);
	if (n <= 0) {
		genlmsg_cancel(skb, hdr);
		return n;
	}
	skb_put(skb, n);
	genl_dump_check_consistent(cb, hdr);
	genlmsg_end(skb, hdr);
	return skb->len;
}

/* NLM_F_DUMP QUERY (the e7 CLI): the flat shape, under genl_mutex (genl_lock_dumpit). */
static int e7_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	return e7_dump_one(skb, cb, e7_genl_dump_query, SIZE_MAX);
}

/* STATS (e7 stats, e7 top): who may read is decided once, when the dump starts (an error ack
 * for a refused client instead of an empty dump); messages carry ENL_COMM_STATS. */
static int e7_stats_start(struct netlink_callback *cb)
{
	return e7_genl_stats_permitted(netlink_capable(cb->skb, CAP_NET_ADMIN));
}

static int e7_stats_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	size_t room;
	void *hdr;
	int n;

	hdr = genlmsg_put(skb, NETLINK_CB(cb->skb).portid, cb->nlh->nlmsg_seq, &e7_family,
			  NLM_F_MULTI, ENL_COMM_STATS);
	if (!hdr)
		return -EMSGSIZE;
	room = skb_tailroom(skb);
	memset(skb_tail_pointer(skb), 0, room);
	n = e7_genl_dump_stats(skb_tail_pointer(skb), room, (__u64 *)&cb->args[0]);
	if (n <= 0) {
		genlmsg_cancel(skb, hdr);
		return n;
	}
	skb_put(skb, n);
	genlmsg_end(skb, hdr);
	return skb->len;
}

/* Plain QUERY (the original console): the chain shape, page-sized messages, started by e7_doit
 * and continued from the reader's recvmsg; runs without genl_mutex (Rust takes its own locks). */
static int e7_chain_dumpit(struct sk_buff *skb, struct netlink_callback *cb)
{
	return e7_dump_one(skb, cb, e7_genl_chain_query, E7_MSG_QUERY_ROOM);
}

/*
 * The reply to a plain QUERY as a netlink dump: the kernel builds the next message only when the
 * reader has drained its receive buffer to half, so a full table (16 messages) reaches any client
 * whose buffer holds one message. Sending them all at once overflowed libnl's default buffer: the
 * last messages and the ack were dropped (ENOBUFS) and the console listed 962 of 1024 rules.
 * A dump ends with NLMSG_DONE instead of an ack (libnl treats it as the end of the reply).
 */
static int e7_start_query_chain(struct sk_buff *skb, struct genl_info *info)
{
	struct netlink_dump_control c = {
		.dump = e7_chain_dumpit,
		.module = THIS_MODULE,
	};
	int rc;

	/* As the genl core does for NLM_F_DUMP: a running dump's continuation holds the reader's
	 * cb_mutex and takes genl_mutex (genl_lock_dumpit); starting one takes that cb_mutex, so
	 * genl_mutex must not be held here (ABBA otherwise). */
	genl_unlock();
	rc = netlink_dump_start(genl_info_net(info)->genl_sock, skb, info->nlhdr, &c);
	genl_lock();
	return rc; /* -EINTR: started, the genl core sends no ack */
}

static int e7_sync_hooks(void); /* netfilter section: hooks follow the mode */

static int e7_doit(struct sk_buff *skb, struct genl_info *info)
{
	struct e7_dest dest = { .portid = info->snd_portid, .seq = info->snd_seq };
	const char *msg = NULL;
	int rc;

	rc = e7_genl_doit(info->genlhdr->cmd, genlmsg_data(info->genlhdr),
			  genlmsg_len(info->genlhdr), &dest, netlink_capable(skb, CAP_NET_ADMIN),
			  &msg);
	/* NL_SET_ERR_MSG() only takes literals; MSG is a static, NUL-terminated Rust string,
	 * which is what that macro stores too. */
	if (msg && info->extack)
		info->extack->_msg = msg;
	if (rc == E7_DOIT_QUERY_CHAIN)
		return e7_start_query_chain(skb, info);
	/* The request may have changed the mode: hooks follow before the ack (see e7_sync_hooks). */
	if (e7_sync_hooks()) {
		if (info->extack)
			info->extack->_msg = "e7: cannot register the netfilter hooks; mode is disabled";
		return rc ? rc : -ENOMEM;
	}
	return rc;
}

/*
 * NETLINK_URELEASE: a netlink socket was released (closed, or its process died). A subscriber's
 * port then names nobody, and the next socket may autobind the same number (a daemon restarted
 * with the same pid): forget it now, not at the next failed unicast (S10). Process context
 * (blocking notifier chain); the Rust side takes the subscriber lock only if anyone subscribed.
 * Limitation: netlink_release unhashes the port just before the chain runs, so a new socket that
 * binds that very port AND subscribes within that window is removed too (it is re-added by its
 * next admin command or SUBSCRIBE).
 */
static int e7_netlink_event(struct notifier_block *nb, unsigned long event, void *ptr)
{
	const struct netlink_notify *n = ptr;

	if (event == NETLINK_URELEASE && n->protocol == NETLINK_GENERIC &&
	    net_eq(n->net, &init_net) && n->portid)
		e7_rust_port_released(n->portid);
	return NOTIFY_DONE;
}

static struct notifier_block e7_netlink_nb = {
	.notifier_call = e7_netlink_event,
};

static const struct nla_policy e7_policy[E7_ATTR_MAX + 1] = { E7_POLICY_INIT };

/* GENL_ADMIN_PERM (CAP_NET_ADMIN) on exactly the commands the schema marks admin. */
#define E7_OP(c) { .cmd = c, .doit = e7_doit, .flags = c##_GENL_FLAGS }

static const struct genl_small_ops e7_ops[] = {
	E7_OP(ENL_COMM_ERROR),
	E7_OP(ENL_COMM_DISCONNECT),
	E7_OP(ENL_COMM_BLOCK),
	E7_OP(ENL_COMM_ALLOW),
	E7_OP(ENL_COMM_ENABLE),
	E7_OP(ENL_COMM_CLEAR),
	{ .cmd = ENL_COMM_QUERY, .doit = e7_doit, .dumpit = e7_dumpit,
	  .flags = ENL_COMM_QUERY_GENL_FLAGS },
	E7_OP(ENL_COMM_EVENT),
	E7_OP(ENL_COMM_SET),
	E7_OP(ENL_COMM_GET),
	E7_OP(ENL_COMM_SUBSCRIBE),
};

/* STATS needs a dump .start (the permission check), which genl_small_ops lacks. A plain STATS
 * request reaches e7_doit, which refuses it. */
static const struct genl_ops e7_full_ops[] = {
	{ .cmd = ENL_COMM_STATS, .doit = e7_doit, .start = e7_stats_start,
	  .dumpit = e7_stats_dumpit, .flags = ENL_COMM_STATS_GENL_FLAGS },
};

static struct genl_family e7_family __ro_after_init = {
	.name = E7_FAMILY_NAME,
	.version = E7_FAMILY_VERSION,
	.hdrsize = 0,
	.maxattr = E7_ATTR_MAX,
	.policy = e7_policy,
	.netnsok = false,
	.module = THIS_MODULE,
	.small_ops = e7_ops,
	.n_small_ops = ARRAY_SIZE(e7_ops),
	.ops = e7_full_ops,
	.n_ops = ARRAY_SIZE(e7_full_ops),
};

/* ------------------------------------------------------------------------------------------ */
/* Netfilter: LOCAL_OUT for IPv4 and IPv6 in every network namespace                           */

/* ---- Routes: IPv6 routing headers, IPv4 source routes ------------------------------------- */

/* A packet may name a route: an unprivileged socket may set an IPv6 segment routing header
 * (IPV6_RTHDR, type 4; type 2 with CONFIG_IPV6_MIP6) or an IPv4 loose/strict source route
 * (IP_OPTIONS, LSRR/SSRR). The IP destination is then only the first hop; the final destination
 * and every other hop are in the header. e7_l4_proto flags such a packet (E7_PEER_ROUTED) and Rust
 * asks for each address with e7_c_pkt_route, deciding the packet for every one of them. */

/* Extension headers e7_route6 walks at most (a socket adds at most four: hop-by-hop, destination
 * options, routing header, destination options); a longer chain is unreadable. */
#define E7_EXTHDR_MAX 16

/* IPv4: the INDEX-th address slot of the loose or strict source route options of SKB into OUT (4
 * bytes). 1, 0 (fewer), -EINVAL (malformed options). Walks at most the header's 40 option bytes;
 * other options (record route, timestamp, router alert, ...) name no route and are skipped. */
static int e7_route4(const struct sk_buff *skb, unsigned int index, u8 *out)
{
	u8 _opts[MAX_IPOPTLEN];
	const struct iphdr *iph;
	struct iphdr _iph;
	const u8 *opts;
	unsigned int len, i = 0, n = 0;

	iph = skb_header_pointer(skb, skb_network_offset(skb), sizeof(_iph), &_iph);
	if (!iph)
		return -EINVAL;
	if (iph->ihl <= 5)
		return 0;
	len = iph->ihl * 4 - sizeof(struct iphdr);
	opts = skb_header_pointer(skb, skb_network_offset(skb) + sizeof(struct iphdr), len, _opts);
	if (!opts)
		return -EINVAL;
	while (i < len) {
		unsigned int olen;

		if (opts[i] == IPOPT_END)
			break;
		if (opts[i] == IPOPT_NOOP) {
			i++;
			continue;
		}
		if (len - i < 2)
			return -EINVAL;
		olen = opts[i + 1];
		if (olen < 2 || olen > len - i)
			return -EINVAL;
		if (opts[i] == IPOPT_LSRR || opts[i] == IPOPT_SSRR) {
			/* type, length, pointer, then 4-byte addresses up to the option's length */
			unsigned int slots = olen >= 3 ? (olen - 3) / 4 : 0;

			if (index - n < slots) {
				memcpy(out, opts + i + 3 + 4 * (index - n), 4);
				return 1;
			}
			n += slots;
		}
		i += olen;
	}
	return 0;
}

/* IPv6: the INDEX-th address the routing headers in SKB's extension chain name into OUT (16 bytes):
 * every address of a type 0 or 2 header, segments 0..first_segment of a type 4 one (segment 0 is
 * the final destination: ipv6_push_rthdr4), never beyond the header's own length (at most 2,048
 * bytes: 127 addresses). 1, 0 (fewer), -EINVAL (unreadable: truncated, another routing type, more
 * than E7_EXTHDR_MAX extension headers). */
static int e7_route6(const struct sk_buff *skb, unsigned int index, u8 *out)
{
	unsigned int off = skb_network_offset(skb) + sizeof(struct ipv6hdr);
	const struct ipv6hdr *ip6h;
	struct ipv6hdr _ip6h;
	unsigned int n = 0, hops;
	u8 nexthdr;

	ip6h = skb_header_pointer(skb, skb_network_offset(skb), sizeof(_ip6h), &_ip6h);
	if (!ip6h)
		return -EINVAL;
	nexthdr = ip6h->nexthdr;
	for (hops = 0; hops < E7_EXTHDR_MAX; hops++) {
		const struct ipv6_opt_hdr *hp;
		struct ipv6_opt_hdr _hp;
		unsigned int cnt;

		if (nexthdr == NEXTHDR_FRAGMENT) {
			const struct frag_hdr *fh;
			struct frag_hdr _fh;

			fh = skb_header_pointer(skb, off, sizeof(_fh), &_fh);
			if (!fh)
				return -EINVAL;
			/* A non-first fragment carries no further header. */
			if (fh->frag_off & htons(IP6_OFFSET))
				return 0;
			nexthdr = fh->nexthdr;
			off += sizeof(_fh);
			continue;
		}
		if (nexthdr != NEXTHDR_HOP && nexthdr != NEXTHDR_ROUTING && nexthdr != NEXTHDR_DEST &&
		    nexthdr != NEXTHDR_AUTH)
			return 0; /* the upper-layer header (or none, or ESP): the chain ends */
		hp = skb_header_pointer(skb, off, sizeof(_hp), &_hp);
		if (!hp)
			return -EINVAL;
		if (nexthdr == NEXTHDR_ROUTING) {
			const struct ipv6_sr_hdr *rh;
			struct ipv6_sr_hdr _rh;

			rh = skb_header_pointer(skb, off, sizeof(_rh), &_rh);
			if (!rh)
				return -EINVAL;
			switch (rh->type) {
			case IPV6_SRCRT_TYPE_0:
			case IPV6_SRCRT_TYPE_2:
				cnt = rh->hdrlen / 2;
				break;
			case IPV6_SRCRT_TYPE_4:
				cnt = min_t(unsigned int, rh->first_segment + 1u, rh->hdrlen / 2);
				break;
			default:
				return -EINVAL;
			}
			if (index - n < cnt)
				return skb_copy_bits(skb, off + 8 + 16 * (index - n), out, 16) ? -EINVAL : 1;
			n += cnt;
		}
		off += nexthdr == NEXTHDR_AUTH ? ipv6_authlen(hp) : ipv6_optlen(hp);
		nexthdr = hp->nexthdr;
	}
	return -EINVAL;
}

int e7_c_pkt_route(void *skbv, __u8 family, __u32 index, __u8 *out)
{
	struct sk_buff *skb = skbv;

	if (!skb || !out)
		return -EINVAL;
	return family == 6 ? e7_route6(skb, index, out) : e7_route4(skb, index, out);
}

/* Whether SKB names a route (or one e7_c_pkt_route cannot read: decided as malformed), for
 * e7_l4_proto: only packets with IPv4 options or IPv6 extension headers are walked. */
static noinline bool e7_routed(const struct sk_buff *skb, u8 pf)
{
	u8 first[16];

	return (pf == NFPROTO_IPV4 ? e7_route4(skb, 0, first) : e7_route6(skb, 0, first)) != 0;
}

/* The L4 protocol; with PEER (only while a rule depends on the destination) also the destination
 * address into peer->daddr and the transport header's offset into *l4off (-1: a non-first
 * fragment, which has no transport header). The address is the IP header's, for a routed packet
 * (see e7_routed) only its first hop: it is then flagged E7_PEER_ROUTED. */
static __always_inline bool e7_l4_proto(struct sk_buff *skb, u8 pf, __u32 *proto,
					struct e7_peer *peer, int *l4off)
{
	if (pf == NFPROTO_IPV4) {
		struct iphdr _iph;
		const struct iphdr *iph;

		iph = skb_header_pointer(skb, skb_network_offset(skb), sizeof(_iph), &_iph);
		if (!iph)
			return false;
		*proto = iph->protocol;
		if (peer) {
			memcpy(peer->daddr, &iph->daddr, 4);
			*l4off = (iph->frag_off & htons(IP_OFFSET)) ? -1 :
				 skb_network_offset(skb) + iph->ihl * 4;
			if (iph->ihl > 5 && e7_routed(skb, pf))
				peer->flags |= E7_PEER_ROUTED;
		}
		return true;
	} else {
		struct ipv6hdr _ip6h;
		const struct ipv6hdr *ip6h;
		__be16 frag_off;
		u8 nexthdr;
		int off;

		ip6h = skb_header_pointer(skb, skb_network_offset(skb), sizeof(_ip6h), &_ip6h);
		if (!ip6h)
			return false;
		nexthdr = ip6h->nexthdr;
		if (peer)
			memcpy(peer->daddr, &ip6h->daddr, 16);
		off = ipv6_skip_exthdr(skb, skb_network_offset(skb) + sizeof(_ip6h), &nexthdr,
				       &frag_off);
		if (off < 0)
			return false;
		*proto = nexthdr;
		if (peer) {
			*l4off = (frag_off & htons(IP6_OFFSET)) ? -1 : off;
			if (ipv6_ext_hdr(ip6h->nexthdr) && e7_routed(skb, pf))
				peer->flags |= E7_PEER_ROUTED;
		}
		return true;
	}
}

static __always_inline bool e7_has_ports(__u32 proto)
{
	return proto == IPPROTO_TCP || proto == IPPROTO_UDP || proto == IPPROTO_UDPLITE ||
	       proto == IPPROTO_SCTP;
}

/* The destination port (bytes 2-3 of a tcp, udp, udplite or sctp header at L4OFF) into
 * peer->dport (E7_PEER_PORT); nothing when there is none. */
static __always_inline void e7_peer_port(struct sk_buff *skb, __u32 proto, int l4off,
					 struct e7_peer *peer)
{
	__be16 _ports[2];
	const __be16 *ports;

	if (!e7_has_ports(proto) || l4off < 0)
		return;
	ports = skb_header_pointer(skb, l4off, sizeof(_ports), _ports);
	if (!ports)
		return;
	peer->dport = ntohs(ports[1]);
	peer->flags |= E7_PEER_PORT;
}

int e7_c_pkt_dest(void *skbv, __u8 family, struct e7_peer *out)
{
	struct sk_buff *skb = skbv;
	int l4off = -1;
	__u32 proto;

	memset(out, 0, sizeof(*out));
	if (!skb || !e7_l4_proto(skb, family == 6 ? NFPROTO_IPV6 : NFPROTO_IPV4, &proto, out, &l4off))
		return -EINVAL;
	e7_peer_port(skb, proto, l4off, out);
	return 0;
}

/* The mode flag's value inside the Rust state (e7_rust_mode_word), set before the hooks exist. */
static const __u32 *e7_mode_word __read_mostly;
/* Rust's "some rule depends on the destination" byte (e7_rust_peer_word), set before the hooks. */
static const __u8 *e7_peer_word __read_mostly;

/* The socket's cookie without a call once it has one (every socket e7 saw before: the hit path).
 * sk_cookie is an atomic64_t set once, from 0, by __sock_gen_cookie (6.1 through 7.x); the first
 * time, the exported sock_diag_save_cookie assigns it. */
static __always_inline __u64 e7_sk_cookie_fast(struct sock *sk)
{
	__u64 c = atomic64_read(&sk->sk_cookie);

	return c ? c : e7_c_sk_cookie(sk);
}

/* Everything after the mode check (instantiated twice below, out of line: the disabled path then
 * sets up no stack frame, no stack protector, no e7_pkt to zero). The facts a cached hit needs
 * (cookie, sender, uid) are gathered here inline, so Rust's hit path calls nothing back. PEER
 * (zeroed, or a constant NULL): also the destination, for while a rule depends on it; with NULL the
 * compiler drops every trace of it. */
static __always_inline unsigned int e7_decide(struct sk_buff *skb,
					      const struct nf_hook_state *state,
					      struct e7_peer *peer)
{
	struct e7_pkt pkt = { .family = state->pf == NFPROTO_IPV6 ? 6 : 4 };
	int l4off = -1;
	struct sock *sk;
	__u64 r;

	/* `qpackets`, on this CPU (Rust's Kernel::stat_inc knows the hook counts it). */
	this_cpu_inc(e7_stats->c[E7_STAT_PACKETS]);
	if (!e7_l4_proto(skb, state->pf, &pkt.proto, peer, peer ? &l4off : NULL))
		pkt.flags |= E7_PKT_MALFORMED;
	/* Not in_task(): a process-context transmit with BH disabled (tcp_release_cb under the
	 * socket's slock) must not take task locks either; it gets the softirq path. */
	if (e7_may_lock_tasks()) {
		pkt.flags |= E7_PKT_IN_TASK;
		/* The sender (e7_c_current_task's answer, inline): the hook runs under nf_hook's
		 * rcu_read_lock, which covers group_leader. */
		if (!(current->flags & (PF_KTHREAD | PF_EXITING)) && current->mm) {
			e7_task_id_of(current, &pkt.sender);
			pkt.flags |= E7_PKT_SENDER;
		}
	}
	/* S1: no full socket for NULL (syncookie SYN-ACK, kernel RST) or time-wait sockets; a
	 * request socket maps to its listener. */
	sk = skb_to_full_sk(skb);
	if (sk && sk_fullsock(sk)) {
		kuid_t kuid = READ_ONCE(sk->sk_uid);

		pkt.sk = sk;
		pkt.cookie = e7_sk_cookie_fast(sk);
		/* from_kuid_munged(&init_user_ns, kuid) without the call: the initial namespace's map
		 * is the identity on every valid kuid; an invalid one is munged to overflowuid. */
		pkt.uid = uid_valid(kuid) ? __kuid_val(kuid) : overflowuid;
	}
	/* The packet's destination (peer->daddr, set above) and port: the verdict e7 caches on the
	 * socket is tagged with them, so only packets to the same destination reuse it. */
	if (peer && !(pkt.flags & E7_PKT_MALFORMED)) {
		e7_peer_port(skb, pkt.proto, l4off, peer);
		r = e7_hook(&pkt, peer, skb);
	} else {
		r = e7_hook(&pkt, NULL, skb);
	}
	if (r & E7_HOOK_CACHED)
		this_cpu_inc(e7_stats->c[E7_STAT_HITS]);
	/* The program's per-program counters, on this CPU (INFO: bit 0 = drop, the reason, the
	 * protocol). */
	if (r >> E7_HOOK_EXE_SHIFT)
		e7_prog_count(r >> E7_HOOK_EXE_SHIFT,
			      (r & E7_HOOK_REASON) | !(r & E7_HOOK_ACCEPT) | (pkt.proto << 8), skb->len);
	return (r & E7_HOOK_ACCEPT) ? NF_ACCEPT : NF_DROP;
}

static noinline unsigned int e7_nf_decide(struct sk_buff *skb, const struct nf_hook_state *state)
{
	return e7_decide(skb, state, NULL);
}

/* While a rule depends on the destination or port. */
static noinline unsigned int e7_nf_decide_peer(struct sk_buff *skb,
					       const struct nf_hook_state *state)
{
	struct e7_peer peer = { 0 };

	return e7_decide(skb, state, &peer);
}

static unsigned int e7_nf_hook(void *priv, struct sk_buff *skb, const struct nf_hook_state *state)
{
	/* Mode first: `mode disabled` costs this load and nothing else. The value is Rust's own
	 * flag (no copy that could lag a SET): `set mode enabled` applies to the very next packet. */
	if (READ_ONCE(*e7_mode_word) == E7C_DISABLED)
		return NF_ACCEPT;
	/* The destination only while a rule depends on it (one more load otherwise). */
	if (unlikely(READ_ONCE(*e7_peer_word)))
		return e7_nf_decide_peer(skb, state);
	return e7_nf_decide(skb, state);
}

static const struct nf_hook_ops e7_nf_ops[] = {
	{
		.hook = e7_nf_hook,
		.pf = NFPROTO_IPV4,
		.hooknum = NF_INET_LOCAL_OUT,
		.priority = NF_IP_PRI_FILTER,
	},
	{
		.hook = e7_nf_hook,
		.pf = NFPROTO_IPV6,
		.hooknum = NF_INET_LOCAL_OUT,
		.priority = NF_IP6_PRI_FILTER,
	},
};

static int __net_init e7_net_init(struct net *net)
{
	return nf_register_net_hooks(net, e7_nf_ops, ARRAY_SIZE(e7_nf_ops));
}

static void __net_exit e7_net_exit(struct net *net)
{
	nf_unregister_net_hooks(net, e7_nf_ops, ARRAY_SIZE(e7_nf_ops));
}

static struct pernet_operations e7_net_ops = {
	.init = e7_net_init,
	.exit = e7_net_exit,
};

/*
 * The hooks are registered only while the mode is not `disabled`: a disabled firewall then costs
 * the packet path nothing at all (a registered hook, even one that returns at once, costs every
 * packet netfilter's dispatch). e7_sync_hooks() makes the registration follow the mode; it runs
 * at load and after every request (e7_doit, process context, genl_mutex held: mode changes come
 * only from requests, which genl_mutex serialises), so `set mode enabled` is acknowledged only
 * once the hooks are in every namespace: no window in which enforcing is silently off. Until
 * then (and while they are being removed) the hook's own mode check decides as before. If the
 * hooks cannot be registered the mode is put back to `disabled` (what the kernel really does)
 * and the request fails. e7_hooks_shutdown() removes them for good (unload, failed load).
 */
static DEFINE_MUTEX(e7_hooks_mutex);
static bool e7_hooks_on;
static bool e7_hooks_final;

static int e7_sync_hooks(void)
{
	int rc = 0;

	mutex_lock(&e7_hooks_mutex);
	if (!e7_hooks_final) {
		bool want = READ_ONCE(*e7_mode_word) != E7C_DISABLED;

		if (want && !e7_hooks_on) {
			rc = register_pernet_subsys(&e7_net_ops);
			if (rc) {
				pr_err("e7: cannot register netfilter hooks: %d; mode set to disabled\n", rc);
				e7_rust_mode_failsafe();
			} else {
				e7_hooks_on = true;
			}
		} else if (!want && e7_hooks_on) {
			unregister_pernet_subsys(&e7_net_ops);
			e7_hooks_on = false;
		}
	}
	mutex_unlock(&e7_hooks_mutex);
	return rc;
}

static void e7_hooks_shutdown(void)
{
	mutex_lock(&e7_hooks_mutex);
	e7_hooks_final = true;
	if (e7_hooks_on)
		unregister_pernet_subsys(&e7_net_ops); /* waits for running hooks */
	e7_hooks_on = false;
	mutex_unlock(&e7_hooks_mutex);
}

/* ------------------------------------------------------------------------------------------ */
/* Load and unload                                                                             */

static int __init e7_init(void)
{
	struct workqueue_struct *wq;
	__u64 secret[2];
	int rc;

	rc = e7_check_rwlock_layout();
	if (rc)
		return rc;
	rc = e7_apply_params();
	if (rc)
		return rc;
	e7_stats = alloc_percpu(struct e7_pcpu_stats);
	e7_pstats = alloc_percpu(struct e7_prog_stats);
	if (!e7_stats || !e7_pstats) {
		pr_err("e7: cannot allocate the per-CPU statistics\n");
		free_percpu(e7_pstats);
		free_percpu(e7_stats);
		return -ENOMEM;
	}
	e7_rust_init();
	e7_mode_word = e7_rust_mode_word();
	e7_peer_word = e7_rust_peer_word();
	get_random_bytes(secret, sizeof(secret));
	e7_rust_set_dest_secret(secret[0], secret[1]);

	wq = alloc_ordered_workqueue("e7", 0);
	if (!wq) {
		pr_err("e7: cannot allocate the e7 workqueue\n");
		free_percpu(e7_pstats);
		free_percpu(e7_stats);
		return -ENOMEM;
	}
	WRITE_ONCE(e7_wq, wq);

	/* Before the family: no subscriber can exist whose release we would miss. */
	rc = netlink_register_notifier(&e7_netlink_nb);
	if (rc) {
		pr_err("e7: cannot register the netlink notifier: %d\n", rc);
		goto err_wq;
	}
	rc = genl_register_family(&e7_family);
	if (rc) {
		pr_err("e7: cannot register generic netlink family %s: %d\n", E7_FAMILY_NAME, rc);
		goto err_notifier;
	}
	/* Hooks last (if the mode parameter enforces): the first packet must find everything
	 * ready. A request may have registered them already (the family is up). */
	rc = e7_sync_hooks();
	if (rc)
		goto err_genl;
	pr_info("e7: loaded, version %s\n", E7_MOD_VERSION);
	return 0;

	/* Reverse order. The hooks may be registered (by a request) or have been registered in
	 * some namespaces before a failure (undone, waiting for running hooks), and a hook may have
	 * queued work meanwhile: shut them out for good first. So, as at unload: stop, cancel the work (it
	 * sees `stopping`), tell subscribers (a client may have talked to the family meanwhile),
	 * then let genl wait for running requests. */
err_genl:
	e7_hooks_shutdown();
	e7_rust_stop();
	cancel_work_sync(&e7_event_work);
	cancel_delayed_work_sync(&e7_refill_work);
	e7_rust_disconnect_all();
	genl_unregister_family(&e7_family);
err_notifier:
	netlink_unregister_notifier(&e7_netlink_nb);
err_wq:
	e7_rust_stop();
	WRITE_ONCE(e7_wq, NULL);
	cancel_work_sync(&e7_event_work);
	cancel_delayed_work_sync(&e7_refill_work);
	destroy_workqueue(wq);
	free_percpu(e7_pstats);
	free_percpu(e7_stats);
	return rc;
}

static void __exit e7_exit(void)
{
	struct workqueue_struct *wq = e7_wq;

	/* 1. No new events, refills or subscriptions; 2. hooks gone in every netns for good (a
	 * request cannot register them again; waits for running hooks, the only place that queues
	 * work); 3. cancel the work items (they see
	 * `stopping` and return; queued events are dropped, so the DISCONNECT is not behind them);
	 * 4. DISCONNECT to subscribers (non-blocking; losses counted and logged); 5. family gone
	 * (waits for running doits; they cannot subscribe any more); 6. the URELEASE notifier goes
	 * (the chain's rwsem waits for a running callback); 7. nothing can queue work any more:
	 * cancel again (defensive, no-ops) and destroy the queue. After this no code of ours runs. */
	e7_rust_stop();
	e7_hooks_shutdown();
	cancel_work_sync(&e7_event_work);
	cancel_delayed_work_sync(&e7_refill_work);
	e7_rust_disconnect_all();
	genl_unregister_family(&e7_family);
	netlink_unregister_notifier(&e7_netlink_nb);
	WRITE_ONCE(e7_wq, NULL);
	cancel_work_sync(&e7_event_work);
	cancel_delayed_work_sync(&e7_refill_work);
	destroy_workqueue(wq);
	free_percpu(e7_pstats);
	free_percpu(e7_stats);
	pr_info("e7: unloaded\n");
}

module_init(e7_init);
module_exit(e7_exit);

MODULE_LICENSE("GPL");
MODULE_AUTHOR("e7 project");
MODULE_DESCRIPTION("e7: per-program application firewall (netfilter LOCAL_OUT, generic netlink family eftirlit)");
MODULE_VERSION(E7_MOD_VERSION);
