//! Qualified rules (`to`, `port`, `user`): one test per line of the README's precedence table, the
//! scopes, the edits, and a proptest model — a naive "scan every rule, take the greatest key" reference
//! against the engine (ring + qualified table) over random rule sets and packets.
#![allow(
    clippy::result_large_err,
    reason = "add hands a full table's rule back by value (heapless style)"
)]

use e7_core::qualified::{plain_precedence, QualTable};
use e7_core::{
    decide_rule, Action, AddOutcome, Addr, Dest, ExePath, Ports, Precedence, QualFacts, QualRule,
    Qualifiers, Rule, RuleRing, Scope, PROTO_ANY, PROTO_ICMP, PROTO_TCP, PROTO_UDP,
};
use proptest::prelude::*;

type Q = QualTable<64, 4096>;

fn dest(s: &str) -> Dest {
    Dest::parse(s).unwrap()
}

fn q(to: Option<&str>, ports: Option<&str>, uid: Option<u32>) -> Qualifiers {
    Qualifiers {
        dest: to.map_or(Dest::Any, dest),
        ports: ports.map(|p| Ports::parse(p).unwrap()),
        uid,
    }
}

fn v4(a: [u8; 4]) -> Option<Addr> {
    Some(Addr::V4(a))
}

fn facts(proto: u32, dst: Option<Addr>, dport: Option<u16>, uid: Option<u32>) -> QualFacts {
    QualFacts {
        proto,
        dst,
        dport,
        uid,
    }
}

/// Engine-shaped lookup over both tables.
struct Rules {
    ring: RuleRing<64>,
    qual: Q,
}

impl Rules {
    fn new() -> Self {
        Rules {
            ring: RuleRing::new(),
            qual: Q::new(),
        }
    }
    fn add(&mut self, action: Action, proto: u32, path: &str, qual: Qualifiers) -> AddOutcome {
        if qual.is_none() {
            self.ring
                .add(Rule::new(proto, path.as_bytes(), action).unwrap())
                .unwrap()
        } else {
            self.qual
                .add(QualRule::new(proto, path.as_bytes(), qual, action).unwrap())
                .unwrap()
        }
    }
    fn decide(&self, exe: &str, f: QualFacts) -> Option<Action> {
        let exe = ExePath::new(exe.as_bytes()).unwrap();
        decide_rule(self.ring.lookup(f.proto, &exe), self.qual.lookup(&f, &exe))
    }
}

const FF: &str = "/usr/bin/firefox";
const A: Action = Action::Allow;
const B: Action = Action::Block;

// ---- one test per precedence line -------------------------------------------------------------

#[test]
fn line1_user_specific_beats_any_user() {
    let mut r = Rules::new();
    r.add(A, PROTO_TCP, FF, q(None, Some("443"), None));
    r.add(B, PROTO_ANY, "/", q(None, None, Some(1001)));
    let guest = facts(PROTO_TCP, v4([1, 2, 3, 4]), Some(443), Some(1001));
    let other = facts(PROTO_TCP, v4([1, 2, 3, 4]), Some(443), Some(1000));
    assert_eq!(
        r.decide(FF, guest),
        Some(B),
        "a user's rule beats port, path, protocol"
    );
    assert_eq!(r.decide(FF, other), Some(A));
    // Even against a longer prefix for every user.
    r.add(A, PROTO_ANY, FF, q(Some("1.2.3.4"), None, None));
    assert_eq!(r.decide(FF, guest), Some(B));
}

