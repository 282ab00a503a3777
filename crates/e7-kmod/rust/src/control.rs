//! Generic-netlink requests: the `eftirlit` family's command handling.
//!
//! Why here and not in C: the shim only hands over the validated attribute bytes and a reply
//! destination; parsing (e7-proto's `parse_request`, the same code the CLI's round-trip tests
//! use), the original's attribute branches, validation, rule edits and every reply body are Rust.
//!
//! Behaviour, with the original's bugs fixed (see docs/ARCHITECTURE.md and the reference):
//! - replies (GET, QUERY, ERROR) go to the asker's port only (S2: no "connection latch");
//! - any client with CAP_NET_ADMIN that sends any command (QUERY and GET included, as the
//!   original console does at start before waiting for events) joins the bounded subscriber set
//!   and receives events; an unprivileged client never does. DISCONNECT removes only the sender's
//!   own port (S10: ECONNREFUSED removes dead ports);
//! - a refused request gets a negative errno in the ack with a static extack message, plus an
//!   ERROR message carrying ERRNO and a detailed MESSAGE for consoles that ignore extack (S7);
//! - BLOCK/ALLOW without attributes change the mode without a spurious ERROR (B2);
//! - a plain QUERY (no NLM_F_DUMP, the original console's) answers a full table in as many
//!   chain-shaped messages as needed (B15), delivered as a netlink dump ([`Handled::QueryChain`],
//!   [`Module::chain_query`]): the kernel builds the next message only when the reader has drained
//!   its receive buffer, so every rule reaches any client whose buffer holds one message (sending
//!   all 16 messages of a full table at once overflowed libnl's default 32 KiB buffer). NLM_F_DUMP
//!   gives the flat dump shape (`dump_query`);
//! - `rchngq`: after ALLOW/BLOCK/ENABLE/CLEAR, ONE QUERY message is pushed to the sender (sent at
//!   once, before the change's ack): the whole table when it fits in one message, else a notice
//!   (mode and COUNT, no rules) telling the client to ask with QUERY ([`Module::push_query`]).
#![forbid(unsafe_code)]

use core::ffi::CStr;
use core::fmt;

use e7_core::qualified::{QualRef, QualRule, QualRuleError, Qualifiers};
use e7_core::sync::RawRwLock;
use e7_core::{Rule, RuleError, RuleRef};
use e7_proto::msg::{
    emit_error, emit_error_display, emit_get_reply, emit_query_chain, emit_query_dump,
    parse_request, ClearSpec, MsgError, QueryHeader, QueryRule, Request, RuleSpec,
};
use e7_proto::nla::{WriteError, Writer};
use e7_proto::{Command, Const, Flag};

use crate::abi::E7Dest;
use crate::errno::{EINVAL, EMSGSIZE, ENOENT, ENOMEM, ENOSPC, EOPNOTSUPP};
use crate::kernel::{Kernel, Level, SendError};
use crate::state::{Module, ModuleQual, ModuleRules, QUALIFIERS_ENFORCED};

/// A refused request: the positive errno for the ack and a static extack text (the detailed
/// text went to the asker in an ERROR message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refusal {
    /// Positive errno.
    pub errno: u32,
    /// Static, NUL-terminated message for `extack->_msg` (it must outlive the request).
    pub extack: &'static CStr,
}

fn send_errno(e: SendError) -> u32 {
    match e {
        SendError::NoMemory => ENOMEM,
        SendError::Encode(_) => EMSGSIZE,
        SendError::Errno(n) => n,
    }
}

