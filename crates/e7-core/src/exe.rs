//! The executable table: every distinct executable path stored once, referred to by [`ExeId`].
//!
//! Why: a path is 256 bytes, a socket entry should be a few dozen. Sockets, cached verdicts and events
//! hold a 4-byte [`ExeId`] instead, and the path is copied only when something (an event, a rule lookup
//! after a policy change) really needs it.
//!
//! Ids are `{slot, gen}`. When a slot is reused for another path its generation is bumped, so an id
//! taken before the reuse no longer resolves ([`ExeTable::get`] returns `None`) instead of silently
//! naming the new path. A holder of a stale id re-identifies the process.
//!
//! Why 40-bit generations: ids are held for as long as a socket lives (the known-socket cache, the
//! kernel's per-process-image cache). With a 16-bit generation, 65,535 reuses of one slot (about
//! 16.8 M identifications rotating through 257 paths in a 256-slot table) brought an old id back to
//! life naming another program. A 40-bit generation does not wrap in practice (2^40 reuses of one
//! slot: 2.8 × 10^14 identifications with 256 slots), and a slot that reaches the last generation is
//! retired, never reused, so an id can never name a different executable than the one it was issued
//! for. The id is 8 bytes and its last byte is a niche, so [`Identity`](crate::Identity) stays 8
//! bytes and a known-socket entry does not grow.
//!
//! When the table is full, [`ExeTable::intern`] evicts the least recently used path (every intern or
//! touch advances a wrapping `u32` clock and stamps the entry; age = `clock.wrapping_sub(stamp)`), so
//! interning never fails for lack of space. The lookup index is hashed chaining through fixed arrays
//! (`heads[N]` + `next[N]`, load factor ≤ 1), so intern and lookup cost O(1) expected, independent
//! of N.

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::path::{hash_bytes, ExePath, PathError};

const NIL: u16 = u16::MAX;

/// The last generation a slot can have (40 bits); a slot that reaches it is retired.
pub const MAX_GENERATION: u64 = (1 << 40) - 1;

/// A byte that is always 0: its 255 invalid values let enums around [`ExeId`] (such as
/// [`Identity`](crate::Identity)) keep their tag inside the id's 8 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
enum Niche {
    Zero = 0,
}

/// A handle to a path in an [`ExeTable`]: slot index plus the slot's 40-bit generation when it was
/// issued. 8 bytes.
///
/// Generations are never 0, so `ExeId::to_u64` is never 0 and 0 can mean "none" in packed atomics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExeId {
    gen_lo: u32,
    slot: u16,
    gen_hi: u8,
    niche: Niche,
}

impl ExeId {
    const fn new(slot: u16, gen: u64) -> ExeId {
        ExeId {
            gen_lo: gen as u32,
            slot,
            gen_hi: (gen >> 32) as u8,
            niche: Niche::Zero,
        }
    }
    /// The slot index.
    pub const fn slot(self) -> u16 {
        self.slot
    }
    /// The generation of the slot when this id was issued (never 0, at most [`MAX_GENERATION`]).
    pub const fn gen(self) -> u64 {
        ((self.gen_hi as u64) << 32) | self.gen_lo as u64
    }
    /// Packs into a non-zero u64 (`gen << 16 | slot`).
    pub const fn to_u64(self) -> u64 {
        (self.gen() << 16) | self.slot as u64
    }
    /// Unpacks [`ExeId::to_u64`]; `None` for values with generation 0 (never issued) or above
    /// [`MAX_GENERATION`].
    pub const fn from_u64(v: u64) -> Option<ExeId> {
        let gen = v >> 16;
        if gen == 0 || gen > MAX_GENERATION {
            None
        } else {
            Some(ExeId::new(v as u16, gen))
        }
    }
    /// A 32-bit digest of the id (slot and the low 16 bits of the generation) for keys where a rare
    /// collision is harmless (the event rate limiter); never used to name an executable.
    pub const fn digest32(self) -> u32 {
        ((self.gen_lo & 0xFFFF) << 16) | self.slot as u32
    }
}

struct ExeSlot {
    path: ExePath,
    hash: u32,
    /// Current generation of the slot; 0 = never used; [`MAX_GENERATION`] = retired after its last
    /// use (never reused).
    gen: u64,
    live: bool,
    /// Next live slot in the same hash chain, or `NIL`.
    next: u16,
    stamp: AtomicU32,
}

