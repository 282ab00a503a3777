//! The FFI layer: the shim's functions (`extern "C"`), the [`Kernel`] implementation over them,
//! the `#[no_mangle]` entry points the shim calls, the one `static` holding all state, and the
//! panic handler.
//!
//! This is the only module (with `klock.rs`) allowed `unsafe`; each block says why it is sound.
//! Every entry point listed here must also be declared with `E7_RUST_EXPORT` in `../e7_rust.h`
//! (Kbuild derives the `ld -u` list from that file; the Makefile checks both agree).
#![allow(unsafe_code)]

use core::ffi::{c_char, c_void, CStr};
use core::fmt::{self, Write as _};

use core::marker::PhantomData;
use core::ptr::NonNull;

use e7_core::{
    Chunk, ChunkEnd, ExeError, ExePath, Family, Packet, RouteHop, SockInfo, SockKind, SocketKey,
    SocketOwner, Stat, TaskId, Verdict, WalkCursor,
};
use e7_proto::nla::{WriteError, Writer};
use e7_proto::Command;

use crate::abi::{
    E7Dest, E7Exe, E7Peer, E7Pkt, E7ProgSum, E7SockInfo, E7WalkPos, HOOK_ACCEPT, HOOK_CACHED,
    HOOK_EXE_SHIFT, HOOK_REASON, PEER_PORT, PEER_ROUTED, PKT_IN_TASK, PKT_MALFORMED, PKT_SENDER,
    SOCK_KERNEL, SOCK_USER,
};
use crate::control::Handled;
use crate::errno::EINVAL;
use crate::kernel::{Kernel, Level, SendError};
use crate::klock::KernelRwLock;
use crate::state::{HookOutcome, Module};

/// The packet's full socket (`struct sock *`), valid for the hook call `'hook`. Only
/// [`e7_hook`] makes one (the field is private to this module), so safe code can neither forge a
/// socket pointer nor keep one past the hook.
#[derive(Debug, Clone, Copy)]
pub struct SockRef<'hook> {
    sk: NonNull<c_void>,
    /// The cookie the shim read inline (0: not known, ask).
    cookie: u64,
    _hook: PhantomData<&'hook c_void>,
}

impl SockRef<'_> {
    fn ptr(self) -> *mut c_void {
        self.sk.as_ptr()
    }
}

extern "C" {
    fn e7_rust_panic(file: *const u8, len: u32, line: u32);
    fn e7_c_log(level: u32, msg: *const u8, len: u32);
    fn e7_c_now_ms() -> u64;
    fn e7_c_now_ns() -> u64;
    fn e7_c_now_secs() -> u64;
    fn e7_c_stat_inc(idx: u32);
    fn e7_c_stat_sum(idx: u32) -> u64;
    fn e7_c_pkt_dest(skb: *mut c_void, family: u8, out: *mut E7Peer) -> i32;
    fn e7_c_pkt_route(skb: *mut c_void, family: u8, index: u32, out: *mut u8) -> i32;
    fn e7_c_prog_read(id: u64, out: *mut E7ProgSum) -> i32;
    fn e7_c_sk_cookie(sk: *mut c_void) -> u64;
    fn e7_c_sk_info(sk: *mut c_void, out: *mut E7SockInfo);
    fn e7_c_current_task(out: *mut TaskId) -> i32;
    fn e7_c_current_exe(out: *mut E7Exe) -> i32;
    fn e7_c_current_holds(sk: *mut c_void, out: *mut TaskId) -> i32;
    fn e7_c_task_exe(tgid: u32, out: *mut E7Exe) -> i32;
    fn e7_c_collect_sockets(pos: *mut E7WalkPos, out: *mut SocketOwner, max: u32) -> i32;
    fn e7_c_kick_events();
    fn e7_c_kick_refill(delay_ms: u32);
    fn e7_c_msg_new(cmd: u8, dest: *const E7Dest, buf: *mut *mut u8, room: *mut u32)
        -> *mut c_void;
    fn e7_c_msg_send(msg: *mut c_void, used: u32, portid: u32) -> i32;
    fn e7_c_msg_free(msg: *mut c_void);
}

/// All module state. Placed in the module's .data/.bss by the loader; never on a stack.
static E7: Module<KernelRwLock> = Module::new();

