//! The shared engine: fast path, invalidation by rule/flag changes, identification on misses, squelch.
#![allow(
    clippy::result_large_err,
    reason = "RuleRing::add hands a full ring's rule back by value (heapless style)"
)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::ControlFlow;

use e7_core::sync::Engine;
use e7_core::{
    Action, Const, Decision, Deferred, EventKind, ExeError, ExePath, Family, Flag, Host, Identity,
    Packet, Reason, Rule, SockInfo, SockKind, SocketKey, SocketOwner, TaskId, Verdict, PROTO_TCP,
    PROTO_UDP,
};

#[cfg(feature = "std")]
use e7_core::Firewall;

type StdEngine = Engine<parking_lot::RawRwLock>;

/// A write run inside the packet path, given the number of host calls made so far.
type Interleave = Box<dyn FnMut(usize)>;

/// The fake host's socket handle.
#[derive(Debug, Clone, Copy)]
struct FakeSock {
    key: u64,
    inode: u64,
    kind: SockKind,
}

/// A scripted host: processes hold socket inodes (`owners`), run executables (`exes`); `sender`
/// is the current task.
#[derive(Default)]
struct Fake {
    owners: RefCell<Vec<SocketOwner>>,
    exes: RefCell<HashMap<u32, Vec<u8>>>,
    execs: RefCell<HashMap<u32, u64>>,
    sender: Cell<Option<u32>>,
    now: Cell<u64>,
    walks: Cell<usize>,
    resolves: Cell<usize>,
    deferred: RefCell<Vec<Deferred>>,
    /// Called with the running count before every host call (interleaving tests).
    hook: RefCell<Option<Interleave>>,
    /// tgid → whether its executable's path verifies in the initial mount namespace and root;
    /// listed tgids are `Unverified` outside deferred work (`in_work`), as in the kernel's hook.
    verify: RefCell<HashMap<u32, bool>>,
    in_work: Cell<bool>,
    calls: Cell<usize>,
}

impl Fake {
    fn call(&self) {
        let n = self.calls.get();
        self.calls.set(n + 1);
        if let Some(h) = self.hook.borrow_mut().as_mut() {
            h(n);
        }
    }
    fn task(&self, tgid: u32) -> TaskId {
        TaskId {
            start_ns: u64::from(tgid) * 1000,
            exec_id: self.execs.borrow().get(&tgid).copied().unwrap_or(1),
            tgid,
            pad: 0,
        }
    }
    fn holds(&self, tgid: u32, inode: u64) -> bool {
        self.owners
            .borrow()
            .iter()
            .any(|o| o.inode == inode && o.tgid == tgid)
    }
    fn exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.resolves.set(self.resolves.get() + 1);
        let task = self.task(tgid);
        match self.verify.borrow().get(&tgid) {
            Some(_) if !self.in_work.get() => return Err(ExeError::Unverified(task)),
            Some(false) => return Err(ExeError::NoHostPath(task)),
            _ => {}
        }
        match self.exes.borrow().get(&tgid) {
            Some(p) if p.len() > 255 => Err(ExeError::TooLong(task)),
            Some(p) => out.set(p).map(|()| task).map_err(|_| ExeError::NoExe(task)),
            None => Err(ExeError::NoTask),
        }
    }
}

impl Host for Fake {
    type Sock<'s> = FakeSock;
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn sock_key(&self, sk: FakeSock) -> SocketKey {
        self.call();
        SocketKey(sk.key)
    }
    fn sock_info(&self, sk: FakeSock) -> SockInfo {
        self.call();
        SockInfo {
            inode: sk.inode,
            kind: sk.kind,
        }
    }
    fn sender_holds(&self, sk: FakeSock) -> Option<TaskId> {
        self.call();
        let t = self.sender.get()?;
        self.holds(t, sk.inode).then(|| self.task(t))
    }
    fn sender(&self, _sk: FakeSock) -> Option<TaskId> {
        self.call();
        self.sender.get().map(|t| self.task(t))
    }
    fn sender_exe(&self, _sk: FakeSock, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.call();
        self.exe(self.sender.get().ok_or(ExeError::NoTask)?, out)
    }
    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.call();
        self.exe(tgid, out)
    }
    fn for_each_socket(&self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        self.call();
        self.walks.set(self.walks.get() + 1);
        for o in self.owners.borrow().iter() {
            if f(*o).is_break() {
                return;
            }
        }
    }
    fn defer(&self, s: Deferred) {
        self.call();
        self.deferred.borrow_mut().push(s);
    }
    fn wants_events(&self) -> bool {
        true
    }
}

/// What a test sees of one decision, whichever way it was made.
struct Out {
    decision: Decision,
    event: Option<(EventKind, u32, Vec<u8>)>,
    cached: bool,
}

/// The system under test: the engine itself, or the userspace `Firewall` over it (one packet
/// path, one test set: every behaviour test below runs against both).
enum Sut {
    Engine(Box<StdEngine>),
    #[cfg(feature = "std")]
    Firewall(Firewall),
}

