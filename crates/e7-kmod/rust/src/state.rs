//! All module state: e7-core's engine, the event queue, the subscriber set and the refill queue;
//! the hook's entry into the packet path; the two work items; unload.
//!
//! # Why it looks like this
//! The packet itself is decided by e7-core's [`Engine::decide_packet`] — the same function
//! userspace embedders, the benches, the no-panic check and the model tests run. This file only
//! supplies what that path needs from the module ([`Hook`], an [`e7_core::Host`] over the
//! [`Kernel`] plus the module's refill queue and subscriber count) and turns its outcome into an
//! event and a log line.
//!
//! The kernel calls the hook in task context (a process sending) and in softirq (TCP timers and
//! ACKs, the SYN-ACKs of listeners). Identifying a socket's owner needs `task_lock` and
//! `files->file_lock`, which process context takes *without* disabling bottom halves, so they must
//! never be taken from softirq: a softirq miss the engine cannot answer from the lock-free image
//! cache is handed to [`Hook::defer`], which queues the socket (bounded, de-duplicated) for ONE
//! rate-limited work item ([`Module::work_refill`]) that identifies it in process context
//! ([`Engine::identify_deferred`]).
//!
//! Events are never sent from the hook: a decision that asks for one copies the path into a bounded
//! queue shared fairly between uids (a full queue costs the biggest holder its own newest event;
//! every loss is counted in `evlost`) and kicks the event work item.
#![forbid(unsafe_code)]

use core::ops::ControlFlow;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use e7_core::sync::{RawRwLock, RwLock};
use e7_core::{
    Chunk, ChunkEnd, Decided, Deferred, Engine, ExeError, ExeId, ExePath, Flag, Host, Identity,
    Outcome, Packet, SockInfo, SocketKey, SocketOwner, Stat, TaskId, Verdict, WalkCursor,
    WALK_CHUNK,
};

use crate::abi::E7Dest;
use crate::bounded::{
    EventRecord, EventRing, Pending, Queued, Subscribers, EVENT_QUEUE, PENDING_SOCKETS,
};
use crate::errno::ECONNREFUSED;
use crate::kernel::{Kernel, Level, SendError};

/// Known-socket cache sets in the module (× 8 ways = 4096 sockets; e7-core's default is 128).
///
/// Why larger than the default: a socket evicted from the cache loses its identity for softirq
/// packets, which are then dropped until the refill work re-identifies it (never let through as
/// if unowned). A connection storm of one user (hundreds of connects in flight, each idle until
/// its SYN-ACK) must not push its own waiting sockets out before their retransmits
/// (`case_storm_churn`).
pub const SOCKET_SETS: usize = 512;

/// Rule table capacity (e7-core's default).
pub const RULES: usize = 1024;

/// The module's rule table.
pub type ModuleRules = e7_core::RuleRing<RULES>;

/// Qualified-rule capacity (`to`/`port`/`user`): e7-core's default, 1,024 rules with a 64 KiB
/// path arena (about 154 KiB of module memory). A 10,000-line blocklist needs e7-core's
/// `BlocklistTable` sizes (16,384 rules, 256 KiB of paths: about 1.7 MiB in the module's .bss,
/// allocated whether or not it is used); build with the cargo feature `blocklist`
/// (`make E7_FEATURES=blocklist`) to get them.
#[cfg(not(feature = "blocklist"))]
pub const QUAL_RULES: usize = e7_core::qualified::QUAL_RULES;
/// Path arena of the qualified table, in bytes (see [`QUAL_RULES`]).
#[cfg(not(feature = "blocklist"))]
pub const QUAL_BYTES: usize = e7_core::qualified::QUAL_PATH_BYTES;
/// Qualified-rule capacity with the `blocklist` feature: a 10,000-line blocklist fits.
#[cfg(feature = "blocklist")]
pub const QUAL_RULES: usize = 16_384;
/// Path arena with the `blocklist` feature.
#[cfg(feature = "blocklist")]
pub const QUAL_BYTES: usize = 262_144;

/// The qualifiers the module enforces (the read-only flag `qualifiers`): destinations, ports and
/// users. The CLI sends a qualified rule only to a module announcing every bit it needs.
pub const QUALIFIERS_ENFORCED: u32 =
    e7_proto::qual::FEATURE_DEST | e7_proto::qual::FEATURE_PORTS | e7_proto::qual::FEATURE_USER;

