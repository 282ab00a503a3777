//! The qualifiers on the wire: DEST/PORTS/UID round-trip, an unqualified rule stays byte-identical,
//! a request carrying them parses as a qualified rule (never the plain one), QUERY replies carry
//! them, and what the original console is shown
//! for a qualified rule can never read as an unqualified rule.

use e7_proto::msg::{
    emit_query_chain, emit_query_dump, parse_reply, parse_request, ClearSpec, MsgError,
    QueryHeader, QueryRule, Reply, Request, RuleSpec,
};
use e7_proto::nla::Writer;
use e7_proto::qual::{
    emit_qualifiers, legacy_path, parse_qualifiers, Dest, Ports, QualWireError, Qualifiers,
};
use e7_proto::{validate_rule_path, Action, Attr, Command, Const, MAX_PATH_LEN};
use proptest::prelude::*;

const TCP: u32 = Const::Tcp.value();

fn q(to: &str, ports: Option<&str>, uid: Option<u32>) -> Qualifiers {
    Qualifiers {
        dest: Dest::parse(to).unwrap(),
        ports: ports.map(|p| Ports::parse(p).unwrap()),
        uid,
    }
}

fn rule_request(qual: &Qualifiers) -> Vec<u8> {
    let mut buf = [0u8; 1024];
    let mut w = Writer::new(&mut buf);
    Request::AddRule(RuleSpec {
        prot: TCP,
        path: "/usr/bin/firefox",
        action: Action::Allow,
    })
    .emit(&mut w)
    .unwrap();
    emit_qualifiers(&mut w, qual).unwrap();
    w.as_bytes().to_vec()
}

#[test]
fn qualifiers_round_trip_and_none_adds_no_byte() {
    let plain = rule_request(&Qualifiers::NONE);
    let mut buf = [0u8; 1024];
    let mut w = Writer::new(&mut buf);
    Request::AddRule(RuleSpec {
        prot: TCP,
        path: "/usr/bin/firefox",
        action: Action::Allow,
    })
    .emit(&mut w)
    .unwrap();
    assert_eq!(
        plain,
        w.as_bytes(),
        "an unqualified rule is the original's request"
    );
    for qual in [
        q("10.0.0.0/8", None, None),
        q("any", Some("80,443"), None),
        q("lan", Some("1-1024,8080"), Some(1000)),
        q("2001:db8::/32", None, Some(0)),
        q("any", None, Some(65534)),
    ] {
        let bytes = rule_request(&qual);
        assert_eq!(parse_qualifiers(&bytes, TCP), Ok(qual));
    }
}

#[test]
fn a_qualified_request_parses_as_a_qualified_rule_never_a_plain_one() {
    // The module parses DEST/PORTS/UID together with the rule: a request carrying them is an
    // AddQualified (or a qualified CLEAR), never the plain rule without them.
    for qual in [
        q("10.0.0.0/8", None, None),
        q("any", Some("53"), None),
        q("any", None, Some(5)),
        q("2001:db8::/32", Some("80,443"), Some(65534)),
    ] {
        let bytes = rule_request(&qual);
        let spec = RuleSpec {
            prot: TCP,
            path: "/usr/bin/firefox",
            action: Action::Allow,
        };
        assert_eq!(
            parse_request(Command::Allow.value(), &bytes),
            Ok(Request::AddQualified(spec, qual))
        );
        assert_eq!(
            parse_request(Command::Clear.value(), &bytes),
            Ok(Request::Clear(ClearSpec::Qualified {
                prot: TCP,
                path: "/usr/bin/firefox",
                qual
            }))
        );
        // And the request emits the same bytes back.
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        Request::AddQualified(spec, qual).emit(&mut w).unwrap();
        assert_eq!(w.as_bytes(), &bytes[..]);
    }
    // `to any` alone narrows nothing: the plain rule.
    let bytes = rule_request(&q("any", None, None));
    assert!(matches!(
        parse_request(Command::Allow.value(), &bytes),
        Ok(Request::AddRule(_))
    ));
    // A bad qualifier is refused with its reason (EINVAL), never dropped.
    let mut buf = [0u8; 256];
    let mut w = Writer::new(&mut buf);
    w.put_u32(Attr::Prot.value(), Const::Icmp.value()).unwrap();
    w.put_str(Attr::Path.value(), "/bin/ping").unwrap();
    w.put_str(Attr::Ports.value(), "53").unwrap();
    let e = parse_request(Command::Block.value(), w.as_bytes()).unwrap_err();
    assert!(matches!(e, MsgError::Qualifier(_)), "{e:?}");
    assert_eq!(e.errno(), 22);
    assert!(e.to_string().contains("has no ports"), "{e}");
}

