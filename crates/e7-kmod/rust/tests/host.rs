//! Host tests of the module logic against a fake kernel: the packet paths (hit, task-context miss,
//! softirq miss + refill work), verdict reuse and invalidation, events and subscribers, every
//! request branch, both QUERY shapes, module parameters.
#![forbid(unsafe_code)]

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet};
use std::string::{String, ToString};
use std::sync::atomic::Ordering::Relaxed;
use std::vec::Vec;
use std::{boxed::Box, format, vec};

use core::fmt;

use e7_core::{
    Chunk, ChunkEnd, ExeError, ExePath, Family, Packet, SockInfo, SockKind, SocketKey, SocketOwner,
    TaskId, Verdict, WalkCursor,
};
use e7_proto::msg::{emit_request, parse_reply, ClearSpec, Reply, Request, RuleSpec};
use e7_proto::nla::{WriteError, Writer};
use e7_proto::{Action, Command, Const, EventState, Flag, Mode};

use e7_rust::abi::{E7Dest, E7Exe, E7ProgSum};
use e7_rust::control::Handled;
use e7_rust::kernel::{Kernel, Level, SendError};
use e7_rust::state::Module;

/// The fake kernel's socket handle (the real one, `ffi::SockRef<'hook>`, only the hook can make).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct SockRef(usize);

type PacketIn = Packet<SockRef>;

/// The module with locks that record their holders: the fake kernel fails any may-sleep call
/// made under one (`context.rs`).
type M = Module<e7_rust::context::TrackedLock>;

/// Room the shim gives a QUERY message: NLMSG_GOODSIZE (3776 with 4 KiB pages) minus the netlink
/// and genl headers, so the skb is one page (e7_c_msg_new).
const ROOM: usize = 3776 - 16 - 4;
/// Room the shim gives every other message (E7_MSG_SMALL): an event with a 255-byte path or an
/// ERROR with a 255-byte text must fit.
const SMALL_ROOM: usize = 512;
use e7_rust::errno::{EAGAIN, ECONNREFUSED, EMSGSIZE, ENAMETOOLONG, ENOSPC, ESRCH};

#[derive(Clone)]
struct FakeSock {
    cookie: u64,
    ino: u64,
    kind: SockKind,
}

#[derive(Debug, Clone)]
struct Sent {
    cmd: Command,
    portid: u32,
    seq: u32,
    body: Vec<u8>,
}

#[derive(Default)]
struct Fake {
    now: Cell<u64>,
    socks: RefCell<HashMap<usize, FakeSock>>,
    /// tgid of the current task, and the socket inodes it holds.
    current: Cell<Option<u32>>,
    /// (socket inode, tgid) for process-table walks.
    fds: RefCell<Vec<(u64, u32)>>,
    /// tgid → executable path (Ok) or negative errno.
    exes: RefCell<HashMap<u32, Result<Vec<u8>, i32>>>,
    sent: RefCell<Vec<Sent>>,
    refusing: RefCell<HashSet<u32>>,
    /// Ports whose receive buffer is full (unicast fails with EAGAIN).
    full: RefCell<HashSet<u32>>,
    /// Ports whose receive buffer holds only this many messages: a unicast while that many are
    /// unread (in `sent`, which `take_sent` drains like a reader) overruns it (EAGAIN, counted).
    rcvbuf: RefCell<HashMap<u32, usize>>,
    /// Unicasts dropped by a full `rcvbuf` (the client would see ENOBUFS).
    overruns: Cell<u32>,
    kicked_events: Cell<u32>,
    kicked_refill: Cell<u32>,
    /// Walk cycles started (chunks collected from the start of the table).
    walks: Cell<u32>,
    /// Chunks collected.
    chunks: Cell<u32>,
    /// Pairs per chunk at most, like the shim's per-call budget (0: the caller's buffer only).
    chunk_budget: Cell<usize>,
    /// Milliseconds the fake clock advances per chunk (a slow walk).
    ms_per_chunk: Cell<u64>,
    owner_calls: Cell<u32>,
    info_calls: Cell<u32>,
    dpaths: Cell<u32>,
    /// tgid → what the refill work's path verification answers (0: verified, -18: no path in
    /// the initial mount namespace); the hook gets -11 (EAGAIN) for these tgids.
    needs_work: RefCell<HashMap<u32, i32>>,
    /// The refill work is running (see `work`).
    in_work: Cell<bool>,
    /// tgid → exec generation (default 1).
    execs: RefCell<HashMap<u32, u64>>,
    logs: RefCell<Vec<String>>,
    /// Per-program statistics as the shim keeps them (one CPU): slot → record of one id.
    progs: RefCell<HashMap<u16, (u64, E7ProgSum)>>,
    /// The length of the packets the test sends (the hook's `skb->len`).
    pkt_len: Cell<u32>,
    /// What the packet's route names beyond its IP destination (`packet_route`).
    route: RefCell<Vec<e7_core::RouteHop>>,
}

impl Fake {
    fn new() -> Self {
        let f = Fake::default();
        f.now.set(1_000_000);
        f
    }

    fn sock(&self, handle: usize, cookie: u64, ino: u64, kind: SockKind) -> SockRef {
        self.socks
            .borrow_mut()
            .insert(handle, FakeSock { cookie, ino, kind });
        SockRef(handle)
    }

    fn process(&self, tgid: u32, exe: &str, inodes: &[u64]) {
        self.exes
            .borrow_mut()
            .insert(tgid, Ok(exe.as_bytes().to_vec()));
        for &i in inodes {
            self.fds.borrow_mut().push((i, tgid));
        }
    }

    fn advance(&self, ms: u64) {
        self.now.set(self.now.get() + ms);
    }

    fn take_sent(&self) -> Vec<Sent> {
        std::mem::take(&mut *self.sent.borrow_mut())
    }

    fn task_id(&self, tgid: u32) -> TaskId {
        TaskId {
            start_ns: u64::from(tgid) * 1000,
            exec_id: self.execs.borrow().get(&tgid).copied().unwrap_or(1),
            tgid,
            pad: 0,
        }
    }

    fn fill_exe(&self, tgid: u32, out: &mut E7Exe) {
        self.dpaths.set(self.dpaths.get() + 1);
        out.task = self.task_id(tgid);
        out.len = 0;
        if let Some(&verified) = self.needs_work.borrow().get(&tgid) {
            if !self.in_work.get() {
                out.status = -11;
                return;
            }
            if verified != 0 {
                out.status = verified;
                return;
            }
        }
        match self.exes.borrow().get(&tgid) {
            Some(Ok(p)) if p.len() < out.buf.len() => {
                out.buf[..p.len()].copy_from_slice(p);
                out.len = p.len() as u32;
                out.status = 0;
            }
            Some(Ok(_)) => out.status = -(ENAMETOOLONG as i32),
            Some(Err(e)) => out.status = *e,
            None => out.status = -(ESRCH as i32),
        }
    }
}

impl Kernel for Fake {
    type Sock<'s> = SockRef;

    fn now_ms(&self) -> u64 {
        self.now.get()
    }

    fn now_ns(&self) -> u64 {
        self.now.get() * 1_000_000
    }

    fn log(&self, _level: Level, args: fmt::Arguments<'_>) {
        self.logs.borrow_mut().push(args.to_string());
    }

    fn packet_route(&self, index: usize) -> e7_core::RouteHop {
        self.route
            .borrow()
            .get(index)
            .copied()
            .unwrap_or(e7_core::RouteHop::End)
    }

    /// The shim's per-program count (`e7_prog_count`, from `e7_hook`'s result) on one CPU: a record counts one id; a newer generation of
    /// the slot resets it, an older one is not counted.
    fn prog_count(&self, exe: e7_core::ExeId, bits: u8, proto: u32) {
        let id = exe.to_u64();
        let now = self.now.get() / 1000;
        let mut progs = self.progs.borrow_mut();
        let (rec_id, rec) = progs.entry(exe.slot()).or_insert((0, E7ProgSum::default()));
        if *rec_id != id {
            if *rec_id > id {
                return;
            }
            *rec_id = id;
            *rec = E7ProgSum {
                first: now,
                ..E7ProgSum::default()
            };
        }
        let v = usize::from(bits & 1);
        rec.packets[v] += 1;
        rec.bytes[v] += u64::from(self.pkt_len.get());
        rec.last = now;
        rec.info = u32::from(bits) | (proto << 8);
    }

    /// The shim's `e7_c_prog_read`: times as seconds ago.
    fn prog_read(&self, exe: e7_core::ExeId) -> Option<E7ProgSum> {
        let now = self.now.get() / 1000;
        match self.progs.borrow().get(&exe.slot()) {
            Some((id, rec)) if *id == exe.to_u64() => Some(E7ProgSum {
                first: now - rec.first,
                last: now - rec.last,
                ..*rec
            }),
            _ => None,
        }
    }

    fn sk_cookie(&self, sk: SockRef) -> SocketKey {
        SocketKey(self.socks.borrow()[&sk.0].cookie)
    }

    fn sk_info(&self, sk: SockRef) -> SockInfo {
        self.info_calls.set(self.info_calls.get() + 1);
        let s = &self.socks.borrow()[&sk.0];
        SockInfo {
            inode: s.ino,
            kind: s.kind,
        }
    }

    fn current_task(&self) -> Option<TaskId> {
        self.current.get().map(|t| self.task_id(t))
    }