impl Sut {
    fn engine(&self) -> &StdEngine {
        match self {
            Sut::Engine(e) => e,
            #[cfg(feature = "std")]
            Sut::Firewall(f) => f.engine(),
        }
    }
    fn decide(&self, fake: &Fake, pkt: &Packet<FakeSock>) -> Out {
        match self {
            Sut::Engine(e) => {
                let o = e.decide_packet(fake, pkt);
                let event = o.event.map(|ev| {
                    let mut p = ExePath::EMPTY;
                    assert!(e.exe_path(ev.exe, &mut p));
                    (ev.kind, ev.proto, p.as_bytes().to_vec())
                });
                Out {
                    decision: o.decision,
                    event,
                    cached: o.cached,
                }
            }
            #[cfg(feature = "std")]
            Sut::Firewall(f) => {
                let hits = f
                    .engine()
                    .stats
                    .hits
                    .load(std::sync::atomic::Ordering::Relaxed);
                let (decision, ev) = f.decide_with(fake, pkt);
                let cached = f
                    .engine()
                    .stats
                    .hits
                    .load(std::sync::atomic::Ordering::Relaxed)
                    != hits;
                Out {
                    decision,
                    event: ev.map(|e| (e.kind, e.proto, e.path.as_bytes().to_vec())),
                    cached,
                }
            }
        }
    }
}

impl std::ops::Deref for Sut {
    type Target = StdEngine;
    fn deref(&self) -> &StdEngine {
        self.engine()
    }
}

/// Like [`both`], with the system under test shared (a write hook inside the fake host holds it).
fn both_shared(test: impl Fn(&std::sync::Arc<Sut>, &Fake)) {
    #[allow(clippy::declare_interior_mutable_const)]
    const FRESH: StdEngine = Engine::new();
    test(&std::sync::Arc::new(Sut::Engine(Box::new(FRESH))), &fake());
    #[cfg(feature = "std")]
    test(
        &std::sync::Arc::new(Sut::Firewall(Firewall::new())),
        &fake(),
    );
}

fn pkt(proto: u32, key: u64, inode: u64) -> Packet<FakeSock> {
    Packet {
        peer: e7_core::Peer::UNKNOWN,
        sk: Some(FakeSock {
            key,
            inode,
            kind: SockKind::User,
        }),
        proto,
        uid: 1000,
        family: Family::Ipv4,
        malformed: false,
        in_task: true,
    }
}

/// Mode enabled and one rule for `/usr/bin/wget` (the fake's sender): where most cases start.
fn enforce_wget(e: &Sut, proto: u32, action: Action) {
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    e.edit_rules(|r| r.add(Rule::new(proto, b"/usr/bin/wget", action).unwrap()))
        .unwrap();
}

/// `p` sent in softirq context: no sender task, so it can only be answered from the cache or the
/// deferred identification.
fn softirq(p: Packet<FakeSock>) -> Packet<FakeSock> {
    Packet {
        in_task: false,
        ..p
    }
}

fn run(e: &Sut, fake: &Fake, proto: u32, key: u64, inode: u64, now: u64) -> Out {
    fake.now.set(now);
    e.decide(fake, &pkt(proto, key, inode))
}

fn fake() -> Fake {
    let fake = Fake::default();
    fake.owners.borrow_mut().push(SocketOwner {
        inode: 500,
        tgid: 50,
    });
    fake.owners.borrow_mut().push(SocketOwner {
        inode: 600,
        tgid: 60,
    });
    fake.exes.borrow_mut().insert(50, b"/usr/bin/wget".to_vec());
    fake.exes.borrow_mut().insert(60, b"/opt/tool".to_vec());
    fake
}

/// Runs `test` against the engine and (feature `std`, on in `cargo test --workspace`) against the
/// userspace `Firewall`.
fn both(test: impl Fn(&Sut, &Fake)) {
    #[allow(clippy::declare_interior_mutable_const)]
    const FRESH: StdEngine = Engine::new();
    test(&Sut::Engine(Box::new(FRESH)), &fake());
    #[cfg(feature = "std")]
    test(&Sut::Firewall(Firewall::new()), &fake());
}

const ENABLED: u32 = Const::Enabled.value();
const BLOCK: u32 = Const::Block.value();

#[test]
fn disabled_mode_does_no_work() {
    both(|e, fake| {
        let out = run(e, fake, PROTO_TCP, 1, 500, 0);
        assert_eq!(out.decision.verdict, Verdict::Accept);
        assert_eq!(out.decision.reason, Reason::Disabled);
        assert_eq!((fake.walks.get(), fake.resolves.get()), (0, 0));
        assert_eq!(
            e.flags.get(Flag::QPackets),
            0,
            "qpackets counts only when not disabled"
        );
        assert!(e.sockets.read().is_empty());
    });
}

#[test]
fn miss_then_fast_path_hit() {
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        e.edit_rules(|r| r.add(Rule::new(PROTO_TCP, b"/usr/bin/", Action::Block).unwrap()))
            .unwrap();
        let out = run(e, fake, PROTO_TCP, 1, 500, 0);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert!(!out.cached);
        assert_eq!((fake.walks.get(), fake.resolves.get()), (1, 1));
        let out = run(e, fake, PROTO_TCP, 1, 500, 1);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert!(out.cached, "second packet is served from the cache");
        assert_eq!(
            (fake.walks.get(), fake.resolves.get()),
            (1, 1),
            "no identification on a hit"
        );
        assert_eq!(e.flags.get(Flag::QPackets), 2);
        let (known, _) = e.sockets.read().lookup(SocketKey(1)).unwrap();
        assert_eq!((known.owner.tgid, known.inode, known.uid), (50, 500, 1000));
    });
}