#[test]
fn query_replies_carry_qualified_rules_that_old_readers_see_marked() {
    let plain = RuleSpec {
        prot: TCP,
        path: "/usr/bin/curl",
        action: Action::Allow,
    };
    let qualified = QueryRule {
        spec: RuleSpec {
            prot: Const::Any.value(),
            path: "/",
            action: Action::Block,
        },
        qual: q("10.0.0.0/8", None, Some(65534)),
    };
    let folder = QueryRule {
        spec: RuleSpec {
            prot: TCP,
            path: "/usr/bin/",
            action: Action::Allow,
        },
        qual: q("any", Some("80,443"), None),
    };
    let rules = [QueryRule::from(plain), qualified, folder];
    for chain in [true, false] {
        let mut buf = [0u8; 4096];
        let mut w = Writer::new(&mut buf);
        if chain {
            assert!(
                emit_query_chain(&mut w, Const::Enabled.value(), rules, 3)
                    .unwrap()
                    .done
            );
        } else {
            let h = QueryHeader {
                mode: Const::Enabled.value(),
                count: 3,
            };
            assert!(emit_query_dump(&mut w, Some(h), rules).unwrap().done);
        }
        let Reply::Query(r) = parse_reply(Command::Query.value(), w.as_bytes()).unwrap() else {
            panic!("not a query reply");
        };
        assert_eq!(r.qualified_rules().collect::<Vec<_>>(), rules.to_vec());
        // What a reader of PROT, PATH, STATE alone sees: the marked text, never `/`.
        let old: Vec<_> = r.rules().map(|s| s.path).collect();
        assert_eq!(
            old,
            [
                "/usr/bin/curl",
                "/// to 10.0.0.0/8 user 65534",
                "/usr/bin/// to any port 80,443"
            ]
        );
    }
}

#[test]
fn bad_qualifier_attributes_are_refused_with_the_reason() {
    let mut buf = [0u8; 256];
    let mut w = Writer::new(&mut buf);
    w.put_str(Attr::Dest.value(), "10.0.0.1/8").unwrap();
    let e = parse_qualifiers(w.as_bytes(), TCP).unwrap_err();
    assert!(e.to_string().contains("did you mean 10.0.0.0/8"), "{e}");
    let mut buf = [0u8; 256];
    let mut w = Writer::new(&mut buf);
    w.put_str(Attr::Ports.value(), "53").unwrap();
    let e = parse_qualifiers(w.as_bytes(), Const::Icmp.value()).unwrap_err();
    assert!(matches!(e, QualWireError::Value(_)), "{e:?}");
    assert!(e.to_string().contains("has no ports"));
    let mut buf = [0u8; 256];
    let mut w = Writer::new(&mut buf);
    w.put_bytes(Attr::Uid.value(), &[1, 2]).unwrap();
    assert_eq!(
        parse_qualifiers(w.as_bytes(), TCP),
        Err(QualWireError::Attr(Attr::Uid))
    );
}

#[test]
fn the_original_console_sees_a_marked_path() {
    let mut buf = [0u8; MAX_PATH_LEN];
    let shown = legacy_path(
        b"/usr/bin/firefox",
        &q("any", Some("80,443"), None),
        &mut buf,
    );
    assert_eq!(shown, b"/usr/bin/firefox// to any port 80,443");
    assert!(validate_rule_path(shown).is_err(), "never a rule path");
    let mut buf = [0u8; MAX_PATH_LEN];
    let shown = legacy_path(b"/", &q("any", None, Some(1001)), &mut buf);
    assert_eq!(shown, b"/// user 1001");
    assert!(validate_rule_path(shown).is_err());
}

