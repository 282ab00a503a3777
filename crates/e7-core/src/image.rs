//! Programs already resolved: process image ([`TaskId`]) → executable identity, and the last
//! verdict that identity earned.
//!
//! Why: a process's executable path can only be read with locks the kernel must not take in softirq
//! (`task_lock`, then `d_path`); but a process keeps the same image until it execs, and its
//! [`TaskId`] changes exactly then. So a softirq packet from a socket held by an already-resolved
//! process is identified without any lock, and a task-context miss skips `d_path`.
//!
//! Why a verdict memo: every new socket of a program (each TCP connection's SYN) misses the
//! known-socket cache and would look its program's rule up again. Unless a rule depends on the
//! destination, port or user, the verdict depends only on the identity, the protocol and the policy
//! generation — exactly what a [`CachedVerdict`] is tagged with — so the image remembers the last one
//! and the next socket of the same program and protocol skips the executable table and the rule
//! lookup. The memo is an atomic beside the identity: stored under the cache's *shared* lock, it
//! cannot race with a writer replacing the slot, and a replaced slot starts with no memo.
//!
//! Direct-mapped by tgid (`N` slots, default 128); a collision replaces the older entry.

use core::sync::atomic::{AtomicU64, Ordering};

use crate::host::TaskId;
use crate::socket::{CachedVerdict, Identity};

/// Default number of slots.
pub const IMAGES: usize = 128;

/// One process image: its identity and the packed memo ([`CachedVerdict::packed`]).
struct Slot {
    task: TaskId,
    ident: Option<Identity>,
    memo: AtomicU64,
}

impl Slot {
    const fn empty() -> Slot {
        Slot {
            task: TaskId::tgid_only(0),
            ident: None,
            memo: AtomicU64::new(0),
        }
    }
}

/// The image cache (see the module docs). Constructible in a `static`.
pub struct ImageCache<const N: usize = IMAGES> {
    slots: [Slot; N],
}

impl<const N: usize> Default for ImageCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ImageCache<N> {
    /// Empty.
    pub const fn new() -> Self {
        ImageCache {
            slots: [const { Slot::empty() }; N],
        }
    }

    fn slot(&self, id: &TaskId) -> Option<&Slot> {
        let i = if N == 0 { 0 } else { id.tgid as usize % N };
        self.slots.get(i).filter(|s| s.task == *id)
    }

    /// The identity recorded for exactly this process image.
    pub fn get(&self, id: &TaskId) -> Option<Identity> {
        self.slot(id)?.ident
    }

    /// The identity recorded for exactly this process image and the last verdict remembered for
    /// it ([`CachedVerdict::EMPTY`] if none).
    pub fn get_with_memo(&self, id: &TaskId) -> Option<(Identity, CachedVerdict)> {
        let s = self.slot(id)?;
        let memo = CachedVerdict::from_packed(s.memo.load(Ordering::Relaxed));
        Some((s.ident?, memo))
    }

    /// Remembers `verdict` for this process image, if it is still the one recorded (under the
    /// shared lock: the slot cannot be replaced meanwhile). Returns whether it was stored.
    pub fn remember(&self, id: &TaskId, verdict: CachedVerdict) -> bool {
        match self.slot(id) {
            Some(s) if s.ident.is_some() => {
                s.memo.store(verdict.packed(), Ordering::Relaxed);
                true
            }
            _ => false,
        }
    }

    /// Records a resolved process (tgid 0 is ignored), with no memo.
    pub fn insert(&mut self, id: TaskId, ident: Identity) {
        if id.tgid == 0 {
            return;
        }
        let i = if N == 0 { 0 } else { id.tgid as usize % N };
        if let Some(slot) = self.slots.get_mut(i) {
            slot.task = id;
            slot.ident = Some(ident);
            *slot.memo.get_mut() = 0;
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            *s = Slot::empty();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decide::{Decision, Reason, Verdict};

    /// A process image: tgid 6, slot 2 of a 4-slot cache.
    const IMAGE: TaskId = TaskId {
        start_ns: 100,
        exec_id: 3,
        tgid: 6,
        pad: 0,
    };

    #[test]
    fn image_cache_matches_the_exact_process_image() {
        let mut c: ImageCache<4> = ImageCache::new();
        let id = IMAGE;
        assert_eq!(c.get(&id), None);
        c.insert(id, Identity::PathTooLong);
        assert_eq!(c.get(&id), Some(Identity::PathTooLong));
        let exec_d = TaskId { exec_id: 4, ..id };
        assert_eq!(c.get(&exec_d), None, "after an exec the image differs");
        let reused = TaskId {
            start_ns: 200,
            ..id
        };
        assert_eq!(c.get(&reused), None, "a reused tgid is another process");
        c.insert(TaskId { tgid: 10, ..id }, Identity::Unknown); // same slot (10 % 4 == 6 % 4)
        assert_eq!(c.get(&id), None, "collision replaced it");
        c.insert(TaskId { tgid: 0, ..id }, Identity::Unknown);
        assert_eq!(c.get(&TaskId { tgid: 0, ..id }), None);
    }

    #[test]
    fn the_memo_belongs_to_the_image_and_dies_with_its_slot() {
        let mut c: ImageCache<4> = ImageCache::new();
        let id = IMAGE;
        let d = Decision {
            verdict: Verdict::Drop,
            event: None,
            squelch: false,
            reason: Reason::Rule,
        };
        let v = CachedVerdict::for_proto(d, 7, 6);
        assert!(!c.remember(&id, v), "no slot for an unknown image");
        c.insert(id, Identity::Unknown);
        assert_eq!(
            c.get_with_memo(&id),
            Some((Identity::Unknown, CachedVerdict::EMPTY))
        );
        assert!(c.remember(&id, v));
        assert_eq!(
            c.get_with_memo(&id).map(|(_, m)| m.get_for(7, 6)),
            Some(Some(d))
        );
        assert!(
            !c.remember(&TaskId { exec_id: 4, ..id }, v),
            "another image of the same tgid"
        );
        c.insert(id, Identity::PathTooLong);
        assert_eq!(
            c.get_with_memo(&id),
            Some((Identity::PathTooLong, CachedVerdict::EMPTY)),
            "a re-recorded slot starts with no memo"
        );
    }
}
