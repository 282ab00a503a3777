//! Routed packets (issue 11: `to` holds against routing headers and source routes): a packet whose
//! route names more addresses than its IP destination is decided for every one of them, the first
//! refusal is its decision (and names the address), and its verdict is never answered from nor
//! stored in the socket cache.
#![allow(
    clippy::result_large_err,
    reason = "RuleRing::add hands a full ring's rule back by value (heapless style)"
)]

use std::cell::RefCell;
use std::ops::ControlFlow;

use e7_core::sync::Engine;
use e7_core::{
    Action, Addr, Const, Deferred, ExeError, ExePath, Family, Flag, Host, Packet, Peer, Reason,
    RouteHop, Rule, SockInfo, SockKind, SocketKey, SocketOwner, TaskId, Verdict, PROTO_ANY,
    PROTO_UDP, ROUTE_ADDRS_MAX,
};

type StdEngine = Engine<parking_lot::RawRwLock>;

const ALLOWED: [u8; 4] = [1, 1, 1, 1];
const ALLOWED2: [u8; 4] = [9, 9, 9, 9];
const BLOCKED: [u8; 4] = [10, 0, 0, 1];
const BLOCKED2: [u8; 4] = [10, 2, 0, 1];

/// One process (tgid 50, /usr/bin/wget) sends; `route` is what the host reports for the packet's
/// route (the addresses beyond its IP destination), `asked` how many times it was asked.
#[derive(Default)]
struct Fake {
    route: RefCell<Vec<RouteHop>>,
    asked: RefCell<usize>,
}

fn task() -> TaskId {
    TaskId {
        start_ns: 1,
        exec_id: 1,
        tgid: 50,
        pad: 0,
    }
}

impl Host for Fake {
    type Sock<'s> = u64;
    fn now_ms(&self) -> u64 {
        0
    }
    fn sock_key(&self, sk: u64) -> SocketKey {
        SocketKey(sk)
    }
    fn sock_info(&self, sk: u64) -> SockInfo {
        SockInfo {
            inode: sk + 100,
            kind: SockKind::User,
        }
    }
    fn sender_holds(&self, _sk: u64) -> Option<TaskId> {
        Some(task())
    }
    fn sender(&self, _sk: u64) -> Option<TaskId> {
        Some(task())
    }
    fn sender_exe(&self, _sk: u64, out: &mut ExePath) -> Result<TaskId, ExeError> {
        out.set(b"/usr/bin/wget").map_err(|_| ExeError::NoTask)?;
        Ok(task())
    }
    fn task_exe(&self, _tgid: u32, out: &mut ExePath) -> Result<TaskId, ExeError> {
        self.sender_exe(0, out)
    }
    fn for_each_socket(&self, _f: &mut dyn FnMut(SocketOwner) -> ControlFlow<()>) {}
    fn route_hop(&self, index: usize) -> RouteHop {
        *self.asked.borrow_mut() += 1;
        self.route
            .borrow()
            .get(index)
            .copied()
            .unwrap_or(RouteHop::End)
    }
    fn defer(&self, _s: Deferred) {}
    fn wants_events(&self) -> bool {
        true
    }
}

/// mode enabled, `allow udp /usr/bin/wget`, `block any / to 10.0.0.0/8`.
fn engine() -> Box<StdEngine> {
    #[allow(clippy::declare_interior_mutable_const)]
    const FRESH: StdEngine = Engine::new();
    let e = Box::new(FRESH);
    e.flags.set(Flag::Mode, Const::Enabled.value()).unwrap();
    e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/usr/bin/wget", Action::Allow).unwrap()))
        .unwrap();
    let q = e7_core::Qualifiers {
        dest: e7_core::Dest::parse("10.0.0.0/8").unwrap(),
        ..e7_core::Qualifiers::NONE
    };
    e.edit_qualified(|t| t.add(e7_core::QualRule::new(PROTO_ANY, b"/", q, Action::Block).unwrap()))
        .unwrap();
    e
}

/// A UDP packet of socket `key` to `dst`, routed or not (`_connected`: documents the socket).
fn packet(key: u64, dst: [u8; 4], _connected: bool, routed: bool) -> Packet<u64> {
    Packet {
        peer: Peer {
            dst: Some(Addr::V4(dst)),
            dport: Some(53),
            routed,
        },
        sk: Some(key),
        proto: PROTO_UDP,
        uid: 1000,
        family: Family::Ipv4,
        malformed: false,
        in_task: true,
    }
}

fn set_route(fake: &Fake, hops: &[[u8; 4]]) {
    *fake.route.borrow_mut() = hops.iter().map(|a| RouteHop::Addr(Addr::V4(*a))).collect();
}