#[test]
fn rule_change_applies_to_open_sockets_on_next_packet() {
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        let out = run(e, fake, PROTO_TCP, 1, 500, 0);
        assert_eq!(out.decision.reason, Reason::NoRule);
        assert_eq!(out.decision.verdict, Verdict::Accept);
        e.edit_rules(|r| r.add(Rule::new(PROTO_TCP, b"/usr/bin/wget", Action::Block).unwrap()))
            .unwrap();
        let out = run(e, fake, PROTO_TCP, 1, 500, 1);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert!(!out.cached);
        assert_eq!(
            fake.resolves.get(),
            1,
            "recomputed from the cached identity, not re-identified"
        );
        let out = run(e, fake, PROTO_TCP, 1, 500, 2);
        assert!(out.cached);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        // Removing it applies as well.
        assert!(e.edit_rules(|r| r.remove(PROTO_TCP, b"/usr/bin/wget")));
        assert_eq!(
            run(e, fake, PROTO_TCP, 1, 500, 3).decision.verdict,
            Verdict::Accept
        );
    });
}

#[test]
fn flag_change_applies_to_open_sockets_on_next_packet() {
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        assert_eq!(
            run(e, fake, PROTO_UDP, 2, 600, 0).decision.verdict,
            Verdict::Accept
        );
        e.flags.set(Flag::UnkRule, BLOCK).unwrap();
        let out = run(e, fake, PROTO_UDP, 2, 600, 1);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        e.flags.set(Flag::Mode, BLOCK).unwrap();
        assert_eq!(
            run(e, fake, PROTO_UDP, 2, 600, 2).decision.reason,
            Reason::BlockMode
        );
    });
}

#[test]
fn pending_events_are_squelched_per_second() {
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        let out = run(e, fake, PROTO_TCP, 1, 500, 10_000);
        let ev = out.event.unwrap();
        assert_eq!(ev.0, EventKind::Pending);
        assert_eq!(ev.1, PROTO_TCP);
        assert_eq!(ev.2, b"/usr/bin/wget");
        // Same program, other socket, same second: squelched.
        assert!(run(e, fake, PROTO_TCP, 3, 500, 10_500).event.is_none());
        assert!(run(e, fake, PROTO_TCP, 1, 500, 10_900).event.is_none());
        assert!(run(e, fake, PROTO_TCP, 1, 500, 11_000).event.is_some());
        // With squelch off every packet reports.
        e.flags.set(Flag::Squelch, Const::Disabled.value()).unwrap();
        assert!(run(e, fake, PROTO_TCP, 1, 500, 11_001).event.is_some());
        assert!(run(e, fake, PROTO_TCP, 1, 500, 11_002).event.is_some());
    });
}

#[test]
fn unknown_owner_long_path_and_non_full_sockets() {
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        e.flags.set(Flag::UnkProc, BLOCK).unwrap();
        let out = run(e, fake, PROTO_TCP, 9, 999, 0);
        assert_eq!(out.decision.reason, Reason::UnknownProcess);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert!(
            e.sockets.read().peek(SocketKey(9)).is_none(),
            "unknown sockets are not cached as unknown forever"
        );
        // Long path: longpath (block by default), cached as PathTooLong.
        let mut long = b"/".to_vec();
        long.extend(std::iter::repeat_n(b'x', 300));
        fake.exes.borrow_mut().insert(70, long);
        fake.owners.borrow_mut().push(SocketOwner {
            inode: 700,
            tgid: 70,
        });
        let out = run(e, fake, PROTO_TCP, 7, 700, 1_000);
        assert_eq!(out.decision.reason, Reason::PathTooLong);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert_eq!(
            e.sockets.read().peek(SocketKey(7)).unwrap().0.exe,
            Identity::PathTooLong
        );
        // No full socket: unkproc, no lookup at all.
        let before = (fake.walks.get(), fake.resolves.get());
        let sock = Packet {
            peer: e7_core::Peer::UNKNOWN,
            sk: None,
            family: Family::Ipv6,
            ..pkt(PROTO_TCP, 1, 500)
        };
        let out = e.decide(fake, &sock);
        assert_eq!(out.decision.reason, Reason::UnknownProcess);
        assert_eq!((fake.walks.get(), fake.resolves.get()), before);
    });
}

#[test]
fn the_sending_task_skips_the_walk() {
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        fake.sender.set(Some(60));
        e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/opt/tool", Action::Allow).unwrap()))
            .unwrap();
        e.flags.set(Flag::Accepts, ENABLED).unwrap();
        let out = run(e, fake, PROTO_UDP, 5, 600, 0);
        assert_eq!(fake.walks.get(), 0);
        assert_eq!(out.decision.verdict, Verdict::Accept);
        assert_eq!(out.event.map(|e| e.0), Some(EventKind::Allow));
    });
}

#[test]
fn evicted_executable_is_reidentified_after_policy_change() {
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        run(e, fake, PROTO_TCP, 1, 500, 0);
        // Evict every path from the executable table.
        {
            let mut exes = e.exes.write();
            for i in 0..256 {
                exes.intern(format!("/filler/{i}").as_bytes()).unwrap();
            }
        }
        e.edit_rules(|r| r.add(Rule::new(PROTO_TCP, b"/usr/bin/wget", Action::Block).unwrap()))
            .unwrap();
        let resolves = fake.resolves.get();
        let out = run(e, fake, PROTO_TCP, 1, 500, 1);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert_eq!(
            fake.resolves.get(),
            resolves + 1,
            "stale ExeId forces re-identification"
        );
    });
}

