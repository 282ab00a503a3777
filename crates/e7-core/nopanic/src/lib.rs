//! Kernel-shaped harness: every e7-core operation the kernel module uses, with default capacities,
//! behind `extern "C"` entry points. `check.sh` links only these roots and looks for panicking code.
//!
//! Inputs go through `core::hint::black_box` so the optimiser cannot prove bounds it would not know
//! in the kernel.
#![no_std]

use core::hint::black_box;
use core::ops::ControlFlow;
use core::sync::atomic::{AtomicUsize, Ordering};

use e7_core::sync::Engine;
use e7_core::{
    decide, Action, Deferred, ExeError, ExePath, Family, Flag, Host, Identity, Packet, PacketFacts,
    ProcessTable, Rule, SockInfo, SockKind, SocketKey, SocketOwner, TaskId,
};

/// A minimal spinning reader-writer lock (writers set the top bit).
pub struct Spin(AtomicUsize);
const WRITER: usize = 1 << (usize::BITS - 1);

// SAFETY: `lock_exclusive` only returns once it swapped 0 -> WRITER (no readers, no writer);
// `lock_shared` only returns after incrementing the count while the WRITER bit was clear, and a
// writer cannot acquire while the count is non-zero. Unlock operations undo exactly what the
// matching lock did.
unsafe impl lock_api::RawRwLock for Spin {
    #[allow(clippy::declare_interior_mutable_const)]
    const INIT: Spin = Spin(AtomicUsize::new(0));
    type GuardMarker = lock_api::GuardSend;
    fn lock_shared(&self) {
        while !self.try_lock_shared() {
            core::hint::spin_loop();
        }
    }
    fn try_lock_shared(&self) -> bool {
        let v = self.0.load(Ordering::Relaxed);
        v & WRITER == 0
            && self
                .0
                .compare_exchange(v, v.wrapping_add(1), Ordering::Acquire, Ordering::Relaxed)
                .is_ok()
    }
    unsafe fn unlock_shared(&self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
    fn lock_exclusive(&self) {
        while !self.try_lock_exclusive() {
            core::hint::spin_loop();
        }
    }
    fn try_lock_exclusive(&self) -> bool {
        self.0
            .compare_exchange(0, WRITER, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
    }
    unsafe fn unlock_exclusive(&self) {
        self.0.store(0, Ordering::Release);
    }
}

static ENGINE: Engine<Spin> = Engine::new();
static BYTES: [u8; 300] = {
    let mut b = [b'a'; 300];
    b[0] = b'/';
    b[4] = b'/';
    b
};

fn bytes(len: usize) -> &'static [u8] {
    black_box(&BYTES[..]).get(..black_box(len)).unwrap_or(&[])
}

struct Table;
impl ProcessTable for Table {
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        let mut i = 0u64;
        while i < black_box(3000) {
            if f(SocketOwner {
                inode: black_box(i),
                tgid: black_box(7),
            })
            .is_break()
            {
                return;
            }
            i += 1;
        }
    }
}

/// The kernel-shaped host: every answer comes through `black_box`, so every branch of the packet
/// path (hit, recompute, image, sender, walk, defer, too-long path) stays reachable.
struct KHost {
    len: usize,
    kind: u32,
    holds: bool,
}

fn task(tgid: u32) -> TaskId {
    TaskId {
        start_ns: black_box(1),
        exec_id: black_box(2),
        tgid,
        pad: 0,
    }
}

fn exe(len: usize, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
    match black_box(len) {
        0 => Err(ExeError::NoTask),
        1 => Err(ExeError::NoExe(task(tgid))),
        _ => match out.set(bytes(len)) {
            Ok(()) => Ok(task(tgid)),
            Err(_) => Err(ExeError::TooLong(task(tgid))),
        },
    }
}

