//! e7-core: the firewall engine of e7, shared by the kernel module and userspace.
//!
//! This crate decides, per outgoing packet, whether the *program* that sent it may use the network. It
//! is `#![no_std]`, allocation-free and free of `unsafe`, so the very same code runs in the kernel
//! (built for `x86_64-unknown-none`) and in tests, benches and embedders.
//!
//! # Design rules (why the code looks the way it does)
//! - **Fixed capacity, chosen at compile time** through const generics with documented defaults:
//!   [`RuleRing<1024>`](RuleRing), [`SocketCache<128, 8>`](SocketCache), [`ExeTable<256>`](ExeTable),
//!   [`ActiveCache<1024>`](ActiveCache), [`Squelch<256>`](Squelch) (one entry per executable slot and protocol class). Nothing allocates.
//! - **Nothing big on the stack.** The kernel stack is 16 KiB; every structure has a `const fn new()`
//!   so the kernel can place it in a `static`, and a `clear(&mut self)` that resets it in place.
//! - **No panics on any input.** The kernel build rejects any `core::panicking` symbol, so indexing is
//!   done with `get`, arithmetic is wrapping/saturating, capacity checks are compile-time assertions.
//! - **The packet fast path touches no path string:** a known socket maps to an [`ExeId`] and a cached
//!   decision tagged with the policy generation; only misses and policy changes look at paths.
//! - **Concurrent reads take `&self` and touch only atomics** ([`SocketCache::lookup`],
//!   [`SocketCache::store_verdict`], [`Flags`], [`Squelch::permit`]), so packets run under shared
//!   locks ([`sync`]) — or none: the socket cache's hit ([`SharedSockets::check`]) is a
//!   sequence-counted read that writes nothing shared.
//!
//! # Map
//! - [`path`]: [`ExePath`] (≤ 255 bytes, inline), table-free path hashing, ancestor directories;
//! - [`exe`]: [`ExeTable`] interning paths behind generation-checked [`ExeId`]s;
//! - [`socket`]: [`SocketCache`], the set-associative known-socket cache;
//! - [`active`]: [`ActiveCache`], inode → owner from process-table walks ([`ProcessTable`]);
//! - [`rules`]: [`RuleRing`], ordered allow/block rules with an O(1) hashed index;
//! - [`qualified`]: [`QualTable`], rules with `to`/`port`/`user` qualifiers, indexed by destination;
//! - [`flags`]: [`Flags`], atomic flag store with a policy generation;
//! - [`squelch`]: [`Squelch`], the per-(protocol, executable) event rate limiter;
//! - [`decide`](mod@decide): the pure decision function;
//! - [`host`]: [`Host`], what only the host can do for the packet path (socket facts, the
//!   sending task, executables, process walks, deferred work);
//! - [`image`]: [`ImageCache`], process image → identity;
//! - [`sync`]: [`sync::Engine`], everything behind `lock_api` read/write locks, and THE packet
//!   path [`Engine::decide_packet`] that the kernel module and userspace both run;
//! - with feature `std`: `Firewall` (a ready thread-safe engine on parking_lot) and `ProcFsTable`.
//!
//! # Example
//! ```
//! use e7_core::{decide, Action, FlagValues, Family, Identity, Mode, PacketFacts, Rule, RuleRing,
//!               ExeTable, ExePath, Verdict, PROTO_TCP};
//! let mut rules: RuleRing<16> = RuleRing::new();
//! rules.add(Rule::new(PROTO_TCP, b"/usr/bin/", Action::Block).unwrap()).unwrap();
//! let mut exes: ExeTable<16> = ExeTable::new();
//! let path = ExePath::new(b"/usr/bin/wget").unwrap();
//! let id = exes.intern_path(&path);
//! let flags = FlagValues { mode: Mode::Enabled, ..FlagValues::DEFAULT };
//! let facts = PacketFacts::new(PROTO_TCP, Family::Ipv4);
//! let rule = rules.lookup(PROTO_TCP, &path).map(|m| m.action);
//! assert_eq!(decide(&flags, &facts, &Identity::Exe(id), rule).verdict, Verdict::Drop);
//! ```
#![no_std]
#![forbid(unsafe_code)]
#![deny(missing_docs)]

#[cfg(any(test, feature = "std"))]
extern crate std;

pub mod active;
pub mod crc;
pub mod decide;
pub mod exe;
pub mod flags;
pub mod host;
pub mod image;
pub mod path;
pub mod qualified;
pub mod rules;
pub mod schema;
pub mod socket;
pub mod squelch;
pub mod sync;

#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;

#[cfg(feature = "std")]
mod firewall;
#[cfg(feature = "std")]
mod procfs;

pub use active::{
    ActiveCache, ActiveLookup, Chunk, ChunkEnd, ProcessTable, Slice, SliceEnd, SocketOwner,
    WalkCursor, WalkStats, WALK_CHUNK, WALK_SLICE_CHUNKS, WALK_SLICE_MS,
};
pub use decide::{
    decide, decide_early, Decision, Event, EventKind, Family, Identification, PacketFacts, Reason,
    Verdict,
};
pub use exe::{ExeId, ExeTable};
pub use flags::{policy_generation, Action, FlagValues, Flags, Mode};
pub use host::{
    Deferred, ExeError, Host, Packet, Peer, RouteHop, SockInfo, SockKind, Stat, TaskId,
    ROUTE_ADDRS_MAX,
};
pub use image::ImageCache;
pub use path::{ExePath, PathError, MAX_PATH_LEN};
pub use qualified::{
    decide_rule, Addr, BlocklistTable, Dest, Ports, Precedence, QualError, QualFacts, QualFull,
    QualMatch, QualRef, QualRule, QualRuleError, QualTable, Qualifiers, Scope, QUAL_PATH_BYTES,
    QUAL_RULES,
};
pub use rules::{
    AddOutcome, Full, MatchKind, Rule, RuleError, RuleMatch, RulePath, RuleRef, RuleRing,
    PATH_BYTES_PER_RULE,
};
pub use schema::{
    Const, Flag, ProtocolError, ValueClass, ValueError, PROTO_ANY, PROTO_ICMP, PROTO_ICMPV6,
    PROTO_TCP, PROTO_UDP,
};
pub use socket::{
    CachedVerdict, DestKey, DestSecret, Fast, FastIdentity, Identity, KnownSocket, Probe,
    SharedSockets, SocketCache, SocketKey, SocketsRead, SocketsWrite,
};
pub use squelch::Squelch;
pub use sync::{
    CachedHit, Decided, DeferredOutcome, DeferredReport, Engine, Outcome, PathStats, DEFERRED_BATCH,
};

#[cfg(feature = "std")]
pub use firewall::{Firewall, FirewallError, FirewallEvent, ProcHost, StdEngine, StdSock};
#[cfg(feature = "std")]
pub use procfs::ProcFsTable;
