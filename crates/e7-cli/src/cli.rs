//! The command line, as clap definitions. Completions and the man page are generated from these
//! same definitions (`e7 completions SHELL`, `e7 manpage`), so they cannot drift from the parser.
//!
//! The rule subcommands take their words as plain positional arguments and hand them to the
//! console grammar ([`crate::grammar::parse_tokens`]), so `e7 allow udp /usr/bin/ping` and the
//! console line `allow udp /usr/bin/ping` are one grammar with one set of error messages.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  the kernel refused the request, or the operation failed
  2  usage or syntax error (bad command line or script line)
  3  the e7 module is not loaded (sudo modprobe e7)
  4  permission denied (the command needs root / CAP_NET_ADMIN)

Examples:
  e7 allow udp /usr/bin/ping        e7 block /usr/bin/socat
  e7 set mode enabled               e7 --json query
  e7 save /etc/e7/rules.e7          e7 run /etc/e7/rules.e7
  e7 monitor --count 10 --timeout 30
  e7 stats                          e7 top";

/// Control the e7 application firewall.
#[derive(Debug, Parser)]
#[command(
    name = "e7",
    version,
    about = "Control the e7 application firewall (kernel module `e7`, netlink family `eftirlit`)",
    long_about = "Control the e7 application firewall: per-program network rules enforced by the \
                  e7 kernel module. With no command, starts the interactive console.",
    after_help = EXIT_CODES
)]
pub struct Cli {
    /// Print results as JSON (one object per line).
    #[arg(long, global = true)]
    pub json: bool,

    /// What to do (default: the interactive console).
    #[command(subcommand)]
    pub command: Option<Cmd>,
}

/// `allow`/`block` filter of `e7 query`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Filter {
    /// Only allow rules.
    Allow,
    /// Only block rules.
    Block,
}

/// Most words a rule takes on the command line: `[PROTO] PATH` and three qualifiers of two words
/// each. The grammar ([`crate::grammar`]) says what is wrong with any other count.
pub const MAX_RULE_WORDS: usize = 8;

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Cmd {
    /// Interactive console with line editing and history; reads plain lines when stdin is not a
    /// terminal (`e7 shell < script`).
    Shell,
    /// Add an allow rule: `e7 allow [PROTO] PATH [to DEST] [port PORTS] [user USER]`. With no
    /// argument: set mode disabled.
    Allow {
        /// Optional protocol (tcp, udp, icmp, icmpv6, sctp, ..., any or a number 0-255), then the absolute path
        /// of the program, or a folder ending in `/`; then optional qualifiers: `to` an address, prefix,
        /// localhost, lan, internet or any; `port` 53, 1024-65535 or 80,443; `user` a name or uid.
        #[arg(value_name = "PROTO|PATH|QUALIFIER", num_args = 0..=MAX_RULE_WORDS)]
        args: Vec<String>,
    },
    /// Add a block rule: `e7 block [PROTO] PATH [to DEST] [port PORTS] [user USER]`. With no
    /// argument: set mode block.
    Block {
        /// Optional protocol, then the path, then qualifiers (see `allow`).
        #[arg(value_name = "PROTO|PATH|QUALIFIER", num_args = 0..=MAX_RULE_WORDS)]
        args: Vec<String>,
    },
    /// Remove rules: `e7 clear` (all), `e7 clear allow|block`, `e7 clear [PROTO] PATH [QUALIFIERS]`.
    Clear {
        /// Nothing, `allow`/`block`, or an optional protocol and a path, and the rule's qualifiers.
        #[arg(value_name = "WHAT", num_args = 0..=MAX_RULE_WORDS)]
        args: Vec<String>,
    },
    /// Turn filtering on (set mode enabled).
    Enable,
    /// Turn filtering off (set mode disabled).
    Disable,
    /// Set a flag: `e7 set mode enabled`, `e7 set unkrule block`.
    Set {
        /// Flag name (the list is generated from the schema's flag rows).
        #[arg(help = format!("Flag name ({})", e7_proto::docs::SettableList))]
        flag: String,
        /// Value: enabled/disabled, allow/block, or (mode) block.
        value: String,
    },
    /// Read a flag: `e7 get mode`, `e7 get uptime`.
    Get {
        /// Flag name.
        flag: String,
    },
    /// List the mode and the rules, in precedence order.
    Query {
        /// Only rules with this action.
        #[arg(value_enum)]
        filter: Option<Filter>,
    },
    /// Module version, mode, every flag, rule count and uptime.
    Status,
    /// Per-program statistics: packets and bytes accepted and dropped, the verdict of the latest
    /// packet and what decided it, first and last seen. Needs root unless the module's
    /// `statsunpriv` flag is enabled (they show every program's network use).
    Stats,
    /// Full-screen view of the programs using the network, sorted by traffic; keys sort, filter
    /// and (root) add allow/block rules. Prints the plain `stats` table every interval when
    /// stdout is not a terminal.
    Top {
        /// Seconds between refreshes (may be fractional).
        #[arg(long, short = 'i', value_name = "SECS", default_value_t = 2.0)]
        interval: f64,
        /// Stop after this many refreshes.
        #[arg(long, short = 'n', value_name = "N")]
        count: Option<u64>,
    },
    /// Print kernel events as they arrive (needs root: events show every program's network use).
    /// Ends on Ctrl-C, after --count events or after --timeout seconds.
    Monitor {
        /// Stop after this many events (exit 0); with --timeout, fewer events exit 1.
        #[arg(long, value_name = "N")]
        count: Option<u64>,
        /// Stop after this many seconds (may be fractional).
        #[arg(long, value_name = "SECS")]
        timeout: Option<f64>,
    },
    /// Execute a rules script (`-` = stdin). The whole script is checked first; execution stops
    /// at the first line the kernel refuses, reported as FILE:LINE: message.
    Run {
        /// The script, or `-` for stdin.
        file: String,
        /// Print only what reading lines (query, get) produce, not a confirmation per change.
        #[arg(short, long)]
        quiet: bool,
    },
    /// Check scripts without a kernel (no module, no root needed): every problem is printed as
    /// FILE:LINE: message.
    Check {
        /// Scripts to check (`-` = stdin).
        #[arg(required = true)]
        files: Vec<String>,
    },
    /// Save the rules and settable flags as a script that `e7 run` restores exactly (written
    /// atomically).
    Save {
        /// Where to write, e.g. /etc/e7/rules.e7.
        file: PathBuf,
    },
    /// Print a shell completion script: `e7 completions bash > /etc/bash_completion.d/e7`.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout, or write e7.1 and one page per subcommand into --dir.
    Manpage {
        /// Write the pages into this directory instead of printing e7.1.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}