impl Host for KHost {
    type Sock<'s> = (u64, u64);
    fn now_ms(&self) -> u64 {
        black_box(5)
    }
    fn sock_key(&self, sk: (u64, u64)) -> SocketKey {
        SocketKey(sk.0)
    }
    fn sock_info(&self, sk: (u64, u64)) -> SockInfo {
        let kind = match black_box(self.kind) {
            0 => SockKind::Detached,
            1 => SockKind::Kernel,
            _ => SockKind::User,
        };
        SockInfo { inode: sk.1, kind }
    }
    fn sender_holds(&self, _sk: (u64, u64)) -> Option<TaskId> {
        black_box(self.holds).then(|| task(black_box(7)))
    }
    fn sender(&self, _sk: (u64, u64)) -> Option<TaskId> {
        black_box(self.holds).then(|| task(black_box(8)))
    }
    fn sender_exe(&self, _sk: (u64, u64), out: &mut ExePath) -> Result<TaskId, ExeError> {
        exe(self.len, black_box(7), out)
    }
    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        exe(self.len, tgid, out)
    }
    fn for_each_socket(&self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        Table.for_each_socket(f);
    }
    fn route_hop(&self, index: usize) -> e7_core::RouteHop {
        // Any answer at any index, so the route walk's every branch is linked.
        match black_box(index as u64 ^ self.len as u64) % 4 {
            0 => e7_core::RouteHop::End,
            1 => e7_core::RouteHop::Unreadable,
            2 => e7_core::RouteHop::Addr(e7_core::Addr::V4(black_box([10, 0, 0, 1]))),
            _ => e7_core::RouteHop::Addr(e7_core::Addr::V6(black_box([0x20; 16]))),
        }
    }
    fn defer(&self, s: Deferred) {
        black_box(s);
    }
    fn wants_events(&self) -> bool {
        black_box(true)
    }
}

/// The packet path exactly as the kernel module calls it (`Engine::decide_packet`).
#[no_mangle]
pub extern "C" fn e7np_decide_packet(
    proto: u32,
    key: u64,
    inode: u64,
    flags: u32,
    len: usize,
) -> u32 {
    let host = KHost {
        len,
        kind: flags & 3,
        holds: flags & 4 != 0,
    };
    let pkt = Packet {
        peer: e7_core::Peer::UNKNOWN,
        sk: (flags & 8 == 0).then_some((key, inode)),
        proto,
        uid: 0,
        family: if flags & 16 != 0 {
            Family::Ipv6
        } else {
            Family::Ipv4
        },
        malformed: flags & 32 != 0,
        in_task: flags & 64 != 0,
    };
    let out = ENGINE.decide_packet(&host, &pkt);
    out.decision.to_bits() as u32 | (out.event.is_some() as u32) << 8
}

/// The deferred identification the kernel's refill work runs.
#[no_mangle]
pub extern "C" fn e7np_identify_deferred(key: u64, inode: u64, len: usize) -> u32 {
    let host = KHost {
        len,
        kind: 2,
        holds: false,
    };
    let s = Deferred {
        key: SocketKey(key),
        inode,
        uid: 0,
    };
    ENGINE.identify_deferred(&host, &s) as u32
}

#[no_mangle]
pub extern "C" fn e7np_add_rule(proto: u32, len: usize, allow: bool) -> i32 {
    let action = if allow { Action::Allow } else { Action::Block };
    match Rule::new(proto, bytes(len), action) {
        Ok(r) => match ENGINE.edit_rules(|ring| ring.add(r)) {
            Ok(o) => o as i32,
            Err(_) => -2,
        },
        Err(_) => -1,
    }
}

#[no_mangle]
pub extern "C" fn e7np_remove_rule(proto: u32, len: usize) -> bool {
    ENGINE.edit_rules(|r| r.remove(proto, bytes(len)))
}

#[no_mangle]
pub extern "C" fn e7np_clear_rules(which: u32) -> usize {
    ENGINE.edit_rules(|r| match which {
        0 => r.clear(),
        1 => r.clear_action(Action::Allow),
        _ => r.clear_action(Action::Block),
    })
}

