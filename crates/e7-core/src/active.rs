//! The active-socket cache: socket inode → owning process, from walks of the process table.
//!
//! Why: when a packet's socket is not in the known-socket cache and its sender is not a user
//! process that can be asked directly, the only way to find the owner is to walk every process's
//! descriptor table. That walk is expensive and its length is in the hands of users (processes ×
//! descriptors), so one walk records *every* socket it sees (the following unknown sockets of a
//! connection storm are answered from this table), and the walk itself is built so that no user
//! can turn it into a long atomic section:
//!
//! - **collected outside every lock, merged in short chunks.** A walk is a sequence of *chunks*:
//!   the host fills a caller-provided buffer of at most [`WALK_CHUNK`] (inode, owner) pairs
//!   ([`ProcessTable::collect`], [`Host::collect_sockets`](crate::Host::collect_sockets)) with no
//!   e7 lock held — in the kernel in process context, preemptible, bottom halves on — and the
//!   caller then takes the cache's lock only to [`merge`](ActiveCache::merge) that chunk. The
//!   longest locked section of a walk is one merge of at most `WALK_CHUNK` entries, whatever the
//!   number of processes and descriptors ([`ActiveCache::max_merge`] records the largest).
//! - **bounded slices with a resume cursor.** A [`WalkCursor`] says where the next chunk starts
//!   (kernel: process id and descriptor number). A *slice* (one run of the deferred work) collects
//!   at most [`WALK_SLICE_CHUNKS`] chunks or for [`WALK_SLICE_MS`], then stops and keeps its
//!   cursor; the next slice resumes there, so a huge table is covered over several slices instead
//!   of one long run, and an owner late in the table is still found eventually (no starvation).
//!   A *cycle* is the walk from the start to the end of the table, over one or more slices.
//! - **rate limit**: a slice starts at most once per `min_interval_ms` after the previous one
//!   ended ([`ActiveCache::begin_slice`]); an unknown inode inside the interval gets
//!   [`ActiveLookup::RateLimited`] (the caller retries later). A storm of fresh inodes therefore
//!   costs at most one bounded slice per interval.
//! - **negative caching**: an inode that a *whole* cycle did not see — a cycle that started after
//!   the inode was asked for and ran start to end — is remembered for `negative_ttl_ms` and
//!   answered [`ActiveLookup::NotFound`] without another walk (kernel sockets, io_uring
//!   registered files whose descriptor was closed). A cycle resumed from an earlier slice may have
//!   passed the owner before the question was asked, so it never creates negative entries: those
//!   inodes are asked again. Negative entries live in their own small table and never displace a
//!   positive entry; one user's fresh inodes can only displace other negative entries, which costs
//!   a later (rate-limited) walk, never a wrong answer.
//!
//! **Overflow.** The table holds `N` inodes (default 1024) in open addressing with a bounded probe
//! (`PROBE` = 16 slots). When a cycle sees more sockets than fit, the extra ones are not recorded
//! and counted in [`ActiveCache::dropped`]; the inodes a caller is looking for are matched against
//! every collected chunk directly, so they are answered whether or not they fit.
//!
//! Owners are a snapshot: a recorded tgid may have exited or closed the socket since. The caller
//! re-validates when that matters (the kernel checks the task still exists).

use core::ops::ControlFlow;

/// One (socket inode, owning process) pair reported by a [`ProcessTable`] walk.
///
/// `#[repr(C)]` so the kernel shim can fill an array of them in place (`struct e7_sock_owner` in
/// `e7_rust.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SocketOwner {
    /// Socket inode.
    pub inode: u64,
    /// Thread-group id of a process holding a descriptor for it.
    pub tgid: u32,
}

/// Where the next chunk of a walk starts. Opaque to e7-core; hosts that walk processes in id order
/// use [`WalkCursor::at`] (process id, descriptor number), the default [`ProcessTable::collect`]
/// counts entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct WalkCursor(pub u64);

impl WalkCursor {
    /// The beginning of the table.
    pub const START: WalkCursor = WalkCursor(0);