impl ExeSlot {
    const fn empty() -> ExeSlot {
        ExeSlot {
            path: ExePath::EMPTY,
            hash: 0,
            gen: 0,
            live: false,
            next: NIL,
            stamp: AtomicU32::new(0),
        }
    }
}

/// Interning table of executable paths with `N` slots (default 256; a power of two, at most 32768).
///
/// Memory: about `N × 282` bytes (≈ 70.5 KiB for 256). Constructible in a `static` via [`ExeTable::new`].
pub struct ExeTable<const N: usize = 256> {
    slots: [ExeSlot; N],
    heads: [u16; N],
    clock: AtomicU32,
    len: usize,
    evictions: u32,
}

impl<const N: usize> Default for ExeTable<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ExeTable<N> {
    const CHECK: () = assert!(
        N.is_power_of_two() && N <= 32768,
        "ExeTable capacity must be a power of two <= 32768"
    );
    const MASK: usize = N.wrapping_sub(1);

    /// An empty table (`const`, so it can live in a `static`).
    pub const fn new() -> Self {
        let () = Self::CHECK;
        ExeTable {
            slots: [const { ExeSlot::empty() }; N],
            heads: [NIL; N],
            clock: AtomicU32::new(0),
            len: 0,
            evictions: 0,
        }
    }

    /// Capacity N.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Number of live paths.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when no path is stored.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// How many paths were evicted to make room since creation or the last [`ExeTable::clear`].
    pub fn evictions(&self) -> u32 {
        self.evictions
    }

    /// Returns the id of `path`, storing it if new (evicting the least recently used path when full).
    /// The bytes are validated as an executable path first.
    pub fn intern(&mut self, path: &[u8]) -> Result<ExeId, PathError> {
        // Validate before evicting anything, without building a 256-byte temporary.
        crate::path::validate_exe_path(path)?;
        Ok(self.intern_checked(path, hash_bytes(path)))
    }

    /// Same as [`ExeTable::intern`] for an already validated path.
    pub fn intern_path(&mut self, path: &ExePath) -> ExeId {
        let b = path.as_bytes();
        self.intern_checked(b, hash_bytes(b))
    }

    fn intern_checked(&mut self, path: &[u8], hash: u32) -> ExeId {
        if let Some(id) = self.find_hashed(path, hash) {
            self.touch(id);
            return id;
        }
        let slot = match self.free_slot() {
            Some(s) => s,
            None => {
                let victim = self.lru_slot();
                if victim < N {
                    self.unlink(victim);
                    self.evictions = self.evictions.wrapping_add(1);
                }
                victim
            }
        };
        let now = self.tick();
        let bucket = (hash as usize) & Self::MASK;
        let head = self.heads.get(bucket).copied().unwrap_or(NIL);
        let Some(s) = self.slots.get_mut(slot) else {
            // Every slot is retired (2^48 reuses each: unreachable in practice) or, unreachable by
            // construction, slot >= N. Return an id that never resolves.
            return ExeId::new(NIL, 1);
        };
        // Validation happened before; set() re-checks cheaply and cannot fail here.
        let _ = s.path.set(path);
        s.hash = hash;
        // Never wraps: a slot at MAX_GENERATION is never picked (free_slot, lru_slot).
        s.gen = s.gen.saturating_add(1).min(MAX_GENERATION);
        s.live = true;
        s.next = head;
        *s.stamp.get_mut() = now;
        let id = ExeId::new(slot as u16, s.gen);
        if let Some(h) = self.heads.get_mut(bucket) {
            *h = slot as u16;
        }
        self.len = self.len.saturating_add(1);
        id
    }

    /// Looks a path up without inserting it.
    pub fn find(&self, path: &[u8]) -> Option<ExeId> {
        self.find_hashed(path, hash_bytes(path))
    }

    fn find_hashed(&self, path: &[u8], hash: u32) -> Option<ExeId> {
        let mut cur = *self.heads.get((hash as usize) & Self::MASK)?;
        let mut steps = 0usize;
        while cur != NIL && steps < N {
            let s = self.slots.get(usize::from(cur))?;
            if s.hash == hash && s.path.as_bytes() == path {
                return Some(ExeId::new(cur, s.gen));
            }
            cur = s.next;
            steps = steps.wrapping_add(1);
        }
        None
    }

    /// The path of `id`, or `None` if the slot was reused or freed since the id was issued.
    pub fn get(&self, id: ExeId) -> Option<&ExePath> {
        let s = self.slots.get(usize::from(id.slot))?;
        (s.live && s.gen == id.gen()).then_some(&s.path)
    }