#[test]
fn readers_run_concurrently() {
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        for k in 0..32u64 {
            run(e, fake, PROTO_TCP, k, 500, 0);
        }
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(move || {
                    let f = Fake::default();
                    for i in 0..2000u64 {
                        let out = run(e, &f, PROTO_TCP, i % 32, 500, 1);
                        assert_eq!(out.decision.verdict, Verdict::Accept);
                    }
                });
            }
            s.spawn(move || {
                for i in 0..200 {
                    let a = if i % 2 == 0 {
                        Action::Allow
                    } else {
                        Action::Block
                    };
                    e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/x", a).unwrap()))
                        .unwrap();
                }
            });
        });
    });
}

/// A std [`Firewall`](e7_core::Firewall) in mode enabled with a udp rule `action` for this test
/// binary, and a real UDP socket of this process (kept open by the returned `UdpSocket`) described
/// by its inode, with `sender` as the embedder's hint.
#[cfg(feature = "std")]
fn std_firewall_with_own_socket(
    action: Action,
    sender: Option<u32>,
) -> (
    e7_core::Firewall,
    String,
    std::net::UdpSocket,
    e7_core::StdSock,
) {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let fw = e7_core::Firewall::new();
    fw.set(Flag::Mode, ENABLED).unwrap();
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let me = me.to_str().unwrap().to_owned();
    fw.add_rule(PROTO_UDP, &me, action).unwrap();
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ino = std::fs::metadata(format!("/proc/self/fd/{}", udp.as_raw_fd()))
        .unwrap()
        .ino();
    let sock = e7_core::StdSock {
        key: SocketKey(ino),
        inode: ino,
        sender,
    };
    (fw, me, udp, sock)
}

#[cfg(feature = "std")]
#[test]
fn std_firewall_identifies_a_real_socket_of_this_process() {
    let (fw, me, _udp, sock) = std_firewall_with_own_socket(Action::Block, None);
    let (d, _) = fw.decide(&Packet {
        peer: e7_core::Peer::UNKNOWN,
        sk: Some(&sock),
        proto: PROTO_UDP,
        uid: 0,
        family: Family::Ipv4,
        malformed: false,
        in_task: true,
    });
    assert_eq!(d.verdict, Verdict::Drop);
    assert_eq!(d.reason, Reason::Rule);
    assert_eq!(fw.rules(), vec![(PROTO_UDP, me, Action::Block)]);
    assert!(fw.add_rule(PROTO_UDP, "relative", Action::Block).is_err());
}

#[test]
fn cached_verdict_is_per_protocol_for_raw_sockets() {
    // A raw IP_HDRINCL socket can send any protocol: the UDP verdict must not be replayed for TCP.
    both(|e, fake| {
        enforce_wget(e, PROTO_UDP, Action::Allow);
        e.flags.set(Flag::UnkRule, BLOCK).unwrap();
        assert_eq!(
            run(e, fake, PROTO_UDP, 1, 500, 0).decision.verdict,
            Verdict::Accept
        );
        assert!(run(e, fake, PROTO_UDP, 1, 500, 1).cached);
        let tcp = run(e, fake, PROTO_TCP, 1, 500, 2);
        assert_eq!(tcp.decision.verdict, Verdict::Drop);
        assert_eq!(tcp.decision.reason, Reason::NoRule);
        assert_eq!(
            fake.resolves.get(),
            1,
            "same socket, same identity: no re-identification"
        );
    });
}

#[test]
fn a_socket_no_descriptor_table_holds_belongs_to_its_sender() {
    // io_uring: a socket registered with IORING_REGISTER_FILES and then close()d is in no fd
    // table; IORING_OP_SEND with IOSQE_FIXED_FILE sends it in the process's (or its io-wq
    // worker's) task context. Before: walk -> no owner -> unkproc (allow).
    both(|e, fake| {
        enforce_wget(e, PROTO_UDP, Action::Block);
        fake.sender.set(Some(50));
        let out = run(e, fake, PROTO_UDP, 77, 7777, 0);
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert_eq!(out.decision.reason, Reason::Rule);
        assert_eq!(fake.walks.get(), 0, "the sender is known: no walk");
        assert!(run(e, fake, PROTO_UDP, 77, 7777, 1).cached);
    });
}

#[test]
fn a_cached_verdict_is_not_reused_for_another_sender() {
    // A socket inherited (fork), passed (SCM_RIGHTS) or taken (pidfd_getfd): the allowed
    // program's verdict must not carry the blocked program's packets.
    both(|e, fake| {
        e.flags.set(Flag::Mode, ENABLED).unwrap();
        e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/opt/tool", Action::Allow).unwrap()))
            .unwrap();
        e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/usr/bin/wget", Action::Block).unwrap()))
            .unwrap();
        fake.owners.borrow_mut().push(SocketOwner {
            inode: 600,
            tgid: 50,
        });
        fake.sender.set(Some(60));
        assert_eq!(
            run(e, fake, PROTO_UDP, 2, 600, 0).decision.verdict,
            Verdict::Accept
        );
        assert!(run(e, fake, PROTO_UDP, 2, 600, 1).cached);
        fake.sender.set(Some(50));
        let out = run(e, fake, PROTO_UDP, 2, 600, 2);
        assert_eq!(
            out.decision.verdict,
            Verdict::Drop,
            "the blocked sender is identified"
        );
        assert!(!out.cached);
        // Softirq packets carry no sender: the last task-context identification holds.
        let late = softirq(pkt(PROTO_UDP, 2, 600));
        assert_eq!(e.decide(fake, &late).decision.verdict, Verdict::Drop);
        fake.sender.set(Some(60));
        assert_eq!(
            run(e, fake, PROTO_UDP, 2, 600, 3).decision.verdict,
            Verdict::Accept
        );
        // The allowed program execs the blocked one: same tgid, new image.
        fake.exes.borrow_mut().insert(60, b"/usr/bin/wget".to_vec());
        fake.execs.borrow_mut().insert(60, 2);
        assert_eq!(
            run(e, fake, PROTO_UDP, 2, 600, 4).decision.verdict,
            Verdict::Drop
        );
        assert!(
            e.stats.resent.load(std::sync::atomic::Ordering::Relaxed) >= 3,
            "each change of sender was re-identified"
        );
    });
}

