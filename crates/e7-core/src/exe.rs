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
//! When the table is full, [`ExeTable::intern`] evicts the least recently used path (every intern or
//! touch advances a wrapping `u32` clock and stamps the entry; age = `clock.wrapping_sub(stamp)`), so
//! interning never fails for lack of space. The lookup index is hashed chaining through fixed arrays
//! (`heads[N]` + `next[N]`, load factor ≤ 1), so intern and lookup cost O(1) expected, independent
//! of N.

use core::sync::atomic::{AtomicU32, Ordering::Relaxed};

use crate::path::{hash_bytes, ExePath, PathError};

const NIL: u16 = u16::MAX;

/// A handle to a path in an [`ExeTable`]: slot index plus the slot's generation when it was issued.
///
/// Generations are never 0, so `ExeId::to_u32` is never 0 and 0 can mean "none" in packed atomics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExeId {
    slot: u16,
    gen: u16,
}

impl ExeId {
    /// The slot index.
    pub const fn slot(self) -> u16 {
        self.slot
    }
    /// The generation of the slot when this id was issued (never 0).
    pub const fn gen(self) -> u16 {
        self.gen
    }
    /// Packs into a non-zero u32 (`gen << 16 | slot`).
    pub const fn to_u32(self) -> u32 {
        ((self.gen as u32) << 16) | self.slot as u32
    }
    /// Unpacks [`ExeId::to_u32`]; `None` for values with generation 0 (never issued).
    pub const fn from_u32(v: u32) -> Option<ExeId> {
        let gen = (v >> 16) as u16;
        if gen == 0 {
            None
        } else {
            Some(ExeId {
                slot: v as u16,
                gen,
            })
        }
    }
}

struct ExeSlot {
    path: ExePath,
    hash: u32,
    /// Current generation of the slot; 0 = never used.
    gen: u16,
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
/// Memory: about `N × 272` bytes (≈ 70 KiB for 256). Constructible in a `static` via [`ExeTable::new`].
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
                self.unlink(victim);
                self.evictions = self.evictions.wrapping_add(1);
                victim
            }
        };
        let now = self.tick();
        let bucket = (hash as usize) & Self::MASK;
        let head = self.heads.get(bucket).copied().unwrap_or(NIL);
        let Some(s) = self.slots.get_mut(slot) else {
            // Unreachable: slot < N by construction. Return an id that never resolves.
            return ExeId { slot: NIL, gen: 1 };
        };
        // Validation happened before; set() re-checks cheaply and cannot fail here.
        let _ = s.path.set(path);
        s.hash = hash;
        s.gen = match s.gen.wrapping_add(1) {
            0 => 1,
            g => g,
        };
        s.live = true;
        s.next = head;
        *s.stamp.get_mut() = now;
        let id = ExeId {
            slot: slot as u16,
            gen: s.gen,
        };
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
                return Some(ExeId {
                    slot: cur,
                    gen: s.gen,
                });
            }
            cur = s.next;
            steps = steps.wrapping_add(1);
        }
        None
    }

    /// The path of `id`, or `None` if the slot was reused or freed since the id was issued.
    pub fn get(&self, id: ExeId) -> Option<&ExePath> {
        let s = self.slots.get(usize::from(id.slot))?;
        (s.live && s.gen == id.gen).then_some(&s.path)
    }

    /// Marks `id` as recently used (LRU), touching only an atomic. Returns false for a stale id.
    pub fn touch(&self, id: ExeId) -> bool {
        match self.slots.get(usize::from(id.slot)) {
            Some(s) if s.live && s.gen == id.gen => {
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

    /// Iterates over the live `(id, path)` pairs in slot order.
    pub fn iter(&self) -> impl Iterator<Item = (ExeId, &ExePath)> {
        (0..N).zip(self.slots.iter()).filter_map(|(i, s)| {
            s.live.then_some((
                ExeId {
                    slot: i as u16,
                    gen: s.gen,
                },
                &s.path,
            ))
        })
    }

    fn tick(&mut self) -> u32 {
        let c = self.clock.get_mut();
        *c = c.wrapping_add(1);
        *c
    }

    fn free_slot(&self) -> Option<usize> {
        if self.len >= N {
            return None;
        }
        (0..N)
            .zip(self.slots.iter())
            .find(|(_, s)| !s.live)
            .map(|(i, _)| i)
    }

    /// The live slot with the greatest wrap-safe age `clock - stamp`; ties go to the lowest slot.
    fn lru_slot(&self) -> usize {
        let now = self.clock.load(Relaxed);
        let mut best: Option<(usize, u32)> = None;
        for (i, s) in (0..N).zip(self.slots.iter()) {
            if !s.live {
                continue;
            }
            let age = now.wrapping_sub(s.stamp.load(Relaxed));
            if best.is_none_or(|(_, b)| age > b) {
                best = Some((i, age));
            }
        }
        best.map_or(0, |(i, _)| i)
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
