//! The known-socket cache: socket identity → owner, executable and the last decision.
//!
//! **Key.** [`SocketKey`] is a `u64`. The kernel passes the *socket cookie* (`sock_gen_cookie`): it is
//! unique for the life of the system (never reused, unlike inode numbers) and stays valid for orphaned
//! sockets (closed by the process but still sending, e.g. FIN retransmits), which have lost their file
//! and inode. This is the "identity that survives inode reuse" the issue asks for; the entry still
//! stores the inode ([`KnownSocket::inode`]) for diagnostics and to match the active-socket cache.
//! Userspace embedders without cookies may pass the inode as the key.
//!
//! **Layout.** `SETS` sets of `WAYS` ways (defaults 128 × 8 = 1024 sockets). A set keeps its keys
//! contiguously (8 × u64 = one 64-byte cache line), so a lookup hashes the key to one set and compares
//! at most `WAYS` keys: a bounded probe, one cache line for a miss.
//!
//! **LRU, per user.** Inserting advances a wrapping `u32` clock; an entry's stamp is the clock value when
//! it was last inserted or looked up. The victim in a full set is the least recently used entry (largest
//! wrap-safe age `clock.wrapping_sub(stamp)`, correct across the u32 wrap-around; the start of the clock
//! is injectable, [`SocketCache::with_clock`], so tests cross it) **of the uid holding the most entries
//! in that set** (ties: the inserting uid). Why: an evicted socket's next softirq packet cannot be
//! identified at once (it is dropped and re-identified by deferred work), so an unprivileged user who
//! churns sockets must only ever evict their own: another user's socket is evicted only from a set
//! where that user holds at least as many entries as anyone else.
//!
//! **Concurrency.** [`SocketCache::lookup`] and [`SocketCache::store_verdict`] take `&self` and touch
//! only atomics (stamp refresh with a relaxed store that is skipped when unchanged, verdict + policy
//! generation packed in one `AtomicU64`), so packets run under a *shared* lock. `insert`, `forget` and
//! `clear` take `&mut self` (exclusive lock; the miss path).

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::decide::Decision;
use crate::exe::ExeId;
use crate::host::TaskId;

/// Identity of a socket: the kernel's socket cookie, or (userspace) the socket inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SocketKey(pub u64);

/// Who is behind a socket: the outcome of process identification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Identity {
    /// Identified: the executable's id in the [`ExeTable`](crate::ExeTable).
    Exe(ExeId),
    /// The process was found but its executable path is longer than 255 bytes (flag `longpath`).
    PathTooLong,
    /// The process was found but its executable has no verified path in the initial mount
    /// namespace and root (flag `nspath`): a path rule must never apply to it.
    NoHostPath,
    /// No full socket, or no owning process (flag `unkproc`).
    Unknown,
}

/// What the cache stores about a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KnownSocket {
    /// Socket inode (0 if the socket has none, e.g. an orphan).
    pub inode: u64,
    /// The process whose packets earned the cached verdict: thread group and program image. In task
    /// context a packet sent by any other process image is re-identified (fork, exec, a descriptor
    /// passed with SCM_RIGHTS or taken with pidfd_getfd).
    pub owner: TaskId,
    /// Owning uid.
    pub uid: u32,
    /// The executable.
    pub exe: Identity,
}

impl KnownSocket {
    const EMPTY: KnownSocket = KnownSocket {
        inode: 0,
        owner: TaskId::tgid_only(0),
        uid: 0,
        exe: Identity::Unknown,
    };
}

/// A decision cached for a socket, tagged with the policy generation it was computed under and,
/// normally, with the packet protocol it was computed for.
///
/// Why the protocol: a socket normally carries one protocol, but a raw socket with `IP_HDRINCL` can
/// send packets of any protocol; without the tag a verdict computed for its UDP packets would be
/// replayed for its TCP packets. [`CachedVerdict::for_proto`] / [`CachedVerdict::get_for`] bind the
/// protocol; [`CachedVerdict::new`] / [`CachedVerdict::get`] are the protocol-agnostic forms.
///
/// Packed in one `u64` (`any_proto << 49 | proto << 41 | valid << 40 | decision << 32 | generation`)
/// so it is stored and loaded atomically: a packet never sees the verdict of one generation with the
/// tag of another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CachedVerdict(u64);