/// Issue 7, hole #7: a flag write landing in the middle of a packet's decision must never leave a
/// verdict computed with the old flags tagged as current. The fake host performs the write (unkrule
/// allow -> block) just before its `k`-th call, for every call the packet path makes — on a miss,
/// on a hit and on a recompute — and the socket's NEXT packet must see the new flags.
#[test]
fn a_flag_write_interleaved_with_a_packet_never_leaves_a_stale_verdict() {
    for warm in [false, true] {
        for k in 0..12 {
            both_shared(|e, fake| {
                e.flags.set(Flag::Mode, ENABLED).unwrap();
                fake.sender.set(Some(50));
                if warm {
                    // Cached (hit path) under the current generation.
                    assert_eq!(
                        run(e, fake, PROTO_TCP, 1, 500, 0).decision.verdict,
                        Verdict::Accept
                    );
                }
                fake.calls.set(0);
                let writer = std::sync::Arc::clone(e);
                *fake.hook.borrow_mut() = Some(Box::new(move |n| {
                    if n == k {
                        writer.flags.set(Flag::UnkRule, BLOCK).unwrap();
                    }
                }));
                run(e, fake, PROTO_TCP, 1, 500, 1);
                *fake.hook.borrow_mut() = None;
                let next = run(e, fake, PROTO_TCP, 1, 500, 2);
                if e.flags.get(Flag::UnkRule) == BLOCK {
                    assert_eq!(
                        next.decision.verdict,
                        Verdict::Drop,
                        "write before host call {k} (warm cache: {warm}) left a stale allow"
                    );
                }
            });
        }
    }
}

#[test]
fn an_owner_not_found_right_now_is_dropped_never_unkproc() {
    // Issue 7, hole #1: softirq (a timer's retransmit, a listener's SYN-ACK) with the socket not
    // cached used to get `unkproc` (allow by default). Now: dropped, deferred, and the deferred
    // identification decides the socket's next packet by its owner's rules.
    both(|e, fake| {
        enforce_wget(e, PROTO_TCP, Action::Block);
        assert_eq!(e.flags.get(Flag::UnkProc), Const::Allow.value());
        let late = |key, inode| softirq(pkt(PROTO_TCP, key, inode));
        let out = e.decide(fake, &late(1, 500));
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert_eq!(out.decision.reason, Reason::Deferred);
        assert!(out.event.is_none());
        assert!(e.sockets.read().peek(SocketKey(1)).is_none(), "not cached");
        let queued = fake.deferred.borrow().clone();
        assert_eq!(queued.len(), 1);
        assert_eq!(
            e.identify_deferred(fake, &queued[0]),
            e7_core::DeferredOutcome::Inserted
        );
        let out = e.decide(fake, &late(1, 500));
        assert_eq!(
            (out.decision.verdict, out.decision.reason),
            (Verdict::Drop, Reason::Rule)
        );
        // An allowed owner's socket is accepted once identified.
        let out = e.decide(fake, &late(2, 600));
        assert_eq!(out.decision.reason, Reason::Deferred);
        let queued = fake.deferred.borrow().last().copied().unwrap();
        fake.now.set(1_000); // past the walk interval
        e.identify_deferred(fake, &queued);
        assert_eq!(
            e.decide(fake, &late(2, 600)).decision.verdict,
            Verdict::Accept
        );
    });
}

#[test]
fn a_borrowed_path_never_matches_a_rule_and_nspath_decides() {
    // Issue 7, hole #4: a program bind-mounted over an allowed path in a private mount namespace
    // sees that path. Until the deferred work verifies it, its packets are dropped as deferred;
    // verified to have no path of its own, `nspath` alone decides it (no path rule). A chrooted
    // program is known by its real path once verified.
    both(|e, fake| {
        enforce_wget(e, PROTO_UDP, Action::Allow);
        e.flags.set(Flag::UnkRule, BLOCK).unwrap();
        e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/opt/tool", Action::Allow).unwrap()))
            .unwrap();
        fake.verify.borrow_mut().insert(50, false); // borrowed: /usr/bin/wget is not its file
        fake.verify.borrow_mut().insert(60, true); // chroot: /opt/tool is its real path
        for (tgid, key, inode) in [(50, 1, 500), (60, 2, 600)] {
            fake.sender.set(Some(tgid));
            let out = run(e, fake, PROTO_UDP, key, inode, 0);
            assert_eq!(
                (out.decision.verdict, out.decision.reason),
                (Verdict::Drop, Reason::Deferred),
                "tgid {tgid}: not verified yet"
            );
        }
        let queued = fake.deferred.borrow().clone();
        assert_eq!(queued.len(), 2);
        fake.in_work.set(true);
        for (i, q) in queued.iter().enumerate() {
            fake.now.set(1_000 * (i as u64 + 1)); // past the walk interval
            e.identify_deferred(fake, q);
        }
        fake.in_work.set(false);
        fake.sender.set(Some(50));
        let out = run(e, fake, PROTO_UDP, 1, 500, 5_000);
        assert_eq!(
            (out.decision.verdict, out.decision.reason),
            (Verdict::Drop, Reason::NoHostPath)
        );
        fake.sender.set(Some(60));
        let out = run(e, fake, PROTO_UDP, 2, 600, 5_000);
        assert_eq!(
            (out.decision.verdict, out.decision.reason),
            (Verdict::Accept, Reason::Rule)
        );
        // `nspath` is the borrowed identity's only verdict, whatever the rules say.
        e.flags.set(Flag::NsPath, Const::Allow.value()).unwrap();
        e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/usr/bin/wget", Action::Block).unwrap()))
            .ok();
        fake.sender.set(Some(50));
        let out = run(e, fake, PROTO_UDP, 1, 500, 6_000);
        assert_eq!(
            (out.decision.verdict, out.decision.reason),
            (Verdict::Accept, Reason::NoHostPath)
        );
    });
}

