//! The known-socket cache: socket identity → owner, executable and the last decision.
//!
//! **Key.** [`SocketKey`] is a `u64`. The kernel passes the *socket cookie* (`sock_gen_cookie`): it is
//! unique for the life of the system (never reused, unlike inode numbers) and stays valid for orphaned
//! sockets (closed by the process but still sending, e.g. FIN retransmits), which have lost their file
//! and inode. This is the "identity that survives inode reuse" the issue asks for; the entry still
//! stores the inode ([`KnownSocket::inode`]) for diagnostics and to match the active-socket cache.
//! Userspace embedders without cookies may pass the inode as the key.
//!
//! **Layout.** `SETS` sets of `WAYS` ways (defaults 128 × 8 = 1024 sockets). A set is one 64-byte
//! *head* line (a 16-bit tag of each way's key, compared word-at-a-time, the occupancy bits and the
//! set's LRU clock) followed
//! by one 64-byte line per entry holding everything a packet needs: the entry's sequence count, its
//! LRU stamp, the key, the cached verdict (decision, protocol and policy generation), the identity,
//! the owner and the destination the verdict was decided for ([`DestKey`]). A hit reads two lines of
//! the cache (the head, the entry); a miss reads the head alone unless a 16-bit tag collides. The
//! socket's inode, needed only by the full path, sits in a cold array after the set's entries. 80
//! bytes per socket.
//!
//! **Destination.** A verdict is cached with the destination word it was decided for, and a packet
//! is answered only if its own word is the same: exact for IPv4 (address and port in the word),
//! a keyed 62-bit SipHash for IPv6. A connected socket's packets all carry one word, so they stay
//! on the hit path whatever destination rules exist; a socket that sends anywhere (unconnected UDP,
//! raw, a reconnect) misses when its destination changes and is decided again. The word is 0
//! ([`DestKey::NONE`]) when the host did not read the destination (the kernel reads it only while a
//! rule depends on it): such a verdict answers only packets whose destination was not read either.
//!
//! **LRU, per user.** Inserting advances the set's wrapping `u32` clock; an entry's stamp is the
//! clock value when it was last inserted or looked up. The victim in a full set is the least
//! recently used entry (largest wrap-safe age `clock.wrapping_sub(stamp)`, correct across the u32
//! wrap-around; the start of the clocks is injectable, [`SocketCache::with_clock`], so tests cross
//! it) **of the uid holding the most entries in that set** (ties: the inserting uid). Why: an
//! evicted socket's next softirq packet cannot be identified at once (it is dropped and
//! re-identified by deferred work), so an unprivileged user who churns sockets must only ever evict
//! their own: another user's socket is evicted only from a set where that user holds at least as
//! many entries as anyone else. The clock is per set so that a hit reads no line beyond its set's.
//!
//! **Concurrency: lock-free readers, one writer at a time.** Every field is an atomic, so a reader
//! needs no lock at all ([`SocketCache::lookup`] with `&self`). Each entry carries a *sequence
//! count*: a writer makes it odd, rewrites the entry, makes it even again (release); a reader loads
//! it (acquire), copies the entry, and loads it again after an acquire fence — a changed or odd count
//! means the copy may be torn, and it is thrown away ([`Probe::Busy`]), never returned. So a reader
//! gets a whole entry as some writer left it, or nothing: never the key of one socket with the
//! verdict or owner of another. Writers are serialised by the caller: `&mut self` for a
//! standalone cache, or [`SharedSockets`]' write lock (the engine's). The verdict word alone is
//! also written by [`SocketCache::store_verdict`] under the *shared* lock (it keeps the entry's key,
//! so it needs no sequence bump: any verdict a reader sees beside that key was computed for it).
//!
//! A reader writes nothing shared on a hit: the LRU stamp is stored only when the set's clock moved
//! since the entry's last use (an insert into the same set), never per packet.

use core::sync::atomic::{
    fence, AtomicU32, AtomicU64, AtomicUsize,
    Ordering::{Acquire, Relaxed, Release},
};

use lock_api::{RawRwLock, RwLock, RwLockReadGuard, RwLockWriteGuard};

use crate::decide::Decision;
use crate::exe::ExeId;
use crate::host::TaskId;

/// Identity of a socket: the kernel's socket cookie, or (userspace) the socket inode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct SocketKey(pub u64);

/// The destination a cached verdict was decided for, as one word (see the module docs).
///
/// - [`DestKey::NONE`] (0): the destination was not read.
/// - IPv4: exact: `1 << 63 | has_port << 48 | address << 16 | port`.
/// - IPv6: `1 << 62 | SipHash-1-3(secret; address, has_port, port) >> 2`, keyed by a secret the
///   host sets once ([`DestSecret`]) so that nobody can pick two destinations with the same word.
/// - A port without an address (a host that reports only ports): `1 << 61 | has_port << 16 | port`.
///
/// Two different destinations of IPv4 (or port-only) packets never share a word; two IPv6 ones
/// share one with probability 2^-62 for a secret the sender does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct DestKey(pub u64);

/// The secret key of [`DestKey`]'s IPv6 hash (128 bits; all zero until the host sets it).
pub type DestSecret = [u64; 2];

impl DestKey {
    /// The destination was not read.
    pub const NONE: DestKey = DestKey(0);

    const V4: u64 = 1 << 63;
    const V6: u64 = 1 << 62;
    const PORT_ONLY: u64 = 1 << 61;

    /// The word of a packet going to `peer` (the hash key `secret` is used for IPv6 only).
    #[inline(always)]
    pub fn of(peer: &crate::host::Peer, secret: &DestSecret) -> DestKey {
        // A port 0 is not a missing port: `has_port` tells them apart.
        let (has_port, port) = match peer.dport {
            Some(p) => (1u64, u64::from(p)),
            None => (0, 0),
        };
        match peer.dst {
            None if has_port == 0 => DestKey::NONE,
            None => DestKey(Self::PORT_ONLY | has_port << 16 | port),
            Some(crate::qualified::Addr::V4(a)) => {
                DestKey(Self::V4 | has_port << 48 | (u64::from(u32::from_be_bytes(a)) << 16) | port)
            }
            Some(crate::qualified::Addr::V6(a)) => {
                DestKey(Self::V6 | (Self::hash6(&a, has_port << 16 | port, secret) >> 2))
            }
        }
    }