/// The kernel, as seen through the shim. Inside the hook, `pkt` is the shim's `e7_pkt` (its
/// sender, read inline, answers "who sends") and `skb` the packet (for [`Kernel::packet_dest`]);
/// outside (`ASK`), every answer comes from the shim.
struct Shim<'p> {
    pkt: Option<&'p E7Pkt>,
    skb: *mut c_void,
}

impl Shim<'static> {
    /// Outside the hook: every answer from the shim.
    const ASK: Shim<'static> = Shim {
        pkt: None,
        skb: core::ptr::null_mut(),
    };
}

/// A fixed line buffer for log messages (truncates).
struct Line {
    buf: [u8; 200],
    len: usize,
}

impl fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            match self.buf.get_mut(self.len) {
                Some(slot) => {
                    *slot = b;
                    self.len += 1;
                }
                None => return Ok(()),
            }
        }
        Ok(())
    }
}

impl Kernel for Shim<'_> {
    type Sock<'s> = SockRef<'s>;

    fn now_ms(&self) -> u64 {
        // SAFETY: no arguments; callable in any context.
        unsafe { e7_c_now_ms() }
    }

    fn now_ns(&self) -> u64 {
        // SAFETY: no arguments; callable in any context.
        unsafe { e7_c_now_ns() }
    }

    fn now_secs(&self) -> u64 {
        // SAFETY: no arguments; callable in any context.
        unsafe { e7_c_now_secs() }
    }

    fn stat_inc(&self, stat: Stat) -> bool {
        if stat.index() == crate::abi::STAT_PACKETS || stat.index() == crate::abi::STAT_HITS {
            // The hook counts these itself, inline: packets right after its mode check
            // (e7_nf_decide: the same "mode not disabled" condition, read a moment earlier),
            // hits from e7_hook's HOOK_CACHED bit.
            return true;
        }
        // SAFETY: an integer argument (the shim ignores an index >= E7_STATS); any context.
        unsafe { e7_c_stat_inc(stat.index() as u32) };
        true
    }

    fn stat_sum(&self, stat: Stat) -> Option<u64> {
        // SAFETY: an integer argument; reads per-CPU counters only (process context here).
        Some(unsafe { e7_c_stat_sum(stat.index() as u32) })
    }

    fn prog_read(&self, exe: e7_core::ExeId) -> Option<E7ProgSum> {
        let mut out = E7ProgSum::default();
        // SAFETY: out is a valid, writable e7_prog_sum (#[repr(C)] mirror, size checked on both
        // sides); process context.
        let any = unsafe { e7_c_prog_read(exe.to_u64(), &mut out) };
        (any != 0).then_some(out)
    }

    fn log(&self, level: Level, args: fmt::Arguments<'_>) {
        let mut line = Line {
            buf: [0; 200],
            len: 0,
        };
        let _ = line.write_fmt(args);
        let lvl = match level {
            Level::Err => 0,
            Level::Info => 1,
            Level::Debug => 2,
        };
        // SAFETY: buf[..len] is initialised; C prints it with "%.*s" (no NUL needed).
        unsafe { e7_c_log(lvl, line.buf.as_ptr(), line.len as u32) }
    }

    fn packet_dest(&self) -> (Option<e7_core::qualified::Addr>, Option<u16>) {
        let (Some(p), false) = (self.pkt, self.skb.is_null()) else {
            return (None, None);
        };
        let mut out = E7Peer {
            daddr: [0; 16],
            dport: 0,
            flags: 0,
            pad: [0; 5],
        };
        // SAFETY: skb is the hook's packet, valid for the whole hook call this Shim lives in
        // (made only by e7_hook); out is a local e7_peer. Reads headers with skb_header_pointer.
        if unsafe { e7_c_pkt_dest(self.skb, p.family, &mut out) } != 0 {
            return (None, None);
        }
        let peer = peer_from(p.family, &out);
        (peer.dst, peer.dport)
    }

    fn packet_route(&self, index: usize) -> RouteHop {
        let (Some(p), false) = (self.pkt, self.skb.is_null()) else {
            return RouteHop::End;
        };
        let Ok(index) = u32::try_from(index) else {
            return RouteHop::End;
        };
        let mut addr = [0u8; 16];
        // SAFETY: skb is the hook's packet, valid for the whole hook call this Shim lives in
        // (made only by e7_hook); addr is a local 16-byte buffer, the most the shim writes. Reads
        // headers with skb_header_pointer, bounded by the header's own length.
        match unsafe { e7_c_pkt_route(self.skb, p.family, index, addr.as_mut_ptr()) } {
            0 => RouteHop::End,
            1 if p.family == 6 => RouteHop::Addr(e7_core::qualified::Addr::V6(addr)),
            1 => {
                let [a, b, c, d, ..] = addr;
                RouteHop::Addr(e7_core::qualified::Addr::V4([a, b, c, d]))
            }
            _ => RouteHop::Unreadable,
        }
    }

    fn sk_cookie(&self, sk: SockRef<'_>) -> SocketKey {
        if sk.cookie != 0 {
            return SocketKey(sk.cookie);
        }
        // SAFETY: sk is the full socket the hook passed in, valid during the hook ('hook).
        SocketKey(unsafe { e7_c_sk_cookie(sk.ptr()) })
    }

    fn sk_info(&self, sk: SockRef<'_>) -> SockInfo {
        let mut out = E7SockInfo::default();
        // SAFETY: sk as above; out is a valid, writable e7_sockinfo.
        unsafe { e7_c_sk_info(sk.ptr(), &mut out) };
        let kind = match out.kind {
            SOCK_USER => SockKind::User,
            SOCK_KERNEL => SockKind::Kernel,
            _ => SockKind::Detached,
        };
        SockInfo {
            inode: out.ino,
            kind,
        }
    }

    fn current_task(&self) -> Option<TaskId> {
        if let Some(p) = self.pkt {
            return (p.flags & PKT_SENDER != 0).then_some(p.sender);
        }
        let mut id = TaskId::default();
        // SAFETY: id is a valid e7_task_id (TaskId is its #[repr(C)] mirror). Lock-free.
        let user = unsafe { e7_c_current_task(&mut id) != 0 };
        user.then_some(id)
    }

    fn current_exe(&self, out: &mut ExePath) -> Result<TaskId, ExeError> {
        let mut exe = E7Exe::new();
        // SAFETY: exe is a valid e7_exe. The C side refuses outside task context (-ESRCH in
        // exe.status, read by E7Exe::result).
        unsafe { e7_c_current_exe(&mut exe) };
        exe.result(out)
    }

    fn current_holds(&self, sk: SockRef<'_>) -> Option<TaskId> {
        let mut id = TaskId::default();
        // SAFETY: sk as above; id is a valid e7_task_id (TaskId is its #[repr(C)] mirror).
        // Lock-free, any context.
        let held = unsafe { e7_c_current_holds(sk.ptr(), &mut id) != 0 };
        held.then_some(id)
    }

    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        let mut exe = E7Exe::new();
        // SAFETY: exe is a valid e7_exe; the C side refuses outside task context.
        unsafe { e7_c_task_exe(tgid, &mut exe) };
        exe.result(out)
    }

    fn collect_sockets(&self, from: WalkCursor, out: &mut [SocketOwner]) -> Chunk {
        let mut pos = E7WalkPos {
            tgid: from.tgid(),
            fd: from.fd(),
            done: 0,
            pad: 0,
        };
        let max = u32::try_from(out.len()).unwrap_or(u32::MAX);
        // SAFETY: `out` is a live, exclusively borrowed array of `max` SocketOwner (#[repr(C)],
        // the layout of struct e7_sock_owner, checked in abi.rs); the shim writes at most `max`
        // of them and keeps no pointer past the call. `pos` is a local.
        let r = unsafe { e7_c_collect_sockets(&mut pos, out.as_mut_ptr(), max) };
        let Ok(len) = usize::try_from(r) else {
            // Negative: the shim refused (wrong context); nothing was written.
            return Chunk {
                len: 0,
                end: ChunkEnd::Refused,
            };
        };
        Chunk {
            len: len.min(out.len()),
            end: if pos.done != 0 {
                ChunkEnd::Done
            } else {
                ChunkEnd::More(WalkCursor::at(pos.tgid, pos.fd))
            },
        }
    }

    fn kick_events(&self) {
        // SAFETY: queue_work on a static work item; any context.
        unsafe { e7_c_kick_events() }
    }

    fn kick_refill(&self, delay_ms: u32) {
        // SAFETY: queue_delayed_work on a static work item; any context.
        unsafe { e7_c_kick_refill(delay_ms) }
    }

    fn send(
        &self,
        cmd: Command,
        dest: E7Dest,
        portid: u32,
        fill: &mut dyn FnMut(&mut Writer<'_>) -> Result<(), WriteError>,
    ) -> Result<(), SendError> {
        let mut buf: *mut u8 = core::ptr::null_mut();
        let mut room: u32 = 0;
        // SAFETY: dest/buf/room are valid for the call; process context (GFP_KERNEL).
        let msg = unsafe { e7_c_msg_new(cmd.value(), &dest, &mut buf, &mut room) };
        if msg.is_null() || buf.is_null() {
            return Err(SendError::NoMemory);
        }
        // SAFETY: C returned the skb's tail pointer and its tailroom: `room` writable bytes,
        // zeroed by e7_c_msg_new (initialised memory, so a `&mut [u8]` over it is sound), that
        // nothing else touches until e7_c_msg_send/e7_c_msg_free.
        let slice = unsafe { core::slice::from_raw_parts_mut(buf, room as usize) };
        let mut w = Writer::new(slice);
        if let Err(e) = fill(&mut w) {
            // SAFETY: msg came from e7_c_msg_new and was not sent.
            unsafe { e7_c_msg_free(msg) };
            return Err(SendError::Encode(e));
        }
        let used = w.len() as u32;
        // SAFETY: msg came from e7_c_msg_new; send consumes it whatever the result.
        let rc = unsafe { e7_c_msg_send(msg, used, portid) };
        if rc < 0 {
            return Err(SendError::Errno(rc.unsigned_abs()));
        }
        Ok(())
    }
}

