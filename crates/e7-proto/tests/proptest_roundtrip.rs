//! Property tests: emit → parse gives back the same value, arbitrary bytes never panic or break
//! round trips, and truncating a message inside an attribute is always rejected.

use e7_proto::fuzzing::check_input;
use e7_proto::msg::{
    emit_error, emit_event, emit_get_reply, emit_query_chain, emit_query_dump, parse_reply,
    parse_request, ClearSpec, QueryHeader, Reply, Request, RuleSpec,
};
use e7_proto::nla::{nla_align, Writer, NLA_F_NESTED};
use e7_proto::{validate_rule_path, Action, EventState, Flag, Mode};
use proptest::prelude::*;

const PROTOS: [u32; 5] = [1, 6, 17, 58, u32::MAX];

fn flag() -> impl Strategy<Value = Flag> {
    (0..Flag::COUNT).prop_map(|i| Flag::ALL[i])
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![Just(Action::Allow), Just(Action::Block)]
}

fn rule_prot() -> impl Strategy<Value = u32> {
    (0..PROTOS.len()).prop_map(|i| PROTOS[i])
}

/// Valid rule paths: absolute, canonical, ≤ 255 bytes, maybe a folder.
fn rule_path() -> impl Strategy<Value = String> {
    (
        prop::collection::vec("[a-zA-Z0-9_. äé-]{1,16}", 0..12),
        any::<bool>(),
    )
        .prop_filter_map("must be a valid rule path", |(comps, folder)| {
            let mut p = String::from("/");
            p.push_str(&comps.join("/"));
            if folder && !p.ends_with('/') {
                p.push('/');
            }
            validate_rule_path(p.as_bytes()).is_ok().then_some(p)
        })
}

/// An owned description of a request, turned into a borrowed [`Request`] in the test body.
#[derive(Clone, Debug)]
struct ReqCase {
    which: u8,
    prot: u32,
    path: String,
    action: Action,
    flag: Flag,
    value_pick: usize,
}

fn req_case() -> impl Strategy<Value = ReqCase> {
    (
        0u8..14,
        rule_prot(),
        rule_path(),
        action(),
        flag(),
        any::<usize>(),
    )
        .prop_map(|(which, prot, path, action, flag, value_pick)| ReqCase {
            which,
            prot,
            path,
            action,
            flag,
            value_pick,
        })
}

fn build(c: &ReqCase) -> Request<'_> {
    let settable: Vec<Flag> = Flag::ALL
        .iter()
        .copied()
        .filter(|f| !f.class().allowed().is_empty())
        .collect();
    match c.which {
        0 => Request::Error,
        1 => Request::Disconnect,
        2 => Request::SetMode(Mode::Block),
        3 => Request::SetMode(Mode::Disabled),
        4 => Request::SetMode(Mode::Enabled),
        5 => Request::AddRule(RuleSpec {
            prot: c.prot,
            path: &c.path,
            action: c.action,
        }),
        6 => Request::Clear(ClearSpec::All),
        7 => Request::Clear(ClearSpec::Action(c.action)),
        8 => Request::Clear(ClearSpec::Rule {
            prot: c.prot,
            path: &c.path,
        }),
        9 => Request::Query,
        10 | 11 => {
            let flag = settable[c.value_pick % settable.len()];
            let allowed = flag.class().allowed();
            let value = allowed[(c.value_pick / 7) % allowed.len()].value();
            Request::Set { flag, value }
        }
        12 => Request::Get { flag: c.flag },
        _ => Request::Subscribe,
    }
}

/// Whether cutting a message to `p` bytes ends exactly between attributes (or inside the
/// padding after one), where a TLV stream cannot tell that something is missing.
fn cut_is_at_boundary(bytes: &[u8], p: usize) -> bool {
    let mut at = 0;
    while at < bytes.len() {
        if p == at {
            return true;
        }
        let len = usize::from(u16::from_ne_bytes([bytes[at], bytes[at + 1]]));
        let next = at + nla_align(len);
        if p >= at + len && p <= next {
            return true;
        }
        at = next;
    }
    p == at
}

#[derive(Clone, Debug)]
enum ReplyCase {
    Get(Flag, u32),
    Event(EventState, u32, Vec<u8>),
    Error(Option<u32>, Option<String>),
    Disconnect,
    Query(Option<u32>, Vec<(u32, String, Action)>),
}

