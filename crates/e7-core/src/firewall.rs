//! A ready, thread-safe firewall object for userspace embedders (feature `std`).
//!
//! Why: the kernel module wires [`Engine`] to its own locks, hooks and netlink; an embedder (a test
//! harness, a userspace proxy, the benches) wants the same decisions behind a plain `&self` API. This
//! wraps an [`Engine`] on `parking_lot` read/write locks, reads the clock itself, resolves executables
//! through `/proc` ([`ProcHost`]) and copies event paths out for the caller. The
//! decision itself is [`Engine::decide_packet`], the same function the kernel module runs.

use core::ops::ControlFlow;
use std::boxed::Box;
use std::fmt;
use std::format;
use std::string::ToString;
use std::time::Instant;

use crate::active::{Chunk, ChunkEnd, ProcessTable, SocketOwner, WalkCursor};
use crate::decide::{Decision, EventKind};
use crate::flags::Action;
use crate::host::{Deferred, ExeError, Host, Packet, RouteHop, SockInfo, SockKind, TaskId};
use crate::path::{strip_deleted, ExePath, PathError, MAX_PATH_LEN};
use crate::procfs::ProcFsTable;
use crate::qualified::Addr;
use crate::rules::{AddOutcome, Rule, RuleError};
use crate::schema::{Flag, ValueError};
use crate::socket::SocketKey;
use crate::sync::Engine;

/// The engine type used by [`Firewall`]: default capacities on parking_lot locks.
pub type StdEngine = Engine<parking_lot::RawRwLock>;

/// A socket as a userspace embedder describes it to [`Firewall::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdSock {
    /// Cache key (the socket inode will do when there are no cookies).
    pub key: SocketKey,
    /// Socket inode (0: a socket without a file, i.e. a kernel socket).
    pub inode: u64,
    /// The process the embedder knows is sending on this socket, if any (a cheap first answer that
    /// avoids a `/proc` walk).
    pub sender: Option<u32>,
}

/// The userspace [`Host`]: executables through `/proc/<tgid>/exe` (the `" (deleted)"` suffix is
/// stripped), owners through a [`ProcessTable`] walk (default: `/proc/*/fd`). Userspace has no
/// softirq: every packet is in task context, nothing is deferred.
pub struct ProcHost<'r, T: ProcessTable = ProcFsTable> {
    start: Instant,
    table: std::cell::RefCell<T>,
    /// The route of the one routed packet this host decides ([`ProcHost::with_route`]); `None`:
    /// a routed packet's route is unknown, so it is unreadable (decided as malformed).
    route: Option<&'r [Addr]>,
}

impl<T: ProcessTable> ProcHost<'static, T> {
    /// A host walking `table`, with its clock starting at `start`, for packets that name no route
    /// (a routed one is decided as malformed: see [`ProcHost::with_route`]).
    pub fn new(start: Instant, table: T) -> Self {
        ProcHost {
            start,
            table: std::cell::RefCell::new(table),
            route: None,
        }
    }
}

impl<'r, T: ProcessTable> ProcHost<'r, T> {
    /// The same host, answering [`Host::route_hop`] for one routed packet ([`Peer::routed`]) from
    /// `route`: the addresses its route names beyond its IP destination, in header order (the
    /// embedder read them from the packet's routing header or source route option).
    ///
    /// [`Peer::routed`]: crate::Peer::routed
    pub fn with_route<'s>(self, route: &'s [Addr]) -> ProcHost<'s, T> {
        ProcHost {
            start: self.start,
            table: self.table,
            route: Some(route),
        }
    }
}

/// Reads `/proc/<tgid>/exe` into `out`, verified: the path must name, in this process's own mount
/// namespace and root (the embedder's "initial" one) and with no symbolic link on the way, the very
/// file that runs (same device and inode). A program bind-mounted over an allowed path in a private
/// mount namespace, or run from a chroot, is seen by its own process at a path that here names
/// another file or none: [`ExeError::NoHostPath`]. A deleted executable keeps its stripped path
/// unverified (the file is gone; the kernel module verifies its directory instead).
fn proc_exe(tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
    let task = TaskId::tgid_only(tgid);
    let link = format!("/proc/{tgid}/exe");
    let target = std::fs::read_link(&link).map_err(|_| ExeError::NoTask)?;
    let raw = target.as_os_str().as_encoded_bytes();
    let bytes = strip_deleted(raw);
    if bytes.len() > MAX_PATH_LEN {
        return Err(ExeError::TooLong(task));
    }
    if bytes.len() == raw.len() && !same_file_here(&link, &target) {
        return Err(ExeError::NoHostPath(task));
    }
    match out.set(bytes) {
        Ok(()) => Ok(task),
        Err(PathError::TooLong { .. }) => Err(ExeError::TooLong(task)),
        Err(_) => Err(ExeError::NoExe(task)),
    }
}

