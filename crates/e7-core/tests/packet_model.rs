//! Model test of THE packet path (`Engine::decide_packet`, what the kernel module runs) over random
//! sequences of packets (task context from any process, softirq), execs, rule edits, flag writes and
//! deferred-work runs. Invariants:
//! - a task-context packet is decided for its sender's CURRENT program under the CURRENT policy
//!   (no verdict earned by another process or image, no stale verdict after a rule or flag change);
//! - a softirq packet is decided for the socket's last identified program under the current
//!   policy, or — when nobody identified the socket yet — dropped and deferred (never `unkproc`).
#![allow(
    clippy::result_large_err,
    reason = "RuleRing::add hands a full ring's rule back by value (heapless style)"
)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::ControlFlow;

use e7_core::sync::Engine;
use e7_core::{
    decide, Action, Const, Deferred, ExeError, ExePath, Family, Flag, Host, Identity, Packet,
    PacketFacts, Reason, Rule, SockInfo, SockKind, SocketKey, SocketOwner, TaskId, Verdict,
    PROTO_TCP, PROTO_UDP,
};
use proptest::prelude::*;

const PATHS: &[&str] = &[
    "/usr/bin/wget",
    "/usr/bin/curl",
    "/opt/a/tool",
    "/opt/b/tool",
];
const PROCS: u32 = 4;
const SOCKS: u64 = 6;

#[derive(Debug, Clone)]
enum Op {
    /// (socket, sending process or None = softirq, protocol is udp)
    Packet(u64, Option<u32>, bool),
    /// process execs path
    Exec(u32, usize),
    /// add rule (udp?, path, allow?)
    Add(bool, usize, bool),
    /// remove rule (udp?, path)
    Remove(bool, usize),
    /// unkrule, unkproc: allow?
    Flags(bool, bool),
    /// run the deferred work
    Refill,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (0..SOCKS, proptest::option::of(1..=PROCS), any::<bool>())
            .prop_map(|(s, p, u)| Op::Packet(s, p, u)),
        1 => (1..=PROCS, 0..PATHS.len()).prop_map(|(p, x)| Op::Exec(p, x)),
        2 => (any::<bool>(), 0..PATHS.len(), any::<bool>()).prop_map(|(u, x, a)| Op::Add(u, x, a)),
        1 => (any::<bool>(), 0..PATHS.len()).prop_map(|(u, x)| Op::Remove(u, x)),
        1 => (any::<bool>(), any::<bool>()).prop_map(|(a, b)| Op::Flags(a, b)),
        1 => Just(Op::Refill),
    ]
}

/// Processes 1..=PROCS (tgid 0 is never a user process) all hold every socket (inherited);
/// `sender` is the current task.
struct Fake {
    exe: RefCell<HashMap<u32, (usize, u64)>>,
    sender: Cell<Option<u32>>,
    deferred: RefCell<Vec<Deferred>>,
    now: Cell<u64>,
}

impl Fake {
    fn task(&self, tgid: u32) -> TaskId {
        TaskId {
            start_ns: u64::from(tgid),
            exec_id: self.exe.borrow()[&tgid].1,
            tgid,
            pad: 0,
        }
    }
    fn exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        let (x, _) = *self.exe.borrow().get(&tgid).ok_or(ExeError::NoTask)?;
        out.set(PATHS[x].as_bytes()).unwrap();
        Ok(self.task(tgid))
    }
}