#[test]
fn line2_longer_prefix_beats_shorter_and_prefix_beats_scope_beats_any() {
    let mut r = Rules::new();
    r.add(B, PROTO_ANY, "/", q(Some("10.0.0.0/8"), None, None));
    r.add(
        A,
        PROTO_ANY,
        "/usr/bin/restic",
        q(Some("10.0.0.7"), None, None),
    );
    r.add(A, PROTO_ANY, "/usr/bin/restic", q(None, None, None));
    let to = |a| facts(PROTO_TCP, v4(a), Some(22), Some(0));
    assert_eq!(r.decide("/usr/bin/restic", to([10, 0, 0, 7])), Some(A));
    assert_eq!(
        r.decide("/usr/bin/restic", to([10, 0, 0, 8])),
        Some(B),
        "the /8 block beats the program's unqualified allow"
    );
    assert_eq!(r.decide("/usr/bin/restic", to([8, 8, 8, 8])), Some(A));
    // Scope vs any vs prefix.
    let mut r = Rules::new();
    r.add(A, PROTO_ANY, "/", q(Some("any"), Some("1-65535"), None));
    r.add(B, PROTO_ANY, "/", q(Some("lan"), Some("1-65535"), None));
    r.add(
        A,
        PROTO_ANY,
        "/",
        q(Some("192.168.1.0/24"), Some("1-65535"), None),
    );
    let to = |a| facts(PROTO_UDP, v4(a), Some(53), None);
    assert_eq!(r.decide("/bin/x", to([8, 8, 8, 8])), Some(A), "any");
    assert_eq!(
        r.decide("/bin/x", to([192, 168, 2, 1])),
        Some(B),
        "scope over any"
    );
    assert_eq!(
        r.decide("/bin/x", to([192, 168, 1, 1])),
        Some(A),
        "prefix over scope"
    );
}

#[test]
fn line3_port_list_beats_no_port_and_fewer_ports_beat_more() {
    let mut r = Rules::new();
    r.add(B, PROTO_TCP, FF, q(None, None, None));
    r.add(A, PROTO_TCP, FF, q(None, Some("80,443"), None));
    let to = |p| facts(PROTO_TCP, v4([1, 1, 1, 1]), Some(p), None);
    assert_eq!(r.decide(FF, to(443)), Some(A));
    assert_eq!(r.decide(FF, to(22)), Some(B));
    r.add(B, PROTO_TCP, FF, q(None, Some("443"), None));
    assert_eq!(
        r.decide(FF, to(443)),
        Some(B),
        "443 alone is narrower than 80,443"
    );
    assert_eq!(r.decide(FF, to(80)), Some(A));
    // A port rule never matches a packet without ports.
    let mut r = Rules::new();
    r.add(B, PROTO_ANY, "/", q(None, Some("1-65535"), None));
    assert_eq!(
        r.decide(FF, facts(PROTO_ICMP, v4([1, 1, 1, 1]), None, None)),
        None
    );
}

#[test]
fn line4_exact_path_beats_folder_and_deeper_folder_beats_shallower() {
    let mut r = Rules::new();
    r.add(B, PROTO_ANY, "/", q(Some("internet"), None, None));
    r.add(A, PROTO_ANY, "/usr/", q(Some("internet"), None, None));
    r.add(B, PROTO_ANY, "/usr/bin/", q(Some("internet"), None, None));
    r.add(A, PROTO_ANY, FF, q(Some("internet"), None, None));
    let f = facts(PROTO_TCP, v4([1, 1, 1, 1]), Some(443), None);
    assert_eq!(r.decide(FF, f), Some(A), "exact");
    assert_eq!(
        r.decide("/usr/bin/curl", f),
        Some(B),
        "/usr/bin/ over /usr/"
    );
    assert_eq!(r.decide("/usr/lib/x", f), Some(A), "/usr/ over /");
    assert_eq!(r.decide("/opt/x", f), Some(B), "/");
    assert_eq!(
        r.decide("/usr/bin/", f),
        Some(A),
        "a folder rule never matches itself"
    );
}

