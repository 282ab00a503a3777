//! Host tests only: a raw lock that records which locks the current thread holds, so the fake
//! kernel can fail any call that may sleep made while one is held.
//!
//! Why: in the kernel every lock of the module is a BH-disabling rwlock (`klock.rs`, the `_bh`
//! variants), so holding one means atomic context with bottom halves off. A `GFP_KERNEL`
//! allocation or any other call that may sleep made then is "scheduling while atomic" — a bug
//! that only shows under memory pressure, never in a quiet VM. [`TrackedLock`] counts holders per
//! thread (the tests' stand-in for "this CPU") and [`may_sleep`] turns such a call into a test
//! failure, whatever the test was looking at.
#![allow(unsafe_code)]

use std::cell::Cell;

thread_local! {
    /// Locks of the module the current thread holds (shared or exclusive).
    static HELD: Cell<u32> = const { Cell::new(0) };
    /// Nesting depth of "bottom halves off" (each kernel `_bh` lock disables them once).
    static BH_OFF: Cell<u32> = const { Cell::new(0) };
}

/// Locks held by the current thread.
pub fn held() -> u32 {
    HELD.with(Cell::get)
}

/// True while bottom halves are off on the current thread.
pub fn bh_off() -> bool {
    BH_OFF.with(Cell::get) != 0
}

/// Called by every fake-kernel service that may sleep (allocates with `GFP_KERNEL`): fails the
/// test if a lock is held or bottom halves are off.
#[track_caller]
pub fn may_sleep(what: &str) {
    let (n, bh) = (held(), bh_off());
    assert!(
        n == 0 && !bh,
        "{what} may sleep (GFP_KERNEL) but was called with {n} module lock(s) held and bottom \
         halves {}: scheduling while atomic in the kernel",
        if bh { "off" } else { "on" }
    );
}

fn acquired() {
    HELD.with(|h| h.set(h.get() + 1));
    BH_OFF.with(|b| b.set(b.get() + 1));
}

fn released() {
    HELD.with(|h| h.set(h.get().checked_sub(1).expect("unlock without lock")));
    BH_OFF.with(|b| b.set(b.get().checked_sub(1).expect("BH enable without disable")));
}

/// parking_lot's rwlock plus per-thread accounting, standing in for the kernel's
/// `read_lock_bh`/`write_lock_bh` rwlock.
pub struct TrackedLock(parking_lot::RawRwLock);

// SAFETY: every method forwards to parking_lot's RawRwLock, which implements the contract; the
// accounting only touches thread-local counters and runs after a successful lock / before the
// matching unlock.
unsafe impl lock_api::RawRwLock for TrackedLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = TrackedLock(<parking_lot::RawRwLock as lock_api::RawRwLock>::INIT);
    type GuardMarker = lock_api::GuardNoSend;

    fn lock_shared(&self) {
        self.0.lock_shared();
        acquired();
    }

    fn try_lock_shared(&self) -> bool {
        let ok = self.0.try_lock_shared();
        if ok {
            acquired();
        }
        ok
    }

    unsafe fn unlock_shared(&self) {
        released();
        // SAFETY: lock_api calls this only while this thread holds a shared lock.
        unsafe { self.0.unlock_shared() }
    }

    fn lock_exclusive(&self) {
        self.0.lock_exclusive();
        acquired();
    }

    fn try_lock_exclusive(&self) -> bool {
        let ok = self.0.try_lock_exclusive();
        if ok {
            acquired();
        }
        ok
    }

    unsafe fn unlock_exclusive(&self) {
        released();
        // SAFETY: lock_api calls this only while this thread holds the exclusive lock.
        unsafe { self.0.unlock_exclusive() }
    }
}