/// Does `path`, with no symbolic link in it, name the file `/proc/<tgid>/exe` (`link`) runs?
#[cfg(unix)]
fn same_file_here(link: &str, path: &std::path::Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(running), Ok(named), Ok(canonical)) = (
        std::fs::metadata(link),
        std::fs::symlink_metadata(path),
        std::fs::canonicalize(path),
    ) else {
        return false;
    };
    canonical == path && running.dev() == named.dev() && running.ino() == named.ino()
}

#[cfg(not(unix))]
fn same_file_here(_link: &str, _path: &std::path::Path) -> bool {
    true
}

impl<T: ProcessTable> Host for ProcHost<'_, T> {
    type Sock<'s> = &'s StdSock;

    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn sock_key(&self, sk: &StdSock) -> SocketKey {
        sk.key
    }

    fn sock_info(&self, sk: &StdSock) -> SockInfo {
        SockInfo {
            inode: sk.inode,
            kind: if sk.inode == 0 {
                SockKind::Kernel
            } else {
                SockKind::User
            },
        }
    }

    fn sender_holds(&self, _sk: &StdSock) -> Option<TaskId> {
        // Userspace cannot see exec generations cheaply: always read the executable.
        None
    }

    fn sender(&self, sk: &StdSock) -> Option<TaskId> {
        // The program image as the executable's device and inode: an exec of another program
        // changes it, so a cached verdict is not reused for it.
        use std::os::unix::fs::MetadataExt;
        let tgid = sk.sender?;
        let m = std::fs::metadata(format!("/proc/{tgid}/exe")).ok()?;
        Some(TaskId {
            start_ns: m.dev(),
            exec_id: m.ino(),
            tgid,
            pad: 0,
        })
    }

    fn sender_exe(&self, sk: &StdSock, out: &mut ExePath) -> Result<TaskId, ExeError> {
        let task = self.sender(sk).ok_or(ExeError::NoTask)?;
        proc_exe(task.tgid, out).map(|_| task)
    }

    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        proc_exe(tgid, out)
    }

    fn for_each_socket(&self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        if let Ok(mut t) = self.table.try_borrow_mut() {
            t.for_each_socket(f);
        }
    }

    fn collect_sockets(&self, from: WalkCursor, out: &mut [SocketOwner]) -> Chunk {
        match self.table.try_borrow_mut() {
            Ok(mut t) => t.collect(from, out),
            Err(_) => Chunk {
                len: 0,
                end: ChunkEnd::Refused,
            },
        }
    }

    fn route_hop(&self, index: usize) -> RouteHop {
        match self.route {
            Some(route) => route
                .get(index)
                .map_or(RouteHop::End, |&a| RouteHop::Addr(a)),
            None => RouteHop::Unreadable,
        }
    }

    fn defer(&self, _s: Deferred) {}

    fn wants_events(&self) -> bool {
        true
    }
}

/// Why a [`Firewall`] rule edit failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FirewallError {
    /// The rule itself is invalid.
    Rule(RuleError),
    /// The qualified rule is invalid.
    Qualified(crate::qualified::QualRuleError),
    /// The rule table is full.
    Full {
        /// The table's capacity.
        capacity: usize,
    },
}

impl fmt::Display for FirewallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FirewallError::Rule(e) => e.fmt(f),
            FirewallError::Qualified(e) => e.fmt(f),
            FirewallError::Full { capacity } => write!(
                f,
                "rule table is full ({capacity} rules, whose paths average at most {} bytes): \
                 remove a rule before adding another",
                crate::PATH_BYTES_PER_RULE
            ),
        }
    }
}

impl std::error::Error for FirewallError {}

/// An event with its path copied out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirewallEvent {
    /// pending / allow / block.
    pub kind: EventKind,
    /// The packet's protocol.
    pub proto: u32,
    /// The executable.
    pub path: ExePath,
}

/// A thread-safe firewall engine with default capacities (see the module docs).
pub struct Firewall {
    engine: Box<StdEngine>,
    start: Instant,
}

impl Default for Firewall {
    fn default() -> Self {
        Self::new()
    }
}

