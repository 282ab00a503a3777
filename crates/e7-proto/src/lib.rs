//! e7-proto: the `eftirlit` generic-netlink schema, shared by the kernel module and the `e7` CLI.
//!
//! # Why this crate exists
//!
//! The kernel module and the CLI must agree byte for byte on the wire: command numbers, attribute
//! numbers and types, the values of constants and the meaning of every flag. The original E7 kept
//! all of that in one x-macro file (`defs.x`) included by both sides. This crate is its heir: one
//! declarative table ([`schema`]) generates the typed enums, the alias and id-name lookups, the
//! per-flag value classes, the C header the kernel shim compiles against ([`c_header`]), and the
//! per-command attribute grammar used by [`msg`]. Nothing is written down twice, so the sides
//! cannot drift apart.
//!
//! # Wire compatibility
//!
//! Every number is the original's (family `eftirlit`, version 1, commands 1–10, attributes 1–6,
//! flags 0–12, the nine constants), so the original `e7d` console keeps working against the new
//! kernel module. New entries (the SUBSCRIBE command, the ERRNO/MESSAGE/COUNT attributes, the
//! `icmpv6` constant, the `longpath`/`evlost` flags) are only ever appended.
//!
//! # Why aliases are matched by exact string
//!
//! The original mapped words such as `allow` to constants by comparing 32-bit FNV-1a hashes, so
//! any word colliding with an alias was silently accepted as that alias. Here every lookup is a
//! `match` on the exact string, and an unknown word is an error that lists the valid words.
//!
//! # Why validation lives in the schema
//!
//! The original stored any value the user sent (a mode of 7, a protocol of 0xFF00, an empty path)
//! and "fixed" it later, at packet time. Validating in the schema means the kernel rejects bad
//! requests with a clear message before anything changes, and the CLI can give the same message
//! before it even talks to the kernel, because both run exactly the same code.
//!
//! # Layout
//!
//! - [`schema`]: the table and the generated enums [`Const`], [`Command`], [`Attr`], [`Flag`].
//! - [`validate`]: value classes, rule protocols, rule paths and token parsing for the CLI.
//! - [`nla`]: a checked netlink-attribute (TLV) reader and writer that never allocates or panics.
//! - [`msg`]: validated request/reply representations, parsers and emitters.
//! - [`header`]: the generated C header ([`c_header`]).
//! - [`docs`]: the flag tables of the documentation, generated from the same rows.
//! - `fuzzing` (feature `fuzzing`, test-only): the one function the fuzz target and the corpus
//!   replay test both run.
//!
//! # Example: one request and its reply, both sides
//!
//! ```
//! use e7_proto::msg::{emit_get_reply, parse_reply, parse_request, Reply, Request};
//! use e7_proto::nla::Writer;
//! use e7_proto::{Flag, Mode};
//!
//! // CLI: `e7 set mode enabled`, validated before anything is sent.
//! let flag = e7_proto::parse_flag_token("mode")?;
//! let value = flag.parse_value("enabled")?;
//! let request = Request::Set { flag, value };
//! let mut buf = [0u8; 64];
//! let mut w = Writer::new(&mut buf);
//! request.emit(&mut w)?;
//! let (cmd, body) = (request.command().value(), w.as_bytes());
//!
//! // Kernel: the same bytes parse back into the same validated request.
//! assert_eq!(parse_request(cmd, body)?, Request::Set { flag: Flag::Mode, value: Mode::Enabled.value() });
//!
//! // Kernel: answer a GET; CLI: read the answer.
//! let mut buf = [0u8; 64];
//! let mut w = Writer::new(&mut buf);
//! emit_get_reply(&mut w, Flag::Mode, value)?;
//! assert_eq!(parse_reply(10, w.as_bytes())?, Reply::Get { flag: Flag::Mode, value: 0xFF03 });
//!
//! // Bad input gets an error that says what would be right.
//! let err = Flag::Mode.parse_value("on").unwrap_err();
//! assert_eq!(err.to_string(), "`on` is not a valid value for flag `mode`: expected one of enabled, disabled, block");
//! # Ok::<(), Box<dyn core::error::Error>>(())
//! ```
//!
//! The crate is `#![no_std]` without `alloc` and builds for `x86_64-unknown-none`. Error types
//! implement [`core::error::Error`] unconditionally; the `std` feature exists for users that want
//! to state the dependency on `std` explicitly and adds nothing else.
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(feature = "std")]
extern crate std;

pub mod docs;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod header;
pub mod msg;
pub mod nla;
pub mod qual;
pub mod schema;
pub mod stats;
pub mod validate;

pub use header::c_header;
pub use schema::{
    Action, Attr, AttrKind, Command, Const, ConstKind, EventState, Flag, Mode, Table, UnknownValue,
    ValueClass, FAMILY_NAME, FAMILY_VERSION, MAX_IP_PROTOCOL, MAX_PATH_LEN, QUAL_TEXT_LEN,
};
pub use validate::{
    is_folder_path, parse_flag_token, parse_protocol_token, protocol_name, validate_rule_path,
    validate_rule_protocol, PathError, ProtocolError, TokenError, ValueError, ValueTokenError,
};