    #[inline(never)]
    fn hash6(a: &[u8; 16], port: u64, secret: &DestSecret) -> u64 {
        let mut msg = [0u8; 24];
        let (addr, rest) = msg.split_at_mut(16);
        addr.copy_from_slice(a);
        rest.copy_from_slice(&port.to_le_bytes());
        let [k0, k1] = *secret;
        siphasher::sip::SipHasher13::new_with_keys(k0, k1).hash(&msg)
    }
}

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

    /// [`CachedVerdict::get_for`] without decoding: the decision's bits ([`Decision::to_bits`]).
    #[inline(always)]
    pub fn bits_for(self, current_generation: u32, proto: u32) -> Option<u8> {
        let stored_proto = (self.0 >> Self::PROTO_SHIFT) as u8;
        let proto_ok =
            self.0 & Self::ANY_PROTO != 0 || (proto <= 0xFF && u32::from(stored_proto) == proto);
        (proto_ok && self.0 & Self::VALID != 0 && self.0 as u32 == current_generation)
            .then_some((self.0 >> 32) as u8)
    }

    /// The packed form, for storing in an atomic ([`CachedVerdict::from_packed`] reverses it).
    pub const fn packed(self) -> u64 {
        self.0
    }

    /// A verdict from its [`CachedVerdict::packed`] form.
    pub const fn from_packed(packed: u64) -> Self {
        CachedVerdict(packed)
    }

    /// The stored decision and its generation, whatever the generation.
    pub fn raw(self) -> Option<(Decision, u32)> {
        if self.0 & Self::VALID == 0 {
            return None;
        }
        Decision::from_bits((self.0 >> 32) as u8).map(|d| (d, self.0 as u32))
    }
}

/// The 16-bit tag of a key kept in the set's head line (a hint: the entry's full key decides).
const fn tag_of(key: u64) -> u64 {
    let t = key ^ (key >> 32);
    (t ^ (t >> 16)) & 0xFFFF
}

/// Tag words per head line: four 16-bit tags each, so at most 16 ways.
const TAG_WORDS: usize = 4;
const LANES_LOW: u64 = 0x0001_0001_0001_0001;
const LANES_HIGH: u64 = 0x8000_8000_8000_8000;
/// Moves bits 0, 16, 32, 48 to 48, 49, 50, 51 (`2^48 + 2^33 + 2^18 + 2^3`).
const GATHER: u64 = (1 << 48) | (1 << 33) | (1 << 18) | (1 << 3);

/// The set's head line: the ways' key tags, occupancy and the set's LRU clock.
#[repr(C, align(64))]
struct Head<const WAYS: usize> {
    /// Way `w`'s tag is lane `w % 4` (16 bits) of word `w / 4`: all ways compared at once.
    tags: [AtomicU64; TAG_WORDS],
    used: AtomicU32,
    clock: AtomicU32,
}

/// Identity packed in a u64 (tag in the top byte; 0 = a free entry).
const ID_EXE: u64 = 1 << 56;
const ID_TOO_LONG: u64 = 2 << 56;
const ID_NO_HOST_PATH: u64 = 3 << 56;
const ID_UNKNOWN: u64 = 4 << 56;
const ID_TAG: u64 = 0xFF << 56;

const fn pack_identity(i: Identity) -> u64 {
    match i {
        Identity::Exe(id) => ID_EXE | (id.to_u64() & !ID_TAG),
        Identity::PathTooLong => ID_TOO_LONG,
        Identity::NoHostPath => ID_NO_HOST_PATH,
        Identity::Unknown => ID_UNKNOWN,
    }
}

/// `None` for a free entry (or a value no writer stores).
const fn unpack_identity(v: u64) -> Option<Identity> {
    match v & ID_TAG {
        ID_EXE => match ExeId::from_u64(v & !ID_TAG) {
            Some(id) => Some(Identity::Exe(id)),
            None => None,
        },
        ID_TOO_LONG => Some(Identity::PathTooLong),
        ID_NO_HOST_PATH => Some(Identity::NoHostPath),
        ID_UNKNOWN => Some(Identity::Unknown),
        _ => None,
    }
}

/// One entry: exactly one 64-byte line, written only under its sequence count.
#[repr(C, align(64))]
struct Entry {
    /// Sequence count: odd while a writer rewrites the entry.
    seq: AtomicU32,
    /// LRU stamp (the set's clock at the last insert or lookup; outside the sequence: a hint).
    stamp: AtomicU32,
    key: AtomicU64,
    /// [`CachedVerdict`] bits.
    verdict: AtomicU64,
    /// [`pack_identity`]; 0 = free.
    ident: AtomicU64,
    /// `tgid << 32 | uid`.
    tgid_uid: AtomicU64,
    start_ns: AtomicU64,
    exec_id: AtomicU64,
    /// The [`DestKey`] the verdict was decided for.
    dest: AtomicU64,
}

/// What one lock-free read attempt of an entry saw.
enum Read {
    /// A whole entry: key, value, verdict bits, destination word.
    Whole(u64, KnownSocket, u64, u64),
    /// Free.
    Free,
    /// A writer was (or is) rewriting it: the copy was thrown away.
    Torn,
}

impl Entry {
    const fn empty() -> Self {
        Entry {
            seq: AtomicU32::new(0),
            stamp: AtomicU32::new(0),
            key: AtomicU64::new(0),
            verdict: AtomicU64::new(0),
            ident: AtomicU64::new(0),
            tgid_uid: AtomicU64::new(0),
            start_ns: AtomicU64::new(0),
            exec_id: AtomicU64::new(0),
            dest: AtomicU64::new(0),
        }
    }

