//! Per-(protocol, executable) event rate limiter: at most one PENDING event per key per second.
//!
//! Why: with `norule` on, every packet of an unruled program would queue an event. The original hashed
//! the path string per packet into a 64-slot table where colliding keys let each other through. Here
//! the key is `(proto, ExeId)` — no path hashing on the packet path — and the guarantee is exact:
//!
//! - a key gets **at most one** permit per wall-clock second (`now_ms / 1000`), even under races (each
//!   entry is one `AtomicU64` updated by compare-exchange, so [`Squelch::permit`] takes `&self`);
//! - `N` entries (default 64) in sets of [`WAYS`] = 4; a new key replaces an entry of an earlier
//!   second. If all 4 entries of its set already fired in the current second, the new key is
//!   suppressed until the next second (counted in [`Squelch::pressure`]) rather than breaking the
//!   one-per-second promise for another key.
//!
//! An entry packs `exe id (32) | proto (8) | second (24)`. Seconds are compared modulo 2²⁴ (194 days):
//! a key idle for exactly a multiple of that loses one event, which is harmless.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::exe::ExeId;

/// Entries per set.
pub const WAYS: usize = 4;
const SEC_BITS: u32 = 24;
const SEC_MASK: u64 = (1 << SEC_BITS) - 1;

/// The rate limiter (see the module docs). `N` is a power of two ≥ 4 (default 64).
pub struct Squelch<const N: usize = 64> {
    entries: [AtomicU64; N],
    pressure: AtomicU32,
}

impl<const N: usize> Default for Squelch<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> Squelch<N> {
    const CHECK: () = assert!(
        N.is_power_of_two() && N >= WAYS,
        "Squelch size must be a power of two >= 4"
    );
    const SET_MASK: usize = (N / WAYS).wrapping_sub(1);

    /// An empty limiter.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        Squelch {
            entries: [const { AtomicU64::new(0) }; N],
            pressure: AtomicU32::new(0),
        }
    }

    /// True if an event for `(proto, exe)` may be sent now; records it. At most one `true` per key
    /// per second (`now_ms / 1000`).
    pub fn permit(&self, proto: u32, exe: ExeId, now_ms: u64) -> bool {
        // A 40-bit key: a digest of the id (a rare collision only delays one event) and the protocol.
        let key = (u64::from(exe.digest32()) << 8) | u64::from(proto & 0xFF);
        let sec = (now_ms / 1000) & SEC_MASK;
        let fresh = (key << SEC_BITS) | sec;
        let set = (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40) as usize & Self::SET_MASK;
        let base = set.wrapping_mul(WAYS);
        for _attempt in 0..8 {
            // Our entry, if present.
            let mut victim: Option<(usize, u64)> = None;
            for w in 0..WAYS {
                let Some(a) = self.entries.get(base.wrapping_add(w)) else {
                    return false;
                };
                let cur = a.load(Relaxed);
                if cur >> SEC_BITS == key {
                    if cur & SEC_MASK == sec {
                        return false;
                    }
                    return a.compare_exchange(cur, fresh, Relaxed, Relaxed).is_ok();
                }
                if victim.is_none() && (cur == 0 || cur & SEC_MASK != sec) {
                    victim = Some((w, cur));
                }
            }
            let Some((w, cur)) = victim else {
                self.pressure.fetch_add(1, Relaxed);
                return false;
            };
            if let Some(a) = self.entries.get(base.wrapping_add(w)) {
                if a.compare_exchange(cur, fresh, Relaxed, Relaxed).is_ok() {
                    return true;
                }
            }
            // Lost a race for the victim: look again (another CPU may have inserted our key).
        }
        false
    }

    /// Events suppressed because every entry of their set was busy in the current second.
    pub fn pressure(&self) -> u32 {
        self.pressure.load(Relaxed)
    }

    /// Forgets everything.
    pub fn clear(&self) {
        for e in self.entries.iter() {
            e.store(0, Relaxed);
        }
        self.pressure.store(0, Relaxed);
    }
}