// ---- qualified rules on the one packet path (issue 11) -----------------------------------------

fn to(proto: u32, key: u64, inode: u64, dst: [u8; 4], dport: u16) -> Packet<FakeSock> {
    Packet {
        peer: e7_core::Peer {
            dst: Some(e7_core::Addr::V4(dst)),
            dport: Some(dport),
            routed: false,
        },
        ..pkt(proto, key, inode)
    }
}

fn qual_rule(proto: u32, path: &[u8], dest: &str, action: Action) -> e7_core::QualRule {
    let q = e7_core::Qualifiers {
        dest: e7_core::Dest::parse(dest).unwrap(),
        ..e7_core::Qualifiers::NONE
    };
    e7_core::QualRule::new(proto, path, q, action).unwrap()
}

/// `block any / to PREFIX`.
fn block_every_program_to(e: &Sut, prefix: &str) {
    e.edit_qualified(|q| q.add(qual_rule(e7_core::PROTO_ANY, b"/", prefix, Action::Block)))
        .unwrap();
}

/// An unconnected socket alternating between an allowed and a blocked destination: every packet
/// gets its own destination's verdict (a verdict is cached for one destination only).
#[test]
fn unfixed_socket_is_decided_per_destination() {
    both(|e, fake| {
        enforce_wget(e, PROTO_UDP, Action::Allow);
        block_every_program_to(e, "10.0.0.0/8");
        for i in 0..6u64 {
            fake.now.set(i);
            let (dst, want) = if i % 2 == 0 {
                ([10, 0, 0, 1], Verdict::Drop)
            } else {
                ([8, 8, 8, 8], Verdict::Accept)
            };
            let out = e.decide(fake, &to(PROTO_UDP, 7, 500, dst, 53));
            assert_eq!(out.decision.verdict, want, "packet {i} to {dst:?}");
            assert!(!out.cached);
            // The same destination again: the verdict cached for it answers.
            let again = e.decide(fake, &to(PROTO_UDP, 7, 500, dst, 53));
            assert_eq!(again.decision.verdict, want, "again {i} to {dst:?}");
            assert!(
                again.cached,
                "packet {i}: its destination's verdict is cached"
            );
            // Another port of the same address is another destination.
            let port = e.decide(fake, &to(PROTO_UDP, 7, 500, dst, 54));
            assert_eq!(port.decision.verdict, want);
            assert!(!port.cached, "packet {i}: a new port is decided again");
        }
        assert_eq!(
            fake.resolves.get(),
            1,
            "identified once, decided per destination"
        );
    });
}

/// The destination word of every IPv4 destination is its own (address and port, exactly); IPv6
/// words are keyed: another secret gives another word, and an unread destination is `NONE`.
#[test]
fn destination_words() {
    use e7_core::{Addr, DestKey, Peer};
    let p = |dst: Option<Addr>, dport: Option<u16>| Peer {
        dst,
        dport,
        routed: false,
    };
    let k = |peer: Peer| DestKey::of(&peer, &[1, 2]);
    assert_eq!(k(Peer::UNKNOWN), DestKey::NONE);
    let mut seen = std::collections::HashSet::new();
    for a in [
        [10, 0, 0, 1],
        [10, 0, 0, 2],
        [0, 0, 0, 0],
        [255, 255, 255, 255],
    ] {
        for port in [None, Some(0), Some(53), Some(65535)] {
            let w = k(p(Some(Addr::V4(a)), port));
            assert_ne!(w, DestKey::NONE);
            assert!(seen.insert(w), "{a:?} {port:?}: a word of its own");
        }
    }
    for port in [None, Some(0), Some(53)] {
        let mut a6 = [0u8; 16];
        a6[15] = 1;
        let w = k(p(Some(Addr::V6(a6)), port));
        assert!(seen.insert(w), "IPv6 {port:?}: a word of its own");
        assert_ne!(
            w,
            DestKey::of(&p(Some(Addr::V6(a6)), port), &[3, 4]),
            "keyed"
        );
        if port.is_some() {
            assert!(seen.insert(k(p(None, port))), "port only {port:?}");
        }
    }
}

/// A verdict cached while the destination was not read answers only packets whose destination
/// was not read either: a packet that reports one is decided for it (the kernel reads it from the
/// moment a rule depends on it, and a packet in flight then must not replay an unread verdict).
#[test]
fn an_unread_destination_verdict_answers_no_read_destination() {
    both(|e, fake| {
        enforce_wget(e, PROTO_UDP, Action::Allow);
        let out = e.decide(fake, &pkt(PROTO_UDP, 7, 500));
        assert_eq!(out.decision.verdict, Verdict::Accept);
        assert!(e.decide(fake, &pkt(PROTO_UDP, 7, 500)).cached);
        block_every_program_to(e, "10.0.0.0/8");
        // Decided under the new rule while its destination was not read (a packet in flight):
        // cached for "not read" only.
        let out = e.decide(fake, &pkt(PROTO_UDP, 7, 500));
        assert_eq!(out.decision.verdict, Verdict::Accept);
        let out = e.decide(fake, &to(PROTO_UDP, 7, 500, [10, 1, 1, 1], 53));
        assert_eq!(
            out.decision.verdict,
            Verdict::Drop,
            "decided for its destination"
        );
        assert!(!out.cached);
    });
}

