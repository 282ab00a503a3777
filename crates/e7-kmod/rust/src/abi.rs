//! The C ABI shared with the shim: `#[repr(C)]` mirrors of the structs in `../e7_rust.h`.
//!
//! Why by hand: the boundary is three flat structs and a few scalars; the C side checks the same
//! sizes with `_Static_assert`, so any drift fails one of the two builds.

use e7_core::path::strip_deleted;
use e7_core::{ExeError, ExePath, PathError, TaskId};

use crate::errno::{EAGAIN, ENAMETOOLONG, ENOENT, EXDEV};

/// `E7_EXE_BUF`: 255 path bytes + NUL + room for d_path's `" (deleted)"` suffix.
pub const EXE_BUF: usize = 272;
/// `E7_PKT_MALFORMED`.
pub const PKT_MALFORMED: u8 = 0x1;
/// `E7_PKT_IN_TASK`.
pub const PKT_IN_TASK: u8 = 0x2;
/// `E7_PKT_SENDER`: `E7Pkt::sender` holds current's process image (task context, a user process).
pub const PKT_SENDER: u8 = 0x4;
/// `E7_PEER_PORT`: `E7Peer::dport` holds the destination port.
pub const PEER_PORT: u8 = 0x1;
/// `E7_PEER_ROUTED`: the packet names a route (IPv6 routing header, IPv4 LSRR/SSRR option);
/// `E7Peer::daddr` is only its first hop (`e7_c_pkt_route` reads the rest).
pub const PEER_ROUTED: u8 = 0x4;
/// `E7_SOCK_DETACHED`: no `struct socket` (orphaned, or a child not yet `accept()`ed).
pub const SOCK_DETACHED: u32 = 0;
/// `E7_SOCK_KERNEL`: a `struct socket` without a file (a kernel socket).
pub const SOCK_KERNEL: u32 = 1;
/// `E7_SOCK_USER`: a `struct socket` with a file (a userspace descriptor exists).
pub const SOCK_USER: u32 = 2;
/// `E7_STATS`: per-CPU counter slots in the shim (e7-core's `Stat::COUNT` must fit).
pub const STATS: usize = 8;
const _: () = assert!(
    e7_core::Stat::COUNT <= STATS,
    "E7_STATS too small for e7-core's Stat"
);
/// `E7_STAT_PACKETS`: the slot the hook itself increments (inline) for every packet it decides.
pub const STAT_PACKETS: usize = 0;
const _: () = assert!(e7_core::Stat::Packets.index() == STAT_PACKETS);
/// `E7_STAT_HITS`: the slot the hook increments (inline) when `e7_hook` reports a cached hit.
pub const STAT_HITS: usize = 1;
const _: () = assert!(e7_core::Stat::Hits.index() == STAT_HITS);
/// `E7_HOOK_ACCEPT`: bit of `e7_hook`'s result: accept the packet (clear: drop).
pub const HOOK_ACCEPT: u32 = 1;
/// `E7_HOOK_CACHED`: bit of `e7_hook`'s result: the verdict was a still-valid cached one.
pub const HOOK_CACHED: u32 = 2;
/// `E7_HOOK_REASON`: bits of `e7_hook`'s result: the decision's reason, where
/// `Decision::to_bits` has it (bits 4..7), for the per-program statistics.
pub const HOOK_REASON: u32 = 0xF0;
/// `E7_HOOK_EXE_SHIFT`: `e7_hook`'s result from this bit on is the program's `ExeId::to_u64`
/// (56 bits: 40-bit generation, 16-bit slot), 0 for none.
pub const HOOK_EXE_SHIFT: u32 = 8;
const _: () = assert!(
    e7_core::exe::MAX_GENERATION < (1u64 << (64 - HOOK_EXE_SHIFT - 16)),
    "an ExeId must fit e7_hook's result above HOOK_EXE_SHIFT"
);
/// `E7_DOIT_QUERY_CHAIN`: `e7_genl_doit`'s "start the chain-shaped QUERY dump" (no ack).
pub const DOIT_QUERY_CHAIN: i32 = 1;
/// `E7_PROG_SLOTS`: per-program statistics records per CPU, one per executable-table slot.
pub const PROG_SLOTS: usize = 256;
const _: () = assert!(
    PROG_SLOTS == crate::state::EXES,
    "E7_PROG_SLOTS must equal the executable table"
);

/// `struct e7_prog_sum`: one program's per-CPU statistics, summed.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct E7ProgSum {
    /// `[accepted, dropped]` packets.
    pub packets: [u64; 2],
    /// `[accepted, dropped]` bytes.
    pub bytes: [u64; 2],
    /// Seconds since the first counted packet (when read).
    pub first: u64,
    /// Seconds since the latest packet (when read).
    pub last: u64,
    /// The latest packet's decision bits | protocol << 8.
    pub info: u32,
    /// Padding.
    pub pad: u32,
}

/// `E7_RWLOCK_BYTES`: inline storage of one kernel lock (the shim's choice of lock type, which
/// differs by kernel configuration, must fit; the shim checks that at build and load time).
pub const RWLOCK_BYTES: usize = 64;