#[test]
fn line5_specific_protocol_beats_any() {
    let mut r = Rules::new();
    r.add(B, PROTO_ANY, FF, q(Some("lan"), None, None));
    r.add(A, PROTO_UDP, FF, q(Some("lan"), None, None));
    assert_eq!(
        r.decide(FF, facts(PROTO_UDP, v4([10, 1, 1, 1]), Some(5353), None)),
        Some(A)
    );
    assert_eq!(
        r.decide(FF, facts(PROTO_TCP, v4([10, 1, 1, 1]), Some(80), None)),
        Some(B)
    );
}

#[test]
fn line6_block_beats_allow_on_equal_keys() {
    let mut r = Rules::new();
    r.add(A, PROTO_TCP, FF, q(None, Some("80,443"), None));
    r.add(B, PROTO_TCP, FF, q(None, Some("443,8080"), None));
    assert_eq!(
        r.decide(FF, facts(PROTO_TCP, v4([1, 1, 1, 1]), Some(443), None)),
        Some(B)
    );
    // Insertion order never matters.
    let mut r = Rules::new();
    r.add(B, PROTO_TCP, FF, q(None, Some("443,8080"), None));
    r.add(A, PROTO_TCP, FF, q(None, Some("80,443"), None));
    assert_eq!(
        r.decide(FF, facts(PROTO_TCP, v4([1, 1, 1, 1]), Some(443), None)),
        Some(B)
    );
}

#[test]
fn adding_the_same_rule_with_the_other_action_flips_it() {
    let mut r = Rules::new();
    let qq = q(Some("10.0.0.0/8"), Some("22"), Some(7));
    assert_eq!(r.add(A, PROTO_TCP, FF, qq), AddOutcome::Added);
    assert_eq!(r.add(A, PROTO_TCP, FF, qq), AddOutcome::Unchanged);
    let f = facts(PROTO_TCP, v4([10, 9, 9, 9]), Some(22), Some(7));
    assert_eq!(r.decide(FF, f), Some(A));
    assert_eq!(r.add(B, PROTO_TCP, FF, qq), AddOutcome::Flipped);
    assert_eq!(r.decide(FF, f), Some(B));
    assert_eq!(r.qual.len(), 1);
}

#[test]
fn unqualified_rules_mean_what_they_meant() {
    let mut r = Rules::new();
    r.add(A, PROTO_TCP, "/usr/bin/", Qualifiers::NONE);
    r.add(B, PROTO_ANY, FF, Qualifiers::NONE);
    // No destination reported at all (a host that does not fill them): unchanged verdicts.
    assert_eq!(r.decide(FF, facts(PROTO_TCP, None, None, None)), Some(B));
    assert_eq!(
        r.decide("/usr/bin/curl", facts(PROTO_TCP, None, None, None)),
        Some(A)
    );
    assert!(QualRule::new(PROTO_TCP, b"/x", Qualifiers::NONE, A).is_err());
}

#[test]
fn no_destination_matches_no_destination_rule() {
    let mut r = Rules::new();
    r.add(B, PROTO_ANY, "/", q(Some("internet"), None, None));
    r.add(B, PROTO_ANY, "/", q(None, Some("53"), None));
    assert_eq!(r.decide(FF, facts(PROTO_UDP, None, None, None)), None);
    // A user rule needs only the uid.
    r.add(B, PROTO_ANY, "/", q(None, None, Some(5)));
    assert_eq!(r.decide(FF, facts(PROTO_UDP, None, None, Some(5))), Some(B));
}

// ---- scopes and families -----------------------------------------------------------------------