    /// One read attempt under the sequence count (lock-free); `inode` is the entry's slot in its
    /// set's cold array.
    #[inline(always)]
    fn read(&self, inode: &AtomicU64) -> Read {
        let s1 = self.seq.load(Acquire);
        if s1 & 1 != 0 {
            return Read::Torn;
        }
        let key = self.key.load(Relaxed);
        let verdict = self.verdict.load(Relaxed);
        let ident = self.ident.load(Relaxed);
        let tgid_uid = self.tgid_uid.load(Relaxed);
        let start_ns = self.start_ns.load(Relaxed);
        let exec_id = self.exec_id.load(Relaxed);
        let dest = self.dest.load(Relaxed);
        let inode = inode.load(Relaxed);
        // Every load above happens before the re-check (pairs with the writer's release fence).
        fence(Acquire);
        if self.seq.load(Relaxed) != s1 {
            return Read::Torn;
        }
        let Some(exe) = unpack_identity(ident) else {
            return Read::Free;
        };
        let known = KnownSocket {
            inode,
            owner: TaskId {
                start_ns,
                exec_id,
                tgid: (tgid_uid >> 32) as u32,
                pad: 0,
            },
            uid: tgid_uid as u32,
            exe,
        };
        Read::Whole(key, known, verdict, dest)
    }

    /// The hit path's read (lock-free): the decision bits of a still-valid verdict for `key`, and the
    /// packed identity, if the entry holds `key`, its verdict was computed under `gen` for `proto`
    /// and for destination `dest`, and `sender` (when given) is the process image the verdict was
    /// earned by. Reads only the words that decide; any doubt is [`Fast::Slow`].
    #[inline(always)]
    fn check(&self, key: u64, gen: u32, proto: u32, dest: u64, sender: Option<&TaskId>) -> Fast {
        let s1 = self.seq.load(Acquire);
        let k = self.key.load(Relaxed);
        let d = self.dest.load(Relaxed);
        let verdict = self.verdict.load(Relaxed);
        let ident = self.ident.load(Relaxed);
        let tgid_uid = self.tgid_uid.load(Relaxed);
        let (start_ns, exec_id) = match sender {
            Some(_) => (self.start_ns.load(Relaxed), self.exec_id.load(Relaxed)),
            None => (0, 0),
        };
        fence(Acquire);
        if s1 & 1 != 0 || self.seq.load(Relaxed) != s1 || k != key || ident == 0 || d != dest {
            return Fast::Slow;
        }
        if let Some(t) = sender {
            let tgid = (tgid_uid >> 32) as u32;
            if tgid != 0 && (t.tgid != tgid || t.start_ns != start_ns || t.exec_id != exec_id) {
                return Fast::Slow;
            }
        }
        match CachedVerdict(verdict).bits_for(gen, proto) {
            Some(bits) => Fast::Hit(bits, ident),
            None => Fast::Slow,
        }
    }

    /// Rewrites the entry and its cold `inode` slot (the caller is the only writer: `&mut` cache
    /// or the write lock).
    fn write(&self, inode: &AtomicU64, key: u64, known: Option<&KnownSocket>, verdict: (u64, u64)) {
        let s = self.seq.load(Relaxed);
        self.seq.store(s.wrapping_add(1), Relaxed);
        // The odd count is visible before any field changes.
        fence(Release);
        self.key.store(key, Relaxed);
        self.verdict.store(verdict.0, Relaxed);
        self.dest.store(verdict.1, Relaxed);
        match known {
            Some(k) => {
                self.ident.store(pack_identity(k.exe), Relaxed);
                self.tgid_uid
                    .store((u64::from(k.owner.tgid) << 32) | u64::from(k.uid), Relaxed);
                self.start_ns.store(k.owner.start_ns, Relaxed);
                self.exec_id.store(k.owner.exec_id, Relaxed);
                inode.store(k.inode, Relaxed);
            }
            None => self.ident.store(0, Relaxed),
        }
        self.seq.store(s.wrapping_add(2), Release);
    }

    /// The entry as the only writer sees it (no concurrent writer: no retry needed).
    fn current(&self, inode: &AtomicU64) -> Option<(u64, KnownSocket)> {
        match self.read(inode) {
            Read::Whole(k, v, _, _) => Some((k, v)),
            _ => None,
        }
    }
}

/// One set: its head line, then one line per way, then the ways' inodes (cold: the hit path
/// never reads them).
#[repr(C, align(64))]
struct Set<const WAYS: usize> {
    head: Head<WAYS>,
    entries: [Entry; WAYS],
    inodes: [AtomicU64; WAYS],
}

/// The outcome of the hit path's check ([`SharedSockets::check`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fast {
    /// A still-valid cached decision ([`Decision::to_bits`]) and the packed identity
    /// ([`FastIdentity::get`]).
    Hit(u8, u64),
    /// Anything else (a miss, a stale or other-protocol verdict, another sender, a busy entry): take
    /// the full path, which looks again.
    Slow,
}

/// The identity a [`Fast::Hit`] carries, unpacked only when wanted.
pub struct FastIdentity;

impl FastIdentity {
    /// The identity packed in a [`Fast::Hit`].
    pub fn get(packed: u64) -> Identity {
        unpack_identity(packed).unwrap_or(Identity::Unknown)
    }

    /// The executable id packed in a [`Fast::Hit`], if the identity is an executable (the
    /// squelched hit needs only this: no [`Identity`] is built).
    #[inline(always)]
    pub fn exe(packed: u64) -> Option<ExeId> {
        // exe_word's 0 (not a program) has generation 0, which `from_u64` refuses.
        ExeId::from_u64(Self::exe_word(packed))
    }

    /// The program's [`ExeId::to_u64`] packed in a [`Fast::Hit`], or 0 when the identity is not a
    /// program: one mask, no validation (for per-program counters keyed by the id; 0 is never an
    /// id, generations start at 1).
    #[inline(always)]
    pub const fn exe_word(packed: u64) -> u64 {
        if packed & ID_TAG == ID_EXE {
            packed & !ID_TAG
        } else {
            0
        }
    }
}

