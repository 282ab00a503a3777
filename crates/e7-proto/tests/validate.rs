//! Rule protocols, rule paths and CLI tokens.

use e7_proto::validate::{Expected, RULE_PROTOCOLS};
use e7_proto::{
    is_folder_path, parse_flag_token, parse_protocol_token, protocol_name, validate_rule_path,
    validate_rule_protocol, Flag, PathError, ProtocolError, TokenError,
};

#[test]
fn protocol_tokens() {
    assert_eq!(parse_protocol_token("tcp"), Ok(6));
    assert_eq!(parse_protocol_token("udp"), Ok(17));
    assert_eq!(parse_protocol_token("icmp"), Ok(1));
    assert_eq!(parse_protocol_token("icmpv6"), Ok(58));
    assert_eq!(parse_protocol_token("any"), Ok(u32::MAX));
    assert_eq!(parse_protocol_token("6"), Ok(6));
    assert_eq!(
        parse_protocol_token("47"),
        Ok(47),
        "numbers parse; validation is separate"
    );
    assert_eq!(parse_protocol_token("4294967295"), Ok(u32::MAX));
    for bad in [
        "block",
        "allow",
        "TCP",
        "",
        "-6",
        "+6",
        " 6",
        "6 ",
        "0x6",
        "4294967296",
        "tcp6",
    ] {
        assert_eq!(
            parse_protocol_token(bad),
            Err(TokenError {
                token: bad,
                expected: Expected::Protocol
            }),
            "{bad:?}"
        );
    }
    assert_eq!(parse_protocol_token("sctp"), Ok(132));
    assert_eq!(parse_protocol_token("udplite"), Ok(136));
    assert_eq!(
        parse_protocol_token("stcp").unwrap_err().to_string(),
        "`stcp` is not a protocol: expected one of icmp, tcp, udp, icmpv6, igmp, ipip, dccp, ipv6, \
         rsvp, gre, esp, ah, ospf, pim, vrrp, l2tp, sctp, udplite, mpls, ethernet, any or a protocol \
         number 0..=255"
    );
}

#[test]
fn flag_tokens() {
    assert_eq!(parse_flag_token("mode"), Ok(Flag::Mode));
    assert_eq!(parse_flag_token("evlost"), Ok(Flag::EvLost));
    assert_eq!(parse_flag_token("7"), Ok(Flag::UnkRule));
    assert_eq!(parse_flag_token("15"), Ok(Flag::NsPath));
    assert_eq!(parse_flag_token("16"), Ok(Flag::Qualifiers));
    assert_eq!(parse_flag_token("17"), Ok(Flag::StatsUnpriv));
    assert!(parse_flag_token("18").is_err());
    assert!(parse_flag_token("Mode").is_err());
    let m = parse_flag_token("verbose").unwrap_err().to_string();
    assert!(
        m.starts_with("`verbose` is not a flag: expected one of mode, debug, fail,"),
        "{m}"
    );
    assert!(
        m.ends_with("qualifiers, statsunpriv or an index 0..=17"),
        "{m}"
    );
}

#[test]
fn rule_protocols() {
    // The schema's protocol constants, `any` last: the one table of names.
    let names: Vec<_> = RULE_PROTOCOLS.iter().map(|c| c.alias()).collect();
    assert_eq!(
        names,
        [
            "icmp", "tcp", "udp", "icmpv6", "igmp", "ipip", "dccp", "ipv6", "rsvp", "gre", "esp",
            "ah", "ospf", "pim", "vrrp", "l2tp", "sctp", "udplite", "mpls", "ethernet", "any"
        ]
    );
    for p in [1u32, 6, 17, 58, 132, 136, u32::MAX] {
        assert_eq!(validate_rule_protocol(p), Ok(()));
        assert!(protocol_name(p).is_some());
    }
    assert_eq!(protocol_name(58), Some("icmpv6"));
    assert_eq!(protocol_name(132), Some("sctp"));
    assert_eq!(protocol_name(136), Some("udplite"));
    assert_eq!(protocol_name(47), Some("gre"));
    assert_eq!(protocol_name(u32::MAX), Some("any"));
    // Every IP protocol number is valid; numbers without a name have no name.
    for p in 0u32..=255 {
        assert_eq!(validate_rule_protocol(p), Ok(()), "{p}");
    }
    for p in [0u32, 3, 253, 255] {
        assert_eq!(protocol_name(p), None);
    }
    for p in [256u32, 0xFF00, 0xFF03, u32::MAX - 1] {
        assert_eq!(validate_rule_protocol(p), Err(ProtocolError { prot: p }));
        assert_eq!(protocol_name(p), None);
    }
    let list =
        "icmp, tcp, udp, icmpv6, igmp, ipip, dccp, ipv6, rsvp, gre, esp, ah, ospf, pim, vrrp, \
                l2tp, sctp, udplite, mpls, ethernet, any";
    assert_eq!(
        validate_rule_protocol(256).unwrap_err().to_string(),
        format!(
            "protocol 256 does not exist: IP protocol numbers are 0..=255: expected a protocol \
             name ({list}) or a number 0..=255"
        )
    );
    assert_eq!(
        validate_rule_protocol(0xFF00).unwrap_err().to_string(),
        format!(
            "65280 (block) is not a protocol: expected a protocol name ({list}) or a number 0..=255"
        )
    );
    assert_eq!(parse_protocol_token("sctp"), Ok(132));
    assert_eq!(parse_protocol_token("253"), Ok(253));
}

