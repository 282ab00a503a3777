//! The interactive console (`e7`, `e7 shell`).
//!
//! On a terminal it uses rustyline (line editing, history in `~/.e7_history`) and prints kernel
//! events through rustyline's external printer, which redraws the prompt and the half-typed line
//! below the event instead of corrupting it. Ctrl-C abandons the current line, Ctrl-D (or `quit`)
//! leaves; SIGTERM/SIGHUP leave too (see [`crate::signals`]); every way out sends DISCONNECT.
//! Input that arrives in bursts — pasted, typed ahead, or a serial console delivering several
//! lines per read — is kept: rustyline is built with `buffer-redux`, which carries the bytes read
//! past one line's Enter over to the next `readline` (without it they were dropped, losing whole
//! lines or the start of one; `tests/tty.rs` drives the console on a pty to prove it).
//!
//! When stdin is not a terminal, lines are read plainly and nothing is echoed or prompted, so
//! `e7 shell < script` output is just the commands' output. Errors are then reported as
//! `<stdin>:LINE: message`, processing continues (it is a console, not `e7 run`), and the exit
//! code is that of the first failing line.
//!
//! Events are printed as they arrive, at most one line per (state, protocol, program) per second
//! ([`crate::throttle`]: the rest of that second is one `(N more)` line), so a busy program cannot
//! bury the prompt.
//!
//! A line starting with `!` is the console's own, not the firewall grammar's: `!COMMAND` runs
//! COMMAND with `/bin/sh -c` and comes back, `!` alone starts an interactive shell (`$SHELL`, else
//! `/bin/sh`) until it exits — run a program and watch its events, or read a file, without leaving
//! the console. On a terminal the command gets the terminal as its own foreground process group
//! ([`crate::foreground`]), so Ctrl-C ends the command and not the console. Events keep arriving
//! during a `!COMMAND`; during an interactive shell they are held (so they do not write over its
//! prompt) and shown with their counts when it exits (`e7 monitor` in the shell shows them live).
//! It runs as whoever runs the console (no privilege is added). From a pipe its stdin is empty
//! (it cannot eat the following lines) and `!` alone is refused, as there is no terminal to give
//! it. An interactive shell's exit status is its last command's, so it is not reported.

use crate::error::{CliError, EXIT_OK};
use crate::exec;
use crate::foreground::Ended;
use crate::grammar::{self, Statement};
use crate::kernel::{Kernel, Notice, Op};
use crate::throttle::{print_notices, CONSOLE_WINDOW};
use nix::sys::signal::Signal;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Receiver;

/// The console's own lines, printed after the grammar's `help`.
pub const CONSOLE_HELP: &str = "\
console only:
  !COMMAND                        run COMMAND in /bin/sh and come back: !cat /etc/hostname
  !                               an interactive shell ($SHELL or /bin/sh); `exit` comes back";

/// Set while an interactive `!` shell (or a full-screen `!e7 top`) runs: the console's event
/// printer holds events until it exits (see [`crate::throttle`]).
static HOLD_EVENTS: AtomicBool = AtomicBool::new(false);

/// The command of a console line that starts with `!` (after optional blanks): `Some("")` for
/// `!` alone, `None` for a line of the firewall grammar.
pub fn bang(line: &str) -> Option<&str> {
    line.trim_start().strip_prefix('!').map(str::trim)
}

/// Whether a `!` command draws on the whole screen (`e7 top`): the console's event lines would
/// scribble over it, so they wait until it ends, as for an interactive shell.
pub fn takes_screen(command: &str) -> bool {
    let mut words = command.split_whitespace();
    let prog = words.next().unwrap_or("");
    (prog == "e7" || prog.ends_with("/e7")) && words.any(|w| w == "top")
}

