//! The property every input must satisfy, shared by the fuzz target and the corpus replay test.
//!
//! `fuzz/fuzz_targets/nla_parse.rs` (nightly, libFuzzer) and `tests/fuzz_corpus.rs` (stable, in
//! CI) both call [`check_input`], so the corpus is replayed through exactly the code the fuzzer
//! exercised. The function treats the input as an attribute block and
//!
//! 1. walks it (and nested payloads, to a bounded depth) with [`AttrIter`] and every typed
//!    accessor;
//! 2. parses it as a request and as a reply for every command byte 0..=255;
//! 3. for every successful parse, emits the value again and checks that parsing the emitted bytes
//!    gives the same value (QUERY replies: the same mode, count and rules, in both shapes).
//!
//! Panics (there must be none) and a returned [`Mismatch`] are both failures.
//!
//! This is test machinery for user space: it uses 8 KiB stack buffers and must not be called
//! from the kernel.

use core::fmt;

use crate::msg::{
    emit_error, emit_get_reply, emit_query_chain, emit_query_dump, parse_reply, parse_request,
    QueryReply, Reply,
};
use crate::nla::{AttrIter, Writer};
use crate::schema::{Attr, MAX_PATH_LEN};

/// A value that did not survive emit → parse unchanged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The command byte being checked.
    pub command: u8,
    /// Which round trip failed.
    pub what: &'static str,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "round trip failed for command {}: {}",
            self.command, self.what
        )
    }
}

impl core::error::Error for Mismatch {}

/// Size of the scratch buffer used for re-emission; larger outputs are skipped.
const SCRATCH: usize = 8192;
/// Nesting depth explored by the raw walk.
const MAX_DEPTH: usize = 16;

fn walk(buf: &[u8], depth: usize) {
    for attr in AttrIter::new(buf) {
        let Ok(attr) = attr else { return };
        let _ = attr.u32();
        let _ = attr.nul_str(MAX_PATH_LEN);
        let _ = attr.str(MAX_PATH_LEN);
        let _ = attr.attr();
        if depth < MAX_DEPTH && (attr.nested || attr.kind == Attr::Nested.value()) {
            walk(attr.payload, depth + 1);
        }
    }
}

fn same_query(a: &QueryReply<'_>, b: &QueryReply<'_>) -> bool {
    a.mode == b.mode
        && a.count == b.count
        && a.rules_in_message() == b.rules_in_message()
        && a.rules().eq(b.rules())
}

fn check_reply(cmd: u8, reply: &Reply<'_>) -> Result<(), Mismatch> {
    let mut buf = [0u8; SCRATCH];
    let mut w = Writer::new(&mut buf);
    let fail = |what| Mismatch { command: cmd, what };
    let emitted = match *reply {
        Reply::Get { flag, value } => emit_get_reply(&mut w, flag, value),
        Reply::Event {
            state,
            prot,
            path,
            peer,
        } => crate::msg::emit_event_peer(&mut w, state, prot, path, &peer),
        Reply::Error { errno, message } => emit_error(&mut w, errno, message),
        Reply::Disconnect => Ok(()),
        Reply::Stats(st) => st
            .entries()
            .try_for_each(|e| crate::stats::emit_entry(&mut w, &e)),
        Reply::Query(q) => {
            let mut r = Ok(());
            if let Some(m) = q.mode {
                r = r.and_then(|()| w.put_u32(Attr::State.value(), m));
            }
            if let Some(c) = q.count {
                r = r.and_then(|()| w.put_u32(Attr::Count.value(), c));
            }
            r.and_then(|()| emit_query_dump(&mut w, None, q.rules()).map(|_| ()))
        }
    };
    if emitted.is_err() {
        // Did not fit the scratch buffer: nothing to compare.
        return Ok(());
    }
    let again = parse_reply(reply.command().value(), w.as_bytes())
        .map_err(|_| fail("re-emitted reply does not parse"))?;
    let same = match (reply, &again) {
        (Reply::Query(a), Reply::Query(b)) => same_query(a, b),
        (Reply::Stats(a), Reply::Stats(b)) => a.entries().eq(b.entries()),
        _ => *reply == again,
    };
    if !same {
        return Err(fail("re-emitted reply differs"));
    }
    // The chain shape must carry the same rules.
    if let Reply::Query(q) = reply {
        let mut buf2 = [0u8; SCRATCH];
        let mut w2 = Writer::new(&mut buf2);
        let total = q.count.unwrap_or(0);
        if let Ok(progress) = emit_query_chain(&mut w2, q.mode.unwrap_or(0), q.rules(), total) {
            let again = parse_reply(cmd, w2.as_bytes())
                .map_err(|_| fail("chain emission does not parse"))?;
            let Reply::Query(c) = again else {
                return Err(fail("chain emission is not a QUERY"));
            };
            if !c.rules().eq(q.rules().take(progress.written)) {
                return Err(fail("chain emission carries other rules"));
            }
            if progress.done != (progress.written == q.rules_in_message()) {
                return Err(fail("chain emission progress is inconsistent"));
            }
        }
    }
    Ok(())
}

/// Runs every parser on `data` and checks emit → parse round trips. See the module docs.
pub fn check_input(data: &[u8]) -> Result<(), Mismatch> {
    walk(data, 0);
    for cmd in 0..=u8::MAX {
        if let Ok(req) = parse_request(cmd, data) {
            let mut buf = [0u8; SCRATCH];
            let mut w = Writer::new(&mut buf);
            if req.emit(&mut w).is_ok() {
                let again =
                    parse_request(req.command().value(), w.as_bytes()).map_err(|_| Mismatch {
                        command: cmd,
                        what: "re-emitted request does not parse",
                    })?;
                if again != req {
                    return Err(Mismatch {
                        command: cmd,
                        what: "re-emitted request differs",
                    });
                }
            }
        }
        if let Ok(reply) = parse_reply(cmd, data) {
            check_reply(cmd, &reply)?;
        }
    }
    Ok(())
}