#[test]
fn scopes_partition_addresses() {
    let s = |t: &str| {
        Scope::of(match Dest::parse(t).unwrap() {
            Dest::V4 { net, .. } => Addr::V4(net),
            Dest::V6 { net, .. } => Addr::V6(net),
            _ => unreachable!(),
        })
    };
    for (a, want) in [
        ("127.0.0.1", Scope::Localhost),
        ("0.0.0.0", Scope::Localhost),
        ("::1", Scope::Localhost),
        ("::", Scope::Localhost),
        ("10.1.2.3", Scope::Lan),
        ("172.16.0.1", Scope::Lan),
        ("172.32.0.1", Scope::Internet),
        ("192.168.0.1", Scope::Lan),
        ("169.254.1.1", Scope::Lan),
        ("224.0.0.251", Scope::Lan),
        ("255.255.255.255", Scope::Lan),
        ("100.64.0.1", Scope::Internet),
        ("fd00::1", Scope::Lan),
        ("fe80::1", Scope::Lan),
        ("ff02::fb", Scope::Lan),
        ("2001:db8::1", Scope::Internet),
        ("8.8.8.8", Scope::Internet),
    ] {
        assert_eq!(s(a), want, "{a}");
    }
    // IPv4-mapped IPv6 is its IPv4 address.
    let mapped = Addr::V6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 0, 0, 1]);
    assert_eq!(Scope::of(mapped), Scope::Lan);
}

#[test]
fn ipv6_prefixes_and_mapped_addresses() {
    let mut r = Rules::new();
    r.add(B, PROTO_ANY, "/", q(Some("2001:db8::/32"), None, None));
    r.add(
        B,
        PROTO_ANY,
        "/",
        q(Some("::ffff:10.0.0.0/104"), None, None),
    );
    assert_eq!(dest("::ffff:10.0.0.0/104"), dest("10.0.0.0/8"));
    let v6 = |s: &str| Some(Addr::V6(s.parse::<std::net::Ipv6Addr>().unwrap().octets()));
    let f = |a| facts(PROTO_TCP, a, Some(443), None);
    assert_eq!(r.decide(FF, f(v6("2001:db8:1::1"))), Some(B));
    assert_eq!(r.decide(FF, f(v6("2001:db9::1"))), None);
    assert_eq!(r.decide(FF, f(v6("::ffff:10.1.2.3"))), Some(B), "mapped");
    assert_eq!(r.decide(FF, f(v4([10, 1, 2, 3]))), Some(B));
    assert_eq!(r.decide(FF, f(v4([11, 1, 2, 3]))), None);
}

#[test]
fn text_forms_round_trip_and_errors_say_what_is_right() {
    for t in [
        "any",
        "lan",
        "localhost",
        "internet",
        "10.0.0.0/8",
        "1.1.1.1",
        "2001:db8::/32",
        "::1",
        "0.0.0.0/0",
    ] {
        assert_eq!(dest(t).to_string(), t);
    }
    assert_eq!(
        Ports::parse("443,80,81-90,1000").unwrap().to_string(),
        "80-90,443,1000"
    );
    let e = Dest::parse("10.0.0.1/8").unwrap_err().to_string();
    assert!(e.contains("did you mean 10.0.0.0/8"), "{e}");
    assert!(Dest::parse("10.0.0.0/33")
        .unwrap_err()
        .to_string()
        .contains("0..=32"));
    assert!(Dest::parse("example.com")
        .unwrap_err()
        .to_string()
        .contains("lan"));
    assert!(Ports::parse("0")
        .unwrap_err()
        .to_string()
        .contains("1..=65535"));
    assert!(Ports::parse("90-80")
        .unwrap_err()
        .to_string()
        .contains("80-90"));
    assert!(Ports::parse("1,3,5,7,9,11,13,15,17")
        .unwrap_err()
        .to_string()
        .contains("at most 8"));
    let e = QualRule::new(PROTO_ICMP, b"/x", q(None, Some("53"), None), A).unwrap_err();
    assert_eq!(
        e.to_string(),
        "protocol icmp has no ports: `port` needs tcp, udp, udplite, sctp or any"
    );
}

// ---- edits and capacity ------------------------------------------------------------------------

