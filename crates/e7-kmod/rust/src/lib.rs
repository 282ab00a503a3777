//! The Rust half of the e7 kernel module: a `no_std` staticlib that holds all state and makes
//! every decision; the C shim (`../e7_shim.c`) only gathers facts and performs kernel operations.
//!
//! # Why split this way
//! Debian's 6.1 kernel has no Rust support, so kernel structs, macros and inline functions are
//! reachable only from C. Everything else — modes and default actions, rules, the socket and
//! executable caches, request parsing and validation, reply and event encoding — is Rust, built
//! from the same crates the CLI and the tests use (e7-core, e7-proto), so the kernel runs the
//! tested code rather than a re-implementation of it.
//!
//! # Map
//! - [`abi`]: the `#[repr(C)]` structs shared with the shim (`../e7_rust.h`);
//! - [`errno`]: the errno values the Rust code names (one home);
//! - [`kernel`]: the [`kernel::Kernel`] trait — the services the logic needs, with their context rules;
//! - [`state`]: [`state::Module`], all state, the hook's entry into e7-core's packet path
//!   (`Engine::decide_packet`), events, subscribers, the two work items and unload;
//! - [`control`]: generic-netlink request handling (doit and the QUERY dump);
//! - [`params`]: module parameters (initial flags);
//! - [`bounded`]: the event queue, the subscriber set, the refill queue;
//! - `klock` / `ffi` (kernel build only): the BH-safe kernel rwlock behind `lock_api`, the shim's
//!   functions, the exported entry points, the `static` holding the state, the panic handler;
//! - `context` (feature `test-support` only, never in the kernel build): the context-tracking lock
//!   the host tests (`tests/host.rs`, a fake kernel) run the module with.
//!
//! # Builds
//! The crate is a `staticlib` (the kernel links it) and an `rlib` (the host tests link it). The
//! feature `test-support`, which only the crate's own dev-dependency turns on, swaps the kernel
//! half (`ffi`, `klock`, the panic handler, `no_std`) for `context`, so nothing test-only reaches
//! the kernel object.
//!
//! # No panics
//! A panic in the hook would be a fatal oops, so the code uses checked indexing and explicit
//! wrapping/saturating arithmetic; the module build fails if the linked object contains any
//! `core::panicking` symbol. Host tests run the same logic with overflow checks on.
#![cfg_attr(not(any(test, feature = "test-support")), no_std)]
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod abi;
pub mod bounded;
pub mod control;
pub mod errno;
pub mod kernel;
pub mod params;
pub mod state;

#[cfg(not(any(test, feature = "test-support")))]
mod ffi;
#[cfg(not(any(test, feature = "test-support")))]
mod klock;

#[cfg(any(test, feature = "test-support"))]
pub mod context;