impl CachedVerdict {
    /// No cached decision.
    pub const EMPTY: CachedVerdict = CachedVerdict(0);

    const VALID: u64 = 1 << 40;
    const PROTO_SHIFT: u32 = 41;
    const ANY_PROTO: u64 = 1 << 49;

    /// A decision computed under `generation` (see [`policy_generation`](crate::policy_generation)),
    /// valid for packets of any protocol. Prefer [`CachedVerdict::for_proto`].
    pub const fn new(decision: Decision, generation: u32) -> Self {
        CachedVerdict(
            Self::ANY_PROTO | Self::VALID | ((decision.to_bits() as u64) << 32) | generation as u64,
        )
    }

    /// A decision computed under `generation` for packets of protocol `proto` (an IP protocol
    /// number, below 256).
    pub const fn for_proto(decision: Decision, generation: u32, proto: u32) -> Self {
        CachedVerdict(
            (((proto & 0xFF) as u64) << Self::PROTO_SHIFT)
                | Self::VALID
                | ((decision.to_bits() as u64) << 32)
                | generation as u64,
        )
    }

    /// The decision if one is stored **and** it was computed under `current_generation` (whatever
    /// protocol it was computed for).
    pub fn get(self, current_generation: u32) -> Option<Decision> {
        if self.0 & Self::VALID == 0 || self.0 as u32 != current_generation {
            return None;
        }
        Decision::from_bits((self.0 >> 32) as u8)
    }

    /// The decision if one is stored, computed under `current_generation`, and computed for `proto`
    /// (or stored with [`CachedVerdict::new`], valid for any protocol).
    pub fn get_for(self, current_generation: u32, proto: u32) -> Option<Decision> {
        let stored_proto = (self.0 >> Self::PROTO_SHIFT) as u8;
        if self.0 & Self::ANY_PROTO == 0 && (proto > 0xFF || u32::from(stored_proto) != proto) {
            return None;
        }
        self.get(current_generation)
    }

    /// The stored decision and its generation, whatever the generation.
    pub fn raw(self) -> Option<(Decision, u32)> {
        if self.0 & Self::VALID == 0 {
            return None;
        }
        Decision::from_bits((self.0 >> 32) as u8).map(|d| (d, self.0 as u32))
    }
}

/// One set: keys first (one cache line for 8 ways), then the rest.
#[repr(C, align(64))]
struct Set<const WAYS: usize> {
    keys: [u64; WAYS],
    used: u32,
    stamps: [AtomicU32; WAYS],
    verdicts: [AtomicU64; WAYS],
    values: [KnownSocket; WAYS],
}

impl<const WAYS: usize> Set<WAYS> {
    const fn empty() -> Self {
        Set {
            keys: [0; WAYS],
            used: 0,
            stamps: [const { AtomicU32::new(0) }; WAYS],
            verdicts: [const { AtomicU64::new(0) }; WAYS],
            values: [KnownSocket::EMPTY; WAYS],
        }
    }

    fn find(&self, key: u64) -> Option<usize> {
        (0..WAYS)
            .zip(self.keys.iter())
            .find(|&(w, &k)| k == key && self.used & bit(w) != 0)
            .map(|(w, _)| w)
    }
}

/// Set-associative LRU cache of known sockets, `SETS` × `WAYS` entries (defaults 128 × 8).
///
/// `SETS` must be a power of two, `1 <= WAYS <= 32`. Memory ≈ `SETS × WAYS × 48` bytes
/// (≈ 48 KiB for the defaults); constructible in a `static` via [`SocketCache::new`].
pub struct SocketCache<const SETS: usize = 128, const WAYS: usize = 8> {
    sets: [Set<WAYS>; SETS],
    clock: AtomicU32,
    len: usize,
    evictions: u64,
}

