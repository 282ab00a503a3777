//! Sharing the engine between CPUs: every structure behind a `lock_api::RwLock<R, _>`, generic over
//! the raw lock `R`.
//!
//! Why generic: the kernel module supplies a raw lock backed by a BH-safe kernel `rwlock_t`; userspace
//! uses `parking_lot::RawRwLock` (feature `std`). The engine code is the same in both.
//!
//! Why read/write locks per structure (not one big lock): the per-packet hit path takes only the
//! *shared* lock of the socket cache (the lookup and the verdict store touch atomics only), so packets
//! on different CPUs never serialise. Exclusive locks are taken on misses (insert into the socket
//! cache, intern a path, rebuild the active-socket table) and on admin edits. No exclusive lock is ever
//! held while another lock is taken, and shared locks nest only in the order
//! `sockets → exes → rules`, so there is no lock-order cycle.
//!
//! The policy generation (flags generation + rule generation) is readable without any lock: rule
//! edits go through [`Engine::edit_rules`], which publishes the ring's generation in an atomic before
//! releasing the write lock.

use core::sync::atomic::{AtomicU32, Ordering};

pub use lock_api::{RawRwLock, RwLock};

use crate::active::{ActiveCache, ActiveLookup, ProcessTable};
use crate::decide::{decide, decide_early, Decision, Event, PacketFacts};
use crate::exe::{ExeId, ExeTable};
use crate::flags::{policy_generation, Flags, Mode};
use crate::path::ExePath;
use crate::rules::RuleRing;
use crate::schema::Flag;
use crate::socket::{CachedVerdict, Identity, KnownSocket, SocketCache, SocketKey};
use crate::squelch::Squelch;

/// What the hook knows about the packet's socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketFacts {
    /// Cache key (kernel: socket cookie).
    pub key: SocketKey,
    /// Socket inode (0 when the socket has no file).
    pub inode: u64,
    /// Socket owner uid.
    pub uid: u32,
    /// False when there is no full socket (no socket, request/timewait socket): the packet is
    /// unidentified (`unkproc`) without any lookup.
    pub full: bool,
    /// The tgid of the current task **if** the caller verified it owns the socket (cheap first guess,
    /// avoids a process-table walk).
    pub owner_hint: Option<u32>,
}

/// Result of [`ExeResolver::exe_path`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExeLookup {
    /// The path was written to `out`.
    Found,
    /// The process exists but its executable path exceeds 255 bytes.
    TooLong,
    /// No such process, or it has no executable (kernel thread, exiting).
    Gone,
}

/// Resolves a process to its executable path (kernel: `d_path` of `mm->exe_file`; userspace:
/// `/proc/<tgid>/exe`).
pub trait ExeResolver {
    /// Writes the executable path of `tgid` into `out`.
    fn exe_path(&mut self, tgid: u32, out: &mut ExePath) -> ExeLookup;
}

/// The result of [`Engine::decide_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The decision (verdict, event kind, reason).
    pub decision: Decision,
    /// The event to deliver after squelching, if any (copy the path with [`Engine::exe_path`]).
    pub event: Option<Event>,
    /// True when the decision came from the known-socket cache with a still-valid verdict (the fast
    /// path: no path string was touched).
    pub cached: bool,
}

/// All engine state, shareable between CPUs (see the module docs). Capacities are the documented
/// defaults unless given. Constructible in a `static` with [`Engine::new`].
pub struct Engine<
    R: RawRwLock,
    const RULES: usize = 1024,
    const SETS: usize = 128,
    const WAYS: usize = 8,
    const EXES: usize = 256,
    const ACTIVE: usize = 1024,
> {
    /// Runtime flags (atomics; no lock).
    pub flags: Flags,
    /// Rules. Edit through [`Engine::edit_rules`] so cached verdicts are invalidated.
    pub rules: RwLock<R, RuleRing<RULES>>,
    /// Executable paths.
    pub exes: RwLock<R, ExeTable<EXES>>,
    /// Known sockets.
    pub sockets: RwLock<R, SocketCache<SETS, WAYS>>,
    /// Active-socket table (only ever write-locked: it is a miss-path structure).
    pub active: RwLock<R, ActiveCache<ACTIVE>>,
    /// Event rate limiter (atomics; no lock).
    pub squelch: Squelch<EXES>,
    rules_gen: AtomicU32,
}

impl<
        R: RawRwLock,
        const RULES: usize,
        const SETS: usize,
        const WAYS: usize,
        const EXES: usize,
        const ACTIVE: usize,
    > Default for Engine<R, RULES, SETS, WAYS, EXES, ACTIVE>
{
    fn default() -> Self {
        Self::new()
    }
}