    fn current_exe(&self, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.owner_calls.set(self.owner_calls.get() + 1);
        let tgid = self.current.get().ok_or(ExeError::NoTask)?;
        let mut exe = E7Exe::new();
        self.fill_exe(tgid, &mut exe);
        exe.result(out)
    }

    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        let mut exe = E7Exe::new();
        self.fill_exe(tgid, &mut exe);
        exe.result(out)
    }

    fn current_holds(&self, sk: SockRef) -> Option<TaskId> {
        let ino = self.socks.borrow()[&sk.0].ino;
        let tgid = self.current.get()?;
        if !self
            .fds
            .borrow()
            .iter()
            .any(|&(i, t)| i == ino && t == tgid)
        {
            return None;
        }
        Some(self.task_id(tgid))
    }

    /// The shim's chunked walk over `fds` (the cursor is an index): like the shim, it refuses
    /// unless called with no module lock held and bottom halves on (the context tracker), so a
    /// walk under a lock or with BH off fails the test.
    fn collect_sockets(&self, from: WalkCursor, out: &mut [SocketOwner]) -> Chunk {
        assert!(
            e7_rust::context::held() == 0 && !e7_rust::context::bh_off(),
            "the process walk ran with {} module lock(s) held, bottom halves {}",
            e7_rust::context::held(),
            if e7_rust::context::bh_off() {
                "off"
            } else {
                "on"
            }
        );
        if from == WalkCursor::START {
            self.walks.set(self.walks.get() + 1);
        }
        self.chunks.set(self.chunks.get() + 1);
        self.advance(self.ms_per_chunk.get());
        let fds = self.fds.borrow();
        let start = from.0 as usize;
        let budget = match self.chunk_budget.get() {
            0 => out.len(),
            b => b.min(out.len()),
        };
        let rest = fds.get(start..).unwrap_or(&[]);
        let n = rest.len().min(budget);
        for (slot, &(inode, tgid)) in out.iter_mut().zip(rest.iter().take(n)) {
            *slot = SocketOwner { inode, tgid };
        }
        Chunk {
            len: n,
            end: if start + n >= fds.len() {
                ChunkEnd::Done
            } else {
                ChunkEnd::More(WalkCursor((start + n) as u64))
            },
        }
    }

    fn kick_events(&self) {
        self.kicked_events.set(self.kicked_events.get() + 1);
    }

    fn kick_refill(&self, _delay_ms: u32) {
        self.kicked_refill.set(self.kicked_refill.get() + 1);
    }

    fn send(
        &self,
        cmd: Command,
        dest: E7Dest,
        portid: u32,
        fill: &mut dyn FnMut(&mut Writer<'_>) -> Result<(), WriteError>,
    ) -> Result<(), SendError> {
        // genlmsg_new(GFP_KERNEL) and the unicast: may sleep.
        e7_rust::context::may_sleep("send (genlmsg_new)");
        let room = if cmd == Command::Query {
            ROOM
        } else {
            SMALL_ROOM
        };
        let mut buf = vec![0u8; room];
        let mut w = Writer::new(&mut buf);
        fill(&mut w).map_err(SendError::Encode)?;
        e7_rust::context::may_sleep("send (genlmsg_unicast)");
        let n = w.len();
        if self.refusing.borrow().contains(&portid) {
            return Err(SendError::Errno(ECONNREFUSED));
        }
        if self.full.borrow().contains(&portid) {
            return Err(SendError::Errno(EAGAIN));
        }
        if let Some(&holds) = self.rcvbuf.borrow().get(&portid) {
            let unread = self
                .sent
                .borrow()
                .iter()
                .filter(|s| s.portid == portid)
                .count();
            if unread >= holds {
                self.overruns.set(self.overruns.get() + 1);
                return Err(SendError::Errno(EAGAIN));
            }
        }
        self.sent.borrow_mut().push(Sent {
            cmd,
            portid,
            seq: dest.seq,
            body: buf[..n].to_vec(),
        });
        Ok(())
    }
}

fn module() -> Box<M> {
    Box::new(M::new())
}

fn pkt(sk: Option<SockRef>, proto: u32, in_task: bool) -> PacketIn {
    PacketIn {
        peer: e7_core::Peer::UNKNOWN,
        sk,
        proto,
        uid: 1000,
        family: Family::Ipv4,
        malformed: false,
        in_task,
    }
}

/// Sends a request the way a client would (emitted by e7-proto), as `port`; the client has
/// CAP_NET_ADMIN exactly when the command needs it (the genl core refuses it otherwise).
fn request(m: &M, k: &Fake, req: &Request<'_>, port: u32) -> Result<(), e7_rust::control::Refusal> {
    request_as(m, k, req, port, req.command().admin())
}

/// [`request`] with the sender's CAP_NET_ADMIN given explicitly.
fn request_as(
    m: &M,
    k: &Fake,
    req: &Request<'_>,
    port: u32,
    admin: bool,
) -> Result<(), e7_rust::control::Refusal> {
    let mut buf = vec![0u8; 1024];
    let mut w = Writer::new(&mut buf);
    emit_request(&mut w, req).unwrap();
    let n = w.len();
    let dest = E7Dest {
        portid: port,
        seq: 7,
    };
    match m.doit(k, req.command().value(), &buf[..n], dest, admin)? {
        Handled::Done => {}
        Handled::QueryChain => drive_chain(m, k, dest),
    }
    Ok(())
}

/// The kernel's dump machinery for a plain QUERY: one message per call of the continuation (the
/// kernel makes each when the reader drained its buffer; here at once, with the shim's room),
/// until it reports completion.
fn drive_chain(m: &M, k: &Fake, dest: E7Dest) {
    let mut cursor = [0u64; 2];
    let mut gen = 0;
    for _ in 0..=2048 {
        e7_rust::context::may_sleep("the dump continuation (netlink_dump allocates the skb)");
        let mut buf = vec![0u8; ROOM];
        let n = m.chain_query(&mut buf, &mut cursor, &mut gen).unwrap();
        if n == 0 {
            return;
        }
        k.sent.borrow_mut().push(Sent {
            cmd: Command::Query,
            portid: dest.portid,
            seq: dest.seq,
            body: buf[..n].to_vec(),
        });
    }
    panic!("the QUERY chain never completed");
}

fn set(m: &M, k: &Fake, flag: Flag, value: Const) {
    request(
        m,
        k,
        &Request::Set {
            flag,
            value: value.value(),
        },
        1,
    )
    .unwrap();
}

fn rule<'a>(action: Action, prot: u32, path: &'a str) -> Request<'a> {
    Request::AddRule(RuleSpec { prot, path, action })
}

const TCP: u32 = 6;
const UDP: u32 = 17;

fn enabled() -> (Box<M>, Fake) {
    let m = module();
    let k = Fake::new();
    m.init(&k);
    set(&m, &k, Flag::Mode, Const::Enabled);
    set(&m, &k, Flag::RChngQ, Const::Disabled);
    k.take_sent();
    (m, k)
}

// ---- packet path --------------------------------------------------------------------------

#[test]
fn disabled_mode_accepts_without_looking_at_the_socket() {
    let m = module();
    let k = Fake::new();
    let sk = k.sock(1, 100, 5000, SockKind::User);
    m.engine.edit_rules(|r| {
        r.add(e7_core::Rule::new(TCP, b"/x", e7_core::Action::Block).unwrap())
            .is_ok()
    });
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, true)), Verdict::Accept);
    assert_eq!(k.info_calls.get() + k.owner_calls.get(), 0);
    assert_eq!(
        m.flag_value(&k, Flag::QPackets),
        0,
        "disabled packets are not counted"
    );
}

#[test]
fn block_mode_really_drops_everything() {
    let (m, k) = enabled();
    request(&m, &k, &Request::SetMode(Mode::Block), 1).unwrap();
    let sk = k.sock(1, 100, 5000, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, true)), Verdict::Drop);
    assert_eq!(m.packet(&k, &pkt(None, 1, false)), Verdict::Drop);
    assert_eq!(m.flag_value(&k, Flag::QPackets), 2);
}

#[test]
fn task_context_identifies_current_and_reuses_the_verdict() {
    let (m, k) = enabled();
    request(&m, &k, &rule(Action::Block, TCP, "/usr/bin/wget"), 1).unwrap();
    k.process(42, "/usr/bin/wget", &[5000]);
    k.current.set(Some(42));
    let sk = k.sock(1, 100, 5000, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, true)), Verdict::Drop);
    assert_eq!((k.owner_calls.get(), k.info_calls.get()), (1, 1));
    // Later packets, even from softirq after the owner is gone: the cached verdict.
    k.current.set(None);
    k.exes.borrow_mut().clear();
    for in_task in [false, true] {
        assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, in_task)), Verdict::Drop);
    }
    assert_eq!(
        (k.owner_calls.get(), k.info_calls.get()),
        (1, 1),
        "hits do no identification"
    );
    assert_eq!(
        m.engine
            .stats
            .hits
            .load(core::sync::atomic::Ordering::Relaxed),
        2
    );
    assert_eq!(k.walks.get(), 0);
}

#[test]
fn a_cached_verdict_is_bound_to_the_packet_protocol() {
    // A raw (IP_HDRINCL) socket can send any protocol: a TCP verdict must not answer UDP.
    let (m, k) = enabled();
    request(&m, &k, &rule(Action::Block, TCP, "/usr/bin/raw"), 1).unwrap();
    k.process(42, "/usr/bin/raw", &[5000]);
    k.current.set(Some(42));
    let sk = k.sock(1, 100, 5000, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, true)), Verdict::Drop);
    assert_eq!(m.packet(&k, &pkt(Some(sk), UDP, false)), Verdict::Accept);
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, false)), Verdict::Drop);
    assert_eq!(k.owner_calls.get(), 1, "identified once");
}

#[test]
fn rule_and_mode_changes_apply_to_open_sockets_at_the_next_packet() {
    let (m, k) = enabled();
    k.process(42, "/usr/bin/curl", &[5000]);
    k.current.set(Some(42));
    let sk = k.sock(1, 100, 5000, SockKind::User);
    assert_eq!(
        m.packet(&k, &pkt(Some(sk), TCP, true)),
        Verdict::Accept,
        "unkrule=allow"
    );
    request(
        &m,
        &k,
        &rule(Action::Block, Const::Any.value(), "/usr/bin/"),
        1,
    )
    .unwrap();
    assert_eq!(
        m.packet(&k, &pkt(Some(sk), TCP, false)),
        Verdict::Drop,
        "folder rule"
    );
    request(&m, &k, &rule(Action::Allow, TCP, "/usr/bin/curl"), 1).unwrap();
    assert_eq!(
        m.packet(&k, &pkt(Some(sk), TCP, false)),
        Verdict::Accept,
        "exact beats folder"
    );
    request(&m, &k, &Request::SetMode(Mode::Block), 1).unwrap();
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, false)), Verdict::Drop);
    request(&m, &k, &Request::SetMode(Mode::Enabled), 1).unwrap();
    set(&m, &k, Flag::UnkRule, Const::Block);
    request(
        &m,
        &k,
        &Request::Clear(ClearSpec::Rule {
            prot: TCP,
            path: "/usr/bin/curl",
        }),
        1,
    )
    .unwrap();
    request(&m, &k, &Request::Clear(ClearSpec::All), 1).unwrap();
    assert_eq!(
        m.packet(&k, &pkt(Some(sk), TCP, false)),
        Verdict::Drop,
        "unkrule=block"
    );
    assert_eq!(
        k.owner_calls.get(),
        1,
        "identified once; all later packets recomputed from cache"
    );
}

#[test]
fn softirq_miss_defers_to_one_refill_work_then_hits() {
    let (m, k) = enabled();
    // unkproc stays `allow`: a packet whose owner cannot be found right now is dropped anyway
    // (issue 7, hole #1), never let through as if unowned.
    request(&m, &k, &rule(Action::Allow, TCP, "/srv/server"), 1).unwrap();
    k.process(7, "/srv/server", &[9000, 9001]);
    let a = k.sock(1, 500, 9000, SockKind::User);
    let b = k.sock(2, 501, 9001, SockKind::User);
    // Softirq: never identify, never walk; dropped for now, one work item kicked.
    assert_eq!(m.packet(&k, &pkt(Some(a), TCP, false)), Verdict::Drop);
    assert_eq!(m.packet(&k, &pkt(Some(b), TCP, false)), Verdict::Drop);
    assert_eq!(m.packet(&k, &pkt(Some(a), TCP, false)), Verdict::Drop);
    assert_eq!((k.walks.get(), k.owner_calls.get()), (0, 0));
    assert_eq!(
        k.kicked_refill.get(),
        1,
        "one work item, not one per packet"
    );
    m.work_refill(&k);
    assert_eq!(k.walks.get(), 1, "one walk resolves both sockets");
    assert_eq!(m.packet(&k, &pkt(Some(a), TCP, false)), Verdict::Accept);
    assert_eq!(m.packet(&k, &pkt(Some(b), TCP, false)), Verdict::Accept);
}