/// Applies one module parameter before anything is registered.
///
/// # Safety
/// `name` and `val` are NUL-terminated strings; `err` points to `err_len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn e7_param_set(
    name: *const c_char,
    val: *const c_char,
    err: *mut u8,
    err_len: u32,
) -> i32 {
    if name.is_null() || val.is_null() {
        return -(EINVAL as i32);
    }
    // SAFETY: the shim passes NUL-terminated strings (a static name and the kernel's param copy).
    let (name, val) = unsafe { (CStr::from_ptr(name), CStr::from_ptr(val)) };
    let (Ok(name), Ok(val)) = (name.to_str(), val.to_str()) else {
        write_err(err, err_len, format_args!("the value is not valid UTF-8"));
        return -(EINVAL as i32);
    };
    match E7.param_set(name, val) {
        Ok(()) => 0,
        Err(e) => {
            write_err(err, err_len, format_args!("{e}"));
            -(EINVAL as i32)
        }
    }
}

/// Writes a NUL-terminated, truncated message into the shim's error buffer.
fn write_err(err: *mut u8, err_len: u32, args: fmt::Arguments<'_>) {
    if err.is_null() || err_len == 0 {
        return;
    }
    // SAFETY: the caller guarantees err_len writable, initialised bytes at err (the shim's
    // zero-initialised buffer).
    let out = unsafe { core::slice::from_raw_parts_mut(err, err_len as usize) };
    let mut line = Line {
        buf: [0; 200],
        len: 0,
    };
    let _ = line.write_fmt(args);
    let n = line.len.min(out.len().saturating_sub(1));
    if let (Some(dst), Some(src)) = (out.get_mut(..n), line.buf.get(..n)) {
        dst.copy_from_slice(src);
    }
    if let Some(nul) = out.get_mut(n) {
        *nul = 0;
    }
}