    /// Resume at process `tgid` (or the next higher id), descriptor `fd` (or the next higher).
    pub const fn at(tgid: u32, fd: u32) -> WalkCursor {
        WalkCursor(((tgid as u64) << 32) | fd as u64)
    }

    /// The process id of a cursor made by [`WalkCursor::at`].
    pub const fn tgid(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The descriptor number of a cursor made by [`WalkCursor::at`].
    pub const fn fd(self) -> u32 {
        self.0 as u32
    }
}

/// How a chunk of a walk ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChunkEnd {
    /// More to walk from this cursor.
    More(WalkCursor),
    /// The walk reached the end of the table.
    Done,
    /// The host cannot walk now (wrong context, unloading): nothing more this slice.
    Refused,
}

/// One chunk of a walk: `len` pairs written to the front of the caller's buffer, and where it ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Chunk {
    /// Pairs written.
    pub len: usize,
    /// How the chunk ended.
    pub end: ChunkEnd,
}

/// A source of process-table snapshots: the kernel walks tasks and their file tables; userspace reads
/// `/proc/*/fd` ([`ProcFsTable`](crate::ProcFsTable), feature `std`); tests use a fake.
pub trait ProcessTable {
    /// Calls `f` for every socket descriptor of every process. `f` may return `Break` to stop early.
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>);

    /// Writes the pairs from `from` on into `out` (at most `out.len()`) and says where to resume.
    /// The default runs [`ProcessTable::for_each_socket`] and counts entries (the cursor is an
    /// ordinal); tables that can resume cheaply override it.
    fn collect(&mut self, from: WalkCursor, out: &mut [SocketOwner]) -> Chunk {
        collect_by_ordinal(from, out, |f| self.for_each_socket(f))
    }
}

/// The default [`ProcessTable::collect`] over any `for_each_socket`-style walk: skips `from.0`
/// entries, copies up to `out.len()`, and returns the ordinal of the next one.
pub fn collect_by_ordinal(
    from: WalkCursor,
    out: &mut [SocketOwner],
    walk: impl FnOnce(&mut dyn FnMut(SocketOwner) -> ControlFlow<()>),
) -> Chunk {
    let mut seen = 0u64;
    let mut n = 0usize;
    let mut more = false;
    walk(&mut |o: SocketOwner| {
        if seen < from.0 {
            seen = seen.saturating_add(1);
            return ControlFlow::Continue(());
        }
        match out.get_mut(n) {
            Some(slot) => {
                *slot = o;
                n = n.saturating_add(1);
                seen = seen.saturating_add(1);
                ControlFlow::Continue(())
            }
            None => {
                more = true;
                ControlFlow::Break(())
            }
        }
    });
    Chunk {
        len: n,
        end: if more {
            ChunkEnd::More(WalkCursor(seen))
        } else {
            ChunkEnd::Done
        },
    }
}

/// Result of [`ActiveCache::find`] and [`ActiveCache::lookup`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActiveLookup {
    /// The inode belongs to this process (per the current walk).
    Owner(u32),
    /// No process held the inode in the latest complete walk (negative cache).
    NotFound,
    /// Unknown inode, and no walk may start now (minimum interval, or a slice is running).
    RateLimited,
}

/// Maximum slots probed per lookup or insert.
pub const PROBE: usize = 16;
/// Slots of the negative cache (direct-mapped by inode hash).
pub const NEGATIVE_SLOTS: usize = 64;
/// Default minimum interval between walk slices (from the end of one to the start of the next), ms.
pub const DEFAULT_MIN_INTERVAL_MS: u64 = 50;
/// Default lifetime of a negative entry, in milliseconds.
pub const DEFAULT_NEGATIVE_TTL_MS: u64 = 1000;
/// Pairs collected per chunk, i.e. the most entries merged under one lock hold.
pub const WALK_CHUNK: usize = 64;
/// Chunks per slice at most (then the slice pauses with its cursor).
pub const WALK_SLICE_CHUNKS: u32 = 256;
/// Milliseconds per slice at most (checked between chunks).
pub const WALK_SLICE_MS: u64 = 10;