/// The outcome of one lock-free probe ([`SocketCache::probe`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Probe {
    /// The socket's entry and cached decision, copied whole.
    Hit(KnownSocket, CachedVerdict),
    /// Not cached.
    Miss,
    /// A writer was rewriting an entry whose tag matched: nothing returned (retry, or read under
    /// the shared lock).
    Busy,
}

impl<const WAYS: usize> Set<WAYS> {
    const fn empty(clock: u32) -> Self {
        Set {
            head: Head {
                tags: [const { AtomicU64::new(0) }; TAG_WORDS],
                used: AtomicU32::new(0),
                clock: AtomicU32::new(clock),
            },
            entries: [const { Entry::empty() }; WAYS],
            inodes: [const { AtomicU64::new(0) }; WAYS],
        }
    }

    /// Way `w`'s entry and its inode slot.
    #[inline(always)]
    fn way(&self, w: usize) -> Option<(&Entry, &AtomicU64)> {
        Some((self.entries.get(w)?, self.inodes.get(w)?))
    }

    fn used(&self) -> u32 {
        self.head.used.load(Acquire)
    }

    /// The occupied ways whose tag equals `tag` (a superset of the way holding the key, if any:
    /// the word-at-a-time zero-lane test may add ways above a match, never miss one).
    #[inline(always)]
    fn candidates(&self, tag: u64) -> u32 {
        let broadcast = tag.wrapping_mul(LANES_LOW);
        let mut m = 0u32;
        for (j, word) in self.head.tags.iter().enumerate().take(WAYS.div_ceil(4)) {
            let x = word.load(Relaxed) ^ broadcast;
            let z = x.wrapping_sub(LANES_LOW) & !x & LANES_HIGH;
            // Gather the four lane bits (15, 31, 47, 63) into bits 48..51 with one multiply: the
            // partial products land on distinct bits, so nothing carries into 48..51.
            let lanes = ((z >> 15).wrapping_mul(GATHER) >> 48) & 0xF;
            m |= (lanes as u32).wrapping_shl(4 * j as u32);
        }
        m & self.used()
    }

    /// Sets way `w`'s tag (the only writer).
    fn set_tag(&self, w: usize, tag: u64) {
        if let Some(word) = self.head.tags.get(w / 4) {
            let shift = 16 * (w % 4) as u32;
            let old = word.load(Relaxed);
            word.store((old & !(0xFFFFu64 << shift)) | (tag << shift), Relaxed);
        }
    }

    /// The way holding `key`, for a writer or under the shared lock (no writer runs concurrently,
    /// so the words are read directly; the tag narrows the search to the way it names).
    fn find(&self, key: u64) -> Option<usize> {
        let mut m = self.candidates(tag_of(key));
        while m != 0 {
            let w = m.trailing_zeros() as usize;
            m &= m.wrapping_sub(1);
            if let Some(e) = self.entries.get(w) {
                if e.key.load(Relaxed) == key && e.ident.load(Relaxed) != 0 {
                    return Some(w);
                }
            }
        }
        None
    }

    /// Lock-free: [`Entry::check`] on the way holding `key` (by tag).
    #[inline(always)]
    fn check(&self, key: u64, gen: u32, proto: u32, dest: u64, sender: Option<&TaskId>) -> Fast {
        let mut m = self.candidates(tag_of(key));
        while m != 0 {
            let w = m.trailing_zeros() as usize;
            m &= m.wrapping_sub(1);
            if let Some(e) = self.entries.get(w) {
                let r = e.check(key, gen, proto, dest, sender);
                if let Fast::Hit(..) = r {
                    let now = self.head.clock.load(Relaxed);
                    // Only when an insert moved the clock: a hot entry is not written per packet.
                    if e.stamp.load(Relaxed) != now {
                        e.stamp.store(now, Relaxed);
                    }
                }
                if r != Fast::Slow || e.key.load(Relaxed) == key {
                    return r;
                }
                // Another key with the same tag: look at the next candidate.
            }
        }
        Fast::Slow
    }

    /// Lock-free: the entry of `key`, copied whole, its verdict only if decided for `dest`;
    /// refreshes its stamp if asked.
    #[inline(always)]
    fn probe(&self, key: u64, dest: u64, refresh: bool) -> Probe {
        let mut out = Probe::Miss;
        let mut m = self.candidates(tag_of(key));
        while m != 0 {
            let w = m.trailing_zeros() as usize;
            m &= m.wrapping_sub(1);
            let Some((e, inode)) = self.way(w) else {
                continue;
            };
            match e.read(inode) {
                Read::Whole(k, v, cv, d) if k == key => {
                    let cv = if d == dest {
                        cv
                    } else {
                        CachedVerdict::EMPTY.0
                    };
                    if refresh {
                        let now = self.head.clock.load(Relaxed);
                        // Only when an insert moved the clock: a hot entry is not written per packet.
                        if e.stamp.load(Relaxed) != now {
                            e.stamp.store(now, Relaxed);
                        }
                    }
                    return Probe::Hit(v, CachedVerdict(cv));
                }
                Read::Torn => out = Probe::Busy,
                _ => {}
            }
        }
        out
    }
}

/// Set-associative LRU cache of known sockets, `SETS` × `WAYS` entries (defaults 128 × 8).
///
/// `SETS` must be a power of two, `1 <= WAYS <= 16`. Memory = `SETS × (WAYS + 1) × 64` bytes
/// plus `SETS × WAYS × 8` of inodes, rounded up to a line per set (80 KiB for the defaults);
/// constructible in a `static` via [`SocketCache::new`].
pub struct SocketCache<const SETS: usize = 128, const WAYS: usize = 8> {
    sets: [Set<WAYS>; SETS],
    len: AtomicUsize,
    evictions: AtomicU64,
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

/// How often a lock-free lookup retries an entry a writer is rewriting before it gives up
/// ([`SharedSockets::lookup`] then reads under the shared lock).
const LOCKFREE_TRIES: usize = 2;

impl<const SETS: usize, const WAYS: usize> SocketCache<SETS, WAYS> {
    const CHECK: () = assert!(
        SETS.is_power_of_two() && WAYS >= 1 && WAYS <= 16,
        "SocketCache: SETS must be a power of two and 1 <= WAYS <= 16"
    );
    const MASK: usize = SETS.wrapping_sub(1);

