//! What only the host can do for the packet path: the [`Host`] trait.
//!
//! Why a trait: the packet path — early decision, known-socket cache, identification, rule lookup,
//! decision, caching — is [`Engine::decide_packet`](crate::Engine::decide_packet), ONE function run
//! by the kernel module and by userspace embedders alike. What differs between them is only what the
//! host can see: a socket's cookie, inode and backing, which task is sending, a task's executable, a
//! walk of every process's descriptors, and work deferred to a context that may sleep. The kernel
//! module implements [`Host`] over its C shim, `Firewall` (feature `std`) over `/proc`, the tests over
//! a scripted fake; the decisions themselves cannot diverge.
//!
//! Every host answer is a typed value ([`Result`], [`Option`], an enum); no errno crosses this
//! boundary.

use core::ops::ControlFlow;

use crate::active::{Chunk, SocketOwner, WalkCursor};
use crate::path::ExePath;
use crate::socket::SocketKey;

/// Which program image a process runs, without its path: the thread group, its leader's start time
/// and its exec generation. Equal values mean the same process that has not exec'ed since.
///
/// `#[repr(C)]` so the kernel shim can fill it in place (`struct e7_task_id` in `e7_rust.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct TaskId {
    /// Group leader's start time (kernel: `start_boottime`; any per-process constant elsewhere).
    pub start_ns: u64,
    /// Exec generation (kernel: `self_exec_id`, bumped by every execve).
    pub exec_id: u64,
    /// Thread-group id (process id).
    pub tgid: u32,
    /// Padding (zero).
    pub pad: u32,
}

impl TaskId {
    /// A process known only by its tgid (hosts that cannot see start time or exec generation).
    pub const fn tgid_only(tgid: u32) -> TaskId {
        TaskId {
            start_ns: 0,
            exec_id: 0,
            tgid,
            pad: 0,
        }
    }
}

/// What backs a socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SockKind {
    /// No `struct socket`: orphaned (closed, still sending), or an accepted child not yet
    /// `accept()`ed. The owner may appear later, so nothing is cached.
    Detached,
    /// A kernel socket (no file): no process can ever own it.
    Kernel,
    /// A userspace socket (a file exists; some process holds or held a descriptor for it).
    User,
}

/// Socket facts fetched on a known-socket-cache miss.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SockInfo {
    /// Socket inode (0 if none).
    pub inode: u64,
    /// What backs the socket.
    pub kind: SockKind,
}

/// Why a process's executable could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExeError {
    /// No such process, or (for the sender) the current task does not hold the socket / is not a
    /// user process.
    NoTask,
    /// The process exists but has no executable right now (exiting, kernel thread).
    NoExe(TaskId),
    /// The executable path is longer than 255 bytes (flag `longpath`).
    TooLong(TaskId),
    /// The executable has no verified path in the initial mount namespace and root (a file only
    /// a private mount namespace has, such as a bind mount over an allowed path): flag `nspath`.
    /// The path the process itself sees must never be used for it.
    NoHostPath(TaskId),
    /// Not known yet in this context: the path the process sees may not be its path in the
    /// initial mount namespace and root (a private mount namespace, a chroot), and verifying it
    /// needs a lookup this context may not do (the kernel hook cannot sleep). The packet path
    /// defers the socket; the deferred work asks again where the host can verify.
    Unverified(TaskId),
}

/// A socket the packet path could not identify in its context, handed to the host's deferred work
/// ([`Host::defer`]), which calls [`Engine::identify_deferred`](crate::Engine::identify_deferred).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Deferred {
    /// Known-socket cache key (kernel: socket cookie).
    pub key: SocketKey,
    /// Socket inode.
    pub inode: u64,
    /// Socket uid.
    pub uid: u32,
}

/// One packet as the hook sees it. `S` is the host's socket handle ([`Host::Sock`]).
#[derive(Debug, Clone, Copy)]
pub struct Packet<S> {
    /// The full socket, if any (none: no socket, or a time-wait/request socket).
    pub sk: Option<S>,
    /// IP protocol number (IPv6: after extension headers).
    pub proto: u32,
    /// Socket uid.
    pub uid: u32,
    /// Address family.
    pub family: crate::decide::Family,
    /// The network header could not be read (`fail` applies).
    pub malformed: bool,
    /// Where the packet goes (qualified rules); [`Peer::UNKNOWN`] from hosts that do not report it.
    pub peer: Peer,
    /// Process context where the host may take task locks and the current task is the sender
    /// (kernel: `e7_may_lock_tasks()`; userspace: always). Otherwise only lock-free host calls are
    /// made and a miss is deferred.
    pub in_task: bool,
}