#[test]
fn remove_clear_and_order() {
    let mut t = Q::new();
    let rules = [
        ("/a", q(Some("10.0.0.0/8"), None, None), A),
        ("/b", q(Some("lan"), None, None), B),
        ("/c", q(None, Some("22"), None), A),
        ("/d", q(Some("::1"), None, Some(3)), B),
    ];
    for (p, qq, a) in rules {
        t.add(QualRule::new(PROTO_TCP, p.as_bytes(), qq, a).unwrap())
            .unwrap();
    }
    let paths: Vec<_> = t.iter().map(|r| r.path.to_vec()).collect();
    assert_eq!(
        paths,
        [
            b"/a".to_vec(),
            b"/b".to_vec(),
            b"/c".to_vec(),
            b"/d".to_vec()
        ]
    );
    assert!(t.remove(PROTO_TCP, b"/b", &rules[1].1));
    assert!(!t.remove(PROTO_TCP, b"/b", &rules[1].1));
    assert_eq!(t.len(), 3);
    assert_eq!(t.clear_action(A), 2);
    assert_eq!(t.iter().next().unwrap().path, b"/d");
    let f = facts(
        PROTO_TCP,
        Some(Addr::V6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1])),
        Some(1),
        Some(3),
    );
    assert_eq!(
        t.lookup(&f, &ExePath::new(b"/d").unwrap())
            .map(|m| m.action),
        Some(B)
    );
    assert_eq!(t.clear(), 1);
    assert!(t.lookup(&f, &ExePath::new(b"/d").unwrap()).is_none());
}

#[test]
fn full_table_hands_the_rule_back() {
    let mut t: QualTable<2, 64> = QualTable::new();
    for i in 0..2u8 {
        t.add(
            QualRule::new(
                PROTO_TCP,
                b"/",
                q(Some(&format!("10.0.0.{i}")), None, None),
                B,
            )
            .unwrap(),
        )
        .unwrap();
    }
    let r = QualRule::new(PROTO_TCP, b"/", q(Some("10.0.0.9"), None, None), B).unwrap();
    assert_eq!(t.add(r.clone()).unwrap_err().0, r);
}

/// Runs `f` on a thread with room for a default-sized table on its stack (debug builds copy it).
fn big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn ten_thousand_prefixes_block_and_others_pass() {
    big_stack(ten_thousand);
}

fn ten_thousand() {
    let mut t: Box<e7_core::BlocklistTable> = Box::new(QualTable::new());
    for i in 0..10_000u32 {
        let net = (i * 7919) % 65536;
        let d = format!(
            "{}.{}.{}.0/24",
            20 + (net >> 14),
            (net >> 8) & 63,
            net & 255
        );
        t.add(QualRule::new(PROTO_ANY, b"/", q(Some(&d), None, None), B).unwrap())
            .unwrap();
    }
    let exe = ExePath::new(b"/usr/bin/curl").unwrap();
    let f = |a| facts(PROTO_TCP, v4(a), Some(443), Some(1000));
    let i = 1234u32;
    let net = (i * 7919) % 65536;
    let blocked = [
        (20 + (net >> 14)) as u8,
        ((net >> 8) & 63) as u8,
        (net & 255) as u8,
        9,
    ];
    assert_eq!(t.lookup(&f(blocked), &exe).map(|m| m.action), Some(B));
    assert_eq!(t.lookup(&f([8, 8, 8, 8]), &exe), None);
}

// ---- the model ----------------------------------------------------------------------------------