impl<const SETS: usize, const WAYS: usize> Default for SocketCache<SETS, WAYS> {
    fn default() -> Self {
        Self::new()
    }
}

/// Fibonacci hashing: socket cookies and inodes are sequential, the multiply spreads them.
const fn set_of(key: u64, mask: usize) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & mask
}

impl<const SETS: usize, const WAYS: usize> SocketCache<SETS, WAYS> {
    const CHECK: () = assert!(
        SETS.is_power_of_two() && WAYS >= 1 && WAYS <= 32,
        "SocketCache: SETS must be a power of two and 1 <= WAYS <= 32"
    );
    const MASK: usize = SETS.wrapping_sub(1);

    /// An empty cache with the LRU clock at 0.
    pub const fn new() -> Self {
        Self::with_clock(0)
    }

    /// An empty cache whose LRU clock starts at `start` (tests start near `u32::MAX` to cross the wrap).
    pub const fn with_clock(start: u32) -> Self {
        let () = Self::CHECK;
        SocketCache {
            sets: [const { Set::empty() }; SETS],
            clock: AtomicU32::new(start),
            len: 0,
            evictions: 0,
        }
    }

    /// Total capacity `SETS × WAYS`.
    pub const fn capacity(&self) -> usize {
        SETS.wrapping_mul(WAYS)
    }

    /// Number of cached sockets.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Entries evicted by inserts into full sets.
    pub fn evictions(&self) -> u64 {
        self.evictions
    }

    /// The LRU clock (advances once per insert).
    pub fn clock(&self) -> u32 {
        self.clock.load(Relaxed)
    }

    /// The set a key maps to (tests and the fuzz model use it to reason about LRU per set).
    #[doc(hidden)]
    pub fn set_index(&self, key: SocketKey) -> usize {
        set_of(key.0, Self::MASK)
    }

    fn set(&self, key: SocketKey) -> Option<&Set<WAYS>> {
        self.sets.get(set_of(key.0, Self::MASK))
    }

    /// The socket's entry and cached decision; refreshes its LRU stamp. Touches only atomics.
    pub fn lookup(&self, key: SocketKey) -> Option<(KnownSocket, CachedVerdict)> {
        let set = self.set(key)?;
        let w = set.find(key.0)?;
        let now = self.clock.load(Relaxed);
        if let Some(st) = set.stamps.get(w) {
            // Skip the store when unchanged so hot entries do not dirty the line on every packet.
            if st.load(Relaxed) != now {
                st.store(now, Relaxed);
            }
        }
        let v = set.verdicts.get(w).map_or(0, |a| a.load(Relaxed));
        set.values.get(w).map(|k| (*k, CachedVerdict(v)))
    }

    /// Like [`SocketCache::lookup`] but does not refresh the LRU stamp.
    pub fn peek(&self, key: SocketKey) -> Option<(KnownSocket, CachedVerdict)> {
        let set = self.set(key)?;
        let w = set.find(key.0)?;
        let v = set.verdicts.get(w).map_or(0, |a| a.load(Relaxed));
        set.values.get(w).map(|k| (*k, CachedVerdict(v)))
    }

    /// Stores the decision for a cached socket (atomically, under a shared lock). Returns false if
    /// the socket is not cached.
    pub fn store_verdict(&self, key: SocketKey, verdict: CachedVerdict) -> bool {
        let Some(set) = self.set(key) else {
            return false;
        };
        match set.find(key.0).and_then(|w| set.verdicts.get(w)) {
            Some(a) => {
                a.store(verdict.0, Relaxed);
                true
            }
            None => false,
        }
    }