#[test]
fn refill_respects_the_walk_rate_limit_and_retries() {
    let (m, k) = enabled();
    k.process(7, "/srv/a", &[9000]);
    let a = k.sock(1, 500, 9000, SockKind::User);
    m.packet(&k, &pkt(Some(a), TCP, false));
    m.work_refill(&k);
    assert_eq!(k.walks.get(), 1);
    // A new socket right after the walk: rate-limited, re-queued with a delayed kick.
    k.process(8, "/srv/b", &[9100]);
    let b = k.sock(2, 600, 9100, SockKind::User);
    m.packet(&k, &pkt(Some(b), TCP, false));
    let kicks = k.kicked_refill.get();
    m.work_refill(&k);
    assert_eq!(k.walks.get(), 1, "no second walk inside the interval");
    assert_eq!(k.kicked_refill.get(), kicks + 1, "retry scheduled");
    k.advance(100);
    m.work_refill(&k);
    assert_eq!(k.walks.get(), 2);
    assert!(m
        .engine
        .sockets
        .read()
        .peek(e7_core::SocketKey(600))
        .is_some());
}

#[test]
fn a_kernel_thread_sender_is_deferred_and_only_the_refill_work_walks() {
    // The hook never walks (it runs under RCU; a walk there would be one long atomic section):
    // a task-context packet whose sender is no user process is dropped and deferred.
    let (m, k) = enabled();
    request(&m, &k, &rule(Action::Block, UDP, "/opt/daemon"), 1).unwrap();
    request(&m, &k, &rule(Action::Allow, UDP, "/opt/good"), 1).unwrap();
    k.process(9, "/opt/daemon", &[777]);
    k.process(10, "/opt/good", &[778]);
    k.current.set(None); // a kernel thread (no user process) is current
    let bad = k.sock(1, 900, 777, SockKind::User);
    let good = k.sock(2, 901, 778, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(bad), UDP, true)), Verdict::Drop);
    assert_eq!(
        m.packet(&k, &pkt(Some(good), UDP, true)),
        Verdict::Drop,
        "deferred"
    );
    assert_eq!(k.walks.get(), 0, "no walk from the hook");
    assert_eq!(k.kicked_refill.get(), 1);
    m.work_refill(&k);
    assert_eq!(k.walks.get(), 1);
    assert_eq!(m.packet(&k, &pkt(Some(bad), UDP, true)), Verdict::Drop);
    assert_eq!(m.packet(&k, &pkt(Some(good), UDP, true)), Verdict::Accept);
    // Once walked, the next unknown socket of a kernel-thread sender is answered from the
    // active-socket table in the hook (a shared lock, no walk).
    k.fds.borrow_mut().push((779, 10));
    let more = k.sock(3, 902, 779, SockKind::User);
    m.work_refill(&k); // nothing queued: no walk
    assert_eq!(k.walks.get(), 1);
    assert_eq!(
        m.packet(&k, &pkt(Some(more), UDP, true)),
        Verdict::Drop,
        "not walked yet"
    );
    k.advance(100);
    m.work_refill(&k);
    assert_eq!(m.packet(&k, &pkt(Some(more), UDP, true)), Verdict::Accept);
}

/// `n` processes (tgid 1000..) with `per` sockets each (inode 1_000_000 + index); one of them,
/// the last, runs `/srv/target`, the others `/usr/bin/hog`.
fn hoard(k: &Fake, n: u32, per: u64) -> u64 {
    let mut ino = 1_000_000u64;
    for p in 0..n {
        let inodes: Vec<u64> = (0..per).map(|i| ino + i).collect();
        ino += per;
        let exe = if p + 1 == n {
            "/srv/target"
        } else {
            "/usr/bin/hog"
        };
        k.process(1000 + p, exe, &inodes);
    }
    ino - 1
}

fn walk_stat(m: &M, key: &str) -> u64 {
    let mut line = String::new();
    m.walk_stats(&mut line).unwrap();
    line.split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .unwrap_or_else(|| panic!("{key} not in {line}"))
        .parse()
        .unwrap()
}

#[test]
fn the_walk_collects_outside_every_lock_and_merges_bounded_chunks() {
    // 200 processes x 50 sockets: the fake kernel fails the test if any chunk is collected
    // under a module lock or with BH off; every merge under the lock is at most one chunk.
    let (m, k) = enabled();
    request(&m, &k, &rule(Action::Allow, TCP, "/srv/target"), 1).unwrap();
    let last = hoard(&k, 200, 50);
    let sk = k.sock(1, 5, last, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, false)), Verdict::Drop);
    m.work_refill(&k);
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, false)), Verdict::Accept);
    assert_eq!(walk_stat(&m, "cycles"), 1);
    assert_eq!(walk_stat(&m, "merged"), 10_000);
    assert_eq!(walk_stat(&m, "max_merge"), e7_core::WALK_CHUNK as u64);
    assert!(k.chunks.get() >= 10_000 / e7_core::WALK_CHUNK as u32);
    assert_eq!(
        walk_stat(&m, "merges"),
        u64::from(k.chunks.get()),
        "one merge per chunk"
    );
    assert_eq!(
        walk_stat(&m, "dropped"),
        10_000 - 1024,
        "the table keeps 1024; the target is matched in the chunk all the same"
    );
}

#[test]
fn a_slice_is_bounded_and_the_next_resumes_where_it_stopped() {
    // A slow walk (1 ms per chunk): each slice stops after WALK_SLICE_MS and keeps its cursor;
    // the owner at the very end is still found after a few slices, none of them longer than the
    // budget, and the socket is never declared ownerless meanwhile.
    let (m, k) = enabled();
    request(&m, &k, &rule(Action::Allow, TCP, "/srv/target"), 1).unwrap();
    k.ms_per_chunk.set(1);
    let last = hoard(&k, 100, 64); // 6400 pairs = 100 chunks
    let sk = k.sock(1, 5, last, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, false)), Verdict::Drop);
    let mut slices = 0;
    while m.packet(&k, &pkt(Some(sk), TCP, false)) == Verdict::Drop {
        let before = k.chunks.get();
        m.work_refill(&k);
        let spent = k.chunks.get() - before;
        assert!(
            spent as u64 <= e7_core::WALK_SLICE_MS,
            "a slice collected {spent} chunks of 1 ms"
        );
        slices += 1;
        assert!(slices < 20, "the owner was never found");
        k.advance(e7_rust::state::REFILL_RETRY_MS.into());
    }
    assert!(slices >= 100 / e7_core::WALK_SLICE_MS, "{slices} slices");
    assert_eq!(k.walks.get(), 1, "one cycle, resumed slice after slice");
    assert_eq!(walk_stat(&m, "max_merge"), e7_core::WALK_CHUNK as u64);
}

#[test]
fn an_owner_behind_a_resumed_cycle_is_not_declared_ownerless() {
    // Socket B appears, and is asked for, while a cycle is paused past B's owner: that cycle
    // cannot see B, and must not call it ownerless; the next (fresh) cycle finds it.
    let (m, k) = enabled();
    request(&m, &k, &rule(Action::Allow, TCP, "/srv/target"), 1).unwrap();
    request(&m, &k, &rule(Action::Allow, TCP, "/usr/bin/hog"), 1).unwrap();
    k.ms_per_chunk.set(1);
    let last = hoard(&k, 30, 64); // 1920 pairs = 30 chunks: three slices
    let a = k.sock(1, 5, last, SockKind::User);
    m.packet(&k, &pkt(Some(a), TCP, false));
    m.work_refill(&k); // slice 1: paused after 10 chunks
    assert!(m.engine.active.read().in_cycle());
    // Process 1000 (walked already) opens B; B's first packet is deferred.
    k.fds.borrow_mut().insert(1, (2_000_000, 1000));
    let b = k.sock(2, 6, 2_000_000, SockKind::User);
    m.packet(&k, &pkt(Some(b), TCP, false));
    // Slices 2-4 finish the cycle (31 chunks), slice 5 starts a fresh one.
    for _ in 0..4 {
        k.advance(100);
        m.work_refill(&k);
        assert_ne!(
            m.engine.active.read().lookup(2_000_000, k.now.get()),
            Some(e7_core::ActiveLookup::NotFound),
            "a resumed cycle declared B ownerless"
        );
    }
    assert_eq!(m.packet(&k, &pkt(Some(a), TCP, false)), Verdict::Accept);
    assert_eq!(
        m.packet(&k, &pkt(Some(b), TCP, false)),
        Verdict::Accept,
        "found by the next cycle, never cached as ownerless"
    );
    assert_eq!(k.walks.get(), 2);
}

#[test]
fn an_ownerless_inode_is_cached_negative_and_costs_no_more_walks() {
    // A socket no descriptor table holds (an io_uring registered file whose descriptor was
    // closed, sending from softirq): one whole cycle, then negative until the TTL.
    let (m, k) = enabled();
    hoard(&k, 10, 10);
    let lost = k.sock(1, 5, 42, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(lost), TCP, false)), Verdict::Drop);
    m.work_refill(&k);
    assert_eq!(k.walks.get(), 1);
    for _ in 0..10 {
        k.advance(60);
        assert_eq!(m.packet(&k, &pkt(Some(lost), TCP, false)), Verdict::Drop);
        m.work_refill(&k);
    }
    assert_eq!(
        k.walks.get(),
        1,
        "answered from the negative cache, no walk"
    );
    k.advance(1000);
    m.packet(&k, &pkt(Some(lost), TCP, false));
    m.work_refill(&k);
    assert_eq!(
        k.walks.get(),
        2,
        "after the negative TTL it is looked for again"
    );
}

#[test]
fn a_storm_of_fresh_inodes_costs_one_slice_per_interval() {
    // Any user can make softirq packets miss (fresh sockets, a listener's first SYN-ACK): the
    // refill work still runs at most one bounded slice per interval.
    let (m, k) = enabled();
    hoard(&k, 50, 20);
    for i in 0..1000u64 {
        let sk = k.sock(i as usize, 10_000 + i, 5_000_000 + i, SockKind::User);
        m.packet(&k, &pkt(Some(sk), UDP, false));
        m.work_refill(&k);
        k.advance(1); // 1000 fresh inodes over one second
    }
    assert!(
        walk_stat(&m, "slices") <= 21,
        "{} slices",
        walk_stat(&m, "slices")
    );
}

#[test]
fn kernel_detached_and_missing_sockets_get_unkproc() {
    let (m, k) = enabled();
    set(&m, &k, Flag::UnkProc, Const::Block);
    let kern = k.sock(1, 1, 11, SockKind::Kernel);
    let det = k.sock(2, 2, 0, SockKind::Detached);
    assert_eq!(m.packet(&k, &pkt(Some(kern), TCP, true)), Verdict::Drop);
    assert_eq!(m.packet(&k, &pkt(Some(kern), TCP, true)), Verdict::Drop);
    assert_eq!(k.info_calls.get(), 1, "a kernel socket's verdict is cached");
    assert_eq!(m.packet(&k, &pkt(Some(det), TCP, true)), Verdict::Drop);
    assert_eq!(m.packet(&k, &pkt(Some(det), TCP, true)), Verdict::Drop);
    assert_eq!(k.info_calls.get(), 3, "a detached socket is never cached");
    assert_eq!(
        m.packet(&k, &pkt(None, TCP, false)),
        Verdict::Drop,
        "no full socket (S1)"
    );
    set(&m, &k, Flag::UnkProc, Const::Allow);
    assert_eq!(m.packet(&k, &pkt(Some(kern), TCP, false)), Verdict::Accept);
}