/// Run a `!` line's command (see the module docs): `on_terminal` gives it the terminal (and its
/// own process group), else its stdin is empty and an empty command is refused. Problems and a
/// non-zero exit are reported on `err` with `where_` in front, and make the line fail.
pub fn run_bang(command: &str, on_terminal: bool, where_: &str, err: &mut dyn Write) -> Step {
    let shell;
    let argv: Vec<&std::ffi::OsStr> = if command.is_empty() {
        if !on_terminal {
            let _ = writeln!(
                err,
                "{where_}`!` alone starts an interactive shell, which needs a terminal; \
                 give the command to run: !COMMAND"
            );
            return Step::Failed(crate::error::EXIT_USAGE);
        }
        shell = std::env::var_os("SHELL")
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "/bin/sh".into());
        vec![shell.as_os_str()]
    } else {
        vec!["/bin/sh".as_ref(), "-c".as_ref(), command.as_ref()]
    };
    let what = if command.is_empty() {
        "the shell"
    } else {
        command
    };
    let interactive = command.is_empty();
    let hold = interactive || (on_terminal && takes_screen(command));
    if hold {
        HOLD_EVENTS.store(true, Ordering::Relaxed);
    }
    let result = crate::foreground::run(&argv, on_terminal);
    if hold {
        HOLD_EVENTS.store(false, Ordering::Relaxed);
    }
    match result {
        Ok(Ended::Exited(0)) => Step::Continue,
        Ok(Ended::Exited(_)) if interactive => Step::Continue,
        // Ctrl-C on the terminal: the user stopped it, as Ctrl-C abandons a console line.
        Ok(Ended::Signaled(Signal::SIGINT)) if on_terminal => {
            let _ = writeln!(err);
            Step::Continue
        }
        Ok(ended) => {
            let _ = writeln!(err, "{where_}`{what}` {ended}");
            Step::Failed(crate::error::EXIT_FAILED)
        }
        Err(e) => {
            let _ = writeln!(err, "{where_}cannot run `{what}`: {e}");
            Step::Failed(crate::error::EXIT_FAILED)
        }
    }
}

/// What one console line did.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Go on reading.
    Continue,
    /// The line failed with this exit code; go on reading.
    Failed(u8),
    /// `quit`.
    Quit,
}

/// Execute one console line, printing its output on `out` and errors on `err` (prefixed with
/// `where_`, e.g. `<stdin>:3: `).
pub fn step(
    kernel: &mut dyn Kernel,
    line: &str,
    json: bool,
    where_: &str,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Step {
    let stmt = match grammar::parse_line(line) {
        Ok(s) => s,
        Err(e) => {
            let e = CliError::from(e);
            let _ = writeln!(err, "{where_}{e}");
            return Step::Failed(e.exit_code());
        }
    };
    if stmt == Statement::Quit {
        return Step::Quit;
    }
    match exec::execute(kernel, &stmt) {
        Ok(report) => {
            if let Some(text) = report.render(json) {
                let _ = writeln!(out, "{text}");
                if stmt == Statement::Help && !json {
                    let _ = writeln!(out, "{CONSOLE_HELP}");
                }
                let _ = out.flush();
            }
            Step::Continue
        }
        Err(e) => {
            let _ = writeln!(err, "{where_}{e}");
            Step::Failed(e.exit_code())
        }
    }
}

/// Read plain lines from `input` until EOF or `quit` (the non-terminal console). Returns the exit
/// code of the first failing line, or 0.
pub fn run_plain(
    kernel: &mut dyn Kernel,
    input: &mut dyn BufRead,
    json: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> u8 {
    let mut first_failure = None;
    let mut number = 0usize;
    let mut raw = Vec::new();
    loop {
        raw.clear();
        match input.read_until(b'\n', &mut raw) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                let _ = writeln!(err, "e7: reading stdin failed: {e}");
                first_failure.get_or_insert(crate::error::EXIT_FAILED);
                break;
            }
        }
        number += 1;
        let where_ = format!("<stdin>:{number}: ");
        let line = raw.strip_suffix(b"\n").unwrap_or(&raw);
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let step = match std::str::from_utf8(line) {
            Ok(line) => match bang(line) {
                Some(command) => {
                    let _ = out.flush();
                    run_bang(command, false, &where_, err)
                }
                None => step(kernel, line, json, &where_, out, err),
            },
            Err(_) => {
                let _ = writeln!(err, "{where_}not valid UTF-8");
                Step::Failed(crate::error::EXIT_USAGE)
            }
        };
        match step {
            Step::Continue => {}
            Step::Failed(code) => {
                first_failure.get_or_insert(code);
            }
            Step::Quit => break,
        }
    }
    first_failure.unwrap_or(EXIT_OK)
}

