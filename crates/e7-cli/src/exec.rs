//! Executing statements against a [`Kernel`] and rendering what happened, as text or JSON.
//!
//! The same [`execute`] serves the console, scripts and the one-shot subcommands, so every way of
//! saying `allow udp /usr/bin/ping` sends the same request and prints the same confirmation.
//! Human output reuses the script syntax where it can (`allow udp /usr/bin/ping`, `mode enabled`),
//! so a listing can be pasted back into a script.

use crate::error::CliError;
use crate::grammar::{self, Action, ClearSpec, Statement};
use crate::kernel::{self, Change, Event, Kernel, Notice, Op, Outcome, RuleSet};
use e7_proto::qual::{Dest, Qualifiers};
use e7_proto::{Const, Flag, ValueClass};
use serde_json::{json, Value};

/// What a statement did, ready to be printed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// Nothing to print (comment, blank line, quit).
    Nothing,
    /// A rule was added or changed.
    Rule {
        /// Allow or block.
        action: Action,
        /// Protocol.
        prot: u32,
        /// Path.
        path: String,
        /// Qualifiers (none for a plain rule).
        qual: Qualifiers,
    },
    /// A flag was set.
    Flag {
        /// The flag.
        flag: Flag,
        /// Its new value.
        value: u32,
    },
    /// A flag was read (`get`); printed like [`Report::Flag`].
    Value {
        /// The flag.
        flag: Flag,
        /// Its value.
        value: u32,
    },
    /// Rules were removed.
    Cleared(ClearSpec),
    /// The rule listing, optionally filtered by action.
    Rules {
        /// The kernel's answer.
        set: RuleSet,
        /// Only rules with this action are shown.
        filter: Option<Action>,
    },
    /// DISCONNECT was sent.
    Disconnected,
    /// The help text.
    Help,
}

/// Run one statement. `Quit` and `Empty` do nothing here (the caller decides about quitting).
///
/// A rule path that leads through a symbolic link is first resolved to the path the kernel sees
/// ([`crate::resolve`]); the note saying so goes to stderr, and the report shows the rule as sent.
pub fn execute(kernel: &mut dyn Kernel, stmt: &Statement) -> Result<Report, CliError> {
    let resolved = crate::resolve::statement(stmt).map(|(s, note)| {
        eprintln!("e7: {note}");
        s
    });
    execute_resolved(kernel, resolved.as_ref().unwrap_or(stmt))
}

fn execute_resolved(kernel: &mut dyn Kernel, stmt: &Statement) -> Result<Report, CliError> {
    match stmt {
        Statement::Empty | Statement::Quit => Ok(Report::Nothing),
        Statement::Help => Ok(Report::Help),
        Statement::Change(change) => {
            check_support(kernel, change)?;
            kernel.call(&Op::Change(change.clone()))?;
            Ok(Report::from(change))
        }
        Statement::Get(flag) => {
            let value = kernel::get(kernel, *flag)?;
            Ok(Report::Value { flag: *flag, value })
        }
        Statement::Query(filter) => {
            let set = kernel::query(kernel)?;
            Ok(Report::Rules {
                set,
                filter: *filter,
            })
        }
        Statement::Disconnect => {
            match kernel.call(&Op::Disconnect)? {
                Outcome::Done | Outcome::Value { .. } | Outcome::Rules(_) | Outcome::Stats(_) => {}
            }
            Ok(Report::Disconnected)
        }
    }
}

impl From<&Change> for Report {
    /// The confirmation of a change the kernel accepted.
    fn from(change: &Change) -> Self {
        match change {
            Change::AddRule { action, prot, path } => Report::Rule {
                action: *action,
                prot: *prot,
                path: path.clone(),
                qual: Qualifiers::NONE,
            },
            Change::AddQualified {
                action,
                prot,
                path,
                qual,
            } => Report::Rule {
                action: *action,
                prot: *prot,
                path: path.clone(),
                qual: *qual,
            },
            Change::Enable => Report::Flag {
                flag: Flag::Mode,
                value: Const::Enabled.value(),
            },
            Change::Clear(spec) => Report::Cleared(spec.clone()),
            Change::Set { flag, value } => Report::Flag {
                flag: *flag,
                value: *value,
            },
        }
    }
}

/// A rule as JSON: `action`, `protocol`, `path`, and `to`, `port`, `user` when set.
fn rule_json(action: Action, prot: u32, path: &str, qual: &Qualifiers) -> Value {
    let mut v = json!({
        "action": action.alias(),
        "protocol": grammar::protocol_word(prot),
        "path": path,
    });
    add_qual_json(&mut v, qual);
    v
}