const PATHS: &[&str] = &[
    "/",
    "/usr/",
    "/usr/bin/",
    "/usr/bin/ff",
    "/usr/bin/x/",
    "/opt/a",
];
const EXES: &[&str] = &[
    "/usr/bin/ff",
    "/usr/bin/x/y",
    "/opt/a",
    "/usr/binx",
    "/usr/bin/",
];
const PROTOS: &[u32] = &[PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ANY];
const DESTS: &[&str] = &[
    "any",
    "lan",
    "internet",
    "localhost",
    "10.0.0.0/8",
    "10.1.0.0/16",
    "10.1.2.3",
    "0.0.0.0/0",
    "8.8.8.0/24",
    "2001:db8::/32",
    "::1",
    "fe80::/10",
];
const PORTS: &[Option<&str>] = &[
    None,
    Some("53"),
    Some("80,443"),
    Some("1-1024"),
    Some("443,8080"),
];
const UIDS: &[Option<u32>] = &[None, Some(0), Some(1000)];
const ADDRS: &[&str] = &[
    "10.1.2.3",
    "10.9.9.9",
    "8.8.8.8",
    "127.0.0.1",
    "2001:db8::5",
    "::1",
    "fe80::1",
    "::ffff:10.1.2.3",
    "1.1.1.1",
];

#[derive(Debug, Clone)]
struct ModelRule {
    proto: u32,
    path: &'static str,
    qual: Qualifiers,
    action: Action,
}

fn rule_strategy() -> impl Strategy<Value = ModelRule> {
    (
        0..PROTOS.len(),
        0..PATHS.len(),
        0..DESTS.len(),
        0..PORTS.len(),
        0..UIDS.len(),
        any::<bool>(),
    )
        .prop_map(|(p, path, d, po, u, b)| {
            let proto = PROTOS[p];
            let ports = if proto == PROTO_ICMP { None } else { PORTS[po] };
            ModelRule {
                proto,
                path: PATHS[path],
                qual: q(Some(DESTS[d]), ports, UIDS[u]),
                action: if b { B } else { A },
            }
        })
}

fn addr(s: &str) -> Addr {
    match s.parse::<std::net::IpAddr>().unwrap() {
        std::net::IpAddr::V4(a) => Addr::V4(a.octets()),
        std::net::IpAddr::V6(a) => Addr::V6(a.octets()),
    }
}

/// The reference: every rule that applies, ranked by the documented key; the last added wins a
/// duplicate key (a flip replaces the action).
fn model(rules: &[ModelRule], exe: &str, f: QualFacts) -> Option<Action> {
    let mut live: Vec<&ModelRule> = Vec::new();
    for r in rules {
        live.retain(|o| !(o.proto == r.proto && o.path == r.path && o.qual == r.qual));
        live.push(r);
    }
    live.iter()
        .filter_map(|r| {
            let proto_ok = r.proto == PROTO_ANY || r.proto == f.proto;
            let dest_ok =
                r.qual.dest == Dest::Any || f.dst.is_some_and(|a| r.qual.dest.contains(a));
            let port_ok = r.qual.ports.is_none_or(|p| {
                matches!(f.proto, PROTO_TCP | PROTO_UDP) && f.dport.is_some_and(|d| p.contains(d))
            });
            let uid_ok = r.qual.uid.is_none() || r.qual.uid == f.uid;
            let program = if r.path.ends_with('/') {
                (exe.len() > r.path.len() && exe.starts_with(r.path)).then_some(r.path.len() as u16)
            } else {
                (exe == r.path).then_some(Precedence::EXACT)
            }?;
            (proto_ok && dest_ok && port_ok && uid_ok).then(|| {
                (
                    Precedence::of(&r.qual, program, r.proto != PROTO_ANY, r.action == B),
                    r.action,
                )
            })
        })
        .max_by_key(|(p, _)| *p)
        .map(|(_, a)| a)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]
    #[test]
    fn engine_matches_the_reference(
        rules in prop::collection::vec(rule_strategy(), 0..24),
        probes in prop::collection::vec((0..EXES.len(), 0..3usize, prop::option::of(0..ADDRS.len()), prop::option::of(1u16..9000), 0..UIDS.len()), 1..24),
    ) {
        let mut r = Rules::new();
        for m in &rules {
            r.add(m.action, m.proto, m.path, m.qual);
        }
        for (e, p, a, port, u) in probes {
            let proto = [PROTO_TCP, PROTO_UDP, PROTO_ICMP][p];
            let f = facts(
                proto,
                a.map(|i| addr(ADDRS[i])),
                if proto == PROTO_ICMP { None } else { port },
                UIDS[u],
            );
            prop_assert_eq!(r.decide(EXES[e], f), model(&rules, EXES[e], f), "exe {} facts {:?}", EXES[e], f);
        }
    }

    /// Many rules naming the same destination (long runs: searched by path hash) agree too.
    #[test]
    fn long_runs_match_the_reference(
        n in 9usize..40,
        probe in 0..EXES.len(),
    ) {
        let mut r = Rules::new();
        let mut rules = Vec::new();
        for i in 0..n {
            let m = ModelRule {
                proto: PROTO_TCP,
                path: PATHS[i % PATHS.len()],
                qual: q(Some("lan"), Some(&format!("{}", 1 + i / PATHS.len())), None),
                action: if i % 3 == 0 { B } else { A },
            };
            r.add(m.action, m.proto, m.path, m.qual);
            rules.push(m);
        }
        for port in 1..8u16 {
            let f = facts(PROTO_TCP, Some(addr("10.1.2.3")), Some(port), Some(0));
            prop_assert_eq!(r.decide(EXES[probe], f), model(&rules, EXES[probe], f));
        }
    }
}