impl Firewall {
    /// A fresh firewall: mode disabled, no rules.
    pub fn new() -> Self {
        // Evaluated at compile time, so the only stack copy is the one `Box::new` moves from (debug
        // builds would otherwise stack several ~420 KiB temporaries and overflow a 2 MiB thread stack).
        #[allow(
            clippy::declare_interior_mutable_const,
            reason = "a fresh copy per use is exactly what is wanted"
        )]
        const FRESH: StdEngine = Engine::new();
        let engine = Box::new(FRESH);
        // A per-firewall secret for the IPv6 destination hash, from the standard library's
        // randomly keyed hasher (seeded from the OS).
        let secret = [0u64, 1].map(|i| {
            use std::hash::{BuildHasher, Hasher};
            let mut h = std::collections::hash_map::RandomState::new().build_hasher();
            h.write_u64(i);
            h.finish()
        });
        engine.set_destination_secret(secret);
        Firewall {
            engine,
            start: Instant::now(),
        }
    }

    /// The underlying engine.
    pub fn engine(&self) -> &StdEngine {
        &self.engine
    }

    /// Milliseconds since creation (the clock given to the caches).
    pub fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    /// Validated SET of a flag.
    pub fn set(&self, flag: Flag, value: u32) -> Result<(), ValueError> {
        self.engine.flags.set(flag, value)
    }

    /// GET of a flag (`uptime` is computed).
    pub fn get(&self, flag: Flag) -> u32 {
        if flag == Flag::Uptime {
            let secs = u32::try_from(self.start.elapsed().as_secs()).unwrap_or(u32::MAX);
            self.engine.flags.set_stat(Flag::Uptime, secs);
        }
        self.engine.flags.get(flag)
    }

    /// Adds a rule (validated).
    pub fn add_rule(
        &self,
        proto: u32,
        path: &str,
        action: Action,
    ) -> Result<AddOutcome, FirewallError> {
        let rule = Rule::new(proto, path.as_bytes(), action).map_err(FirewallError::Rule)?;
        self.engine.edit_rules(|r| {
            let capacity = r.capacity();
            r.add(rule).map_err(|_| FirewallError::Full { capacity })
        })
    }

    /// Adds a rule with qualifiers (`to`, `port`, `user`); an unqualified one goes to the ring as
    /// [`Firewall::add_rule`] would.
    pub fn add_qualified_rule(
        &self,
        proto: u32,
        path: &str,
        qual: crate::qualified::Qualifiers,
        action: Action,
    ) -> Result<AddOutcome, FirewallError> {
        if qual.is_none() {
            return self.add_rule(proto, path, action);
        }
        let rule = crate::qualified::QualRule::new(proto, path.as_bytes(), qual, action)
            .map_err(FirewallError::Qualified)?;
        self.engine.edit_qualified(|t| {
            let capacity = t.capacity();
            t.add(rule).map_err(|_| FirewallError::Full { capacity })
        })
    }

    /// Removes the rule (proto, path).
    pub fn remove_rule(&self, proto: u32, path: &str) -> bool {
        self.engine.edit_rules(|r| r.remove(proto, path.as_bytes()))
    }

    /// Removes every rule; returns how many.
    pub fn clear_rules(&self) -> usize {
        self.engine.edit_qualified(|t| t.clear()) + self.engine.edit_rules(|r| r.clear())
    }

    /// Removes every rule with `action`; returns how many.
    pub fn clear_action(&self, action: Action) -> usize {
        self.engine.edit_qualified(|t| t.clear_action(action))
            + self.engine.edit_rules(|r| r.clear_action(action))
    }

    /// The rules in order, as (proto, path, action).
    pub fn rules(&self) -> std::vec::Vec<(u32, std::string::String, Action)> {
        self.engine
            .rules
            .read()
            .iter()
            .map(|r| (r.proto(), r.path().to_string(), r.action()))
            .collect()
    }

    /// Decides a packet, resolving owners through `/proc`. A packet that names a route
    /// ([`Peer::routed`](crate::Peer::routed)) needs [`Firewall::decide_routed`]: here it is
    /// decided as malformed (the `fail` action).
    pub fn decide(&self, pkt: &Packet<&StdSock>) -> (Decision, Option<FirewallEvent>) {
        self.decide_with(&ProcHost::new(self.start, ProcFsTable::new()), pkt)
    }

    /// Decides a packet that names a route (an IPv6 routing header, an IPv4 loose or strict source
    /// route: set [`Peer::routed`](crate::Peer::routed)), given `route`, the addresses it names
    /// beyond its IP destination in header order, the final destination included. The packet is
    /// decided for each of them as for its IP destination; the first refusal is its decision.
    /// More than [`ROUTE_ADDRS_MAX`](crate::ROUTE_ADDRS_MAX) addresses is an unreadable route.
    pub fn decide_routed(
        &self,
        pkt: &Packet<&StdSock>,
        route: &[Addr],
    ) -> (Decision, Option<FirewallEvent>) {
        let host = ProcHost::new(self.start, ProcFsTable::new()).with_route(route);
        self.decide_with(&host, pkt)
    }

    /// Decides a packet with an explicit host (tests: a fake one) — the same packet path as the
    /// kernel module's.
    pub fn decide_with<'s, H: Host>(
        &self,
        host: &H,
        pkt: &Packet<H::Sock<'s>>,
    ) -> (Decision, Option<FirewallEvent>) {
        let out = self.engine.decide_packet(host, pkt);
        let event = out.event.and_then(|e| {
            let mut path = ExePath::EMPTY;
            self.engine
                .exe_path(e.exe, &mut path)
                .then_some(FirewallEvent {
                    kind: e.kind,
                    proto: e.proto,
                    path,
                })
        });
        (out.decision, event)
    }
}