fn add_qual_json(v: &mut Value, qual: &Qualifiers) {
    if let Some(obj) = v.as_object_mut() {
        if qual.dest != Dest::Any || qual.ports.is_some() {
            obj.insert("to".into(), json!(qual.dest.to_string()));
        }
        if let Some(p) = &qual.ports {
            obj.insert("port".into(), json!(p.to_string()));
        }
        if let Some(u) = qual.uid {
            obj.insert("user".into(), json!(u));
        }
    }
}

/// Refuses a qualified rule unless the module announces, in its read-only `qualifiers` flag, that
/// it enforces every qualifier the rule uses. A module that does not know the flag (older) counts
/// as announcing none. Sending the rule anyway could never be silently widened (such a module
/// refuses the unknown attributes), but the refusal here says why, before anything is sent.
fn check_support(kernel: &mut dyn Kernel, change: &Change) -> Result<(), CliError> {
    let needed = change.needs_features();
    if needed == 0 {
        return Ok(());
    }
    let announced = match kernel::get(kernel, Flag::Qualifiers) {
        Ok(v) => v,
        Err(CliError::Refused { .. }) => 0,
        Err(e) => return Err(e),
    };
    let missing = needed & !announced;
    if missing == 0 {
        return Ok(());
    }
    let names: Vec<&str> = [
        (e7_proto::qual::FEATURE_DEST, "`to`"),
        (e7_proto::qual::FEATURE_PORTS, "`port`"),
        (e7_proto::qual::FEATURE_USER, "`user`"),
    ]
    .iter()
    .filter(|(bit, _)| missing & bit != 0)
    .map(|(_, n)| *n)
    .collect();
    Err(CliError::Failed(format!(
        "the loaded e7 module does not enforce {} rules yet (its `qualifiers` flag is {announced}); \
         the rule was not sent, so nothing was allowed or blocked more widely than written. \
         Write the rule without the qualifier, or load a module that announces it",
        names.join(" and ")
    )))
}

fn flag_json(flag: Flag, value: u32) -> Value {
    if flag.class() == ValueClass::ReadOnly {
        json!({ "flag": flag.alias(), "value": value, "raw": value })
    } else {
        json!({ "flag": flag.alias(), "value": grammar::value_word(flag, value), "raw": value })
    }
}

fn clear_text(spec: &ClearSpec) -> String {
    match spec {
        ClearSpec::All => "cleared all rules".to_string(),
        ClearSpec::Action(a) => format!("cleared {} rules", a.alias()),
        ClearSpec::Rule { prot, path } => format!(
            "cleared {} {}",
            grammar::protocol_word(*prot),
            grammar::quote_path(path)
        ),
        ClearSpec::Qualified { prot, path, qual } => format!(
            "cleared {} {}{qual}",
            grammar::protocol_word(*prot),
            grammar::quote_path(path)
        ),
    }
}

impl Report {
    /// Whether this is the answer to a reading statement (query, get, help) rather than the
    /// confirmation of a change.
    pub fn is_reading(&self) -> bool {
        matches!(
            self,
            Report::Rules { .. } | Report::Help | Report::Value { .. }
        )
    }

    /// The human-readable text (possibly several lines, no trailing newline); `None` = print nothing.
    pub fn human(&self) -> Option<String> {
        match self {
            Report::Nothing => None,
            Report::Help => Some(grammar::HELP.to_string()),
            Report::Rule {
                action,
                prot,
                path,
                qual,
            } => Some(grammar::rule_line(*action, *prot, path, qual)),
            Report::Flag { flag, value } | Report::Value { flag, value } => Some(format!(
                "{} {}",
                flag.alias(),
                grammar::value_word(*flag, *value)
            )),
            Report::Cleared(spec) => Some(clear_text(spec)),
            Report::Rules { set, filter } => {
                let mut lines = vec![format!(
                    "mode {}",
                    grammar::value_word(Flag::Mode, set.mode)
                )];
                let shown: Vec<_> = set
                    .rules
                    .iter()
                    .filter(|r| filter.is_none_or(|a| r.action == a))
                    .collect();
                if shown.is_empty() {
                    lines.push(match filter {
                        Some(a) => format!("# no {} rules", a.alias()),
                        None => "# no rules".to_string(),
                    });
                }
                for r in shown {
                    lines.push(grammar::rule_line(r.action, r.prot, &r.path, &r.qual));
                }
                Some(lines.join("\n"))
            }
            Report::Disconnected => Some("disconnected".to_string()),
        }
    }

