//! The console on a real terminal (a pseudo-terminal), fed the way a serial console, a paste or a
//! fast typist feeds it: several lines arrive in one burst, some before the first prompt.
//!
//! This is the regression test for lost console input seen in the VM demo (a serial console):
//! rustyline read a burst into a private 1024-byte buffer and dropped that buffer when `readline`
//! returned, so everything after the first Enter in a burst vanished — whole lines, or the start
//! of a line when the burst ended mid-line. The console must execute every line, in order.
//!
//! The console needs its stdin and stdout to be a terminal, so the test runs it in a child
//! process (this test binary again, running only [`pty_console_child`]) whose stdin and stdout
//! are the slave side of a pty, with the fake kernel. The child writes the requests the fake
//! kernel received to a file; the parent compares them with what the same lines produce through
//! the plain (piped) console.

use e7_cli::fake::FakeKernel;
use e7_cli::kernel::Op;
use e7_cli::shell::run_plain;
use nix::pty::openpty;
use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Set in the child: where to write the fake kernel's request log.
const REPORT: &str = "E7_TTY_TEST_REPORT";

/// Typed before the console has printed anything (the kernel terminal buffers it).
const TYPED_AHEAD: &str = "allow udp /usr/bin/ping\nblock tcp \"/opt/my app/run\"\n";
/// Pasted in one write right after the first prompt, ending mid-line...
const PASTED: &str = "set debug enabled\nclear udp /usr/bin/ping\nget mode\nset unk";
/// ...and the rest of that line, then more, in a second burst.
const REST: &str = "rule block\nenable\nquery block\nquit\n";

/// The child side: the console on the pty with a fake kernel. Run by the tests below (with the
/// report path in the environment); on its own it is ignored.
#[test]
#[ignore = "child process of the pty tests, started by them"]
fn pty_console_child() {
    let Some(report) = std::env::var_os(REPORT) else {
        // Run directly (`--include-ignored`): nothing to do, the parent test starts it.
        return;
    };
    let mut kernel = FakeKernel::new();
    let code = e7_cli::shell::run(&mut kernel, false);
    let mut text = format!("exit {code}\n");
    for op in &kernel.log {
        text.push_str(&format!("{op:?}\n"));
    }
    std::fs::write(report, text).expect("write the report");
}

/// What the console must have sent: SUBSCRIBE, the lines' requests (as the plain console sends
/// them), DISCONNECT.
fn expected_log() -> String {
    let mut kernel = FakeKernel::new();
    let input = format!("{TYPED_AHEAD}{PASTED}{REST}");
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_plain(
        &mut kernel,
        &mut input.as_bytes(),
        false,
        &mut out,
        &mut err,
    );
    assert_eq!(code, 0, "{}", String::from_utf8_lossy(&err));
    let mut text = "exit 0\n".to_string();
    for op in [Op::Subscribe]
        .iter()
        .chain(&kernel.log)
        .chain(&[Op::Disconnect])
    {
        text.push_str(&format!("{op:?}\n"));
    }
    text
}

/// Collects everything the console writes to the terminal.
fn spawn_reader(mut master: std::fs::File) -> Arc<Mutex<Vec<u8>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        // Ends with EIO once the child has exited and no slave descriptor is left.
        while let Ok(n) = master.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    seen
}

fn transcript(seen: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&seen.lock().unwrap()).into_owned()
}