#[test]
fn every_protocol_is_identified_and_unkprot_decides_unowned_other_protocols() {
    const SCTP: u32 = 132;
    const UDPLITE: u32 = 136;
    const GRE: u32 = 47;
    let (m, k) = enabled();
    // unkprot at its default (allow): it must not let an identified program's packets out.
    k.process(5, "/bin/x", &[11, 12, 13]);
    k.current.set(Some(5));
    // `any` covers every protocol: udplite, sctp and a raw socket of another protocol.
    request(
        &m,
        &k,
        &rule(Action::Block, Const::Any.value(), "/bin/x"),
        1,
    )
    .unwrap();
    for (i, proto) in [UDPLITE, SCTP, GRE, 253].into_iter().enumerate() {
        let sk = k.sock(1 + i, 1 + i as u64, 11, SockKind::User);
        assert_eq!(
            m.packet(&k, &pkt(Some(sk), proto, true)),
            Verdict::Drop,
            "{proto}"
        );
    }
    // A rule naming the protocol beats `any`; unkprot does not apply to an owned socket.
    set(&m, &k, Flag::UnkProt, Const::Block);
    request(&m, &k, &rule(Action::Allow, SCTP, "/bin/x"), 1).unwrap();
    let sk = k.sock(10, 10, 12, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(sk), SCTP, true)), Verdict::Accept);
    assert_eq!(m.packet(&k, &pkt(Some(sk), UDPLITE, true)), Verdict::Drop);
    // No owning program: unkprot for other protocols, unkproc for tcp/udp/icmp/icmpv6.
    let kern = k.sock(20, 20, 99, SockKind::Kernel);
    assert_eq!(m.packet(&k, &pkt(Some(kern), GRE, false)), Verdict::Drop);
    assert_eq!(m.packet(&k, &pkt(None, 2, false)), Verdict::Drop, "igmp");
    assert_eq!(m.packet(&k, &pkt(None, TCP, false)), Verdict::Accept);
    let kern2 = k.sock(21, 21, 98, SockKind::Kernel);
    assert_eq!(m.packet(&k, &pkt(Some(kern2), TCP, false)), Verdict::Accept);
    set(&m, &k, Flag::UnkProt, Const::Allow);
    assert_eq!(m.packet(&k, &pkt(Some(kern), GRE, false)), Verdict::Accept);
}

fn work(m: &M, k: &Fake) {
    k.in_work.set(true);
    m.work_refill(k);
    k.in_work.set(false);
}

/// Issue 7 hole 4: a program exec'd from a bind mount in a private mount namespace (or a chroot)
/// has a `d_path` that names another program's path. Its identity is only what the refill work
/// verifies from pid 1's root; until then, and when nothing verifies, `nspath` decides and no path
/// rule applies.
#[test]
fn an_unverified_path_never_matches_a_rule_and_nspath_decides() {
    let (m, k) = enabled();
    set(&m, &k, Flag::UnkRule, Const::Block);
    request(
        &m,
        &k,
        &rule(Action::Allow, Const::Any.value(), "/opt/a/allowed"),
        1,
    )
    .unwrap();
    request(
        &m,
        &k,
        &rule(Action::Allow, UDP, "/srv/jail/opt/a/allowed"),
        1,
    )
    .unwrap();
    // Borrowed: the sender's namespace shows /opt/a/allowed, pid 1's root does not agree.
    k.process(5, "/opt/a/allowed", &[11]);
    k.needs_work.borrow_mut().insert(5, -18);
    // Chroot: the real path (what the work finds) is /srv/jail/opt/a/allowed.
    k.process(6, "/srv/jail/opt/a/allowed", &[12]);
    k.needs_work.borrow_mut().insert(6, 0);
    let borrowed = k.sock(1, 1, 11, SockKind::User);
    let jailed = k.sock(2, 2, 12, SockKind::User);
    k.current.set(Some(5));
    assert_eq!(m.packet(&k, &pkt(Some(borrowed), UDP, true)), Verdict::Drop);
    k.current.set(Some(6));
    assert_eq!(
        m.packet(&k, &pkt(Some(jailed), UDP, true)),
        Verdict::Drop,
        "not yet verified"
    );
    assert!(
        k.kicked_refill.get() >= 1,
        "verification is deferred to the work"
    );
    work(&m, &k);
    k.current.set(Some(5));
    assert_eq!(
        m.packet(&k, &pkt(Some(borrowed), UDP, true)),
        Verdict::Drop,
        "nspath"
    );
    k.current.set(Some(6));
    assert_eq!(
        m.packet(&k, &pkt(Some(jailed), UDP, true)),
        Verdict::Accept,
        "real path"
    );
    assert_eq!(
        m.packet(&k, &pkt(Some(jailed), TCP, true)),
        Verdict::Drop,
        "unkrule"
    );
    // nspath is the borrowed identity's only verdict: allow it, and it leaves (no rule involved).
    set(&m, &k, Flag::NsPath, Const::Allow);
    k.current.set(Some(5));
    assert_eq!(
        m.packet(&k, &pkt(Some(borrowed), TCP, true)),
        Verdict::Accept
    );
    set(&m, &k, Flag::NsPath, Const::Block);
    assert_eq!(m.packet(&k, &pkt(Some(borrowed), UDP, true)), Verdict::Drop);
}

#[test]
fn malformed_and_long_paths_use_their_flags() {
    let (m, k) = enabled();
    set(&m, &k, Flag::Fail, Const::Block);
    let sk = k.sock(1, 1, 11, SockKind::User);
    let mut bad = pkt(Some(sk), TCP, true);
    bad.malformed = true;
    assert_eq!(m.packet(&k, &bad), Verdict::Drop, "malformed → fail");
    assert_eq!(
        k.info_calls.get(),
        0,
        "early decisions never touch the socket"
    );

    let long = format!("/{}", "d/".repeat(130)) + "prog";
    k.process(5, &long, &[11]);
    k.current.set(Some(5));
    let mut v6 = pkt(Some(sk), 58, true);
    v6.family = Family::Ipv6;
    assert_eq!(
        m.packet(&k, &v6),
        Verdict::Drop,
        "longpath defaults to block"
    );
    set(&m, &k, Flag::LongPath, Const::Allow);
    assert_eq!(m.packet(&k, &v6), Verdict::Accept);
}

#[test]
fn an_owner_without_a_readable_executable_is_not_cached() {
    let (m, k) = enabled();
    set(&m, &k, Flag::UnkProc, Const::Block);
    k.process(5, "/bin/x", &[11]);
    k.exes.borrow_mut().insert(5, Err(-2)); // exiting: no mm
    k.current.set(Some(5));
    let sk = k.sock(1, 1, 11, SockKind::User);
    assert_eq!(
        m.packet(&k, &pkt(Some(sk), TCP, true)),
        Verdict::Drop,
        "unkproc"
    );
    k.exes.borrow_mut().insert(5, Ok(b"/bin/x".to_vec()));
    assert_eq!(
        m.packet(&k, &pkt(Some(sk), TCP, true)),
        Verdict::Accept,
        "identified now"
    );
    assert_eq!(k.owner_calls.get(), 2);
}

#[test]
fn deleted_suffix_is_stripped_before_rule_lookup() {
    let (m, k) = enabled();
    request(&m, &k, &rule(Action::Block, TCP, "/usr/bin/old"), 1).unwrap();
    k.process(5, "/usr/bin/old (deleted)", &[11]);
    k.current.set(Some(5));
    let sk = k.sock(1, 1, 11, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, true)), Verdict::Drop);
}

#[test]
fn softirq_uses_the_interrupted_tasks_known_image_without_d_path() {
    let (m, k) = enabled();
    set(&m, &k, Flag::UnkProc, Const::Block);
    request(&m, &k, &rule(Action::Allow, TCP, "/usr/bin/probe"), 1).unwrap();
    // The process connects (task context: resolved with d_path) ...
    k.process(4, "/usr/bin/probe", &[100, 200]);
    k.current.set(Some(4));
    let client = k.sock(1, 10, 100, SockKind::User);
    let listener = k.sock(2, 20, 200, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(client), TCP, true)), Verdict::Accept);
    assert_eq!(k.dpaths.get(), 1);
    // ... and its own listener answers from softirq on the same stack (loopback SYN-ACK).
    assert_eq!(
        m.packet(&k, &pkt(Some(listener), TCP, false)),
        Verdict::Accept
    );
    assert_eq!(k.dpaths.get(), 1, "no d_path for an already-resolved image");
    assert_eq!(k.kicked_refill.get(), 0, "nothing deferred");
    // After an exec the image differs: softirq cannot use it and defers.
    k.execs.borrow_mut().insert(4, 2);
    let other = k.sock(3, 30, 300, SockKind::User);
    k.fds.borrow_mut().push((300, 4));
    assert_eq!(
        m.packet(&k, &pkt(Some(other), TCP, false)),
        Verdict::Drop,
        "unkproc"
    );
    assert_eq!(k.kicked_refill.get(), 1);
    // A task-context miss of a known image skips d_path too.
    k.execs.borrow_mut().insert(4, 1);
    let third = k.sock(4, 40, 400, SockKind::User);
    k.fds.borrow_mut().push((400, 4));
    assert_eq!(m.packet(&k, &pkt(Some(third), TCP, true)), Verdict::Accept);
    assert_eq!(k.dpaths.get(), 1);
}

// ---- events and subscribers ---------------------------------------------------------------

fn parse_event(s: &Sent) -> (EventState, u32, Vec<u8>) {
    match parse_reply(s.cmd.value(), &s.body).unwrap() {
        Reply::Event {
            state, prot, path, ..
        } => (state, prot, path.to_vec()),
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn pending_events_reach_admin_subscribers_only_and_are_squelched() {
    let (m, k) = enabled();
    m.unsubscribe(1); // the port used by the set() helper
    k.process(3, "/usr/bin/nc", &[1, 2, 3]);
    k.current.set(Some(3));
    let socks: Vec<_> = (1..=3)
        .map(|i| k.sock(i, i as u64, i as u64, SockKind::User))
        .collect();
    m.packet(&k, &pkt(Some(socks[0]), UDP, true));
    assert_eq!(k.kicked_events.get(), 0, "no subscriber: nothing queued");
    // An unprivileged GET does not subscribe; SUBSCRIBE (admin) does.
    request(&m, &k, &Request::Get { flag: Flag::Mode }, 50).unwrap();
    request(&m, &k, &Request::Subscribe, 60).unwrap();
    k.take_sent();
    m.packet(&k, &pkt(Some(socks[1]), UDP, true));
    m.packet(&k, &pkt(Some(socks[2]), UDP, true)); // same (proto, exe) within 1 s: squelched
    m.work_events(&k);
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].portid, 60);
    assert_eq!(
        parse_event(&sent[0]),
        (EventState::Pending, UDP, b"/usr/bin/nc".to_vec())
    );
    k.advance(1500);
    m.packet(&k, &pkt(Some(socks[2]), UDP, true));
    m.work_events(&k);
    assert_eq!(
        k.take_sent().len(),
        1,
        "a second later the squelch lets one through"
    );
}

