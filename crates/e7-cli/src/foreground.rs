//! Running a console `!` command, on the terminal as a shell runs a foreground job.
//!
//! Why not `std::process::Command`: the console blocks SIGINT, SIGTERM and SIGHUP in every thread
//! and reads them from a signalfd to leave cleanly ([`crate::signals`]), and std lets a child
//! inherit the signal mask, so a `!ping` could not be stopped with Ctrl-C. And a child sharing the
//! console's process group would make Ctrl-C, meant for the child, end the console too. So the
//! child is started with `posix_spawn` with an empty signal mask, in a process group of its own,
//! and is handed the terminal's foreground (Ctrl-C and Ctrl-\ go to it alone); the console takes
//! the terminal back when it ends.
//!
//! There is no job control: a child stopped by Ctrl-Z, or by reading the terminal in the instant
//! before it was handed the terminal, is continued at once, so the console never waits on a
//! stopped child. When the console is not the terminal's foreground group (started in the
//! background) or not on a terminal, the child shares its group and gets an empty stdin.

use nix::errno::Errno;
use nix::spawn::{posix_spawnp, PosixSpawnAttr, PosixSpawnFileActions, PosixSpawnFlags};
use nix::sys::signal::{killpg, SigSet, SigmaskHow, Signal};
use nix::sys::wait::{waitpid, WaitPidFlag, WaitStatus};
use nix::unistd::{getpgrp, tcgetpgrp, tcsetpgrp, Pid};
use std::ffi::{CString, OsStr};
use std::fmt;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;

/// How a child ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ended {
    /// It exited with this status.
    Exited(i32),
    /// A signal ended it.
    Signaled(Signal),
}

impl fmt::Display for Ended {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ended::Exited(code) => write!(f, "exited with status {code}"),
            Ended::Signaled(sig) => write!(f, "was ended by {sig}"),
        }
    }
}

fn c_string(s: &OsStr) -> std::io::Result<CString> {
    CString::new(s.as_bytes()).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("{s:?} contains a NUL byte"),
        )
    })
}

/// Run `argv` (the program is looked up in `PATH` unless it has a `/`) and wait for it: on the
/// terminal (`on_terminal`) as its foreground job, else with an empty stdin; see the module docs.
pub fn run(argv: &[&OsStr], on_terminal: bool) -> std::io::Result<Ended> {
    let args = argv
        .iter()
        .map(|a| c_string(a))
        .collect::<std::io::Result<Vec<_>>>()?;
    let Some(program) = args.first() else {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no program to run",
        ));
    };
    let env = std::env::vars_os()
        .filter_map(|(k, v)| {
            let mut kv = k.as_bytes().to_vec();
            kv.push(b'=');
            kv.extend_from_slice(v.as_bytes());
            CString::new(kv).ok()
        })
        .collect::<Vec<_>>();
    let stdin = std::io::stdin();
    let ours = getpgrp();
    let foreground = on_terminal && tcgetpgrp(&stdin).is_ok_and(|pg| pg == ours);
    let mut attr = PosixSpawnAttr::init()?;
    let mut flags = PosixSpawnFlags::POSIX_SPAWN_SETSIGMASK;
    attr.set_sigmask(&SigSet::empty())?;
    if foreground {
        flags |= PosixSpawnFlags::POSIX_SPAWN_SETPGROUP;
        attr.set_pgroup(Pid::from_raw(0))?;
    }
    attr.set_flags(flags)?;
    let mut actions = PosixSpawnFileActions::init()?;
    // Kept open until the spawn is done: the child's stdin when not on the terminal.
    let devnull = if on_terminal {
        None
    } else {
        let f = std::fs::File::open("/dev/null")?;
        actions.add_dup2(f.as_raw_fd(), 0)?;
        Some(f)
    };
    let pid = posix_spawnp(program, &actions, &attr, &args, &env)?;
    drop(devnull);
    if foreground {
        let _ = tcsetpgrp(&stdin, pid);
        // It may have stopped on reading the terminal before it was handed the terminal.
        let _ = killpg(pid, Signal::SIGCONT);
    }
    let ended = loop {
        match waitpid(pid, Some(WaitPidFlag::WUNTRACED)) {
            Ok(WaitStatus::Exited(_, code)) => break Ok(Ended::Exited(code)),
            Ok(WaitStatus::Signaled(_, sig, _)) => break Ok(Ended::Signaled(sig)),
            Ok(WaitStatus::Stopped(..)) => {
                let _ = if foreground {
                    killpg(pid, Signal::SIGCONT)
                } else {
                    nix::sys::signal::kill(pid, Signal::SIGCONT)
                };
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => break Err(std::io::Error::from(e)),
        }
    };
    if foreground {
        take_terminal_back(ours);
    }
    ended
}

/// Make `ours` the terminal's foreground group again. The console is a background group at this
/// point, and a background group changing the foreground group gets SIGTTOU (which would stop
/// it) unless SIGTTOU is blocked: it is, for the moment of the call, in this thread.
fn take_terminal_back(ours: Pid) {
    let mut ttou = SigSet::empty();
    ttou.add(Signal::SIGTTOU);
    let Ok(old) = ttou.thread_swap_mask(SigmaskHow::SIG_BLOCK) else {
        return;
    };
    let _ = tcsetpgrp(std::io::stdin(), ours);
    let _ = old.thread_set_mask();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> std::io::Result<Ended> {
        run(
            &[OsStr::new("sh"), OsStr::new("-c"), OsStr::new(script)],
            false,
        )
    }

    #[test]
    fn exit_codes_and_signals_are_named() {
        assert_eq!(sh("exit 3").unwrap(), Ended::Exited(3));
        let ended = sh("kill -TERM $$").unwrap();
        assert_eq!(ended, Ended::Signaled(Signal::SIGTERM));
        assert_eq!(ended.to_string(), "was ended by SIGTERM");
        assert_eq!(Ended::Exited(1).to_string(), "exited with status 1");
        assert!(run(&[OsStr::new("/nonexistent/e7-test")], false).is_err());
    }

    /// The child starts with no signal blocked, whatever the console blocks (it blocks SIGINT,
    /// SIGTERM and SIGHUP), and with an empty stdin off the terminal.
    #[test]
    fn the_child_gets_an_empty_signal_mask_and_stdin() {
        let mut set = SigSet::empty();
        set.add(Signal::SIGTERM);
        set.add(Signal::SIGINT);
        let old = set.thread_swap_mask(SigmaskHow::SIG_BLOCK).unwrap();
        let masked = sh("grep -q '^SigBlk:[[:space:]]*0*$' /proc/self/status").unwrap();
        let stdin_empty = sh("test \"$(cat)\" = ''").unwrap();
        old.thread_set_mask().unwrap();
        assert_eq!(masked, Ended::Exited(0), "the child's SigBlk is not empty");
        assert_eq!(stdin_empty, Ended::Exited(0));
    }
}