#[test]
fn unqualified_keys_rank_below_every_qualified_one() {
    let plain = e7_core::RuleMatch {
        action: A,
        proto: PROTO_TCP,
        position: 0,
        kind: e7_core::MatchKind::Exact,
    };
    let qualified = Precedence::of(&q(Some("0.0.0.0/0"), None, None), 1, false, false);
    assert!(qualified > plain_precedence(&plain));
}

/// The README's worked example ("lock a laptop down"), packet by packet as the README tells it.
#[test]
fn readme_worked_example_lock_a_laptop_down() {
    const GUEST: u32 = 1001;
    let mut r = Rules::new();
    let rules: [(Action, u32, &str, Qualifiers); 7] = [
        (
            A,
            PROTO_UDP,
            "/usr/lib/systemd/systemd-resolved",
            q(Some("1.1.1.1"), Some("53"), None),
        ),
        (A, PROTO_TCP, FF, q(Some("internet"), Some("80,443"), None)),
        (
            A,
            PROTO_TCP,
            "/usr/bin/ssh",
            q(Some("lan"), Some("22"), None),
        ),
        (A, PROTO_ANY, "/usr/bin/", q(Some("localhost"), None, None)),
        (B, PROTO_ANY, "/", q(Some("10.0.0.0/8"), None, None)),
        (
            A,
            PROTO_TCP,
            "/usr/bin/ssh",
            q(Some("10.0.0.5"), Some("22"), None),
        ),
        (B, PROTO_ANY, "/", q(None, None, Some(GUEST))),
    ];
    for (a, p, path, qq) in rules {
        r.add(a, p, path, qq);
    }
    let tcp = |a, port, uid| facts(PROTO_TCP, v4(a), Some(port), Some(uid));
    let me = 1000;
    assert_eq!(r.decide(FF, tcp([93, 184, 216, 34], 443, me)), Some(A));
    assert_eq!(
        r.decide(FF, tcp([192, 168, 1, 1], 80, me)),
        None,
        "unkrule decides"
    );
    assert_eq!(
        r.decide("/usr/bin/ssh", tcp([192, 168, 1, 20], 22, me)),
        Some(A)
    );
    assert_eq!(
        r.decide("/usr/bin/ssh", tcp([10, 0, 0, 9], 22, me)),
        Some(B)
    );
    assert_eq!(
        r.decide("/usr/bin/ssh", tcp([10, 0, 0, 5], 22, me)),
        Some(A)
    );
    assert_eq!(
        r.decide("/usr/bin/curl", tcp([127, 0, 0, 1], 8080, me)),
        Some(A)
    );
    assert_eq!(
        r.decide(
            "/usr/lib/systemd/systemd-resolved",
            facts(PROTO_UDP, v4([1, 1, 1, 1]), Some(53), Some(101))
        ),
        Some(A)
    );
    assert_eq!(r.decide(FF, tcp([93, 184, 216, 34], 443, GUEST)), Some(B));
    assert_eq!(
        r.decide("/usr/bin/curl", tcp([127, 0, 0, 1], 8080, GUEST)),
        Some(B)
    );
}