    /// An empty cache with the LRU clocks at 0.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        SocketCache {
            sets: [const { Set::empty(0) }; SETS],
            len: AtomicUsize::new(0),
            evictions: AtomicU64::new(0),
        }
    }

    /// An empty cache whose sets' LRU clocks start at `start` (tests start near `u32::MAX` to cross
    /// the wrap).
    pub fn with_clock(start: u32) -> Self {
        let c = Self::new();
        for set in c.sets.iter() {
            set.head.clock.store(start, Relaxed);
        }
        c
    }

    /// Total capacity `SETS × WAYS`.
    pub const fn capacity(&self) -> usize {
        SETS.wrapping_mul(WAYS)
    }

    /// Number of cached sockets.
    pub fn len(&self) -> usize {
        self.len.load(Relaxed)
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Entries evicted by inserts into full sets.
    pub fn evictions(&self) -> u64 {
        self.evictions.load(Relaxed)
    }

    /// The LRU clock of `key`'s set (advances once per insert into that set).
    pub fn clock_of(&self, key: SocketKey) -> u32 {
        self.set(key).map_or(0, |s| s.head.clock.load(Relaxed))
    }

    /// The set a key maps to (tests and the fuzz model use it to reason about LRU per set).
    #[doc(hidden)]
    pub fn set_index(&self, key: SocketKey) -> usize {
        set_of(key.0, Self::MASK)
    }

    #[inline(always)]
    fn set(&self, key: SocketKey) -> Option<&Set<WAYS>> {
        self.sets.get(set_of(key.0, Self::MASK))
    }

    /// The hit path (lock-free, see [`Fast`]) for a packet to `dest`: refreshes the LRU stamp on
    /// a hit.
    #[inline(always)]
    pub fn check(
        &self,
        key: SocketKey,
        gen: u32,
        proto: u32,
        dest: DestKey,
        sender: Option<&TaskId>,
    ) -> Fast {
        match self.set(key) {
            Some(set) => set.check(key.0, gen, proto, dest.0, sender),
            None => Fast::Slow,
        }
    }

    /// One lock-free probe: the entry copied whole (its verdict [`CachedVerdict::EMPTY`] unless
    /// decided for `dest`), a miss, or [`Probe::Busy`] when a writer was rewriting an entry that
    /// may be the socket's. Refreshes the LRU stamp on a hit (a store only when an insert into the
    /// set moved its clock since the entry's last use).
    #[inline(always)]
    pub fn probe(&self, key: SocketKey, dest: DestKey) -> Probe {
        match self.set(key) {
            Some(set) => set.probe(key.0, dest.0, true),
            None => Probe::Miss,
        }
    }

    /// The socket's entry and the decision cached for a packet whose destination was not read
    /// ([`DestKey::NONE`]); refreshes its LRU stamp. See [`SocketCache::lookup_at`].
    pub fn lookup(&self, key: SocketKey) -> Option<(KnownSocket, CachedVerdict)> {
        self.lookup_with(key, DestKey::NONE, true)
    }

    /// The socket's entry and the decision cached for a packet to `dest` ([`CachedVerdict::EMPTY`]
    /// if the entry's verdict was decided for another destination); refreshes its LRU stamp.
    /// Lock-free; with writers running concurrently (a [`SharedSockets`]), use
    /// [`SharedSockets::lookup_at`], which falls back to the shared lock if an entry stays busy
    /// (here a busy entry reads as a miss).
    pub fn lookup_at(&self, key: SocketKey, dest: DestKey) -> Option<(KnownSocket, CachedVerdict)> {
        self.lookup_with(key, dest, true)
    }

    /// Like [`SocketCache::lookup`] but does not refresh the LRU stamp.
    pub fn peek(&self, key: SocketKey) -> Option<(KnownSocket, CachedVerdict)> {
        self.lookup_with(key, DestKey::NONE, false)
    }

    fn lookup_with(
        &self,
        key: SocketKey,
        dest: DestKey,
        refresh: bool,
    ) -> Option<(KnownSocket, CachedVerdict)> {
        let set = self.set(key)?;
        for _ in 0..LOCKFREE_TRIES {
            match set.probe(key.0, dest.0, refresh) {
                Probe::Hit(k, v) => return Some((k, v)),
                Probe::Miss => return None,
                Probe::Busy => {}
            }
        }
        None
    }

    /// Stores the decision for a cached socket whose destination was not read
    /// ([`SocketCache::store_verdict_at`] with [`DestKey::NONE`]).
    pub fn store_verdict(&self, key: SocketKey, verdict: CachedVerdict) -> bool {
        self.store_verdict_at(key, verdict, DestKey::NONE)
    }

    /// Stores the decision for a cached socket's packets to `dest` (one atomic store; under a
    /// shared lock, or with `&mut`: the entry's key and destination cannot change meanwhile).
    /// Returns false if the socket is not cached or its entry holds another destination: changing
    /// the destination rewrites the entry under its sequence count, a writer's job
    /// ([`SocketsWrite::insert_with_verdict_at`]), since two words must change together.
    pub fn store_verdict_at(&self, key: SocketKey, verdict: CachedVerdict, dest: DestKey) -> bool {
        let Some(set) = self.set(key) else {
            return false;
        };
        match set.find(key.0).and_then(|w| set.entries.get(w)) {
            Some(e) if e.dest.load(Relaxed) == dest.0 => {
                e.verdict.store(verdict.0, Release);
                true
            }
            _ => false,
        }
    }

    /// Inserts or replaces the entry for `key` (the cached decision is reset). If the set is full, the
    /// least recently used entry of the set is evicted and its key returned.
    pub fn insert(&mut self, key: SocketKey, known: KnownSocket) -> Option<SocketKey> {
        self.insert_excl(key, known, CachedVerdict::EMPTY, DestKey::NONE)
    }

    /// [`SocketCache::insert`] with a decision already cached for packets whose destination was
    /// not read (one write of the entry).
    pub fn insert_with_verdict(
        &mut self,
        key: SocketKey,
        known: KnownSocket,
        verdict: CachedVerdict,
    ) -> Option<SocketKey> {
        self.insert_excl(key, known, verdict, DestKey::NONE)
    }

    /// [`SocketCache::insert`] with a decision already cached for packets to `dest`.
    pub fn insert_with_verdict_at(
        &mut self,
        key: SocketKey,
        known: KnownSocket,
        verdict: CachedVerdict,
        dest: DestKey,
    ) -> Option<SocketKey> {
        self.insert_excl(key, known, verdict, dest)
    }

    /// [`SocketCache::insert_with_verdict_at`] for the only writer (the caller serialises writers).
    fn insert_excl(
        &self,
        key: SocketKey,
        known: KnownSocket,
        verdict: CachedVerdict,
        dest: DestKey,
    ) -> Option<SocketKey> {
        let set = self.set(key)?;
        let now = set.head.clock.load(Relaxed).wrapping_add(1);
        set.head.clock.store(now, Relaxed);
        let used = set.used();
        let mut evicted = None;
        let way = if let Some(w) = set.find(key.0) {
            w
        } else if let Some(w) = (0..WAYS).find(|&w| used & bit(w) == 0) {
            self.len.fetch_add(1, Relaxed);
            w
        } else {
            // Full set: the victim is the least recently used entry of the uid holding the most
            // entries in the set (ties: the inserting uid's own entry), so one user's socket churn
            // evicts that user's entries, never a user's with fewer entries here than the churner.
            let victim = Self::victim(set, now, known.uid);
            evicted = set
                .way(victim)
                .and_then(|(e, inode)| e.current(inode))
                .map(|(k, _)| SocketKey(k));
            self.evictions.fetch_add(1, Relaxed);
            victim
        };
        if let Some((e, inode)) = set.way(way) {
            e.write(inode, key.0, Some(&known), (verdict.0, dest.0));
            e.stamp.store(now, Relaxed);
            set.set_tag(way, tag_of(key.0));
            set.head.used.store(used | bit(way), Release);
        }
        evicted
    }

    /// The way to evict from a full set (see [`SocketCache::insert`]): the least recently used
    /// (largest wrap-safe age) entry among those of the uids with the most entries in the set —
    /// only the inserting uid's own entries when it is one of them.
    fn victim(set: &Set<WAYS>, now: u32, inserting: u32) -> usize {
        // The only writer: the words are read directly, each once.
        let mut uids = [0u32; WAYS];
        for (u, e) in uids.iter_mut().zip(set.entries.iter()) {
            *u = e.tgid_uid.load(Relaxed) as u32;
        }
        let age = |w: usize| {
            set.entries
                .get(w)
                .map_or(0, |e| now.wrapping_sub(e.stamp.load(Relaxed)))
        };
        let oldest_among = |candidate: &dyn Fn(usize) -> bool| {
            let mut victim = 0usize;
            let mut oldest = 0u32;
            let mut found = false;
            for w in (0..WAYS).filter(|&w| candidate(w)) {
                let a = age(w);
                if !found || a > oldest {
                    victim = w;
                    oldest = a;
                    found = true;
                }
            }
            victim
        };
        // The common case (one user's sockets fill the set): every entry is a candidate, so the
        // victim is the set's least recently used entry.
        let first = uids.first().copied().unwrap_or(0);
        if uids.iter().all(|&u| u == first) {
            return oldest_among(&|_| true);
        }
        let count = |uid: u32| uids.iter().filter(|&&u| u == uid).count();
        let mut counts = [0usize; WAYS];
        for (c, &u) in counts.iter_mut().zip(uids.iter()) {
            *c = count(u);
        }
        let most = counts.iter().copied().max().unwrap_or(0);
        let own = count(inserting) == most;
        oldest_among(&|w| {
            if own {
                uids.get(w) == Some(&inserting)
            } else {
                counts.get(w) == Some(&most)
            }
        })
    }

    /// Removes the entry for `key`; returns whether it was cached.
    pub fn forget(&mut self, key: SocketKey) -> bool {
        self.forget_excl(key)
    }

    fn forget_excl(&self, key: SocketKey) -> bool {
        let Some(set) = self.set(key) else {
            return false;
        };
        match set.find(key.0) {
            Some(w) => {
                Self::free(set, w);
                self.len.fetch_sub(1, Relaxed);
                true
            }
            None => false,
        }
    }

    /// Frees way `w` of `set`: the entry first (a reader that saw the occupancy bit finds it free).
    fn free(set: &Set<WAYS>, w: usize) {
        if let Some((e, inode)) = set.way(w) {
            e.write(inode, 0, None, (CachedVerdict::EMPTY.0, 0));
        }
        let used = set.used();
        set.head.used.store(used & !bit(w), Release);
    }

    /// Removes every entry owned by process `tgid` (e.g. when it exits); returns how many.
    pub fn forget_tgid(&mut self, tgid: u32) -> usize {
        self.forget_tgid_excl(tgid)
    }

    fn forget_tgid_excl(&self, tgid: u32) -> usize {
        let mut n = 0usize;
        for set in self.sets.iter() {
            let used = set.used();
            for w in 0..WAYS {
                let Some((e, inode)) = set.way(w) else {
                    continue;
                };
                if used & bit(w) != 0
                    && matches!(e.current(inode), Some((_, v)) if v.owner.tgid == tgid)
                {
                    Self::free(set, w);
                    n = n.saturating_add(1);
                }
            }
        }
        self.len.fetch_sub(n.min(self.len()), Relaxed);
        n
    }

    /// Empties the cache in place (the clocks keep running).
    pub fn clear(&mut self) {
        self.clear_excl();
    }

    fn clear_excl(&self) {
        for set in self.sets.iter() {
            let used = set.used();
            for w in (0..WAYS).filter(|&w| used & bit(w) != 0) {
                Self::free(set, w);
            }
        }
        self.len.store(0, Relaxed);
        self.evictions.store(0, Relaxed);
    }

    /// Iterates over `(key, entry)` of every cached socket (diagnostics, tests).
    pub fn iter(&self) -> impl Iterator<Item = (SocketKey, KnownSocket)> + '_ {
        self.sets.iter().flat_map(|set| {
            let used = set.used();
            (0..WAYS)
                .filter(move |w| used & bit(*w) != 0)
                .filter_map(move |w| set.way(w))
                .filter_map(|(e, inode)| e.current(inode).map(|(k, v)| (SocketKey(k), v)))
        })
    }
}

