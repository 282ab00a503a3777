//! All module state and the per-packet path.
//!
//! # Why it looks like this
//! The kernel calls the hook in task context (a process sending) and in softirq (TCP timers and
//! ACKs, the SYN-ACKs of listeners). Identifying a socket's owner needs `task_lock` and
//! `files->file_lock`, which process context takes *without* disabling bottom halves, so they must
//! never be taken from softirq. Hence three paths:
//!
//! 1. **Hit** (any context): the known-socket cache, keyed by the socket cookie, holds the
//!    owner's executable id and the last decision tagged with the policy generation. A still-valid
//!    decision is reused: a shared lock, atomics only, no path string, no hashing, no fd scan. A
//!    stale one (rules or flags changed since) is recomputed from the cached executable id.
//! 2. **Miss in task context**: the current task, if it holds a descriptor for the socket (the
//!    common case: `sendmsg`/`connect`), else the active-socket cache (inode → tgid, refilled by a
//!    rate-limited process-table walk), then `d_path` of the owner's executable. The path is used
//!    only when it is the executable's path in the initial mount namespace and root (the shim
//!    checks that without sleeping when the sender shares pid 1's root and the executable's mount
//!    is in pid 1's tree); otherwise the refill work verifies it by a path lookup from pid 1's
//!    root (same inode, or `nspath`), and until then `nspath` decides the packet.
//! 3. **Miss in softirq**: nothing that needs those locks. If the interrupted task holds the socket
//!    (a lock-free, bounded RCU scan of its fd table) and that process image was resolved before,
//!    the cached identity is used (typical for loopback, e.g. a local listener's SYN-ACK).
//!    Otherwise the socket is queued (bounded, de-duplicated)
//!    for ONE rate-limited work item, which walks the process table in process context, refills
//!    the active-socket cache and inserts the socket into the known-socket cache, so its next packet
//!    is a hit. The packet itself gets the `unkproc` verdict.
//!
//! Events are never sent from the hook: a decision that asks for one copies the path into a bounded
//! queue (or counts it in `evlost` when full) and kicks the event work item.
#![forbid(unsafe_code)]

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};

use e7_core::sync::{RawRwLock, RwLock};
use e7_core::{
    decide, decide_early, ActiveLookup, Decision, Engine, EventKind, ExePath, Family, Flag,
    FlagValues, Identity, KnownSocket, Mode, PacketFacts, PathError, SocketKey, Verdict,
};
use e7_core::{CachedVerdict, ExeId};

use crate::abi::{E7Dest, E7Exe, E7TaskId};
use crate::bounded::{
    EventRecord, EventRing, Pending, PendingSocket, ProcCache, Subscribers, EVENT_QUEUE,
    PENDING_SOCKETS,
};
use crate::kernel::{Kernel, KernelTable, Level, SendError, SockKind, SockRef};

/// `ENAMETOOLONG`.
pub const ENAMETOOLONG: i32 = 36;
/// `EAGAIN` from the shim's executable lookup: the path must be verified in the initial mount
/// namespace by the refill work (path lookup may sleep; the hook may not).
pub const EAGAIN: i32 = 11;
/// `EXDEV` from the shim's executable lookup: the executable has no verified path in the initial
/// mount namespace and root (the `nspath` flag decides).
pub const EXDEV: i32 = 18;
/// `ECONNREFUSED`.
pub const ECONNREFUSED: u32 = 111;

/// Delay before the refill work retries sockets the active-socket cache rate-limited (ms); the
/// cache allows one process-table walk per 50 ms.
pub const REFILL_RETRY_MS: u32 = 60;

