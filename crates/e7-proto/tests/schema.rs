//! The generated schema matches docs/ARCHITECTURE.md (and the original's numbering) exactly.

use e7_proto::{
    Action, Attr, AttrKind, Command, Const, ConstKind, EventState, Flag, Mode, Table, UnknownValue,
    ValueClass, ValueError, FAMILY_NAME, FAMILY_VERSION, MAX_PATH_LEN,
};

#[test]
fn family() {
    assert_eq!(FAMILY_NAME, "eftirlit");
    assert_eq!(FAMILY_VERSION, 1);
    assert_eq!(MAX_PATH_LEN, 255);
}

#[test]
fn constants_are_the_originals_then_appended_ones() {
    let expected: &[(u32, &str, &str)] = &[
        (1, "icmp", "E7C_IP_ICMP"),
        (6, "tcp", "E7C_IP_TCP"),
        (17, "udp", "E7C_IP_UDP"),
        (0xFFFF_FFFF, "any", "E7C_IP_ANY"),
        (0xFF00, "block", "E7C_BLOCK"),
        (0xFF01, "allow", "E7C_ALLOW"),
        (0xFF02, "pending", "E7C_PENDING"),
        (0xFF03, "enabled", "E7C_ENABLED"),
        (0xFF04, "disabled", "E7C_DISABLED"),
        (58, "icmpv6", "E7C_IP_ICMPV6"),
        (2, "igmp", "E7C_IP_IGMP"),
        (4, "ipip", "E7C_IP_IPIP"),
        (33, "dccp", "E7C_IP_DCCP"),
        (41, "ipv6", "E7C_IP_IPV6"),
        (46, "rsvp", "E7C_IP_RSVP"),
        (47, "gre", "E7C_IP_GRE"),
        (50, "esp", "E7C_IP_ESP"),
        (51, "ah", "E7C_IP_AH"),
        (89, "ospf", "E7C_IP_OSPF"),
        (103, "pim", "E7C_IP_PIM"),
        (112, "vrrp", "E7C_IP_VRRP"),
        (115, "l2tp", "E7C_IP_L2TP"),
        (132, "sctp", "E7C_IP_SCTP"),
        (136, "udplite", "E7C_IP_UDPLITE"),
        (137, "mpls", "E7C_IP_MPLS"),
        (143, "ethernet", "E7C_IP_ETHERNET"),
    ];
    assert_eq!(Const::ALL.len(), expected.len());
    for (c, &(value, alias, id)) in Const::ALL.iter().zip(expected) {
        assert_eq!((c.value(), c.alias(), c.id_name()), (value, alias, id));
        assert_eq!(Const::try_from(value), Ok(*c));
        assert_eq!(Const::from_alias(alias), Some(*c));
    }
    let protocols: Vec<_> = Const::ALL
        .iter()
        .filter(|c| c.kind() == ConstKind::Protocol)
        .map(|c| c.alias())
        .collect();
    assert_eq!(
        protocols,
        [
            "icmp", "tcp", "udp", "any", "icmpv6", "igmp", "ipip", "dccp", "ipv6", "rsvp", "gre",
            "esp", "ah", "ospf", "pim", "vrrp", "l2tp", "sctp", "udplite", "mpls", "ethernet"
        ]
    );
}

#[test]
fn commands_are_numbered_as_the_original() {
    let expected: &[(u8, &str, bool)] = &[
        (1, "ENL_COMM_ERROR", false),
        (2, "ENL_COMM_DISCONNECT", false),
        (3, "ENL_COMM_BLOCK", true),
        (4, "ENL_COMM_ALLOW", true),
        (5, "ENL_COMM_ENABLE", true),
        (6, "ENL_COMM_CLEAR", true),
        (7, "ENL_COMM_QUERY", false),
        (8, "ENL_COMM_EVENT", false),
        (9, "ENL_COMM_SET", true),
        (10, "ENL_COMM_GET", false),
        (11, "ENL_COMM_SUBSCRIBE", true),
        (12, "ENL_COMM_STATS", false),
    ];
    assert_eq!(Command::ALL.len(), expected.len());
    for (c, &(value, id, admin)) in Command::ALL.iter().zip(expected) {
        assert_eq!((c.value(), c.id_name(), c.admin()), (value, id, admin));
        assert_eq!(Command::try_from(value), Ok(*c));
    }
    assert_eq!(Command::MAX, 12);
}

