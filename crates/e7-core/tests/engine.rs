//! The shared engine: fast path, invalidation by rule/flag changes, identification on misses, squelch.
#![allow(
    clippy::result_large_err,
    reason = "RuleRing::add hands a full ring's rule back by value (heapless style)"
)]

use std::collections::HashMap;
use std::ops::ControlFlow;

use e7_core::sync::Engine;
use e7_core::{
    Action, Const, EventKind, ExeLookup, ExePath, ExeResolver, Family, Flag, Identity, PacketFacts,
    ProcessTable, Reason, Rule, SocketFacts, SocketKey, SocketOwner, Verdict, PROTO_TCP, PROTO_UDP,
};

type TestEngine = Engine<parking_lot::RawRwLock, 64, 16, 4, 16, 64>;

#[derive(Default)]
struct Fake {
    owners: Vec<SocketOwner>,
    exes: HashMap<u32, Vec<u8>>,
    walks: usize,
    resolves: usize,
}

impl ProcessTable for Fake {
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        self.walks += 1;
        for o in &self.owners {
            if f(*o).is_break() {
                return;
            }
        }
    }
}

impl ExeResolver for Fake {
    fn exe_path(&mut self, tgid: u32, out: &mut ExePath) -> ExeLookup {
        self.resolves += 1;
        match self.exes.get(&tgid) {
            Some(p) if p.len() > 255 => ExeLookup::TooLong,
            Some(p) => match out.set(p) {
                Ok(()) => ExeLookup::Found,
                Err(_) => ExeLookup::Gone,
            },
            None => ExeLookup::Gone,
        }
    }
}

/// Splits the fake into the two roles the engine needs at once.
fn run(
    e: &TestEngine,
    fake: &mut Fake,
    proto: u32,
    key: u64,
    inode: u64,
    now: u64,
) -> e7_core::Outcome {
    let mut table = FakeTableRef {
        owners: fake.owners.clone(),
        walks: 0,
    };
    let sock = SocketFacts {
        key: SocketKey(key),
        inode,
        uid: 1000,
        full: true,
        owner_hint: None,
    };
    let out = e.decide_packet(
        &PacketFacts::new(proto, Family::Ipv4),
        &sock,
        now,
        &mut table,
        fake,
    );
    fake.walks += table.walks;
    out
}

struct FakeTableRef {
    owners: Vec<SocketOwner>,
    walks: usize,
}
impl ProcessTable for FakeTableRef {
    fn for_each_socket(&mut self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        self.walks += 1;
        for o in &self.owners {
            if f(*o).is_break() {
                return;
            }
        }
    }
}

fn setup() -> (Box<TestEngine>, Fake) {
    let e = Box::new(TestEngine::new());
    let mut fake = Fake::default();
    fake.owners.push(SocketOwner {
        inode: 500,
        tgid: 50,
    });
    fake.owners.push(SocketOwner {
        inode: 600,
        tgid: 60,
    });
    fake.exes.insert(50, b"/usr/bin/wget".to_vec());
    fake.exes.insert(60, b"/opt/tool".to_vec());
    (e, fake)
}

const ENABLED: u32 = Const::Enabled.value();
const BLOCK: u32 = Const::Block.value();

#[test]
fn disabled_mode_does_no_work() {
    let (e, mut fake) = setup();
    let out = run(&e, &mut fake, PROTO_TCP, 1, 500, 0);
    assert_eq!(out.decision.verdict, Verdict::Accept);
    assert_eq!(out.decision.reason, Reason::Disabled);
    assert_eq!((fake.walks, fake.resolves), (0, 0));
    assert_eq!(
        e.flags.get(Flag::QPackets),
        0,
        "qpackets counts only when not disabled"
    );
    assert!(e.sockets.read().is_empty());
}

#[test]
fn miss_then_fast_path_hit() {
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    e.edit_rules(|r| r.add(Rule::new(PROTO_TCP, b"/usr/bin/", Action::Block).unwrap()))
        .unwrap();
    let out = run(&e, &mut fake, PROTO_TCP, 1, 500, 0);
    assert_eq!(out.decision.verdict, Verdict::Drop);
    assert!(!out.cached);
    assert_eq!((fake.walks, fake.resolves), (1, 1));
    let out = run(&e, &mut fake, PROTO_TCP, 1, 500, 1);
    assert_eq!(out.decision.verdict, Verdict::Drop);
    assert!(out.cached, "second packet is served from the cache");
    assert_eq!(
        (fake.walks, fake.resolves),
        (1, 1),
        "no identification on a hit"
    );
    assert_eq!(e.flags.get(Flag::QPackets), 2);
    let (known, _) = e.sockets.read().lookup(SocketKey(1)).unwrap();
    assert_eq!((known.tgid, known.inode, known.uid), (50, 500, 1000));
}

