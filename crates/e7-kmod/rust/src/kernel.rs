//! The kernel services the module logic needs, as a trait.
//!
//! Why a trait: everything that decides (packets, requests, events, the refill work) is written
//! against [`Kernel`], so the same code runs in the kernel (implemented over the C shim in
//! `ffi.rs`) and in host unit tests (a fake kernel with scripted sockets and processes). The
//! trait is also where the contexts are documented: which service may run where.
#![forbid(unsafe_code)]

use core::fmt;
use core::ops::ControlFlow;

use e7_core::SocketOwner;
use e7_proto::nla::{WriteError, Writer};
use e7_proto::Command;

use crate::abi::{E7Dest, E7Exe, E7TaskId};

/// An opaque handle to the packet's full socket, only meaningful to the [`Kernel`] that made it
/// (the kernel: a `struct sock *` valid for the duration of the hook).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockRef(pub usize);

/// What backs a socket (see `E7_SOCK_*` in `e7_rust.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SockKind {
    /// No `struct socket`: orphaned (closed, still sending), or an accepted child not yet
    /// `accept()`ed. The owner may appear later, so nothing is cached.
    Detached,
    /// A kernel socket (no file): no process can ever own it.
    Kernel,
    /// A userspace socket (a file exists, some process holds or held a descriptor).
    User,
}

/// Socket facts fetched on a known-socket-cache miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SockInfo {
    /// Socket inode (0 if none).
    pub ino: u64,
    /// What backs the socket.
    pub kind: SockKind,
}

/// Log levels (`pr_err`, `pr_info`, `pr_notice`; all rate-limited by the shim).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Errors.
    Err,
    /// Information (load, state changes).
    Info,
    /// Per-decision logging (flag `debug` only).
    Debug,
}

/// Why a netlink message could not be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No memory for the message.
    NoMemory,
    /// The body did not fit (or could not be encoded).
    Encode(WriteError),
    /// The unicast failed with this positive errno (`ECONNREFUSED`: nobody listens on the port).
    Errno(u32),
}

/// Kernel services. Every method states its context:
/// - **atomic-safe**: never sleeps; may be called from the netfilter hook in any context (softirq
///   included) and with the module's locks held;
/// - **task context**: takes `task_lock`/`files->file_lock` (spinlocks taken by process context
///   without disabling bottom halves), so never from softirq (the shim refuses otherwise); never
///   sleeps, so a module lock may be held;
/// - **may sleep**: allocates with `GFP_KERNEL`; process context only, with **no module lock
///   held** (every module lock is a `_bh` rwlock: holding one means bottom halves are off, and
///   sleeping then is "scheduling while atomic"). The host tests' fake kernel fails any such call
///   made under a lock (`context.rs`).
pub trait Kernel {
    /// Monotonic milliseconds (boot time). Atomic-safe.
    fn now_ms(&self) -> u64;
    /// Logs one line (rate-limited). Atomic-safe.
    fn log(&self, level: Level, args: fmt::Arguments<'_>);
    /// The socket's cookie: 64-bit, assigned once, never reused, kept when the socket is orphaned.
    /// Atomic-safe.
    fn sk_cookie(&self, sk: SockRef) -> u64;
    /// The socket's inode and backing. Atomic-safe.
    fn sk_info(&self, sk: SockRef) -> SockInfo;
    /// Task context only (never sleeps): true if the current task holds a descriptor for `sk`;
    /// then `out` holds its tgid and executable (or the reason there is none).
    fn current_owner(&self, sk: SockRef, out: &mut E7Exe) -> bool;
    /// Atomic-safe, lock-free and bounded: true if the current task (in softirq: the interrupted
    /// one) holds a descriptor for `sk`; then `out` identifies that process.
    fn current_holds(&self, sk: SockRef, out: &mut E7TaskId) -> bool;
    /// Task context only (never sleeps): the executable of thread group `tgid` into `out`.
    fn task_exe(&self, tgid: u32, out: &mut E7Exe);
    /// Task context only (never sleeps; RCU walk): every (socket inode, owner tgid) pair of every
    /// process.
    fn walk_sockets(&self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>);
    /// Queues the event work item (atomic-safe; no-op if already queued).
    fn kick_events(&self);
    /// Queues the refill work item after `delay_ms` (atomic-safe; no-op if already queued).
    fn kick_refill(&self, delay_ms: u32);
    /// **May sleep** (`genlmsg_new(GFP_KERNEL)`): process context, no module lock held, so `fill`
    /// must not be called with a guard the caller still holds. Builds one generic-netlink message of command `cmd` with header
    /// fields from `dest`, lets `fill` write its attributes, and unicasts it to `portid`.
    fn send(
        &self,
        cmd: Command,
        dest: E7Dest,
        portid: u32,
        fill: &mut dyn FnMut(&mut Writer<'_>) -> Result<(), WriteError>,
    ) -> Result<(), SendError>;
}

/// Adapts [`Kernel::walk_sockets`] to e7-core's [`ProcessTable`](e7_core::ProcessTable).
pub struct KernelTable<'k, K: Kernel>(pub &'k K);

impl<K: Kernel> e7_core::ProcessTable for KernelTable<'_, K> {
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        self.0.walk_sockets(f);
    }
}
