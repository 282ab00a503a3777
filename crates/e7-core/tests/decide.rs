//! Flags, the pure decision function (every mode and default-action flag), and squelch.

use e7_core::{
    decide, decide_early, Action, Const, Decision, EventKind, ExeId, ExeTable, Family, Flag,
    FlagValues, Flags, Identity, Mode, PacketFacts, Reason, Squelch, ValueError, Verdict,
    PROTO_ICMP, PROTO_ICMPV6, PROTO_TCP, PROTO_UDP,
};

const ENABLED: u32 = Const::Enabled.value();
const DISABLED: u32 = Const::Disabled.value();
const ALLOW: u32 = Const::Allow.value();
const BLOCK: u32 = Const::Block.value();

fn exe() -> ExeId {
    let mut t: ExeTable<4> = ExeTable::new();
    t.intern(b"/usr/bin/x").unwrap()
}

fn enabled() -> FlagValues {
    FlagValues {
        mode: Mode::Enabled,
        ..FlagValues::DEFAULT
    }
}

fn tcp() -> PacketFacts {
    PacketFacts::new(PROTO_TCP, Family::Ipv4)
}

#[test]
fn flag_defaults_match_the_schema() {
    let f = Flags::new();
    for flag in Flag::ALL {
        assert_eq!(f.get(*flag), flag.default_value(), "{}", flag.alias());
    }
    assert_eq!(f.snapshot(), FlagValues::DEFAULT);
    assert_eq!(f.mode(), Mode::Disabled);
    assert_eq!(f.get(Flag::LongPath), BLOCK);
}

#[test]
fn set_is_validated() {
    let f = Flags::new();
    assert_eq!(
        f.set(Flag::Mode, ALLOW),
        Err(ValueError::Invalid {
            flag: Flag::Mode,
            value: ALLOW
        })
    );
    assert!(f.set(Flag::UnkRule, ENABLED).is_err());
    assert!(f.set(Flag::Drops, BLOCK).is_err());
    assert_eq!(
        f.set(Flag::Uptime, 5),
        Err(ValueError::ReadOnly { flag: Flag::Uptime })
    );
    assert_eq!(f.get(Flag::Mode), DISABLED, "refused values change nothing");
    assert_eq!(f.set(Flag::Mode, BLOCK), Ok(()));
    assert_eq!(f.mode(), Mode::Block);
    let msg = ValueError::Invalid {
        flag: Flag::UnkRule,
        value: 3,
    }
    .to_string();
    assert!(
        msg.contains("unkrule") && msg.contains("allow, block"),
        "{msg}"
    );
}

#[test]
fn generation_bumps_only_for_decision_relevant_changes() {
    let f = Flags::new();
    let g0 = f.generation();
    f.set(Flag::Mode, DISABLED).unwrap(); // same value
    assert_eq!(f.generation(), g0);
    f.set(Flag::Debug, ENABLED).unwrap();
    f.set(Flag::RChngQ, DISABLED).unwrap();
    assert_eq!(f.generation(), g0, "debug/rchngq do not change decisions");
    f.set(Flag::Mode, ENABLED).unwrap();
    assert_eq!(f.generation(), g0 + 1);
    f.set(Flag::Accepts, ENABLED).unwrap();
    assert_eq!(
        f.generation(),
        g0 + 2,
        "event flags change cached decisions"
    );
    assert!(f.set_stat(Flag::QPackets, 9));
    assert!(
        !f.set_stat(Flag::Mode, BLOCK),
        "set_stat only writes statistics"
    );
    f.count(Flag::QPackets);
    assert_eq!(f.get(Flag::QPackets), 10);
    assert_eq!(f.generation(), g0 + 2);
    f.set_generation(u32::MAX);
    f.set(Flag::Mode, BLOCK).unwrap();
    assert_eq!(f.generation(), 0, "wraps");
    f.reset();
    assert_eq!(f.snapshot(), FlagValues::DEFAULT);
}