#[derive(Clone, Copy)]
struct Slot {
    /// 0 = empty (inode 0 is never a real socket inode and is never recorded).
    inode: u64,
    tgid: u32,
}

#[derive(Clone, Copy)]
struct Negative {
    inode: u64,
    since_ms: u64,
}

/// A slice granted by [`ActiveCache::begin_slice`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slice {
    /// Where to collect from.
    pub from: WalkCursor,
    /// True when this slice starts a new cycle (the table was cleared): if it also reaches the end,
    /// every inode asked for before it began and not seen is known to have no owner.
    pub fresh: bool,
}

/// How a slice ended ([`ActiveCache::end_slice`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SliceEnd {
    /// The cycle reached the end of the table.
    Complete,
    /// The slice's budget ran out; the next slice resumes at this cursor.
    Paused(WalkCursor),
    /// The host refused to walk; the cycle stays where it was.
    Refused,
}

/// Walk counters ([`ActiveCache::walk_stats`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct WalkStats {
    /// Slices run.
    pub slices: u64,
    /// Cycles completed (start to end of the table).
    pub cycles: u64,
    /// Pairs merged in total.
    pub merged: u64,
    /// Most pairs merged under one lock hold (never above [`WALK_CHUNK`]).
    pub max_merge: u32,
    /// Pairs the latest cycle could not record (table full or probe exhausted).
    pub dropped: u32,
}

/// Inode → owner table of `N` slots (default 1024; power of two) filled by process-table walks.
///
/// Memory ≈ `N × 16` bytes + 1 KiB (≈ 17 KiB for 1024). Constructible in a `static`.
pub struct ActiveCache<const N: usize = 1024> {
    slots: [Slot; N],
    negative: [Negative; NEGATIVE_SLOTS],
    last_slice_end_ms: Option<u64>,
    min_interval_ms: u64,
    negative_ttl_ms: u64,
    len: usize,
    /// Where the cycle in progress resumes; `None`: no cycle in progress (the next starts fresh).
    cursor: Option<WalkCursor>,
    slicing: bool,
    stats: WalkStats,
}

impl<const N: usize> Default for ActiveCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