#[test]
fn attributes_are_numbered_as_the_original() {
    let expected: &[(u16, &str, AttrKind)] = &[
        (1, "ENL_ATTR_NESTED", AttrKind::Nested),
        (2, "ENL_ATTR_PATH", AttrKind::NulString { max_len: 255 }),
        (3, "ENL_ATTR_FLAG", AttrKind::U32),
        (4, "ENL_ATTR_PROT", AttrKind::U32),
        (5, "ENL_ATTR_STATE", AttrKind::U32),
        (6, "ENL_ATTR_VALUE", AttrKind::U32),
        (7, "ENL_ATTR_ERRNO", AttrKind::U32),
        (8, "ENL_ATTR_MESSAGE", AttrKind::NulString { max_len: 255 }),
        (9, "ENL_ATTR_COUNT", AttrKind::U32),
        (10, "ENL_ATTR_DEST", AttrKind::NulString { max_len: 127 }),
        (11, "ENL_ATTR_PORTS", AttrKind::NulString { max_len: 127 }),
        (12, "ENL_ATTR_UID", AttrKind::U32),
        (13, "ENL_ATTR_DPORT", AttrKind::U32),
        (14, "ENL_ATTR_ACCEPT_PACKETS", AttrKind::U64),
        (15, "ENL_ATTR_ACCEPT_BYTES", AttrKind::U64),
        (16, "ENL_ATTR_DROP_PACKETS", AttrKind::U64),
        (17, "ENL_ATTR_DROP_BYTES", AttrKind::U64),
        (18, "ENL_ATTR_FIRST_SEEN", AttrKind::U32),
        (19, "ENL_ATTR_LAST_SEEN", AttrKind::U32),
        (20, "ENL_ATTR_REASON", AttrKind::NulString { max_len: 15 }),
    ];
    assert_eq!(Attr::ALL.len(), expected.len());
    for (a, &(value, id, kind)) in Attr::ALL.iter().zip(expected) {
        assert_eq!((a.value(), a.id_name(), a.kind()), (value, id, kind));
        assert_eq!(Attr::try_from(value), Ok(*a));
    }
    assert_eq!(Attr::MAX, 20);
    assert_eq!(Attr::Path.short_name(), "PATH");
}