fn reply_case() -> impl Strategy<Value = ReplyCase> {
    let state = prop_oneof![
        Just(EventState::Pending),
        Just(EventState::Allow),
        Just(EventState::Block)
    ];
    let exe = prop::collection::vec(1u8..=255, 0..=255);
    let rule = (any::<u32>(), "[^\u{0}]{0,40}", action()).prop_map(|(p, s, a)| (p, s, a));
    prop_oneof![
        (flag(), any::<u32>()).prop_map(|(f, v)| ReplyCase::Get(f, v)),
        (state, any::<u32>(), exe).prop_map(|(s, p, e)| ReplyCase::Event(s, p, e)),
        (any::<Option<u32>>(), proptest::option::of("[^\u{0}]{0,60}"))
            .prop_map(|(e, m)| ReplyCase::Error(e, m)),
        Just(ReplyCase::Disconnect),
        (any::<Option<u32>>(), prop::collection::vec(rule, 0..25))
            .prop_map(|(m, r)| ReplyCase::Query(m, r)),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn requests_round_trip(c in req_case()) {
        let r = build(&c);
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        r.emit(&mut w).unwrap();
        prop_assert_eq!(parse_request(r.command().value(), w.as_bytes()), Ok(r));
    }

    #[test]
    fn truncated_requests_are_rejected(c in req_case()) {
        let r = build(&c);
        let mut buf = [0u8; 1024];
        let mut w = Writer::new(&mut buf);
        r.emit(&mut w).unwrap();
        let bytes = w.as_bytes();
        for p in 0..bytes.len() {
            if !cut_is_at_boundary(bytes, p) {
                prop_assert!(parse_request(r.command().value(), &bytes[..p]).is_err(), "cut at {} accepted", p);
            }
        }
    }

    #[test]
    fn replies_round_trip(c in reply_case()) {
        let mut buf = vec![0u8; 16384];
        let mut w = Writer::new(&mut buf);
        let cmd = match &c {
            ReplyCase::Get(f, v) => { emit_get_reply(&mut w, *f, *v).unwrap(); 10 }
            ReplyCase::Event(s, p, e) => { emit_event(&mut w, *s, *p, e).unwrap(); 8 }
            ReplyCase::Error(e, m) => {
                // Messages longer than 255 bytes are truncated; keep to what round-trips.
                let m = m.as_deref().filter(|m| m.len() <= 255);
                emit_error(&mut w, *e, m).unwrap();
                1
            }
            ReplyCase::Disconnect => 2,
            ReplyCase::Query(mode, rules) => {
                let specs = rules.iter().map(|(p, s, a)| RuleSpec { prot: *p, path: s, action: *a });
                let header = mode.map(|m| QueryHeader { mode: m, count: rules.len() as u32 });
                let prog = emit_query_dump(&mut w, header, specs).unwrap();
                prop_assert!(prog.done);
                7
            }
        };
        let bytes = w.as_bytes().to_vec();
        let parsed = parse_reply(cmd, &bytes).unwrap();
        match (&c, parsed) {
            (ReplyCase::Get(f, v), Reply::Get { flag, value }) => prop_assert_eq!((*f, *v), (flag, value)),
            (ReplyCase::Event(s, p, e), Reply::Event { state, prot, path, .. }) => {
                prop_assert_eq!((*s, *p, e.as_slice()), (state, prot, path))
            }
            (ReplyCase::Error(e, m), Reply::Error { errno, message }) => {
                prop_assert_eq!(*e, errno);
                prop_assert_eq!(m.as_deref().filter(|m| m.len() <= 255), message);
            }
            (ReplyCase::Disconnect, Reply::Disconnect) => {}
            (ReplyCase::Query(mode, rules), Reply::Query(q)) => {
                prop_assert_eq!(q.mode, *mode);
                prop_assert_eq!(q.count, mode.map(|_| rules.len() as u32));
                let got: Vec<_> = q.rules().map(|r| (r.prot, r.path.to_string(), r.action)).collect();
                prop_assert_eq!(&got, rules);
                // The chain shape carries the same rules (it fits: 25 short rules).
                let mut buf2 = vec![0u8; 16384];
                let mut w2 = Writer::new(&mut buf2);
                let specs = rules.iter().map(|(p, s, a)| RuleSpec { prot: *p, path: s, action: *a });
                let prog = emit_query_chain(&mut w2, mode.unwrap_or(0), specs, rules.len() as u32).unwrap();
                prop_assert!(prog.done);
                let Reply::Query(q2) = parse_reply(7, w2.as_bytes()).unwrap() else { panic!("not a query") };
                let got2: Vec<_> = q2.rules().map(|r| (r.prot, r.path.to_string(), r.action)).collect();
                prop_assert_eq!(&got2, rules);
                prop_assert_eq!(q2.count, Some(rules.len() as u32));
            }
            (c, other) => prop_assert!(false, "{:?} parsed as {:?}", c, other),
        }
        // Truncation inside an attribute is rejected.
        for p in 0..bytes.len() {
            if !cut_is_at_boundary(&bytes, p) {
                prop_assert!(parse_reply(cmd, &bytes[..p]).is_err(), "cut at {} accepted", p);
            }
        }
        prop_assert_eq!(check_input(&bytes), Ok(()));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        prop_assert_eq!(check_input(&bytes), Ok(()));
    }

    /// Random but well-framed attributes reach the validators far more often than raw bytes.
    #[test]
    fn framed_attributes_never_panic(
        attrs in prop::collection::vec(
            (0u16..12, any::<bool>(), prop_oneof![
                prop::collection::vec(any::<u8>(), 0..12),
                any::<u32>().prop_map(|v| v.to_ne_bytes().to_vec()),
                "/[a-z/.]{0,20}".prop_map(|s| { let mut v = s.into_bytes(); v.push(0); v }),
            ]),
            0..8,
        )
    ) {
        let mut bytes = Vec::new();
        for (kind, nested, payload) in attrs {
            let ty = if nested { kind | NLA_F_NESTED } else { kind };
            bytes.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
            bytes.extend_from_slice(&ty.to_ne_bytes());
            bytes.extend_from_slice(&payload);
            while bytes.len() % 4 != 0 { bytes.push(0); }
        }
        prop_assert_eq!(check_input(&bytes), Ok(()));
    }
}
