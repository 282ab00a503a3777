//! The bench scenarios measure what their names say (a "hit" hits, an "exact" lookup matches an
//! exact rule, ...), so the reported numbers mean something.

use e7_benches::{lookup_path, LookupKind, Prepared, Scenario, RULE_COUNTS};
use e7_core::{ExePath, MatchKind, RuleRing, PROTO_TCP};

#[test]
fn every_scenario_has_a_unique_name_and_runs() {
    big_stack(every_scenario_has_a_unique_name_and_runs_body);
}

fn every_scenario_has_a_unique_name_and_runs_body() {
    let all = Scenario::all();
    for s in &all {
        assert_eq!(Scenario::from_name(&s.name()), Some(*s));
        let mut p = s.setup();
        p.op();
    }
    assert!(Scenario::from_name("nope").is_none());
}

#[test]
fn cache_hit_hits_and_miss_misses() {
    let mut hit = Scenario::CacheHit.setup();
    let mut miss = Scenario::CacheMiss.setup();
    assert!(hit.op() > 100, "hit returns tgid + cached decision");
    assert_eq!(miss.op(), 1);
    assert!(matches!(hit, Prepared::Sockets { .. }));
}

#[test]
fn lookups_match_the_intended_rule_kind() {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            for n in RULE_COUNTS {
                for k in LookupKind::ALL {
                    let exe = ExePath::new(lookup_path(k, n).as_bytes()).unwrap();
                    let kind = match n {
                        16 => lookup::<16>(n, &exe),
                        128 => lookup::<128>(n, &exe),
                        1024 => lookup::<1024>(n, &exe),
                        _ => lookup::<4096>(n, &exe),
                    };
                    match k {
                        LookupKind::Exact => assert_eq!(kind, Some(MatchKind::Exact), "{n}"),
                        LookupKind::Folder => {
                            assert!(matches!(kind, Some(MatchKind::Folder { .. })), "{n}")
                        }
                        LookupKind::Miss => assert_eq!(kind, None, "{n}"),
                    }
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

fn lookup<const N: usize>(n: usize, exe: &ExePath) -> Option<MatchKind> {
    let mut r: Box<RuleRing<N>> = Box::new(RuleRing::new());
    e7_benches::fill(&mut r, n);
    assert_eq!(r.len(), n);
    r.lookup(PROTO_TCP, exe).map(|m| m.kind)
}

#[test]
fn decide_cached_is_the_allowed_path_and_decide_norule_the_no_rule_path() {
    big_stack(decide_cached_is_the_allowed_path_and_decide_norule_the_no_rule_path_body);
}

fn decide_cached_is_the_allowed_path_and_decide_norule_the_no_rule_path_body() {
    use e7_core::{Decision, Reason, Verdict};
    let mut allowed = Scenario::DecideCached.setup();
    let mut norule = Scenario::DecideNoRule.setup();
    let (a, n) = (allowed.op(), norule.op());
    assert_eq!(a & 1, 1, "served from the cache");
    assert_eq!(n & 1, 1, "served from the cache");
    let a = Decision::from_bits((a >> 1) as u8).expect("decision bits");
    let n = Decision::from_bits((n >> 1) as u8).expect("decision bits");
    assert_eq!(
        (a.verdict, a.reason, a.event),
        (Verdict::Accept, Reason::Rule, None)
    );
    assert_eq!(n.reason, Reason::NoRule);
    assert!(
        n.event.is_some() && n.squelch,
        "a squelched pending event: {n:?}"
    );
}

#[test]
fn decide_cached_is_served_from_the_cache_and_recompute_is_not() {
    big_stack(decide_cached_is_served_from_the_cache_and_recompute_is_not_body);
}

fn decide_cached_is_served_from_the_cache_and_recompute_is_not_body() {
    let mut cached = Scenario::DecideCached.setup();
    let mut recompute = Scenario::DecideRecompute.setup();
    // op() returns decision bits << 1 | served-from-cache.
    assert_eq!(cached.op() & 1, 1);
    assert_eq!(recompute.op() & 1, 0);
    assert_eq!(recompute.op() & 1, 0);
    // Every new socket misses the socket cache and is allowed (its program's rule).
    let mut fresh = Scenario::DecideNewSocket.setup();
    let allowed = cached.op();
    for _ in 0..3 {
        assert_eq!(
            fresh.op(),
            allowed & !1,
            "a new socket's packet: allowed, not a hit"
        );
    }
}

#[test]
fn prefix_scenarios_hit_and_miss_as_named() {
    use e7_benches::{blocklist_prefix, PREFIX_COUNTS};
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let distinct: std::collections::HashSet<String> =
                (0..10_000).map(blocklist_prefix).collect();
            assert_eq!(distinct.len(), 10_000, "10,000 different prefixes");
            for n in PREFIX_COUNTS {
                let mut hit = Scenario::PrefixLookup(true, n).setup();
                let mut miss = Scenario::PrefixLookup(false, n).setup();
                match &hit {
                    Prepared::Prefixes { table, .. } => assert_eq!(table.len(), n),
                    _ => unreachable!(),
                }
                assert!(hit.op() > 0, "{n}: the listed address is blocked");
                assert_eq!(miss.op(), 0, "{n}: the unlisted address matches nothing");
            }
            // With the blocklist loaded the allowed program's packet is still served from the
            // cache (bit 0), and the recompute scenario really recomputes.
            let mut cached = Scenario::DecideCachedBlocklist.setup();
            assert_eq!(cached.op() & 1, 1);
            let mut recompute = Scenario::DecideRecomputeBlocklist.setup();
            assert_eq!(recompute.op() & 1, 0);
            let mut plain = Scenario::DecideCached.setup();
            assert_eq!(cached.op() >> 1, plain.op() >> 1, "same decision");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// Runs `f` on a thread with room for the engines, which debug builds copy through the stack
/// (the bench engine holds a 16,384-rule qualified table).
fn big_stack(f: fn()) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}