/// When the first destination rule arrives, an established socket keeps its entry: its next
/// softirq packet (no sender, so it could not be identified on the spot) is decided for its
/// destination from the cached identity — not deferred, not identified again — and then hits.
#[test]
fn the_first_destination_rule_needs_no_reidentification() {
    both(|e, fake| {
        enforce_wget(e, PROTO_TCP, Action::Allow);
        let out = e.decide(fake, &pkt(PROTO_TCP, 5, 500));
        assert_eq!(out.decision.verdict, Verdict::Accept);
        let resolved = fake.resolves.get();
        block_every_program_to(e, "10.0.0.0/8");
        let late = |dst| softirq(to(PROTO_TCP, 5, 500, dst, 443));
        let out = e.decide(fake, &late([1, 1, 1, 1]));
        assert_eq!(out.decision.reason, Reason::Rule, "decided, not deferred");
        assert_eq!(out.decision.verdict, Verdict::Accept);
        assert!(!out.cached);
        assert!(e.decide(fake, &late([1, 1, 1, 1])).cached, "then hits");
        let out = e.decide(fake, &late([10, 0, 0, 1]));
        assert_eq!(
            out.decision.verdict,
            Verdict::Drop,
            "the rule holds at once"
        );
        assert_eq!(fake.resolves.get(), resolved, "no identification");
    });
}

/// A connected socket's packets all go to one destination: its verdict is cached as before, and a
/// rule change still applies from its next packet.
#[test]
fn fixed_socket_keeps_the_fast_path_under_a_blocklist() {
    both(|e, fake| {
        enforce_wget(e, PROTO_TCP, Action::Allow);
        for i in 0..200u8 {
            let d = format!("10.{i}.0.0/16");
            e.edit_qualified(|q| q.add(qual_rule(e7_core::PROTO_ANY, b"/", &d, Action::Block)))
                .unwrap();
        }
        let out = e.decide(fake, &to(PROTO_TCP, 9, 500, [1, 1, 1, 1], 443));
        assert_eq!(out.decision.verdict, Verdict::Accept);
        let out = e.decide(fake, &to(PROTO_TCP, 9, 500, [1, 1, 1, 1], 443));
        assert!(out.cached, "fast path");
        // The allowed program cannot reach a blocked prefix (another connected socket).
        let out = e.decide(fake, &to(PROTO_TCP, 10, 500, [10, 7, 1, 1], 443));
        assert_eq!(out.decision.verdict, Verdict::Drop);
        // A rule change reaches the cached socket at its next packet.
        e.edit_qualified(|q| {
            q.add(qual_rule(
                PROTO_TCP,
                b"/usr/bin/wget",
                "1.1.1.1",
                Action::Block,
            ))
        })
        .unwrap();
        let out = e.decide(fake, &to(PROTO_TCP, 9, 500, [1, 1, 1, 1], 443));
        assert_eq!(out.decision.verdict, Verdict::Drop);
        assert!(!out.cached);
    });
}

/// `block any / user N` blocks every program of that uid (the socket's), whatever else allows.
#[test]
fn user_rule_on_the_packet_path() {
    both(|e, fake| {
        enforce_wget(e, PROTO_TCP, Action::Allow);
        let q = e7_core::Qualifiers {
            uid: Some(1000),
            ..e7_core::Qualifiers::NONE
        };
        e.edit_qualified(|t| {
            t.add(e7_core::QualRule::new(e7_core::PROTO_ANY, b"/", q, Action::Block).unwrap())
        })
        .unwrap();
        let out = e.decide(fake, &pkt(PROTO_TCP, 11, 500));
        assert_eq!(out.decision.verdict, Verdict::Drop, "uid 1000's packets");
        let other = Packet {
            uid: 1001,
            ..pkt(PROTO_TCP, 12, 500)
        };
        assert_eq!(e.decide(fake, &other).decision.verdict, Verdict::Accept);
    });
}

// ---- the verdict a process image remembers (issue 10: one rule lookup per program, not per socket)

/// Every new socket of a program (each TCP connection's SYN) misses the socket cache; its program's
/// process image remembers the verdict, so the rule table is read once per program, protocol and
/// policy generation. Shown white-box: a rule slipped into the table without publishing a new
/// generation is not seen by the next socket (the memo answered), and is seen once the generation
/// moves; another protocol is looked up on its own.
#[test]
fn new_sockets_of_a_program_reuse_its_verdict_until_the_policy_moves() {
    both(|e, fake| {
        enforce_wget(e, PROTO_TCP, Action::Allow);
        fake.sender.set(Some(50));
        assert_eq!(
            run(e, fake, PROTO_TCP, 1, 500, 0).decision.verdict,
            Verdict::Accept
        );
        // Behind the engine's back: no generation published.
        e.engine()
            .rules
            .write()
            .add(Rule::new(PROTO_TCP, b"/usr/bin/wget", Action::Block).unwrap())
            .unwrap();
        let out = run(e, fake, PROTO_TCP, 2, 500, 1);
        assert_eq!(
            (out.decision.verdict, out.cached),
            (Verdict::Accept, false),
            "a new socket, decided by the image's memo"
        );
        // Another protocol is not answered by the TCP memo.
        e.engine()
            .rules
            .write()
            .add(Rule::new(PROTO_UDP, b"/usr/bin/wget", Action::Block).unwrap())
            .unwrap();
        assert_eq!(
            run(e, fake, PROTO_UDP, 3, 500, 2).decision.verdict,
            Verdict::Drop
        );
        // Publishing the generation (any edit) retires the memo.
        e.edit_rules(|_| ());
        assert_eq!(
            run(e, fake, PROTO_TCP, 4, 500, 3).decision.verdict,
            Verdict::Drop
        );
    });
}