/// Load-time initialisation.
#[no_mangle]
pub extern "C" fn e7_rust_init() -> i32 {
    E7.init(&Shim::ASK);
    0
}

/// The address of the `mode` flag's value (the engine's own atomic, the mode's one home), for
/// the hook's first check: a disabled firewall is decided by one load in C, before any packet
/// parsing. The static lives as long as the module, so the pointer never dangles.
#[no_mangle]
pub extern "C" fn e7_rust_mode_word() -> *const u32 {
    E7.engine.flags.mode_word().as_ptr()
}

/// The address of the engine's "some rule depends on the destination" word (one byte): the hook
/// reads the packet's destination only while it is set. The static lives as long as the module.
#[no_mangle]
pub extern "C" fn e7_rust_peer_word() -> *const u8 {
    E7.engine.per_destination_word().as_ptr() as *const u8
}

/// A packet whose destination the hook did not read (no rule depended on it when the shim
/// looked): no `to`/`port` rule matches, and its verdict is cached for "destination not read"
/// ([`e7_core::DestKey::NONE`]), which answers no packet whose destination the hook read (a rule
/// added meanwhile is applied to the socket's next packet).
const NOT_READ: e7_core::Peer = e7_core::Peer::UNKNOWN;

/// Sets the socket cache's IPv6 destination-hash key (random bytes from the shim, at load, before
/// the hooks exist).
#[no_mangle]
pub extern "C" fn e7_rust_set_dest_secret(k0: u64, k1: u64) {
    E7.engine.set_destination_secret([k0, k1]);
}