    /// Marks `id` as recently used (LRU), touching only an atomic. Returns false for a stale id.
    pub fn touch(&self, id: ExeId) -> bool {
        match self.slots.get(usize::from(id.slot)) {
            Some(s) if s.live && s.gen == id.gen() => {
                // Every use advances the clock (touches are miss-path events, not per packet), so
                // the LRU order is strict.
                let now = self.clock.fetch_add(1, Relaxed).wrapping_add(1);
                s.stamp.store(now, Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Removes `id` (its id and every copy of it stop resolving). Returns false for a stale id.
    pub fn remove(&mut self, id: ExeId) -> bool {
        if self.get(id).is_none() {
            return false;
        }
        self.unlink(usize::from(id.slot));
        true
    }

    /// Removes every path in place; generations are kept, so every id issued before stays stale.
    pub fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            s.live = false;
            s.next = NIL;
        }
        for h in self.heads.iter_mut() {
            *h = NIL;
        }
        self.len = 0;
        self.evictions = 0;
    }

    /// Sets the LRU clock (tests use it to exercise wrap-around).
    pub fn set_clock(&mut self, v: u32) {
        *self.clock.get_mut() = v;
    }

    /// Sets the generation of a free slot (tests use it to reach [`MAX_GENERATION`] without 2^48
    /// reuses). Does nothing to a live slot.
    #[doc(hidden)]
    pub fn set_free_slot_generation(&mut self, slot: usize, gen: u64) {
        if let Some(s) = self.slots.get_mut(slot) {
            if !s.live {
                s.gen = gen.min(MAX_GENERATION);
            }
        }
    }

    /// Iterates over the live `(id, path)` pairs in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (ExeId, &ExePath)> {
        (0..N)
            .zip(self.slots.iter())
            .filter_map(|(i, s)| s.live.then_some((ExeId::new(i as u16, s.gen), &s.path)))
    }

    fn tick(&mut self) -> u32 {
        let c = self.clock.get_mut();
        *c = c.wrapping_add(1);
        *c
    }

    /// A free slot that is not retired.
    fn free_slot(&self) -> Option<usize> {
        if self.len >= N {
            return None;
        }
        (0..N)
            .zip(self.slots.iter())
            .find(|(_, s)| !s.live && s.gen < MAX_GENERATION)
            .map(|(i, _)| i)
    }

    /// The live slot with the greatest wrap-safe age `clock - stamp` that may be reused (not at
    /// its last generation); ties go to the lowest slot. `N` (never a valid slot) when none may.
    fn lru_slot(&self) -> usize {
        let now = self.clock.load(Relaxed);
        let mut best: Option<(usize, u32)> = None;
        for (i, s) in (0..N).zip(self.slots.iter()) {
            if !s.live || s.gen >= MAX_GENERATION {
                continue;
            }
            let age = now.wrapping_sub(s.stamp.load(Relaxed));
            if best.is_none_or(|(_, b)| age > b) {
                best = Some((i, age));
            }
        }
        best.map_or(N, |(i, _)| i)
    }

    /// Removes slot `idx` from its hash chain and marks it free.
    fn unlink(&mut self, idx: usize) {
        let Some(s) = self.slots.get(idx) else { return };
        if !s.live {
            return;
        }
        let bucket = (s.hash as usize) & Self::MASK;
        let next = s.next;
        let mut prev = NIL;
        let mut cur = self.heads.get(bucket).copied().unwrap_or(NIL);
        let mut steps = 0usize;
        while cur != NIL && steps < N {
            if usize::from(cur) == idx {
                if prev == NIL {
                    if let Some(h) = self.heads.get_mut(bucket) {
                        *h = next;
                    }
                } else if let Some(p) = self.slots.get_mut(usize::from(prev)) {
                    p.next = next;
                }
                break;
            }
            prev = cur;
            cur = self.slots.get(usize::from(cur)).map_or(NIL, |s| s.next);
            steps = steps.wrapping_add(1);
        }
        if let Some(s) = self.slots.get_mut(idx) {
            s.live = false;
            s.next = NIL;
        }
        self.len = self.len.saturating_sub(1);
    }
}

// The id is 8 bytes and an identity holding it too: a known-socket entry must not grow with the
// generation (benches/README.md, footprint).
const _: () = assert!(core::mem::size_of::<ExeId>() == 8);
const _: () = assert!(core::mem::size_of::<crate::socket::Identity>() == 8);
