//! Errors of the `e7` command and the exit codes they map to.
//!
//! Every failure the user can see goes through [`CliError`], so that the exit code contract of
//! docs/ARCHITECTURE.md ("VM tests") is decided in exactly one place ([`CliError::exit_code`]):
//!
//! | code | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | the kernel refused the request, or the operation failed (I/O, timeout, bad reply) |
//! | 2 | usage or syntax error (bad command line or script line) |
//! | 3 | the e7 module is not loaded (generic netlink family `eftirlit` not found) |
//! | 4 | permission denied (the command needs CAP_NET_ADMIN, i.e. root) |

use std::fmt;

/// Exit code: success.
pub const EXIT_OK: u8 = 0;
/// Exit code: the kernel refused the request or the operation failed.
pub const EXIT_FAILED: u8 = 1;
/// Exit code: usage or syntax error.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the e7 kernel module is not loaded.
pub const EXIT_NOT_LOADED: u8 = 3;
/// Exit code: permission denied (needs CAP_NET_ADMIN).
pub const EXIT_PERMISSION: u8 = 4;

/// A syntax error in one console or script line (no line number: the caller adds `FILE:LINE:`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// What was wrong and what would be right.
    pub message: String,
}

impl SyntaxError {
    /// A syntax error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        SyntaxError {
            message: message.into(),
        }
    }
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SyntaxError {}

/// Every failure of the `e7` command.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// A bad command line or script line.
    #[error("{0}")]
    Syntax(#[from] SyntaxError),
    /// The generic netlink family `eftirlit` does not exist: the module is not loaded.
    #[error(
        "the e7 kernel module is not loaded (generic netlink family `eftirlit` not found); \
         load it with `sudo modprobe e7`, or try e7 in a throwaway VM with `make demo`"
    )]
    NotLoaded,
    /// The kernel answered EPERM (or EACCES). The message says why the command needs privileges
    /// — see [`permission_message`].
    #[error("{}", permission_message(command))]
    PermissionDenied {
        /// The console command that was refused (`allow`, `set`, `monitor`...).
        command: String,
    },
    /// The kernel refused the request (negative ack or ERROR message).
    #[error("the kernel refused `{command}`: {reason}")]
    Refused {
        /// The console command that was refused.
        command: String,
        /// Positive errno from the kernel.
        errno: i32,
        /// Human-readable reason: the kernel's extack/ERROR message, else the errno text.
        reason: String,
    },
    /// Any other failure: I/O, a timeout, a malformed reply.
    #[error("{0}")]
    Failed(String),
}

impl CliError {
    /// The process exit code for this error (see the module docs).
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Syntax(_) => EXIT_USAGE,
            CliError::NotLoaded => EXIT_NOT_LOADED,
            CliError::PermissionDenied { .. } => EXIT_PERMISSION,
            CliError::Refused { .. } | CliError::Failed(_) => EXIT_FAILED,
        }
    }

    /// A usage/syntax error with this message.
    pub fn syntax(message: impl Into<String>) -> Self {
        CliError::Syntax(SyntaxError::new(message))
    }

    /// The error for a kernel answer `errno` (positive) to `command`, with the kernel's own text when
    /// it sent one. EPERM becomes [`CliError::PermissionDenied`]; ENOSPC gets a hint about the table.
    pub fn from_errno(command: &str, errno: i32, message: Option<&str>) -> Self {
        const EPERM: i32 = 1;
        const EACCES: i32 = 13;
        const ENOSPC: i32 = 28;
        if errno == EPERM || errno == EACCES {
            return CliError::PermissionDenied {
                command: command.to_string(),
            };
        }
        let mut reason = match message {
            Some(m) if !m.is_empty() => m.to_string(),
            _ => errno_text(errno),
        };
        if errno == ENOSPC {
            reason.push_str(" (the rule table is full: remove rules with `clear` first)");
        }
        CliError::Refused {
            command: command.to_string(),
            errno,
            reason,
        }
    }
}