#[no_mangle]
pub extern "C" fn e7np_query(cursor: usize) -> usize {
    let r = ENGINE.rules.read();
    r.iter()
        .skip(cursor)
        .map(|x| x.path().len().wrapping_add(x.proto() as usize))
        .fold(0usize, usize::wrapping_add)
}

#[no_mangle]
pub extern "C" fn e7np_lookup(proto: u32, len: usize) -> i32 {
    let Ok(p) = ExePath::new(bytes(len)) else {
        return -1;
    };
    match ENGINE.rules.read().lookup(proto, &p) {
        Some(m) => m.position as i32,
        None => -2,
    }
}

#[no_mangle]
pub extern "C" fn e7np_set_flag(index: u32, value: u32) -> i32 {
    match Flag::from_index(index) {
        Some(f) => match ENGINE.flags.set(f, value) {
            Ok(()) => 0,
            Err(_) => -22,
        },
        None => -2,
    }
}

#[no_mangle]
pub extern "C" fn e7np_get_flag(index: u32) -> u32 {
    Flag::from_index(index).map_or(0, |f| ENGINE.flags.get(f))
}

#[no_mangle]
pub extern "C" fn e7np_intern(len: usize) -> u64 {
    ENGINE
        .exes
        .write()
        .intern(bytes(len))
        .map_or(0, |id| id.to_u64())
}

#[no_mangle]
pub extern "C" fn e7np_exe_path(id: u64, out_len: &mut usize) -> bool {
    let mut p = ExePath::EMPTY;
    let ok = e7_core::ExeId::from_u64(id).is_some_and(|id| ENGINE.exe_path(id, &mut p));
    *out_len = p.len();
    ok
}

#[no_mangle]
pub extern "C" fn e7np_socket_ops(key: u64, op: u32) -> u32 {
    match op {
        0 => ENGINE
            .sockets
            .read()
            .lookup(SocketKey(key))
            .map_or(0, |(k, _)| k.owner.tgid),
        1 => ENGINE.sockets.write().forget(SocketKey(key)) as u32,
        2 => ENGINE.sockets.write().forget_tgid(key as u32) as u32,
        3 => {
            ENGINE.sockets.write().clear();
            0
        }
        _ => ENGINE
            .sockets
            .write()
            .insert(
                SocketKey(key),
                e7_core::KnownSocket {
                    inode: key,
                    owner: TaskId::tgid_only(op),
                    uid: 0,
                    exe: Identity::Unknown,
                },
            )
            .map_or(0, |k| k.0 as u32),
    }
}

#[no_mangle]
pub extern "C" fn e7np_active_find(inode: u64, now: u64) -> u32 {
    match ENGINE.active.write().find(inode, now, &mut Table) {
        e7_core::ActiveLookup::Owner(t) => t,
        e7_core::ActiveLookup::NotFound => 0,
        e7_core::ActiveLookup::RateLimited => 1,
    }
}

#[no_mangle]
pub extern "C" fn e7np_squelch(proto: u32, id: u64, now: u64) -> bool {
    e7_core::ExeId::from_u64(id).is_some_and(|id| ENGINE.squelch.permit(proto, id, now))
}

#[no_mangle]
pub extern "C" fn e7np_decide_pure(proto: u32, ident: u64, rule: u32) -> u32 {
    let flags = ENGINE.flags.snapshot();
    let ident = match e7_core::ExeId::from_u64(ident) {
        Some(id) => Identity::Exe(id),
        None if ident == 1 => Identity::PathTooLong,
        None if ident == 2 => Identity::NoHostPath,
        None => Identity::Unknown,
    };
    let rule = Action::from_value(rule);
    decide(&flags, &PacketFacts::new(proto, Family::Ipv6), &ident, rule).to_bits() as u32
}

#[no_mangle]
pub extern "C" fn e7np_reset() {
    ENGINE.clear_caches();
    ENGINE.flags.reset();
    ENGINE.edit_rules(|r| r.clear());
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo<'_>) -> ! {
    loop {}
}

