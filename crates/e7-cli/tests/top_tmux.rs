//! `e7 top` driven like a user would: in a real terminal (a detached tmux session of 80×24, what
//! an ssh session typically gets), keys sent with `tmux send-keys`, the screen read with
//! `tmux capture-pane`. The kernel is the fake one (`examples/fake_top.rs`), told what each
//! program sends, so the counts on the screen are checked against the senders' own tally.
//!
//! Needs tmux (`scripts/deps.sh` installs it; the test fails with that hint without it).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    sock: PathBuf,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.sock)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    fn screen(&self) -> String {
        String::from_utf8_lossy(&self.cmd(&["capture-pane", "-p", "-t", "top"]).stdout).into_owned()
    }

    /// Polls the screen until `ok` holds (20 s at most); returns that screen.
    fn wait_for(&self, what: &str, ok: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if ok(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(20) {
                panic!("timed out waiting for {what}; the screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn alive(&self) -> bool {
        self.cmd(&["has-session", "-t", "top"]).status.success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.cmd(&["kill-server"]);
    }
}

fn fake_top() -> PathBuf {
    // Integration tests run from target/<profile>/deps; `cargo test` builds the examples into
    // target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let p = exe
        .parent()
        .and_then(Path::parent)
        .unwrap()
        .join("examples/fake_top");
    assert!(p.exists(), "{} missing: run `cargo test -p e7-cli` (it builds the examples), or build it with `cargo build -p e7-cli --example fake_top`", p.display());
    p
}

/// The table row of `path` on `screen` (after the selection mark column: `>` or blank), split
/// into its columns.
fn row<'a>(screen: &'a str, path: &str) -> Option<Vec<&'a str>> {
    screen
        .lines()
        .find(|l| l.get(1..).is_some_and(|l| l.starts_with(path)))
        .map(|l| l[1..].split_whitespace().collect())
}

#[test]
fn e7_top_shows_a_senders_counts_and_its_block_key_blocks_it() {
    let v = Command::new("tmux").arg("-V").output();
    assert!(
        v.is_ok_and(|o| o.status.success()),
        "tmux is not installed: this test drives `e7 top` in tmux (scripts/deps.sh installs it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let t = Tmux {
        sock: dir.path().join("tmux.sock"),
    };
    let run = format!("{} {}", fake_top().display(), dir.path().display());
    let out = t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "top",
        "-x",
        "80",
        "-y",
        "24",
        &run,
    ]);
    assert!(out.status.success(), "{out:?}");
    // The senders' own tally: what each program sends.
    std::fs::write(
        dir.path().join("send"),
        "/opt/a/e7-probe 17 7 100\n/usr/bin/e7-probe 6 2 60\n",
    )
    .unwrap();
    // Columns: PROGRAM VERD DECIDED-BY(2 words: "no rule") PKT/s B/s PKTS DROP BYTES(2) LAST.
    let s = t.wait_for("both senders", |s| {
        row(s, "/opt/a/e7-probe").is_some() && row(s, "/usr/bin/e7-probe").is_some()
    });
    let a = row(&s, "/opt/a/e7-probe").unwrap();
    assert_eq!(&a[1..4], ["allow", "no", "rule"], "{s}");
    assert_eq!((a[6], a[7]), ("7", "0"), "7 accepted, 0 dropped:\n{s}");
    assert_eq!(row(&s, "/usr/bin/e7-probe").unwrap()[6], "2", "{s}");
    // Sorted by traffic: the busier sender is the first row, and selected.
    let first = s
        .lines()
        .skip_while(|l| !l.contains("PROGRAM"))
        .nth(1)
        .unwrap();
    assert!(
        first.starts_with(">/opt/a/e7-probe"),
        "busiest first, selected:\n{s}"
    );
    assert!(s.lines().all(|l| l.chars().count() <= 80));

    t.cmd(&["send-keys", "-t", "top", "b"]);
    t.wait_for("the e7 line the block key ran", |s| {
        s.contains("ran: e7 block any /opt/a/e7-probe")
    });
    std::fs::write(dir.path().join("send"), "/opt/a/e7-probe 17 3 100\n").unwrap();
    let s = t.wait_for("the blocked packets", |s| {
        row(s, "/opt/a/e7-probe").is_some_and(|r| r.get(8) == Some(&"3"))
    });
    let a = row(&s, "/opt/a/e7-probe").unwrap();
    // VERD block, DECIDED BY "block any …probe" (the rule, cut to the column), PKTS 10, DROP 3.
    assert_eq!(&a[1..5], ["block", "block", "any", "…probe"], "{s}");
    assert_eq!((a[7], a[8]), ("10", "3"), "{s}");

    t.cmd(&["send-keys", "-t", "top", "q"]);
    let start = Instant::now();
    while t.alive() {
        assert!(start.elapsed() < Duration::from_secs(10), "q did not quit");
        std::thread::sleep(Duration::from_millis(50));
    }
    let rules = std::fs::read_to_string(dir.path().join("rules")).unwrap();
    assert_eq!(
        rules, "block any /opt/a/e7-probe\n",
        "the key added the rule to the kernel"
    );
    let sent = std::fs::read_to_string(dir.path().join("sent")).unwrap();
    assert_eq!(sent.lines().count(), 3);
}