#[test]
fn drops_and_accepts_events_per_packet_and_gone_subscribers_are_forgotten() {
    let (m, k) = enabled();
    set(&m, &k, Flag::Drops, Const::Enabled);
    set(&m, &k, Flag::Accepts, Const::Enabled);
    request(&m, &k, &rule(Action::Block, TCP, "/bin/bad"), 70).unwrap();
    request(&m, &k, &Request::Subscribe, 71).unwrap();
    m.unsubscribe(1); // the port used by the set() helper
    k.process(3, "/bin/bad", &[1]);
    k.current.set(Some(3));
    let sk = k.sock(1, 1, 1, SockKind::User);
    for _ in 0..3 {
        assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, true)), Verdict::Drop);
    }
    k.take_sent();
    k.refusing.borrow_mut().insert(70);
    m.work_events(&k);
    let sent = k.take_sent();
    assert_eq!(sent.len(), 3, "3 block events to port 71 (70 refused)");
    assert!(sent
        .iter()
        .all(|s| s.portid == 71 && parse_event(s).0 == EventState::Block));
    assert!(
        !m.subs.read().contains(70),
        "ECONNREFUSED unsubscribes (S10)"
    );
    assert!(m.subs.read().contains(71));
}

#[test]
fn a_full_event_queue_counts_evlost_and_never_blocks() {
    let (m, k) = enabled();
    set(&m, &k, Flag::Accepts, Const::Enabled);
    request(&m, &k, &rule(Action::Allow, TCP, "/bin/chatty"), 70).unwrap();
    m.unsubscribe(1); // the port used by the set() helper
    k.process(3, "/bin/chatty", &[1]);
    k.current.set(Some(3));
    let sk = k.sock(1, 1, 1, SockKind::User);
    for i in 0..(e7_rust::bounded::EVENT_QUEUE + 10) {
        assert_eq!(m.packet(&k, &pkt(Some(sk), TCP, i == 0)), Verdict::Accept);
    }
    assert_eq!(m.flag_value(&k, Flag::EvLost), 10);
    assert_eq!(k.kicked_events.get(), 1);
    k.take_sent();
    m.work_events(&k);
    assert_eq!(k.take_sent().len(), e7_rust::bounded::EVENT_QUEUE);
}

#[test]
fn one_users_event_flood_never_crowds_out_another_users_events() {
    // The event queue is shared by every user: uid 1000's program with `accepts` on fills it, and
    // uid 2000's pending events must still get in (the flood costs only the flooder's own events).
    let (m, k) = enabled();
    set(&m, &k, Flag::Accepts, Const::Enabled);
    request(&m, &k, &rule(Action::Allow, TCP, "/bin/chatty"), 70).unwrap();
    m.unsubscribe(1); // the port used by the set() helper
    k.process(3, "/bin/chatty", &[1]);
    k.process(4, "/usr/bin/victim", &[2]);
    let flood = k.sock(1, 1, 1, SockKind::User);
    let victim = k.sock(2, 2, 2, SockKind::User);
    let as_uid = |uid, sk, proto, tgid| {
        k.current.set(Some(tgid));
        m.packet(
            &k,
            &PacketIn {
                uid,
                ..pkt(Some(sk), proto, true)
            },
        )
    };
    for _ in 0..(e7_rust::bounded::EVENT_QUEUE + 10) {
        as_uid(1000, flood, TCP, 3);
    }
    assert_eq!(
        m.flag_value(&k, Flag::EvLost),
        10,
        "the flooder's own overflow"
    );
    as_uid(2000, victim, UDP, 4);
    as_uid(2000, victim, TCP, 4);
    assert_eq!(
        m.flag_value(&k, Flag::EvLost),
        12,
        "two of the flooder's queued events gave way"
    );
    // The flood goes on: it loses its own events, never the victim's.
    for _ in 0..50 {
        as_uid(1000, flood, TCP, 3);
    }
    assert_eq!(m.flag_value(&k, Flag::EvLost), 62);
    k.take_sent();
    m.work_events(&k);
    let events: Vec<_> = k.take_sent().iter().map(parse_event).collect();
    assert_eq!(events.len(), e7_rust::bounded::EVENT_QUEUE);
    let victims: Vec<_> = events
        .iter()
        .filter(|e| e.2 == b"/usr/bin/victim")
        .map(|e| (e.0, e.1))
        .collect();
    assert_eq!(
        victims,
        [(EventState::Pending, UDP), (EventState::Pending, TCP)],
        "both of uid 2000's events were delivered, in order"
    );
}

#[test]
fn disconnect_removes_only_the_senders_port_and_unload_notifies_all() {
    let (m, k) = enabled();
    m.unsubscribe(1); // the port used by the set() helper
    request(&m, &k, &Request::Subscribe, 10).unwrap();
    request(&m, &k, &Request::Subscribe, 11).unwrap();
    request(&m, &k, &Request::Disconnect, 12).unwrap(); // not subscribed: no effect on others
    assert_eq!(m.subs.read().len(), 2);
    request(&m, &k, &Request::Disconnect, 10).unwrap();
    assert!(!m.subs.read().contains(10) && m.subs.read().contains(11));
    k.take_sent();
    m.stop();
    m.disconnect_all(&k);
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].cmd, sent[0].portid), (Command::Disconnect, 11));
    request(&m, &k, &Request::Subscribe, 13).unwrap();
    assert!(m.subs.read().is_empty(), "no subscriptions once unloading");
}

#[test]
fn a_released_socket_is_unsubscribed_and_its_reused_port_gets_no_events() {
    let (m, k) = enabled();
    m.unsubscribe(1); // the port used by the set() helper
    request(&m, &k, &Request::Subscribe, 10).unwrap();
    request(&m, &k, &Request::Subscribe, 11).unwrap();
    // The daemon on port 10 dies: netlink_release sends NETLINK_URELEASE for its port.
    m.port_released(10);
    assert!(!m.subs.read().contains(10) && m.subs.read().contains(11));
    assert_eq!(m.stats.released.load(Relaxed), 1);
    m.port_released(12); // some other genl socket closing: nothing changes
    m.port_released(0);
    assert_eq!(m.stats.released.load(Relaxed), 1);
    assert_eq!(m.subs.read().len(), 1);
    // An unprivileged process now binds port 10 and only asks questions.
    request(&m, &k, &Request::Query, 10).unwrap();
    k.take_sent();
    k.process(3, "/bin/new", &[1]);
    k.current.set(Some(3));
    let sk = k.sock(1, 1, 1, SockKind::User);
    m.packet(&k, &pkt(Some(sk), TCP, true));
    m.work_events(&k);
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!((sent[0].cmd, sent[0].portid), (Command::Event, 11));
    // Nobody subscribed: a release costs one relaxed load.
    m.port_released(11);
    m.port_released(11);
    assert!(m.subs.read().is_empty());
    assert_eq!(m.stats.released.load(Relaxed), 2);
}

#[test]
fn unload_disconnect_is_not_delayed_by_queued_events_and_losses_are_counted() {
    let (m, k) = enabled();
    set(&m, &k, Flag::Accepts, Const::Enabled);
    request(&m, &k, &rule(Action::Allow, TCP, "/bin/chatty"), 20).unwrap();
    request(&m, &k, &Request::Subscribe, 21).unwrap();
    request(&m, &k, &Request::Subscribe, 22).unwrap();
    m.unsubscribe(1);
    k.process(3, "/bin/chatty", &[1]);
    k.current.set(Some(3));
    let sk = k.sock(1, 1, 1, SockKind::User);
    for i in 0..(e7_rust::bounded::EVENT_QUEUE + 5) {
        m.packet(&k, &pkt(Some(sk), TCP, i == 0));
    }
    assert!(
        m.flag_value(&k, Flag::EvLost) > 0,
        "the event queue is full"
    );
    k.take_sent();
    k.full.borrow_mut().insert(21); // its receive buffer is full
    k.refusing.borrow_mut().insert(22); // its socket is already gone
    m.stop();
    assert_eq!(m.disconnect_all(&k), 1, "one DISCONNECT lost");
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].cmd, sent[0].portid),
        (Command::Disconnect, 20),
        "sent before any of the 128 queued events"
    );
    assert_eq!(m.stats.disconnect_lost.load(Relaxed), 1);
    let log = k.logs.borrow().join("\n");
    assert!(
        log.contains("DISCONNECT sent to 1 of 3 subscribers (1 lost"),
        "{log}"
    );
    assert!(log.contains("1 already gone"), "{log}");
    // A late run of the event work (cancelled in the real unload) sends nothing after it.
    m.work_events(&k);
    assert!(k.take_sent().is_empty());
    assert!(m.events.read().is_empty(), "queued events dropped");
}

// ---- requests -----------------------------------------------------------------------------

fn error_of(s: &Sent) -> (Option<u32>, Option<String>) {
    match parse_reply(s.cmd.value(), &s.body).unwrap() {
        Reply::Error { errno, message } => (errno, message.map(str::to_string)),
        other => panic!("not an error: {other:?}"),
    }
}

#[test]
fn invalid_set_is_refused_with_errno_extack_and_an_error_message() {
    let (m, k) = enabled();
    let r = request(
        &m,
        &k,
        &Request::Set {
            flag: Flag::Mode,
            value: 7,
        },
        5,
    );
    let r = r.unwrap_err();
    assert_eq!(r.errno, 22);
    assert!(r.extack.to_str().unwrap().starts_with("e7: "));
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(
        (sent[0].cmd, sent[0].portid, sent[0].seq),
        (Command::Error, 5, 7)
    );
    let (errno, msg) = error_of(&sent[0]);
    assert_eq!(errno, Some(22));
    let msg = msg.unwrap();
    assert!(msg.contains("mode") && msg.contains("enabled"), "{msg}");
    assert_eq!(
        m.engine.flags.get(e7_core::Flag::Mode),
        Const::Enabled.value()
    );
}

#[test]
fn raw_invalid_attributes_are_refused_not_trusted() {
    let (m, k) = enabled();
    // SET with a FLAG only (VALUE is required), hand-made bytes.
    let mut buf = [0u8; 8];
    let mut w = Writer::new(&mut buf);
    w.put_u32(3, 0).unwrap();
    let r = m.doit(
        &k,
        Command::Set.value(),
        &buf,
        E7Dest { portid: 5, seq: 1 },
        true,
    );
    assert_eq!(r.unwrap_err().errno, 22);
    assert_eq!(error_of(&k.take_sent()[0]).0, Some(22));
    // Garbage.
    let r = m.doit(
        &k,
        Command::Block.value(),
        &[9, 0, 2],
        E7Dest { portid: 5, seq: 1 },
        true,
    );
    assert!(r.is_err());
    // Read-only flag.
    assert!(request(
        &m,
        &k,
        &Request::Set {
            flag: Flag::Uptime,
            value: 1
        },
        5
    )
    .is_err());
}

