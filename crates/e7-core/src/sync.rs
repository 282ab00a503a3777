//! Sharing the engine between CPUs: every structure behind a `lock_api::RwLock<R, _>`, generic over
//! the raw lock `R`.
//!
//! Why generic: the kernel module supplies a raw lock backed by a BH-safe kernel `rwlock_t`; userspace
//! uses `parking_lot::RawRwLock` (feature `std`). The engine code is the same in both.
//!
//! Why read/write locks per structure (not one big lock): packets on different CPUs never
//! serialise. The per-packet hit path takes no lock at all: the socket cache
//! ([`SharedSockets`]) keeps its entries in atomics under a sequence count per
//! entry, and its lock orders only its writers (and the verdict stores of the recompute path). Exclusive locks are taken on misses (insert into the socket
//! cache, intern a path, rebuild the active-socket table) and on admin edits. No exclusive lock is ever
//! held while another lock is taken, and shared locks nest only in the order
//! `sockets → exes → rules → qualified`, so there is no lock-order cycle (a qualified edit takes
//! the ring's write lock, then the qualified table's).
//!
//! The policy generation (flags generation + rule generation) is readable without any lock: rule
//! edits go through [`Engine::edit_rules`], which publishes the ring's generation in an atomic before
//! releasing the write lock.

use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

pub use lock_api::{RawRwLock, RwLock};

use crate::active::{
    ActiveCache, ActiveLookup, ChunkEnd, SliceEnd, SocketOwner, WALK_CHUNK, WALK_SLICE_CHUNKS,
    WALK_SLICE_MS,
};
use crate::decide::{decide, decide_early, Decision, Event, PacketFacts, Reason, Verdict};
use crate::exe::{ExeId, ExeTable};
use crate::flags::{Action, FlagValues, Flags, Mode};
use crate::host::{
    Deferred, ExeError, Host, Packet, RouteHop, SockKind, Stat, TaskId, ROUTE_ADDRS_MAX,
};
use crate::image::ImageCache;
use crate::path::ExePath;
use crate::qualified::{decide_rule, QualTable, QUAL_PATH_BYTES, QUAL_RULES};
use crate::rules::RuleRing;
use crate::schema::Flag;
use crate::socket::{
    CachedVerdict, DestKey, DestSecret, Fast, FastIdentity, Identity, KnownSocket, SharedSockets,
    SocketKey,
};
use crate::squelch::Squelch;

/// The result of [`Engine::decide_packet`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// The decision (verdict, event kind, reason).
    pub decision: Decision,
    /// The event to deliver (squelch already applied; `None` when the host wants no events). Copy
    /// its path with [`Engine::exe_path`].
    pub event: Option<Event>,
    /// True when the decision came from the known-socket cache with a still-valid verdict (the fast
    /// path: no path string was touched).
    pub cached: bool,
    /// Who the packet was attributed to (for debug logging).
    pub ident: Identity,
    /// A routed packet ([`Peer::routed`](crate::Peer::routed)) refused for an address its route
    /// names beyond its IP destination: that address's index ([`Host::route_hop`]), which its
    /// event names. `None` otherwise. (An index, not the address: one byte keeps the outcome the
    /// hook returns as small as before.)
    pub route_hop: Option<u8>,
}

/// A packet answered by the hit path alone ([`Engine::decide_packet_fast`]): a still-valid cached
/// decision that asks for no event. Decoded only when wanted (the kernel's hook needs the verdict
/// bit alone).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CachedHit {
    bits: u8,
    ident: u64,
}

impl CachedHit {
    /// The verdict (bit 0 of [`Decision::to_bits`]).
    #[inline(always)]
    pub const fn verdict(self) -> Verdict {
        if self.bits & 1 == 0 {
            Verdict::Accept
        } else {
            Verdict::Drop
        }
    }

    /// The decision bits ([`Decision::to_bits`]) of the cached verdict.
    #[inline(always)]
    pub const fn bits(self) -> u8 {
        self.bits
    }

    /// The program the cached verdict was earned by as [`ExeId::to_u64`], or 0 when it was not
    /// a program (the kernel keys its per-program counters with it; no decode).
    #[inline(always)]
    pub const fn exe_word(self) -> u64 {
        FastIdentity::exe_word(self.ident)
    }

    /// The whole outcome, as [`Engine::decide_packet`] reports it.
    pub fn outcome(self) -> Outcome {
        Outcome {
            decision: Decision::from_bits(self.bits).unwrap_or(Decision::DEFERRED),
            event: None,
            cached: true,
            ident: FastIdentity::get(self.ident),
            route_hop: None,
        }
    }
}

/// The result of [`Engine::decide_packet_fast`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decided {
    /// The hit path answered (no event to deliver).
    Hit(CachedHit),
    /// The full path answered.
    Full(Outcome),
}

impl Outcome {
    const fn plain(decision: Decision) -> Outcome {
        Outcome {
            decision,
            event: None,
            cached: false,
            ident: Identity::Unknown,
            route_hop: None,
        }
    }
}

/// Result of [`Engine::identify_deferred`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeferredOutcome {
    /// The socket is in the known-socket cache already (resolved meanwhile).
    Known,
    /// The owner was found and the socket inserted into the known-socket cache.
    Inserted,
    /// No owner found (or its executable could not be read): nothing cached.
    NotFound,
    /// Not answered yet: the walk is rate-limited, or its cycle has not covered the whole table
    /// since the socket was asked for. Try again after the interval.
    RateLimited,
}

/// Most sockets one [`Engine::identify_deferred_batch`] call answers (the kernel's refill queue
/// holds as many); the rest of a longer batch is returned for a retry.
pub const DEFERRED_BATCH: usize = 128;

/// What [`Engine::identify_deferred_batch`] did with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeferredReport {
    /// Already in the known-socket cache.
    pub known: usize,
    /// Owner found and inserted into the known-socket cache.
    pub inserted: usize,
    /// No owner (a whole walk did not see it, or its executable could not be read).
    pub not_found: usize,
    /// Not answered yet; moved to the front of the batch: retry the first `retry` entries later.
    pub retry: usize,
}

