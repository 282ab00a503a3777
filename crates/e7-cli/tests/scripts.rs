//! `e7 check` and `e7 run` over fixture scripts: diagnostics with line numbers, execution against
//! the fake kernel, stopping at the first failing line.

use e7_cli::fake::FakeKernel;
use e7_cli::grammar::{Action, ClearSpec};
use e7_cli::kernel::{Change, Op, Rule};
use e7_cli::script::{RunFailure, Script};
use e7_proto::{Const, Flag};
use std::path::PathBuf;
use std::process::Command;

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn load(name: &str) -> Script {
    Script::load(fixture(name).to_str().unwrap()).unwrap()
}

fn e7() -> Command {
    Command::new(env!("CARGO_BIN_EXE_e7"))
}

const ANY: u32 = 0xFFFF_FFFF;

#[test]
fn good_and_readme_scripts_check_clean() {
    assert_eq!(load("good.e7").check(), vec![]);
    assert_eq!(load("readme.e7").check(), vec![]);
}

#[test]
fn bad_script_reports_every_error_with_its_line() {
    let script = load("bad.e7");
    let diags = script.check();
    let lines: Vec<usize> = diags.iter().map(|d| d.line).collect();
    assert_eq!(lines, vec![3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13]);
    let expect = [
        (3, "not absolute"),
        (4, "`grep` is not a protocol"),
        (5, "mismatched quotes"),
        (6, "`banana` is not a valid value for flag `mode`"),
        (7, "read-only"),
        (8, "`colour` is not a flag"),
        (9, "unknown command `frobnicate`"),
        (10, "at most 2 arguments"),
        (11, "needs the rule's PATH"),
        (12, "contains `//`"),
        (13, "unknown filter `everything`"),
    ];
    for (d, (line, text)) in diags.iter().zip(expect) {
        assert_eq!(d.line, line);
        assert!(d.message.contains(text), "line {line}: {}", d.message);
        let shown = d.to_string();
        assert!(
            shown.starts_with(&format!("{}:{line}: ", script.name)),
            "{shown}"
        );
    }
}

#[test]
fn non_utf8_lines_are_diagnosed_not_fatal() {
    let diags = load("not-utf8.e7").check();
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].line, 2);
    assert!(diags[0].message.contains("not valid UTF-8"));
}