/// An `e7_peer` as e7-core's [`e7_core::Peer`].
fn peer_from(family: u8, peer: &E7Peer) -> e7_core::Peer {
    let dst = if family == 6 {
        e7_core::qualified::Addr::V6(peer.daddr)
    } else {
        let [a, b, c, d, ..] = peer.daddr;
        e7_core::qualified::Addr::V4([a, b, c, d])
    };
    e7_core::Peer {
        dst: Some(dst),
        dport: (peer.flags & PEER_PORT != 0).then_some(peer.dport),
        routed: peer.flags & PEER_ROUTED != 0,
    }
}

/// The shim could not register its netfilter hooks for an enforcing mode: the mode becomes
/// `disabled`, which is what the kernel then does (no reader may believe it enforces).
#[no_mangle]
pub extern "C" fn e7_rust_mode_failsafe() {
    let _ = E7
        .engine
        .flags
        .set(e7_core::Flag::Mode, e7_proto::Const::Disabled.value());
}

/// Unload has begun.
#[no_mangle]
pub extern "C" fn e7_rust_stop() {
    E7.stop();
}

/// The netfilter decision: bit [`HOOK_ACCEPT`] set = NF_ACCEPT, clear = NF_DROP; bit
/// [`HOOK_CACHED`]: a cached-verdict hit (the shim counts it per CPU); bits [`HOOK_REASON`]: the
/// decision's reason (its `Decision::to_bits` bits 4..7); from bit [`HOOK_EXE_SHIFT`] on: the
/// program's `ExeId::to_u64` (0: none), for the shim's per-program counters.
///
/// # Safety
/// `pkt` points to a valid `e7_pkt` whose `sk` (if not null) is a full socket valid for the call;
/// `peer` is null or points to an initialised `e7_peer`; `skb` is the packet (or null), valid for
/// the call.
#[no_mangle]
pub unsafe extern "C" fn e7_hook(pkt: *const E7Pkt, peer: *const E7Peer, skb: *mut c_void) -> u64 {
    // SAFETY: the shim passes a pointer to an initialised e7_pkt on its stack.
    let Some(p) = (unsafe { pkt.as_ref() }) else {
        return u64::from(HOOK_ACCEPT);
    };
    let shim = Shim { pkt: Some(p), skb };
    // SAFETY: the shim's peer is null or its stack e7_peer, initialised, valid for this call.
    let d = match unsafe { peer.as_ref() } {
        // The common path: no rule depends on the destination, the peer is a constant.
        None => E7.packet_cached(&shim, &packet_of(p, NOT_READ)),
        Some(peer) => hook_with_peer(&shim, p, peer),
    };
    let accept = match d.verdict {
        Verdict::Accept => HOOK_ACCEPT,
        Verdict::Drop => 0,
    };
    let cached = if d.cached { HOOK_CACHED } else { 0 };
    (d.exe << HOOK_EXE_SHIFT) | u64::from(accept | cached | (u32::from(d.bits) & HOOK_REASON))
}

/// The hook while a rule depends on the destination (out of line, so the common path keeps its
/// constant peer).
#[inline(never)]
fn hook_with_peer(shim: &Shim<'_>, p: &E7Pkt, peer: &E7Peer) -> HookOutcome {
    E7.packet_cached(shim, &packet_of(p, peer_from(p.family, peer)))
}