#[test]
fn flags_are_indexed_as_the_original() {
    use ValueClass::*;
    let d = Const::Disabled.value();
    let e = Const::Enabled.value();
    let a = Const::Allow.value();
    let b = Const::Block.value();
    let expected: &[(&str, &str, ValueClass, u32)] = &[
        ("mode", "E7F_MODE", Mode, d),
        ("debug", "E7F_DEBUG", Boolean, d),
        ("fail", "E7F_FAILPATH_ACTION", Action, a),
        ("unkproc", "E7F_UNKN_PROCESS_ACTION", Action, a),
        ("unkprot", "E7F_UNKN_PROTOCOL_ACTION", Action, a),
        ("norule", "E7F_NORULE_NOTIFY", Boolean, e),
        ("squelch", "E7F_NORULE_SQUELCH", Boolean, e),
        ("unkrule", "E7F_NORULE_ACTION", Action, a),
        ("drops", "E7F_RULE_DROPS", Boolean, d),
        ("accepts", "E7F_RULE_ACCEPTS", Boolean, d),
        ("rchngq", "E7F_RULE_CHANGE_QUERY", Boolean, e),
        ("uptime", "E7F_STAT_UPTIME", ReadOnly, 0),
        ("qpackets", "E7F_STAT_PACKETS", ReadOnly, 0),
        ("longpath", "E7F_LONGPATH_ACTION", Action, b),
        ("evlost", "E7F_STAT_EVLOST", ReadOnly, 0),
        ("nspath", "E7F_NSPATH_ACTION", Action, b),
        ("qualifiers", "E7F_QUALIFIERS", ReadOnly, 0),
        ("statsunpriv", "E7F_STATS_UNPRIV", Boolean, d),
    ];
    assert_eq!(Flag::COUNT, 18);
    for (i, (f, &(alias, id, class, default))) in Flag::ALL.iter().zip(expected).enumerate() {
        assert_eq!(f.index() as usize, i);
        assert_eq!(
            (f.alias(), f.id_name(), f.class(), f.default_value()),
            (alias, id, class, default)
        );
        assert_eq!(Flag::from_alias(alias), Some(*f));
        assert_eq!(Flag::try_from(i as u32), Ok(*f));
        assert!(!f.description().is_empty());
    }
}

#[test]
fn unknown_numbers_are_rejected() {
    assert_eq!(
        Command::try_from(0),
        Err(UnknownValue {
            table: Table::Command,
            value: 0
        })
    );
    assert!(Command::try_from(13).is_err());
    assert!(Command::try_from(255).is_err());
    assert!(Attr::try_from(0).is_err());
    assert!(Attr::try_from(21).is_err());
    assert!(
        Attr::try_from(0x8002).is_err(),
        "flag bits are not masked by TryFrom"
    );
    assert!(Flag::try_from(18).is_err());
    assert!(Flag::try_from(u32::MAX).is_err());
    assert!(Const::try_from(0).is_err());
    assert!(Const::try_from(0xFF05).is_err());
}

#[test]
fn unknown_number_messages_list_the_valid_range() {
    let m = Flag::try_from(20).unwrap_err().to_string();
    assert_eq!(
        m,
        "flag index 20 does not exist: expected 0..=17 (mode, debug, fail, unkproc, unkprot, norule, \
         squelch, unkrule, drops, accepts, rchngq, uptime, qpackets, longpath, evlost, nspath, qualifiers, \
         statsunpriv)"
    );
    let m = Command::try_from(42).unwrap_err().to_string();
    assert_eq!(
        m,
        "unknown command 42: expected 1..=12 (ENL_COMM_ERROR..ENL_COMM_STATS)"
    );
    let m = Attr::try_from(0).unwrap_err().to_string();
    assert_eq!(
        m,
        "unknown attribute type 0: expected 1..=20 (ENL_ATTR_NESTED..ENL_ATTR_REASON)"
    );
    let m = Const::try_from(5).unwrap_err().to_string();
    assert!(
        m.starts_with("5 is not an e7 constant: expected one of icmp (1), tcp (6)"),
        "{m}"
    );
}

#[test]
fn aliases_match_exact_strings_only() {
    for bad in [
        "TCP", "Tcp", " tcp", "tcp ", "tc", "tcpp", "", "allow\0", "MODE",
    ] {
        assert_eq!(Const::from_alias(bad), None, "{bad:?}");
        assert_eq!(Flag::from_alias(bad), None, "{bad:?}");
    }
    // Every alias round-trips and no alias of one table is mistaken for another entry.
    for c in Const::ALL {
        assert_eq!(Const::from_alias(c.alias()), Some(*c));
    }
    assert_eq!(Flag::from_alias("tcp"), None);
    assert_eq!(Const::from_alias("mode"), None);
}