/// The occupancy bit of way `w` (`w < 32`; `wrapping_shl` keeps it panic-free regardless).
const fn bit(w: usize) -> u32 {
    1u32.wrapping_shl(w as u32)
}

/// A [`SocketCache`] shared between CPUs: lock-free readers ([`SharedSockets::lookup`], the
/// per-packet hit), writers serialised by a read/write lock `R` (the kernel's BH-safe rwlock).
///
/// Why the lock stays: writers (inserts on misses, forgets, clears) must not run concurrently with
/// each other, and [`SocketCache::store_verdict`] must not run while an insert replaces its entry;
/// they hold it ([`SharedSockets::write`], [`SharedSockets::read`]). The hit path takes neither.
///
/// Why a reader cannot spin forever, PREEMPT_RT included: a reader retries a busy entry at most
/// `LOCKFREE_TRIES` (2) times and then takes the shared lock, which waits for the writer the way
/// any lock does (on RT, a sleeping lock with priority inheritance: a reader that preempted the
/// writer on its CPU boosts it instead of spinning on its odd sequence count; without RT the
/// writer holds the lock with bottom halves and preemption off, so no reader runs on its CPU).
pub struct SharedSockets<R: RawRwLock, const SETS: usize = 128, const WAYS: usize = 8> {
    lock: RwLock<R, ()>,
    cache: SocketCache<SETS, WAYS>,
}

