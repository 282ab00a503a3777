//! The qualifiers on the wire: DEST/PORTS/UID round-trip, an unqualified rule stays byte-identical,
//! today's module refuses the attributes (never drops them), and what the original console is shown
//! for a qualified rule can never read as an unqualified rule.

use e7_proto::msg::{parse_request, MsgError, Request, RuleSpec};
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
fn todays_module_refuses_the_attributes_instead_of_dropping_them() {
    // ALLOW's request grammar lists PROT and PATH only: a module that does not enforce
    // qualifiers answers EINVAL naming the attribute, it never adds the rule unqualified.
    for (qual, attr) in [
        (q("10.0.0.0/8", None, None), Attr::Dest),
        (q("any", Some("53"), None), Attr::Ports),
        (q("any", None, Some(5)), Attr::Uid),
    ] {
        let bytes = rule_request(&qual);
        let e = parse_request(Command::Allow.value(), &bytes).unwrap_err();
        assert!(
            matches!(e, MsgError::UnexpectedAttr { attr: a, .. } if a == attr),
            "{e:?}"
        );
        assert_eq!(e.errno(), 22);
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