/// One packet, as the hook sees it.
#[derive(Debug, Clone, Copy)]
pub struct PacketIn {
    /// The full socket, if any (none: no socket, or a time-wait socket).
    pub sk: Option<SockRef>,
    /// L4 protocol (IPv6: after extension headers).
    pub proto: u32,
    /// Socket uid.
    pub uid: u32,
    /// Address family.
    pub family: Family,
    /// The network header could not be read.
    pub malformed: bool,
    /// Process context with bottom halves and interrupts enabled (the shim's
    /// `e7_may_lock_tasks()`): only then may `task_lock`/`files->file_lock` be taken. A
    /// process-context caller holding a BH-safe lock (e.g. a socket's slock in
    /// `tcp_release_cb`) gets `false` and the softirq path.
    pub in_task: bool,
}

/// Outcome of identification in task context.
enum InTask {
    Found(Identity, u32),
    NoOwner,
    RateLimited,
    /// The owner was found, but its executable's path must first be verified by the refill work
    /// (issue 7 hole 4: a borrowed identity through a mount namespace or chroot).
    Unverified,
}

/// Counters for tests and debugging (not on the wire).
#[derive(Debug, Default)]
pub struct Stats {
    /// Packets answered from a still-valid cached decision.
    pub hits: AtomicU64,
    /// Misses resolved in task context.
    pub task_resolved: AtomicU64,
    /// Misses resolved without a lock or `d_path`: the current task holds the socket and its
    /// process image was resolved before (any context).
    pub image_resolved: AtomicU64,
    /// Misses deferred from softirq to the refill work.
    pub deferred: AtomicU64,
    /// Sockets the refill work inserted into the known-socket cache.
    pub refilled: AtomicU64,
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
    pub engine: Engine<R>,
    pub(crate) events: RwLock<R, EventRing>,
    pub(crate) subs: RwLock<R, Subscribers>,
    pending: RwLock<R, Pending>,
    procs: RwLock<R, ProcCache>,
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

fn kind_state(kind: EventKind) -> u32 {
    kind.state()
}

impl<R: RawRwLock> Module<R> {
    /// Fresh state: default flags, no rules, empty caches, no subscribers.
    pub const fn new() -> Self {
        Module {
            engine: Engine::new(),
            events: RwLock::const_new(R::INIT, EventRing::new()),
            subs: RwLock::const_new(R::INIT, Subscribers::new()),
            pending: RwLock::const_new(R::INIT, Pending::new()),
            procs: RwLock::const_new(R::INIT, ProcCache::new()),
            sub_count: AtomicU32::new(0),
            stopping: AtomicBool::new(false),
            events_kicked: AtomicBool::new(false),
            refill_kicked: AtomicBool::new(false),
            start_ms: AtomicU64::new(0),
            stats: Stats {
                hits: AtomicU64::new(0),
                task_resolved: AtomicU64::new(0),
                image_resolved: AtomicU64::new(0),
                deferred: AtomicU64::new(0),
                refilled: AtomicU64::new(0),
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

    /// Decides one packet (any context).
    pub fn packet(&self, k: &impl Kernel, p: &PacketIn) -> Verdict {
        let e = &self.engine;
        // Disabled: accept with no work at all (one relaxed load).
        if e.flags.mode() == Mode::Disabled {
            return Verdict::Accept;
        }
        e.flags.count(Flag::QPackets);
        let flags = e.flags.snapshot();
        let facts = if p.malformed {
            PacketFacts::malformed(p.family)
        } else {
            PacketFacts::new(p.proto, p.family)
        };
        if let Some(d) = decide_early(&flags, &facts) {
            self.debug_log(k, &flags, &facts, &d, &Identity::Unknown, false);
            return d.verdict;
        }
        let Some(sk) = p.sk else {
            // No full socket (none, or time-wait): nobody to identify.
            return self.finish(k, &flags, &facts, &Identity::Unknown, None, false);
        };
        let key = SocketKey(k.sk_cookie(sk));
        // Read the generation before any rule: a verdict computed under newer rules but tagged
        // with an older generation is merely recomputed later, never the other way round.
        let gen = e.policy_generation();

        let hit = e.sockets.read().lookup(key);
        if let Some((known, cv)) = hit {
            if let Some(d) = cv.get_for(gen, facts.proto) {
                self.stats.hits.fetch_add(1, Relaxed);
                return self.emit(k, &flags, &facts, &known.exe, d, true);
            }
            // Stale: recompute from the cached identity (no identification work).
            match self.recompute(&flags, &facts, &known.exe) {
                Some(d) => {
                    e.sockets
                        .read()
                        .store_verdict(key, CachedVerdict::for_proto(d, gen, facts.proto));
                    return self.emit(k, &flags, &facts, &known.exe, d, false);
                }
                None => {
                    // The executable was evicted from the table: identify again.
                    e.sockets.write().forget(key);
                }
            }
        }

        let info = k.sk_info(sk);
        // Not identifiable from here now: hand the socket to the refill work; uncached, so its next
        // packet (after the work) is a hit or tries again.
        let deferred = || {
            self.defer(
                k,
                PendingSocket {
                    key: key.0,
                    ino: info.ino,
                    uid: p.uid,
                },
            );
            (Identity::Unknown, 0, false)
        };
        let (ident, tgid, cache) = match info.kind {
            // Orphaned or not yet accepted: the owner may show up later; do not cache.
            SockKind::Detached => (Identity::Unknown, 0, false),
            // A kernel socket: no process will ever own it; cache the verdict.
            SockKind::Kernel => (Identity::Unknown, 0, true),
            SockKind::User if p.in_task => match self.identify_in_task(k, sk, info.ino) {
                // An owner whose executable could not be read (exiting) is not cached: the
                // socket's next packet tries again.
                InTask::Found(ident, tgid) => (ident, tgid, ident != Identity::Unknown),
                InTask::NoOwner => (Identity::Unknown, 0, false),
                InTask::RateLimited => deferred(),
                // Until the work verifies the path, no path rule may apply: `nspath` decides this
                // packet (not cached; the socket's next packet after the work is identified).
                InTask::Unverified => {
                    let _ = deferred();
                    (Identity::NoHostPath, 0, false)
                }
            },
            SockKind::User => match self.identify_by_image(k, sk) {
                Some((ident, tgid)) => (ident, tgid, true),
                None => deferred(),
            },
        };
        let rule = self.rule_for(&facts, &ident);
        let d = decide(&flags, &facts, &ident, rule);
        if cache {
            let mut sockets = e.sockets.write();
            sockets.insert(
                key,
                KnownSocket {
                    inode: info.ino,
                    tgid,
                    uid: p.uid,
                    exe: ident,
                },
            );
            sockets.store_verdict(key, CachedVerdict::for_proto(d, gen, facts.proto));
        }
        self.emit(k, &flags, &facts, &ident, d, false)
    }

    /// The decision for a cached identity, or `None` if its executable id went stale.
    fn recompute(
        &self,
        flags: &FlagValues,
        facts: &PacketFacts,
        ident: &Identity,
    ) -> Option<Decision> {
        match ident {
            Identity::Exe(id) => {
                let exes = self.engine.exes.read();
                let path = exes.get(*id)?;
                let rule = self.engine.rules.read().lookup(facts.proto, path);
                Some(decide(flags, facts, ident, rule.map(|m| m.action)))
            }
            other => Some(decide(flags, facts, other, None)),
        }
    }

    fn rule_for(&self, facts: &PacketFacts, ident: &Identity) -> Option<e7_core::Action> {
        let Identity::Exe(id) = ident else {
            return None;
        };
        let exes = self.engine.exes.read();
        let path = exes.get(*id)?;
        self.engine
            .rules
            .read()
            .lookup(facts.proto, path)
            .map(|m| m.action)
    }

    fn finish(
        &self,
        k: &impl Kernel,
        flags: &FlagValues,
        facts: &PacketFacts,
        ident: &Identity,
        rule: Option<e7_core::Action>,
        cached: bool,
    ) -> Verdict {
        let d = decide(flags, facts, ident, rule);
        self.emit(k, flags, facts, ident, d, cached)
    }

    /// Queues the decision's event (after squelch), logs it if `debug`, returns the verdict.
    fn emit(
        &self,
        k: &impl Kernel,
        flags: &FlagValues,
        facts: &PacketFacts,
        ident: &Identity,
        d: Decision,
        cached: bool,
    ) -> Verdict {
        if let Some(ev) = d.event_record(facts, ident) {
            // Nobody listens: nothing to squelch, copy or count.
            if self.sub_count.load(Relaxed) != 0
                && (!d.squelch || self.engine.squelch.permit(ev.proto, ev.exe, k.now_ms()))
            {
                self.queue_event(k, kind_state(ev.kind), ev.proto, ev.exe);
            }
        }
        self.debug_log(k, flags, facts, &d, ident, cached);
        d.verdict
    }

    fn debug_log(
        &self,
        k: &impl Kernel,
        flags: &FlagValues,
        facts: &PacketFacts,
        d: &Decision,
        ident: &Identity,
        cached: bool,
    ) {
        if !flags.debug {
            return;
        }
        let verdict = match d.verdict {
            Verdict::Accept => "accept",
            Verdict::Drop => "drop",
        };
        let mut path = ExePath::EMPTY;
        let who: &[u8] = match ident {
            Identity::Exe(id) if self.engine.exe_path(*id, &mut path) => path.as_bytes(),
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
                facts.proto,
                facts.family,
                d.reason,
                Lossy(who),
                if cached { " (cached)" } else { "" }
            ),
        );
    }

    /// Any context, no lock beyond our own: the current task holds the socket and its process
    /// image was resolved before.
    fn identify_by_image(&self, k: &impl Kernel, sk: SockRef) -> Option<(Identity, u32)> {
        let mut id = E7TaskId::default();
        if !k.current_holds(sk, &mut id) {
            return None;
        }
        let ident = self.procs.read().get(&id)?;
        // An executable id evicted from the table since cannot be used (its rule lookup would
        // read as "no rule").
        if let Identity::Exe(e) = ident {
            self.engine.exes.read().get(e)?;
        }
        self.stats.image_resolved.fetch_add(1, Relaxed);
        Some((ident, id.tgid))
    }

    /// Task context: the current task first (its known image, else `d_path`), then the
    /// active-socket cache (walking if allowed).
    fn identify_in_task(&self, k: &impl Kernel, sk: SockRef, ino: u64) -> InTask {
        if let Some((ident, tgid)) = self.identify_by_image(k, sk) {
            return InTask::Found(ident, tgid);
        }
        let mut exe = E7Exe::new();
        if k.current_owner(sk, &mut exe) {
            if exe.status == -EAGAIN {
                return InTask::Unverified;
            }
            self.stats.task_resolved.fetch_add(1, Relaxed);
            return InTask::Found(self.identity_of(&exe), exe.task.tgid);
        }
        let now = k.now_ms();
        let found = self
            .engine
            .active
            .write()
            .find(ino, now, &mut KernelTable(k));
        match found {
            ActiveLookup::Owner(tgid) => {
                k.task_exe(tgid, &mut exe);
                if exe.status == -EAGAIN {
                    return InTask::Unverified;
                }
                self.stats.task_resolved.fetch_add(1, Relaxed);
                InTask::Found(self.identity_of(&exe), tgid)
            }
            ActiveLookup::NotFound => InTask::NoOwner,
            // Let the refill work try after the interval.
            ActiveLookup::RateLimited => InTask::RateLimited,
        }
    }

    /// The identity for a resolved executable (interned id, `PathTooLong`, or `Unknown`),
    /// remembered for the process image so later misses need no `d_path`.
    pub(crate) fn identity_of(&self, exe: &E7Exe) -> Identity {
        let ident = self.resolve_path(exe);
        if ident != Identity::Unknown {
            self.procs.write().insert(exe.task, ident);
        }
        ident
    }

    fn resolve_path(&self, exe: &E7Exe) -> Identity {
        if exe.status == -ENAMETOOLONG {
            return Identity::PathTooLong;
        }
        if exe.status == -EXDEV {
            return Identity::NoHostPath;
        }
        let Some(raw) = exe.path() else {
            return Identity::Unknown;
        };
        let path = e7_core::path::strip_deleted(raw);
        if let Some(id) = self.engine.exes.read().find(path) {
            return Identity::Exe(id);
        }
        match self.engine.exes.write().intern(path) {
            Ok(id) => Identity::Exe(id),
            Err(PathError::TooLong { .. }) => Identity::PathTooLong,
            Err(_) => Identity::Unknown,
        }
    }

    /// Softirq miss: queue the socket for the refill work (bounded; a full queue or a busy lock
    /// just means the socket's next packet tries again) and kick the work once.
    fn defer(&self, k: &impl Kernel, s: PendingSocket) {
        self.stats.deferred.fetch_add(1, Relaxed);
        if self.is_stopping() {
            return;
        }
        if let Some(mut q) = self.pending.try_write() {
            q.push(s);
        }
        if !self.refill_kicked.swap(true, Relaxed) {
            k.kick_refill(0);
        }
    }

    // ---- work items (process context) -------------------------------------------------------

    /// The refill work: resolve the sockets softirq could not, walking the process table at most
    /// once per the active-socket cache's interval, and insert them into the known-socket cache.
    pub fn work_refill(&self, k: &impl Kernel) {
        self.refill_kicked.store(false, Relaxed);
        if self.is_stopping() {
            return;
        }
        let mut batch = [PendingSocket::default(); PENDING_SOCKETS];
        let n = self.pending.write().take_all(&mut batch);
        let mut retry = false;
        for s in batch.iter().take(n) {
            let key = SocketKey(s.key);
            if self.engine.sockets.read().peek(key).is_some() {
                continue; // resolved meanwhile (e.g. by a task-context packet)
            }
            let now = k.now_ms();
            let found = self
                .engine
                .active
                .write()
                .find(s.ino, now, &mut KernelTable(k));
            match found {
                ActiveLookup::Owner(tgid) => {
                    let mut exe = E7Exe::new();
                    k.task_exe(tgid, &mut exe);
                    let ident = self.identity_of(&exe);
                    if ident != Identity::Unknown {
                        // No cached decision yet: the next packet computes it (stale path).
                        self.engine.sockets.write().insert(
                            key,
                            KnownSocket {
                                inode: s.ino,
                                tgid,
                                uid: s.uid,
                                exe: ident,
                            },
                        );
                        self.stats.refilled.fetch_add(1, Relaxed);
                    }
                }
                ActiveLookup::NotFound => {}
                ActiveLookup::RateLimited => {
                    if let Some(mut q) = self.pending.try_write() {
                        q.push(*s);
                    }
                    retry = true;
                }
            }
        }
        if retry && !self.refill_kicked.swap(true, Relaxed) {
            k.kick_refill(REFILL_RETRY_MS);
        }
    }

    /// Copies an event into the bounded queue (or counts it lost) and kicks the event work.
    fn queue_event(&self, k: &impl Kernel, state: u32, proto: u32, exe: ExeId) {
        if self.is_stopping() {
            return;
        }
        let mut path = ExePath::EMPTY;
        if !self.engine.exe_path(exe, &mut path) {
            return;
        }
        let queued = match self.events.try_write() {
            Some(mut ring) => ring.push(state, proto, &path),
            None => false,
        };
        if !queued {
            self.engine.flags.count(Flag::EvLost);
            return;
        }
        if !self.events_kicked.swap(true, Relaxed) {
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
                    &mut |w| e7_proto::msg::emit_event(w, state, rec.proto, rec.path.as_bytes()),
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