/// A packet's destination as the host reports it, for rules with `to` and `port`.
///
/// Any packet's verdict may be cached on its socket: the cache keeps, beside the verdict, the
/// destination it was decided for ([`DestKey`](crate::DestKey)), and answers only packets to that
/// destination. So a connected socket's packets hit, and a socket that sends anywhere (unconnected
/// UDP, raw) gets each packet decided for its own destination, with no flag for the host to get
/// wrong. The one exception is a routed packet ([`Peer::routed`]), never cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Peer {
    /// Destination address (an IPv4-mapped IPv6 one is matched as IPv4).
    pub dst: Option<crate::qualified::Addr>,
    /// Destination port (tcp, udp, udplite, sctp).
    pub dport: Option<u16>,
    /// The packet names a route (an IPv6 routing header, an IPv4 loose or strict source route):
    /// [`Peer::dst`] is only its first hop. Such a packet is decided for every address it names
    /// ([`Host::route_hop`]) and its verdict is never answered from, nor stored in, the socket
    /// cache. A host that sets it must answer [`Host::route_hop`]: the default answers
    /// [`RouteHop::Unreadable`], so a routed packet from a host that cannot name its route is
    /// decided as malformed (the `fail` action), never for its first hop alone.
    pub routed: bool,
}

impl Peer {
    /// Nothing reported: no `to`/`port` rule matches (hosts that do not read destinations, and the
    /// kernel while no rule depends on one).
    pub const UNKNOWN: Peer = Peer {
        dst: None,
        dport: None,
        routed: false,
    };
}

/// The most addresses one packet's route can name: an IPv6 routing header is at most
/// (255 + 1) × 8 = 2,048 bytes, 8 of them its fixed part, so it holds at most 2,040 / 16 = 127
/// addresses (an IPv4 source route at most 9, in 40 bytes of options). A host reporting more is
/// treated as reporting an unreadable route.
pub const ROUTE_ADDRS_MAX: usize = 127;

/// One answer of [`Host::route_hop`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteHop {
    /// The address at this index.
    Addr(crate::qualified::Addr),
    /// No address at this index: the route named fewer.
    End,
    /// The route cannot be read (truncated, or a routing header type whose addresses the host
    /// does not know how to read): the packet is decided as malformed (the `fail` action).
    Unreadable,
}

/// A counter the packet path bumps ([`Host::count`]): `qpackets` and the [`PathStats`] fields.
///
/// [`PathStats`]: crate::PathStats
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stat {
    /// A packet decided while mode was not disabled (the `qpackets` flag).
    Packets,
    /// [`PathStats::hits`](crate::PathStats::hits).
    Hits,
    /// [`PathStats::task_resolved`](crate::PathStats::task_resolved).
    TaskResolved,
    /// [`PathStats::image_resolved`](crate::PathStats::image_resolved).
    ImageResolved,
    /// [`PathStats::deferred`](crate::PathStats::deferred).
    Deferred,
    /// [`PathStats::resent`](crate::PathStats::resent).
    Resent,
    /// [`PathStats::refilled`](crate::PathStats::refilled).
    Refilled,
}

impl Stat {
    /// Every counter, in index order ([`Stat::index`]).
    pub const ALL: [Stat; 7] = [
        Stat::Packets,
        Stat::Hits,
        Stat::TaskResolved,
        Stat::ImageResolved,
        Stat::Deferred,
        Stat::Resent,
        Stat::Refilled,
    ];
    /// How many counters there are.
    pub const COUNT: usize = Stat::ALL.len();

    /// Dense index `0..COUNT` (a host's per-CPU array slot).
    pub const fn index(self) -> usize {
        self as usize
    }
}

/// The services the packet path needs from its host (see the module docs).
///
/// Context rules: [`Host::sender_exe`] and [`Host::task_exe`] are only called for packets with
/// [`Packet::in_task`] set or from deferred work; [`Host::for_each_socket`] and
/// [`Host::collect_sockets`] only from deferred work, or for such packets when
/// [`Host::walk_inline`] says so, and never with an engine lock held; every other method may be
/// called in any context (kernel: softirq) and must be lock-free and bounded.
pub trait Host {
    /// A handle to the packet's full socket, valid for one hook call (`'s`).
    type Sock<'s>: Copy;

