//! Programs already resolved: process image ([`TaskId`]) → executable identity.
//!
//! Why: a process's executable path can only be read with locks the kernel must not take in softirq
//! (`task_lock`, then `d_path`); but a process keeps the same image until it execs, and its
//! [`TaskId`] changes exactly then. So a softirq packet from a socket held by an already-resolved
//! process is identified without any lock, and a task-context miss skips `d_path`.
//!
//! Direct-mapped by tgid (`N` slots, default 128); a collision replaces the older entry.

use crate::host::TaskId;
use crate::socket::Identity;

/// Default number of slots.
pub const IMAGES: usize = 128;

/// The image cache (see the module docs). Constructible in a `static`.
pub struct ImageCache<const N: usize = IMAGES> {
    slots: [(TaskId, Option<Identity>); N],
}

impl<const N: usize> Default for ImageCache<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> ImageCache<N> {
    const EMPTY: (TaskId, Option<Identity>) = (TaskId::tgid_only(0), None);

    /// Empty.
    pub const fn new() -> Self {
        ImageCache {
            slots: [Self::EMPTY; N],
        }
    }

    fn slot(tgid: u32) -> usize {
        if N == 0 {
            0
        } else {
            tgid as usize % N
        }
    }

    /// The identity recorded for exactly this process image.
    pub fn get(&self, id: &TaskId) -> Option<Identity> {
        let (k, v) = self.slots.get(Self::slot(id.tgid))?;
        if k == id {
            *v
        } else {
            None
        }
    }

    /// Records a resolved process (tgid 0 is ignored).
    pub fn insert(&mut self, id: TaskId, ident: Identity) {
        if id.tgid == 0 {
            return;
        }
        if let Some(slot) = self.slots.get_mut(Self::slot(id.tgid)) {
            *slot = (id, Some(ident));
        }
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        for s in self.slots.iter_mut() {
            *s = Self::EMPTY;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_cache_matches_the_exact_process_image() {
        let mut c: ImageCache<4> = ImageCache::new();
        let id = TaskId {
            start_ns: 100,
            exec_id: 3,
            tgid: 6,
            pad: 0,
        };
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
}