/// Executable-table slots (e7-core's default); also the number of per-program statistics
/// records per CPU (`E7_PROG_SLOTS`), one per slot.
pub const EXES: usize = 256;

/// The module's engine: e7-core's defaults except [`SOCKET_SETS`] and the qualified table's size.
pub type ModuleEngine<R> = Engine<R, RULES, SOCKET_SETS, 8, EXES, 1024, QUAL_RULES, QUAL_BYTES>;

/// The module's qualified rule table.
pub type ModuleQual = e7_core::QualTable<QUAL_RULES, QUAL_BYTES>;

/// Delay before the refill work retries sockets not answered yet (ms); the active-socket cache
/// allows one walk slice per 50 ms after the previous one ended.
pub const REFILL_RETRY_MS: u32 = 60;

/// The packet path's [`Host`]: the kernel's socket services plus the module's refill queue and
/// subscriber count.
pub struct Hook<'a, R: RawRwLock, K: Kernel> {
    m: &'a Module<R>,
    k: &'a K,
}

impl<R: RawRwLock, K: Kernel> Host for Hook<'_, R, K> {
    type Sock<'s> = K::Sock<'s>;

    fn now_ms(&self) -> u64 {
        self.k.now_ms()
    }
    fn now_ns(&self) -> u64 {
        self.k.now_ns()
    }
    fn now_secs(&self) -> u64 {
        self.k.now_secs()
    }
    /// Per-CPU in the kernel (no shared cache line written per packet).
    fn count(&self, stat: Stat) -> bool {
        self.k.stat_inc(stat)
    }
    fn sock_key(&self, sk: K::Sock<'_>) -> SocketKey {
        self.k.sk_cookie(sk)
    }
    fn route_hop(&self, index: usize) -> e7_core::RouteHop {
        self.k.packet_route(index)
    }
    fn sock_info(&self, sk: K::Sock<'_>) -> SockInfo {
        self.k.sk_info(sk)
    }
    fn sender_holds(&self, sk: K::Sock<'_>) -> Option<TaskId> {
        self.k.current_holds(sk)
    }
    fn sender(&self, _sk: K::Sock<'_>) -> Option<TaskId> {
        self.k.current_task()
    }
    fn sender_exe(&self, _sk: K::Sock<'_>, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.k.current_exe(out)
    }
    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.k.task_exe(tgid, out)
    }
    /// The whole walk, chunk by chunk (e7-core's engine uses [`Host::collect_sockets`]; this is
    /// for completeness of the trait). Stops where the shim refuses.
    fn for_each_socket(&self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        let mut buf = [SocketOwner::default(); WALK_CHUNK];
        let mut from = WalkCursor::START;
        loop {
            let c = self.collect_sockets(from, &mut buf);
            for &o in buf.iter().take(c.len) {
                if f(o).is_break() {
                    return;
                }
            }
            match c.end {
                ChunkEnd::More(next) if next != from || c.len != 0 => from = next,
                _ => return,
            }
        }
    }
    /// One bounded chunk from the shim (no lock held: the engine merges it afterwards); none
    /// once unload has begun, so a running slice ends at its next chunk.
    fn collect_sockets(&self, from: WalkCursor, out: &mut [SocketOwner]) -> Chunk {
        if self.m.is_stopping() {
            return Chunk {
                len: 0,
                end: ChunkEnd::Refused,
            };
        }
        self.k.collect_sockets(from, out)
    }
    /// Never: the hook runs under RCU (netfilter) and must stay short; a socket whose sender is
    /// no user process is deferred to the refill work, which walks in bounded slices.
    fn walk_inline(&self) -> bool {
        false
    }
    /// Queues the socket for the refill work (bounded; a full queue or a busy lock just means the
    /// socket's next packet tries again) and kicks the work once.
    fn defer(&self, s: Deferred) {
        let m = self.m;
        if m.is_stopping() {
            return;
        }
        if let Some(mut q) = m.pending.try_write() {
            q.push(s);
        }
        if !m.refill_kicked.swap(true, Relaxed) {
            self.k.kick_refill(0);
        }
    }
    fn wants_events(&self) -> bool {
        self.m.sub_count.load(Relaxed) != 0
    }
}