    /// The JSON value; `None` = print nothing.
    pub fn json(&self) -> Option<Value> {
        match self {
            Report::Nothing => None,
            Report::Help => Some(json!({ "help": grammar::HELP })),
            Report::Rule {
                action,
                prot,
                path,
                qual,
            } => Some(rule_json(*action, *prot, path, qual)),
            Report::Flag { flag, value } | Report::Value { flag, value } => {
                Some(flag_json(*flag, *value))
            }
            Report::Cleared(spec) => Some(match spec {
                ClearSpec::All => json!({ "cleared": "all" }),
                ClearSpec::Action(a) => json!({ "cleared": a.alias() }),
                ClearSpec::Rule { prot, path } => json!({
                    "cleared": "rule",
                    "protocol": grammar::protocol_word(*prot),
                    "path": path,
                }),
                ClearSpec::Qualified { prot, path, qual } => {
                    let mut v = json!({
                        "cleared": "rule",
                        "protocol": grammar::protocol_word(*prot),
                        "path": path,
                    });
                    add_qual_json(&mut v, qual);
                    v
                }
            }),
            Report::Rules { set, filter } => {
                let rules: Vec<Value> = set
                    .rules
                    .iter()
                    .filter(|r| filter.is_none_or(|a| r.action == a))
                    .map(|r| rule_json(r.action, r.prot, &r.path, &r.qual))
                    .collect();
                Some(json!({
                    "mode": grammar::value_word(Flag::Mode, set.mode),
                    "count": rules.len(),
                    "rules": rules,
                }))
            }
            Report::Disconnected => Some(json!({ "disconnected": true })),
        }
    }

    /// Render for printing: JSON on one line, or the human text.
    pub fn render(&self, as_json: bool) -> Option<String> {
        if as_json {
            self.json().map(|v| v.to_string())
        } else {
            self.human()
        }
    }
}

/// The word for an event state (`pending`, `allow`, `block`), or the number.
pub fn state_word(state: u32) -> String {
    match Const::try_from(state) {
        Ok(c) => c.alias().to_string(),
        Err(_) => state.to_string(),
    }
}

/// Render a notice as one line (text or JSON).
pub fn render_notice(notice: &Notice, as_json: bool) -> String {
    match (notice, as_json) {
        (Notice::Event(e), false) => event_text(e),
        (Notice::Event(e), true) => {
            let mut v = json!({
                "event": state_word(e.state),
                "protocol": grammar::protocol_word(e.prot),
                "path": e.path,
            });
            if let Some(a) = e.peer.dst {
                v["destination"] = json!(a.to_string());
            }
            if let Some(p) = e.peer.dport {
                v["port"] = json!(p);
            }
            if let Some(u) = e.peer.uid {
                v["uid"] = json!(u);
            }
            v.to_string()
        }
        (Notice::Lost, false) => {
            "# kernel events were lost (the socket buffer was full)".to_string()
        }
        (Notice::Lost, true) => json!({ "lost": true }).to_string(),
        (Notice::Disconnected, false) => "# the kernel disconnected (module unloading)".to_string(),
        (Notice::Disconnected, true) => json!({ "disconnected": true }).to_string(),
        (Notice::Failed(m), false) => format!("# reading kernel events failed: {m}"),
        (Notice::Failed(m), true) => json!({ "error": m }).to_string(),
    }
}

