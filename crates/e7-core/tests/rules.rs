//! Rule ring: editing semantics (order, idempotence, flips, full, clears) and lookup precedence.
#![allow(
    clippy::result_large_err,
    reason = "RuleRing::add hands a full ring's rule back by value (heapless style)"
)]

use e7_core::{
    Action, AddOutcome, ExePath, Full, MatchKind, PathError, ProtocolError, Rule, RuleError,
    RuleRing, PROTO_ANY, PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};

fn rule(proto: u32, path: &str, action: Action) -> Rule {
    Rule::new(proto, path.as_bytes(), action).unwrap()
}

fn order<const N: usize>(r: &RuleRing<N>) -> Vec<(u32, String, Action)> {
    r.iter()
        .map(|x| (x.proto(), x.path().to_string(), x.action()))
        .collect()
}

fn look<const N: usize>(r: &RuleRing<N>, proto: u32, path: &str) -> Option<Action> {
    r.lookup(proto, &ExePath::new(path.as_bytes()).unwrap())
        .map(|m| m.action)
}

use Action::{Allow, Block};

#[test]
fn rule_validation() {
    for p in [256, 0xFF00, u32::MAX - 1] {
        assert_eq!(
            Rule::new(p, b"/bin/x", Allow).unwrap_err(),
            RuleError::Protocol(ProtocolError { prot: p })
        );
    }
    // Every IP protocol number can be named: every packet a socket sends is identified.
    for p in [
        PROTO_TCP,
        PROTO_UDP,
        PROTO_ICMP,
        PROTO_ICMPV6,
        PROTO_ANY,
        0,
        2,
        47,
        132,
        136,
        255,
    ] {
        assert!(Rule::new(p, b"/bin/x", Allow).is_ok());
    }
    assert_eq!(
        Rule::new(PROTO_TCP, b"bin/x", Allow).unwrap_err(),
        RuleError::Path(PathError::NotAbsolute)
    );
    assert_eq!(
        Rule::new(PROTO_TCP, b"", Allow).unwrap_err(),
        RuleError::Path(PathError::Empty)
    );
    assert!(matches!(
        Rule::new(PROTO_TCP, b"/a//b", Allow).unwrap_err(),
        RuleError::Path(PathError::EmptyComponent { offset: 2 })
    ));
    let msg = RuleError::Protocol(ProtocolError { prot: 256 }).to_string();
    assert!(msg.contains("256") && msg.contains("0..=255"), "{msg}");
}

#[test]
fn add_is_idempotent_and_flips_in_place() {
    let mut r: RuleRing<8> = RuleRing::new();
    assert_eq!(r.add(rule(PROTO_TCP, "/a", Allow)), Ok(AddOutcome::Added));
    assert_eq!(r.add(rule(PROTO_UDP, "/b", Block)), Ok(AddOutcome::Added));
    assert_eq!(r.add(rule(PROTO_ANY, "/c", Allow)), Ok(AddOutcome::Added));
    let g = r.generation();
    assert_eq!(
        r.add(rule(PROTO_TCP, "/a", Allow)),
        Ok(AddOutcome::Unchanged)
    );
    assert_eq!(r.generation(), g, "a no-op add is not a change");
    assert_eq!(r.add(rule(PROTO_TCP, "/a", Block)), Ok(AddOutcome::Flipped));
    assert_eq!(r.generation(), g.wrapping_add(1));
    assert_eq!(
        order(&r),
        vec![
            (PROTO_TCP, "/a".into(), Block),
            (PROTO_UDP, "/b".into(), Block),
            (PROTO_ANY, "/c".into(), Allow)
        ]
    );
    // ANY and TCP for the same path are distinct rules.
    assert_eq!(r.add(rule(PROTO_ANY, "/a", Allow)), Ok(AddOutcome::Added));
    assert_eq!(r.len(), 4);
}