/// `struct e7_pkt`: facts about one outgoing packet.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct E7Pkt {
    /// Full socket or null (opaque).
    pub sk: *mut core::ffi::c_void,
    /// The socket's cookie (never 0 with a socket), 0 without one.
    pub cookie: u64,
    /// Current's process image when `flags` has [`PKT_SENDER`], else zero.
    pub sender: TaskId,
    /// L4 protocol number.
    pub proto: u32,
    /// Socket uid (initial user namespace).
    pub uid: u32,
    /// 4 or 6.
    pub family: u8,
    /// `PKT_*` bits.
    pub flags: u8,
    /// Padding.
    pub pad: [u8; 6],
}

/// `struct e7_peer`: a packet's destination.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct E7Peer {
    /// Destination address, network order (IPv4: the first 4 bytes).
    pub daddr: [u8; 16],
    /// [`PEER_PORT`]: destination port, host order.
    pub dport: u16,
    /// `PEER_*` bits.
    pub flags: u8,
    /// Padding.
    pub pad: [u8; 5],
}

/// `struct e7_sockinfo`: socket facts fetched on a cache miss.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default)]
pub struct E7SockInfo {
    /// Socket inode, 0 if none.
    pub ino: u64,
    /// `SOCK_*`.
    pub kind: u32,
    /// Padding.
    pub pad: u32,
}

/// `struct e7_task_id`: which program image a process runs, without its path — e7-core's
/// [`TaskId`] itself (`#[repr(C)]`, same layout; the C side checks the size), so the shim fills
/// it in place and no adapter copies it.
pub type E7TaskId = TaskId;

/// `struct e7_exe`: an executable path resolved by `d_path`.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct E7Exe {
    /// 0, or a negative errno (`-ENAMETOOLONG`, `-ENOENT`, `-ESRCH`, `-EPERM`).
    pub status: i32,
    /// Path bytes in `buf` when `status == 0`.
    pub len: u32,
    /// The process (its tgid is the owner).
    pub task: E7TaskId,
    /// The path (not NUL-terminated within `len`).
    pub buf: [u8; EXE_BUF],
}

impl E7Exe {
    /// An empty result, for the C side to fill.
    pub const fn new() -> Self {
        E7Exe {
            status: 0,
            len: 0,
            task: TaskId::tgid_only(0),
            buf: [0; EXE_BUF],
        }
    }

    /// The path bytes, if the resolution succeeded (`len` is clamped to the buffer).
    pub fn path(&self) -> Option<&[u8]> {
        if self.status != 0 {
            return None;
        }
        self.buf.get(..self.len as usize)
    }

    /// The typed result: the process image with its path copied into `out` (a `" (deleted)"`
    /// suffix stripped), or why there is none. `status` is the shim's 0 / negative errno.
    pub fn result(&self, out: &mut ExePath) -> Result<TaskId, ExeError> {
        let task = self.task;
        match self.status.unsigned_abs() {
            0 => match self.path().map(|p| out.set(strip_deleted(p))) {
                Some(Ok(())) => Ok(task),
                Some(Err(PathError::TooLong { .. })) => Err(ExeError::TooLong(task)),
                _ => Err(ExeError::NoExe(task)),
            },
            ENAMETOOLONG => Err(ExeError::TooLong(task)),
            ENOENT => Err(ExeError::NoExe(task)),
            // Not under pid 1's root as the hook sees it: the refill work verifies it.
            EAGAIN => Err(ExeError::Unverified(task)),
            // Verified: no path in the initial mount namespace and root names this file.
            EXDEV => Err(ExeError::NoHostPath(task)),
            // ESRCH (no such task / not the holder), EPERM (refused outside task context).
            _ => Err(ExeError::NoTask),
        }
    }
}

impl Default for E7Exe {
    fn default() -> Self {
        Self::new()
    }
}

/// `struct e7_dest`: where a reply goes (port in init_net, request sequence number).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct E7Dest {
    /// Netlink port id.
    pub portid: u32,
    /// Request sequence number (0 for events).
    pub seq: u32,
}

/// `struct e7_walk_pos`: where one chunk of the process walk starts, and (out) where the next
/// starts or that the walk reached its end.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct E7WalkPos {
    /// Process id (init pid namespace) to resume at, or the next higher.
    pub tgid: u32,
    /// Descriptor number to resume at within that process.
    pub fd: u32,
    /// Set by the shim when no process is left.
    pub done: u32,
    /// Padding (zero).
    pub pad: u32,
}

const _: () = assert!(core::mem::size_of::<E7Pkt>() == 56);
const _: () = assert!(core::mem::size_of::<E7Peer>() == 24);
const _: () = assert!(core::mem::size_of::<E7WalkPos>() == 16);
// `struct e7_sock_owner` is e7-core's SocketOwner (#[repr(C)]): u64 inode, u32 tgid, 4 padding.
const _: () = assert!(core::mem::size_of::<e7_core::SocketOwner>() == 16);
const _: () = assert!(core::mem::align_of::<e7_core::SocketOwner>() == 8);
const _: () = assert!(core::mem::size_of::<E7SockInfo>() == 16);
const _: () = assert!(core::mem::size_of::<E7TaskId>() == 24);
const _: () = assert!(core::mem::size_of::<E7Exe>() == 32 + EXE_BUF);
const _: () = assert!(core::mem::size_of::<E7Dest>() == 8);
const _: () = assert!(core::mem::size_of::<E7ProgSum>() == 56);