#[test]
fn get_reports_live_statistics() {
    let (m, k) = enabled();
    k.advance(5_500);
    k.take_sent();
    request(&m, &k, &Request::Get { flag: Flag::Uptime }, 9).unwrap();
    let sent = k.take_sent();
    match parse_reply(sent[0].cmd.value(), &sent[0].body).unwrap() {
        Reply::Get { flag, value } => assert_eq!((flag, value), (Flag::Uptime, 5)),
        other => panic!("{other:?}"),
    }
    assert_eq!(sent[0].portid, 9, "answered to the asker (S2)");
    let sk = k.sock(1, 1, 1, SockKind::Kernel);
    m.packet(&k, &pkt(Some(sk), TCP, false));
    request(
        &m,
        &k,
        &Request::Get {
            flag: Flag::QPackets,
        },
        9,
    )
    .unwrap();
    match parse_reply(Command::Get.value(), &k.take_sent()[0].body).unwrap() {
        Reply::Get { value, .. } => assert_eq!(value, 1),
        other => panic!("{other:?}"),
    }
}

fn query_rules(sent: &[Sent]) -> (Vec<(Action, u32, String)>, Option<u32>, usize) {
    let mut rules = Vec::new();
    let mut count = None;
    for s in sent {
        assert_eq!(s.cmd, Command::Query);
        match parse_reply(s.cmd.value(), &s.body).unwrap() {
            Reply::Query(q) => {
                assert!(q.mode.is_some(), "every chain message carries the mode");
                if q.count.is_some() {
                    count = q.count;
                }
                for r in q.rules() {
                    rules.push((r.action, r.prot, r.path.to_string()));
                }
            }
            other => panic!("{other:?}"),
        }
    }
    (rules, count, sent.len())
}

#[test]
fn mode_commands_change_mode_without_error_and_push_a_query() {
    let m = module();
    let k = Fake::new();
    m.init(&k);
    request(&m, &k, &Request::SetMode(Mode::Block), 4).unwrap();
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1, "rchngq: one QUERY, no ERROR (B2)");
    assert_eq!(sent[0].cmd, Command::Query);
    assert_eq!(
        m.engine.flags.get(e7_core::Flag::Mode),
        Const::Block.value()
    );
    request(&m, &k, &Request::SetMode(Mode::Disabled), 4).unwrap();
    assert_eq!(
        m.engine.flags.get(e7_core::Flag::Mode),
        Const::Disabled.value()
    );
}

#[test]
fn a_change_is_acked_as_done_even_if_the_rchngq_push_cannot_be_sent() {
    let m = module();
    let k = Fake::new();
    m.init(&k);
    k.full.borrow_mut().insert(4); // the admin's receive buffer is full of events
    request(&m, &k, &rule(Action::Block, UDP, "/bin/x"), 4)
        .expect("the rule was added: the ack says so");
    assert_eq!(m.engine.rules.read().len(), 1);
    assert!(k.logs.borrow().iter().any(|l| l.contains("rchngq")));
    // An explicit QUERY is a dump: the kernel builds each message when the reader has room, so a
    // full buffer delays it instead of failing it.
    request(&m, &k, &Request::Query, 4).expect("a QUERY starts its reply dump");
}

#[test]
fn the_rchngq_push_is_one_message_that_any_buffer_holds() {
    // The push is sent at once (the change's ack follows it), so the kernel cannot wait for the
    // reader: a push of several messages overran a small receive buffer (the client saw ENOBUFS
    // and lost the ack). Now it is one message: the whole table when it fits, else a notice.
    let (m, k) = enabled();
    for i in 0..3 {
        request(
            &m,
            &k,
            &rule(Action::Allow, UDP, &format!("/bin/small{i}")),
            1,
        )
        .unwrap();
    }
    set(&m, &k, Flag::RChngQ, Const::Enabled);
    k.take_sent();
    k.rcvbuf.borrow_mut().insert(4, 1); // port 4's buffer holds one message
    request(&m, &k, &rule(Action::Block, UDP, "/bin/small3"), 4).unwrap();
    let (rules, count, messages) = query_rules(&k.take_sent());
    assert_eq!(
        (rules.len(), count, messages),
        (4, Some(4), 1),
        "a small table is pushed whole, in one message"
    );
    set(&m, &k, Flag::RChngQ, Const::Disabled);
    for i in 0..1000 {
        let path = format!("/opt/rules/a-somewhat-longer-path-to-use-more-of-each-message/{i}");
        request(&m, &k, &rule(Action::Allow, UDP, &path), 1).unwrap();
    }
    set(&m, &k, Flag::RChngQ, Const::Enabled);
    k.take_sent();
    request(&m, &k, &rule(Action::Block, TCP, "/bin/last"), 4).unwrap();
    let sent = k.take_sent();
    assert_eq!(
        k.overruns.get(),
        0,
        "nothing was dropped at a one-message buffer"
    );
    assert!(
        !k.logs.borrow().iter().any(|l| l.contains("rchngq")),
        "the push was delivered: {:?}",
        k.logs.borrow()
    );
    let (rules, count, messages) = query_rules(&sent);
    assert_eq!(
        (rules.len(), count, messages),
        (0, Some(1005), 1),
        "a large table is announced (mode and COUNT, no rules), never sent in part"
    );
    // The client then asks; that reply is reader-driven and lists every rule.
    request(&m, &k, &Request::Query, 4).unwrap();
    let (rules, count, _) = query_rules(&k.take_sent());
    assert_eq!((rules.len(), count), (1005, Some(1005)));
    assert_eq!(rules[1004].2, "/bin/last");
}

#[test]
#[should_panic(expected = "scheduling while atomic")]
fn the_fake_kernel_fails_a_send_made_under_a_module_lock() {
    // The net for "GFP_KERNEL with bottom halves off": any service that may sleep, called while a
    // module lock is held, fails the test (send_query once kept the rule ring's read guard alive
    // around every send).
    let (m, k) = enabled();
    let _guard = m.engine.rules.read();
    let _ = k.send(Command::Error, E7Dest::default(), 1, &mut |_| Ok(()));
}

#[test]
fn any_command_subscribes_an_admin_client_but_never_an_unprivileged_one() {
    // The original console sends QUERY and GET at start, then waits for events.
    let (m, k) = enabled();
    m.unsubscribe(1); // the port used by the set() helper
    request_as(&m, &k, &Request::Query, 30, true).unwrap();
    request_as(&m, &k, &Request::Get { flag: Flag::Mode }, 31, true).unwrap();
    request_as(&m, &k, &Request::Query, 40, false).unwrap();
    request_as(&m, &k, &Request::Get { flag: Flag::Mode }, 41, false).unwrap();
    request_as(&m, &k, &Request::Error, 42, false).unwrap();
    assert_eq!(m.subs.read().ports(), &[30, 31]);
    // DISCONNECT from an admin client removes it and does not re-add it.
    request_as(&m, &k, &Request::Disconnect, 30, true).unwrap();
    assert_eq!(m.subs.read().ports(), &[31]);
    k.take_sent();
    assert_eq!(m.disconnect_all(&k), 0);
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].cmd, sent[0].portid), (Command::Disconnect, 31));
}

#[test]
fn a_plain_query_of_a_full_table_is_a_reader_driven_chain() {
    // Each message is built by a separate call of the continuation (the kernel calls it when the
    // reader has drained its buffer), so no receive buffer must hold more than one message.
    let (m, k) = enabled();
    for i in 0..1024 {
        let path = format!("/opt/rules/a-somewhat-longer-path-to-use-more-of-each-message/{i}");
        request(&m, &k, &rule(Action::Allow, UDP, &path), 1).unwrap();
    }
    k.take_sent();
    let dest = E7Dest { portid: 9, seq: 3 };
    assert_eq!(
        m.doit(&k, Command::Query.value(), &[], dest, false),
        Ok(Handled::QueryChain),
        "nothing is sent while handling the request"
    );
    assert!(k.take_sent().is_empty());
    let (mut cursor, mut gen, mut calls, mut all) = ([0u64; 2], 0, 0, Vec::new());
    loop {
        let mut buf = vec![0u8; ROOM];
        let n = m.chain_query(&mut buf, &mut cursor, &mut gen).unwrap();
        if n == 0 {
            break;
        }
        calls += 1;
        all.push(Sent {
            cmd: Command::Query,
            portid: 9,
            seq: 3,
            body: buf[..n].to_vec(),
        });
        assert!(calls < 100);
    }
    let (rules, count, messages) = query_rules(&all);
    assert_eq!((rules.len(), count), (1024, Some(1024)));
    assert_eq!(messages, calls);
    assert!(
        messages > 15,
        "{messages} messages: a 64 KiB buffer could not hold them at once"
    );
    // Complete: stays complete.
    assert_eq!(m.chain_query(&mut [0u8; 64], &mut cursor, &mut gen), Ok(0));
    // A room too small for one rule is an error, never an endless series of empty messages.
    let (mut c2, mut g2) = ([0u64; 2], 0);
    assert_eq!(
        m.chain_query(&mut [0u8; 24], &mut c2, &mut g2),
        Err(EMSGSIZE)
    );
}

#[test]
fn query_answers_a_full_table_in_several_messages() {
    let (m, k) = enabled();
    for i in 0..1024 {
        let path = format!("/opt/programs/number-{i:04}/bin/tool");
        let a = if i % 2 == 0 {
            Action::Allow
        } else {
            Action::Block
        };
        request(&m, &k, &rule(a, TCP, &path), 1).unwrap();
    }
    let err = request(&m, &k, &rule(Action::Allow, TCP, "/one/too/many"), 1).unwrap_err();
    assert_eq!(err.errno, ENOSPC);
    let (_, msg) = error_of(&k.take_sent()[0]);
    assert!(msg.unwrap().contains("full"));
    // Flipping an existing rule still works on a full table.
    request(
        &m,
        &k,
        &rule(Action::Block, TCP, "/opt/programs/number-0000/bin/tool"),
        1,
    )
    .unwrap();
    k.take_sent();
    request(&m, &k, &Request::Query, 3).unwrap();
    let (rules, count, messages) = query_rules(&k.take_sent());
    assert_eq!(count, Some(1024));
    assert_eq!(rules.len(), 1024);
    assert!(messages > 1, "{messages} messages");
    assert_eq!(
        rules[0],
        (
            Action::Block,
            TCP,
            "/opt/programs/number-0000/bin/tool".into()
        )
    );
    assert_eq!(rules[1023].2, "/opt/programs/number-1023/bin/tool");
}