#[test]
fn flag_validation_by_class() {
    let all_consts: Vec<u32> = Const::ALL.iter().map(|c| c.value()).collect();
    for f in Flag::ALL {
        let ok: Vec<u32> = match f.class() {
            ValueClass::Mode => vec![0xFF03, 0xFF04, 0xFF00],
            ValueClass::Action => vec![0xFF01, 0xFF00],
            ValueClass::Boolean => vec![0xFF03, 0xFF04],
            ValueClass::ReadOnly => vec![],
        };
        for v in all_consts
            .iter()
            .copied()
            .chain([0, 7, 0xFF05, u32::MAX - 1])
        {
            let r = f.validate(v);
            if ok.contains(&v) {
                assert_eq!(r, Ok(()), "{f} {v}");
            } else if f.class() == ValueClass::ReadOnly {
                assert_eq!(r, Err(ValueError::ReadOnly { flag: *f }));
            } else {
                assert_eq!(
                    r,
                    Err(ValueError::Invalid { flag: *f, value: v }),
                    "{f} {v}"
                );
            }
        }
    }
}

#[test]
fn value_error_messages() {
    assert_eq!(
        Flag::Mode.validate(7).unwrap_err().to_string(),
        "value 7 is not valid for flag `mode`: expected one of enabled, disabled, block"
    );
    assert_eq!(
        Flag::Debug.validate(0xFF00).unwrap_err().to_string(),
        "value 65280 (block) is not valid for flag `debug`: expected one of enabled, disabled"
    );
    assert_eq!(
        Flag::UnkRule.validate(0xFF03).unwrap_err().to_string(),
        "value 65283 (enabled) is not valid for flag `unkrule`: expected one of allow, block"
    );
    assert_eq!(
        Flag::Uptime.validate(0).unwrap_err().to_string(),
        "flag `uptime` is read-only (seconds since the module was loaded); it cannot be set"
    );
}

#[test]
fn flag_value_tokens() {
    assert_eq!(Flag::Mode.parse_value("enabled"), Ok(0xFF03));
    assert_eq!(Flag::Mode.parse_value("65280"), Ok(0xFF00));
    assert_eq!(Flag::UnkProt.parse_value("block"), Ok(0xFF00));
    let e = Flag::Mode.parse_value("on").unwrap_err();
    assert_eq!(
        e.to_string(),
        "`on` is not a valid value for flag `mode`: expected one of enabled, disabled, block"
    );
    let e = Flag::Drops.parse_value("allow").unwrap_err();
    assert_eq!(
        e.to_string(),
        "value 65281 (allow) is not valid for flag `drops`: expected one of enabled, disabled"
    );
    assert!(Flag::Mode.parse_value("-1").is_err());
    assert!(Flag::Mode.parse_value("+65283").is_err());
    assert!(Flag::Mode.parse_value("99999999999").is_err());
    assert!(Flag::QPackets
        .parse_value("5")
        .unwrap_err()
        .to_string()
        .contains("read-only"));
    assert!(Flag::QPackets
        .parse_value("x")
        .unwrap_err()
        .to_string()
        .contains("read-only"));
}

#[test]
fn typed_views_of_constants() {
    for a in [Action::Allow, Action::Block] {
        assert_eq!(Action::from_value(a.value()), Some(a));
        assert_eq!(Action::from_alias(a.alias()), Some(a));
    }
    assert_eq!(Action::from_value(Const::Pending.value()), None);
    assert_eq!(Action::from_alias("enabled"), None);
    for m in [Mode::Enabled, Mode::Disabled, Mode::Block] {
        assert_eq!(Mode::from_value(m.value()), Some(m));
    }
    assert_eq!(Mode::from_value(Const::Allow.value()), None);
    for s in [EventState::Pending, EventState::Allow, EventState::Block] {
        assert_eq!(EventState::from_value(s.value()), Some(s));
    }
    assert_eq!(EventState::from_value(Const::Enabled.value()), None);
    assert_eq!(
        ValueClass::Mode.allowed(),
        &[Const::Enabled, Const::Disabled, Const::Block]
    );
}