const fn hash_inode(inode: u64) -> usize {
    (inode.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize
}

impl<const N: usize> ActiveCache<N> {
    const CHECK: () = assert!(
        N.is_power_of_two(),
        "ActiveCache capacity must be a power of two"
    );
    const MASK: usize = N.wrapping_sub(1);

    /// An empty cache with the default interval and negative TTL.
    pub const fn new() -> Self {
        Self::with_limits(DEFAULT_MIN_INTERVAL_MS, DEFAULT_NEGATIVE_TTL_MS)
    }

    /// An empty cache with explicit limits (milliseconds).
    pub const fn with_limits(min_interval_ms: u64, negative_ttl_ms: u64) -> Self {
        let () = Self::CHECK;
        ActiveCache {
            slots: [Slot { inode: 0, tgid: 0 }; N],
            negative: [Negative {
                inode: 0,
                since_ms: 0,
            }; NEGATIVE_SLOTS],
            last_slice_end_ms: None,
            min_interval_ms,
            negative_ttl_ms,
            len: 0,
            cursor: None,
            slicing: false,
            stats: WalkStats {
                slices: 0,
                cycles: 0,
                merged: 0,
                max_merge: 0,
                dropped: 0,
            },
        }
    }

    /// Capacity N.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Inodes recorded by the current cycle.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sockets the current cycle saw but could not record (table full or probe exhausted).
    pub fn dropped(&self) -> usize {
        self.stats.dropped as usize
    }

    /// Number of walk slices run.
    pub fn walks(&self) -> u64 {
        self.stats.slices
    }

    /// The walk counters.
    pub fn walk_stats(&self) -> WalkStats {
        self.stats
    }

    /// Most pairs merged under one lock hold so far.
    pub fn max_merge(&self) -> usize {
        self.stats.max_merge as usize
    }

    /// True while a cycle is in progress (paused between slices, or a slice running).
    pub fn in_cycle(&self) -> bool {
        self.cursor.is_some()
    }

    /// The owner of `inode` from the current table, without walking.
    pub fn get(&self, inode: u64) -> Option<u32> {
        if inode == 0 {
            return None;
        }
        let start = hash_inode(inode);
        for i in 0..PROBE {
            let s = self.slots.get(start.wrapping_add(i) & Self::MASK)?;
            if s.inode == inode {
                return Some(s.tgid);
            }
            if s.inode == 0 {
                return None;
            }
        }
        None
    }

    /// What the cache knows about `inode` without walking: its owner, `NotFound` (inode 0, or a
    /// live negative entry), or `None` (unknown: a walk would have to look).
    pub fn lookup(&self, inode: u64, now_ms: u64) -> Option<ActiveLookup> {
        if inode == 0 {
            return Some(ActiveLookup::NotFound);
        }
        if let Some(tgid) = self.get(inode) {
            return Some(ActiveLookup::Owner(tgid));
        }
        self.is_negative(inode, now_ms)
            .then_some(ActiveLookup::NotFound)
    }

    fn negative_slot(inode: u64) -> usize {
        hash_inode(inode) % NEGATIVE_SLOTS
    }

    fn is_negative(&self, inode: u64, now_ms: u64) -> bool {
        match self.negative.get(Self::negative_slot(inode)) {
            Some(n) => n.inode == inode && now_ms.saturating_sub(n.since_ms) < self.negative_ttl_ms,
            None => false,
        }
    }

    /// Records that a whole cycle (a fresh slice that completed) did not see `inode`.
    pub fn mark_not_found(&mut self, inode: u64, now_ms: u64) {
        if inode == 0 {
            return;
        }
        if let Some(n) = self.negative.get_mut(Self::negative_slot(inode)) {
            *n = Negative {
                inode,
                since_ms: now_ms,
            };
        }
    }

    /// Starts a walk slice if allowed: no slice running and the minimum interval since the last
    /// one ended has passed. A slice that starts a cycle clears the table (and the negative
    /// entries: a walk is authoritative). Pair with [`ActiveCache::end_slice`].
    pub fn begin_slice(&mut self, now_ms: u64) -> Option<Slice> {
        if self.slicing {
            return None;
        }
        if let Some(last) = self.last_slice_end_ms {
            if now_ms.saturating_sub(last) < self.min_interval_ms {
                return None;
            }
        }
        self.slicing = true;
        self.stats.slices = self.stats.slices.wrapping_add(1);
        let fresh = self.cursor.is_none();
        if fresh {
            self.clear_table();
            for n in self.negative.iter_mut() {
                n.inode = 0;
            }
        }
        let from = *self.cursor.get_or_insert(WalkCursor::START);
        Some(Slice { from, fresh })
    }

    /// Records one chunk of the running cycle (the caller holds the lock only for this).
    pub fn merge(&mut self, chunk: &[SocketOwner]) {
        let n = u32::try_from(chunk.len()).unwrap_or(u32::MAX);
        self.stats.max_merge = self.stats.max_merge.max(n);
        self.stats.merged = self.stats.merged.saturating_add(u64::from(n));
        for &o in chunk {
            if !self.record(o) {
                self.stats.dropped = self.stats.dropped.saturating_add(1);
            }
        }
    }

    /// Ends the slice [`ActiveCache::begin_slice`] granted.
    pub fn end_slice(&mut self, now_ms: u64, end: SliceEnd) {
        self.slicing = false;
        self.last_slice_end_ms = Some(now_ms);
        match end {
            SliceEnd::Complete => {
                self.cursor = None;
                self.stats.cycles = self.stats.cycles.wrapping_add(1);
            }
            SliceEnd::Paused(at) => self.cursor = Some(at),
            SliceEnd::Refused => {}
        }
    }

    /// Finds the owner of `inode` with `table`, walking inline: from the table, else from the
    /// negative cache, else by a whole cycle (resumed if one is paused) if a slice may start now
    /// (else `RateLimited`). `now_ms` is a monotonic clock. Inode 0 (no socket file) is never
    /// looked up: `NotFound`. Chunked like every walk ([`ActiveCache::merge`]); callers that share
    /// the cache between threads use the engine, which takes its lock per chunk only.
    pub fn find(&mut self, inode: u64, now_ms: u64, table: &mut impl ProcessTable) -> ActiveLookup {
        if let Some(known) = self.lookup(inode, now_ms) {
            return known;
        }
        let Some(slice) = self.begin_slice(now_ms) else {
            return ActiveLookup::RateLimited;
        };
        let (found, end) = self.cycle(slice.from, inode, table);
        self.end_slice(now_ms, end);
        match found {
            Some(tgid) => ActiveLookup::Owner(tgid),
            None if slice.fresh && end == SliceEnd::Complete => {
                self.mark_not_found(inode, now_ms);
                ActiveLookup::NotFound
            }
            None => ActiveLookup::RateLimited,
        }
    }

    /// Walks from `from` to the end of `table` (or until it refuses), merging chunk by chunk;
    /// returns the first owner seen for `target`.
    fn cycle(
        &mut self,
        from: WalkCursor,
        target: u64,
        table: &mut impl ProcessTable,
    ) -> (Option<u32>, SliceEnd) {
        let mut buf = [SocketOwner::default(); WALK_CHUNK];
        let mut cursor = from;
        let mut found = None;
        loop {
            let c = table.collect(cursor, &mut buf);
            let got = buf.get(..c.len).unwrap_or(&[]);
            if found.is_none() {
                found = got.iter().find(|o| o.inode == target).map(|o| o.tgid);
            }
            self.merge(got);
            match c.end {
                ChunkEnd::Done => return (found, SliceEnd::Complete),
                ChunkEnd::Refused => return (found, SliceEnd::Refused),
                // A table that makes no progress would loop forever: stop the slice there.
                ChunkEnd::More(next) if next == cursor && c.len == 0 => {
                    return (found, SliceEnd::Paused(next))
                }
                ChunkEnd::More(next) => cursor = next,
            }
        }
    }

    /// Rebuilds the table from a whole cycle (in place) and returns the owner of `target` if seen.
    /// The first process seen holding the target wins. Not rate-limited (benches, tests).
    pub fn walk(&mut self, target: u64, now_ms: u64, table: &mut impl ProcessTable) -> Option<u32> {
        self.slicing = false;
        self.cursor = None;
        self.last_slice_end_ms = None;
        let slice = self.begin_slice(now_ms)?;
        let (found, end) = self.cycle(slice.from, target, table);
        self.end_slice(now_ms, end);
        found
    }

    /// Records one pair; false if it did not fit. Duplicates (the same inode in several processes)
    /// keep the first owner.
    fn record(&mut self, o: SocketOwner) -> bool {
        if o.inode == 0 {
            return true;
        }
        if self.len >= N {
            return false;
        }
        let start = hash_inode(o.inode);
        for i in 0..PROBE {
            let Some(s) = self.slots.get_mut(start.wrapping_add(i) & Self::MASK) else {
                return false;
            };
            if s.inode == o.inode {
                return true;
            }
            if s.inode == 0 {
                *s = Slot {
                    inode: o.inode,
                    tgid: o.tgid,
                };
                self.len = self.len.saturating_add(1);
                return true;
            }
        }
        false
    }

    fn clear_table(&mut self) {
        for s in self.slots.iter_mut() {
            s.inode = 0;
        }
        self.len = 0;
        self.stats.dropped = 0;
    }

    /// Forgets everything (table, negative cache, cycle in progress, rate-limit state), in place.
    /// A slice running meanwhile (another thread) still ends normally.
    pub fn clear(&mut self) {
        self.clear_table();
        for n in self.negative.iter_mut() {
            n.inode = 0;
        }
        self.last_slice_end_ms = None;
        self.cursor = None;
    }
}