/// Every IP destination and route of up to four addresses over one allowed and one blocked
/// address of each kind: the packet passes exactly when every address it names is allowed; a
/// refusal for a route address names the first such address; a routed packet is never cached,
/// whatever went before on its socket.
#[test]
fn every_named_address_is_decided_exhaustively() {
    let choices = [ALLOWED, BLOCKED, ALLOWED2, BLOCKED2];
    let blocked = |a: &[u8; 4]| a[0] == 10;
    let e = engine();
    let fake = Fake::default();
    let mut key = 1000;
    for dst in choices {
        for len in 0..=4u32 {
            for combo in 0..4usize.pow(len) {
                let hops: Vec<[u8; 4]> =
                    (0..len).map(|i| choices[(combo >> (2 * i)) & 3]).collect();
                set_route(&fake, &hops);
                key += 1;
                // The socket's plain packets first (a connected socket whose verdict is cached),
                // then its routed one, for the same IP destination.
                let plain = e.decide_packet(&fake, &packet(key, dst, true, false));
                let again = e.decide_packet(&fake, &packet(key, dst, true, false));
                assert_eq!(plain.decision.verdict, again.decision.verdict);
                assert!(
                    again.cached,
                    "plain packets of a connected socket are cached"
                );
                let out = e.decide_packet(&fake, &packet(key, dst, true, true));
                let first_refused = if blocked(&dst) {
                    None
                } else {
                    hops.iter()
                        .position(blocked)
                        .map(|i| u8::try_from(i).unwrap())
                };
                let want = if blocked(&dst) || first_refused.is_some() {
                    Verdict::Drop
                } else {
                    Verdict::Accept
                };
                assert_eq!(out.decision.verdict, want, "dst {dst:?} route {hops:?}");
                assert_eq!(out.route_hop, first_refused, "dst {dst:?} route {hops:?}");
                assert!(
                    !out.cached,
                    "a routed packet is never answered from the cache"
                );
                // The cached verdict of its plain packets is untouched.
                let after = e.decide_packet(&fake, &packet(key, dst, true, false));
                assert_eq!(after.decision.verdict, plain.decision.verdict);
                assert!(after.cached);
            }
        }
    }
}

/// A socket whose first packet is routed is identified and cached for its identity only: its next
/// packet is decided again (no verdict was stored), and only a plain packet's verdict is cached.
#[test]
fn a_routed_first_packet_stores_no_verdict() {
    let e = engine();
    let fake = Fake::default();
    set_route(&fake, &[ALLOWED2]);
    let out = e.decide_packet(&fake, &packet(7, ALLOWED, true, true));
    assert_eq!(out.decision.verdict, Verdict::Accept);
    assert!(!out.cached);
    let out = e.decide_packet(&fake, &packet(7, ALLOWED, true, true));
    assert!(!out.cached, "routed: decided again");
    let out = e.decide_packet(&fake, &packet(7, ALLOWED, true, false));
    assert!(!out.cached, "no verdict was stored by the routed packets");
    let out = e.decide_packet(&fake, &packet(7, ALLOWED, true, false));
    assert!(out.cached);
    // After a policy change the stale verdict is recomputed for a routed packet, never stored.
    e.flags.set(Flag::Mode, Const::Enabled.value()).unwrap();
    e.edit_rules(|r| r.add(Rule::new(PROTO_UDP, b"/usr/bin/curl", Action::Allow).unwrap()))
        .unwrap();
    set_route(&fake, &[BLOCKED]);
    let out = e.decide_packet(&fake, &packet(7, ALLOWED, true, true));
    assert_eq!(
        (out.decision.verdict, out.route_hop),
        (Verdict::Drop, Some(0))
    );
    let out = e.decide_packet(&fake, &packet(7, ALLOWED, true, false));
    assert_eq!(out.decision.verdict, Verdict::Accept);
    assert!(
        !out.cached,
        "the recompute for the routed packet stored nothing"
    );
}

/// A route the host cannot read, or one naming more addresses than any route can, is decided as a
/// malformed packet (the `fail` action); one naming exactly the most is walked to its end, and the
/// host is asked at most [`ROUTE_ADDRS_MAX`] + 1 times.
#[test]
fn unreadable_and_overlong_routes_take_the_fail_action() {
    let e = engine();
    e.flags.set(Flag::Fail, Const::Block.value()).unwrap();
    let fake = Fake::default();
    *fake.route.borrow_mut() = vec![RouteHop::Addr(Addr::V4(ALLOWED2)), RouteHop::Unreadable];
    let out = e.decide_packet(&fake, &packet(1, ALLOWED, false, true));
    assert_eq!(
        (out.decision.verdict, out.decision.reason),
        (Verdict::Drop, Reason::Malformed)
    );
    *fake.route.borrow_mut() = vec![RouteHop::Addr(Addr::V4(ALLOWED2)); ROUTE_ADDRS_MAX];
    *fake.asked.borrow_mut() = 0;
    let out = e.decide_packet(&fake, &packet(2, ALLOWED, false, true));
    assert_eq!(out.decision.verdict, Verdict::Accept);
    assert_eq!(*fake.asked.borrow(), ROUTE_ADDRS_MAX + 1);
    *fake.route.borrow_mut() = vec![RouteHop::Addr(Addr::V4(ALLOWED2)); ROUTE_ADDRS_MAX + 5];
    *fake.asked.borrow_mut() = 0;
    let out = e.decide_packet(&fake, &packet(3, ALLOWED, false, true));
    assert_eq!(
        (out.decision.verdict, out.decision.reason),
        (Verdict::Drop, Reason::Malformed)
    );
    assert_eq!(*fake.asked.borrow(), ROUTE_ADDRS_MAX + 1);
    // With `fail` allowing, the same overlong route passes (the flag decides, not a constant).
    e.flags.set(Flag::Fail, Const::Allow.value()).unwrap();
    let out = e.decide_packet(&fake, &packet(4, ALLOWED, false, true));
    assert_eq!(out.decision.verdict, Verdict::Accept);
}

/// A packet not flagged routed never asks the host for a route (the hook reads none), and one
/// refused for its IP destination asks for nothing more.
#[test]
fn unrouted_and_refused_packets_ask_for_no_route() {
    let e = engine();
    let fake = Fake::default();
    set_route(&fake, &[BLOCKED]);
    let out = e.decide_packet(&fake, &packet(1, ALLOWED, false, false));
    assert_eq!(out.decision.verdict, Verdict::Accept);
    let out = e.decide_packet(&fake, &packet(2, BLOCKED2, false, true));
    assert_eq!((out.decision.verdict, out.route_hop), (Verdict::Drop, None));
    assert_eq!(*fake.asked.borrow(), 0);
}