#[test]
fn rule_change_applies_to_open_sockets_on_next_packet() {
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    let out = run(&e, &mut fake, PROTO_TCP, 1, 500, 0);
    assert_eq!(out.decision.reason, Reason::NoRule);
    assert_eq!(out.decision.verdict, Verdict::Accept);
    e.edit_rules(|r| r.add(Rule::new(PROTO_TCP, b"/usr/bin/wget", Action::Block).unwrap()))
        .unwrap();
    let out = run(&e, &mut fake, PROTO_TCP, 1, 500, 1);
    assert_eq!(out.decision.verdict, Verdict::Drop);
    assert!(!out.cached);
    assert_eq!(
        fake.resolves, 1,
        "recomputed from the cached identity, not re-identified"
    );
    let out = run(&e, &mut fake, PROTO_TCP, 1, 500, 2);
    assert!(out.cached);
    assert_eq!(out.decision.verdict, Verdict::Drop);
    // Removing it applies as well.
    assert!(e.edit_rules(|r| r.remove(PROTO_TCP, b"/usr/bin/wget")));
    assert_eq!(
        run(&e, &mut fake, PROTO_TCP, 1, 500, 3).decision.verdict,
        Verdict::Accept
    );
}

#[test]
fn flag_change_applies_to_open_sockets_on_next_packet() {
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    assert_eq!(
        run(&e, &mut fake, PROTO_UDP, 2, 600, 0).decision.verdict,
        Verdict::Accept
    );
    e.flags.set(Flag::UnkRule, BLOCK).unwrap();
    let out = run(&e, &mut fake, PROTO_UDP, 2, 600, 1);
    assert_eq!(out.decision.verdict, Verdict::Drop);
    e.flags.set(Flag::Mode, BLOCK).unwrap();
    assert_eq!(
        run(&e, &mut fake, PROTO_UDP, 2, 600, 2).decision.reason,
        Reason::BlockMode
    );
}

#[test]
fn pending_events_are_squelched_per_second() {
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    let out = run(&e, &mut fake, PROTO_TCP, 1, 500, 10_000);
    let ev = out.event.unwrap();
    assert_eq!(ev.kind, EventKind::Pending);
    assert_eq!(ev.proto, PROTO_TCP);
    let mut p = ExePath::EMPTY;
    assert!(e.exe_path(ev.exe, &mut p));
    assert_eq!(p.as_bytes(), b"/usr/bin/wget");
    // Same program, other socket, same second: squelched.
    assert!(run(&e, &mut fake, PROTO_TCP, 3, 500, 10_500)
        .event
        .is_none());
    assert!(run(&e, &mut fake, PROTO_TCP, 1, 500, 10_900)
        .event
        .is_none());
    assert!(run(&e, &mut fake, PROTO_TCP, 1, 500, 11_000)
        .event
        .is_some());
    // With squelch off every packet reports.
    e.flags.set(Flag::Squelch, Const::Disabled.value()).unwrap();
    assert!(run(&e, &mut fake, PROTO_TCP, 1, 500, 11_001)
        .event
        .is_some());
    assert!(run(&e, &mut fake, PROTO_TCP, 1, 500, 11_002)
        .event
        .is_some());
}

#[test]
fn unknown_owner_long_path_and_non_full_sockets() {
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    e.flags.set(Flag::UnkProc, BLOCK).unwrap();
    let out = run(&e, &mut fake, PROTO_TCP, 9, 999, 0);
    assert_eq!(out.decision.reason, Reason::UnknownProcess);
    assert_eq!(out.decision.verdict, Verdict::Drop);
    assert!(
        e.sockets.read().peek(SocketKey(9)).is_none(),
        "unknown sockets are not cached as unknown forever"
    );
    // Long path: longpath (block by default), cached as PathTooLong.
    let mut long = b"/".to_vec();
    long.extend(std::iter::repeat_n(b'x', 300));
    fake.exes.insert(70, long);
    fake.owners.push(SocketOwner {
        inode: 700,
        tgid: 70,
    });
    let out = run(&e, &mut fake, PROTO_TCP, 7, 700, 1_000);
    assert_eq!(out.decision.reason, Reason::PathTooLong);
    assert_eq!(out.decision.verdict, Verdict::Drop);
    assert_eq!(
        e.sockets.read().peek(SocketKey(7)).unwrap().0.exe,
        Identity::PathTooLong
    );
    // No full socket: unkproc, no lookup at all.
    let before = (fake.walks, fake.resolves);
    let sock = SocketFacts {
        key: SocketKey(1),
        inode: 500,
        uid: 0,
        full: false,
        owner_hint: None,
    };
    let mut t = FakeTableRef {
        owners: vec![],
        walks: 0,
    };
    let out = e.decide_packet(
        &PacketFacts::new(PROTO_TCP, Family::Ipv6),
        &sock,
        2_000,
        &mut t,
        &mut fake,
    );
    assert_eq!(out.decision.reason, Reason::UnknownProcess);
    assert_eq!((fake.walks + t.walks, fake.resolves), before);
}