/// The engine's view of the shim's `e7_pkt`.
#[inline(always)]
fn packet_of<'p>(p: &'p E7Pkt, peer: e7_core::Peer) -> Packet<SockRef<'p>> {
    Packet {
        peer,
        sk: NonNull::new(p.sk).map(|sk| SockRef {
            sk,
            cookie: p.cookie,
            _hook: PhantomData,
        }),
        proto: p.proto,
        uid: p.uid,
        family: if p.family == 6 {
            Family::Ipv6
        } else {
            Family::Ipv4
        },
        malformed: p.flags & PKT_MALFORMED != 0,
        in_task: p.flags & PKT_IN_TASK != 0,
    }
}

/// One generic-netlink request. Returns 0 (ack), [`DOIT_QUERY_CHAIN`](crate::abi::DOIT_QUERY_CHAIN) (start the chain-shaped
/// QUERY dump, no ack) or a negative errno. `admin`: the sender has CAP_NET_ADMIN.
///
/// # Safety
/// `attrs` points to `len` readable bytes, `dest` to a valid `e7_dest`, `extack_msg` to a
/// writable pointer.
#[no_mangle]
pub unsafe extern "C" fn e7_genl_doit(
    cmd: u8,
    attrs: *const u8,
    len: u32,
    dest: *const E7Dest,
    admin: u32,
    extack_msg: *mut *const c_char,
) -> i32 {
    let bytes: &[u8] = if attrs.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: the shim passes the request's attribute area (genlmsg_data/genlmsg_len),
        // valid for the duration of the doit.
        unsafe { core::slice::from_raw_parts(attrs, len as usize) }
    };
    // SAFETY: dest points to the shim's stack e7_dest.
    let Some(dest) = (unsafe { dest.as_ref() }).copied() else {
        return -(EINVAL as i32);
    };
    match E7.doit(&Shim::ASK, cmd, bytes, dest, admin != 0) {
        Ok(Handled::Done) => 0,
        Ok(Handled::QueryChain) => crate::abi::DOIT_QUERY_CHAIN,
        Err(r) => {
            if !extack_msg.is_null() {
                // SAFETY: extack_msg is writable; r.extack is 'static and NUL-terminated.
                unsafe { *extack_msg = r.extack.as_ptr() };
            }
            -(r.errno as i32)
        }
    }
}

/// A QUERY dump's message builder ([`Module::dump_query`], [`Module::chain_query`]).
type DumpFill = fn(&Module<KernelRwLock>, &mut [u8], &mut [u64; 2], &mut u32) -> Result<usize, u32>;

/// One message of a QUERY dump: `fill` is [`Module::dump_query`] or [`Module::chain_query`].
///
/// # Safety
/// As [`e7_genl_dump_query`].
unsafe fn dump_message(
    buf: *mut u8,
    room: u32,
    cursor: *mut u64,
    generation: *mut u32,
    fill: DumpFill,
) -> i32 {
    if buf.is_null() || cursor.is_null() || generation.is_null() {
        return -(EINVAL as i32);
    }
    // SAFETY: the dump skb's tailroom, zeroed by the shim (initialised memory); nothing else
    // writes it during the call.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, room as usize) };
    // SAFETY: cb->args[0..2] of this dump, u64-sized (checked by BUILD_BUG_ON in C).
    let cur = unsafe { &mut *(cursor as *mut [u64; 2]) };
    // SAFETY: the shim passes a pointer to a u32 on its stack.
    let gen = unsafe { &mut *generation };
    match fill(&E7, out, cur, gen) {
        Ok(n) => i32::try_from(n).unwrap_or(0),
        Err(e) => -(e as i32),
    }
}

/// One message of the flat QUERY dump.
///
/// # Safety
/// `buf` points to `room` writable bytes; `cursor` to two `u64` owned by this dump;
/// `generation` to a writable `u32`.
#[no_mangle]
pub unsafe extern "C" fn e7_genl_dump_query(
    buf: *mut u8,
    room: u32,
    cursor: *mut u64,
    generation: *mut u32,
) -> i32 {
    // SAFETY: the caller's guarantees are dump_message's.
    unsafe { dump_message(buf, room, cursor, generation, Module::dump_query) }
}

