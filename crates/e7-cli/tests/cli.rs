//! The binary's own surface: help with exit codes, version, completions and man page generated
//! from the clap definitions, JSON errors.

use std::process::Command;

fn e7(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_e7"))
        .args(args)
        .output()
        .unwrap()
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn help_documents_the_exit_codes() {
    let o = e7(&["--help"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    for needle in [
        "Exit codes:",
        "3  the e7 module is not loaded",
        "4  permission denied",
        "monitor",
        "save",
    ] {
        assert!(text.contains(needle), "--help lacks {needle:?}:\n{text}");
    }
    let o = e7(&["--version"]);
    assert!(stdout(&o).starts_with("e7 "));
}

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_e7()"),
        ("zsh", "#compdef e7"),
        ("fish", "complete -c e7"),
    ] {
        let o = e7(&["completions", shell]);
        assert_eq!(o.status.code(), Some(0), "{shell}");
        let text = stdout(&o);
        assert!(text.contains(marker), "{shell}: no {marker:?}");
        assert!(
            text.contains("monitor") && text.contains("allow"),
            "{shell}: subcommands missing"
        );
    }
    assert_eq!(e7(&["completions", "cmd.exe"]).status.code(), Some(2));
}

#[test]
fn man_pages_are_generated() {
    let o = e7(&["manpage"]);
    assert_eq!(o.status.code(), Some(0));
    let text = stdout(&o);
    assert!(
        text.contains(".TH e7 1") && text.contains("Exit codes"),
        "{text}"
    );
    let dir = tempfile::tempdir().unwrap();
    let o = e7(&["manpage", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    for page in ["e7.1", "e7-allow.1", "e7-monitor.1", "e7-save.1"] {
        assert!(dir.path().join(page).exists(), "{page} missing");
    }
}

#[test]
fn json_errors_go_to_stderr_with_the_exit_code() {
    let o = e7(&["--json", "set", "mode", "banana"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(o.stdout.is_empty());
    let err: serde_json::Value = serde_json::from_slice(&o.stderr).unwrap();
    assert_eq!(err["exit"], 2);
    assert!(err["error"].as_str().unwrap().contains("banana"));
}