impl<
        R: RawRwLock,
        const RULES: usize,
        const SETS: usize,
        const WAYS: usize,
        const EXES: usize,
        const ACTIVE: usize,
    > Engine<R, RULES, SETS, WAYS, EXES, ACTIVE>
{
    /// A fresh engine: default flags (mode disabled), no rules, empty caches.
    pub const fn new() -> Self {
        Engine {
            flags: Flags::new(),
            rules: RwLock::const_new(R::INIT, RuleRing::new()),
            exes: RwLock::const_new(R::INIT, ExeTable::new()),
            sockets: RwLock::const_new(R::INIT, SocketCache::new()),
            active: RwLock::const_new(R::INIT, ActiveCache::new()),
            squelch: Squelch::new(),
            rules_gen: AtomicU32::new(0),
        }
    }

    /// The current policy generation (flags + rules), lock-free.
    pub fn policy_generation(&self) -> u32 {
        policy_generation(
            self.flags.generation(),
            self.rules_gen.load(Ordering::Acquire),
        )
    }

    /// Runs `f` on the rules under the write lock and publishes the new rule generation, so every
    /// cached verdict computed before the edit is recomputed on its socket's next packet.
    pub fn edit_rules<T>(&self, f: impl FnOnce(&mut RuleRing<RULES>) -> T) -> T {
        let mut ring = self.rules.write();
        let out = f(&mut ring);
        self.rules_gen.store(ring.generation(), Ordering::Release);
        out
    }

    /// Copies the path of `exe` into `out` (for an event); false if the id went stale.
    pub fn exe_path(&self, exe: ExeId, out: &mut ExePath) -> bool {
        match self.exes.read().get(exe) {
            Some(p) => {
                out.clone_from(p);
                true
            }
            None => false,
        }
    }

    /// Forgets every cached socket and executable (e.g. on module reset), in place.
    pub fn clear_caches(&self) {
        self.sockets.write().clear();
        self.exes.write().clear();
        self.active.write().clear();
        self.squelch.clear();
    }

    /// Decides one packet: early decision, then the known-socket cache (fast path: shared lock, no
    /// path string), then identification on a miss. Applies squelch to PENDING events and counts
    /// `qpackets` for every packet decided while mode is not disabled.
    pub fn decide_packet(
        &self,
        facts: &PacketFacts,
        sock: &SocketFacts,
        now_ms: u64,
        table: &mut impl ProcessTable,
        resolver: &mut impl ExeResolver,
    ) -> Outcome {
        let flags = self.flags.snapshot();
        if flags.mode != Mode::Disabled {
            self.flags.count(Flag::QPackets);
        }
        if let Some(decision) = decide_early(&flags, facts) {
            return Outcome {
                decision,
                event: None,
                cached: false,
            };
        }
        if !sock.full {
            let d = decide(&flags, facts, &Identity::Unknown, None);
            return self.finish(d, facts, &Identity::Unknown, now_ms, false);
        }
        // Read the generation before any rule: a verdict computed under newer rules but tagged with
        // an older generation is merely recomputed, never the other way round.
        let gen = self.policy_generation();

        // Fast path (shared lock, atomics only).
        let hit = self.sockets.read().lookup(sock.key);
        if let Some((known, cv)) = hit {
            if let Some(d) = cv.get_for(gen, facts.proto) {
                return self.finish(d, facts, &known.exe, now_ms, true);
            }
            // Stale verdict: recompute from the cached identity.
            let d = match known.exe {
                Identity::Exe(id) => {
                    let exes = self.exes.read();
                    exes.get(id).map(|path| {
                        let rule = self.rules.read().lookup(facts.proto, path);
                        decide(&flags, facts, &known.exe, rule.map(|m| m.action))
                    })
                }
                other => Some(decide(&flags, facts, &other, None)),
            };
            if let Some(d) = d {
                self.sockets
                    .read()
                    .store_verdict(sock.key, CachedVerdict::for_proto(d, gen, facts.proto));
                return self.finish(d, facts, &known.exe, now_ms, false);
            }
            // The executable was evicted from the table: identify again below.
        }

        // Miss: find the owner, then its executable.
        let owner = match sock.owner_hint {
            Some(t) => Some(t),
            None => match self.active.write().find(sock.inode, now_ms, table) {
                ActiveLookup::Owner(t) => Some(t),
                ActiveLookup::NotFound | ActiveLookup::RateLimited => None,
            },
        };
        let Some(tgid) = owner else {
            let d = decide(&flags, facts, &Identity::Unknown, None);
            return self.finish(d, facts, &Identity::Unknown, now_ms, false);
        };
        let mut path = ExePath::EMPTY;
        let (ident, rule) = match resolver.exe_path(tgid, &mut path) {
            ExeLookup::Found if !path.is_empty() => {
                let id = self.exes.write().intern_path(&path);
                let rule = self.rules.read().lookup(facts.proto, &path);
                (Identity::Exe(id), rule.map(|m| m.action))
            }
            ExeLookup::TooLong => (Identity::PathTooLong, None),
            ExeLookup::Found | ExeLookup::Gone => (Identity::Unknown, None),
        };
        let d = decide(&flags, facts, &ident, rule);
        if ident != Identity::Unknown {
            let mut sockets = self.sockets.write();
            sockets.insert(
                sock.key,
                KnownSocket {
                    inode: sock.inode,
                    tgid,
                    uid: sock.uid,
                    exe: ident,
                },
            );
            sockets.store_verdict(sock.key, CachedVerdict::for_proto(d, gen, facts.proto));
        }
        self.finish(d, facts, &ident, now_ms, false)
    }

    fn finish(
        &self,
        decision: Decision,
        facts: &PacketFacts,
        ident: &Identity,
        now_ms: u64,
        cached: bool,
    ) -> Outcome {
        let mut event = decision.event_record(facts, ident);
        if let Some(e) = event {
            if decision.squelch && !self.squelch.permit(e.proto, e.exe, now_ms) {
                event = None;
            }
        }
        Outcome {
            decision,
            event,
            cached,
        }
    }
}