/// One message of the chain-shaped reply to a plain QUERY (the dump started after
/// [`DOIT_QUERY_CHAIN`](crate::abi::DOIT_QUERY_CHAIN)).
///
/// # Safety
/// As [`e7_genl_dump_query`].
#[no_mangle]
pub unsafe extern "C" fn e7_genl_chain_query(
    buf: *mut u8,
    room: u32,
    cursor: *mut u64,
    generation: *mut u32,
) -> i32 {
    // SAFETY: the caller's guarantees are dump_message's.
    unsafe { dump_message(buf, room, cursor, generation, Module::chain_query) }
}

/// STATS permission: 0, or `-EPERM` for a client without CAP_NET_ADMIN (`admin` = 0) while
/// `statsunpriv` is disabled.
#[no_mangle]
pub extern "C" fn e7_genl_stats_permitted(admin: u32) -> i32 {
    if E7.stats_permitted(admin != 0) {
        0
    } else {
        -(crate::errno::EPERM as i32)
    }
}

/// One message of the STATS dump ([`Module::dump_stats`]).
///
/// # Safety
/// `buf` points to `room` writable bytes; `cursor` to two `u64` owned by this dump.
#[no_mangle]
pub unsafe extern "C" fn e7_genl_dump_stats(buf: *mut u8, room: u32, cursor: *mut u64) -> i32 {
    if buf.is_null() || cursor.is_null() {
        return -(EINVAL as i32);
    }
    // SAFETY: the dump skb's tailroom, zeroed by the shim (initialised memory); nothing else
    // writes it during the call.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, room as usize) };
    // SAFETY: cb->args[0..2] of this dump, u64-sized (checked by BUILD_BUG_ON in C).
    let cur = unsafe { &mut *(cursor as *mut [u64; 2]) };
    match E7.dump_stats(&Shim::ASK, out, cur) {
        Ok(n) => i32::try_from(n).unwrap_or(0),
        Err(e) => -(e as i32),
    }
}

/// The event work item.
#[no_mangle]
pub extern "C" fn e7_work_events() {
    E7.work_events(&Shim::ASK);
}

/// The refill work item.
#[no_mangle]
pub extern "C" fn e7_work_refill() {
    E7.work_refill(&Shim::ASK);
}

/// The read-only module parameter `walk_stats`: the walk's counters as one NUL-terminated line
/// into `buf` (`len` bytes); returns the bytes written without the NUL.
///
/// # Safety
/// `buf` points to `len` writable bytes (the sysfs page the shim's getter was given).
#[no_mangle]
pub unsafe extern "C" fn e7_rust_walk_stats(buf: *mut u8, len: u32) -> i32 {
    if buf.is_null() || len == 0 {
        return 0;
    }
    // SAFETY: the caller's contract: `len` writable bytes, not otherwise accessed meanwhile.
    let out = unsafe { core::slice::from_raw_parts_mut(buf, len as usize) };
    let mut line = Line {
        buf: [0; 200],
        len: 0,
    };
    let _ = E7.walk_stats(&mut line);
    let n = line.len.min(out.len().saturating_sub(1));
    if let (Some(dst), Some(src)) = (out.get_mut(..n), line.buf.get(..n)) {
        dst.copy_from_slice(src);
    }
    if let Some(nul) = out.get_mut(n) {
        *nul = 0;
    }
    n as i32
}

/// Unload (and init unwinding): DISCONNECT to every subscriber; returns how many were lost.
#[no_mangle]
pub extern "C" fn e7_rust_disconnect_all() -> u32 {
    E7.disconnect_all(&Shim::ASK)
}

/// NETLINK_URELEASE of a generic-netlink socket in init_net: forget that port.
#[no_mangle]
pub extern "C" fn e7_rust_port_released(portid: u32) {
    E7.port_released(portid);
}

/// A Rust panic is a kernel BUG (never expected: the build rejects panicking code paths).
#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    let (file, line) = match info.location() {
        Some(l) => (l.file(), l.line()),
        None => ("?", 0),
    };
    // SAFETY: file is a valid &str; C prints it with "%.*s" and then BUG()s. Declared as
    // returning (not `-> !`) so objtool sees a normal call; `loop {}` below is the noreturn.
    unsafe { e7_rust_panic(file.as_ptr(), file.len() as u32, line) };
    #[allow(clippy::empty_loop)]
    loop {}
}