/// Per-socket state inside [`Engine::identify_deferred_batch`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pend {
    Open,
    Owner(u32),
    Done(DeferredOutcome),
}

/// How a walk slice run by the engine went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Walked {
    /// No slice may start now.
    RateLimited,
    /// A slice ran: whether it started its cycle, and how it ended.
    Ran { fresh: bool, end: SliceEnd },
}

impl Walked {
    /// A whole cycle ran in this slice: what it did not see has no owner.
    fn covered_all(self) -> bool {
        self == Walked::Ran {
            fresh: true,
            end: SliceEnd::Complete,
        }
    }
}

/// Counters of the packet path (diagnostics and tests; not on the wire), for hosts that do not
/// count themselves ([`Host::count`]; the kernel module counts per CPU and leaves these at 0).
#[derive(Debug, Default)]
pub struct PathStats {
    /// Packets answered from a still-valid cached decision.
    pub hits: AtomicU64,
    /// Misses resolved in task context (`d_path` or its equivalent).
    pub task_resolved: AtomicU64,
    /// Misses resolved without a lock or path read: the sending task holds the socket and its
    /// process image was resolved before (any context).
    pub image_resolved: AtomicU64,
    /// Misses handed to the host's deferred work.
    pub deferred: AtomicU64,
    /// Task-context packets of a cached socket sent by another process image than the one its
    /// verdict was earned by: re-identified.
    pub resent: AtomicU64,
    /// Sockets the deferred work inserted into the known-socket cache.
    pub refilled: AtomicU64,
    /// Longest time, in nanoseconds ([`Host::now_ns`]), one chunk merge of a process-table walk
    /// kept the active-socket cache's lock, waiting included: in the kernel the longest section
    /// with bottom halves off that a walk causes.
    pub walk_lock_ns_max: AtomicU64,
    /// Sum of those lock holds, in nanoseconds (with [`PathStats::walk_merges`]: the mean).
    pub walk_lock_ns_total: AtomicU64,
    /// Chunk merges of process-table walks.
    pub walk_merges: AtomicU64,
}

