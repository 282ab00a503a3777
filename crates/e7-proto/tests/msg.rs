//! Requests and replies: every attribute branch, every error, both QUERY shapes.

use e7_proto::msg::{
    emit_error, emit_error_display, emit_event, emit_get_reply, emit_query_chain, emit_query_dump,
    parse_reply, parse_request, ClearSpec, MsgError, QueryHeader, QueryProgress, Reply, Request,
    RuleSpec,
};
use e7_proto::nla::{ParseError, WriteError, Writer, NLA_F_NESTED};
use e7_proto::{
    Action, Attr, Command, Const, EventState, Flag, Mode, PathError, ProtocolError, ValueError,
};

const ANY: u32 = u32::MAX;

fn attr(nla_type: u16, payload: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    v.extend_from_slice(&nla_type.to_ne_bytes());
    v.extend_from_slice(payload);
    while v.len() % 4 != 0 {
        v.push(0);
    }
    v
}
fn u32a(a: Attr, v: u32) -> Vec<u8> {
    attr(a.value(), &v.to_ne_bytes())
}
fn stra(a: Attr, s: &str) -> Vec<u8> {
    let mut p = s.as_bytes().to_vec();
    p.push(0);
    attr(a.value(), &p)
}
fn cat(parts: &[Vec<u8>]) -> Vec<u8> {
    parts.concat()
}
fn req(cmd: Command, body: &[u8]) -> Result<Request<'_>, MsgError> {
    parse_request(cmd.value(), body)
}

// ---- requests ---------------------------------------------------------------------------------

#[test]
fn block_and_allow_branches() {
    let path = stra(Attr::Path, "/usr/bin/curl");
    let tcp = u32a(Attr::Prot, 6);
    for (cmd, action, mode) in [
        (Command::Block, Action::Block, Mode::Block),
        (Command::Allow, Action::Allow, Mode::Disabled),
    ] {
        assert_eq!(
            req(cmd, &[]),
            Ok(Request::SetMode(mode)),
            "no attributes = mode change"
        );
        assert_eq!(
            req(cmd, &path),
            Ok(Request::AddRule(RuleSpec {
                prot: ANY,
                path: "/usr/bin/curl",
                action
            })),
            "PATH only = protocol any"
        );
        let both = cat(&[tcp.clone(), path.clone()]);
        assert_eq!(
            req(cmd, &both),
            Ok(Request::AddRule(RuleSpec {
                prot: 6,
                path: "/usr/bin/curl",
                action
            }))
        );
        let reversed = cat(&[path.clone(), tcp.clone()]);
        assert_eq!(
            req(cmd, &reversed),
            req(cmd, &both),
            "attribute order does not matter"
        );
        assert_eq!(
            req(cmd, &tcp),
            Err(MsgError::ProtocolOnlyRule {
                command: cmd,
                prot: 6
            })
        );
    }
    let m = req(Command::Block, &tcp).unwrap_err().to_string();
    assert_eq!(
        m,
        "ENL_COMM_BLOCK with protocol tcp but no path: a rule without a path can never match, because rules \
         are matched against the sending program's path; give a PATH (an absolute executable path or a folder \
         ending in /)"
    );
}

#[test]
fn enable_query_subscribe_error_disconnect() {
    assert_eq!(
        req(Command::Enable, &[]),
        Ok(Request::SetMode(Mode::Enabled))
    );
    assert_eq!(req(Command::Query, &[]), Ok(Request::Query));
    assert_eq!(req(Command::Subscribe, &[]), Ok(Request::Subscribe));
    assert_eq!(req(Command::Error, &[]), Ok(Request::Error));
    assert_eq!(req(Command::Disconnect, &[]), Ok(Request::Disconnect));
    assert_eq!(
        req(Command::Enable, &u32a(Attr::Flag, 0)),
        Err(MsgError::UnexpectedAttr {
            command: Command::Enable,
            attr: Attr::Flag,
            request: true
        })
    );
    assert_eq!(
        req(Command::Enable, &u32a(Attr::Flag, 0))
            .unwrap_err()
            .to_string(),
        "attribute FLAG is not allowed in a ENL_COMM_ENABLE request: expected no attributes"
    );
}

