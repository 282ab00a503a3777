//! The errno values the module's Rust code names: ONE home, positive numbers as in
//! `include/uapi/asm-generic/errno-base.h` / `errno.h` (x86-64 and every architecture Debian
//! ships use the generic numbering for these).
//!
//! Why here: the shim returns negative errnos; only `ffi.rs` sees those raw numbers and turns them
//! into typed results ([`e7_core::ExeError`], [`SendError`](crate::kernel::SendError)), so safe
//! code compares against these names, never against literals.

/// `EPERM`: operation not permitted (the shim refuses a call outside task context).
pub const EPERM: u32 = 1;
/// `ENOENT`: no such file (a task without an executable).
pub const ENOENT: u32 = 2;
/// `ESRCH`: no such process (or the current task does not hold the socket).
pub const ESRCH: u32 = 3;
/// `EXDEV`: the executable has no verified path in the initial mount namespace and root.
pub const EXDEV: u32 = 18;
/// `EINVAL`: invalid argument.
pub const EINVAL: u32 = 22;
/// `ENAMETOOLONG`: the executable path does not fit.
pub const ENAMETOOLONG: u32 = 36;
/// `ECONNREFUSED`: nobody listens on a netlink port.
pub const ECONNREFUSED: u32 = 111;
/// `EAGAIN`: try again (a netlink receive buffer is full; an executable path the hook cannot
/// verify, for the refill work to verify).
pub const EAGAIN: u32 = 11;
/// `ENOMEM`: out of memory.
pub const ENOMEM: u32 = 12;
/// `ENOSPC`: no space left (the rule table is full).
pub const ENOSPC: u32 = 28;
/// `EMSGSIZE`: the message does not fit (a reply that cannot hold even one rule).
pub const EMSGSIZE: u32 = 90;
/// Operation not supported.
pub const EOPNOTSUPP: u32 = 95;
