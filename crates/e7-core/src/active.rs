//! The active-socket cache: socket inode → owning process, from snapshots of the process table.
//!
//! Why: when a packet's socket is not in the known-socket cache and the sending context is not its
//! owner, the only way to find the owner is to walk every process's file table. That walk is expensive
//! (≈ 1 ms on small machines), so one walk records *every* socket it sees: the following unknown
//! sockets of a connection storm are then answered from this table ("10x to 100x" in the original).
//!
//! Two protections the original lacked (it rewalked on every miss, in softirq):
//! - **negative caching**: an inode looked up and not found in the latest walk is remembered (for
//!   `negative_ttl_ms`) and answered [`ActiveLookup::NotFound`] without another walk — kernel sockets
//!   and tunnels never have an owner;
//! - **rate limit**: at most one walk per `min_interval_ms`; an unknown inode inside the interval gets
//!   [`ActiveLookup::RateLimited`] (the caller applies `unkproc` to that packet and retries on a later
//!   one). A storm of unknown inodes therefore costs at most one walk per interval.
//!
//! **Overflow.** The table holds `N` inodes (default 1024) in open addressing with a bounded probe
//! (`PROBE` = 16 slots). When a walk sees more sockets than fit, the extra ones are not recorded and
//! counted in [`ActiveCache::dropped`] (for the latest walk); the *target* inode is still answered if
//! the walk saw it, recorded or not.
//!
//! Owners are a snapshot: a recorded tgid may have exited or closed the socket since. The caller
//! re-validates when that matters (the kernel checks the task still exists).

use core::ops::ControlFlow;

/// One (socket inode, owning process) pair reported by a [`ProcessTable`] walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SocketOwner {
    /// Socket inode.
    pub inode: u64,
    /// Thread-group id of a process holding a descriptor for it.
    pub tgid: u32,
}

/// A source of process-table snapshots: the kernel walks tasks and their file tables; userspace reads
/// `/proc/*/fd` ([`ProcFsTable`](crate::ProcFsTable), feature `std`); tests use a fake.
pub trait ProcessTable {
    /// Calls `f` for every socket descriptor of every process. `f` may return `Break` to stop early.
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>);
}

/// Result of [`ActiveCache::find`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActiveLookup {
    /// The inode belongs to this process (per the latest walk).
    Owner(u32),
    /// No process held the inode in the latest walk.
    NotFound,
    /// Unknown inode, but the last walk is more recent than the minimum interval: not walked.
    RateLimited,
}

/// Maximum slots probed per lookup or insert.
pub const PROBE: usize = 16;
/// Slots of the negative cache (direct-mapped by inode hash).
pub const NEGATIVE_SLOTS: usize = 64;
/// Default minimum interval between walks, in milliseconds.
pub const DEFAULT_MIN_INTERVAL_MS: u64 = 50;
/// Default lifetime of a negative entry, in milliseconds.
pub const DEFAULT_NEGATIVE_TTL_MS: u64 = 1000;

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

/// Inode → owner table of `N` slots (default 1024; power of two) filled by process-table walks.
///
/// Memory ≈ `N × 16` bytes + 1 KiB (≈ 17 KiB for 1024). Constructible in a `static`.
pub struct ActiveCache<const N: usize = 1024> {
    slots: [Slot; N],
    negative: [Negative; NEGATIVE_SLOTS],
    last_walk_ms: Option<u64>,
    min_interval_ms: u64,
    negative_ttl_ms: u64,
    len: usize,
    dropped: usize,
    walks: u64,
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
            last_walk_ms: None,
            min_interval_ms,
            negative_ttl_ms,
            len: 0,
            dropped: 0,
            walks: 0,
        }
    }

    /// Capacity N.
    pub const fn capacity(&self) -> usize {
        N
    }

    /// Inodes recorded by the latest walk.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is recorded.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Sockets the latest walk saw but could not record (table full or probe exhausted).
    pub fn dropped(&self) -> usize {
        self.dropped
    }

    /// Number of walks performed.
    pub fn walks(&self) -> u64 {
        self.walks
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

    fn negative_slot(inode: u64) -> usize {
        hash_inode(inode) % NEGATIVE_SLOTS
    }

    fn is_negative(&self, inode: u64, now_ms: u64) -> bool {
        match self.negative.get(Self::negative_slot(inode)) {
            Some(n) => n.inode == inode && now_ms.saturating_sub(n.since_ms) < self.negative_ttl_ms,
            None => false,
        }
    }

    /// Finds the owner of `inode`: from the table, else from the negative cache, else by a new walk of
    /// `table` if the minimum interval has passed (else `RateLimited`). `now_ms` is a monotonic clock.
    /// Inode 0 (no socket file) is never looked up: `NotFound`.
    pub fn find(&mut self, inode: u64, now_ms: u64, table: &mut impl ProcessTable) -> ActiveLookup {
        if inode == 0 {
            return ActiveLookup::NotFound;
        }
        if let Some(tgid) = self.get(inode) {
            return ActiveLookup::Owner(tgid);
        }
        if self.is_negative(inode, now_ms) {
            return ActiveLookup::NotFound;
        }
        if let Some(last) = self.last_walk_ms {
            if now_ms.saturating_sub(last) < self.min_interval_ms {
                return ActiveLookup::RateLimited;
            }
        }
        match self.walk(inode, now_ms, table) {
            Some(tgid) => ActiveLookup::Owner(tgid),
            None => {
                if let Some(n) = self.negative.get_mut(Self::negative_slot(inode)) {
                    *n = Negative {
                        inode,
                        since_ms: now_ms,
                    };
                }
                ActiveLookup::NotFound
            }
        }
    }

    /// Rebuilds the table from a full walk (in place) and returns the owner of `target` if seen.
    /// The first process seen holding the target wins.
    pub fn walk(&mut self, target: u64, now_ms: u64, table: &mut impl ProcessTable) -> Option<u32> {
        self.clear_table();
        // A walk is authoritative: negative entries from before it may be stale (find() re-adds the
        // target if this walk does not see it either).
        for n in self.negative.iter_mut() {
            n.inode = 0;
        }
        self.last_walk_ms = Some(now_ms);
        self.walks = self.walks.wrapping_add(1);
        let mut found = None;
        table.for_each_socket(&mut |o: SocketOwner| {
            if o.inode == target && found.is_none() {
                found = Some(o.tgid);
            }
            if !self.record(o) {
                self.dropped = self.dropped.saturating_add(1);
            }
            ControlFlow::Continue(())
        });
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
        self.dropped = 0;
    }

    /// Forgets everything (table, negative cache, rate-limit state), in place.
    pub fn clear(&mut self) {
        self.clear_table();
        for n in self.negative.iter_mut() {
            n.inode = 0;
        }
        self.last_walk_ms = None;
    }
}
