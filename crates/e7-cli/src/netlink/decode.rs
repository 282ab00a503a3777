//! Kernel answers in owned form, parsed and validated by e7-proto's [`parse_reply`].
//!
//! The CLI never interprets attributes itself: e7-proto checks every attribute's presence, type,
//! length and value (the same code the kernel module emits with), and this module only copies the
//! result out of the receive buffer. QUERY answers may come in several messages ([`QueryPart`]);
//! [`assemble`] joins them and checks the total against the kernel's COUNT.

use crate::error::CliError;
use crate::kernel::{Event, Outcome, Rule, RuleSet};
use e7_proto::msg::{parse_reply, Reply};

/// One QUERY message's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryPart {
    /// Top-level STATE (the mode), when present.
    pub mode: Option<u32>,
    /// COUNT (total rules), when present.
    pub count: Option<u32>,
    /// The rules in this message, in order.
    pub rules: Vec<Rule>,
}

/// Decode one QUERY message (chain or flat shape).
pub fn query(attrs: &[u8]) -> Result<QueryPart, String> {
    match parse_reply(e7_proto::Command::Query.value(), attrs).map_err(|e| e.to_string())? {
        Reply::Query(q) => Ok(QueryPart {
            mode: q.mode,
            count: q.count,
            rules: q
                .qualified_rules()
                .map(|r| Rule {
                    action: r.spec.action,
                    prot: r.spec.prot,
                    path: r.spec.path.to_string(),
                    qual: r.qual,
                })
                .collect(),
        }),
        other => Err(format!("expected a QUERY reply, got {:?}", other.command())),
    }
}

/// Decode one message of a STATS dump.
pub fn stats(attrs: &[u8]) -> Result<Vec<crate::kernel::ProgStat>, String> {
    match parse_reply(e7_proto::Command::Stats.value(), attrs).map_err(|e| e.to_string())? {
        Reply::Stats(st) => Ok(st
            .entries()
            .map(|e| crate::kernel::ProgStat::from_entry(&e))
            .collect()),
        other => Err(format!("expected a STATS reply, got {:?}", other.command())),
    }
}

/// Decode a GET reply: (flag index, value).
pub fn get(attrs: &[u8]) -> Result<(u32, u32), String> {
    match parse_reply(e7_proto::Command::Get.value(), attrs).map_err(|e| e.to_string())? {
        Reply::Get { flag, value } => Ok((flag.index(), value)),
        other => Err(format!("expected a GET reply, got {:?}", other.command())),
    }
}

/// Decode an EVENT.
pub fn event(attrs: &[u8]) -> Result<Event, String> {
    match parse_reply(e7_proto::Command::Event.value(), attrs).map_err(|e| e.to_string())? {
        Reply::Event {
            state,
            prot,
            path,
            peer,
        } => Ok(Event {
            state: state.value(),
            prot,
            path: String::from_utf8_lossy(path).into_owned(),
            peer,
        }),
        other => Err(format!("expected an EVENT, got {:?}", other.command())),
    }
}

/// Decode an ERROR message: (positive errno, message). A malformed or empty ERROR (the original
/// module sent ERROR without attributes) becomes EIO with no text.
pub fn error(attrs: &[u8]) -> (i32, Option<String>) {
    const EIO: i32 = 5;
    match parse_reply(e7_proto::Command::Error.value(), attrs) {
        Ok(Reply::Error { errno, message }) => (
            errno
                .and_then(|e| i32::try_from(e).ok())
                .filter(|&e| e > 0)
                .unwrap_or(EIO),
            message.map(str::to_string),
        ),
        _ => (EIO, None),
    }
}