#[derive(Debug, Clone)]
enum Edit {
    Add(ModelRule),
    Remove(usize),
    ClearAction(bool),
    RemoveAllFor(usize),
}

fn edit_strategy() -> impl Strategy<Value = Edit> {
    prop_oneof![
        6 => rule_strategy().prop_map(Edit::Add),
        2 => (0..64usize).prop_map(Edit::Remove),
        1 => any::<bool>().prop_map(Edit::ClearAction),
        1 => (0..64usize).prop_map(Edit::RemoveAllFor),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]
    /// Edits (add, flip, remove, clear by action, remove every rule of a program) keep the table's
    /// listing in insertion order and its index consistent: every probe agrees with the reference.
    #[test]
    fn edits_keep_order_and_index(
        edits in prop::collection::vec(edit_strategy(), 1..48),
        probes in prop::collection::vec((0..EXES.len(), 0..3usize, 0..ADDRS.len(), 1u16..9000, 0..UIDS.len()), 1..12),
    ) {
        let mut t = Q::new();
        let mut live: Vec<ModelRule> = Vec::new();
        for e in edits {
            match e {
                Edit::Add(m) => {
                    if m.qual.is_none() {
                        continue;
                    }
                    t.add(QualRule::new(m.proto, m.path.as_bytes(), m.qual, m.action).unwrap()).unwrap();
                    match live.iter_mut().find(|o| o.proto == m.proto && o.path == m.path && o.qual == m.qual) {
                        Some(o) => o.action = m.action,
                        None => live.push(m),
                    }
                }
                Edit::Remove(i) => {
                    if let Some(m) = live.get(i % live.len().max(1)).cloned() {
                        prop_assert!(t.remove(m.proto, m.path.as_bytes(), &m.qual));
                        live.retain(|o| !(o.proto == m.proto && o.path == m.path && o.qual == m.qual));
                    }
                }
                Edit::ClearAction(b) => {
                    let a = if b { B } else { A };
                    let n = live.iter().filter(|m| m.action == a).count();
                    prop_assert_eq!(t.clear_action(a), n);
                    live.retain(|m| m.action != a);
                }
                Edit::RemoveAllFor(i) => {
                    if let Some(m) = live.get(i % live.len().max(1)).cloned() {
                        let n = live.iter().filter(|o| o.proto == m.proto && o.path == m.path).count();
                        prop_assert_eq!(t.remove_all_for(m.proto, m.path.as_bytes()), n);
                        live.retain(|o| !(o.proto == m.proto && o.path == m.path));
                    }
                }
            }
            prop_assert_eq!(t.len(), live.len());
            let listed: Vec<_> = t.iter().map(|r| (r.proto, r.path.to_vec(), r.qual, r.action)).collect();
            let want: Vec<_> = live.iter().map(|m| (m.proto, m.path.as_bytes().to_vec(), m.qual, m.action)).collect();
            prop_assert_eq!(listed, want);
        }
        for (e, p, a, port, u) in probes {
            let proto = [PROTO_TCP, PROTO_UDP, PROTO_ICMP][p];
            let f = facts(proto, Some(addr(ADDRS[a])), if proto == PROTO_ICMP { None } else { Some(port) }, UIDS[u]);
            let exe = ExePath::new(EXES[e].as_bytes()).unwrap();
            prop_assert_eq!(t.lookup(&f, &exe).map(|m| m.action), model(&live, EXES[e], f));
        }
    }
}