impl PathStats {
    const fn new() -> Self {
        PathStats {
            hits: AtomicU64::new(0),
            task_resolved: AtomicU64::new(0),
            image_resolved: AtomicU64::new(0),
            deferred: AtomicU64::new(0),
            resent: AtomicU64::new(0),
            refilled: AtomicU64::new(0),
            walk_lock_ns_max: AtomicU64::new(0),
            walk_lock_ns_total: AtomicU64::new(0),
            walk_merges: AtomicU64::new(0),
        }
    }
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

impl PathStats {
    /// The shared counter for `s` (`None` for [`Stat::Packets`], which is the `qpackets` flag).
    fn counter(&self, s: Stat) -> Option<&AtomicU64> {
        match s {
            Stat::Packets => None,
            Stat::Hits => Some(&self.hits),
            Stat::TaskResolved => Some(&self.task_resolved),
            Stat::ImageResolved => Some(&self.image_resolved),
            Stat::Deferred => Some(&self.deferred),
            Stat::Resent => Some(&self.resent),
            Stat::Refilled => Some(&self.refilled),
        }
    }
}

/// Identification of a socket missed in the known-socket cache.
struct Found {
    ident: Identity,
    owner: TaskId,
    /// Cache the socket (with this identity) in the known-socket cache.
    cache: bool,
    /// The owner could not be found right now; identification was deferred (the packet drops).
    deferred: bool,
    /// The verdict the owner's process image remembered (see [`ImageCache`]), or empty.
    memo: CachedVerdict,
}

impl Found {
    const UNCACHED: Found = Found {
        ident: Identity::Unknown,
        owner: TaskId::tgid_only(0),
        cache: false,
        deferred: false,
        memo: CachedVerdict::EMPTY,
    };
}

/// Identification in task context.
enum InTask {
    Found(Identity, TaskId, CachedVerdict),
    NoOwner,
    RateLimited,
    /// The owner's executable path could not be verified in this context
    /// ([`ExeError::Unverified`]): defer to the work, which can.
    Unverified,
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
    const QUAL: usize = { QUAL_RULES },
    const QUAL_BYTES: usize = { QUAL_PATH_BYTES },
> {
    /// Runtime flags (atomics; no lock).
    pub flags: Flags,
    /// Rules. Edit through [`Engine::edit_rules`] so cached verdicts are invalidated.
    pub rules: RwLock<R, RuleRing<RULES>>,
    /// Rules with `to`/`port`/`user` qualifiers. Edit through [`Engine::edit_qualified`].
    pub qualified: RwLock<R, QualTable<QUAL, QUAL_BYTES>>,
    /// Executable paths.
    pub exes: RwLock<R, ExeTable<EXES>>,
    /// Known sockets: lock-free reads ([`SharedSockets::lookup`]), writers under its lock.
    pub sockets: SharedSockets<R, SETS, WAYS>,
    /// Active-socket table (only ever write-locked: it is a miss-path structure).
    pub active: RwLock<R, ActiveCache<ACTIVE>>,
    /// Process images already resolved (softirq identification without `d_path`).
    pub images: RwLock<R, ImageCache>,
    /// Event rate limiter (atomics; no lock).
    pub squelch: Squelch<EXES>,
    /// Packet-path counters.
    pub stats: PathStats,
    /// Qualified rules held (0: the packet path never takes `qualified`'s lock).
    qual_len: AtomicU32,
    /// Some qualified rule depends on the destination or port.
    qual_per_dest: AtomicBool,
    /// The key of [`DestKey`]'s IPv6 hash ([`Engine::set_destination_secret`]).
    dest_secret: [AtomicU64; 2],
}

impl<
        R: RawRwLock,
        const RULES: usize,
        const SETS: usize,
        const WAYS: usize,
        const EXES: usize,
        const ACTIVE: usize,
        const QUAL: usize,
        const QUAL_BYTES: usize,
    > Default for Engine<R, RULES, SETS, WAYS, EXES, ACTIVE, QUAL, QUAL_BYTES>
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
        const QUAL: usize,
        const QUAL_BYTES: usize,
    > Engine<R, RULES, SETS, WAYS, EXES, ACTIVE, QUAL, QUAL_BYTES>
{
    /// A fresh engine: default flags (mode disabled), no rules, empty caches.
    pub const fn new() -> Self {
        Engine {
            flags: Flags::new(),
            rules: RwLock::const_new(R::INIT, RuleRing::new()),
            qualified: RwLock::const_new(R::INIT, QualTable::new()),
            exes: RwLock::const_new(R::INIT, ExeTable::new()),
            sockets: SharedSockets::new(),
            active: RwLock::const_new(R::INIT, ActiveCache::new()),
            images: RwLock::const_new(R::INIT, ImageCache::new()),
            squelch: Squelch::new(),
            stats: PathStats::new(),
            qual_len: AtomicU32::new(0),
            qual_per_dest: AtomicBool::new(false),
            dest_secret: [const { AtomicU64::new(0) }; 2],
        }
    }

    /// Sets the secret key of the IPv6 destination hash the socket cache compares
    /// ([`DestKey`]): random bytes, once, before the first packet (the kernel module: at load,
    /// before its hooks exist). Until then the key is zero, and a sender who knows that could pick
    /// two IPv6 destinations with the same 62-bit word.
    pub fn set_destination_secret(&self, secret: DestSecret) {
        for (word, k) in self.dest_secret.iter().zip(secret) {
            word.store(k, Ordering::Relaxed);
        }
    }

    /// The destination word of a packet to `peer` (see [`DestKey`]).
    #[inline(always)]
    pub fn dest_key(&self, peer: &crate::host::Peer) -> DestKey {
        // Only an IPv6 destination reads the secret (two relaxed loads of a read-mostly line).
        if let Some(crate::qualified::Addr::V6(_)) = peer.dst {
            let secret = [
                self.dest_secret[0].load(Ordering::Relaxed),
                self.dest_secret[1].load(Ordering::Relaxed),
            ];
            return DestKey::of(peer, &secret);
        }
        DestKey::of(peer, &[0, 0])
    }

    /// The current policy generation (flags + rules), lock-free.
    pub fn policy_generation(&self) -> u32 {
        self.flags.policy_generation()
    }

    /// Runs `f` on the rules under the write lock and publishes the new rule generation, so every
    /// cached verdict computed before the edit is recomputed on its socket's next packet.
    pub fn edit_rules<T>(&self, f: impl FnOnce(&mut RuleRing<RULES>) -> T) -> T {
        let mut ring = self.rules.write();
        let out = f(&mut ring);
        // Qualified edits also hold the ring's write lock, so this sum is never torn.
        let qual_gen = self.qualified.read().generation();
        self.flags
            .publish_rules_generation(ring.generation().wrapping_add(qual_gen));
        out
    }

    /// Whether some qualified rule depends on the packet's destination or port: a host that reads
    /// the destination only when a rule needs it (the kernel's hook) reads this word first. Set
    /// by [`Engine::edit_qualified`] before the new rule generation is published.
    pub fn per_destination_word(&self) -> &AtomicBool {
        &self.qual_per_dest
    }

    /// Runs `f` on the qualified rules (under the ring's write lock too, so the published rule
    /// generation — the sum of both tables' — moves by one per edit) and publishes it.
    pub fn edit_qualified<T>(&self, f: impl FnOnce(&mut QualTable<QUAL, QUAL_BYTES>) -> T) -> T {
        let ring = self.rules.write();
        let mut qual = self.qualified.write();
        let out = f(&mut qual);
        self.qual_len.store(
            u32::try_from(qual.len()).unwrap_or(u32::MAX),
            Ordering::Release,
        );
        self.qual_per_dest
            .store(qual.depends_on_destination(), Ordering::Release);
        self.flags
            .publish_rules_generation(ring.generation().wrapping_add(qual.generation()));
        out
    }

    /// The action of the rule that decides a packet with `facts` from `path`: the ring's match
    /// and, when qualified rules exist, the qualified table's, by precedence
    /// ([`decide_rule`](crate::qualified::decide_rule)).
    pub fn rule_action(&self, facts: &PacketFacts, path: &ExePath) -> Option<Action> {
        let plain = self.rules.read().lookup(facts.proto, path);
        if self.qual_len.load(Ordering::Acquire) == 0 {
            return plain.map(|m| m.action);
        }
        let qual = self.qualified.read().lookup(&facts.qual_facts(), path);
        decide_rule(plain, qual)
    }

    /// A routed packet ([`Peer::routed`](crate::Peer::routed)) is decided for every address it
    /// names: `first`, its decision for the IP destination, stands only if the decision `at`
    /// gives for each address of its route ([`Host::route_hop`], in header order, the same port
    /// and uid) accepts too; the first that does not is the packet's decision, with that address's
    /// index (for the event). A route that cannot be read, or names more than [`ROUTE_ADDRS_MAX`]
    /// addresses, is decided as a malformed packet (`fail`). Not routed, or `first` refuses
    /// already: `first`.
    fn route_decision<H: Host>(
        host: &H,
        routed: bool,
        flags: &FlagValues,
        facts: &PacketFacts,
        first: Decision,
        mut at: impl FnMut(&PacketFacts) -> Decision,
    ) -> (Decision, Option<u8>) {
        if !routed || first.verdict != Verdict::Accept {
            return (first, None);
        }
        let unreadable = || {
            decide_early(flags, &PacketFacts::malformed(facts.family)).unwrap_or(Decision::DEFERRED)
        };
        // Bounded: one more index than a route can hold, which must be the end.
        for i in 0..=ROUTE_ADDRS_MAX {
            let a = match host.route_hop(i) {
                RouteHop::End => return (first, None),
                RouteHop::Addr(_) if i == ROUTE_ADDRS_MAX => return (unreadable(), None),
                RouteHop::Addr(a) => a,
                RouteHop::Unreadable => return (unreadable(), None),
            };
            let d = at(&facts.with_peer(Some(a), facts.dport, facts.uid));
            if d.verdict != Verdict::Accept {
                return (d, u8::try_from(i).ok());
            }
        }
        (unreadable(), None)
    }

    /// [`Engine::finish`] for a decision [`Engine::route_decision`] made.
    fn finish_routed<H: Host>(
        &self,
        host: &H,
        facts: &PacketFacts,
        ident: Identity,
        (decision, route_hop): (Decision, Option<u8>),
    ) -> Outcome {
        Outcome {
            route_hop,
            ..self.finish(host, facts, ident, decision, false)
        }
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

    /// Counts `s` in the host's counters, or else in the engine's shared ones.
    fn count<H: Host>(&self, host: &H, s: Stat) {
        if host.count(s) {
            return;
        }
        match self.stats.counter(s) {
            Some(c) => bump(c),
            None => self.flags.count(Flag::QPackets),
        }
    }

    /// Forgets every cached socket and executable (e.g. on module reset), in place.
    pub fn clear_caches(&self) {
        self.sockets.write().clear();
        self.exes.write().clear();
        self.active.write().clear();
        self.images.write().clear();
        self.squelch.clear();
    }

    /// Decides one packet — THE packet path, for the kernel module and userspace alike: early
    /// decision (mode, malformed), then the known-socket cache (fast path: no lock, a
    /// sequence-counted read, no path string), a recompute from the cached identity after a policy change,
    /// and identification through `host` on a miss. Counts `qpackets` for every packet decided
    /// while mode is not disabled; applies squelch to PENDING events.
    ///
    /// Identification of a user socket on a miss:
    /// 1. task context: the sender ([`Host::sender`], the current user task — whether or not a
    ///    descriptor table holds the socket: io_uring registered files, passed descriptors), by its
    ///    known process image or else its executable; a kernel thread: the owner from the
    ///    active-socket cache (a rate-limited process-table walk), then its executable;
    /// 2. softirq: the interrupted task holds the socket and its process image was resolved
    ///    before (lock-free);
    /// 3. otherwise (softirq, or a rate-limited walk): [`Host::defer`]; the packet is DROPPED
    ///    ([`Decision::DEFERRED`]: never `unkproc`, which would let it leave as if unowned — TCP
    ///    retransmits) and nothing is cached; the deferred work ([`Engine::identify_deferred`])
    ///    caches the socket, so its next packet is decided by its owner's rules.
    ///
    /// A cached socket remembers the process image its verdict was earned by: in task context a
    /// packet sent by another image (after fork or exec, or on a descriptor passed with
    /// SCM_RIGHTS or taken with pidfd_getfd) is re-identified as its sender's. Softirq packets
    /// (TCP retransmits, ACK-clocked data, timers) carry no sender and use the socket's last
    /// task-context identification.
    pub fn decide_packet<'s, H: Host>(&self, host: &H, pkt: &Packet<H::Sock<'s>>) -> Outcome {
        match self.decide_packet_fast(host, pkt) {
            Decided::Hit(h) => h.outcome(),
            Decided::Full(o) => o,
        }
    }

    /// [`Engine::decide_packet`], with the hit path's answer left undecoded: a host that needs only
    /// the verdict of a cached hit (the kernel's hook) reads one bit of it. Same decisions, same
    /// counting.
    #[inline(always)]
    pub fn decide_packet_fast<'s, H: Host>(&self, host: &H, pkt: &Packet<H::Sock<'s>>) -> Decided {
        // Disabled: accept with no work at all (one relaxed load).
        if self.flags.mode() == Mode::Disabled {
            return Decided::Full(Outcome::plain(Decision {
                verdict: Verdict::Accept,
                event: None,
                squelch: false,
                reason: Reason::Disabled,
            }));
        }
        self.count(host, Stat::Packets);
        // Read the generation before the flags and any rule (acquire: pairs with the release of
        // every flag or rule change), so a verdict is never tagged with a generation newer than
        // the policy it was computed under; at worst it is tagged older and merely recomputed.
        // One read-mostly line: the flags' and the rules' generations sit beside the mode.
        let gen = self.policy_generation();
        // The destination word, before any call to the host: a host whose packets never carry a
        // destination (the kernel while no rule depends on one) passes a constant peer, and this
        // is then a constant too (after a call the compiler would have to reload the peer).
        let dest = self.dest_key(&pkt.peer);
        // Likewise whether the packet names a route (a constant false on that path).
        let routed = pkt.peer.routed;

        // Fast path: lock-free (the socket cache's sequence-counted read writes nothing shared),
        // no flags snapshot, no facts. A verdict is cached only for a packet `decide_early` did
        // not decide (mode enabled, well-formed), tagged with the generation it was computed
        // under and its protocol; so a still-valid one means `decide_early` would decide nothing
        // now either (a mode change bumps the generation). Malformed packets never take it.
        // A routed packet never: its verdict depends on every address it names.
        if !pkt.malformed && !routed {
            if let Some(sk) = pkt.sk {
                let key = host.sock_key(sk);
                // In task context the sender is known: the check refuses a verdict earned by
                // another process image (the full path then re-identifies).
                let sender = if pkt.in_task { host.sender(sk) } else { None };
                // The verdict answers only packets to the destination it was decided for.
                if let Fast::Hit(bits, ident) =
                    self.sockets
                        .check(key, gen, pkt.proto, dest, sender.as_ref())
                {
                    self.count(host, Stat::Hits);
                    if Decision::bits_have_no_event(bits) {
                        // The common hit: no event to build, nothing else to read or decode.
                        return Decided::Hit(CachedHit { bits, ident });
                    }
                    if Decision::bits_squelched(bits) {
                        // A squelched event (a program without a rule): what `finish` would do,
                        // without decoding; most such packets end here with no event at all.
                        let Some(exe) = FastIdentity::exe(ident) else {
                            return Decided::Hit(CachedHit { bits, ident });
                        };
                        if !host.wants_events()
                            || !self.squelch.permit(pkt.proto, exe, host.now_secs())
                        {
                            return Decided::Hit(CachedHit { bits, ident });
                        }
                        return Decided::Full(Self::hit_event(pkt, bits, exe));
                    }
                    return Decided::Full(self.hit_with_event(host, pkt, bits, ident));
                }
            }
        }
        Decided::Full(self.decide_full(host, pkt, gen, dest))
    }