#[test]
fn full_returns_rule_but_still_flips() {
    let mut r: RuleRing<2> = RuleRing::new();
    r.add(rule(PROTO_TCP, "/a", Allow)).unwrap();
    r.add(rule(PROTO_TCP, "/b", Allow)).unwrap();
    assert!(r.is_full());
    let extra = rule(PROTO_TCP, "/c", Block);
    assert_eq!(r.add(extra.clone()), Err(Full(extra)));
    assert_eq!(r.add(rule(PROTO_TCP, "/b", Block)), Ok(AddOutcome::Flipped));
    assert_eq!(
        r.add(rule(PROTO_TCP, "/b", Block)),
        Ok(AddOutcome::Unchanged)
    );
    assert_eq!(look(&r, PROTO_TCP, "/b"), Some(Block));
    let msg = Full(rule(PROTO_TCP, "/c", Block)).to_string();
    assert!(msg.contains("full") && msg.contains("/c"), "{msg}");
}

#[test]
fn remove_keeps_order_of_the_others() {
    let mut r: RuleRing<8> = RuleRing::new();
    for p in ["/1", "/2", "/3", "/4"] {
        r.add(rule(PROTO_TCP, p, Allow)).unwrap();
    }
    let g = r.generation();
    assert!(r.remove(PROTO_TCP, b"/2"));
    assert!(!r.remove(PROTO_TCP, b"/2"));
    assert!(!r.remove(PROTO_UDP, b"/3"), "protocol must match exactly");
    assert!(!r.remove(PROTO_ANY, b"/3"), "any removes only the any rule");
    assert_eq!(r.generation(), g.wrapping_add(1));
    let paths: Vec<String> = order(&r).into_iter().map(|x| x.1).collect();
    assert_eq!(paths, ["/1", "/3", "/4"]);
    // Lookups still work after the index rebuild.
    assert_eq!(look(&r, PROTO_TCP, "/4"), Some(Allow));
    assert_eq!(look(&r, PROTO_TCP, "/2"), None);
    // Removing the last rule leaves an empty, usable ring (B3: no lock left held).
    for p in ["/1", "/3", "/4"] {
        assert!(r.remove(PROTO_TCP, p.as_bytes()));
    }
    assert!(r.is_empty());
    assert_eq!(r.add(rule(PROTO_TCP, "/z", Block)), Ok(AddOutcome::Added));
}

#[test]
fn clear_action_removes_every_match_in_order() {
    // The original left [A] for [A,A,A] and [B,B,A] for [B,A,A,B,A] (B10).
    let mut r: RuleRing<8> = RuleRing::new();
    for p in ["/1", "/2", "/3"] {
        r.add(rule(PROTO_TCP, p, Allow)).unwrap();
    }
    assert_eq!(r.clear_action(Allow), 3);
    assert!(r.is_empty());
    let seq = [
        ("/1", Block),
        ("/2", Allow),
        ("/3", Allow),
        ("/4", Block),
        ("/5", Allow),
    ];
    for (p, a) in seq {
        r.add(rule(PROTO_TCP, p, a)).unwrap();
    }
    let g = r.generation();
    assert_eq!(r.clear_action(Allow), 3);
    assert_eq!(r.generation(), g.wrapping_add(1));
    let left: Vec<String> = order(&r).into_iter().map(|x| x.1).collect();
    assert_eq!(left, ["/1", "/4"]);
    assert_eq!(look(&r, PROTO_TCP, "/4"), Some(Block));
    assert_eq!(look(&r, PROTO_TCP, "/2"), None);
    assert_eq!(r.clear_action(Allow), 0);
    assert_eq!(
        r.generation(),
        g.wrapping_add(1),
        "nothing removed, no change"
    );
    assert_eq!(r.clear(), 2);
    assert!(r.is_empty());
    assert_eq!(look(&r, PROTO_TCP, "/1"), None);
}

#[test]
fn folder_rules_match_recursively_with_trailing_slash() {
    let mut r: RuleRing<8> = RuleRing::new();
    r.add(rule(PROTO_ANY, "/usr/bin/", Block)).unwrap();
    assert_eq!(
        look(&r, PROTO_TCP, "/usr/bin/wget"),
        Some(Block),
        "B5 fixed"
    );
    assert_eq!(look(&r, PROTO_TCP, "/usr/bin/sub/dir/tool"), Some(Block));
    assert_eq!(look(&r, PROTO_TCP, "/usr/binary"), None);
    assert_eq!(look(&r, PROTO_TCP, "/usr/sbin/x"), None);
    assert_eq!(
        look(&r, PROTO_TCP, "/usr/bin"),
        None,
        "the folder itself is not below it"
    );
    // A rule without the slash is an exact rule, not a folder rule.
    let mut r: RuleRing<8> = RuleRing::new();
    r.add(rule(PROTO_ANY, "/usr/bin", Block)).unwrap();
    assert_eq!(look(&r, PROTO_TCP, "/usr/bin/wget"), None);
    // Root folder matches everything.
    r.add(rule(PROTO_UDP, "/", Allow)).unwrap();
    assert_eq!(look(&r, PROTO_UDP, "/x"), Some(Allow));
    assert_eq!(look(&r, PROTO_TCP, "/x"), None);
}