#[test]
fn rule_validation_in_requests() {
    let bad_prot = cat(&[u32a(Attr::Prot, 256), stra(Attr::Path, "/bin/x")]);
    assert_eq!(
        req(Command::Allow, &bad_prot),
        Err(MsgError::Protocol(ProtocolError { prot: 256 }))
    );
    // Any IP protocol number is a valid rule protocol (sctp by number, a nameless one).
    for p in [132, 253] {
        let ok = cat(&[u32a(Attr::Prot, p), stra(Attr::Path, "/bin/x")]);
        assert!(req(Command::Allow, &ok).is_ok(), "{p}");
    }
    let rel = stra(Attr::Path, "bin/x");
    assert_eq!(
        req(Command::Allow, &rel),
        Err(MsgError::Path(PathError::NotAbsolute))
    );
    let dots = stra(Attr::Path, "/bin/../x");
    assert_eq!(
        req(Command::Clear, &dots),
        Err(MsgError::Path(PathError::DotComponent { offset: 5 }))
    );
    let empty = stra(Attr::Path, "");
    assert_eq!(
        req(Command::Block, &empty),
        Err(MsgError::Path(PathError::Empty))
    );
    let non_utf8 = attr(Attr::Path.value(), b"/bin/\xff\0");
    assert_eq!(req(Command::Block, &non_utf8), Err(MsgError::PathNotUtf8));
    let long = attr(
        Attr::Path.value(),
        &[b"/".as_slice(), &[b'a'; 255], b"\0"].concat(),
    );
    assert_eq!(
        req(Command::Block, &long),
        Err(MsgError::Malformed(ParseError::StringTooLong {
            kind: 2,
            len: 256,
            max_len: 255
        }))
    );
    let no_nul = attr(Attr::Path.value(), b"/bin/x");
    assert_eq!(
        req(Command::Block, &no_nul),
        Err(MsgError::Malformed(ParseError::MissingNul { kind: 2 }))
    );
    let short_prot = cat(&[attr(Attr::Prot.value(), &[6, 0]), stra(Attr::Path, "/x")]);
    assert_eq!(
        req(Command::Block, &short_prot),
        Err(MsgError::Malformed(ParseError::U32Size { kind: 4, len: 2 }))
    );
}

#[test]
fn clear_branches() {
    let c = Command::Clear;
    assert_eq!(req(c, &[]), Ok(Request::Clear(ClearSpec::All)));
    assert_eq!(
        req(c, &u32a(Attr::State, Const::Block.value())),
        Ok(Request::Clear(ClearSpec::Action(Action::Block)))
    );
    assert_eq!(
        req(c, &u32a(Attr::State, Const::Allow.value())),
        Ok(Request::Clear(ClearSpec::Action(Action::Allow)))
    );
    assert_eq!(
        req(c, &u32a(Attr::State, Const::Pending.value())),
        Err(MsgError::BadState {
            command: c,
            value: 0xFF02,
            expected: &[Const::Allow, Const::Block]
        })
    );
    assert_eq!(
        req(c, &u32a(Attr::State, 0xFF02)).unwrap_err().to_string(),
        "STATE 65282 (pending) is not valid in ENL_COMM_CLEAR: expected one of allow, block"
    );
    assert_eq!(
        req(c, &stra(Attr::Path, "/x")),
        Ok(Request::Clear(ClearSpec::Rule {
            prot: ANY,
            path: "/x"
        }))
    );
    let both = cat(&[u32a(Attr::Prot, 17), stra(Attr::Path, "/x/")]);
    assert_eq!(
        req(c, &both),
        Ok(Request::Clear(ClearSpec::Rule {
            prot: 17,
            path: "/x/"
        }))
    );
    assert_eq!(
        req(c, &u32a(Attr::Prot, 17)),
        Err(MsgError::ProtocolOnlyRule {
            command: c,
            prot: 17
        })
    );
    let mixed = cat(&[
        u32a(Attr::State, Const::Block.value()),
        stra(Attr::Path, "/x"),
    ]);
    assert_eq!(req(c, &mixed), Err(MsgError::ClearStateWithRule));
}