    /// A cached hit whose squelched event the squelch permitted (once per program, protocol and
    /// second): the event.
    #[inline(never)]
    fn hit_event<S>(pkt: &Packet<S>, bits: u8, exe: ExeId) -> Outcome {
        let decision = Decision::from_bits(bits).unwrap_or(Decision::DEFERRED);
        Outcome {
            decision,
            event: decision.event.map(|kind| Event {
                kind,
                proto: pkt.proto,
                exe,
            }),
            cached: true,
            ident: Identity::Exe(exe),
            route_hop: None,
        }
    }

    /// A still-valid cached decision that asks for an unsquelched event (`drops`/`accepts`): the
    /// event, with no second lookup.
    #[inline(never)]
    fn hit_with_event<'s, H: Host>(
        &self,
        host: &H,
        pkt: &Packet<H::Sock<'s>>,
        bits: u8,
        ident: u64,
    ) -> Outcome {
        let d = Decision::from_bits(bits).unwrap_or(Decision::DEFERRED);
        let facts = PacketFacts::new(pkt.proto, pkt.family);
        self.finish(host, &facts, FastIdentity::get(ident), d, true)
    }

    /// Everything but the common hit (out of line, so the hit path keeps its registers): a hit
    /// that asks for an event, a busy entry read under the lock, a stale verdict recomputed, a
    /// sender re-identified, a miss identified.
    #[inline(never)]
    fn decide_full<'s, H: Host>(
        &self,
        host: &H,
        pkt: &Packet<H::Sock<'s>>,
        gen: u32,
        dest: DestKey,
    ) -> Outcome {
        let sk = pkt.sk.filter(|_| !pkt.malformed);
        let mut hit = None;
        if let Some(sk) = sk {
            let key = host.sock_key(sk);
            let sender = if pkt.in_task { host.sender(sk) } else { None };
            // A verdict decided for another destination reads as none (recomputed below).
            if let Some((known, cv)) = self.sockets.lookup_at(key, dest) {
                // In task context the sender is known: a verdict earned by another process image
                // (fork, exec, a descriptor passed on) is not reused, the sender is identified.
                let same_sender = known.owner.tgid == 0 || sender.is_none_or(|t| t == known.owner);
                if !same_sender {
                    self.count(host, Stat::Resent);
                } else if let Some(d) = cv.get_for(gen, pkt.proto).filter(|_| !pkt.peer.routed) {
                    // The entry was busy for the lock-free check: read under the lock.
                    self.count(host, Stat::Hits);
                    let facts = PacketFacts::new(pkt.proto, pkt.family);
                    return self.finish(host, &facts, known.exe, d, true);
                }
                hit = Some((key, known, same_sender));
            }
        }

        let facts = if pkt.malformed {
            PacketFacts::malformed(pkt.family)
        } else {
            PacketFacts::new(pkt.proto, pkt.family)
        };
        // Past the fast path: the destination and uid, for qualified rules (the hit path above
        // never reads them).
        let facts = facts.with_peer(pkt.peer.dst, pkt.peer.dport, pkt.sk.map(|_| pkt.uid));
        let flags = self.flags.snapshot();
        if let Some(d) = decide_early(&flags, &facts) {
            return Outcome::plain(d);
        }
        let Some(sk) = pkt.sk else {
            // No full socket (none, or time-wait): nobody to identify.
            let d = decide(&flags, &facts, &Identity::Unknown, None);
            return self.finish(host, &facts, Identity::Unknown, d, false);
        };
        let key = match hit {
            Some((key, _, false)) => key,
            Some((key, known, true)) => {
                // Stale, or decided for another destination: recompute from the cached identity
                // (no identification work).
                if let Some(d) = self.recompute(&flags, &facts, &known.exe) {
                    let routed =
                        Self::route_decision(host, pkt.peer.routed, &flags, &facts, d, |f| {
                            // The executable went stale meanwhile: refused, no event.
                            self.recompute(&flags, f, &known.exe)
                                .unwrap_or(Decision::DEFERRED)
                        });
                    // A routed packet's verdict is never stored (it depends on every address its
                    // route names; the entry keeps its plain packets' verdict). Otherwise one
                    // store while the destination is the entry's; a new destination rewrites the
                    // entry (verdict and destination change together, under the write lock),
                    // unless another CPU holds the lock: a socket that sends everywhere (a
                    // listener's SYN-ACKs, a UDP server's replies) then skips a store its next
                    // packet would not use, and no packet waits for one.
                    if !pkt.peer.routed {
                        let cv = CachedVerdict::for_proto(d, gen, facts.proto);
                        if !self.sockets.read().store_verdict_at(key, cv, dest) {
                            if let Some(mut w) = self.sockets.try_write() {
                                w.insert_with_verdict_at(key, known, cv, dest);
                            }
                        }
                    }
                    return self.finish_routed(host, &facts, known.exe, routed);
                }
                // The executable was evicted from the table: identify again.
                self.sockets.write().forget(key);
                key
            }
            None => host.sock_key(sk),
        };

        let info = host.sock_info(sk);
        let found = match info.kind {
            // Orphaned or not yet accepted: the owner may show up later; do not cache.
            SockKind::Detached => Found::UNCACHED,
            // A kernel socket: no process will ever own it; cache the verdict.
            SockKind::Kernel => Found {
                cache: true,
                ..Found::UNCACHED
            },
            SockKind::User => self.identify_user(host, sk, info.inode, pkt, key),
        };
        if found.deferred {
            // Never as if unowned: the deferred work identifies the socket, TCP retransmits.
            return Outcome::plain(Decision::DEFERRED);
        }
        let d = self.decide_identified(&flags, &facts, &found, gen);
        let routed = Self::route_decision(host, pkt.peer.routed, &flags, &facts, d, |f| {
            decide(&flags, f, &found.ident, self.rule_for(f, &found.ident))
        });
        let d = routed.0;
        if found.cache {
            self.sockets.write().insert_with_verdict_at(
                key,
                KnownSocket {
                    inode: info.inode,
                    owner: found.owner,
                    uid: pkt.uid,
                    exe: found.ident,
                },
                // For this destination only: a packet elsewhere is decided again. A routed
                // packet's verdict is never stored (its identity is).
                if pkt.peer.routed {
                    CachedVerdict::EMPTY
                } else {
                    CachedVerdict::for_proto(d, gen, facts.proto)
                },
                dest,
            );
        }
        self.finish_routed(host, &facts, found.ident, routed)
    }

    /// A user socket missed in the cache (see [`Engine::decide_packet`]).
    fn identify_user<'s, H: Host>(
        &self,
        host: &H,
        sk: H::Sock<'s>,
        inode: u64,
        pkt: &Packet<H::Sock<'s>>,
        key: SocketKey,
    ) -> Found {
        let deferred = || {
            self.defer(
                host,
                Deferred {
                    key,
                    inode,
                    uid: pkt.uid,
                },
            );
            Found {
                deferred: true,
                ..Found::UNCACHED
            }
        };
        if !pkt.in_task {
            return match self.identify_by_image(host, sk) {
                Some((ident, memo, owner)) => Found {
                    ident,
                    owner,
                    cache: true,
                    deferred: false,
                    memo,
                },
                None => deferred(),
            };
        }
        match self.identify_in_task(host, sk, inode) {
            // An owner whose executable could not be read (exiting) is not cached: the socket's
            // next packet tries again.
            InTask::Found(ident, owner, memo) => Found {
                ident,
                owner,
                cache: ident != Identity::Unknown,
                deferred: false,
                memo,
            },
            InTask::NoOwner => Found::UNCACHED,
            // Let the deferred work try after the interval.
            InTask::RateLimited => deferred(),
            // Never decided by a path the process has not been verified to own (issue 7 hole 4):
            // the deferred work verifies it and remembers the image.
            InTask::Unverified => deferred(),
        }
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
                let exes = self.exes.read();
                let path = exes.get(*id)?;
                let rule = self.rule_action(facts, path);
                Some(decide(flags, facts, ident, rule))
            }
            other => Some(decide(flags, facts, other, None)),
        }
    }

    /// The decision for an identified socket's packet: the owner's remembered verdict when it is
    /// still valid (same policy generation and protocol, and no qualified rule exists, whose
    /// verdicts depend on more than the program), else the rule lookup — whose verdict the owner's
    /// process image then remembers for its next socket.
    fn decide_identified(
        &self,
        flags: &FlagValues,
        facts: &PacketFacts,
        found: &Found,
        gen: u32,
    ) -> Decision {
        let memo_ok = self.qual_len.load(Ordering::Acquire) == 0;
        if memo_ok {
            if let Some(d) = found.memo.get_for(gen, facts.proto) {
                return d;
            }
        }
        let rule = self.rule_for(facts, &found.ident);
        let d = decide(flags, facts, &found.ident, rule);
        if memo_ok && found.owner.tgid != 0 && found.ident != Identity::Unknown {
            self.images
                .read()
                .remember(&found.owner, CachedVerdict::for_proto(d, gen, facts.proto));
        }
        d
    }

    fn rule_for(&self, facts: &PacketFacts, ident: &Identity) -> Option<Action> {
        let Identity::Exe(id) = ident else {
            return None;
        };
        let exes = self.exes.read();
        let path = exes.get(*id)?;
        self.rule_action(facts, path)
    }

    /// The identity already known for process image `task`, unless its executable id went stale
    /// (its rule lookup would read as "no rule").
    fn known_image<H: Host>(&self, host: &H, task: &TaskId) -> Option<(Identity, CachedVerdict)> {
        let (ident, memo) = self.images.read().get_with_memo(task)?;
        if let Identity::Exe(e) = ident {
            self.exes.read().get(e)?;
        }
        self.count(host, Stat::ImageResolved);
        Some((ident, memo))
    }

    /// Any context, no lock beyond our own: the current (in softirq: interrupted) task holds the
    /// socket and its process image was resolved before.
    fn identify_by_image<'s, H: Host>(
        &self,
        host: &H,
        sk: H::Sock<'s>,
    ) -> Option<(Identity, CachedVerdict, TaskId)> {
        let task = host.sender_holds(sk)?;
        let (ident, memo) = self.known_image(host, &task)?;
        Some((ident, memo, task))
    }

    /// Task context: the sender (its known image, else its executable), whether or not a
    /// descriptor table holds the socket; without a user-process sender (a kernel thread), the
    /// owner from the active-socket cache (walking if allowed).
    fn identify_in_task<'s, H: Host>(&self, host: &H, sk: H::Sock<'s>, inode: u64) -> InTask {
        let sender = host.sender(sk);
        if let Some(task) = sender {
            if let Some((ident, memo)) = self.known_image(host, &task) {
                return InTask::Found(ident, task, memo);
            }
        }
        // Only now the path buffer (a known image, the common case, needs none).
        let mut path = ExePath::EMPTY;
        if sender.is_some() {
            let r = host.sender_exe(sk, &mut path);
            if matches!(r, Err(ExeError::Unverified(_))) {
                return InTask::Unverified;
            }
            if r != Err(ExeError::NoTask) {
                self.count(host, Stat::TaskResolved);
                let (ident, owner) = self.identity_of(r, &path);
                return InTask::Found(ident, owner, CachedVerdict::EMPTY);
            }
        }
        let known = self.active.read().lookup(inode, host.now_ms());
        let found = match known {
            Some(known) => known,
            // The kernel's hook never walks (it runs under RCU): the deferred work will.
            None if !host.walk_inline() => ActiveLookup::RateLimited,
            None => self.find_inline(host, inode),
        };
        match found {
            ActiveLookup::Owner(tgid) => {
                let r = host.task_exe(tgid, &mut path);
                if matches!(r, Err(ExeError::Unverified(_))) {
                    return InTask::Unverified;
                }
                self.count(host, Stat::TaskResolved);
                let (ident, owner) = self.identity_of(r, &path);
                InTask::Found(ident, TaskId { tgid, ..owner }, CachedVerdict::EMPTY)
            }
            ActiveLookup::NotFound => InTask::NoOwner,
            ActiveLookup::RateLimited => InTask::RateLimited,
        }
    }

    /// The identity for a host's executable answer (interned id, `PathTooLong`, `NoHostPath` or `Unknown`) and
    /// the process's tgid; a known identity is remembered for the process image, so later misses
    /// need no path read.
    fn identity_of(&self, r: Result<TaskId, ExeError>, path: &ExePath) -> (Identity, TaskId) {
        let (ident, task) = match r {
            Ok(task) if !path.is_empty() => {
                let found = self.exes.read().find(path.as_bytes());
                let id = match found {
                    Some(id) => id,
                    None => self.exes.write().intern_path(path),
                };
                (Identity::Exe(id), task)
            }
            Ok(task) | Err(ExeError::NoExe(task)) => (Identity::Unknown, task),
            Err(ExeError::TooLong(task)) => (Identity::PathTooLong, task),
            Err(ExeError::NoHostPath(task)) => (Identity::NoHostPath, task),
            // Not remembered: the next answer (from a context that can verify) decides.
            Err(ExeError::Unverified(task)) => return (Identity::Unknown, task),
            Err(ExeError::NoTask) => return (Identity::Unknown, TaskId::tgid_only(0)),
        };
        if ident != Identity::Unknown {
            self.images.write().insert(task, ident);
        }
        (ident, task)
    }

    fn defer<H: Host>(&self, host: &H, s: Deferred) {
        self.count(host, Stat::Deferred);
        host.defer(s);
    }

    /// Task context, [`Host::walk_inline`] hosts: the owner of `inode` by a whole walk cycle
    /// (chunks collected with no lock held, each merged under a short lock), if one may start.
    fn find_inline<H: Host>(&self, host: &H, inode: u64) -> ActiveLookup {
        let mut owner = None;
        let walked = self.walk_slice(host, false, &mut |chunk| {
            if owner.is_none() {
                owner = chunk.iter().find(|o| o.inode == inode).map(|o| o.tgid);
            }
        });
        match (owner, walked) {
            (Some(tgid), _) => ActiveLookup::Owner(tgid),
            (None, w) if w.covered_all() => {
                self.active.write().mark_not_found(inode, host.now_ms());
                ActiveLookup::NotFound
            }
            (None, _) => ActiveLookup::RateLimited,
        }
    }

    /// One walk slice: begins it (rate limit), then chunk after chunk collects up to
    /// [`WALK_CHUNK`] pairs through [`Host::collect_sockets`] with **no lock held**, hands them to
    /// `on_chunk` (still no lock), and merges them into the active-socket cache under its write
    /// lock — the only locked section, at most `WALK_CHUNK` entries, timed into
    /// [`PathStats::walk_lock_ns_max`]. `bounded`: stop after [`WALK_SLICE_CHUNKS`] chunks or
    /// [`WALK_SLICE_MS`] and keep the cursor for the next slice; otherwise run to the end.
    fn walk_slice<H: Host>(
        &self,
        host: &H,
        bounded: bool,
        on_chunk: &mut dyn FnMut(&[SocketOwner]),
    ) -> Walked {
        let start_ms = host.now_ms();
        let Some(slice) = self.active.write().begin_slice(start_ms) else {
            return Walked::RateLimited;
        };
        let mut buf = [SocketOwner::default(); WALK_CHUNK];
        let mut cursor = slice.from;
        let mut chunks = 0u32;
        let end = loop {
            let c = host.collect_sockets(cursor, &mut buf);
            let got = buf.get(..c.len).unwrap_or(&buf);
            on_chunk(got);
            let t0 = host.now_ns();
            self.active.write().merge(got);
            let held = host.now_ns().saturating_sub(t0);
            self.stats
                .walk_lock_ns_max
                .fetch_max(held, Ordering::Relaxed);
            self.stats
                .walk_lock_ns_total
                .fetch_add(held, Ordering::Relaxed);
            bump(&self.stats.walk_merges);
            match c.end {
                ChunkEnd::Done => break SliceEnd::Complete,
                ChunkEnd::Refused => break SliceEnd::Refused,
                ChunkEnd::More(next) => {
                    // A host that makes no progress must not loop forever.
                    let stuck = next == cursor && c.len == 0;
                    cursor = next;
                    chunks = chunks.saturating_add(1);
                    let spent = host.now_ms().saturating_sub(start_ms);
                    if stuck || (bounded && (chunks >= WALK_SLICE_CHUNKS || spent >= WALK_SLICE_MS))
                    {
                        break SliceEnd::Paused(cursor);
                    }
                }
            }
        };
        self.active.write().end_slice(host.now_ms(), end);
        Walked::Ran {
            fresh: slice.fresh,
            end,
        }
    }

    /// Deferred work (task context, no lock held): identifies one socket the packet path could
    /// not ([`Engine::identify_deferred_batch`] with a batch of one).
    pub fn identify_deferred<H: Host>(&self, host: &H, s: &Deferred) -> DeferredOutcome {
        let mut one = [*s];
        let r = self.identify_deferred_batch(host, &mut one);
        if r.known != 0 {
            DeferredOutcome::Known
        } else if r.inserted != 0 {
            DeferredOutcome::Inserted
        } else if r.not_found != 0 {
            DeferredOutcome::NotFound
        } else {
            DeferredOutcome::RateLimited
        }
    }

    /// Deferred work (task context, **no lock held**): finds the owners of the sockets the packet
    /// path could not identify and inserts them into the known-socket cache (without a verdict:
    /// the next packet computes it). Each is answered from the known-socket cache, the
    /// active-socket cache or its negative entries if possible; the rest share ONE bounded walk
    /// slice (at most [`WALK_SLICE_CHUNKS`] chunks or [`WALK_SLICE_MS`],
    /// each chunk collected outside every lock and merged under a short one), which matches every
    /// chunk against all of them, so they are found whether or not the cache has room. A socket
    /// not seen is `NotFound` only when this slice walked a whole cycle; otherwise it is left for
    /// a retry (moved to the front of `batch`; [`DeferredReport::retry`] says how many), which
    /// the next slice — resuming where this one stopped — may answer. At most
    /// [`DEFERRED_BATCH`] sockets are handled per call; the rest are returned for a retry.
    pub fn identify_deferred_batch<H: Host>(
        &self,
        host: &H,
        batch: &mut [Deferred],
    ) -> DeferredReport {
        let mut st = [Pend::Done(DeferredOutcome::RateLimited); DEFERRED_BATCH];
        let n = batch.len().min(DEFERRED_BATCH);
        let now = host.now_ms();
        {
            let sockets = self.sockets.read();
            let active = self.active.read();
            for (s, p) in batch.iter().zip(st.iter_mut()).take(n) {
                *p = if sockets.peek(s.key).is_some() {
                    Pend::Done(DeferredOutcome::Known)
                } else {
                    match active.lookup(s.inode, now) {
                        Some(ActiveLookup::Owner(tgid)) => Pend::Owner(tgid),
                        Some(_) => Pend::Done(DeferredOutcome::NotFound),
                        None => Pend::Open,
                    }
                };
            }
        }
        if st.contains(&Pend::Open) {
            let targets = batch.get(..n).unwrap_or(&[]);
            let walked = self.walk_slice(host, true, &mut |chunk| {
                for o in chunk {
                    for (s, p) in targets.iter().zip(st.iter_mut()) {
                        if *p == Pend::Open && s.inode == o.inode {
                            *p = Pend::Owner(o.tgid);
                        }
                    }
                }
            });
            let open_to = if walked.covered_all() {
                let now = host.now_ms();
                let mut active = self.active.write();
                for (s, p) in targets.iter().zip(st.iter()) {
                    if *p == Pend::Open {
                        active.mark_not_found(s.inode, now);
                    }
                }
                DeferredOutcome::NotFound
            } else {
                DeferredOutcome::RateLimited
            };
            for p in st.iter_mut().filter(|p| **p == Pend::Open) {
                *p = Pend::Done(open_to);
            }
        }
        for (s, p) in batch.iter().zip(st.iter_mut()).take(n) {
            if let Pend::Owner(tgid) = *p {
                *p = Pend::Done(self.insert_owner(host, s, tgid));
            }
        }
        // Count, and move the sockets to retry to the front (the others are finished with).
        let mut r = DeferredReport::default();
        for i in 0..batch.len() {
            let outcome = match st.get(i) {
                Some(Pend::Done(o)) => *o,
                _ => DeferredOutcome::RateLimited,
            };
            match outcome {
                DeferredOutcome::Known => r.known = r.known.saturating_add(1),
                DeferredOutcome::Inserted => r.inserted = r.inserted.saturating_add(1),
                DeferredOutcome::NotFound => r.not_found = r.not_found.saturating_add(1),
                DeferredOutcome::RateLimited => {
                    if let Some(v) = batch.get(i).copied() {
                        if let Some(d) = batch.get_mut(r.retry) {
                            *d = v;
                        }
                    }
                    r.retry = r.retry.saturating_add(1);
                }
            }
        }
        r
    }

    /// The owner of deferred socket `s` is `tgid`: its identity into the known-socket cache.
    fn insert_owner<H: Host>(&self, host: &H, s: &Deferred, tgid: u32) -> DeferredOutcome {
        let mut path = ExePath::EMPTY;
        let r = host.task_exe(tgid, &mut path);
        let (ident, owner) = self.identity_of(r, &path);
        if ident == Identity::Unknown {
            return DeferredOutcome::NotFound;
        }
        self.sockets.write().insert(
            s.key,
            KnownSocket {
                inode: s.inode,
                owner: TaskId { tgid, ..owner },
                uid: s.uid,
                exe: ident,
            },
        );
        self.count(host, Stat::Refilled);
        DeferredOutcome::Inserted
    }

    /// Applies the event (only if the host wants events; squelch for PENDING) and packs the outcome.
    fn finish<H: Host>(
        &self,
        host: &H,
        facts: &PacketFacts,
        ident: Identity,
        decision: Decision,
        cached: bool,
    ) -> Outcome {
        let mut event = None;
        if let Some(e) = decision.event_record(facts, &ident) {
            // Nobody listens: nothing to squelch or return.
            if host.wants_events()
                && (!decision.squelch || self.squelch.permit(e.proto, e.exe, host.now_secs()))
            {
                event = Some(e);
            }
        }
        Outcome {
            decision,
            event,
            cached,
            ident,
            route_hop: None,
        }
    }
}
