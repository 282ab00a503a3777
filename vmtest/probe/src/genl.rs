//! A minimal generic-netlink client speaking the *original* console's QUERY, for one check only.
//!
//! The `e7` CLI asks for the rule list with a dump (NLM_F_DUMP, flat messages). The original `e7d` console
//! sends a plain QUERY and walks a chain of nested attributes (rule k's nest holds rule k+1's nest); the
//! original built that chain in one message and sent nothing once it outgrew it (bug B15). e7 splits the
//! chain over as many complete QUERY messages as needed, the last one carrying COUNT. The CLI never
//! exercises that path, so the probe does, byte by byte, with nothing but std: a netlink socket is a
//! datagram socket, and `send` without an address goes to the kernel.

use std::io;
use std::net::UdpSocket;
use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use crate::sys;

const AF_NETLINK: i32 = 16;
const NETLINK_GENERIC: i32 = 16;
const GENL_ID_CTRL: u16 = 0x10;
const CTRL_CMD_GETFAMILY: u8 = 3;
const CTRL_ATTR_FAMILY_ID: u16 = 1;
const CTRL_ATTR_FAMILY_NAME: u16 = 2;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP_INTR: u16 = 0x10;
const NLM_F_DUMP: u16 = 0x300;
const NLA_TYPE_MASK: u16 = 0x3fff;

/// The e7 family name and the attribute/command numbers used here (docs/ARCHITECTURE.md).
const FAMILY: &str = "eftirlit";
const CMD_QUERY: u8 = 7;
const CMD_DISCONNECT: u8 = 2;
const CMD_EVENT: u8 = 8;
const ATTR_NESTED: u16 = 1;
const ATTR_PATH: u16 = 2;
const ATTR_STATE: u16 = 5;
const ATTR_COUNT: u16 = 9;

/// Appends one attribute (header, payload, padding to 4 bytes).
fn put_attr(buf: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    buf.extend_from_slice(&(len as u16).to_ne_bytes());
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(payload);
    buf.resize(buf.len() + (4 - len % 4) % 4, 0);
}

/// One request: nlmsghdr + genlmsghdr (version 1) + attributes.
pub fn request(family: u16, flags: u16, seq: u32, cmd: u8, attrs: &[u8]) -> Vec<u8> {
    let len = 16 + 4 + attrs.len();
    let mut m = Vec::with_capacity(len);
    m.extend_from_slice(&(len as u32).to_ne_bytes());
    m.extend_from_slice(&family.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes());
    m.extend_from_slice(&[cmd, 1, 0, 0]);
    m.extend_from_slice(attrs);
    m
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Splits a buffer of attributes into (type without flag bits, payload); stops at the first malformed one.
pub fn attrs(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(len), Some(kind)) = (u16_at(b, 0), u16_at(b, 2)) {
        let len = usize::from(len);
        let Some(payload) = b.get(4..len) else { break };
        out.push((kind & NLA_TYPE_MASK, payload));
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    out
}

/// Splits a received datagram into netlink messages: (type, payload after the 16-byte header).
pub fn messages(mut b: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(len), Some(kind)) = (u32_at(b, 0), u16_at(b, 4)) {
        let len = len as usize;
        let Some(payload) = b.get(16..len) else { break };
        out.push((kind, payload));
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    out
}

/// Like [`messages`], with each message's flags: (type, flags, payload).
pub fn messages_flags(mut b: &[u8]) -> Vec<(u16, u16, &[u8])> {
    let mut out = Vec::new();
    while let (Some(len), Some(kind), Some(flags)) = (u32_at(b, 0), u16_at(b, 4), u16_at(b, 6)) {
        let len = len as usize;
        let Some(payload) = b.get(16..len) else { break };
        out.push((kind, flags, payload));
        b = b.get((len + 3) & !3..).unwrap_or(&[]);
    }
    out
}

/// What one compatible QUERY reply message holds.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ChainPart {
    /// Top-level STATE (the mode).
    pub mode: Option<u32>,
    /// Rules found by walking the nested chain (nests that carry a PATH).
    pub rules: usize,
    /// COUNT, present in the last message.
    pub count: Option<u32>,
}