#[test]
fn set_requires_flag_and_valid_value() {
    let s = Command::Set;
    let body = cat(&[
        u32a(Attr::Flag, 0),
        u32a(Attr::Value, Const::Enabled.value()),
    ]);
    assert_eq!(
        req(s, &body),
        Ok(Request::Set {
            flag: Flag::Mode,
            value: 0xFF03
        })
    );
    let body = cat(&[u32a(Attr::Value, 0xFF01), u32a(Attr::Flag, 7)]);
    assert_eq!(
        req(s, &body),
        Ok(Request::Set {
            flag: Flag::UnkRule,
            value: 0xFF01
        })
    );
    assert_eq!(
        req(s, &u32a(Attr::Flag, 0)),
        Err(MsgError::MissingAttr {
            command: s,
            attr: Attr::Value
        })
    );
    assert_eq!(
        req(s, &u32a(Attr::Value, 0xFF03)),
        Err(MsgError::MissingAttr {
            command: s,
            attr: Attr::Flag
        })
    );
    assert_eq!(
        req(s, &[]),
        Err(MsgError::MissingAttr {
            command: s,
            attr: Attr::Flag
        })
    );
    let body = cat(&[u32a(Attr::Flag, 0), u32a(Attr::Value, 7)]);
    assert_eq!(
        req(s, &body),
        Err(MsgError::Value(ValueError::Invalid {
            flag: Flag::Mode,
            value: 7
        }))
    );
    assert_eq!(
        req(s, &body).unwrap_err().to_string(),
        "value 7 is not valid for flag `mode`: expected one of enabled, disabled, block"
    );
    let body = cat(&[u32a(Attr::Flag, 11), u32a(Attr::Value, 0)]);
    assert_eq!(
        req(s, &body),
        Err(MsgError::Value(ValueError::ReadOnly { flag: Flag::Uptime }))
    );
    let body = cat(&[u32a(Attr::Flag, Flag::COUNT as u32), u32a(Attr::Value, 0)]);
    assert!(matches!(req(s, &body), Err(MsgError::UnknownFlag(_))));
    assert_eq!(
        req(s, &u32a(Attr::Flag, 0)).unwrap_err().to_string(),
        "ENL_COMM_SET needs attribute VALUE: Flag value."
    );
}

#[test]
fn get_defaults_to_mode() {
    assert_eq!(
        req(Command::Get, &[]),
        Ok(Request::Get { flag: Flag::Mode })
    );
    assert_eq!(
        req(Command::Get, &u32a(Attr::Flag, 14)),
        Ok(Request::Get { flag: Flag::EvLost })
    );
    assert!(matches!(
        req(Command::Get, &u32a(Attr::Flag, 99)),
        Err(MsgError::UnknownFlag(_))
    ));
}

#[test]
fn structural_errors() {
    assert_eq!(parse_request(0, &[]), Err(MsgError::UnknownCommand(0)));
    let past = Command::MAX + 1;
    assert_eq!(
        parse_request(past, &[]),
        Err(MsgError::UnknownCommand(past))
    );
    assert_eq!(
        req(Command::Event, &[]),
        Err(MsgError::NotARequest(Command::Event))
    );
    assert_eq!(MsgError::NotARequest(Command::Event).errno(), 95);
    assert_eq!(MsgError::PathNotUtf8.errno(), 22);
    let dup = cat(&[stra(Attr::Path, "/a"), stra(Attr::Path, "/b")]);
    assert_eq!(
        req(Command::Block, &dup),
        Err(MsgError::DuplicateAttr {
            command: Command::Block,
            attr: Attr::Path
        })
    );
    let unknown = cat(&[stra(Attr::Path, "/a"), attr(42, &[0; 4])]);
    assert_eq!(
        req(Command::Block, &unknown),
        Err(MsgError::UnknownAttr {
            command: Command::Block,
            kind: 42
        })
    );
    let unexpected = cat(&[stra(Attr::Path, "/a"), u32a(Attr::Flag, 0)]);
    assert_eq!(
        req(Command::Block, &unexpected).unwrap_err().to_string(),
        "attribute FLAG is not allowed in a ENL_COMM_BLOCK request: expected PROT, PATH, DEST, PORTS, UID"
    );
    let truncated = &stra(Attr::Path, "/abc")[..6];
    assert!(matches!(
        req(Command::Block, truncated),
        Err(MsgError::Malformed(ParseError::LengthOverrun { .. }))
    ));
    assert!(req(Command::Block, truncated)
        .unwrap_err()
        .to_string()
        .starts_with("malformed message: "));
}