impl Host for Fake {
    type Sock<'s> = u64;
    fn now_ms(&self) -> u64 {
        self.now.get()
    }
    fn sock_key(&self, sk: u64) -> SocketKey {
        SocketKey(sk + 1)
    }
    fn sock_info(&self, sk: u64) -> SockInfo {
        SockInfo {
            inode: 1000 + sk,
            kind: SockKind::User,
        }
    }
    fn sender_holds(&self, _sk: u64) -> Option<TaskId> {
        None // softirq: the interrupted task never holds the socket here
    }
    fn sender(&self, _sk: u64) -> Option<TaskId> {
        self.sender.get().map(|t| self.task(t))
    }
    fn sender_exe(&self, _sk: u64, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.exe(self.sender.get().ok_or(ExeError::NoTask)?, out)
    }
    fn task_exe(&self, tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.exe(tgid, out)
    }
    fn for_each_socket(&self, f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {
        // The walk reports the lowest tgid first: the socket's "owner" for deferred work.
        for s in 0..SOCKS {
            for t in 1..=PROCS {
                if f(SocketOwner {
                    inode: 1000 + s,
                    tgid: t,
                })
                .is_break()
                {
                    return;
                }
            }
        }
    }
    fn defer(&self, s: Deferred) {
        self.deferred.borrow_mut().push(s);
    }
    fn wants_events(&self) -> bool {
        false
    }
}

type E = Engine<parking_lot::RawRwLock>;

fn expected(e: &E, proto: u32, path: usize) -> (Verdict, Reason) {
    let flags = e.flags.snapshot();
    let facts = PacketFacts::new(proto, Family::Ipv4);
    let p = ExePath::new(PATHS[path].as_bytes()).unwrap();
    let rule = e.rules.read().lookup(proto, &p).map(|m| m.action);
    // Any Exe id stands for "identified": decide() only looks at the rule for it.
    let mut t: e7_core::ExeTable<4> = e7_core::ExeTable::new();
    let id = Identity::Exe(t.intern(PATHS[path].as_bytes()).unwrap());
    let d = decide(&flags, &facts, &id, rule);
    (d.verdict, d.reason)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn the_packet_path_decides_for_the_current_sender_under_the_current_policy(
        ops in proptest::collection::vec(op(), 1..120)
    ) {
        #[allow(clippy::declare_interior_mutable_const)]
        const FRESH: E = Engine::new();
        let e = Box::new(FRESH);
        e.flags.set(Flag::Mode, Const::Enabled.value()).unwrap();
        let fake = Fake {
            exe: RefCell::new((1..=PROCS).map(|t| (t, (t as usize % PATHS.len(), 1))).collect()),
            sender: Cell::new(None),
            deferred: RefCell::new(Vec::new()),
            now: Cell::new(0),
        };
        // The program each socket was last identified as (model of the cache's identity).
        let mut last: HashMap<u64, usize> = HashMap::new();
        for op in ops {
            fake.now.set(fake.now.get() + 100); // past the walk interval every step
            match op {
                Op::Packet(s, sender, udp) => {
                    let proto = if udp { PROTO_UDP } else { PROTO_TCP };
                    fake.sender.set(sender);
                    let pkt = Packet {
                        peer: e7_core::Peer::UNKNOWN,
                        sk: Some(s),
                        proto,
                        uid: 0,
                        family: Family::Ipv4,
                        malformed: false,
                        in_task: sender.is_some(),
                    };
                    let out = e.decide_packet(&fake, &pkt);
                    let got = (out.decision.verdict, out.decision.reason);
                    match sender {
                        Some(t) => {
                            let path = fake.exe.borrow()[&t].0;
                            prop_assert_eq!(got, expected(&e, proto, path), "task-context packet of {} on socket {}", t, s);
                            last.insert(s, path);
                        }
                        None => match last.get(&s) {
                            Some(&path) => prop_assert_eq!(got, expected(&e, proto, path), "softirq packet on socket {}", s),
                            None => prop_assert_eq!(got, (Verdict::Drop, Reason::Deferred), "unidentified softirq packet on socket {}", s),
                        },
                    }
                }
                Op::Exec(t, x) => {
                    let mut m = fake.exe.borrow_mut();
                    let entry = m.get_mut(&t).unwrap();
                    *entry = (x, entry.1 + 1);
                }
                Op::Add(udp, x, allow) => {
                    let a = if allow { Action::Allow } else { Action::Block };
                    let proto = if udp { PROTO_UDP } else { PROTO_TCP };
                    let _ = e.edit_rules(|r| r.add(Rule::new(proto, PATHS[x].as_bytes(), a).unwrap()));
                }
                Op::Remove(udp, x) => {
                    let proto = if udp { PROTO_UDP } else { PROTO_TCP };
                    e.edit_rules(|r| r.remove(proto, PATHS[x].as_bytes()));
                }
                Op::Flags(unkrule, unkproc) => {
                    let v = |allow: bool| if allow { Const::Allow.value() } else { Const::Block.value() };
                    e.flags.set(Flag::UnkRule, v(unkrule)).unwrap();
                    e.flags.set(Flag::UnkProc, v(unkproc)).unwrap();
                }
                Op::Refill => {
                    let queued: Vec<Deferred> = fake.deferred.borrow_mut().drain(..).collect();
                    for d in queued {
                        let s = d.key.0 - 1;
                        if e.identify_deferred(&fake, &d) == e7_core::DeferredOutcome::Inserted {
                            // The walk's owner: the lowest tgid holding it (process 1).
                            last.insert(s, fake.exe.borrow()[&1].0);
                        }
                    }
                }
            }
        }
    }
}
