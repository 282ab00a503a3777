//! Clean exit on SIGTERM, SIGINT and SIGHUP for the long-running commands (console, monitor).
//!
//! The original console did not handle SIGTERM, so a stopped console never sent DISCONNECT and the
//! kernel kept sending events to a dead port (E7 S10). Here the signals are blocked in every
//! thread and read from a signalfd by one thread, which sends DISCONNECT, restores the terminal
//! and exits with status 0. No async-signal-safety puzzles and no `unsafe`: the handler is ordinary
//! code on an ordinary thread.

use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::SignalFd;
use nix::sys::termios::{tcgetattr, tcsetattr, SetArg, Termios};

/// Blocked signals, ready to be handed to [`spawn_handler`].
pub struct Blocked {
    mask: SigSet,
    termios: Option<Termios>,
}

/// Block SIGTERM, SIGINT and SIGHUP in this thread and every thread spawned after it (call before
/// any thread is started), and remember the terminal settings to restore on exit.
pub fn block() -> Option<Blocked> {
    let mut mask = SigSet::empty();
    mask.add(Signal::SIGTERM);
    mask.add(Signal::SIGINT);
    mask.add(Signal::SIGHUP);
    mask.thread_block().ok()?;
    Some(Blocked {
        mask,
        termios: tcgetattr(std::io::stdin()).ok(),
    })
}

/// Start the thread that waits for one of the blocked signals, runs `on_signal` (send DISCONNECT),
/// restores the terminal and exits with status 0.
pub fn spawn_handler(blocked: Blocked, on_signal: impl FnOnce() + Send + 'static) {
    let Ok(fd) = SignalFd::new(&blocked.mask) else {
        return;
    };
    let termios = blocked.termios;
    let _ = std::thread::Builder::new()
        .name("e7-signals".into())
        .spawn(move || {
            if let Ok(Some(_)) = fd.read_signal() {
                on_signal();
                if let Some(t) = termios {
                    let _ = tcsetattr(std::io::stdin(), SetArg::TCSANOW, &t);
                }
                std::process::exit(0);
            }
        });
}