#[test]
fn request_emit_round_trips_every_branch() {
    let requests = [
        Request::Error,
        Request::Disconnect,
        Request::SetMode(Mode::Block),
        Request::SetMode(Mode::Disabled),
        Request::SetMode(Mode::Enabled),
        Request::AddRule(RuleSpec {
            prot: ANY,
            path: "/usr/bin/",
            action: Action::Allow,
        }),
        Request::AddRule(RuleSpec {
            prot: 58,
            path: "/bin/ping",
            action: Action::Block,
        }),
        Request::Clear(ClearSpec::All),
        Request::Clear(ClearSpec::Action(Action::Allow)),
        Request::Clear(ClearSpec::Rule {
            prot: 6,
            path: "/x",
        }),
        Request::Query,
        Request::Set {
            flag: Flag::Squelch,
            value: 0xFF04,
        },
        Request::Get { flag: Flag::Uptime },
        Request::Subscribe,
    ];
    for r in requests {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        r.emit(&mut w).unwrap();
        assert_eq!(
            parse_request(r.command().value(), w.as_bytes()),
            Ok(r),
            "{r:?}"
        );
    }
    assert_eq!(Request::SetMode(Mode::Disabled).command(), Command::Allow);
    assert_eq!(Request::SetMode(Mode::Block).command(), Command::Block);
}

#[test]
fn request_emit_full_writes_nothing() {
    let r = Request::AddRule(RuleSpec {
        prot: 6,
        path: "/usr/bin/curl",
        action: Action::Allow,
    });
    let mut buf = [0u8; 12];
    let mut w = Writer::new(&mut buf);
    assert_eq!(r.emit(&mut w), Err(WriteError::Full));
    assert!(
        w.is_empty(),
        "PROT fit but PATH did not: the PROT must be rolled back"
    );
}

// ---- replies ----------------------------------------------------------------------------------

#[test]
fn get_reply() {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    emit_get_reply(&mut w, Flag::Uptime, 1234).unwrap();
    assert_eq!(
        w.as_bytes(),
        cat(&[u32a(Attr::Flag, 11), u32a(Attr::Value, 1234)]).as_slice()
    );
    assert_eq!(
        parse_reply(10, w.as_bytes()),
        Ok(Reply::Get {
            flag: Flag::Uptime,
            value: 1234
        })
    );
    assert_eq!(
        parse_reply(10, &u32a(Attr::Flag, 0)),
        Err(MsgError::MissingAttr {
            command: Command::Get,
            attr: Attr::Value
        })
    );
}

#[test]
fn event_reply() {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    emit_event(&mut w, EventState::Pending, 17, b"/bin/\xffx").unwrap();
    assert_eq!(
        parse_reply(8, w.as_bytes()),
        Ok(Reply::Event {
            state: EventState::Pending,
            prot: 17,
            path: b"/bin/\xffx",
            peer: Default::default(),
        })
    );
    let bad_state = cat(&[
        u32a(Attr::State, 0xFF03),
        u32a(Attr::Prot, 6),
        stra(Attr::Path, "/x"),
    ]);
    assert!(matches!(
        parse_reply(8, &bad_state),
        Err(MsgError::BadState { value: 0xFF03, .. })
    ));
    let no_path = cat(&[u32a(Attr::State, 0xFF02), u32a(Attr::Prot, 6)]);
    assert_eq!(
        parse_reply(8, &no_path),
        Err(MsgError::MissingAttr {
            command: Command::Event,
            attr: Attr::Path
        })
    );
    let mut w = Writer::new(&mut buf);
    assert_eq!(
        emit_event(&mut w, EventState::Allow, 6, &[b'a'; 256]),
        Err(WriteError::TooLong)
    );
    assert_eq!(
        emit_event(&mut w, EventState::Allow, 6, b"/a\0b"),
        Err(WriteError::InteriorNul)
    );
    assert!(w.is_empty());
}