#[test]
fn mode_disabled_accepts_everything_without_identification() {
    let flags = FlagValues::DEFAULT;
    for facts in [
        tcp(),
        PacketFacts::malformed(Family::Ipv6),
        PacketFacts::new(47, Family::Ipv4),
    ] {
        let d = decide_early(&flags, &facts).unwrap();
        assert_eq!(d.verdict, Verdict::Accept);
        assert_eq!(d.reason, Reason::Disabled);
        assert_eq!(d.event, None);
        let rule_block = decide(&flags, &facts, &Identity::Exe(exe()), Some(Action::Block));
        assert_eq!(
            rule_block.verdict,
            Verdict::Accept,
            "disabled ignores rules"
        );
    }
}

#[test]
fn mode_block_really_drops_everything() {
    let flags = FlagValues {
        mode: Mode::Block,
        ..FlagValues::DEFAULT
    };
    for rule in [None, Some(Action::Allow)] {
        let d = decide(&flags, &tcp(), &Identity::Exe(exe()), rule);
        assert_eq!(d.verdict, Verdict::Drop, "B1 fixed");
        assert_eq!(d.reason, Reason::BlockMode);
        assert_eq!(d.event, None);
    }
}

#[test]
fn malformed_gets_fail_action() {
    for (fail, v) in [
        (Action::Allow, Verdict::Accept),
        (Action::Block, Verdict::Drop),
    ] {
        let flags = FlagValues { fail, ..enabled() };
        let d = decide(
            &flags,
            &PacketFacts::malformed(Family::Ipv4),
            &Identity::Unknown,
            None,
        );
        assert_eq!((d.verdict, d.reason), (v, Reason::Malformed));
    }
}

#[test]
fn every_protocol_is_identified_and_unkprot_decides_unowned_packets_of_other_protocols() {
    for (unkprot, v) in [
        (Action::Allow, Verdict::Accept),
        (Action::Block, Verdict::Drop),
    ] {
        let flags = FlagValues {
            unkprot,
            unkproc: unkprot.opposite_for_test(),
            ..enabled()
        };
        for proto in [0, 2, 47, 132, 136, 255] {
            let facts = PacketFacts::new(proto, Family::Ipv4);
            // No early decision: the socket's owner is identified, whatever the protocol.
            assert_eq!(decide_early(&flags, &facts), None, "{proto}");
            // No owner: unkprot, not unkproc.
            let d = decide(&flags, &facts, &Identity::Unknown, None);
            assert_eq!(
                (d.verdict, d.reason),
                (v, Reason::UnknownProtocol),
                "{proto}"
            );
            // An identified program: its rule decides, unkprot does not.
            for rule in [Action::Allow, Action::Block] {
                let d = decide(&flags, &facts, &Identity::Exe(exe()), Some(rule));
                assert_eq!((d.verdict, d.reason), (Verdict::of(rule), Reason::Rule));
            }
        }
    }
    for proto in [PROTO_TCP, PROTO_UDP, PROTO_ICMP, PROTO_ICMPV6] {
        let facts = PacketFacts::new(proto, Family::Ipv6);
        assert_eq!(
            decide_early(&enabled(), &facts),
            None,
            "{proto} is identified"
        );
        let flags = FlagValues {
            unkprot: Action::Block,
            ..enabled()
        };
        let d = decide(&flags, &facts, &Identity::Unknown, None);
        assert_eq!(
            (d.verdict, d.reason),
            (Verdict::Accept, Reason::UnknownProcess),
            "{proto} without owner: unkproc"
        );
    }
}

#[test]
fn unknown_process_and_long_path() {
    for (a, v) in [
        (Action::Allow, Verdict::Accept),
        (Action::Block, Verdict::Drop),
    ] {
        let flags = FlagValues {
            unkproc: a,
            longpath: a.opposite_for_test(),
            ..enabled()
        };
        let d = decide(&flags, &tcp(), &Identity::Unknown, None);
        assert_eq!(
            (d.verdict, d.reason, d.event),
            (v, Reason::UnknownProcess, None)
        );
        let d = decide(&flags, &tcp(), &Identity::PathTooLong, Some(a));
        assert_ne!(d.verdict, v, "longpath decides, not unkproc and not a rule");
        assert_eq!(d.reason, Reason::PathTooLong);
    }
    // Default longpath is block: never a silent allow.
    let d = decide(&enabled(), &tcp(), &Identity::PathTooLong, None);
    assert_eq!(d.verdict, Verdict::Drop);
}

