//! Rules that say where and who (`to`, `port`, `user`): the grammar in every entry point, `e7 check`,
//! `e7 save` round-trips, and the refusal to send a qualified rule to a module that does not
//! announce it (so nothing is ever silently widened).

use e7_cli::exec::{execute, Report};
use e7_cli::fake::FakeKernel;
use e7_cli::grammar::{parse_line, Action, ClearSpec, Statement};
use e7_cli::kernel::{Change, Kernel, Op};
use e7_cli::save;
use e7_cli::script::Script;
use e7_proto::qual::{Dest, Ports, Qualifiers, FEATURE_DEST, FEATURE_PORTS, FEATURE_USER};
use e7_proto::{Const, Flag};
use std::process::Command;

const ANY: u32 = Const::Any.value();

fn qualified(line: &str) -> (Action, u32, String, Qualifiers) {
    match parse_line(line) {
        Ok(Statement::Change(Change::AddQualified {
            action,
            prot,
            path,
            qual,
        })) => (action, prot, path, qual),
        other => panic!("{line}: {other:?}"),
    }
}

fn err(line: &str) -> String {
    parse_line(line).unwrap_err().to_string()
}

/// A fake module that announces every qualifier (what the kernel will do after phase 2).
fn announcing() -> FakeKernel {
    let mut k = FakeKernel::new();
    k.flags[Flag::Qualifiers.index() as usize] = FEATURE_DEST | FEATURE_PORTS | FEATURE_USER;
    k
}

#[test]
fn the_issue_examples_parse() {
    let (a, p, path, q) = qualified("allow tcp /usr/bin/firefox to any port 80,443");
    assert_eq!(
        (a, p, path.as_str()),
        (Action::Allow, 6, "/usr/bin/firefox")
    );
    assert_eq!(q.dest, Dest::Any);
    assert_eq!(q.ports, Some(Ports::parse("80,443").unwrap()));
    let (_, p, _, q) = qualified("allow udp /usr/lib/systemd/systemd-resolved to 1.1.1.1 port 53");
    assert_eq!(
        (p, q.dest.to_string(), q.ports.unwrap().to_string()),
        (17, "1.1.1.1".into(), "53".into())
    );
    let (a, p, path, q) = qualified("block any / to 10.0.0.0/8");
    assert_eq!(
        (a, p, path.as_str(), q.dest.to_string()),
        (Action::Block, ANY, "/", "10.0.0.0/8".into())
    );
    let (_, _, _, q) = qualified("allow any /usr/bin/restic to 10.0.0.7 port 22");
    assert_eq!(q.to_string(), " to 10.0.0.7 port 22");
    let (_, _, _, q) = qualified("allow any /usr/bin/ to localhost");
    assert_eq!(q.dest, Dest::parse("localhost").unwrap());
    let (_, _, _, q) = qualified("block any / user root");
    assert_eq!(q.uid, Some(0), "a user name is resolved");
    let (_, _, _, q) = qualified("block any / user 1001");
    assert_eq!(q.uid, Some(1001));
    // Any order, keywords in any case, a path without protocol, port without `to`.
    let (_, p, _, q) = qualified("block /usr/bin/x USER 5 Port 1024-65535 TO 2001:db8::/32");
    assert_eq!(p, ANY);
    assert_eq!(q.to_string(), " to 2001:db8::/32 port 1024-65535 user 5");
    let (_, _, _, q) = qualified("allow tcp /x port 443");
    assert_eq!(q.to_string(), " to any port 443");
    // Unqualified stays unqualified, `to any` alone is no qualifier.
    assert!(matches!(
        parse_line("allow tcp /x"),
        Ok(Statement::Change(Change::AddRule { .. }))
    ));
    assert!(matches!(
        parse_line("allow tcp /x to any"),
        Ok(Statement::Change(Change::AddRule { .. }))
    ));
    // Clear names the qualified rule exactly.
    assert!(matches!(
        parse_line("clear any / to 10.0.0.0/8"),
        Ok(Statement::Change(Change::Clear(
            ClearSpec::Qualified { .. }
        )))
    ));
}