/// Walks one QUERY message's attributes (after the genl header): mode, chain of nests, COUNT.
pub fn walk_chain(top: &[u8]) -> ChainPart {
    let mut part = ChainPart::default();
    let mut nest = None;
    for (kind, payload) in attrs(top) {
        match kind {
            ATTR_STATE => part.mode = u32_at(payload, 0),
            ATTR_COUNT => part.count = u32_at(payload, 0),
            ATTR_NESTED => nest = Some(payload),
            _ => {}
        }
    }
    // Iterative: the chain is as deep as the rules in this message.
    while let Some(level) = nest.take() {
        for (kind, payload) in attrs(level) {
            match kind {
                ATTR_PATH => part.rules += 1,
                ATTR_NESTED => nest = Some(payload),
                _ => {}
            }
        }
    }
    part
}

pub fn open() -> io::Result<UdpSocket> {
    let s = sys::datagram_socket(AF_NETLINK, sys::SOCK_RAW, NETLINK_GENERIC)?;
    s.set_read_timeout(Some(Duration::from_millis(200)))?;
    Ok(s)
}

pub fn resolve(s: &UdpSocket) -> Result<u16, String> {
    let mut name = FAMILY.as_bytes().to_vec();
    name.push(0);
    let mut a = Vec::new();
    put_attr(&mut a, CTRL_ATTR_FAMILY_NAME, &name);
    s.send(&request(
        GENL_ID_CTRL,
        NLM_F_REQUEST,
        1,
        CTRL_CMD_GETFAMILY,
        &a,
    ))
    .map_err(|e| format!("send GETFAMILY: {e}"))?;
    let mut buf = vec![0u8; 65536];
    let n = s
        .recv(&mut buf)
        .map_err(|e| format!("GETFAMILY reply: {e}"))?;
    for (kind, payload) in messages(buf.get(..n).unwrap_or(&[])) {
        if kind == NLMSG_ERROR {
            return Err(format!("family {FAMILY} not found (module not loaded?)"));
        }
        for (a, p) in attrs(payload.get(4..).unwrap_or(&[])) {
            if a == CTRL_ATTR_FAMILY_ID {
                return u16_at(p, 0).ok_or_else(|| "short FAMILY_ID".to_string());
            }
        }
    }
    Err("GETFAMILY reply without FAMILY_ID".into())
}

