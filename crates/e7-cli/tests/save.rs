//! `e7 save` → `e7 run` restores exactly; the save is atomic.

use e7_cli::fake::FakeKernel;
use e7_cli::grammar::Action;
use e7_cli::kernel::{Change, Kernel, Op, Rule};
use e7_cli::save::{self, write_atomic_with};
use e7_cli::script::Script;
use e7_proto::{Const, Flag, ValueClass};
use std::io::Write;

const ANY: u32 = 0xFFFF_FFFF;

fn populated() -> FakeKernel {
    let mut k = FakeKernel::new();
    let rules = [
        (Action::Allow, 17, "/usr/bin/ping"),
        (Action::Block, ANY, "/opt/my app/bin/run"),
        (Action::Allow, 6, "/usr/lib/firefox/firefox"),
        (Action::Allow, 58, "/usr/bin/"),
        (Action::Block, 1, "/odd/\"quoted\" \\ path#1"),
        (Action::Allow, ANY, "/#start"),
    ];
    for (action, prot, path) in rules {
        k.call(&Op::Change(Change::AddRule {
            action,
            prot,
            path: path.into(),
        }))
        .unwrap();
    }
    for (flag, value) in [
        (Flag::Mode, Const::Enabled.value()),
        (Flag::UnkRule, Const::Block.value()),
        (Flag::Squelch, Const::Disabled.value()),
        (Flag::Accepts, Const::Enabled.value()),
        (Flag::LongPath, Const::Allow.value()),
    ] {
        k.call(&Op::Change(Change::Set { flag, value })).unwrap();
    }
    k
}

fn settable(k: &FakeKernel) -> Vec<(Flag, u32)> {
    Flag::ALL
        .iter()
        .filter(|f| f.class() != ValueClass::ReadOnly)
        .map(|f| (*f, k.flag(*f)))
        .collect()
}

#[test]
fn save_then_run_restores_rules_in_order_and_flags() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.e7");
    let mut source = populated();
    let snap = save::save(&mut source, &file).unwrap();
    assert_eq!(snap.rules.rules.len(), 6);

    // The target starts out different: other rules, other flags.
    let mut target = FakeKernel::new();
    target
        .call(&Op::Change(Change::AddRule {
            action: Action::Block,
            prot: 6,
            path: "/usr/bin/ping".into(),
        }))
        .unwrap();
    target
        .call(&Op::Change(Change::Set {
            flag: Flag::Drops,
            value: Const::Enabled.value(),
        }))
        .unwrap();

    let script = Script::load(file.to_str().unwrap()).unwrap();
    assert_eq!(script.check(), vec![], "the saved script must check clean");
    script.run(&mut target, &mut |_| {}).unwrap();
    assert_eq!(target.rules, source.rules);
    assert_eq!(settable(&target), settable(&source));

    // `mode` is the very last request, after every rule.
    assert_eq!(
        target.log.last(),
        Some(&Op::Change(Change::Set {
            flag: Flag::Mode,
            value: Const::Enabled.value()
        }))
    );

    // Saving the restored kernel gives the same file, byte for byte.
    let again = dir.path().join("again.e7");
    save::save(&mut target, &again).unwrap();
    assert_eq!(
        std::fs::read(&file).unwrap(),
        std::fs::read(&again).unwrap()
    );
}

#[test]
fn saved_text_is_readable() {
    let mut k = FakeKernel::new();
    k.call(&Op::Change(Change::AddRule {
        action: Action::Allow,
        prot: 17,
        path: "/usr/bin/ping".into(),
    }))
    .unwrap();
    let text = save::render(&save::snapshot(&mut k).unwrap());
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with('#'));
    assert_eq!(lines[1], "clear");
    assert_eq!(lines[2], "allow udp /usr/bin/ping");
    assert!(lines.contains(&"set unkrule allow"));
    assert!(!text.contains("uptime"), "read-only flags are not saved");
    assert_eq!(lines.last(), Some(&"set mode disabled"));
}

#[test]
fn failed_write_leaves_the_old_file_intact_and_no_temp_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.e7");
    std::fs::write(&file, "allow udp /usr/bin/ping\n").unwrap();
    let err = write_atomic_with(&file, |f| {
        f.write_all(b"clear\nallow tcp /half")?;
        Err(std::io::Error::other("disk on fire"))
    })
    .unwrap_err();
    assert_eq!(err.to_string(), "disk on fire");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        "allow udp /usr/bin/ping\n"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("rules.e7")]);
}

#[test]
fn kernel_failure_during_save_leaves_the_old_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.e7");
    std::fs::write(&file, "old\n").unwrap();
    let mut k = populated();
    k.fail_at = Some(k.log.len() + 3); // a GET in the middle of the snapshot
    let e = save::save(&mut k, &file).unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "old\n");
}

#[test]
fn save_keeps_permissions_and_reports_unwritable_targets() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("rules.e7");
    std::fs::write(&file, "old\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let mut k = populated();
    save::save(&mut k, &file).unwrap();
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let e = save::save(&mut k, &dir.path().join("missing/dir/rules.e7")).unwrap_err();
    let m = e.to_string();
    assert!(
        m.contains("cannot save to") && m.contains("missing/dir/rules.e7"),
        "{m}"
    );
}

#[test]
fn rules_compare_with_the_fake_kernel_state() {
    // Guard for the round-trip test above: the fixture really contains awkward paths.
    let k = populated();
    assert!(k.rules.contains(&Rule {
        action: Action::Block,
        prot: 1,
        path: "/odd/\"quoted\" \\ path#1".into(),
        qual: e7_proto::qual::Qualifiers::NONE,
    }));
}