#[test]
fn precedence_exact_over_folder_deeper_over_shallower_specific_over_any() {
    let mut r: RuleRing<16> = RuleRing::new();
    r.add(rule(PROTO_TCP, "/", Allow)).unwrap();
    r.add(rule(PROTO_ANY, "/usr/", Block)).unwrap();
    r.add(rule(PROTO_TCP, "/usr/bin/", Allow)).unwrap();
    r.add(rule(PROTO_ANY, "/usr/bin/", Block)).unwrap();
    r.add(rule(PROTO_ANY, "/usr/bin/wget", Allow)).unwrap();
    r.add(rule(PROTO_UDP, "/usr/bin/wget", Block)).unwrap();
    let m = |proto, p: &str| {
        r.lookup(proto, &ExePath::new(p.as_bytes()).unwrap())
            .unwrap()
    };

    // exact beats every folder, specific protocol beats any at the same path
    assert_eq!(m(PROTO_TCP, "/usr/bin/wget").action, Allow);
    assert_eq!(m(PROTO_TCP, "/usr/bin/wget").kind, MatchKind::Exact);
    assert_eq!(m(PROTO_TCP, "/usr/bin/wget").proto, PROTO_ANY);
    assert_eq!(m(PROTO_UDP, "/usr/bin/wget").action, Block);
    assert_eq!(m(PROTO_UDP, "/usr/bin/wget").proto, PROTO_UDP);
    // deeper folder over shallower; specific over any in the same folder
    assert_eq!(m(PROTO_TCP, "/usr/bin/curl").action, Allow);
    assert_eq!(
        m(PROTO_TCP, "/usr/bin/curl").kind,
        MatchKind::Folder { depth_len: 9 }
    );
    assert_eq!(m(PROTO_UDP, "/usr/bin/curl").action, Block);
    assert_eq!(m(PROTO_UDP, "/usr/lib/x").action, Block);
    assert_eq!(
        m(PROTO_TCP, "/usr/lib/x").action,
        Block,
        "/usr/ any beats / tcp"
    );
    assert_eq!(m(PROTO_TCP, "/opt/x").action, Allow);
    assert!(r
        .lookup(PROTO_UDP, &ExePath::new(b"/opt/x").unwrap())
        .is_none());
    // Insertion order does not matter: the same rules reversed give the same answers.
    let mut rev: RuleRing<16> = RuleRing::new();
    for x in r.iter().collect::<Vec<_>>().into_iter().rev() {
        rev.add(x.to_rule()).unwrap();
    }
    for p in [
        "/usr/bin/wget",
        "/usr/bin/curl",
        "/usr/lib/x",
        "/opt/x",
        "/y",
    ] {
        for proto in [PROTO_TCP, PROTO_UDP, PROTO_ICMP] {
            assert_eq!(look(&r, proto, p), look(&rev, proto, p), "{proto} {p}");
        }
    }
}

#[test]
fn positions_follow_insertion_order() {
    let mut r: RuleRing<8> = RuleRing::new();
    r.add(rule(PROTO_TCP, "/a", Allow)).unwrap();
    r.add(rule(PROTO_TCP, "/b", Allow)).unwrap();
    let m = r.lookup(PROTO_TCP, &ExePath::new(b"/b").unwrap()).unwrap();
    assert_eq!(m.position, 1);
    assert_eq!(r.get(1).unwrap().path().as_bytes(), b"/b");
    assert!(r.get(2).is_none());
    assert_eq!(r.iter().skip(1).count(), 1, "QUERY cursor");
}

/// Runs `f` on a thread with a stack big enough for a debug-build `RuleRing<4096>` temporary
/// (the kernel places it in a `static`; tests build it on the stack).
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn big_ring_lookups() {
    with_big_stack(big_ring_lookups_inner);
}