/// The extack text for a request that did not parse.
fn extack_for(e: &MsgError) -> &'static CStr {
    match e {
        MsgError::UnknownCommand(_) | MsgError::NotARequest(_) | MsgError::NotAReply(_) => {
            c"e7: the kernel does not take this command"
        }
        MsgError::Malformed(_) => c"e7: malformed attributes",
        MsgError::UnknownAttr { .. }
        | MsgError::UnexpectedAttr { .. }
        | MsgError::DuplicateAttr { .. }
        | MsgError::MissingAttr { .. } => c"e7: attributes do not fit this command",
        MsgError::Path(_) | MsgError::PathNotUtf8 => {
            c"e7: invalid rule path (absolute, at most 255 bytes, no //, /./ or /../)"
        }
        MsgError::Protocol(_) => {
            c"e7: a rule names an IP protocol 0..255 (tcp, udp, sctp, ...) or any"
        }
        MsgError::ProtocolOnlyRule { .. } => {
            c"e7: a rule needs a PATH (protocol-only rules never match)"
        }
        MsgError::ClearStateWithRule => c"e7: CLEAR takes a STATE or a rule, not both",
        MsgError::BadState { .. } => c"e7: invalid STATE (CLEAR takes allow or block)",
        MsgError::UnknownFlag(_) => c"e7: unknown flag index",
        MsgError::Value(_) => c"e7: invalid value for this flag",
        MsgError::Qualifier(_) => c"e7: invalid rule qualifier (to, port or user)",
        #[allow(unreachable_patterns)]
        _ => c"e7: invalid request",
    }
}

fn core_action(a: e7_proto::Action) -> e7_core::Action {
    match a {
        e7_proto::Action::Allow => e7_core::Action::Allow,
        e7_proto::Action::Block => e7_core::Action::Block,
    }
}

fn proto_action(a: e7_core::Action) -> e7_proto::Action {
    match a {
        e7_core::Action::Allow => e7_proto::Action::Allow,
        e7_core::Action::Block => e7_proto::Action::Block,
    }
}

/// e7-proto's flag as e7-core's (same index; the two are the same table).
fn core_flag(f: Flag) -> Option<e7_core::Flag> {
    e7_core::Flag::from_index(f.index())
}