/// What the hook needs of one decided packet ([`Module::packet_cached`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HookOutcome {
    /// The verdict.
    pub verdict: Verdict,
    /// A still-valid cached verdict answered it.
    pub cached: bool,
    /// The program it is counted for ([`ExeId::to_u64`]), 0 for none.
    pub exe: u64,
    /// The decision bits (`e7_core::Decision::to_bits`): verdict and reason for the statistics.
    pub bits: u8,
}

/// Counters for tests and debugging (not on the wire); the packet path's are
/// [`Engine::stats`](e7_core::Engine).
#[derive(Debug, Default)]
pub struct Stats {
    /// Subscribers removed because their netlink socket was released (NETLINK_URELEASE).
    pub released: AtomicU64,
    /// DISCONNECT messages at unload that could not be delivered (receive buffer full, no
    /// memory); counted and logged, never waited for.
    pub disconnect_lost: AtomicU64,
}

/// The whole module: e7-core's engine plus the event queue, the subscriber set and the refill
/// queue. `R` is the raw lock: the kernel's BH-safe rwlock (`klock.rs`), or parking_lot in tests.
pub struct Module<R: RawRwLock> {
    /// Flags, rules, caches.
    pub engine: ModuleEngine<R>,
    /// Events waiting for the event work.
    pub events: RwLock<R, EventRing>,
    /// The ports that receive events.
    pub subs: RwLock<R, Subscribers>,
    pending: RwLock<R, Pending>,
    /// Mirror of the subscriber count, readable by the hook without a lock.
    pub(crate) sub_count: AtomicU32,
    pub(crate) stopping: AtomicBool,
    events_kicked: AtomicBool,
    refill_kicked: AtomicBool,
    pub(crate) start_ms: AtomicU64,
    /// Internal counters.
    pub stats: Stats,
}

impl<R: RawRwLock> Default for Module<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: RawRwLock> Module<R> {
    /// Fresh state: default flags, no rules, empty caches, no subscribers.
    pub const fn new() -> Self {
        Module {
            engine: Engine::new(),
            events: RwLock::const_new(R::INIT, EventRing::new()),
            subs: RwLock::const_new(R::INIT, Subscribers::new()),
            pending: RwLock::const_new(R::INIT, Pending::new()),
            sub_count: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
            events_kicked: AtomicBool::new(false),
            refill_kicked: AtomicBool::new(false),
            start_ms: AtomicU64::new(0),
            stats: Stats {
                released: AtomicU64::new(0),
                disconnect_lost: AtomicU64::new(0),
            },
        }
    }

    /// Load-time initialisation: the uptime origin; logs the initial policy (module parameters).
    pub fn init(&self, k: &impl Kernel) {
        self.start_ms.store(k.now_ms(), Relaxed);
        let alias = |f: Flag| {
            e7_proto::Const::from_value(self.engine.flags.get(f)).map_or("?", |c| c.alias())
        };
        k.log(
            Level::Info,
            format_args!(
                "mode={} unkrule={} unkproc={} unkprot={} fail={} longpath={}",
                alias(Flag::Mode),
                alias(Flag::UnkRule),
                alias(Flag::UnkProc),
                alias(Flag::UnkProt),
                alias(Flag::Fail),
                alias(Flag::LongPath)
            ),
        );
    }

    /// Unload has begun: no new events, no new work, no new subscribers.
    pub fn stop(&self) {
        self.stopping.store(true, Relaxed);
    }