#[test]
fn errors_name_what_was_wrong_and_what_would_be_right() {
    assert_eq!(
        err("allow icmp /x port 53"),
        "`allow icmp /x`: protocol icmp has no ports: `port` needs tcp, udp, udplite, sctp or any"
    );
    assert!(err("allow tcp /x to 10.0.0.1/8").contains("did you mean 10.0.0.0/8?"));
    assert!(err("allow tcp /x to example.org").contains("an IPv4 or IPv6 address or prefix"));
    assert!(err("allow tcp /x to 10.0.0.0/40").contains("0..=32"));
    assert!(err("allow tcp /x port").contains("`port` needs a value: port 443"));
    assert!(err("allow tcp /x port 0").contains("1..=65535"));
    assert!(err("allow tcp /x port 443 port 80").contains("given twice"));
    assert!(err("allow tcp /x user no-such-user-e7").contains("does not exist"));
    assert!(err("allow tcp /x user 4294967295").contains("out of range"));
    assert!(err("allow to lan").contains("needs [PROTO] PATH before the qualifiers"));
    assert!(err("allow tcp /x from lan").contains("`to DEST`"));
}

#[test]
fn a_module_without_qualifiers_is_never_sent_one() {
    // A module that enforces no qualifier (an older one): the `qualifiers` flag is 0.
    let mut k = FakeKernel::new();
    for line in [
        "block any / to 10.0.0.0/8",
        "allow tcp /usr/bin/firefox to any port 80,443",
        "block any / user 1001",
        "clear any / to 10.0.0.0/8",
    ] {
        let e = execute(&mut k, &parse_line(line).unwrap()).unwrap_err();
        assert_eq!(e.exit_code(), 1, "{line}");
        let m = e.to_string();
        assert!(m.contains("does not enforce"), "{m}");
        assert!(
            m.contains("nothing was allowed or blocked more widely"),
            "{m}"
        );
    }
    assert!(k.rules.is_empty());
    assert!(
        k.log
            .iter()
            .all(|op| matches!(op, Op::Get(Flag::Qualifiers))),
        "only the flag was asked: {:?}",
        k.log
    );
    // A module announcing only destinations still refuses a port rule, naming it.
    k.flags[Flag::Qualifiers.index() as usize] = FEATURE_DEST;
    let m = execute(
        &mut k,
        &parse_line("allow tcp /x to lan port 22 user 3").unwrap(),
    )
    .unwrap_err()
    .to_string();
    assert!(m.contains("`port` and `user`"), "{m}");
    execute(&mut k, &parse_line("allow tcp /x to lan").unwrap()).unwrap();
    // Plain rules never ask.
    let before = k.log.len();
    execute(&mut k, &parse_line("allow tcp /y").unwrap()).unwrap();
    assert_eq!(k.log.len(), before + 1);
}

#[test]
fn an_older_module_that_does_not_know_the_flag_counts_as_announcing_none() {
    struct Old(FakeKernel);
    impl Kernel for Old {
        fn call(&mut self, op: &Op) -> Result<e7_cli::kernel::Outcome, e7_cli::error::CliError> {
            if let Op::Get(Flag::Qualifiers) = op {
                return Err(e7_cli::error::CliError::Refused {
                    command: "get".into(),
                    errno: 22,
                    reason: "unknown flag".into(),
                });
            }
            self.0.call(op)
        }
        fn notices(&mut self) -> Option<std::sync::mpsc::Receiver<e7_cli::kernel::Notice>> {
            None
        }
    }
    let mut k = Old(FakeKernel::new());
    let e = execute(&mut k, &parse_line("block any / to lan").unwrap()).unwrap_err();
    assert!(e.to_string().contains("its `qualifiers` flag is 0"), "{e}");
}