fn event_text(e: &Event) -> String {
    let path = if e.path.is_empty() {
        "-".to_string()
    } else {
        grammar::quote_path(&e.path)
    };
    let mut line = format!(
        "event {} {} {}",
        state_word(e.state),
        grammar::protocol_word(e.prot),
        path
    );
    // ` -> 93.184.216.34:443`, ` -> [2001:db8::1]:443`, ` -> 10.0.0.1` (no port), ` uid 1000`: what a
    // rule for this packet would say after `to`, `port` and `user`.
    match (e.peer.dst, e.peer.dport) {
        (Some(a @ e7_proto::qual::Addr::V6(_)), Some(p)) => {
            line.push_str(&format!(" -> [{a}]:{p}"))
        }
        (Some(a), Some(p)) => line.push_str(&format!(" -> {a}:{p}")),
        (Some(a), None) => line.push_str(&format!(" -> {a}")),
        (None, _) => {}
    }
    if let Some(u) = e.peer.uid {
        line.push_str(&format!(" uid {u}"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fake::FakeKernel;
    use crate::grammar::parse_line;

    fn run(k: &mut FakeKernel, line: &str) -> Report {
        execute(k, &parse_line(line).unwrap()).unwrap()
    }

    #[test]
    fn texts_and_json_follow_the_contract() {
        let mut k = FakeKernel::new();
        let r = run(&mut k, "allow udp /usr/bin/ping");
        assert_eq!(r.human().unwrap(), "allow udp /usr/bin/ping");
        assert_eq!(
            r.render(true).unwrap(),
            r#"{"action":"allow","protocol":"udp","path":"/usr/bin/ping"}"#
        );
        let r = run(&mut k, "enable");
        assert_eq!(r.human().unwrap(), "mode enabled");
        let r = run(&mut k, "get mode");
        assert_eq!(
            r.json().unwrap(),
            json!({"flag":"mode","value":"enabled","raw":65283})
        );
        let r = run(&mut k, "block /usr/bin/socat");
        assert_eq!(r.human().unwrap(), "block any /usr/bin/socat");
        let r = run(&mut k, "query");
        assert_eq!(
            r.human().unwrap(),
            "mode enabled\nallow udp /usr/bin/ping\nblock any /usr/bin/socat"
        );
        assert_eq!(
            r.json().unwrap(),
            json!({"mode":"enabled","count":2,"rules":[
                {"action":"allow","protocol":"udp","path":"/usr/bin/ping"},
                {"action":"block","protocol":"any","path":"/usr/bin/socat"}]})
        );
        let r = run(&mut k, "query block");
        assert_eq!(r.human().unwrap(), "mode enabled\nblock any /usr/bin/socat");
        assert_eq!(r.json().unwrap()["count"], 1);
        run(&mut k, "clear block");
        let r = run(&mut k, "query block");
        assert_eq!(r.human().unwrap(), "mode enabled\n# no block rules");
        let r = run(&mut k, "set unkrule block");
        assert_eq!(r.human().unwrap(), "unkrule block");
        let r = run(&mut k, "get uptime");
        assert_eq!(
            r.json().unwrap(),
            json!({"flag":"uptime","value":0,"raw":0})
        );
    }

    #[test]
    fn events_render_as_one_line() {
        let e = Notice::Event(Event {
            state: Const::Pending.value(),
            prot: 17,
            path: "/bin/x".into(),
            peer: Default::default(),
        });
        assert_eq!(
            render_notice(&e, true),
            r#"{"event":"pending","protocol":"udp","path":"/bin/x"}"#
        );
        assert_eq!(render_notice(&e, false), "event pending udp /bin/x");
        let with = |dst, dport| {
            Notice::Event(Event {
                state: Const::Pending.value(),
                prot: 6,
                path: "/usr/bin/curl".into(),
                peer: e7_proto::msg::EventPeer {
                    dst: Some(dst),
                    dport,
                    uid: Some(1000),
                },
            })
        };
        let e = with(e7_proto::qual::Addr::V4([93, 184, 216, 34]), Some(443));
        assert_eq!(
            render_notice(&e, false),
            "event pending tcp /usr/bin/curl -> 93.184.216.34:443 uid 1000"
        );
        assert_eq!(
            render_notice(&e, true),
            r#"{"event":"pending","protocol":"tcp","path":"/usr/bin/curl","destination":"93.184.216.34","port":443,"uid":1000}"#
        );
        let mut v6 = [0u8; 16];
        v6[0] = 0x20;
        v6[1] = 0x01;
        v6[2] = 0x0d;
        v6[3] = 0xb8;
        v6[15] = 1;
        let e = with(e7_proto::qual::Addr::V6(v6), Some(53));
        assert_eq!(
            render_notice(&e, false),
            "event pending tcp /usr/bin/curl -> [2001:db8::1]:53 uid 1000"
        );
        let e = with(e7_proto::qual::Addr::V4([10, 0, 0, 1]), None);
        assert_eq!(
            render_notice(&e, false),
            "event pending tcp /usr/bin/curl -> 10.0.0.1 uid 1000"
        );
    }

    #[test]
    fn kernel_refusals_pass_through() {
        let mut k = FakeKernel::new();
        k.privileged = false;
        let e = execute(&mut k, &parse_line("allow /x").unwrap()).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        // Reading works without privilege.
        assert!(execute(&mut k, &parse_line("query").unwrap()).is_ok());
        assert!(execute(&mut k, &parse_line("get mode").unwrap()).is_ok());
    }
}