/// With a qualified rule loaded, a program's verdict depends on the destination, so no memo may
/// answer: the second connected socket, to a blocked prefix, is blocked although the first, to
/// another address, was allowed.
#[test]
fn no_memo_answers_while_rules_depend_on_the_destination() {
    both(|e, fake| {
        enforce_wget(e, PROTO_TCP, Action::Allow);
        block_every_program_to(e, "10.0.0.0/8");
        fake.sender.set(Some(50));
        let out = e.decide(fake, &to(PROTO_TCP, 1, 500, [1, 1, 1, 1], 443));
        assert_eq!(out.decision.verdict, Verdict::Accept);
        let out = e.decide(fake, &to(PROTO_TCP, 2, 500, [10, 1, 2, 3], 443));
        assert_eq!(
            out.decision.verdict,
            Verdict::Drop,
            "its own destination's verdict"
        );
        let out = e.decide(fake, &to(PROTO_TCP, 3, 500, [1, 1, 1, 2], 443));
        assert_eq!(out.decision.verdict, Verdict::Accept);
    });
}

/// The userspace firewall decides a routed packet for every address its route names
/// ([`Firewall::decide_routed`]), and a routed packet given to [`Firewall::decide`], which cannot
/// name the route, fails closed (the `fail` action), never passes for its first hop alone.
#[cfg(feature = "std")]
#[test]
fn std_firewall_decides_a_routed_packet_for_every_address() {
    let (fw, _me, _udp, sock) =
        std_firewall_with_own_socket(Action::Allow, Some(std::process::id()));
    let q = e7_core::Qualifiers {
        dest: e7_core::Dest::parse("10.0.0.0/8").unwrap(),
        ..e7_core::Qualifiers::NONE
    };
    fw.add_qualified_rule(e7_core::PROTO_ANY, "/", q, Action::Block)
        .unwrap();
    let routed = Packet {
        peer: e7_core::Peer {
            dst: Some(e7_core::Addr::V4([192, 0, 2, 1])),
            dport: Some(53),
            routed: true,
        },
        sk: Some(&sock),
        proto: PROTO_UDP,
        uid: 0,
        family: Family::Ipv4,
        malformed: false,
        in_task: true,
    };
    let hops = |a: &[[u8; 4]]| a.iter().map(|&a| e7_core::Addr::V4(a)).collect::<Vec<_>>();
    // The first hop is allowed; the final destination is not.
    let (d, _) = fw.decide_routed(&routed, &hops(&[[192, 0, 2, 2], [10, 1, 2, 3]]));
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Drop, Reason::Rule),
        "blocked at its final destination"
    );
    // Every address allowed: it passes (the route was read, not refused wholesale).
    let (d, _) = fw.decide_routed(&routed, &hops(&[[192, 0, 2, 2], [192, 0, 2, 3]]));
    assert_eq!((d.verdict, d.reason), (Verdict::Accept, Reason::Rule));
    // And it was not cached: the blocked route is decided again, not answered by that accept.
    let (d, _) = fw.decide_routed(&routed, &hops(&[[10, 9, 9, 9]]));
    assert_eq!(d.verdict, Verdict::Drop);
    // Without its route, a routed packet is decided as malformed: `fail` (block by default).
    fw.set(Flag::Fail, BLOCK).unwrap();
    let (d, _) = fw.decide(&routed);
    assert_eq!((d.verdict, d.reason), (Verdict::Drop, Reason::Malformed));
    fw.set(Flag::Fail, Const::Allow.value()).unwrap();
    let (d, _) = fw.decide(&routed);
    assert_eq!(
        (d.verdict, d.reason),
        (Verdict::Accept, Reason::Malformed),
        "the fail flag decides"
    );
}

/// A host that reports a routed packet but does not implement [`Host::route_hop`] (this file's
/// `Fake`) gets it decided as malformed by the trait's default: fail closed, not decided for its
/// first hop alone.
#[test]
fn a_route_the_host_cannot_name_fails_closed() {
    both(|e, fake| {
        enforce_wget(e, PROTO_UDP, Action::Allow);
        e.flags.set(Flag::Fail, BLOCK).unwrap();
        block_every_program_to(e, "10.0.0.0/8");
        let mut routed = to(PROTO_UDP, 7, 500, [8, 8, 8, 8], 53);
        routed.peer.routed = true;
        let out = e.decide(fake, &routed);
        assert_eq!(
            (out.decision.verdict, out.decision.reason),
            (Verdict::Drop, Reason::Malformed)
        );
        // The same packet unrouted is allowed: the route alone made it fail.
        let out = e.decide(fake, &to(PROTO_UDP, 7, 500, [8, 8, 8, 8], 53));
        assert_eq!(out.decision.verdict, Verdict::Accept);
    });
}