#[test]
fn dump_gives_the_flat_shape_with_header_once() {
    let (m, k) = enabled();
    for i in 0..300 {
        request(
            &m,
            &k,
            &rule(Action::Allow, UDP, &format!("/usr/lib/x/{i}")),
            1,
        )
        .unwrap();
    }
    let mut cursor = [0u64; 2];
    let mut all = Vec::new();
    let mut headers = 0;
    let mut gens = HashSet::new();
    for _ in 0..100 {
        let mut buf = vec![0u8; 1000];
        let mut gen = 0;
        let n = m.dump_query(&mut buf, &mut cursor, &mut gen).unwrap();
        gens.insert(gen);
        if n == 0 {
            break;
        }
        match parse_reply(Command::Query.value(), &buf[..n]).unwrap() {
            Reply::Query(q) => {
                if q.count.is_some() {
                    headers += 1;
                    assert_eq!(q.count, Some(300));
                    assert_eq!(q.mode, Some(Const::Enabled.value()));
                }
                all.extend(q.rules().map(|r| r.path.to_string()));
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(headers, 1);
    assert_eq!(all.len(), 300);
    assert_eq!(all[299], "/usr/lib/x/299");
    assert_eq!(gens.len(), 1, "one generation for an undisturbed dump");
    let mut buf = vec![0u8; 1000];
    let mut gen = 0;
    assert_eq!(
        m.dump_query(&mut buf, &mut cursor, &mut gen),
        Ok(0),
        "stays complete"
    );
}

#[test]
fn a_rule_edit_between_dump_messages_changes_the_reported_generation() {
    let (m, k) = enabled();
    for i in 0..50 {
        request(&m, &k, &rule(Action::Allow, UDP, &format!("/x/{i}")), 1).unwrap();
    }
    let mut cursor = [0u64; 2];
    let mut buf = vec![0u8; 600];
    let (mut g1, mut g2) = (0, 0);
    assert!(m.dump_query(&mut buf, &mut cursor, &mut g1).unwrap() > 0);
    request(&m, &k, &Request::Clear(ClearSpec::All), 1).unwrap();
    m.dump_query(&mut buf, &mut cursor, &mut g2).unwrap();
    assert_ne!(
        g1, g2,
        "the shim turns a changed generation into NLM_F_DUMP_INTR"
    );
}

#[test]
fn clear_variants_and_missing_rule() {
    let (m, k) = enabled();
    set(&m, &k, Flag::RChngQ, Const::Enabled);
    for (a, p) in [
        (Action::Allow, "/a"),
        (Action::Allow, "/b"),
        (Action::Allow, "/c"),
        (Action::Block, "/d"),
    ] {
        request(&m, &k, &rule(a, TCP, p), 1).unwrap();
    }
    k.take_sent();
    request(&m, &k, &Request::Clear(ClearSpec::Action(Action::Allow)), 1).unwrap();
    let (rules, _, _) = query_rules(&k.take_sent());
    assert_eq!(
        rules,
        vec![(Action::Block, TCP, "/d".to_string())],
        "all 3 allow rules gone (B10)"
    );
    let r = request(
        &m,
        &k,
        &Request::Clear(ClearSpec::Rule {
            prot: UDP,
            path: "/d",
        }),
        1,
    );
    assert_eq!(r.unwrap_err().errno, 2);
    let sent = k.take_sent();
    assert_eq!(
        sent[0].cmd,
        Command::Query,
        "the QUERY still follows the CLEAR"
    );
    assert_eq!(sent[1].cmd, Command::Error);
    request(
        &m,
        &k,
        &Request::Clear(ClearSpec::Rule {
            prot: TCP,
            path: "/d",
        }),
        1,
    )
    .unwrap();
    let (rules, count, _) = query_rules(&k.take_sent());
    assert!(rules.is_empty());
    assert_eq!(count, Some(0));
}

#[test]
fn protocol_only_and_bad_paths_are_refused() {
    let (m, k) = enabled();
    // PROT without PATH: hand-made (the CLI never sends it).
    let mut buf = [0u8; 8];
    Writer::new(&mut buf).put_u32(4, TCP).unwrap();
    let r = m.doit(
        &k,
        Command::Block.value(),
        &buf,
        E7Dest { portid: 5, seq: 1 },
        true,
    );
    assert_eq!(r.unwrap_err().errno, 22);
    assert!(request(&m, &k, &rule(Action::Block, TCP, "relative/path"), 1).is_err());
    assert!(request(&m, &k, &rule(Action::Block, 256, "/bin/x"), 1).is_err());
    assert_eq!(m.engine.rules.read().len(), 0);
}

#[test]
fn error_command_is_answered_to_the_asker_only() {
    let (m, k) = enabled();
    request(&m, &k, &Request::Subscribe, 10).unwrap();
    k.take_sent();
    request(&m, &k, &Request::Error, 20).unwrap();
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].cmd, sent[0].portid), (Command::Error, 20));
    assert!(!m.subs.read().contains(20), "ERROR is not an admin command");
}

// ---- module parameters --------------------------------------------------------------------

#[test]
fn load_logs_the_initial_policy() {
    let m = module();
    let k = Fake::new();
    m.param_set("mode", "enabled").unwrap();
    m.init(&k);
    let logs = k.logs.borrow();
    assert_eq!(
        logs.as_slice(),
        ["mode=enabled unkrule=allow unkproc=allow unkprot=allow fail=allow longpath=block"]
    );
}

#[test]
fn module_parameters_set_initial_flags_and_explain_refusals() {
    let m = module();
    m.param_set("mode", "enabled").unwrap();
    m.param_set("unkrule", "block").unwrap();
    m.param_set("longpath", "65281").unwrap();
    assert_eq!(
        m.engine.flags.get(e7_core::Flag::Mode),
        Const::Enabled.value()
    );
    assert_eq!(
        m.engine.flags.get(e7_core::Flag::UnkRule),
        Const::Block.value()
    );
    assert_eq!(
        m.engine.flags.get(e7_core::Flag::LongPath),
        Const::Allow.value()
    );
    let e = m.param_set("mode", "on").unwrap_err().to_string();
    assert!(
        e.contains("enabled") && e.contains("disabled") && e.contains("block"),
        "{e}"
    );
    let e = m.param_set("unkrule", "enabled").unwrap_err().to_string();
    assert!(e.contains("allow"), "{e}");
    assert!(m.param_set("uptime", "5").is_err());
    assert!(m
        .param_set("nosuch", "5")
        .unwrap_err()
        .to_string()
        .contains("settable"));
}

// ---- qualified rules (`to`, `port`, `user`) ------------------------------------------------

fn qual(to: &str, ports: Option<&str>, uid: Option<u32>) -> e7_proto::qual::Qualifiers {
    e7_proto::qual::Qualifiers {
        dest: e7_proto::qual::Dest::parse(to).unwrap(),
        ports: ports.map(|p| e7_proto::qual::Ports::parse(p).unwrap()),
        uid,
    }
}

fn to(mut p: PacketIn, a: [u8; 4], port: u16) -> PacketIn {
    p.peer = e7_core::Peer {
        dst: Some(e7_core::qualified::Addr::V4(a)),
        dport: Some(port),
        routed: false,
    };
    p
}

/// Every rule a plain QUERY answers, with its qualifiers (the chain shape, as the CLI reads it).
fn query_all(m: &M, k: &Fake) -> Vec<(Action, u32, String, e7_proto::qual::Qualifiers)> {
    k.take_sent();
    request(m, k, &Request::Query, 1).unwrap();
    let mut out = Vec::new();
    for s in k.take_sent() {
        if let Ok(Reply::Query(q)) = parse_reply(s.cmd.value(), &s.body) {
            for r in q.qualified_rules() {
                out.push((r.spec.action, r.spec.prot, r.spec.path.to_string(), r.qual));
            }
        }
    }
    out
}

#[test]
fn qualified_rules_are_added_listed_enforced_per_destination_and_cleared() {
    let (m, k) = enabled();
    assert_eq!(
        m.flag_value(&k, Flag::Qualifiers),
        7,
        "announces to, port, user"
    );
    let block10 = qual("10.0.0.0/8", None, None);
    let spec = |action, prot, path| RuleSpec { prot, path, action };
    request(
        &m,
        &k,
        &Request::AddQualified(spec(Action::Block, Const::Any.value(), "/"), block10),
        1,
    )
    .unwrap();
    request(&m, &k, &rule(Action::Allow, UDP, "/usr/bin/dig"), 1).unwrap();
    assert_eq!(
        query_all(&m, &k),
        vec![
            (
                Action::Allow,
                UDP,
                "/usr/bin/dig".to_string(),
                qual("any", None, None)
            ),
            (Action::Block, Const::Any.value(), "/".to_string(), block10),
        ]
    );
    k.process(42, "/usr/bin/dig", &[5000]);
    k.current.set(Some(42));
    let sk = k.sock(1, 100, 5000, SockKind::User);
    // An unconnected socket: each packet its own destination's verdict, never a cached one from
    // the other destination.
    for _ in 0..3 {
        let allowed = to(pkt(Some(sk), UDP, true), [1, 1, 1, 1], 53);
        let blocked = to(pkt(Some(sk), UDP, true), [10, 1, 2, 3], 53);
        assert_eq!(m.packet(&k, &allowed), Verdict::Accept);
        assert_eq!(m.packet(&k, &blocked), Verdict::Drop);
    }
    // A packet whose destination the hook did not read (no rule depended on it when it looked):
    // no `to` rule matches, and its verdict answers no packet whose destination was read.
    let mut unknown = pkt(Some(sk), UDP, true);
    unknown.peer = e7_core::Peer::UNKNOWN;
    assert_eq!(m.packet(&k, &unknown), Verdict::Accept);
    assert_eq!(
        m.packet(&k, &to(pkt(Some(sk), UDP, true), [10, 0, 0, 1], 53)),
        Verdict::Drop
    );
    // A user rule for uid 1000 (the packets' socket uid) beats the program's allow.
    request(
        &m,
        &k,
        &Request::AddQualified(
            spec(Action::Block, UDP, "/usr/bin/"),
            qual("any", Some("53"), Some(1000)),
        ),
        1,
    )
    .unwrap();
    assert_eq!(
        m.packet(&k, &to(pkt(Some(sk), UDP, true), [1, 1, 1, 1], 53)),
        Verdict::Drop
    );
    assert_eq!(
        m.packet(&k, &to(pkt(Some(sk), UDP, true), [1, 1, 1, 1], 54)),
        Verdict::Accept
    );
    // Clearing the one qualified rule by its qualifiers; a wrong qualifier finds nothing.
    let clear = |q| {
        Request::Clear(ClearSpec::Qualified {
            prot: UDP,
            path: "/usr/bin/",
            qual: q,
        })
    };
    assert_eq!(
        request(&m, &k, &clear(qual("any", Some("54"), Some(1000))), 1)
            .unwrap_err()
            .errno,
        2
    );
    request(&m, &k, &clear(qual("any", Some("53"), Some(1000))), 1).unwrap();
    assert_eq!(
        m.packet(&k, &to(pkt(Some(sk), UDP, true), [1, 1, 1, 1], 53)),
        Verdict::Accept
    );
    // CLEAR by action and CLEAR all reach the qualified table too.
    request(&m, &k, &Request::Clear(ClearSpec::Action(Action::Block)), 1).unwrap();
    assert_eq!(query_all(&m, &k).len(), 1);
    assert_eq!(
        m.packet(&k, &to(pkt(Some(sk), UDP, true), [10, 0, 0, 1], 53)),
        Verdict::Accept
    );
    request(
        &m,
        &k,
        &Request::AddQualified(spec(Action::Block, Const::Any.value(), "/"), block10),
        1,
    )
    .unwrap();
    request(&m, &k, &Request::Clear(ClearSpec::All), 1).unwrap();
    assert!(query_all(&m, &k).is_empty());
}