fn qual_strategy() -> impl Strategy<Value = Qualifiers> {
    let dest = prop_oneof![
        Just(Dest::Any),
        (any::<[u8; 4]>(), 0u8..=32).prop_map(|(a, l)| Dest::V4 {
            net: e7_proto::qual::mask(a, l),
            len: l
        }),
        (any::<[u8; 16]>(), 0u8..=128).prop_map(|(mut a, l)| {
            a[10] = 0; // never IPv4-mapped: those are stored as IPv4
            Dest::V6 {
                net: e7_proto::qual::mask(a, l),
                len: l,
            }
        }),
        Just(Dest::parse("lan").unwrap()),
    ];
    let ports = prop::option::of(
        prop::collection::vec((1u16..=65535, 0u16..2000), 1..8).prop_map(|v| {
            let r: Vec<_> = v
                .into_iter()
                .map(|(lo, n)| e7_proto::qual::PortRange {
                    lo,
                    hi: lo.saturating_add(n),
                })
                .collect();
            Ports::from_ranges(&r).unwrap()
        }),
    );
    (dest, ports, prop::option::of(0u32..u32::MAX)).prop_map(|(dest, ports, uid)| Qualifiers {
        dest,
        ports,
        uid,
    })
}

/// The scope by the listed prefixes (the slow, obviously right way).
fn scope_by_table(a: e7_proto::qual::Addr) -> e7_proto::qual::Scope {
    use e7_proto::qual::Scope;
    let a = a.canonical();
    for s in [Scope::Localhost, Scope::Lan] {
        if s.prefixes().iter().any(|p| p.contains(a)) {
            return s;
        }
    }
    Scope::Internet
}

#[test]
fn scope_edges_agree_with_the_listed_prefixes() {
    use e7_proto::qual::{Addr, Scope};
    for s in [Scope::Localhost, Scope::Lan] {
        for p in s.prefixes() {
            let (first, last) = match *p {
                Dest::V4 { net, len } => {
                    let v = u32::from_be_bytes(net);
                    let last = v | u32::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                    (Addr::V4(net), Addr::V4(last.to_be_bytes()))
                }
                Dest::V6 { net, len } => {
                    let v = u128::from_be_bytes(net);
                    let last = v | u128::MAX.checked_shr(u32::from(len)).unwrap_or(0);
                    (Addr::V6(net), Addr::V6(last.to_be_bytes()))
                }
                _ => unreachable!(),
            };
            for a in [first, last] {
                assert_eq!(Scope::of(a), s, "{a} in {p}");
            }
        }
    }
}