fn history_path() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".e7_history"))
}

/// Subscribe to events and start printing them with `print`. Returns a note for the user when
/// events cannot be shown (not root), `None` when they will be.
pub fn start_events(
    kernel: &mut dyn Kernel,
    json: bool,
    print: impl FnMut(String) + Send + 'static,
) -> Option<String> {
    let note = match kernel.call(&Op::Subscribe) {
        Ok(_) => None,
        Err(CliError::PermissionDenied { .. }) => Some(
            "note: kernel events are not shown: subscribing to them needs root \
             (CAP_NET_ADMIN), as they reveal every program's network use; changes need root \
             too; query and get work"
                .to_string(),
        ),
        Err(e) => Some(format!("note: kernel events are not shown: {e}")),
    };
    if note.is_none() {
        if let Some(notices) = kernel.notices() {
            spawn_printer(notices, json, print);
        }
    }
    note
}

fn spawn_printer(
    notices: Receiver<Notice>,
    json: bool,
    mut print: impl FnMut(String) + Send + 'static,
) {
    let _ = std::thread::Builder::new()
        .name("e7-events".into())
        .spawn(move || print_notices(notices, json, CONSOLE_WINDOW, &HOLD_EVENTS, &mut print));
}

/// The console. Uses rustyline on a terminal, plain lines otherwise. Sends DISCONNECT on exit.
pub fn run(kernel: &mut dyn Kernel, json: bool) -> u8 {
    let stdin = std::io::stdin();
    let code = if stdin.is_terminal() && std::io::stdout().is_terminal() {
        run_tty(kernel, json)
    } else {
        // Events go straight to stdout, a whole line at a time.
        let _ = start_events(kernel, json, |line| {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        });
        let mut input = stdin.lock();
        run_plain(
            kernel,
            &mut input,
            json,
            &mut std::io::stdout(),
            &mut std::io::stderr(),
        )
    };
    let _ = kernel.call(&Op::Disconnect);
    code
}

fn run_tty(kernel: &mut dyn Kernel, json: bool) -> u8 {
    use rustyline::error::ReadlineError;
    use rustyline::ExternalPrinter as _;

    let mut editor = match rustyline::DefaultEditor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("e7: line editing unavailable ({e}); reading plain lines");
            let mut input = std::io::stdin().lock();
            return run_plain(
                kernel,
                &mut input,
                json,
                &mut std::io::stdout(),
                &mut std::io::stderr(),
            );
        }
    };
    let history = history_path();
    if let Some(h) = &history {
        let _ = editor.load_history(h);
    }
    let note = match editor.create_external_printer() {
        Ok(mut printer) => start_events(kernel, json, move |line| {
            let _ = printer.print(format!("{line}\n"));
        }),
        Err(_) => start_events(kernel, json, |line| println!("{line}")),
    };
    println!(
        "e7 console: type `help` for the commands, `!` for a shell, `quit` or Ctrl-D to leave"
    );
    if let Some(note) = note {
        println!("{note}");
    }
    loop {
        match editor.readline("e7> ") {
            Ok(line) => {
                if !line.trim().is_empty() {
                    let _ = editor.add_history_entry(line.as_str());
                }
                if let Some(command) = bang(&line) {
                    let _ = run_bang(command, true, "error: ", &mut std::io::stderr());
                    continue;
                }
                let step = step(
                    kernel,
                    &line,
                    json,
                    "error: ",
                    &mut std::io::stdout(),
                    &mut std::io::stderr(),
                );
                if step == Step::Quit {
                    break;
                }
            }
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("e7: reading the console failed: {e}");
                break;
            }
        }
    }
    if let Some(h) = &history {
        let _ = editor.save_history(h);
    }
    EXIT_OK
}

#[cfg(test)]
mod tests {
    use super::takes_screen;

    #[test]
    fn only_e7_top_takes_the_screen() {
        assert!(takes_screen("e7 top"));
        assert!(takes_screen("/bin/e7 --json top -i 1"));
        assert!(!takes_screen("e7 stats"));
        assert!(!takes_screen("cat /run/e7-demo/top"));
        assert!(!takes_screen(""));
    }
}