    /// Whether unload has begun.
    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Relaxed)
    }

    // ---- the packet path ------------------------------------------------------------------------

    /// Decides one packet (any context) with e7-core's packet path; queues its event and logs it
    /// (flag `debug`); counts it in the per-program statistics ([`Kernel::prog_count`]).
    pub fn packet<'s, K: Kernel>(&self, k: &K, p: &Packet<K::Sock<'s>>) -> Verdict {
        let d = self.packet_cached(k, p);
        if let Some(exe) = ExeId::from_u64(d.exe) {
            k.prog_count(exe, d.bits, p.proto);
        }
        d.verdict
    }

    /// [`Module::packet`] without the per-program count, which the hook does in the shim from
    /// what this returns (no second call across the FFI): the verdict, whether it was a
    /// still-valid cached one (the hook counts those hits in its per-CPU statistics), the program
    /// and the decision bits.
    #[inline(always)]
    pub fn packet_cached<'s, K: Kernel>(&self, k: &K, p: &Packet<K::Sock<'s>>) -> HookOutcome {
        let out = match self.engine.decide_packet_fast(&Hook { m: self, k }, p) {
            // The hit path: one bit of the cached decision, nothing decoded unless logged.
            Decided::Hit(h) => {
                if self.engine.flags.get(Flag::Debug) == e7_proto::Const::Enabled.value() {
                    self.debug_log(k, p, &h.outcome());
                }
                return HookOutcome {
                    verdict: h.verdict(),
                    cached: true,
                    exe: h.exe_word(),
                    bits: h.bits(),
                };
            }
            Decided::Full(out) => out,
        };
        self.packet_full(k, p, out)
    }

    /// The rest of a packet the hit path did not answer: its event and log line.
    #[inline(never)]
    fn packet_full<S>(&self, k: &impl Kernel, p: &Packet<S>, out: Outcome) -> HookOutcome {
        if let Some(ev) = out.event {
            // Where the packet went: the address of its route that refused it, else the
            // decision's own facts when a rule needed them, else read now (only for an event).
            let refused = out
                .route_hop
                .and_then(|i| match k.packet_route(usize::from(i)) {
                    e7_core::RouteHop::Addr(a) => Some(a),
                    _ => None,
                });
            let (dst, dport) = match refused.or(p.peer.dst) {
                Some(d) => (Some(d), p.peer.dport),
                None => k.packet_dest(),
            };
            let peer = e7_proto::msg::EventPeer {
                dst,
                dport,
                uid: p.sk.is_some().then_some(p.uid),
            };
            self.queue_event(k, p.uid, ev.kind.state(), ev.proto, ev.exe, &peer);
        }
        if self.engine.flags.get(Flag::Debug) == e7_proto::Const::Enabled.value() {
            self.debug_log(k, p, &out);
        }
        HookOutcome {
            verdict: out.decision.verdict,
            cached: out.cached,
            exe: match out.ident {
                Identity::Exe(id) => id.to_u64(),
                _ => 0,
            },
            bits: out.decision.to_bits(),
        }
    }

    #[cold]
    #[inline(never)]
    fn debug_log<S>(&self, k: &impl Kernel, p: &Packet<S>, out: &Outcome) {
        let verdict = match out.decision.verdict {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
        };
        let mut path = ExePath::EMPTY;
        let who: &[u8] = match out.ident {
            Identity::Exe(id) if self.engine.exe_path(id, &mut path) => path.as_bytes(),
            Identity::Exe(_) => b"(evicted)",
            Identity::PathTooLong => b"(path too long)",
            Identity::NoHostPath => b"(no path in the initial mount namespace)",
            Identity::Unknown => b"(unknown)",
        };
        k.log(
            Level::Debug,
            format_args!(
                "{} proto={} {:?} reason={:?} exe={}{}",
                verdict,
                p.proto,
                p.family,
                out.decision.reason,
                Lossy(who),
                if out.cached { " (cached)" } else { "" }
            ),
        );
    }

    // ---- work items (process context) -------------------------------------------------------

    /// The refill work (process context, no lock held): identify the sockets the hook deferred.
    /// e7-core answers them from its caches or with ONE bounded walk slice — collected chunk by
    /// chunk with no lock held, each chunk merged under a short lock, at most one slice per the
    /// active-socket cache's interval, resuming where the last slice stopped — and inserts the
    /// owners found into the known-socket cache. Sockets not answered yet (rate limit, a cycle not
    /// yet covered) are queued again and the work re-kicked after [`REFILL_RETRY_MS`].
    pub fn work_refill<K: Kernel>(&self, k: &K) {
        self.refill_kicked.store(false, Relaxed);
        if self.is_stopping() {
            return;
        }
        let mut batch = [Deferred::default(); PENDING_SOCKETS];
        let n = self.pending.write().take_all(&mut batch);
        let host = Hook { m: self, k };
        let todo = batch.get_mut(..n).unwrap_or(&mut []);
        let report = self.engine.identify_deferred_batch(&host, todo);
        let retry = todo.get(..report.retry).unwrap_or(&[]);
        if !retry.is_empty() {
            if let Some(mut q) = self.pending.try_write() {
                for s in retry {
                    q.push(*s);
                }
            }
            if !self.is_stopping() && !self.refill_kicked.swap(true, Relaxed) {
                k.kick_refill(REFILL_RETRY_MS);
            }
        }
    }

    /// The walk's counters as one text line (the read-only module parameter `walk_stats`):
    /// slices, cycles, pairs merged, the most pairs merged under one lock hold and the chunk size
    /// (its bound), pairs the latest cycle could not record, the number of merges, and the total
    /// and longest lock hold of a merge in nanoseconds (waiting included).
    pub fn walk_stats(&self, out: &mut dyn core::fmt::Write) -> core::fmt::Result {
        let w = self.engine.active.read().walk_stats();
        let st = &self.engine.stats;
        write!(
            out,
            "slices={} cycles={} merged={} max_merge={} chunk={} dropped={} merges={} \
             total_lock_ns={} max_lock_ns={}",
            w.slices,
            w.cycles,
            w.merged,
            w.max_merge,
            WALK_CHUNK,
            w.dropped,
            st.walk_merges.load(Relaxed),
            st.walk_lock_ns_total.load(Relaxed),
            st.walk_lock_ns_max.load(Relaxed)
        )
    }

    /// Copies an event of `uid` (the packet's socket uid) into the bounded queue, fairly shared
    /// between uids ([`EventRing`]: when full, the biggest holder loses its newest event, never a
    /// smaller holder), counts any loss in `evlost`, and kicks the event work.
    ///
    /// The queue lock is taken, not tried: a failed `try_write` also lost the event, so one
    /// user's flood from other CPUs could crowd out another's through the lock alone. The
    /// critical section is bounded (a copy of one path, O(queue) index moves).
    fn queue_event(
        &self,
        k: &impl Kernel,
        uid: u32,
        state: u32,
        proto: u32,
        exe: ExeId,
        peer: &e7_proto::msg::EventPeer,
    ) {
        if self.is_stopping() {
            return;
        }
        let mut path = ExePath::EMPTY;
        if !self.engine.exe_path(exe, &mut path) {
            return;
        }
        let queued = self
            .events
            .write()
            .push_peer(uid, state, proto, &path, peer);
        if queued != Queued::Yes {
            // Refused, or queued by evicting the biggest holder's newest event: one lost either way.
            self.engine.flags.count(Flag::EvLost);
        }
        if queued != Queued::No && !self.events_kicked.swap(true, Relaxed) {
            k.kick_events();
        }
    }

    /// The event work: send queued events to every subscriber (at most one queue's worth per
    /// run, then it re-queues itself, so a flood cannot pin the worker).
    pub fn work_events(&self, k: &impl Kernel) {
        self.events_kicked.store(false, Relaxed);
        let mut rec = EventRecord::EMPTY;
        for _ in 0..EVENT_QUEUE {
            if self.is_stopping() {
                return;
            }
            if !self.events.write().pop_into(&mut rec) {
                return;
            }
            let mut ports = [0u32; crate::bounded::MAX_SUBSCRIBERS];
            let n = {
                let subs = self.subs.read();
                let list = subs.ports();
                let n = list.len().min(ports.len());
                if let (Some(dst), Some(src)) = (ports.get_mut(..n), list.get(..n)) {
                    dst.copy_from_slice(src);
                }
                n
            };
            let state = e7_proto::EventState::from_value(rec.state);
            for &port in ports.iter().take(n) {
                let Some(state) = state else { break };
                let r = k.send(
                    e7_proto::Command::Event,
                    E7Dest::default(),
                    port,
                    &mut |w| {
                        e7_proto::msg::emit_event_peer(
                            w,
                            state,
                            rec.proto,
                            rec.path.as_bytes(),
                            &rec.peer,
                        )
                    },
                );
                self.after_unicast(k, port, r);
            }
        }
        if !self.events.read().is_empty() && !self.events_kicked.swap(true, Relaxed) {
            k.kick_events();
        }
    }

    /// Forgets a subscriber whose socket is gone (S10: a later socket reusing the port must not
    /// receive events).
    pub(crate) fn after_unicast(&self, k: &impl Kernel, port: u32, r: Result<(), SendError>) {
        if r == Err(SendError::Errno(ECONNREFUSED)) {
            self.unsubscribe(port);
            k.log(
                Level::Info,
                format_args!("subscriber port {port} is gone; unsubscribed"),
            );
        }
    }

    /// Subscribes `port` to events (admin clients only; the caller checked).
    ///
    /// `stopping` is checked under the subscriber lock: `disconnect_all` takes the same lock after
    /// `stop()`, so a request racing with unload either subscribes before the set is emptied (and
    /// gets its DISCONNECT) or sees `stopping` and does not subscribe; it can never be added after
    /// the DISCONNECTs went out.
    pub fn subscribe(&self, port: u32) {
        let mut s = self.subs.write();
        if self.is_stopping() {
            return;
        }
        s.add(port);
        self.sub_count.store(s.len() as u32, Relaxed);
    }

    /// Unsubscribes `port`.
    pub fn unsubscribe(&self, port: u32) -> bool {
        let mut s = self.subs.write();
        let removed = s.remove(port);
        self.sub_count.store(s.len() as u32, Relaxed);
        removed
    }

    /// A generic-netlink socket in init_net was released (NETLINK_URELEASE, process context): its
    /// port no longer names that client, and a later socket may bind the same number (S10), so
    /// it stops receiving events now rather than at the next failed unicast.
    ///
    /// Not logged: every `e7` admin command subscribes its short-lived socket, so this is the
    /// normal end of most subscriptions (the ECONNREFUSED path, logged, is now the exception).
    pub fn port_released(&self, port: u32) {
        // Lock-free pre-check: every genl socket close in the system comes through here.
        if port == 0 || self.sub_count.load(Relaxed) == 0 {
            return;
        }
        if self.unsubscribe(port) {
            self.stats.released.fetch_add(1, Relaxed);
        }
    }

    /// Unload: tell every subscriber (DISCONNECT) and forget them. Called after `stop()` and
    /// after the event work was cancelled, so no event can follow the DISCONNECT and the event
    /// queue (dropped here) cannot delay it. Each unicast is non-blocking: a client whose receive
    /// buffer is full does not get it (it sees ENOBUFS instead); that is counted and logged.
    /// Returns the number of DISCONNECTs that could not be delivered.
    pub fn disconnect_all(&self, k: &impl Kernel) -> u32 {
        self.events.write().clear();
        let mut ports = [0u32; crate::bounded::MAX_SUBSCRIBERS];
        let n = {
            let mut s = self.subs.write();
            let list = s.ports();
            let n = list.len().min(ports.len());
            if let (Some(dst), Some(src)) = (ports.get_mut(..n), list.get(..n)) {
                dst.copy_from_slice(src);
            }
            s.clear();
            self.sub_count.store(0, Relaxed);
            n
        };
        let mut lost = 0u32;
        let mut gone = 0u32;
        for &port in ports.iter().take(n) {
            match k.send(
                e7_proto::Command::Disconnect,
                E7Dest::default(),
                port,
                &mut |_| Ok(()),
            ) {
                Ok(()) => {}
                // Nobody listens on the port any more: nothing to tell.
                Err(SendError::Errno(ECONNREFUSED)) => gone = gone.wrapping_add(1),
                Err(_) => lost = lost.wrapping_add(1),
            }
        }
        self.stats
            .disconnect_lost
            .fetch_add(u64::from(lost), Relaxed);
        if n != 0 {
            k.log(
                Level::Info,
                format_args!(
                    "unload: DISCONNECT sent to {} of {} subscribers ({} lost: receive buffer \
                     full or no memory; {} already gone)",
                    (n as u32).wrapping_sub(lost).wrapping_sub(gone),
                    n,
                    lost,
                    gone
                ),
            );
        }
        lost
    }
}

/// Displays bytes as text, replacing anything that is not printable ASCII (paths need not be
/// UTF-8; the log must stay one clean line).
pub struct Lossy<'a>(pub &'a [u8]);

impl core::fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        for &b in self.0 {
            let c = if (0x20..0x7f).contains(&b) {
                b as char
            } else {
                '?'
            };
            core::fmt::Write::write_char(f, c)?;
        }
        Ok(())
    }
}