#[test]
fn owner_hint_skips_the_walk() {
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    let sock = SocketFacts {
        key: SocketKey(5),
        inode: 12345,
        uid: 0,
        full: true,
        owner_hint: Some(60),
    };
    let mut t = FakeTableRef {
        owners: vec![],
        walks: 0,
    };
    e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/opt/tool", Action::Allow).unwrap()))
        .unwrap();
    e.flags.set(Flag::Accepts, ENABLED).unwrap();
    let out = e.decide_packet(
        &PacketFacts::new(PROTO_UDP, Family::Ipv4),
        &sock,
        0,
        &mut t,
        &mut fake,
    );
    assert_eq!(t.walks, 0);
    assert_eq!(out.decision.verdict, Verdict::Accept);
    assert_eq!(out.event.map(|e| e.kind), Some(EventKind::Allow));
}

#[test]
fn evicted_executable_is_reidentified_after_policy_change() {
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    run(&e, &mut fake, PROTO_TCP, 1, 500, 0);
    // Evict every path from the (16-slot) executable table.
    {
        let mut exes = e.exes.write();
        for i in 0..16 {
            exes.intern(format!("/filler/{i}").as_bytes()).unwrap();
        }
    }
    e.edit_rules(|r| r.add(Rule::new(PROTO_TCP, b"/usr/bin/wget", Action::Block).unwrap()))
        .unwrap();
    let resolves = fake.resolves;
    let out = run(&e, &mut fake, PROTO_TCP, 1, 500, 1);
    assert_eq!(out.decision.verdict, Verdict::Drop);
    assert_eq!(
        fake.resolves,
        resolves + 1,
        "stale ExeId forces re-identification"
    );
}

#[test]
fn readers_run_concurrently() {
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    for k in 0..32u64 {
        run(&e, &mut fake, PROTO_TCP, k, 500, 0);
    }
    let e = &*e;
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(move || {
                let mut f = Fake::default();
                for i in 0..2000u64 {
                    let out = run(e, &mut f, PROTO_TCP, i % 32, 500, 1);
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
}

#[cfg(feature = "std")]
#[test]
fn std_firewall_identifies_a_real_socket_of_this_process() {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::MetadataExt;
    let fw = e7_core::Firewall::new();
    fw.set(Flag::Mode, ENABLED).unwrap();
    let me = std::fs::read_link("/proc/self/exe").unwrap();
    let me = me.to_str().unwrap().to_owned();
    fw.add_rule(PROTO_UDP, &me, Action::Block).unwrap();
    let sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let ino = std::fs::metadata(format!("/proc/self/fd/{}", sock.as_raw_fd()))
        .unwrap()
        .ino();
    let facts = SocketFacts {
        key: SocketKey(ino),
        inode: ino,
        uid: 0,
        full: true,
        owner_hint: None,
    };
    let (d, _) = fw.decide(
        &PacketFacts::new(PROTO_UDP, Family::Ipv4),
        &facts,
        &mut e7_core::ProcFsTable::new(),
    );
    assert_eq!(d.verdict, Verdict::Drop);
    assert_eq!(d.reason, Reason::Rule);
    assert_eq!(fw.rules(), vec![(PROTO_UDP, me, Action::Block)]);
    assert!(fw.add_rule(PROTO_UDP, "relative", Action::Block).is_err());
}

#[test]
fn cached_verdict_is_per_protocol_for_raw_sockets() {
    // A raw IP_HDRINCL socket can send any protocol: the UDP verdict must not be replayed for TCP.
    let (e, mut fake) = setup();
    e.flags.set(Flag::Mode, ENABLED).unwrap();
    e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/usr/bin/wget", Action::Allow).unwrap()))
        .unwrap();
    e.flags.set(Flag::UnkRule, BLOCK).unwrap();
    assert_eq!(
        run(&e, &mut fake, PROTO_UDP, 1, 500, 0).decision.verdict,
        Verdict::Accept
    );
    assert!(run(&e, &mut fake, PROTO_UDP, 1, 500, 1).cached);
    let tcp = run(&e, &mut fake, PROTO_TCP, 1, 500, 2);
    assert_eq!(tcp.decision.verdict, Verdict::Drop);
    assert_eq!(tcp.decision.reason, Reason::NoRule);
    assert_eq!(
        fake.resolves, 1,
        "same socket, same identity: no re-identification"
    );
}