trait Opp {
    fn opposite_for_test(self) -> Self;
}
impl Opp for Action {
    fn opposite_for_test(self) -> Self {
        match self {
            Action::Allow => Action::Block,
            Action::Block => Action::Allow,
        }
    }
}

#[test]
fn rules_and_their_event_flags() {
    let id = Identity::Exe(exe());
    for accepts in [false, true] {
        for drops in [false, true] {
            let flags = FlagValues {
                accepts,
                drops,
                ..enabled()
            };
            let d = decide(&flags, &tcp(), &id, Some(Action::Allow));
            assert_eq!(d.verdict, Verdict::Accept);
            assert_eq!(d.event, accepts.then_some(EventKind::Allow));
            assert!(!d.squelch, "rule events are per packet, never squelched");
            let d = decide(&flags, &tcp(), &id, Some(Action::Block));
            assert_eq!(d.verdict, Verdict::Drop);
            assert_eq!(d.event, drops.then_some(EventKind::Block));
            assert_eq!(d.reason, Reason::Rule);
        }
    }
}

#[test]
fn no_rule_unkrule_norule_squelch() {
    let id = Identity::Exe(exe());
    for unkrule in [Action::Allow, Action::Block] {
        for norule in [false, true] {
            for squelch in [false, true] {
                let flags = FlagValues {
                    unkrule,
                    norule,
                    squelch,
                    ..enabled()
                };
                let d = decide(&flags, &tcp(), &id, None);
                assert_eq!(d.verdict, Verdict::of(unkrule));
                assert_eq!(d.reason, Reason::NoRule);
                assert_eq!(d.event, norule.then_some(EventKind::Pending));
                assert_eq!(d.squelch, norule && squelch);
                let rec = d.event_record(&tcp(), &id);
                assert_eq!(rec.is_some(), norule);
                if let Some(e) = rec {
                    assert_eq!(
                        (e.proto, e.kind.state()),
                        (PROTO_TCP, Const::Pending.value())
                    );
                }
            }
        }
    }
}

#[test]
fn no_event_without_an_identified_executable() {
    let d = Decision {
        verdict: Verdict::Accept,
        event: Some(EventKind::Pending),
        squelch: false,
        reason: Reason::NoRule,
    };
    assert_eq!(d.event_record(&tcp(), &Identity::Unknown), None);
}

/// The squelch counts whole seconds of the host's clock; these tests think in milliseconds.
fn secs(ms: u64) -> u64 {
    ms / 1000
}

#[test]
fn squelch_one_event_per_key_per_second() {
    let s: Squelch = Squelch::new();
    let a = exe();
    assert!(s.permit(PROTO_TCP, a, secs(1_000)));
    assert!(!s.permit(PROTO_TCP, a, secs(1_500)));
    assert!(!s.permit(PROTO_TCP, a, secs(1_999)));
    assert!(s.permit(PROTO_UDP, a, secs(1_999)), "per protocol");
    assert!(s.permit(PROTO_TCP, a, secs(2_000)), "next second");
    assert!(!s.permit(PROTO_TCP, a, secs(2_001)));
    s.clear();
    assert!(s.permit(PROTO_TCP, a, secs(2_002)));
}

#[test]
fn squelch_never_lets_a_key_through_twice_in_a_second_under_pressure() {
    // 4 ways per set and 4 entries in total: one set. Six keys compete.
    let s: Squelch<4> = Squelch::new();
    let mut t: ExeTable<8> = ExeTable::new();
    let ids: Vec<ExeId> = (0..6)
        .map(|i| t.intern(format!("/k{i}").as_bytes()).unwrap())
        .collect();
    let mut permits = vec![0; 6];
    for round in 0..10 {
        for (i, id) in ids.iter().enumerate() {
            if s.permit(PROTO_TCP, *id, secs(5_000 + round)) {
                permits[i] += 1;
            }
        }
    }
    assert!(permits.iter().all(|&p| p <= 1), "{permits:?}");
    assert_eq!(permits.iter().sum::<i32>(), 4);
    assert!(s.pressure() > 0);
    // Next second, the suppressed keys get their turn.
    assert!(s.permit(PROTO_TCP, ids[5], secs(6_000)));
}

