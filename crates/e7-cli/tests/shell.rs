//! The console fed from a pipe (`e7 shell < script`): plain lines, no echo, errors with line
//! numbers, processing continues, exit code of the first failure.

use e7_cli::fake::FakeKernel;
use e7_cli::kernel::{Change, Event, Notice, Op};
use e7_cli::shell::{run_plain, start_events};
use e7_proto::Const;
use std::sync::mpsc::channel;
use std::time::Duration;

fn console(k: &mut FakeKernel, input: &str) -> (u8, String, String) {
    let mut out = Vec::new();
    let mut err = Vec::new();
    let code = run_plain(k, &mut input.as_bytes(), false, &mut out, &mut err);
    (
        code,
        String::from_utf8(out).unwrap(),
        String::from_utf8(err).unwrap(),
    )
}

#[test]
fn piped_console_prints_only_results() {
    let mut k = FakeKernel::new();
    let (code, out, err) = console(
        &mut k,
        "allow udp /usr/bin/ping\n# comment\n\nenable\nget mode\nquery\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(err, "");
    assert_eq!(
        out,
        "allow udp /usr/bin/ping\nmode enabled\nmode enabled\nmode enabled\nallow udp /usr/bin/ping\n"
    );
}

#[test]
fn errors_carry_line_numbers_and_do_not_stop_the_console() {
    let mut k = FakeKernel::new();
    let (code, out, err) = console(
        &mut k,
        "allow udp x\nallow \"/a b\nallow udp /ok\nset mode x\n",
    );
    assert_eq!(code, 2);
    assert_eq!(out, "allow udp /ok\n");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert!(lines[0].starts_with("<stdin>:1: path `x` is not absolute"));
    assert!(lines[1].starts_with("<stdin>:2: mismatched quotes"));
    assert!(lines[2].starts_with("<stdin>:4: "));
}

#[test]
fn quit_stops_reading_and_no_final_newline_is_fine() {
    let mut k = FakeKernel::new();
    let (code, out, _) = console(&mut k, "enable\nquit\nallow udp /never");
    assert_eq!(code, 0);
    assert_eq!(out, "mode enabled\n");
    assert_eq!(k.log, vec![Op::Change(Change::Enable)]);
    let (_, out, _) = console(&mut k, "get mode");
    assert_eq!(out, "mode enabled\n");
}

#[test]
fn kernel_refusal_sets_the_exit_code() {
    let mut k = FakeKernel::new();
    k.privileged = false;
    let (code, out, err) = console(&mut k, "query\nallow /x\nblock /y\n");
    assert_eq!(code, 4);
    assert_eq!(out, "mode disabled\n# no rules\n");
    assert_eq!(err.lines().count(), 2);
    assert!(err.starts_with("<stdin>:2: permission denied"));
}

#[test]
fn events_are_delivered_after_subscribing() {
    let mut k = FakeKernel::new();
    let (tx, rx) = channel();
    let note = start_events(&mut k, true, move |line| {
        let _ = tx.send(line);
    });
    assert_eq!(note, None);
    k.emit(Event {
        state: Const::Pending.value(),
        prot: 6,
        path: "/usr/bin/curl".into(),
        peer: Default::default(),
    });
    let line = rx.recv_timeout(Duration::from_secs(5)).unwrap();
    assert_eq!(
        line,
        r#"{"event":"pending","protocol":"tcp","path":"/usr/bin/curl"}"#
    );

    // Without privilege: a note, and no subscription.
    let mut k = FakeKernel::new();
    k.privileged = false;
    let note = start_events(&mut k, false, |_| {}).unwrap();
    assert!(note.contains("needs root"), "{note}");
}

#[test]
fn monitor_loop_counts_events_and_times_out() {
    let (tx, rx) = channel();
    let ev = Event {
        state: Const::Block.value(),
        prot: 17,
        path: "/x".into(),
        peer: Default::default(),
    };
    tx.send(Notice::Lost).unwrap();
    tx.send(Notice::Event(ev.clone())).unwrap();
    tx.send(Notice::Event(ev.clone())).unwrap();
    let mut k = FakeKernel::new();
    let k = &mut k;
    assert!(
        e7_cli::app::monitor_loop(&rx, k, false, Some(2), Some(Duration::from_secs(5))).is_ok()
    );
    // Only one more event: --count 2 with a timeout fails (exit 1) ...
    tx.send(Notice::Event(ev)).unwrap();
    let e = e7_cli::app::monitor_loop(&rx, k, false, Some(2), Some(Duration::from_millis(50)))
        .unwrap_err();
    assert_eq!(e.exit_code(), 1);
    assert!(e.to_string().contains("1 of 2 events"), "{e}");
    // ... and a timeout without --count is a normal end.
    assert!(
        e7_cli::app::monitor_loop(&rx, k, false, None, Some(Duration::from_millis(20))).is_ok()
    );
    // The kernel going away ends the monitor with an error.
    tx.send(Notice::Disconnected).unwrap();
    assert!(e7_cli::app::monitor_loop(&rx, k, false, None, None).is_err());
}

#[test]
fn monitor_notices_an_unload_whose_disconnect_was_lost() {
    let (tx, rx) = channel();
    let mut k = FakeKernel::new();
    k.loaded = false; // unloaded; its DISCONNECT drowned in an overflow
    tx.send(Notice::Lost).unwrap();
    let start = std::time::Instant::now();
    let e = e7_cli::app::monitor_loop(&rx, &mut k, true, None, Some(Duration::from_secs(30)))
        .unwrap_err();
    assert!(e.to_string().contains("unloaded"), "{e}");
    assert!(
        start.elapsed() < Duration::from_secs(10),
        "noticed right after the loss"
    );
    drop(tx);
}

#[test]
fn bang_lines_run_a_command_that_cannot_eat_the_script() {
    let mut k = FakeKernel::new();
    // `!cat` would read the rest of the script if it had the console's stdin; it gets an empty one.
    let (code, out, err) = console(&mut k, "!cat\n!true\nget mode\n");
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "mode disabled\n");
    assert_eq!(err, "");

    let (code, out, err) = console(&mut k, "!exit 3\n!\n ! \nget mode\n");
    assert_eq!(code, 1, "the first failing line's code: {err}");
    assert_eq!(out, "mode disabled\n", "the console went on");
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(lines.len(), 3, "{err}");
    assert_eq!(lines[0], "<stdin>:1: `exit 3` exited with status 3");
    assert!(
        lines[1].starts_with(
            "<stdin>:2: `!` alone starts an interactive shell, which needs a terminal"
        ),
        "{}",
        lines[1]
    );
    assert!(lines[2].starts_with("<stdin>:3: "), "{}", lines[2]);
    // None of it reached the firewall.
    assert!(
        k.log.iter().all(|op| matches!(op, Op::Get(_))),
        "{:?}",
        k.log
    );
}