#[test]
fn error_reply() {
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    emit_error(&mut w, None, None).unwrap();
    assert!(w.is_empty());
    assert_eq!(
        parse_reply(1, &[]),
        Ok(Reply::Error {
            errno: None,
            message: None
        })
    );
    emit_error(&mut w, Some(22), Some("bad flag")).unwrap();
    assert_eq!(
        parse_reply(1, w.as_bytes()),
        Ok(Reply::Error {
            errno: Some(22),
            message: Some("bad flag")
        })
    );

    // Formatting an error in place, as the kernel does.
    let e = parse_request(9, &cat(&[u32a(Attr::Flag, 0), u32a(Attr::Value, 7)])).unwrap_err();
    let mut w = Writer::new(&mut buf);
    emit_error_display(&mut w, Some(e.errno()), &e).unwrap();
    assert_eq!(
        parse_reply(1, w.as_bytes()),
        Ok(Reply::Error {
            errno: Some(22),
            message: Some(
                "value 7 is not valid for flag `mode`: expected one of enabled, disabled, block"
            )
        })
    );
    // Long messages are cut to 255 bytes.
    let long = "é".repeat(200);
    let mut w = Writer::new(&mut buf);
    emit_error(&mut w, None, Some(&long)).unwrap();
    let Ok(Reply::Error {
        message: Some(m), ..
    }) = parse_reply(1, w.as_bytes())
    else {
        panic!()
    };
    assert_eq!(m.len(), 254);
    assert!(long.starts_with(m));
}

#[test]
fn disconnect_and_not_replies() {
    assert_eq!(parse_reply(2, &[]), Ok(Reply::Disconnect));
    assert_eq!(
        parse_reply(2, &u32a(Attr::Errno, 1))
            .unwrap_err()
            .to_string(),
        "attribute ERRNO is not allowed in a ENL_COMM_DISCONNECT reply: expected no attributes"
    );
    for c in [
        Command::Block,
        Command::Allow,
        Command::Enable,
        Command::Clear,
        Command::Set,
        Command::Subscribe,
    ] {
        assert_eq!(parse_reply(c.value(), &[]), Err(MsgError::NotAReply(c)));
    }
    assert_eq!(parse_reply(0, &[]), Err(MsgError::UnknownCommand(0)));
}

fn rules3() -> Vec<RuleSpec<'static>> {
    vec![
        RuleSpec {
            prot: 6,
            path: "/usr/bin/curl",
            action: Action::Allow,
        },
        RuleSpec {
            prot: ANY,
            path: "/opt/",
            action: Action::Block,
        },
        RuleSpec {
            prot: 17,
            path: "/bin/ping",
            action: Action::Allow,
        },
    ]
}

fn rule_bytes(r: &RuleSpec<'_>) -> Vec<u8> {
    cat(&[
        u32a(Attr::State, r.action.value()),
        u32a(Attr::Prot, r.prot),
        stra(Attr::Path, r.path),
    ])
}