#[test]
fn a_qualified_rule_path_must_survive_the_old_consoles_cut() {
    let (m, k) = enabled();
    let long = format!("/{}", "a".repeat(253));
    let r = request(
        &m,
        &k,
        &Request::AddQualified(
            RuleSpec {
                prot: TCP,
                path: &long,
                action: Action::Block,
            },
            qual("10.0.0.0/8", None, None),
        ),
        1,
    );
    assert_eq!(r.unwrap_err().errno, 22);
    let ok = format!("/{}", "a".repeat(252));
    request(
        &m,
        &k,
        &Request::AddQualified(
            RuleSpec {
                prot: TCP,
                path: &ok,
                action: Action::Block,
            },
            qual("10.0.0.0/8", None, None),
        ),
        1,
    )
    .unwrap();
    assert_eq!(query_all(&m, &k)[0].2, ok);
}

// ---- per-program statistics (issue 12) ----------------------------------------------------------

/// Every message of a STATS dump, as the shim's dumpit would build them (the shim's room).
fn stats_dump(m: &M, k: &Fake) -> Vec<Vec<u8>> {
    let mut cursor = [0u64; 2];
    let mut out = Vec::new();
    for _ in 0..=512 {
        let mut buf = vec![0u8; ROOM];
        let n = m.dump_stats(k, &mut buf, &mut cursor).unwrap();
        if n == 0 {
            return out;
        }
        out.push(buf[..n].to_vec());
    }
    panic!("the STATS dump never completed");
}

/// (path, accepted packets, accepted bytes, dropped packets, dropped bytes, state, reason).
type Row = (String, u64, u64, u64, u64, u32, e7_proto::stats::Reason);

fn stats_rows(m: &M, k: &Fake) -> Vec<Row> {
    let mut rows = Vec::new();
    for msg in stats_dump(m, k) {
        let Reply::Stats(st) = parse_reply(Command::Stats.value(), &msg).unwrap() else {
            panic!("not a STATS reply");
        };
        for e in st.entries() {
            rows.push((
                String::from_utf8(e.path.to_vec()).unwrap(),
                e.accept_packets,
                e.accept_bytes,
                e.drop_packets,
                e.drop_bytes,
                e.state,
                e.reason,
            ));
        }
    }
    rows
}

#[test]
fn stats_count_each_programs_packets_and_bytes_by_verdict() {
    use e7_proto::stats::Reason;
    let (m, k) = enabled();
    k.pkt_len.set(100);
    k.process(42, "/opt/a/e7-probe", &[5000]);
    k.process(43, "/opt/b/e7-probe", &[5001]);
    let a = k.sock(1, 100, 5000, SockKind::User);
    let b = k.sock(2, 101, 5001, SockKind::User);
    for _ in 0..3 {
        k.current.set(Some(42));
        assert_eq!(m.packet(&k, &pkt(Some(a), UDP, true)), Verdict::Accept);
        k.current.set(Some(43));
        assert_eq!(m.packet(&k, &pkt(Some(b), UDP, true)), Verdict::Accept);
    }
    // Softirq hits count too (the cached verdict names the program).
    assert_eq!(m.packet(&k, &pkt(Some(a), UDP, false)), Verdict::Accept);
    assert_eq!(
        stats_rows(&m, &k),
        vec![
            (
                "/opt/a/e7-probe".into(),
                4,
                400,
                0,
                0,
                Const::Allow.value(),
                Reason::NoRule
            ),
            (
                "/opt/b/e7-probe".into(),
                3,
                300,
                0,
                0,
                Const::Allow.value(),
                Reason::NoRule
            ),
        ]
    );
    request(&m, &k, &rule(Action::Block, UDP, "/opt/a/e7-probe"), 1).unwrap();
    k.pkt_len.set(60);
    k.current.set(Some(42));
    for _ in 0..2 {
        assert_eq!(m.packet(&k, &pkt(Some(a), UDP, true)), Verdict::Drop);
    }
    let rows = stats_rows(&m, &k);
    assert_eq!(
        rows[0],
        (
            "/opt/a/e7-probe".into(),
            4,
            400,
            2,
            120,
            Const::Block.value(),
            Reason::Rule
        )
    );
    assert_eq!(rows[1].1, 3);
}

#[test]
fn stats_need_admin_unless_statsunpriv() {
    let (m, k) = enabled();
    assert!(m.stats_permitted(true));
    assert!(!m.stats_permitted(false), "default: admin only");
    set(&m, &k, Flag::StatsUnpriv, Const::Enabled);
    assert!(m.stats_permitted(false));
    set(&m, &k, Flag::StatsUnpriv, Const::Disabled);
    assert!(!m.stats_permitted(false));
    // A plain (non-dump) STATS request is refused, whoever sends it.
    let r = request_as(&m, &k, &Request::Stats, 9, true).unwrap_err();
    assert_eq!(r.errno, 95);
}

#[test]
fn a_reused_slot_never_shows_the_previous_programs_counts() {
    let (m, k) = enabled();
    k.pkt_len.set(10);
    k.process(42, "/opt/old", &[5000]);
    k.current.set(Some(42));
    let a = k.sock(1, 100, 5000, SockKind::User);
    for _ in 0..5 {
        m.packet(&k, &pkt(Some(a), UDP, true));
    }
    let old = m.engine.exes.read().find(b"/opt/old").unwrap();
    // The program leaves the executable table; another takes the same slot (a newer generation).
    assert!(m.engine.exes.write().remove(old));
    let new = m.engine.exes.write().intern(b"/opt/new").unwrap();
    assert_eq!(new.slot(), old.slot());
    assert_ne!(new.gen(), old.gen());
    assert_eq!(
        stats_rows(&m, &k),
        vec![],
        "no packet of /opt/new was counted yet"
    );
    // A late packet of the old program (its socket's cached verdict names the old id) is not
    // counted for the new one either.
    k.prog_count(old, 0, UDP);
    k.progs.borrow_mut().clear();
    k.prog_count(new, 0, UDP);
    k.prog_count(old, 0, UDP);
    let rows = stats_rows(&m, &k);
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0].0.as_str(), rows[0].1), ("/opt/new", 1));
}

#[test]
fn a_stats_dump_spans_messages_without_losing_programs() {
    let (m, k) = enabled();
    k.pkt_len.set(1);
    for i in 0..200u32 {
        let path = format!("/opt/p{i:03}/{}", "x".repeat(200));
        let id = m.engine.exes.write().intern(path.as_bytes()).unwrap();
        for _ in 0..=i % 3 {
            k.prog_count(id, 0, UDP);
        }
    }
    let msgs = stats_dump(&m, &k);
    assert!(msgs.len() > 1, "200 long paths need several messages");
    let rows = stats_rows(&m, &k);
    assert_eq!(rows.len(), 200);
    for (i, r) in rows.iter().enumerate() {
        assert!(r.0.starts_with(&format!("/opt/p{i:03}/")), "{}", r.0);
        assert_eq!(r.1, u64::from(i as u32 % 3) + 1);
    }
}

#[test]
fn stats_report_first_and_last_seen_as_seconds_ago() {
    let (m, k) = enabled();
    k.process(42, "/opt/a/e7-probe", &[5000]);
    k.current.set(Some(42));
    let a = k.sock(1, 100, 5000, SockKind::User);
    m.packet(&k, &pkt(Some(a), UDP, true));
    k.advance(7_000);
    m.packet(&k, &pkt(Some(a), UDP, true));
    k.advance(3_000);
    let msgs = stats_dump(&m, &k);
    let Reply::Stats(st) = parse_reply(Command::Stats.value(), &msgs[0]).unwrap() else {
        panic!("not a STATS reply");
    };
    let e = st.entries().next().unwrap();
    assert_eq!((e.first_seen, e.last_seen, e.prot), (10, 3, UDP));
}

#[test]
fn stats_count_only_while_the_mode_enables_filtering() {
    let (m, k) = enabled();
    request(&m, &k, &Request::SetMode(Mode::Block), 1).unwrap();
    k.process(42, "/opt/a/e7-probe", &[5000]);
    k.current.set(Some(42));
    let a = k.sock(1, 100, 5000, SockKind::User);
    assert_eq!(m.packet(&k, &pkt(Some(a), UDP, true)), Verdict::Drop);
    assert_eq!(
        stats_rows(&m, &k),
        vec![],
        "mode block decides before asking who sent it"
    );
}

/// A routed packet (IPv6 routing header, IPv4 source route) is decided for every address its route
/// names, on the module's path too: refused for a blocked hop behind an allowed IP destination, its
/// event names that hop; never answered from the socket's cached verdict.
#[test]
fn routed_packets_are_decided_for_every_address_and_their_event_names_the_refused_one() {
    let (m, k) = enabled();
    set(&m, &k, Flag::Drops, Const::Enabled);
    request(
        &m,
        &k,
        &Request::AddQualified(
            RuleSpec {
                prot: Const::Any.value(),
                path: "/",
                action: Action::Block,
            },
            qual("10.0.0.0/8", None, None),
        ),
        1,
    )
    .unwrap();
    request(&m, &k, &rule(Action::Allow, UDP, "/usr/bin/dig"), 1).unwrap();
    request(&m, &k, &Request::Subscribe, 71).unwrap();
    m.unsubscribe(1); // the port used by the set() helper
    k.process(42, "/usr/bin/dig", &[5000]);
    k.current.set(Some(42));
    let sk = k.sock(1, 100, 5000, SockKind::User);
    // A connected socket to 1.1.1.1: its plain packets are cached.
    let plain = to(pkt(Some(sk), UDP, true), [1, 1, 1, 1], 53);
    assert_eq!(m.packet(&k, &plain), Verdict::Accept);
    assert_eq!(m.packet(&k, &plain), Verdict::Accept);
    let routed = |p: PacketIn| PacketIn {
        peer: e7_core::Peer {
            routed: true,
            ..p.peer
        },
        ..p
    };
    *k.route.borrow_mut() = vec![
        e7_core::RouteHop::Addr(e7_core::qualified::Addr::V4([9, 9, 9, 9])),
        e7_core::RouteHop::Addr(e7_core::qualified::Addr::V4([10, 1, 2, 3])),
    ];
    k.take_sent();
    assert_eq!(m.packet(&k, &routed(plain)), Verdict::Drop);
    m.work_events(&k);
    let sent = k.take_sent();
    assert_eq!(sent.len(), 1, "one block event");
    match parse_reply(sent[0].cmd.value(), &sent[0].body).unwrap() {
        Reply::Event { state, peer, .. } => {
            assert_eq!(state, EventState::Block);
            assert_eq!(
                (peer.dst, peer.dport),
                (Some(e7_core::qualified::Addr::V4([10, 1, 2, 3])), Some(53)),
                "the event names the hop that refused the packet"
            );
        }
        other => panic!("not an event: {other:?}"),
    }
    // Its plain packets keep their verdict; a route of allowed addresses only passes.
    assert_eq!(m.packet(&k, &plain), Verdict::Accept);
    *k.route.borrow_mut() = vec![e7_core::RouteHop::Addr(e7_core::qualified::Addr::V4([
        9, 9, 9, 9,
    ]))];
    assert_eq!(m.packet(&k, &routed(plain)), Verdict::Accept);
    // A route the shim cannot read: the `fail` action (allow by default, block here).
    set(&m, &k, Flag::Fail, Const::Block);
    *k.route.borrow_mut() = vec![e7_core::RouteHop::Unreadable];
    assert_eq!(m.packet(&k, &routed(plain)), Verdict::Drop);
}
