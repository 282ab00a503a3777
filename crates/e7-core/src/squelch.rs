//! Per-(protocol, executable) event rate limiter: at most one PENDING event per key per second.
//!
//! Why: with `norule` on, every packet of an unruled program would queue an event. The original hashed
//! the path string per packet into a 64-slot table where colliding keys let each other through. Here
//! the key is `(proto, ExeId)` — no path hashing on the packet path — and two promises hold:
//!
//! - a key gets **at most one** permit per second of the host's coarse clock
//!   ([`Host::now_secs`](crate::Host::now_secs): no clock read and no division per packet), even under races (each
//!   entry is one `AtomicU64` updated by compare-exchange, so [`Squelch::permit`] takes `&self`);
//! - **a flood costs only the flooder**: the limiter is indexed by the executable's slot in the
//!   [`ExeTable`](crate::ExeTable) (`SLOTS` = the table's size, 256 by default) and a protocol class
//!   (tcp, udp, icmp, icmpv6, other), so a live executable's entries are its own. No other program,
//!   however many executables it runs or however fast they fire, can take them. (An earlier design
//!   shared 4-way sets between executables chosen by a hash: four executables firing every second
//!   in a victim's set silenced the victim's `pending` events.)
//!
//! All "other" protocols of one executable share one entry: a program cycling through exotic
//! protocols costs itself events, nobody else. When an executable's table slot is reused for
//! another path, the newer generation takes the entry over; a stale id (an executable evicted
//! from the table) never takes it back within the same second, so it cannot steal the new owner's
//! permit. If `SLOTS` is smaller than the executable table (tests only), executables share entries
//! by `slot % SLOTS`: a busy shared entry then suppresses the newcomer until the next second
//! (counted in [`Squelch::pressure`]) rather than breaking the one-per-second promise.
//!
//! An entry packs `exe id digest (32) | second (24)`. The digest is the slot and the low 16 bits of
//! the id's 40-bit generation ([`ExeId::digest32`]): two ids of one slot 65,536 generations apart
//! share a key, which at worst delays one event (events never decide a verdict). Seconds are
//! compared modulo 2²⁴ (194 days): a key idle for exactly a multiple of that loses one event, which
//! is harmless.

use core::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};

use crate::exe::ExeId;
use crate::schema::{PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP};

/// Protocol classes with an entry of their own per executable: tcp, udp, icmp, icmpv6, other.
pub const CLASSES: usize = 5;
const SEC_BITS: u32 = 24;
const SEC_MASK: u64 = (1 << SEC_BITS) - 1;

/// The rate limiter (see the module docs). `SLOTS` is the executable table's size (default 256).
pub struct Squelch<const SLOTS: usize = 256> {
    entries: [[AtomicU64; CLASSES]; SLOTS],
    pressure: AtomicU32,
}

impl<const SLOTS: usize> Default for Squelch<SLOTS> {
    fn default() -> Self {
        Self::new()
    }
}

fn class(proto: u32) -> usize {
    match proto {
        PROTO_TCP => 0,
        PROTO_UDP => 1,
        PROTO_ICMP => 2,
        PROTO_ICMPV6 => 3,
        _ => 4,
    }
}

impl<const SLOTS: usize> Squelch<SLOTS> {
    const CHECK: () = assert!(SLOTS >= 1, "Squelch needs at least one slot");

    /// An empty limiter.
    pub const fn new() -> Self {
        let () = Self::CHECK;
        Squelch {
            entries: [const { [const { AtomicU64::new(0) }; CLASSES] }; SLOTS],
            pressure: AtomicU32::new(0),
        }
    }

    /// True if an event for `(proto, exe)` may be sent now; records it. At most one `true` per key
    /// per second (`now_secs`: the host's monotonic seconds); other executables never make it
    /// `false`.
    #[inline]
    pub fn permit(&self, proto: u32, exe: ExeId, now_secs: u64) -> bool {
        let key = u64::from(exe.digest32());
        let sec = now_secs & SEC_MASK;
        let fresh = (key << SEC_BITS) | sec;
        let slot = usize::from(exe.slot()) % SLOTS;
        let Some(a) = self.entries.get(slot).and_then(|e| e.get(class(proto))) else {
            return false;
        };
        let cur = a.load(Relaxed);
        if cur == fresh && cur != 0 {
            // The common case on a busy program: it already had its event this second.
            return false;
        }
        self.permit_slow(a, cur, exe, key, sec, fresh)
    }

    /// [`Squelch::permit`] past its one-load answer: claim the entry (or find it owned).
    #[inline(never)]
    fn permit_slow(
        &self,
        a: &AtomicU64,
        first: u64,
        exe: ExeId,
        key: u64,
        sec: u64,
        fresh: u64,
    ) -> bool {
        let mut cur = first;
        for _attempt in 0..8 {
            let owner = cur >> SEC_BITS;
            let busy = cur != 0 && cur & SEC_MASK == sec;
            if owner == key {
                if busy {
                    return false;
                }
            } else if busy {
                // Another id fired here this second: its digest is `gen (low 16) | slot (16)`.
                let other_slot = (owner & 0xFFFF) as u16;
                let other_gen = ((owner >> 16) & 0xFFFF) as u16;
                if other_slot != exe.slot() {
                    // Only when SLOTS is smaller than the executable table: a shared entry.
                    self.pressure.fetch_add(1, Relaxed);
                    return false;
                }
                // The same table slot, another generation: the newer id owns it.
                if ((exe.gen() as u16).wrapping_sub(other_gen) as i16) <= 0 {
                    return false;
                }
            }
            match a.compare_exchange(cur, fresh, Relaxed, Relaxed) {
                Ok(_) => return true,
                // Lost a race: look again (another CPU may have recorded our key).
                Err(now) => cur = now,
            }
        }
        false
    }

    /// Events suppressed because a shared entry was busy in the current second (0 whenever
    /// `SLOTS` covers the executable table, as in the engine).
    pub fn pressure(&self) -> u32 {
        self.pressure.load(Relaxed)
    }

    /// Forgets everything.
    pub fn clear(&self) {
        for e in self.entries.iter().flatten() {
            e.store(0, Relaxed);
        }
        self.pressure.store(0, Relaxed);
    }
}
