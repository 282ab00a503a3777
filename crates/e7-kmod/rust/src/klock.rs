//! A `lock_api::RawRwLock` backed by a kernel `rwlock_t` stored inline.
//!
//! Why inline storage: e7-core's `Engine` wraps each structure in its own `RwLock<R, _>` built by
//! `R::INIT` in a `const fn`, so every lock must be a distinct kernel lock created without running
//! code. The storage is `RWLOCK_BYTES` zero bytes, which the shim guarantees is an unlocked kernel
//! lock of the type it backs this with (which type is the shim's business: it differs by kernel
//! configuration); it checks the size at build time and the content at load time.
//!
//! Why the `_bh` variants: packets take shared locks in softirq; writers (admin requests, work
//! items, cache misses) may run in process context. A process-context holder interrupted by a
//! softirq reader on the same CPU would deadlock (the original's B4) unless bottom halves are off
//! while the lock is held, which is what `read_lock_bh`/`write_lock_bh` do.
#![allow(unsafe_code)]

use core::cell::UnsafeCell;
use core::ffi::c_void;

use crate::abi::RWLOCK_BYTES;

extern "C" {
    fn e7_c_rwl_read_lock(lock: *mut c_void);
    fn e7_c_rwl_read_unlock(lock: *mut c_void);
    fn e7_c_rwl_read_trylock(lock: *mut c_void) -> i32;
    fn e7_c_rwl_write_lock(lock: *mut c_void);
    fn e7_c_rwl_write_unlock(lock: *mut c_void);
    fn e7_c_rwl_write_trylock(lock: *mut c_void) -> i32;
}

/// One kernel `rwlock_t`, zero-initialised (= unlocked).
#[repr(C, align(8))]
pub struct KernelRwLock {
    raw: UnsafeCell<[u8; RWLOCK_BYTES]>,
}

// SAFETY: the storage is only ever accessed by the kernel's rwlock primitives, which are
// designed for concurrent use from any CPU.
unsafe impl Sync for KernelRwLock {}
// SAFETY: as above; the lock holds no thread-affine state while unlocked.
unsafe impl Send for KernelRwLock {}

impl KernelRwLock {
    fn ptr(&self) -> *mut c_void {
        self.raw.get().cast()
    }
}

// SAFETY: the kernel rwlock provides exactly lock_api's contract: shared holders exclude an
// exclusive holder and vice versa; unlock is only called by lock_api on a lock this context
// holds. Guards are !Send (GuardNoSend): with BH disabled the holder cannot migrate anyway.
unsafe impl lock_api::RawRwLock for KernelRwLock {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Self = KernelRwLock {
        raw: UnsafeCell::new([0; RWLOCK_BYTES]),
    };

    type GuardMarker = lock_api::GuardNoSend;

    fn lock_shared(&self) {
        // SAFETY: ptr() points at a valid, 8-aligned rwlock_t for the lifetime of self.
        unsafe { e7_c_rwl_read_lock(self.ptr()) }
    }

    fn try_lock_shared(&self) -> bool {
        // SAFETY: as in lock_shared.
        unsafe { e7_c_rwl_read_trylock(self.ptr()) != 0 }
    }

    unsafe fn unlock_shared(&self) {
        // SAFETY: lock_api only calls this while this context holds a shared lock.
        unsafe { e7_c_rwl_read_unlock(self.ptr()) }
    }

    fn lock_exclusive(&self) {
        // SAFETY: as in lock_shared.
        unsafe { e7_c_rwl_write_lock(self.ptr()) }
    }

    fn try_lock_exclusive(&self) -> bool {
        // SAFETY: as in lock_shared.
        unsafe { e7_c_rwl_write_trylock(self.ptr()) != 0 }
    }

    unsafe fn unlock_exclusive(&self) {
        // SAFETY: lock_api only calls this while this context holds the exclusive lock.
        unsafe { e7_c_rwl_write_unlock(self.ptr()) }
    }
}