// ---- qualified rules (issue 11): what the module will call once it enforces them --------------

/// The packet path with a reported destination (the qualified lookup and the per-destination
/// caching rule).
#[no_mangle]
pub extern "C" fn e7np_decide_packet_to(
    proto: u32,
    key: u64,
    flags: u32,
    dst_hi: u64,
    dst_lo: u64,
    dport: u32,
) -> u32 {
    let host = KHost {
        len: 12,
        kind: flags & 3,
        holds: flags & 4 != 0,
    };
    let addr = (u128::from(dst_hi) << 64) | u128::from(dst_lo);
    let dst = if flags & 16 != 0 {
        e7_core::Addr::V6(addr.to_be_bytes())
    } else {
        e7_core::Addr::V4((addr as u32).to_be_bytes())
    };
    let pkt = Packet {
        peer: e7_core::Peer {
            dst: Some(dst),
            dport: u16::try_from(dport).ok(),
            routed: flags & 128 != 0,
        },
        sk: (flags & 8 == 0).then_some((key, key)),
        proto,
        uid: flags >> 8,
        family: if flags & 16 != 0 {
            Family::Ipv6
        } else {
            Family::Ipv4
        },
        malformed: false,
        in_task: flags & 64 != 0,
    };
    ENGINE.decide_packet(&host, &pkt).decision.to_bits() as u32
}

/// Adds a qualified rule built from values (the text forms of DEST/PORTS are not kernel-ready yet:
/// their `str` searching and `core::fmt` reach panics; see crates/e7-kmod/README.md, phase 2).
#[no_mangle]
pub extern "C" fn e7np_add_qualified(
    proto: u32,
    len: usize,
    net: u64,
    shape: u32,
    ports: u32,
    uid: u32,
    allow: bool,
) -> i32 {
    let action = if allow { Action::Allow } else { Action::Block };
    let plen = (shape & 0xff) as u8;
    let dest = match shape >> 8 {
        0 => e7_core::Dest::Any,
        1 => e7_core::Dest::Scope(e7_core::Scope::Lan),
        4 => e7_core::Dest::V4 {
            net: (net as u32).to_be_bytes(),
            len: plen,
        },
        _ => e7_core::Dest::V6 {
            net: (u128::from(net) << 64).to_be_bytes(),
            len: plen,
        },
    };
    let range = e7_core::qualified::PortRange {
        lo: (ports >> 16) as u16,
        hi: ports as u16,
    };
    let q = e7_core::Qualifiers {
        dest,
        ports: (ports != 0)
            .then(|| e7_core::Ports::from_ranges(&[range]).ok())
            .flatten(),
        uid: (uid != u32::MAX).then_some(uid),
    };
    match e7_core::QualRule::new(proto, bytes(len), q, action) {
        Ok(r) => match ENGINE.edit_qualified(|t| t.add(r)) {
            Ok(o) => o as i32,
            Err(_) => -2,
        },
        Err(_) => -1,
    }
}

#[no_mangle]
pub extern "C" fn e7np_edit_qualified(proto: u32, len: usize, which: u32) -> usize {
    ENGINE.edit_qualified(|t| match which {
        0 => t.clear(),
        1 => t.clear_action(Action::Allow),
        2 => t.remove_all_for(proto, bytes(len)),
        _ => usize::from(t.remove(proto, bytes(len), &e7_core::Qualifiers::NONE)),
    })
}

#[no_mangle]
pub extern "C" fn e7np_qualified_iter(cursor: usize) -> usize {
    let t = ENGINE.qualified.read();
    t.iter()
        .skip(cursor)
        .map(|x| {
            let ports = x.qual.ports.map_or(0, |p| p.count() as usize);
            x.path
                .len()
                .wrapping_add(x.qual.dest.rank() as usize)
                .wrapping_add(ports)
        })
        .fold(0usize, usize::wrapping_add)
}