proptest! {
    #[test]
    fn scope_of_agrees_with_the_listed_prefixes(v4 in any::<u32>(), v6 in any::<u128>(), top in any::<u16>()) {
        use e7_proto::qual::{Addr, Scope};
        let a = Addr::V4(v4.to_be_bytes());
        prop_assert_eq!(Scope::of(a), scope_by_table(a));
        let a = Addr::V6(v6.to_be_bytes());
        prop_assert_eq!(Scope::of(a), scope_by_table(a));
        // Addresses near the listed IPv6 prefixes, and IPv4-mapped ones.
        let near = (u128::from(top) << 112) | (v6 >> 16);
        let a = Addr::V6(near.to_be_bytes());
        prop_assert_eq!(Scope::of(a), scope_by_table(a));
        let mapped = (0xffffu128 << 32) | u128::from(v4);
        let a = Addr::V6(mapped.to_be_bytes());
        prop_assert_eq!(Scope::of(a), scope_by_table(a));
    }

    #[test]
    fn any_qualifiers_round_trip_in_text_and_on_the_wire(qual in qual_strategy()) {
        prop_assert_eq!(parse_qualifiers(&rule_request(&qual), TCP), Ok(qual));
        prop_assert_eq!(Dest::parse(&qual.dest.to_string()), Ok(qual.dest));
        if let Some(p) = qual.ports {
            prop_assert_eq!(Ports::parse(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn a_marked_path_is_never_a_rule_path(
        path in "(/[a-z]{1,40}){1,9}/?",
        qual in qual_strategy(),
    ) {
        let mut buf = [0u8; MAX_PATH_LEN];
        let shown = legacy_path(path.as_bytes(), &qual, &mut buf);
        prop_assert!(shown.len() <= MAX_PATH_LEN);
        prop_assert!(shown.windows(2).any(|w| w == b"//"));
        prop_assert!(validate_rule_path(shown).is_err());
    }
}

proptest! {
    /// The panic-free address text (the kernel's) agrees with `std::net` both ways.
    #[test]
    fn address_text_agrees_with_std(v4 in any::<u32>(), v6 in any::<u128>(), zeros in any::<u8>()) {
        use e7_proto::qual::{parse_v4, parse_v6, Addr};
        use std::net::{Ipv4Addr, Ipv6Addr};
        let a4 = Ipv4Addr::from(v4);
        prop_assert_eq!(Addr::V4(a4.octets()).to_string(), a4.to_string());
        prop_assert_eq!(parse_v4(&a4.to_string()), Some(a4.octets()));
        // Runs of zero groups, so `::` compression is exercised.
        let mut g = v6;
        for i in 0..8 {
            if zeros & (1 << i) != 0 {
                g &= !(0xffffu128 << (16 * i));
            }
        }
        let a6 = Ipv6Addr::from(g);
        prop_assert_eq!(Addr::V6(a6.octets()).to_string(), a6.to_string());
        prop_assert_eq!(parse_v6(&a6.to_string()), Some(a6.octets()));
        let full: Vec<String> = a6.segments().iter().map(|s| format!("{s:X}")).collect();
        prop_assert_eq!(parse_v6(&full.join(":")), Some(a6.octets()));
    }

    #[test]
    fn address_parsers_refuse_what_std_refuses(s in "[0-9a-fA-F:.]{0,24}") {
        use e7_proto::qual::{parse_v4, parse_v6};
        prop_assert_eq!(parse_v4(&s).is_some(), s.parse::<std::net::Ipv4Addr>().is_ok(), "{}", s);
        prop_assert_eq!(parse_v6(&s), s.parse::<std::net::Ipv6Addr>().ok().map(|a| a.octets()), "{}", s);
    }
}

#[test]
fn events_carry_destination_port_and_uid_and_stay_readable_without_them() {
    use e7_proto::msg::{emit_event, emit_event_peer, EventPeer};
    use e7_proto::qual::Addr;
    use e7_proto::EventState;
    for peer in [
        EventPeer {
            dst: Some(Addr::V4([93, 184, 216, 34])),
            dport: Some(443),
            uid: Some(1000),
        },
        EventPeer {
            dst: Some(Addr::V6([
                0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
            ])),
            dport: None,
            uid: Some(0),
        },
        EventPeer::default(),
    ] {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        emit_event_peer(&mut w, EventState::Pending, TCP, b"/usr/bin/curl", &peer).unwrap();
        let Reply::Event {
            state,
            prot,
            path,
            peer: got,
        } = parse_reply(Command::Event.value(), w.as_bytes()).unwrap()
        else {
            panic!("not an event");
        };
        assert_eq!(
            (state, prot, path, got),
            (EventState::Pending, TCP, &b"/usr/bin/curl"[..], peer)
        );
    }
    // Without the appended attributes: byte-identical to the original's event.
    let mut a = [0u8; 512];
    let mut wa = Writer::new(&mut a);
    emit_event(&mut wa, EventState::Block, TCP, b"/x").unwrap();
    let mut b = [0u8; 512];
    let mut wb = Writer::new(&mut b);
    emit_event_peer(
        &mut wb,
        EventState::Block,
        TCP,
        b"/x",
        &EventPeer::default(),
    )
    .unwrap();
    assert_eq!(wa.as_bytes(), wb.as_bytes());
    // A DEST in an event must be one address, not a prefix.
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    emit_event(&mut w, EventState::Block, TCP, b"/x").unwrap();
    w.put_str(Attr::Dest.value(), "10.0.0.0/8").unwrap();
    assert!(parse_reply(Command::Event.value(), w.as_bytes()).is_err());
}