impl<R: RawRwLock, const SETS: usize, const WAYS: usize> Default for SharedSockets<R, SETS, WAYS> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: RawRwLock, const SETS: usize, const WAYS: usize> SharedSockets<R, SETS, WAYS> {
    /// An empty cache (constructible in a `static`).
    pub const fn new() -> Self {
        SharedSockets {
            lock: RwLock::const_new(R::INIT, ()),
            cache: SocketCache::new(),
        }
    }

    /// THE per-packet check: lock-free, writes nothing shared ([`SocketCache::check`]). A busy
    /// entry is [`Fast::Slow`]: the full path then reads it with [`SharedSockets::lookup_at`].
    #[inline(always)]
    pub fn check(
        &self,
        key: SocketKey,
        gen: u32,
        proto: u32,
        dest: DestKey,
        sender: Option<&TaskId>,
    ) -> Fast {
        self.cache.check(key, gen, proto, dest, sender)
    }

    /// [`SharedSockets::lookup_at`] for a packet whose destination was not read.
    pub fn lookup(&self, key: SocketKey) -> Option<(KnownSocket, CachedVerdict)> {
        self.lookup_at(key, DestKey::NONE)
    }

    /// The full read ([`SocketCache::lookup_at`]): lock-free, writes nothing shared (see
    /// [`SocketCache`]'s concurrency notes). A torn copy is never returned: a busy entry is
    /// retried, then read under the shared lock (where no writer runs).
    #[inline(always)]
    pub fn lookup_at(&self, key: SocketKey, dest: DestKey) -> Option<(KnownSocket, CachedVerdict)> {
        match self.cache.probe(key, dest) {
            Probe::Hit(k, v) => Some((k, v)),
            Probe::Miss => None,
            Probe::Busy => self.lookup_slow(key, dest),
        }
    }

    #[inline(never)]
    fn lookup_slow(&self, key: SocketKey, dest: DestKey) -> Option<(KnownSocket, CachedVerdict)> {
        for _ in 1..LOCKFREE_TRIES {
            match self.cache.probe(key, dest) {
                Probe::Hit(k, v) => return Some((k, v)),
                Probe::Miss => return None,
                Probe::Busy => {}
            }
        }
        let _shared = self.lock.read();
        match self.cache.probe(key, dest) {
            Probe::Hit(k, v) => Some((k, v)),
            // Under the shared lock no writer runs: Busy cannot happen; a miss it would be.
            _ => None,
        }
    }

    /// The shared lock: reads that must not race an insert (e.g. [`SocketCache::store_verdict`]).
    pub fn read(&self) -> SocketsRead<'_, R, SETS, WAYS> {
        SocketsRead {
            _guard: self.lock.read(),
            cache: &self.cache,
        }
    }

    /// The write lock: inserts, forgets, clears.
    pub fn write(&self) -> SocketsWrite<'_, R, SETS, WAYS> {
        SocketsWrite {
            _guard: self.lock.write(),
            cache: &self.cache,
        }
    }

    /// The write lock if nobody holds the lock now (for a store the packet path may skip: it never
    /// waits for it).
    pub fn try_write(&self) -> Option<SocketsWrite<'_, R, SETS, WAYS>> {
        Some(SocketsWrite {
            _guard: self.lock.try_write()?,
            cache: &self.cache,
        })
    }
}

/// The shared lock of a [`SharedSockets`]: every `&self` method of [`SocketCache`].
pub struct SocketsRead<'a, R: RawRwLock, const SETS: usize, const WAYS: usize> {
    _guard: RwLockReadGuard<'a, R, ()>,
    cache: &'a SocketCache<SETS, WAYS>,
}