    /// Monotonic milliseconds.
    fn now_ms(&self) -> u64;
    /// Monotonic whole seconds, for the squelch's once-per-second window; called per no-rule
    /// packet, so a host should answer from a coarse clock it keeps anyway (the kernel: the
    /// timekeeper's seconds, one load) rather than read a clock and divide.
    fn now_secs(&self) -> u64 {
        self.now_ms() / 1000
    }
    /// Counts one `stat` in the host's own (e.g. per-CPU) counters and returns true; the default
    /// returns false and the engine counts in its shared atomics ([`PathStats`], the `qpackets`
    /// flag) instead. A host that counts must also answer reads of them (the kernel module sums
    /// its per-CPU counters when `qpackets` is read).
    ///
    /// [`PathStats`]: crate::PathStats
    fn count(&self, stat: Stat) -> bool {
        let _ = stat;
        false
    }
    /// The socket's cache key: unique for the socket's life, never reused (kernel: the cookie).
    fn sock_key(&self, sk: Self::Sock<'_>) -> SocketKey;
    /// The socket's inode and backing.
    fn sock_info(&self, sk: Self::Sock<'_>) -> SockInfo;
    /// Lock-free, any context: the process image of the current task (in softirq: the interrupted
    /// one) if it holds a descriptor for `sk`.
    fn sender_holds(&self, sk: Self::Sock<'_>) -> Option<TaskId>;
    /// Lock-free; only called for packets with [`Packet::in_task`]: the process image of the task
    /// sending `sk`'s packet — in the kernel the current task, whether or not any descriptor
    /// table holds the socket (an io_uring registered file, a socket passed on and closed), as
    /// long as it is a user process (io_uring's io-wq workers are threads of their process).
    /// `None` for kernel threads and exiting tasks: the owner is then looked up instead.
    fn sender(&self, sk: Self::Sock<'_>) -> Option<TaskId>;
    /// Task context only: the executable path of the task [`Host::sender`] names into `out`, and
    /// its process image. The path is the executable's path in the initial mount namespace and
    /// root, verified to name the file that runs ([`ExeError::NoHostPath`] if it has none,
    /// [`ExeError::Unverified`] if this context cannot tell), never merely the path the process
    /// sees.
    fn sender_exe(&self, sk: Self::Sock<'_>, out: &mut ExePath) -> Result<TaskId, ExeError>;
    /// Task context only: the executable path of process `tgid` into `out` (verified as for
    /// [`Host::sender_exe`]; from deferred work the host must be able to verify it).
    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError>;
    /// Task context only: every (socket inode, owner) pair of every process; `f` may stop early.
    fn for_each_socket(&self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>);
    /// One chunk of a process-table walk: the pairs from `from` on into `out` (at most
    /// `out.len()`), and where to resume ([`crate::active`] explains chunks, slices and cycles).
    /// Called with **no engine lock held**, from deferred work or (when
    /// [`Host::walk_inline`]) the packet path in task context. The default runs
    /// [`Host::for_each_socket`] and counts entries; a host that can resume cheaply (the kernel:
    /// by process id and descriptor number) overrides it, and bounds the work of one call.
    fn collect_sockets(&self, from: WalkCursor, out: &mut [SocketOwner]) -> Chunk {
        crate::active::collect_by_ordinal(from, out, |f| self.for_each_socket(f))
    }
    /// Whether the packet path may walk the process table itself, in task context, when the
    /// sender is no user process (default: yes — userspace, where nothing runs in softirq). The
    /// kernel module says no: its hook runs under RCU and must stay short, so such a socket is
    /// deferred ([`Host::defer`]) to work that walks in bounded, preemptible slices
    /// ([`Engine::identify_deferred_batch`](crate::Engine::identify_deferred_batch)).
    fn walk_inline(&self) -> bool {
        true
    }
    /// Monotonic nanoseconds, for the walk's lock-hold statistics (default: [`Host::now_ms`]
    /// scaled, which only shows sections of a millisecond or more).
    fn now_ns(&self) -> u64 {
        self.now_ms().saturating_mul(1_000_000)
    }
    /// Any context, bounded, only for a packet with [`Peer::routed`]: the `index`-th address its
    /// route names beyond the IP destination, in header order (IPv6: every segment or address of
    /// each routing header, the final destination included; IPv4: every address slot of a loose
    /// or strict source route option). Called with `index` 0, 1, … until it answers
    /// [`RouteHop::End`]; at most [`ROUTE_ADDRS_MAX`] + 1 times per packet. The default, for hosts
    /// that never report a routed packet, fails closed: [`RouteHop::Unreadable`] (a host that sets
    /// [`Peer::routed`] and forgets this method gets its routed packets decided as malformed, not
    /// let through for their first hop).
    fn route_hop(&self, index: usize) -> RouteHop {
        let _ = index;
        RouteHop::Unreadable
    }
    /// Any context: queue `s` for deferred identification (bounded; dropping it is allowed — its
    /// next packet tries again).
    fn defer(&self, s: Deferred);
    /// Whether anybody receives events (none: no squelch slot is spent, no event is returned).
    fn wants_events(&self) -> bool;
}