#[test]
fn good_rule_paths() {
    for p in [
        "/",
        "/usr/bin/curl",
        "/usr/bin/",
        "/a",
        "/a/b/c/",
        "/opt/x y/z",
        "/.hidden",
        "/a/..b",
        "/a/b.",
        "/a/...",
        "/ünï/cödé",
    ] {
        assert_eq!(validate_rule_path(p.as_bytes()), Ok(()), "{p:?}");
    }
    let max = format!("/{}", "a".repeat(254));
    assert_eq!(validate_rule_path(max.as_bytes()), Ok(()));
    // Non-UTF-8 bytes are fine at this level.
    assert_eq!(validate_rule_path(b"/bin/\xff\xfe"), Ok(()));
}

#[test]
fn bad_rule_paths() {
    let long = format!("/{}", "a".repeat(255));
    let cases: &[(&[u8], PathError)] = &[
        (b"", PathError::Empty),
        (b"usr/bin/curl", PathError::NotAbsolute),
        (b"./curl", PathError::NotAbsolute),
        (b"~/bin", PathError::NotAbsolute),
        (long.as_bytes(), PathError::TooLong { len: 256 }),
        (b"/usr/bin\0/x", PathError::ContainsNul { offset: 8 }),
        (b"\0", PathError::ContainsNul { offset: 0 }),
        (b"//usr", PathError::EmptyComponent { offset: 0 }),
        (b"/usr//bin", PathError::EmptyComponent { offset: 4 }),
        (b"/usr/bin//", PathError::EmptyComponent { offset: 8 }),
        (b"/.", PathError::DotComponent { offset: 1 }),
        (b"/..", PathError::DotComponent { offset: 1 }),
        (b"/usr/./bin", PathError::DotComponent { offset: 5 }),
        (b"/usr/../bin", PathError::DotComponent { offset: 5 }),
        (b"/usr/bin/..", PathError::DotComponent { offset: 9 }),
        (b"/usr/bin/./", PathError::DotComponent { offset: 9 }),
    ];
    for (p, e) in cases {
        assert_eq!(
            validate_rule_path(p),
            Err(*e),
            "{:?}",
            String::from_utf8_lossy(p)
        );
    }
}

#[test]
fn path_error_messages_say_what_is_right() {
    let m = validate_rule_path(b"curl").unwrap_err().to_string();
    assert_eq!(
        m,
        "the path does not start with /: expected an absolute, canonical path such as /usr/bin/curl, or a \
         folder ending in / such as /usr/bin/"
    );
    let long = vec![b'/'; 1]
        .into_iter()
        .chain(std::iter::repeat_n(b'x', 300))
        .collect::<Vec<_>>();
    assert_eq!(
        validate_rule_path(&long).unwrap_err().to_string(),
        "the path is 301 bytes long: at most 255 bytes are allowed"
    );
    assert!(validate_rule_path(b"/a/../b")
        .unwrap_err()
        .to_string()
        .contains("`.` or `..` component at offset 3"));
}

#[test]
fn folders() {
    assert!(is_folder_path(b"/usr/bin/"));
    assert!(is_folder_path(b"/"));
    assert!(!is_folder_path(b"/usr/bin"));
    assert!(!is_folder_path(b""));
}