fn big_ring_lookups_inner() {
    let mut r: RuleRing<4096> = RuleRing::new();
    for i in 0..4096u32 {
        let p = if i % 4 == 0 {
            format!("/f{}/", i)
        } else {
            format!("/usr/bin/p{i}")
        };
        let a = if i % 3 == 0 { Block } else { Allow };
        assert_eq!(r.add(rule(PROTO_TCP, &p, a)), Ok(AddOutcome::Added));
    }
    assert!(r.is_full());
    for i in 0..4096u32 {
        let a = if i % 3 == 0 { Block } else { Allow };
        let p = if i % 4 == 0 {
            format!("/f{}/x/y", i)
        } else {
            format!("/usr/bin/p{i}")
        };
        assert_eq!(look(&r, PROTO_TCP, &p), Some(a), "{p}");
        assert_eq!(look(&r, PROTO_UDP, &p), None);
    }
    assert_eq!(look(&r, PROTO_TCP, "/usr/bin/none"), None);
    // Remove half and check the rest still resolve.
    for i in (0..4096u32).step_by(2) {
        let p = if i % 4 == 0 {
            format!("/f{}/", i)
        } else {
            format!("/usr/bin/p{i}")
        };
        assert!(r.remove(PROTO_TCP, p.as_bytes()));
    }
    assert_eq!(r.len(), 2048);
    for i in (1..4096u32).step_by(2) {
        let a = if i % 3 == 0 { Block } else { Allow };
        assert_eq!(look(&r, PROTO_TCP, &format!("/usr/bin/p{i}")), Some(a));
    }
}

#[test]
fn generation_wraps() {
    let mut r: RuleRing<4> = RuleRing::new();
    r.set_generation(u32::MAX);
    r.add(rule(PROTO_TCP, "/a", Allow)).unwrap();
    assert_eq!(r.generation(), 0);
}

#[test]
fn the_path_arena_bounds_long_paths_and_compacts_on_removal() {
    // 16 rules × 80 bytes of path storage: five 255-byte paths fit (1275 bytes), a sixth does not.
    let long = |c: char| format!("/{}", c.to_string().repeat(254));
    let mut r: RuleRing<16> = RuleRing::new();
    for c in ['a', 'b', 'c', 'd', 'e'] {
        assert_eq!(
            r.add(rule(PROTO_TCP, &long(c), Allow)),
            Ok(AddOutcome::Added)
        );
    }
    assert!(matches!(
        r.add(rule(PROTO_TCP, &long('f'), Allow)),
        Err(Full(_))
    ));
    // Short paths still fit in what is left (1280 - 1275 = 5 bytes: "/x" and "/y").
    assert_eq!(r.add(rule(PROTO_UDP, "/x", Block)), Ok(AddOutcome::Added));
    assert_eq!(r.add(rule(PROTO_UDP, "/y", Block)), Ok(AddOutcome::Added));
    assert!(matches!(r.add(rule(PROTO_UDP, "/zz", Block)), Err(Full(_))));
    // Removing a long path in the middle moves the later paths down; all still match.
    assert!(r.remove(PROTO_TCP, long('b').as_bytes()));
    assert_eq!(
        r.add(rule(PROTO_TCP, &long('f'), Block)),
        Ok(AddOutcome::Added)
    );
    for (c, want) in [
        ('a', Allow),
        ('c', Allow),
        ('d', Allow),
        ('e', Allow),
        ('f', Block),
    ] {
        assert_eq!(look(&r, PROTO_TCP, &long(c)), Some(want), "{c}");
    }
    assert_eq!(look(&r, PROTO_TCP, &long('b')), None);
    assert_eq!(look(&r, PROTO_UDP, "/y"), Some(Block));
    let paths: Vec<String> = order(&r)
        .into_iter()
        .map(|(_, p, _)| p[..2].to_string())
        .collect();
    assert_eq!(paths, ["/a", "/c", "/d", "/e", "/x", "/y", "/f"]);
    // Clearing by action compacts too.
    assert_eq!(r.clear_action(Block), 3);
    assert_eq!(look(&r, PROTO_TCP, &long('e')), Some(Allow));
    assert_eq!(r.len(), 4);
}