/// Reads datagrams from `s` into a `buf_len`-byte buffer and hands each to `each` until it
/// returns `Break`, or `deadline` passes (the socket's receive timeout paces the checks). A
/// receive error other than a timeout ends it with that error.
fn receive(
    s: &UdpSocket,
    deadline: Instant,
    buf_len: usize,
    mut each: impl FnMut(&[u8]) -> ControlFlow<()>,
) -> io::Result<()> {
    let mut buf = vec![0u8; buf_len];
    while Instant::now() < deadline {
        match s.recv(&mut buf) {
            Ok(n) => {
                if each(buf.get(..n).unwrap_or(&[])).is_break() {
                    break;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Sends one plain (non-dump) QUERY, as the original console does, and collects the chain-shaped
/// replies until the one with COUNT and the end of the reply (the ack, or NLMSG_DONE: e7 answers
/// with a reader-driven dump) have arrived (or `timeout`). `rcvbuf`: request this SO_RCVBUF first
/// (libnl's default is 32 KiB). Returns a summary line and whether the chain held exactly COUNT
/// rules and ended cleanly.
pub fn compat_query(timeout: Duration, rcvbuf: Option<u32>) -> (String, bool) {
    let s = match open() {
        Ok(s) => s,
        Err(e) => return (format!("error: netlink socket: {e}"), false),
    };
    if let Some(b) = rcvbuf {
        if let Err(e) = sys::set_rcvbuf(&s, b) {
            return (format!("error: SO_RCVBUF {b}: {e}"), false);
        }
    }
    let family = match resolve(&s) {
        Ok(f) => f,
        Err(e) => return (format!("error: {e}"), false),
    };
    if let Err(e) = s.send(&request(
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        2,
        CMD_QUERY,
        &[],
    )) {
        return (format!("error: send QUERY: {e}"), false);
    }
    let (mut msgs, mut rules, mut count, mut mode, mut acked, mut done) =
        (0usize, 0usize, None, None, None, false);
    // libnl reads one page at a time (or peeks the size); a page-sized buffer is the strict case.
    let received = receive(&s, Instant::now() + timeout, 1 << 17, |datagram| {
        for (kind, payload) in messages(datagram) {
            if kind == NLMSG_ERROR {
                acked = u32_at(payload, 0).map(|e| e as i32);
            } else if kind == NLMSG_DONE {
                done = true;
            } else if kind == family && payload.first() == Some(&CMD_QUERY) {
                let part = walk_chain(payload.get(4..).unwrap_or(&[]));
                msgs += 1;
                rules += part.rules;
                mode = mode.or(part.mode);
                count = count.or(part.count);
            }
        }
        if count.is_some() && (acked.is_some() || done) {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if let Err(e) = received {
        return (
            format!("error: receive after {msgs} messages, {rules} rules: {e}"),
            false,
        );
    }
    let line = format!(
        "compat-query messages={msgs} rules={rules} count={} mode={} end={}",
        count.map_or("missing".into(), |c| c.to_string()),
        mode.map_or("missing".into(), |m| format!("{m:#x}")),
        match (done, acked) {
            (true, _) => "done".to_string(),
            (false, Some(a)) => format!("ack:{a}"),
            (false, None) => "missing".to_string(),
        }
    );
    let complete = count == Some(rules as u32) && (done || acked == Some(0)) && mode.is_some();
    (line, complete)
}

/// Starts an NLM_F_DUMP QUERY (the e7 CLI's flat shape) on a fresh socket that has never read (so
/// the first message is one page), runs `edit` (another process changing the rules, or nothing)
/// before reading anything, then reads the dump to its end. Reports the rules listed, the COUNT of
/// the header, how many messages carried NLM_F_DUMP_INTR and whether NLMSG_DONE did. Exit-code
/// helper: true when the dump ended with NLMSG_DONE.
pub fn dump_edit(timeout: Duration, edit: &[String]) -> (String, bool) {
    let family = match open().map_err(|e| e.to_string()).and_then(|s| resolve(&s)) {
        Ok(f) => f,
        Err(e) => return (format!("error: {e}"), false),
    };
    let s = match open() {
        Ok(s) => s,
        Err(e) => return (format!("error: netlink socket: {e}"), false),
    };
    if let Err(e) = s.send(&request(
        family,
        NLM_F_REQUEST | NLM_F_DUMP,
        3,
        CMD_QUERY,
        &[],
    )) {
        return (format!("error: send dump: {e}"), false);
    }
    if let Some((prog, args)) = edit.split_first() {
        match std::process::Command::new(prog).args(args).status() {
            Ok(st) if st.success() => {}
            Ok(st) => return (format!("error: edit command {edit:?}: {st}"), false),
            Err(e) => return (format!("error: edit command {edit:?}: {e}"), false),
        }
    }
    let (mut msgs, mut rules, mut count, mut intr, mut done) = (0usize, 0usize, None, 0usize, None);
    let mut refused = None;
    let received = receive(&s, Instant::now() + timeout, 1 << 16, |datagram| {
        for (kind, flags, payload) in messages_flags(datagram) {
            if kind == NLMSG_DONE {
                done = Some(flags & NLM_F_DUMP_INTR != 0);
            } else if kind == NLMSG_ERROR {
                refused = Some(u32_at(payload, 0).map(|e| e as i32));
                return ControlFlow::Break(());
            } else if kind == family {
                msgs += 1;
                if flags & NLM_F_DUMP_INTR != 0 {
                    intr += 1;
                }
                for (a, p) in attrs(payload.get(4..).unwrap_or(&[])) {
                    match a & NLA_TYPE_MASK {
                        // The flat dump: one top-level nest per rule.
                        ATTR_NESTED => rules += 1,
                        ATTR_COUNT => count = count.or(u32_at(p, 0)),
                        _ => {}
                    }
                }
            }
        }
        if done.is_some() {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if let Err(e) = received {
        return (format!("error: receive: {e}"), false);
    }
    if let Some(errno) = refused {
        return (format!("error: dump refused: {errno:?}"), false);
    }
    let line = format!(
        "dump-edit messages={msgs} rules={rules} count={} intr_messages={intr} intr_done={}",
        count.map_or("missing".into(), |c| c.to_string()),
        match done {
            Some(true) => "1",
            Some(false) => "0",
            None => "missing",
        }
    );
    (line, done.is_some())
}

/// The original console's start, then its event loop: a plain QUERY read to its end (as the
/// original `e7d` does at start; it never sends SUBSCRIBE), then every EVENT and DISCONNECT the
/// kernel sends for up to `secs` seconds, each printed as it arrives (`ready`, `event STATE`,
/// `disconnect`). Ends at DISCONNECT or after `secs`. Returns false if the QUERY failed.
pub fn console(secs: u64) -> bool {
    use std::io::Write as _;
    let s = match open() {
        Ok(s) => s,
        Err(e) => {
            println!("error: netlink socket: {e}");
            return false;
        }
    };
    let family = match resolve(&s) {
        Ok(f) => f,
        Err(e) => {
            println!("error: {e}");
            return false;
        }
    };
    if let Err(e) = s.send(&request(
        family,
        NLM_F_REQUEST | NLM_F_ACK,
        2,
        CMD_QUERY,
        &[],
    )) {
        println!("error: send QUERY: {e}");
        return false;
    }
    let (mut ready, mut events, mut disconnected) = (false, 0usize, false);
    let mut out = io::stdout();
    let deadline = Instant::now() + Duration::from_secs(secs);
    let received = receive(&s, deadline, 1 << 16, |datagram| {
        for (kind, payload) in messages(datagram) {
            let cmd = payload.first().copied();
            if !ready && (kind == NLMSG_DONE || kind == NLMSG_ERROR) {
                ready = true;
                let _ = writeln!(out, "ready");
            } else if kind == family && cmd == Some(CMD_EVENT) {
                events += 1;
                let state = attrs(payload.get(4..).unwrap_or(&[]))
                    .into_iter()
                    .find(|(a, _)| *a == ATTR_STATE)
                    .and_then(|(_, p)| u32_at(p, 0));
                let _ = writeln!(out, "event {:#x} (#{events})", state.unwrap_or(0));
            } else if kind == family && cmd == Some(CMD_DISCONNECT) {
                let _ = writeln!(out, "disconnect after {events} events");
                disconnected = true;
                break;
            }
        }
        let _ = out.flush();
        if disconnected {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    });
    if let Err(e) = received {
        println!("error: receive: {e}");
        return false;
    }
    if disconnected {
        return true;
    }
    let _ = writeln!(out, "timeout after {events} events");
    ready
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nest(kind: u16, inner: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        put_attr(&mut v, kind | 0x8000, inner);
        v
    }

    /// Builds a chain of `n` rules the way the kernel does: nest 1 holds rule 1 and nest 2, ...
    fn chain(n: usize) -> Vec<u8> {
        let mut inner: Vec<u8> = Vec::new();
        for i in (0..n).rev() {
            let mut level = Vec::new();
            put_attr(&mut level, ATTR_STATE, &0xFF00u32.to_ne_bytes());
            put_attr(&mut level, 4, &17u32.to_ne_bytes());
            put_attr(&mut level, ATTR_PATH, format!("/opt/r{i}\0").as_bytes());
            level.extend_from_slice(&inner);
            inner = nest(ATTR_NESTED, &level);
        }
        inner
    }

    #[test]
    fn attributes_round_trip_with_padding() {
        let mut b = Vec::new();
        put_attr(&mut b, 2, b"abc\0\0");
        put_attr(&mut b, 3, &7u32.to_ne_bytes());
        assert_eq!(b.len() % 4, 0);
        let a = attrs(&b);
        assert_eq!(a.len(), 2);
        assert_eq!(a[0], (2, &b"abc\0\0"[..]));
        assert_eq!(u32_at(a[1].1, 0), Some(7));
        assert!(
            attrs(&[0xff, 0, 1, 0]).is_empty(),
            "a length past the end is malformed"
        );
    }

    #[test]
    fn a_chain_is_walked_to_its_end_with_mode_and_count() {
        let mut top = Vec::new();
        put_attr(&mut top, ATTR_STATE, &0xFF03u32.to_ne_bytes());
        top.extend_from_slice(&chain(300));
        put_attr(&mut top, ATTR_COUNT, &300u32.to_ne_bytes());
        assert_eq!(
            walk_chain(&top),
            ChainPart {
                mode: Some(0xFF03),
                rules: 300,
                count: Some(300)
            }
        );
        let mut empty = Vec::new();
        put_attr(&mut empty, ATTR_STATE, &0xFF04u32.to_ne_bytes());
        assert_eq!(walk_chain(&empty).rules, 0);
    }

    #[test]
    fn requests_and_messages_agree() {
        let m = request(0x1c, NLM_F_REQUEST | NLM_F_ACK, 9, CMD_QUERY, &[]);
        assert_eq!(u32_at(&m, 0), Some(20));
        let got = messages(&m);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, 0x1c);
        assert_eq!(got[0].1, &[CMD_QUERY, 1, 0, 0][..]);
    }
}