/// The original's chain encoding, built by hand from the spec (§1.9).
fn original_chain(mode: u32, rules: &[RuleSpec<'_>]) -> Vec<u8> {
    let mut nest: Vec<u8> = Vec::new();
    for r in rules.iter().rev() {
        let mut payload = rule_bytes(r);
        if !nest.is_empty() {
            payload.extend(&nest);
        }
        nest = attr(Attr::Nested.value() | NLA_F_NESTED, &payload);
    }
    cat(&[u32a(Attr::State, mode), nest])
}

#[test]
fn query_chain_matches_the_original_encoding() {
    let rules = rules3();
    let mut buf = [0u8; 1024];
    let mut w = Writer::new(&mut buf);
    let p = emit_query_chain(&mut w, Const::Enabled.value(), rules.iter().copied(), 3).unwrap();
    assert_eq!(
        p,
        QueryProgress {
            written: 3,
            done: true
        }
    );
    let expected = cat(&[original_chain(0xFF03, &rules), u32a(Attr::Count, 3)]);
    assert_eq!(w.as_bytes(), expected.as_slice());
    let Ok(Reply::Query(q)) = parse_reply(7, w.as_bytes()) else {
        panic!("not a query")
    };
    assert_eq!(q.mode(), Some(Mode::Enabled));
    assert_eq!(q.count, Some(3));
    assert_eq!(q.rules_in_message(), 3);
    assert_eq!(q.rules().collect::<Vec<_>>(), rules);
    // An original-kernel reply (no COUNT) parses too.
    let orig = original_chain(0xFF04, &rules);
    let Ok(Reply::Query(q)) = parse_reply(7, &orig) else {
        panic!()
    };
    assert_eq!((q.mode(), q.count), (Some(Mode::Disabled), None));
    assert_eq!(q.rules().collect::<Vec<_>>(), rules);
}

#[test]
fn query_chain_with_no_rules() {
    let mut buf = [0u8; 64];
    let mut w = Writer::new(&mut buf);
    let p = emit_query_chain(&mut w, 0xFF04, std::iter::empty::<RuleSpec>(), 0).unwrap();
    assert_eq!(
        p,
        QueryProgress {
            written: 0,
            done: true
        }
    );
    let Ok(Reply::Query(q)) = parse_reply(7, w.as_bytes()) else {
        panic!()
    };
    assert_eq!(
        (q.mode, q.count, q.rules().count()),
        (Some(0xFF04), Some(0), 0)
    );
}

#[test]
fn query_chain_splits_over_messages() {
    let paths: Vec<String> = (0..50)
        .map(|i| format!("/usr/lib/program-number-{i:03}"))
        .collect();
    let rules: Vec<RuleSpec<'_>> = paths
        .iter()
        .enumerate()
        .map(|(i, p)| RuleSpec {
            prot: [6, 17, 1, 58, ANY][i % 5],
            path: p,
            action: Action::Allow,
        })
        .collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut messages = 0;
    let mut counts = Vec::new();
    loop {
        let mut buf = [0u8; 400];
        let mut w = Writer::new(&mut buf);
        let p = emit_query_chain(&mut w, 0xFF03, rules.iter().skip(sent).copied(), 50).unwrap();
        messages += 1;
        let bytes = w.as_bytes().to_vec();
        let Ok(Reply::Query(q)) = parse_reply(7, &bytes) else {
            panic!()
        };
        assert_eq!(q.mode, Some(0xFF03), "every chain message carries the mode");
        counts.push(q.count);
        got.extend(q.rules().map(|r| (r.prot, r.path.to_string(), r.action)));
        sent += p.written;
        if p.done {
            break;
        }
        assert!(messages < 100);
    }
    assert!(messages > 1);
    assert_eq!(
        counts.last(),
        Some(&Some(50)),
        "the last message carries COUNT"
    );
    assert!(counts[..counts.len() - 1].iter().all(Option::is_none));
    let want: Vec<_> = rules
        .iter()
        .map(|r| (r.prot, r.path.to_string(), r.action))
        .collect();
    assert_eq!(got, want);
}

#[test]
fn query_chain_that_cannot_progress_is_full() {
    let rules = rules3();
    let mut buf = [0u8; 40];
    let mut w = Writer::new(&mut buf);
    assert_eq!(
        emit_query_chain(&mut w, 0xFF03, rules.iter().copied(), 3),
        Err(WriteError::Full)
    );
    assert!(w.is_empty());
}

#[test]
fn query_dump_shape() {
    let rules = rules3();
    let mut buf = [0u8; 1024];
    let mut w = Writer::new(&mut buf);
    let p = emit_query_dump(
        &mut w,
        Some(QueryHeader {
            mode: 0xFF00,
            count: 3,
        }),
        rules.iter().copied(),
    )
    .unwrap();
    assert_eq!(
        p,
        QueryProgress {
            written: 3,
            done: true
        }
    );
    let expected = cat(&[
        u32a(Attr::State, 0xFF00),
        u32a(Attr::Count, 3),
        attr(1 | NLA_F_NESTED, &rule_bytes(&rules[0])),
        attr(1 | NLA_F_NESTED, &rule_bytes(&rules[1])),
        attr(1 | NLA_F_NESTED, &rule_bytes(&rules[2])),
    ]);
    assert_eq!(w.as_bytes(), expected.as_slice());
    let Ok(Reply::Query(q)) = parse_reply(7, w.as_bytes()) else {
        panic!()
    };
    assert_eq!((q.mode(), q.count), (Some(Mode::Block), Some(3)));
    assert_eq!(q.rules().collect::<Vec<_>>(), rules);
}

#[test]
fn query_dump_splits_over_messages() {
    let rules = rules3();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut first = true;
    loop {
        let mut buf = [0u8; 60];
        let mut w = Writer::new(&mut buf);
        let header = first.then_some(QueryHeader {
            mode: 0xFF03,
            count: 3,
        });
        let p = emit_query_dump(&mut w, header, rules.iter().skip(sent).copied()).unwrap();
        let Ok(Reply::Query(q)) = parse_reply(7, w.as_bytes()) else {
            panic!()
        };
        assert_eq!(q.count.is_some(), first);
        got.extend(q.rules().map(|r| (r.prot, r.path.to_string(), r.action)));
        sent += p.written;
        first = false;
        if p.done {
            break;
        }
    }
    let want: Vec<_> = rules
        .iter()
        .map(|r| (r.prot, r.path.to_string(), r.action))
        .collect();
    assert_eq!(got, want);
    // A buffer too small for one rule and no header: Full.
    let mut buf = [0u8; 20];
    let mut w = Writer::new(&mut buf);
    assert_eq!(
        emit_query_dump(&mut w, None, rules.iter().copied()),
        Err(WriteError::Full)
    );
    // Invalid rule paths are refused, not truncated.
    let mut buf = [0u8; 512];
    let mut w = Writer::new(&mut buf);
    let bad = RuleSpec {
        prot: 6,
        path: "/a\0b",
        action: Action::Allow,
    };
    assert_eq!(
        emit_query_dump(&mut w, None, [bad]),
        Err(WriteError::InteriorNul)
    );
    assert_eq!(
        emit_query_chain(&mut w, 0, [bad], 1),
        Err(WriteError::InteriorNul)
    );
    assert!(w.is_empty());
}

#[test]
fn malformed_query_replies() {
    // A rule nest without PATH.
    let nest = attr(
        1 | NLA_F_NESTED,
        &cat(&[u32a(Attr::State, 0xFF01), u32a(Attr::Prot, 6)]),
    );
    assert_eq!(
        parse_reply(7, &nest),
        Err(MsgError::MissingAttr {
            command: Command::Query,
            attr: Attr::Path
        })
    );
    // A rule with state pending.
    let nest = attr(
        1 | NLA_F_NESTED,
        &cat(&[
            u32a(Attr::State, 0xFF02),
            u32a(Attr::Prot, 6),
            stra(Attr::Path, "/x"),
        ]),
    );
    assert!(matches!(
        parse_reply(7, &nest),
        Err(MsgError::BadState { value: 0xFF02, .. })
    ));
    // A rule nest with two inner nests.
    let inner = attr(1 | NLA_F_NESTED, &rule_bytes(&rules3()[0]));
    let nest = attr(
        1 | NLA_F_NESTED,
        &cat(&[rule_bytes(&rules3()[1]), inner.clone(), inner]),
    );
    assert!(matches!(
        parse_reply(7, &nest),
        Err(MsgError::DuplicateAttr {
            attr: Attr::Nested,
            ..
        })
    ));
    // Two top-level STATE attributes.
    let two = cat(&[u32a(Attr::State, 1), u32a(Attr::State, 2)]);
    assert!(matches!(
        parse_reply(7, &two),
        Err(MsgError::DuplicateAttr {
            attr: Attr::State,
            ..
        })
    ));
    // A truncated inner attribute.
    let mut inner = rule_bytes(&rules3()[0]);
    inner.truncate(inner.len() - 5);
    let nest = attr(1 | NLA_F_NESTED, &inner);
    assert!(matches!(parse_reply(7, &nest), Err(MsgError::Malformed(_))));
}