    /// Inserts or replaces the entry for `key` (the cached decision is reset). If the set is full, the
    /// least recently used entry of the set is evicted and its key returned.
    pub fn insert(&mut self, key: SocketKey, known: KnownSocket) -> Option<SocketKey> {
        let now = {
            let c = self.clock.get_mut();
            *c = c.wrapping_add(1);
            *c
        };
        let set = self.sets.get_mut(set_of(key.0, Self::MASK))?;
        let mut evicted = None;
        let way = if let Some(w) = set.find(key.0) {
            w
        } else if let Some(w) = (0..WAYS).find(|&w| set.used & bit(w) == 0) {
            self.len = self.len.saturating_add(1);
            w
        } else {
            // Full set: the victim is the least recently used entry of the uid holding the most
            // entries in the set (ties: the inserting uid's own entry), so one user's socket churn
            // evicts that user's entries, never a user's with fewer entries here than the churner.
            let victim = Self::victim(set, now, known.uid);
            evicted = set.keys.get(victim).map(|&k| SocketKey(k));
            self.evictions = self.evictions.wrapping_add(1);
            victim
        };
        if let (Some(k), Some(v), Some(st), Some(vd)) = (
            set.keys.get_mut(way),
            set.values.get_mut(way),
            set.stamps.get_mut(way),
            set.verdicts.get_mut(way),
        ) {
            *k = key.0;
            *v = known;
            *st.get_mut() = now;
            *vd.get_mut() = CachedVerdict::EMPTY.0;
            set.used |= bit(way);
        }
        evicted
    }

    /// The way to evict from a full set (see [`SocketCache::insert`]): the least recently used
    /// (largest wrap-safe age) entry among those of the uids with the most entries in the set —
    /// only the inserting uid's own entries when it is one of them.
    fn victim(set: &Set<WAYS>, now: u32, inserting: u32) -> usize {
        let uid_of = |w: usize| set.values.get(w).map_or(0, |v| v.uid);
        let count = |uid: u32| (0..WAYS).filter(|&w| uid_of(w) == uid).count();
        let most = (0..WAYS).map(|w| count(uid_of(w))).max().unwrap_or(0);
        let own = count(inserting) == most;
        let candidate = |w: usize| {
            let u = uid_of(w);
            if own {
                u == inserting
            } else {
                count(u) == most
            }
        };
        let mut victim = 0usize;
        let mut oldest = 0u32;
        let mut found = false;
        for (w, st) in (0..WAYS).zip(set.stamps.iter()) {
            if !candidate(w) {
                continue;
            }
            let age = now.wrapping_sub(st.load(Relaxed));
            if !found || age > oldest {
                victim = w;
                oldest = age;
                found = true;
            }
        }
        victim
    }

    /// Removes the entry for `key`; returns whether it was cached.
    pub fn forget(&mut self, key: SocketKey) -> bool {
        let Some(set) = self.sets.get_mut(set_of(key.0, Self::MASK)) else {
            return false;
        };
        match set.find(key.0) {
            Some(w) => {
                set.used &= !bit(w);
                self.len = self.len.saturating_sub(1);
                true
            }
            None => false,
        }
    }

    /// Removes every entry owned by process `tgid` (e.g. when it exits); returns how many.
    pub fn forget_tgid(&mut self, tgid: u32) -> usize {
        let mut n = 0usize;
        for set in self.sets.iter_mut() {
            for (w, v) in (0..WAYS).zip(set.values.iter()) {
                if set.used & bit(w) != 0 && v.owner.tgid == tgid {
                    set.used &= !bit(w);
                    n = n.saturating_add(1);
                }
            }
        }
        self.len = self.len.saturating_sub(n);
        n
    }

    /// Empties the cache in place (the clock keeps running).
    pub fn clear(&mut self) {
        for set in self.sets.iter_mut() {
            set.used = 0;
        }
        self.len = 0;
        self.evictions = 0;
    }

    /// Iterates over `(key, entry)` of every cached socket (diagnostics, tests).
    pub fn iter(&self) -> impl Iterator<Item = (SocketKey, KnownSocket)> + '_ {
        self.sets.iter().flat_map(|set| {
            (0..WAYS)
                .zip(set.keys.iter().zip(set.values.iter()))
                .filter(move |(w, _)| set.used & bit(*w) != 0)
                .map(|(_, (k, v))| (SocketKey(*k), *v))
        })
    }
}

/// The occupancy bit of way `w` (`w < 32`; `wrapping_shl` keeps it panic-free regardless).
const fn bit(w: usize) -> u32 {
    1u32.wrapping_shl(w as u32)
}