/// Join the messages of one QUERY answer into the rule set.
pub fn assemble(parts: Vec<QueryPart>) -> Result<Outcome, CliError> {
    let mode = parts.iter().find_map(|p| p.mode).ok_or_else(|| {
        CliError::Failed("the kernel's QUERY answer did not include the mode".into())
    })?;
    let count = parts.iter().find_map(|p| p.count);
    let rules: Vec<Rule> = parts.into_iter().flat_map(|p| p.rules).collect();
    if let Some(count) = count {
        if count as usize != rules.len() {
            return Err(CliError::Failed(format!(
                "the rule table changed while it was being listed (the kernel announced {count} \
                 rules and sent {}); run the command again",
                rules.len()
            )));
        }
    }
    Ok(Outcome::Rules(RuleSet { mode, rules }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use e7_proto::msg::{
        emit_error, emit_event, emit_get_reply, emit_query_chain, emit_query_dump,
    };
    use e7_proto::msg::{QueryHeader, RuleSpec};
    use e7_proto::nla::Writer;
    use e7_proto::{Action, Const, EventState, Flag};

    fn specs() -> Vec<RuleSpec<'static>> {
        vec![
            RuleSpec {
                prot: 17,
                path: "/usr/bin/ping",
                action: Action::Allow,
            },
            RuleSpec {
                prot: 0xFFFF_FFFF,
                path: "/opt/a b/",
                action: Action::Block,
            },
            RuleSpec {
                prot: 6,
                path: "/usr/bin/curl",
                action: Action::Allow,
            },
        ]
    }

    fn owned() -> Vec<Rule> {
        specs()
            .into_iter()
            .map(|s| Rule {
                action: s.action,
                prot: s.prot,
                path: s.path.into(),
                qual: e7_proto::qual::Qualifiers::NONE,
            })
            .collect()
    }

    #[test]
    fn chain_shape_in_one_message() {
        let mut buf = [0u8; 4096];
        let mut w = Writer::new(&mut buf);
        let p = emit_query_chain(&mut w, Const::Enabled.value(), specs(), 3).unwrap();
        assert!(p.done);
        let part = query(w.as_bytes()).unwrap();
        assert_eq!(part.count, Some(3));
        assert_eq!(
            assemble(vec![part]).unwrap(),
            Outcome::Rules(RuleSet {
                mode: Const::Enabled.value(),
                rules: owned()
            })
        );
    }

    #[test]
    fn chain_shape_over_several_messages() {
        let all = specs();
        let mut parts = Vec::new();
        let mut sent = 0;
        loop {
            let mut buf = [0u8; 120]; // room for about one rule per message
            let mut w = Writer::new(&mut buf);
            let p = emit_query_chain(
                &mut w,
                Const::Disabled.value(),
                all.iter().copied().skip(sent),
                3,
            )
            .unwrap();
            sent += p.written;
            parts.push(query(w.as_bytes()).unwrap());
            if p.done {
                break;
            }
        }
        assert!(parts.len() > 1);
        assert_eq!(
            assemble(parts).unwrap(),
            Outcome::Rules(RuleSet {
                mode: Const::Disabled.value(),
                rules: owned()
            })
        );
    }

    #[test]
    fn flat_dump_shape() {
        let all = specs();
        let mut parts = Vec::new();
        let mut sent = 0;
        let mut first = true;
        loop {
            let mut buf = [0u8; 100];
            let mut w = Writer::new(&mut buf);
            let header = first.then_some(QueryHeader {
                mode: Const::Block.value(),
                count: 3,
            });
            first = false;
            let p = emit_query_dump(&mut w, header, all.iter().copied().skip(sent)).unwrap();
            sent += p.written;
            parts.push(query(w.as_bytes()).unwrap());
            if p.done {
                break;
            }
        }
        assert_eq!(
            assemble(parts).unwrap(),
            Outcome::Rules(RuleSet {
                mode: Const::Block.value(),
                rules: owned()
            })
        );
    }

    #[test]
    fn count_mismatch_and_missing_mode_are_errors() {
        let mut buf = [0u8; 4096];
        let mut w = Writer::new(&mut buf);
        emit_query_dump(
            &mut w,
            Some(QueryHeader {
                mode: Const::Enabled.value(),
                count: 5,
            }),
            specs(),
        )
        .unwrap();
        let e = assemble(vec![query(w.as_bytes()).unwrap()]).unwrap_err();
        assert!(
            e.to_string().contains("announced 5 rules and sent 3"),
            "{e}"
        );
        let e = assemble(vec![QueryPart {
            mode: None,
            count: None,
            rules: vec![],
        }])
        .unwrap_err();
        assert!(e.to_string().contains("mode"), "{e}");
    }

    #[test]
    fn get_event_error_replies() {
        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        emit_get_reply(&mut w, Flag::Mode, Const::Enabled.value()).unwrap();
        assert_eq!(get(w.as_bytes()), Ok((0, Const::Enabled.value())));

        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        emit_event(&mut w, EventState::Pending, 17, b"/bin/x").unwrap();
        assert_eq!(
            event(w.as_bytes()),
            Ok(Event {
                state: Const::Pending.value(),
                prot: 17,
                path: "/bin/x".into(),
                peer: Default::default(),
            })
        );

        let mut buf = [0u8; 512];
        let mut w = Writer::new(&mut buf);
        emit_error(&mut w, Some(28), Some("rule table full (1024 rules)")).unwrap();
        assert_eq!(
            error(w.as_bytes()),
            (28, Some("rule table full (1024 rules)".into()))
        );
        assert_eq!(error(&[]), (5, None));
        assert!(query(&[1, 2, 3]).is_err());
        assert!(get(&[]).is_err());
    }
}