#[test]
fn console_on_a_terminal_executes_every_typed_ahead_and_pasted_line() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let pty = openpty(None, None).expect("openpty");
    let mut master = std::fs::File::from(pty.master);
    let slave_out = pty.slave.try_clone().unwrap();

    // Typed ahead: in the terminal before the console even starts.
    master.write_all(TYPED_AHEAD.as_bytes()).unwrap();

    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["pty_console_child", "--exact", "--ignored", "--quiet"])
        .env(REPORT, &report)
        .env("HOME", dir.path()) // history file
        .env("TERM", "vt220") // what a serial console announces; rustyline edits on it
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::from(slave_out))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child console");
    // The parent's slave descriptors were moved into the child's stdio and are closed now.
    let seen = spawn_reader(master.try_clone().unwrap());

    let deadline = Instant::now() + Duration::from_secs(30);
    while !transcript(&seen).contains("e7> ") {
        assert!(
            Instant::now() < deadline,
            "no prompt; terminal: {:?}",
            transcript(&seen)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Pasted: several lines in one write, the last one cut short; then the rest in one write.
    master.write_all(PASTED.as_bytes()).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    master.write_all(REST.as_bytes()).unwrap();

    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the console did not reach `quit` (input lost?); terminal: {:?}",
                transcript(&seen)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "child: {status}; stderr: {stderr}; terminal: {:?}",
        transcript(&seen)
    );
    assert!(
        !stderr.contains("error"),
        "a line was mangled: {stderr}; terminal: {:?}",
        transcript(&seen)
    );
    let got = std::fs::read_to_string(&report).expect("the child wrote its report");
    assert_eq!(
        got,
        expected_log(),
        "requests sent by the console; terminal: {:?}",
        transcript(&seen)
    );
}

/// The pid of a child of `parent` whose command name is `comm`, if one runs.
fn child_named(parent: u32, comm: &str) -> Option<u32> {
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let ppid = stat[close + 1..].split_whitespace().nth(1);
        if name == comm && ppid == Some(&parent.to_string()) {
            return Some(pid);
        }
    }
    None
}

/// `!COMMAND` on a real terminal that is the console's controlling terminal (as on the VM's serial
/// console): the command's output shows, and Ctrl-C stops the command — its own foreground process
/// group — not the console, which goes on to the next line. Before the console gave the command a
/// process group of its own, the terminal's SIGINT went to the console too and ended it.
#[test]
fn bang_commands_run_and_ctrl_c_stops_only_them() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report");
    let pty = openpty(None, None).expect("openpty");
    let mut master = std::fs::File::from(pty.master);
    let slave_out = pty.slave.try_clone().unwrap();
    // `setsid -c`: a new session whose controlling terminal is stdin (the pty), so Ctrl-C typed on
    // the master is a SIGINT to the terminal's foreground process group.
    let mut child = Command::new("setsid")
        .arg("-c")
        .arg(std::env::current_exe().unwrap())
        .args(["pty_console_child", "--exact", "--ignored", "--quiet"])
        .env(REPORT, &report)
        .env("HOME", dir.path())
        .env("TERM", "vt220")
        .stdin(Stdio::from(pty.slave))
        .stdout(Stdio::from(slave_out))
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child console (setsid, util-linux)");
    let seen = spawn_reader(master.try_clone().unwrap());
    let deadline = Instant::now() + Duration::from_secs(30);
    let wait_for = |what: &str| {
        while !transcript(&seen).contains(what) {
            assert!(
                Instant::now() < deadline,
                "no {what:?}; terminal: {:?}",
                transcript(&seen)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };
    wait_for("e7> ");
    master.write_all(b"!echo bang-$((6*7))\n").unwrap();
    wait_for("bang-42");
    master.write_all(b"!exec sleep 30\n").unwrap();
    let sleeper = loop {
        if let Some(pid) = child_named(child.id(), "sleep") {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "`!exec sleep 30` did not start; terminal: {:?}",
            transcript(&seen)
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    master.write_all(b"\x03").unwrap(); // Ctrl-C
    while std::path::Path::new(&format!("/proc/{sleeper}")).exists()
        && child_named(child.id(), "sleep").is_some()
    {
        assert!(
            Instant::now() < deadline,
            "Ctrl-C did not stop the command; terminal: {:?}",
            transcript(&seen)
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    master.write_all(b"get mode\nquit\n").unwrap();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "the console did not reach `quit`; terminal: {:?}",
                transcript(&seen)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(
        status.success(),
        "the console ended with {status} (killed by the Ctrl-C meant for the command?); \
         stderr: {stderr}; terminal: {:?}",
        transcript(&seen)
    );
    assert!(!stderr.contains("error"), "{stderr}");
    let got = std::fs::read_to_string(&report).expect("the child wrote its report");
    assert!(
        got.starts_with("exit 0\n") && got.contains("Get(Mode)"),
        "the console went on after Ctrl-C and ran `get mode`: {got}"
    );
}