#[test]
fn check_binary_prints_file_line_messages_and_exits_2() {
    let bad = fixture("bad.e7");
    let out = e7().arg("check").arg(&bad).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.lines().count(), 11, "{stderr}");
    assert!(stderr.contains(&format!(
        "{}:3: path `usr/bin/ping` is not absolute",
        bad.display()
    )));
    assert!(stderr.contains(&format!("{}:5: mismatched quotes", bad.display())));

    let out = e7()
        .arg("check")
        .arg(fixture("good.e7"))
        .arg(fixture("readme.e7"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The original README's `/bin/...` lines get a note on merged-/usr hosts, nothing else.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().all(|l| l.contains(": note: `/bin/")),
        "{stderr}"
    );
    assert!(out.stdout.is_empty());

    // From stdin, and a missing file.
    let mut child = e7()
        .args(["check", "-"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"allow udp /x\nallow udp x\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("<stdin>:2: "));
    let out = e7()
        .args(["check", "/nonexistent/rules.e7"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cannot read script `/nonexistent/rules.e7`")
    );
}

#[test]
fn run_with_a_syntax_error_applies_nothing_and_needs_no_kernel() {
    let mut k = FakeKernel::new();
    match load("bad.e7").run(&mut k, &mut |_| {}) {
        Err(RunFailure::Syntax(d)) => assert_eq!(d.len(), 11),
        other => panic!("{other:?}"),
    }
    assert!(
        k.log.is_empty(),
        "nothing may reach the kernel: {:?}",
        k.log
    );
    // The binary finds it before looking for the module (exit 2, not 3).
    let out = e7().arg("run").arg(fixture("bad.e7")).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn run_applies_the_script_skipping_comments_and_blanks() {
    let mut k = FakeKernel::new();
    let mut reports = 0;
    let executed = load("good.e7").run(&mut k, &mut |_| reports += 1).unwrap();
    assert_eq!(executed, 10);
    assert_eq!(reports, 10);
    assert_eq!(k.log.len(), 10, "one request per statement: {:?}", k.log);
    assert_eq!(k.log[0], Op::Change(Change::Clear(ClearSpec::All)));
    assert_eq!(
        k.rules,
        vec![
            Rule {
                action: Action::Allow,
                prot: 17,
                path: "/usr/bin/ping".into(),
                qual: e7_proto::qual::Qualifiers::NONE,
            },
            Rule {
                action: Action::Allow,
                prot: 6,
                path: "/opt/my app/bin/run".into(),
                qual: e7_proto::qual::Qualifiers::NONE,
            },
            Rule {
                action: Action::Block,
                prot: ANY,
                path: "/usr/bin/socat".into(),
                qual: e7_proto::qual::Qualifiers::NONE,
            },
            Rule {
                action: Action::Allow,
                prot: 58,
                path: "/usr/bin/".into(),
                qual: e7_proto::qual::Qualifiers::NONE,
            },
            Rule {
                action: Action::Block,
                prot: 17,
                path: "/usr/bin/nc.openbsd".into(),
                qual: e7_proto::qual::Qualifiers::NONE,
            },
        ]
    );
    assert_eq!(k.flag(Flag::Mode), Const::Enabled.value());
    assert_eq!(k.flag(Flag::UnkRule), Const::Block.value());
    assert_eq!(k.flag(Flag::Squelch), Const::Disabled.value());
    assert_eq!(k.flag(Flag::Debug), Const::Enabled.value());
}

#[test]
fn run_stops_at_the_first_failing_line_with_its_number() {
    // Room for two rules: the third rule (line 6 of good.e7) is refused.
    let mut k = FakeKernel::new();
    k.capacity = 2;
    let failure = load("good.e7").run(&mut k, &mut |_| {}).unwrap_err();
    match &failure {
        RunFailure::Line { at, .. } => {
            assert_eq!(at.line, 6);
            assert!(
                at.to_string().ends_with(
                    "good.e7:6: the kernel refused `block`: rule table full (the rule table is \
                     full: remove rules with `clear` first)"
                ),
                "{at}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(failure.exit_code(), 1);
    assert_eq!(k.rules.len(), 2);
    // Nothing after the failing line was sent: clear + 2 rules + the refused one.
    assert_eq!(k.log.len(), 4);
    assert_eq!(
        k.flag(Flag::Mode),
        Const::Disabled.value(),
        "mode must not be reached"
    );
}

#[test]
fn run_without_privilege_stops_at_line_one_with_exit_4() {
    let mut k = FakeKernel::new();
    k.privileged = false;
    let failure = load("good.e7").run(&mut k, &mut |_| {}).unwrap_err();
    assert_eq!(failure.exit_code(), 4);
    let m = failure.messages().join("\n");
    assert!(
        m.contains("good.e7:3: permission denied") && m.contains("CAP_NET_ADMIN"),
        "{m}"
    );
}

#[test]
fn run_of_the_readme_script_stops_at_quit() {
    let mut k = FakeKernel::new();
    let executed = load("readme.e7").run(&mut k, &mut |_| {}).unwrap();
    // 16 statements before `quit` (comments excluded).
    assert_eq!(executed, 16);
    assert_eq!(k.log.last(), Some(&Op::Disconnect));
    assert_eq!(
        k.rules,
        vec![
            Rule {
                action: Action::Allow,
                prot: ANY,
                // `/usr/bin/` on a merged-/usr host (`/bin -> usr/bin`), else `/bin/`.
                path: e7_cli::resolve::rule_path("/bin/").path,
                qual: e7_proto::qual::Qualifiers::NONE,
            },
            Rule {
                action: Action::Block,
                prot: 6,
                path: "/usr/bin/".into(),
                qual: e7_proto::qual::Qualifiers::NONE,
            },
        ]
    );
}

#[test]
fn one_shot_commands_check_syntax_before_connecting() {
    for args in [
        &["allow", "udp"][..],
        &["set", "mode", "banana"],
        &["get", "colour"],
        &["clear", "udp"],
        &["allow", "foo", "/x"],
        &["allow", "a", "b", "c"],
        &["query", "neither"],
        &["frobnicate"],
    ] {
        let out = e7().args(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(2),
            "e7 {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(!out.stderr.is_empty());
    }
}

#[test]
fn quiet_run_reports_only_reading_lines() {
    use e7_cli::exec::Report;
    let script = Script::from_bytes(
        "q.e7",
        b"allow udp /x\nget mode\nset unkrule block\nquery\n",
    );
    let mut k = FakeKernel::new();
    let mut reading = Vec::new();
    script
        .run(&mut k, &mut |r: &Report| {
            if r.is_reading() {
                reading.push(r.human().unwrap());
            }
        })
        .unwrap();
    assert_eq!(
        reading,
        vec!["mode disabled", "mode disabled\nallow udp /x"]
    );
}

/// Issue 7 hole 8: a rule on a symbolic link path (merged /usr: `/bin -> usr/bin`) is sent as the
/// path the kernel sees, and `e7 check` says so (a note, exit 0).
#[test]
fn symlinked_rule_paths_are_resolved_for_run_and_noted_by_check() {
    let base = std::fs::canonicalize(std::env::temp_dir()).unwrap();
    let dir = base.join(format!("e7-scripts-symlink-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("usr/bin")).unwrap();
    std::fs::write(dir.join("usr/bin/telnet"), b"").unwrap();
    std::os::unix::fs::symlink("usr/bin", dir.join("bin")).unwrap();
    let d = dir.display();
    let text = format!("block any {d}/bin/telnet\nallow tcp {d}/bin/\nclear tcp {d}/bin/\n");
    let file = dir.join("rules.e7");
    std::fs::write(&file, &text).unwrap();

    let out = e7().arg("check").arg(&file).output().unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 3, "{stderr}");
    assert!(lines[0].starts_with(&format!("{}:1: note: `{d}/bin/telnet`", file.display())));
    assert!(
        lines[0].contains(&format!("`{d}/usr/bin/telnet`")),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(&format!("`{d}/usr/bin/`")),
        "{}",
        lines[1]
    );

    let script = Script::load(file.to_str().unwrap()).unwrap();
    let mut k = FakeKernel::new();
    script.run(&mut k, &mut |_| {}).unwrap();
    let ops = &k.log;
    assert!(ops.contains(&Op::Change(Change::AddRule {
        action: Action::Block,
        prot: ANY,
        path: format!("{d}/usr/bin/telnet"),
    })));
    assert!(ops.contains(&Op::Change(Change::Clear(ClearSpec::Rule {
        prot: 6,
        path: format!("{d}/usr/bin/"),
    }))));
    let _ = std::fs::remove_dir_all(&dir);
}