/// The text of [`CliError::PermissionDenied`] for the console word `command`.
///
/// The module requires CAP_NET_ADMIN (GENL_ADMIN_PERM, from e7-proto's `Command::admin`) for two
/// reasons, and the message names the right one: commands that change the firewall, and
/// subscribing to events (`monitor`, the console's event display), which change nothing but show
/// which program uses the network, for every user. Reading (`query`, `get`, `status`, `save`) needs
/// no privilege, so a refusal there is reported as coming from outside e7.
pub fn permission_message(command: &str) -> String {
    const READ_ONLY: &str = "query, get, status and save work without root";
    match command {
        "monitor" => format!(
            "permission denied: `monitor` changes nothing, but subscribing to the kernel's packet \
             events needs root (CAP_NET_ADMIN): the events reveal every program's network use, \
             whoever runs it. Run it with sudo; {READ_ONLY}"
        ),
        "stats" => format!(
            "permission denied: `stats` (and `top`) read per-program statistics, which reveal every \
             program's network use, so the module gives them to root (CAP_NET_ADMIN) only, unless \
             root enables them for everybody with `e7 set statsunpriv enabled`. Run it with sudo; \
             {READ_ONLY}"
        ),
        "allow" | "block" | "enable" | "clear" | "set" => format!(
            "permission denied: `{command}` changes the firewall and needs root (CAP_NET_ADMIN); \
             run it with sudo. {READ_ONLY}"
        ),
        other => format!(
            "permission denied: the kernel refused `{other}` for this user, although e7 lets \
             anyone do it; something outside e7 (a security module, a container's restrictions) \
             is blocking this process's generic netlink access"
        ),
    }
}

/// The C library's text for a positive errno, without Rust's " (os error N)" suffix.
pub fn errno_text(errno: i32) -> String {
    let text = std::io::Error::from_raw_os_error(errno).to_string();
    match text.find(" (os error") {
        Some(cut) => format!("{} (errno {errno})", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(CliError::syntax("x").exit_code(), 2);
        assert_eq!(CliError::NotLoaded.exit_code(), 3);
        assert_eq!(CliError::from_errno("allow", 1, None).exit_code(), 4);
        assert_eq!(CliError::from_errno("allow", 28, None).exit_code(), 1);
        assert_eq!(CliError::Failed("x".into()).exit_code(), 1);
    }

    #[test]
    fn messages_are_actionable() {
        let e = CliError::NotLoaded.to_string();
        assert!(e.contains("modprobe e7") && e.contains("make demo"), "{e}");
        let e = CliError::from_errno("set", 1, None).to_string();
        assert!(e.contains("CAP_NET_ADMIN") && e.contains("`set`"), "{e}");
        let e = CliError::from_errno("allow", 28, None).to_string();
        assert!(e.contains("table is full"), "{e}");
        // `monitor` changes nothing: the message says subscribing needs the capability, and why.
        let e = CliError::from_errno("monitor", 1, None);
        assert_eq!(e.exit_code(), EXIT_PERMISSION);
        let e = e.to_string();
        assert!(!e.contains("changes the firewall"), "{e}");
        assert!(
            e.contains("subscribing to the kernel's packet events needs root (CAP_NET_ADMIN)")
                && e.contains("every program's network use"),
            "{e}"
        );
        // Every admin command's word gets the "changes the firewall" text; reading words do not.
        for word in ["allow", "block", "enable", "clear", "set"] {
            let e = CliError::from_errno(word, 13, None).to_string();
            assert!(e.contains(&format!("`{word}` changes the firewall")), "{e}");
        }
        for word in ["get", "query", "disconnect"] {
            let e = CliError::from_errno(word, 1, None).to_string();
            assert!(
                e.contains(&format!("refused `{word}`")) && !e.contains("changes the firewall"),
                "{e}"
            );
        }
        let e = CliError::from_errno("allow", 22, Some("path must be absolute")).to_string();
        assert!(e.ends_with("path must be absolute"), "{e}");
        let e = CliError::from_errno("allow", 22, None).to_string();
        assert!(e.contains("Invalid argument (errno 22)"), "{e}");
    }
}
