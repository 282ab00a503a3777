//! The kernel services the module logic needs, as a trait.
//!
//! Why a trait: everything that decides (packets, requests, events, the refill work) is written
//! against [`Kernel`], so the same code runs in the kernel (implemented over the C shim in
//! `ffi.rs`) and in host unit tests (a fake kernel with scripted sockets and processes). The
//! trait is also where the contexts are documented: which service may run where.
#![forbid(unsafe_code)]

use core::fmt;

use e7_core::{
    Chunk, ExeError, ExeId, ExePath, SockInfo, SocketKey, SocketOwner, Stat, TaskId, WalkCursor,
};
use e7_proto::nla::{WriteError, Writer};
use e7_proto::Command;

use crate::abi::{E7Dest, E7ProgSum};

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
    /// The unicast failed with this positive errno ([`errno::ECONNREFUSED`](crate::errno::ECONNREFUSED):
    /// nobody listens on the port).
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
///
/// The socket services are what e7-core's [`Host`](e7_core::Host) needs; `state.rs` adds the
/// module's own parts (deferring to the refill work, whether anybody subscribes to events).
pub trait Kernel {
    /// The packet's full socket, valid for one hook call (the kernel: `SockRef<'hook>`, which
    /// only the hook entry point can make).
    type Sock<'s>: Copy;
    /// Monotonic milliseconds (boot time). Atomic-safe.
    fn now_ms(&self) -> u64;
    /// Monotonic nanoseconds (boot time), for lock-hold statistics. Atomic-safe.
    fn now_ns(&self) -> u64;
    /// Monotonic whole seconds from a coarse clock (one load, no division). Atomic-safe.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
    /// Counts `stat` in per-CPU counters and returns true, or returns false (the default: the
    /// engine then counts in its shared atomics). Atomic-safe.
    fn stat_inc(&self, stat: Stat) -> bool {
        let _ = stat;
        false
    }
    /// The sum of `stat`'s per-CPU counters, or `None` when [`Kernel::stat_inc`] does not count.
    fn stat_sum(&self, stat: Stat) -> Option<u64> {
        let _ = stat;
        None
    }
    /// Counts one packet of program `exe` (decision bits `bits`, IP protocol `proto`) in the
    /// per-program statistics ([`Module::packet`](crate::state::Module::packet)). The kernel's
    /// hook does not come through here: `e7_hook` returns the program with the verdict and the
    /// shim counts it in its per-CPU records without another call. The default counts nothing.
    /// Atomic-safe.
    fn prog_count(&self, exe: ExeId, bits: u8, proto: u32) {
        let _ = (exe, bits, proto);
    }
    /// Program `exe`'s per-program statistics summed over every CPU, or `None` when no packet of
    /// exactly this id (slot and generation) was counted. Process context.
    fn prog_read(&self, exe: ExeId) -> Option<E7ProgSum> {
        let _ = exe;
        None
    }
    /// Logs one line (rate-limited). Atomic-safe.
    fn log(&self, level: Level, args: fmt::Arguments<'_>);
    /// Inside the hook, any context: the packet's destination address and port, read from the
    /// packet only when asked (for an event; the decision gets them inline while a rule needs
    /// them). Default: not known.
    fn packet_dest(&self) -> (Option<e7_core::qualified::Addr>, Option<u16>) {
        (None, None)
    }
    /// Inside the hook, any context, bounded: the `index`-th address the packet's route names
    /// (only asked for a packet whose peer says routed; see e7-core's `Host::route_hop`).
    /// Default: none.
    fn packet_route(&self, index: usize) -> e7_core::RouteHop {
        let _ = index;
        e7_core::RouteHop::End
    }
    /// The socket's cookie: 64-bit, assigned once, never reused, kept when the socket is orphaned.
    fn sk_cookie(&self, sk: Self::Sock<'_>) -> SocketKey;
    /// The socket's inode and backing.
    fn sk_info(&self, sk: Self::Sock<'_>) -> SockInfo;
    /// Task context, lock-free: the current task's process image if it is a user process (not a
    /// kernel thread, not exiting; io_uring workers are threads of their process). In task
    /// context it is the packet's sender, whether or not a descriptor table holds the socket.
    fn current_task(&self) -> Option<TaskId>;
    /// Task context only: the current task's executable into `out` and its process image.
    fn current_exe(&self, out: &mut ExePath) -> Result<TaskId, ExeError>;
    /// Any context, lock-free and bounded: the process image of the current task (in softirq: the
    /// interrupted one) if it holds a descriptor for `sk`.
    fn current_holds(&self, sk: Self::Sock<'_>) -> Option<TaskId>;
    /// Task context only: the executable of thread group `tgid` into `out`.
    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError>;
    /// **Preemptible process context only, no module lock held** (the shim refuses — `Refused`
    /// — in softirq, with BH or IRQs off, in an atomic section or an RCU read-side section, so
    /// never from the hook): one chunk of the process-table walk, the (socket inode, owner tgid)
    /// pairs from `from` on into `out`, resuming by process id and descriptor number. Bounded per
    /// call (at most `out.len()` pairs, `E7_WALK_TASKS` processes, `E7_WALK_FILES` descriptors);
    /// takes `task_lock` and `files->file_lock` per process, never with BH off, and reschedules
    /// between processes.
    fn collect_sockets(&self, from: WalkCursor, out: &mut [SocketOwner]) -> Chunk;
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