#[test]
fn save_round_trips_qualified_rules() {
    let mut k = announcing();
    let lines = [
        "allow tcp /usr/bin/firefox to any port 80,443",
        "allow udp /usr/lib/systemd/systemd-resolved to 1.1.1.1 port 53",
        "block any / to 10.0.0.0/8",
        "allow any /usr/bin/restic to 10.0.0.7 port 22",
        "allow any /usr/bin/ to localhost",
        "block any / user 1001",
        "block any \"/opt/my app/\" to fe80::/10 port 1-1024,8080 user 0",
        "allow tcp /usr/bin/ssh",
    ];
    for line in lines {
        let r = execute(&mut k, &parse_line(line).unwrap()).unwrap();
        assert_eq!(
            r.human().unwrap(),
            line,
            "the confirmation is the script line"
        );
    }
    let text = save::render(&save::snapshot(&mut k).unwrap());
    for line in lines {
        assert!(
            text.contains(&format!("{line}\n")),
            "{line} not in:\n{text}"
        );
    }
    let mut restored = announcing();
    Script::from_bytes("saved", text.as_bytes())
        .run(&mut restored, &mut |_| {})
        .unwrap();
    assert_eq!(restored.rules, k.rules);
    // JSON names the qualifiers.
    let set = e7_cli::kernel::query(&mut k).unwrap();
    let json = Report::Rules { set, filter: None }
        .json()
        .unwrap()
        .to_string();
    assert!(json.contains(r#""to":"any","port":"80,443""#), "{json}");
    assert!(json.contains(r#""user":1001"#), "{json}");
    // Flip in place, clear exactly.
    execute(&mut k, &parse_line("allow any / to 10.0.0.0/8").unwrap()).unwrap();
    assert_eq!(k.rules.len(), lines.len());
    execute(&mut k, &parse_line("clear any / to 10.0.0.0/8").unwrap()).unwrap();
    assert_eq!(k.rules.len(), lines.len() - 1);
}

#[test]
fn e7_check_reports_bad_qualifiers_with_line_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.e7");
    std::fs::write(
        &good,
        "allow tcp /usr/bin/firefox to any port 80,443\nblock any / to 10.0.0.0/8\nblock any / user root\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_e7"))
        .args(["check", good.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let bad = dir.path().join("bad.e7");
    std::fs::write(
        &bad,
        "allow tcp /x\nallow icmp /x port 53\nblock any / to 10.0.0.1/8\n",
    )
    .unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_e7"))
        .args(["check", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(":2:") && err.contains("protocol icmp has no ports"),
        "{err}"
    );
    assert!(
        err.contains(":3:") && err.contains("did you mean 10.0.0.0/8"),
        "{err}"
    );
}

/// The one-shot commands take the qualifiers too: without a module the command gets as far as the
/// kernel (exit 3), and a bad qualifier is a usage error (exit 2) naming what would be right.
#[test]
fn one_shot_commands_take_qualifiers() {
    let e7 = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_e7"))
            .args(args)
            .output()
            .unwrap()
    };
    for args in [
        &[
            "allow",
            "tcp",
            "/usr/bin/firefox",
            "to",
            "any",
            "port",
            "80,443",
        ][..],
        &[
            "block",
            "any",
            "/",
            "to",
            "10.0.0.0/8",
            "port",
            "22",
            "user",
            "0",
        ],
        &["clear", "any", "/", "to", "lan"],
    ] {
        let o = e7(args);
        let err = String::from_utf8_lossy(&o.stderr);
        // 3 on a host without the module (1 or 4 where it is loaded); never a usage error.
        assert_ne!(o.status.code(), Some(2), "{args:?} must parse: {err}");
        assert!(!err.contains("unexpected value"), "{err}");
    }
    let o = e7(&["allow", "icmp", "/x", "port", "53"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("protocol icmp has no ports"));
}