impl<R: RawRwLock, const SETS: usize, const WAYS: usize> core::ops::Deref
    for SocketsRead<'_, R, SETS, WAYS>
{
    type Target = SocketCache<SETS, WAYS>;
    fn deref(&self) -> &Self::Target {
        self.cache
    }
}

/// The write lock of a [`SharedSockets`]: the writers, plus every `&self` method (by `Deref`).
pub struct SocketsWrite<'a, R: RawRwLock, const SETS: usize, const WAYS: usize> {
    _guard: RwLockWriteGuard<'a, R, ()>,
    cache: &'a SocketCache<SETS, WAYS>,
}

impl<R: RawRwLock, const SETS: usize, const WAYS: usize> core::ops::Deref
    for SocketsWrite<'_, R, SETS, WAYS>
{
    type Target = SocketCache<SETS, WAYS>;
    fn deref(&self) -> &Self::Target {
        self.cache
    }
}

impl<R: RawRwLock, const SETS: usize, const WAYS: usize> SocketsWrite<'_, R, SETS, WAYS> {
    /// [`SocketCache::insert`], as the only writer.
    pub fn insert(&mut self, key: SocketKey, known: KnownSocket) -> Option<SocketKey> {
        self.cache
            .insert_excl(key, known, CachedVerdict::EMPTY, DestKey::NONE)
    }
    /// [`SocketCache::insert_with_verdict`], as the only writer.
    pub fn insert_with_verdict(
        &mut self,
        key: SocketKey,
        known: KnownSocket,
        verdict: CachedVerdict,
    ) -> Option<SocketKey> {
        self.cache.insert_excl(key, known, verdict, DestKey::NONE)
    }
    /// [`SocketCache::insert_with_verdict_at`], as the only writer.
    pub fn insert_with_verdict_at(
        &mut self,
        key: SocketKey,
        known: KnownSocket,
        verdict: CachedVerdict,
        dest: DestKey,
    ) -> Option<SocketKey> {
        self.cache.insert_excl(key, known, verdict, dest)
    }
    /// [`SocketCache::forget`], as the only writer.
    pub fn forget(&mut self, key: SocketKey) -> bool {
        self.cache.forget_excl(key)
    }
    /// [`SocketCache::forget_tgid`], as the only writer.
    pub fn forget_tgid(&mut self, tgid: u32) -> usize {
        self.cache.forget_tgid_excl(tgid)
    }
    /// [`SocketCache::clear`], as the only writer.
    pub fn clear(&mut self) {
        self.cache.clear_excl();
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    fn known() -> KnownSocket {
        KnownSocket {
            inode: 5,
            owner: TaskId::tgid_only(9),
            uid: 1000,
            exe: Identity::Unknown,
        }
    }

    /// The kernel's per-program counters take the program's id straight from the cached word.
    #[test]
    fn exe_word_is_the_programs_id_or_zero() {
        let mut t: crate::exe::ExeTable<4> = crate::exe::ExeTable::new();
        let id = t.intern(b"/opt/a/e7-probe").unwrap();
        assert_eq!(
            FastIdentity::exe_word(pack_identity(Identity::Exe(id))),
            id.to_u64()
        );
        assert_ne!(id.to_u64(), 0);
        for other in [
            Identity::PathTooLong,
            Identity::NoHostPath,
            Identity::Unknown,
        ] {
            assert_eq!(FastIdentity::exe_word(pack_identity(other)), 0);
        }
        assert_eq!(FastIdentity::exe_word(0), 0, "a free entry");
    }

    /// An entry whose writer never finishes (odd sequence count) is never returned: the probe says
    /// busy, and the engine's lookup, after its retries and the shared lock, reads it as a miss.
    #[test]
    fn an_entry_being_written_reads_as_busy_then_miss() {
        let c: SharedSockets<parking_lot::RawRwLock, 1, 2> = SharedSockets::new();
        c.write().insert(SocketKey(3), known());
        assert!(matches!(
            c.cache.probe(SocketKey(3), DestKey::NONE),
            Probe::Hit(..)
        ));
        let e = &c.cache.sets[0].entries[c.cache.sets[0].find(3).unwrap()];
        e.seq.fetch_add(1, Relaxed);
        assert_eq!(c.cache.probe(SocketKey(3), DestKey::NONE), Probe::Busy);
        assert_eq!(c.lookup(SocketKey(3)), None);
        e.seq.fetch_add(1, Relaxed);
        assert_eq!(c.lookup(SocketKey(3)).map(|(k, _)| k), Some(known()));
    }

    /// The word-at-a-time tag compare finds every way whose tag matches, for every tag pattern
    /// (exhaustive over which of 8 ways match, with neighbours differing by one, the borrow case).
    #[test]
    fn candidates_never_miss_a_matching_way() {
        let set: Set<8> = Set::empty(0);
        set.head.used.store(0xFF, Relaxed);
        for tag in [0u64, 1, 0x7FFF, 0x8000, 0xFFFF, 0x1234] {
            for pattern in 0u32..256 {
                for w in 0..8 {
                    let t = if pattern & (1 << w) != 0 {
                        tag
                    } else {
                        (tag + 1 + w as u64) & 0xFFFF
                    };
                    set.set_tag(w, t);
                }
                let m = set.candidates(tag);
                assert_eq!(
                    m & pattern,
                    pattern,
                    "tag {tag:#x} pattern {pattern:#b}: {m:#b}"
                );
                if pattern == 0 {
                    assert_eq!(m, 0, "tag {tag:#x}: nothing matches, got {m:#b}");
                }
            }
        }
    }

    /// Layout the hit path relies on: one line per entry, one head line per set.
    #[test]
    fn one_line_per_entry() {
        assert_eq!(core::mem::size_of::<Entry>(), 64);
        assert_eq!(core::mem::size_of::<Head<8>>(), 64);
        assert_eq!(core::mem::size_of::<Set<8>>(), 10 * 64);
    }
}