/// A rule as the wire sees it. Rule paths came from validated (UTF-8) requests.
fn spec_of(r: RuleRef<'_>) -> Option<RuleSpec<'_>> {
    Some(RuleSpec {
        prot: r.proto(),
        path: core::str::from_utf8(r.path().as_bytes()).ok()?,
        action: proto_action(r.action()),
    })
}

/// A qualified rule as the wire sees it (its own path: the QUERY writer shows old consoles the
/// `//` text).
fn qspec_of(r: QualRef<'_>) -> Option<QueryRule<'_>> {
    Some(QueryRule {
        spec: RuleSpec {
            prot: r.proto,
            path: core::str::from_utf8(r.path).ok()?,
            action: proto_action(r.action),
        },
        qual: r.qual,
    })
}

/// Every rule of both tables in QUERY order: the plain rules, then the qualified ones.
fn all_rules<'a>(
    rules: &'a ModuleRules,
    qual: &'a ModuleQual,
) -> impl Iterator<Item = QueryRule<'a>> + 'a {
    rules
        .iter()
        .filter_map(spec_of)
        .map(QueryRule::from)
        .chain(qual.iter().filter_map(qspec_of))
}

/// Longest path a qualified rule may have: its QUERY PATH for old consoles is the path, `//` and
/// the qualifiers, cut at 255 bytes, and the path must survive the cut for `e7 save` to
/// round-trip it.
const QUAL_PATH_MAX: usize = e7_proto::MAX_PATH_LEN - 2;

/// Formats a protocol for messages: its alias when it has one.
struct Proto(u32);

impl fmt::Display for Proto {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match e7_proto::protocol_name(self.0) {
            Some(n) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

/// What the shim does once a request was handled successfully.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Nothing more: the ack follows (replies, if any, were sent).
    Done,
    /// Start the chain-shaped QUERY reply as a netlink dump over [`Module::chain_query`] (no
    /// ack: a dump ends with NLMSG_DONE).
    QueryChain,
}

impl<R: RawRwLock> Module<R> {
    /// Handles one request (process context, serialised by genl_mutex). `admin`: the sender has
    /// CAP_NET_ADMIN (the genl core already refused admin commands without it).
    pub fn doit(
        &self,
        k: &impl Kernel,
        cmd: u8,
        attrs: &[u8],
        dest: E7Dest,
        admin: bool,
    ) -> Result<Handled, Refusal> {
        let req = match parse_request(cmd, attrs) {
            Ok(r) => r,
            Err(e) => return Err(self.refuse(k, dest, e.errno(), &e, extack_for(&e))),
        };
        // Like the original, any command makes an admin client an event receiver (its console
        // sends QUERY and GET at start, then waits for events); DISCONNECT is the way out.
        if admin && req != Request::Disconnect {
            self.subscribe(dest.portid);
        }
        self.handle(k, req, dest)
    }

    fn handle(&self, k: &impl Kernel, req: Request<'_>, dest: E7Dest) -> Result<Handled, Refusal> {
        let done = |r: Result<(), Refusal>| r.map(|()| Handled::Done);
        match req {
            Request::Error => {
                let _ = k.send(Command::Error, dest, dest.portid, &mut |w| {
                    emit_error(w, None, None)
                });
                Ok(Handled::Done)
            }
            Request::Disconnect => {
                self.unsubscribe(dest.portid);
                Ok(Handled::Done)
            }
            Request::SetMode(m) => {
                if let Err(e) = self.engine.flags.set(e7_core::Flag::Mode, m.value()) {
                    return Err(self.refuse(k, dest, EINVAL, &e, c"e7: invalid mode"));
                }
                k.log(Level::Info, format_args!("mode set to {}", m.alias()));
                done(self.after_change(k, dest))
            }
            Request::AddRule(spec) => done(self.add_rule(k, dest, spec)),
            Request::AddQualified(spec, qual) => done(self.add_qualified(k, dest, spec, qual)),
            Request::Clear(spec) => done(self.clear(k, dest, spec)),
            Request::Query => Ok(Handled::QueryChain),
            Request::Set { flag, value } => {
                let Some(cf) = core_flag(flag) else {
                    return Err(self.refuse(
                        k,
                        dest,
                        EINVAL,
                        &"unknown flag",
                        c"e7: unknown flag index",
                    ));
                };
                match self.engine.flags.set(cf, value) {
                    Ok(()) => Ok(Handled::Done),
                    Err(e) => {
                        Err(self.refuse(k, dest, EINVAL, &e, c"e7: invalid value for this flag"))
                    }
                }
            }
            Request::Get { flag } => {
                let value = self.flag_value(k, flag);
                k.send(Command::Get, dest, dest.portid, &mut |w| {
                    emit_get_reply(w, flag, value)
                })
                .map(|()| Handled::Done)
                .map_err(|e| Refusal {
                    errno: send_errno(e),
                    extack: c"e7: could not send the GET reply",
                })
            }
            Request::Subscribe => Ok(Handled::Done),
            // The statistics are a dump (one entry per program, more than one message holds):
            // the shim routes NLM_F_DUMP to `dump_stats`; a plain request is refused.
            Request::Stats => Err(self.refuse(
                k,
                dest,
                EOPNOTSUPP,
                &"STATS is a dump: send it with NLM_F_DUMP (e7 stats does)",
                c"e7: STATS needs NLM_F_DUMP",
            )),
        }
    }

    /// Whether a client may read the per-program statistics: one with CAP_NET_ADMIN always,
    /// anybody else only while the `statsunpriv` flag is enabled (they reveal which programs use
    /// the network, and how much).
    pub fn stats_permitted(&self, admin: bool) -> bool {
        admin || self.engine.flags.get(e7_core::Flag::StatsUnpriv) == Const::Enabled.value()
    }

    /// One message of the STATS dump into `buf`: one NESTED entry per program with counted
    /// packets, by executable-table slot from `cursor[0]` on (`cursor[1]` = 1 once complete).
    /// Returns the bytes written (0: complete).
    ///
    /// Each entry is read on its own: the executable table's read lock is held only to copy one
    /// path, and the per-CPU sums are read without any module lock. A slot whose program changed
    /// meanwhile is reported under the id read with its path (the counters are keyed by the
    /// same id, so a new program never shows an old one's counts).
    pub fn dump_stats(
        &self,
        k: &impl Kernel,
        buf: &mut [u8],
        cursor: &mut [u64; 2],
    ) -> Result<usize, u32> {
        if cursor[1] != 0 {
            return Ok(0);
        }
        let mut w = Writer::new(buf);
        let mut path = e7_core::ExePath::EMPTY;
        let mut next = cursor[0];
        loop {
            let found = {
                let exes = self.engine.exes.read();
                let hit = exes
                    .iter()
                    .find(|(id, _)| u64::from(id.slot()) >= next)
                    .map(|(id, p)| {
                        path.clone_from(p);
                        id
                    });
                hit
            };
            let Some(id) = found else {
                cursor[1] = 1;
                break;
            };
            let after = u64::from(id.slot()).saturating_add(1);
            let Some(sum) = k.prog_read(id) else {
                next = after;
                continue;
            };
            let bits = (sum.info & 0xFF) as u8;
            let decision = e7_core::Decision::from_bits(bits);
            let state = match decision.map(|d| d.verdict) {
                Some(e7_core::Verdict::Drop) => Const::Block,
                _ => Const::Allow,
            };
            let reason = match decision.map(|d| d.reason) {
                Some(e7_core::Reason::Rule) => e7_proto::stats::Reason::Rule,
                Some(e7_core::Reason::NoRule) => e7_proto::stats::Reason::NoRule,
                Some(e7_core::Reason::NoHostPath) => e7_proto::stats::Reason::NsPath,
                Some(e7_core::Reason::PathTooLong) => e7_proto::stats::Reason::LongPath,
                _ => e7_proto::stats::Reason::Other,
            };
            let ago = |t: u64| u32::try_from(t).unwrap_or(u32::MAX);
            let entry = e7_proto::stats::Entry {
                path: path.as_bytes(),
                prot: sum.info >> 8,
                state: state.value(),
                reason,
                accept_packets: sum.packets[0],
                accept_bytes: sum.bytes[0],
                drop_packets: sum.packets[1],
                drop_bytes: sum.bytes[1],
                first_seen: ago(sum.first),
                last_seen: ago(sum.last),
            };
            match e7_proto::stats::emit_entry(&mut w, &entry) {
                Ok(()) => next = after,
                Err(WriteError::Full) if !w.is_empty() => break,
                Err(_) => return Err(EMSGSIZE),
            }
        }
        cursor[0] = next;
        Ok(w.len())
    }

    /// A flag's current value (statistics computed live).
    pub fn flag_value(&self, k: &impl Kernel, flag: Flag) -> u32 {
        let Some(cf) = core_flag(flag) else {
            return 0;
        };
        if cf == e7_core::Flag::Uptime {
            let secs = k
                .now_ms()
                .saturating_sub(self.start_ms.load(core::sync::atomic::Ordering::Relaxed))
                / 1000;
            let secs = u32::try_from(secs).unwrap_or(u32::MAX);
            self.engine.flags.set_stat(cf, secs);
            return secs;
        }
        if cf == e7_core::Flag::Qualifiers {
            return QUALIFIERS_ENFORCED;
        }
        if cf == e7_core::Flag::QPackets {
            // Counted per CPU when the kernel can (wrapping at 2^32, as the u32 flag did).
            if let Some(n) = k.stat_sum(e7_core::Stat::Packets) {
                return n as u32;
            }
        }
        self.engine.flags.get(cf)
    }

    fn add_rule(&self, k: &impl Kernel, dest: E7Dest, spec: RuleSpec<'_>) -> Result<(), Refusal> {
        let rule = match Rule::new(spec.prot, spec.path.as_bytes(), core_action(spec.action)) {
            Ok(r) => r,
            Err(e) => return Err(self.refuse(k, dest, EINVAL, &e, rule_extack(&e))),
        };
        let added = self.engine.edit_rules(|ring| {
            let full = (ring.len(), ring.capacity(), ring.path_bytes());
            ring.add(rule).map(|_| ()).map_err(|_| full)
        });
        if let Err((len, cap, (used, bytes))) = added {
            return Err(self.refuse(
                k,
                dest,
                ENOSPC,
                &format_args!(
                    "the rule table is full ({len} of {cap} rules, {used} of {bytes} bytes of rule \
                     paths): cannot add {} {} {}; clear rules first",
                    spec.action.alias(),
                    Proto(spec.prot),
                    spec.path
                ),
                c"e7: the rule table is full",
            ));
        }
        self.after_change(k, dest)
    }

    /// A qualified rule goes into the qualified table (e7-core's `QualTable`: precedence, lookup
    /// by destination); adding one that differs only in action flips it.
    fn add_qualified(
        &self,
        k: &impl Kernel,
        dest: E7Dest,
        spec: RuleSpec<'_>,
        qual: Qualifiers,
    ) -> Result<(), Refusal> {
        if spec.path.len() > QUAL_PATH_MAX {
            return Err(self.refuse(
                k,
                dest,
                EINVAL,
                &format_args!(
                    "a rule with `to`, `port` or `user` takes a path of at most {QUAL_PATH_MAX} \
                     bytes (this one has {})",
                    spec.path.len()
                ),
                c"e7: path too long for a qualified rule",
            ));
        }
        let rule = match QualRule::new(
            spec.prot,
            spec.path.as_bytes(),
            qual,
            core_action(spec.action),
        ) {
            Ok(r) => r,
            Err(e) => return Err(self.refuse(k, dest, EINVAL, &e, qual_extack(&e))),
        };
        let added = self.engine.edit_qualified(|t| {
            let full = (t.len(), t.capacity(), t.path_bytes());
            t.add(rule).map(|_| ()).map_err(|_| full)
        });
        if let Err((len, cap, (used, bytes))) = added {
            return Err(self.refuse(
                k,
                dest,
                ENOSPC,
                &format_args!(
                    "the qualified rule table is full ({len} of {cap} rules, {used} of {bytes} \
                     bytes of rule paths): cannot add {} {} {}{qual}; clear rules first",
                    spec.action.alias(),
                    Proto(spec.prot),
                    spec.path
                ),
                c"e7: the qualified rule table is full",
            ));
        }
        self.after_change(k, dest)
    }

    fn clear(&self, k: &impl Kernel, dest: E7Dest, spec: ClearSpec<'_>) -> Result<(), Refusal> {
        let found = match spec {
            ClearSpec::All => {
                self.engine.edit_rules(|r| r.clear());
                self.engine.edit_qualified(|q| q.clear());
                true
            }
            ClearSpec::Action(a) => {
                self.engine.edit_rules(|r| r.clear_action(core_action(a)));
                self.engine
                    .edit_qualified(|q| q.clear_action(core_action(a)));
                true
            }
            ClearSpec::Rule { prot, path } => {
                self.engine.edit_rules(|r| r.remove(prot, path.as_bytes()))
            }
            ClearSpec::Qualified { prot, path, qual } => self
                .engine
                .edit_qualified(|q| q.remove(prot, path.as_bytes(), &qual)),
        };
        // Like the original, the QUERY follows a CLEAR even when nothing matched.
        let sent = self.after_change(k, dest);
        if !found {
            let (prot, path, qual) = match spec {
                ClearSpec::Rule { prot, path } => (prot, path, Qualifiers::NONE),
                ClearSpec::Qualified { prot, path, qual } => (prot, path, qual),
                ClearSpec::All | ClearSpec::Action(_) => return sent,
            };
            return Err(self.refuse(
                k,
                dest,
                ENOENT,
                &format_args!("no rule for {} {}{qual} to clear", Proto(prot), path),
                c"e7: no such rule",
            ));
        }
        sent
    }

    /// `rchngq`: push a QUERY to the sender after a change.
    ///
    /// The change has been made whatever happens to this courtesy push, so the ack reports the
    /// command's outcome (success), never the push's: a client whose receive buffer is full of
    /// events would otherwise be told its ALLOW failed (and retry it) although the rule is in.
    /// A push that could not be sent is logged.
    fn after_change(&self, k: &impl Kernel, dest: E7Dest) -> Result<(), Refusal> {
        if self.engine.flags.get(e7_core::Flag::RChngQ) == Const::Enabled.value() {
            if let Err(r) = self.push_query(k, dest) {
                k.log(
                    Level::Info,
                    format_args!(
                        "rchngq: QUERY push to port {} failed (errno {}); the change was applied",
                        dest.portid, r.errno
                    ),
                );
            }
        }
        Ok(())
    }

    /// The `rchngq` push: exactly ONE chain-shaped QUERY message, sent at once with the change
    /// (its ack must follow, so it cannot be a reader-driven dump like [`Module::chain_query`]).
    ///
    /// Why one: the kernel cannot know when the client reads, and every message sent to a full
    /// receive buffer is dropped and reported to the client as ENOBUFS (an overrun that also
    /// swallowed the ack: a full table was 16 messages, more than libnl's default buffer holds).
    /// One message always reaches any buffer that holds one message, so:
    /// - a table that fits in one message (the original module's whole range) is pushed whole:
    ///   mode STATE, every rule, COUNT — as before;
    /// - a larger table is announced instead: mode STATE and COUNT, no rules (a "the rules
    ///   changed, there are COUNT of them" notice). COUNT differs from the rules in the message,
    ///   so no reader can take it for the table; a client that wants the rules asks with QUERY,
    ///   whose reply is reader-driven and delivers every rule.
    pub fn push_query(&self, k: &impl Kernel, dest: E7Dest) -> Result<(), Refusal> {
        let mode = self.engine.flags.get(e7_core::Flag::Mode);
        k.send(Command::Query, dest, dest.portid, &mut |w| {
            let rules = self.engine.rules.read();
            let qual = self.engine.qualified.read();
            let total = u32::try_from(rules.len().saturating_add(qual.len())).unwrap_or(u32::MAX);
            let start = w.len();
            match emit_query_chain(w, mode, all_rules(&rules, &qual), total) {
                Ok(p) if p.done => return Ok(()),
                Ok(_) | Err(WriteError::Full) => {}
                Err(e) => return Err(e),
            }
            // Not all in one message: the notice instead of a part of the table.
            w.rollback(start);
            emit_query_chain(w, mode, core::iter::empty::<RuleSpec<'_>>(), total).map(|_| ())
        })
        .map_err(|e| Refusal {
            errno: send_errno(e),
            extack: c"e7: could not send the QUERY reply",
        })
    }

    /// One message of the chain-shaped QUERY reply (a plain QUERY, delivered as a dump) into `buf`:
    /// as many rules as fit, the last message carrying COUNT. `cursor[0]` = rules sent,
    /// `cursor[1]` = 1 once the message with COUNT went out. Returns the bytes written (0:
    /// complete, the kernel then ends the dump with NLMSG_DONE). `generation` as in
    /// [`Module::dump_query`].
    pub fn chain_query(
        &self,
        buf: &mut [u8],
        cursor: &mut [u64; 2],
        generation: &mut u32,
    ) -> Result<usize, u32> {
        self.dump_message(buf, cursor, generation, |w, mode, rules, qual, cursor| {
            let total = u32::try_from(rules.len().saturating_add(qual.len())).unwrap_or(u32::MAX);
            let sent = usize::try_from(cursor[0]).unwrap_or(usize::MAX);
            let p = emit_query_chain(w, mode, all_rules(rules, qual).skip(sent), total)
                .map_err(|_| EMSGSIZE)?;
            if !p.done && p.written == 0 {
                // Not even one rule fits: never loop on empty messages.
                return Err(EMSGSIZE);
            }
            cursor[0] = u64::try_from(sent.saturating_add(p.written)).unwrap_or(u64::MAX);
            Ok(p.done)
        })
    }

    /// One message of the flat QUERY dump into `buf`. `cursor[0]` = rules sent + 1 (0 before the
    /// first message), `cursor[1]` = 1 once complete. Returns the bytes written (0: complete).
    ///
    /// `generation` receives the rule-table generation this message was built from: the dump is
    /// resumed by position across several requests' worth of time, so a rule edit between two
    /// messages could skip or repeat a rule; the shim feeds it to `genl_dump_check_consistent`,
    /// which flags such a dump with NLM_F_DUMP_INTR instead of returning it silently wrong.
    pub fn dump_query(
        &self,
        buf: &mut [u8],
        cursor: &mut [u64; 2],
        generation: &mut u32,
    ) -> Result<usize, u32> {
        self.dump_message(buf, cursor, generation, |w, mode, rules, qual, cursor| {
            let header = (cursor[0] == 0).then(|| QueryHeader {
                mode,
                count: u32::try_from(rules.len().saturating_add(qual.len())).unwrap_or(u32::MAX),
            });
            let sent = usize::try_from(cursor[0].saturating_sub(1)).unwrap_or(usize::MAX);
            let p = emit_query_dump(w, header, all_rules(rules, qual).skip(sent))
                .map_err(|_| EMSGSIZE)?;
            let next = sent.saturating_add(p.written).saturating_add(1);
            cursor[0] = u64::try_from(next).unwrap_or(u64::MAX);
            Ok(p.done)
        })
    }

    /// What both QUERY dumps do around their shape: read the mode and, under the rule ring's read
    /// guard, record the generation (every call, the final empty one included), stop once the
    /// cursor says complete (`cursor[1]`), let `emit` write one message and advance `cursor[0]`,
    /// and mark the cursor complete when `emit` says it wrote the last rules.
    fn dump_message(
        &self,
        buf: &mut [u8],
        cursor: &mut [u64; 2],
        generation: &mut u32,
        emit: impl FnOnce(
            &mut Writer<'_>,
            u32,
            &ModuleRules,
            &ModuleQual,
            &mut [u64; 2],
        ) -> Result<bool, u32>,
    ) -> Result<usize, u32> {
        let mode = self.engine.flags.get(e7_core::Flag::Mode);
        // The engine's lock order: the ring, then the qualified table.
        let rules = self.engine.rules.read();
        let qual = self.engine.qualified.read();
        *generation = rules.generation().wrapping_add(qual.generation());
        if cursor[1] != 0 {
            return Ok(0);
        }
        let mut w = Writer::new(buf);
        if emit(&mut w, mode, &rules, &qual, cursor)? {
            cursor[1] = 1;
        }
        Ok(w.len())
    }

    /// Sends an ERROR {ERRNO, MESSAGE} to the asker and builds the ack's refusal.
    fn refuse(
        &self,
        k: &impl Kernel,
        dest: E7Dest,
        errno: u32,
        msg: &dyn fmt::Display,
        extack: &'static CStr,
    ) -> Refusal {
        let _ = k.send(Command::Error, dest, dest.portid, &mut |w| {
            emit_error_display(w, Some(errno), msg)
        });
        Refusal { errno, extack }
    }
}

fn qual_extack(e: &QualRuleError) -> &'static CStr {
    let _ = e;
    c"e7: invalid qualified rule (see the ERROR message)"
}

fn rule_extack(e: &RuleError) -> &'static CStr {
    let _ = e;
    c"e7: invalid rule (see the ERROR message)"
}