#[test]
fn a_flood_of_other_executables_never_mutes_a_victims_events() {
    // 255 attacker executables (every other slot of the default table) fire every protocol every
    // few milliseconds; the victim fires once per second and must get its event every second.
    let s: Squelch = Squelch::new();
    let mut t: ExeTable = ExeTable::new();
    let attackers: Vec<ExeId> = (0..255)
        .map(|i| t.intern(format!("/home/mallory/a{i}").as_bytes()).unwrap())
        .collect();
    let victim = t.intern(b"/usr/bin/victim").unwrap();
    for second in 0..20u64 {
        for step in 0..4u64 {
            let now = 10_000 + second * 1000 + step * 10;
            for id in &attackers {
                for proto in [PROTO_TCP, PROTO_UDP, 1, 58, 132] {
                    s.permit(proto, *id, secs(now));
                }
            }
        }
        let now = 10_000 + second * 1000 + 500;
        assert!(
            s.permit(PROTO_UDP, victim, secs(now)),
            "second {second}: victim muted"
        );
        assert!(
            s.permit(PROTO_TCP, victim, secs(now)),
            "second {second}: victim muted"
        );
        assert!(
            !s.permit(PROTO_UDP, victim, secs(now + 1)),
            "still one per second"
        );
    }
    assert_eq!(s.pressure(), 0);
}

#[test]
fn a_flooder_cycling_protocols_costs_only_itself() {
    let s: Squelch = Squelch::new();
    let mut t: ExeTable = ExeTable::new();
    let flooder = t.intern(b"/tmp/f").unwrap();
    let other = t.intern(b"/usr/bin/o").unwrap();
    // Protocols outside tcp/udp/icmp/icmpv6 share one entry per executable.
    assert!(s.permit(132, flooder, secs(1_000)));
    assert!(!s.permit(136, flooder, secs(1_100)));
    assert!(s.permit(132, other, secs(1_200)));
    assert!(s.permit(136, flooder, secs(2_000)));
}

#[test]
fn a_reused_table_slot_belongs_to_the_newer_executable() {
    let s: Squelch<4> = Squelch::new();
    let old = ExeId::from_u64(0x0001_0002).unwrap();
    let new = ExeId::from_u64(0x0002_0002).unwrap();
    assert!(s.permit(PROTO_TCP, old, secs(1_000)));
    assert!(
        s.permit(PROTO_TCP, new, secs(1_100)),
        "the newer generation takes the entry"
    );
    assert!(
        !s.permit(PROTO_TCP, old, secs(1_200)),
        "a stale id cannot take it back"
    );
    assert!(
        !s.permit(PROTO_TCP, new, secs(1_300)),
        "one per second for the new owner"
    );
}

#[test]
fn squelch_is_exact_across_threads() {
    let s: Squelch = Squelch::new();
    let a = exe();
    let total = std::sync::atomic::AtomicU32::new(0);
    std::thread::scope(|sc| {
        for _ in 0..4 {
            sc.spawn(|| {
                for _ in 0..10_000 {
                    if s.permit(PROTO_TCP, a, secs(42_000)) {
                        total.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                }
            });
        }
    });
    assert_eq!(total.into_inner(), 1);
}

#[test]
fn the_hit_paths_bit_tests_agree_with_the_decoded_decision() {
    // The hit path tests packed bits without decoding them; every valid packing must agree.
    let mut valid = 0;
    for b in 0..=255u8 {
        let Some(d) = Decision::from_bits(b) else {
            continue;
        };
        valid += 1;
        assert_eq!(d.to_bits(), b, "{d:?}");
        assert_eq!(Decision::bits_have_no_event(b), d.event.is_none(), "{d:?}");
        assert_eq!(
            Decision::bits_squelched(b),
            d.event.is_some() && d.squelch,
            "{d:?}"
        );
    }
    assert!(valid >= 40, "only {valid} valid packings");
}
