//! The `e7` command: console, scripts and one-shot commands for the e7 application firewall.
//!
//! The binary (`src/main.rs`) is a thin shell around this library so that everything except the
//! netlink socket itself is unit-testable:
//!
//! - [`grammar`]: the console/script line grammar (the original `e7d` grammar, bugs fixed);
//! - [`kernel`]: the small [`kernel::Kernel`] trait between the logic and the kernel;
//! - [`fake`]: an in-memory kernel for tests;
//! - [`exec`]: executing statements and rendering results (text and `--json`);
//! - [`resolve`]: rule paths resolved to the executable path the kernel sees (symbolic links);
//! - [`script`]: `e7 check` and `e7 run`, with `FILE:LINE: message` diagnostics;
//! - [`save`]: `e7 save`, an exact, atomically written restore script;
//! - [`shell`]: the interactive console; [`throttle`]: its event lines, one per program and
//!   second; [`foreground`]: its `!` commands, run as the terminal's foreground job;
//! - [`stats`]: `e7 stats` (per-program statistics as a table or JSON); [`top`]: `e7 top`;
//! - [`netlink`]: the real kernel over generic netlink (neli socket, e7-proto messages);
//! - [`cli`], [`app`]: the clap command line and the dispatch;
//! - [`error`]: errors and the exit-code contract (0 ok, 1 refused/failed, 2 usage, 3 module not
//!   loaded, 4 permission denied).
//!
//! Schema knowledge (aliases, numbers, value classes, path and protocol rules) comes from
//! e7-proto only; nothing here repeats its tables.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod app;
pub mod cli;
pub mod error;
pub mod exec;
pub mod fake;
pub mod foreground;
pub mod grammar;
pub mod kernel;
pub mod netlink;
pub mod resolve;
pub mod save;
pub mod script;
pub mod shell;
pub mod signals;
pub mod stats;
pub mod throttle;
pub mod top;
