//! The real kernel: generic netlink family `eftirlit`, through a neli socket.
//!
//! One reader thread owns the receive side of the socket. It splits datagrams into messages
//! ([`wire`]), hands packet events and the kernel's DISCONNECT to the notice channel (so the
//! console can print them while the user types), and everything else to the reply channel, where
//! [`NetlinkKernel::call`] matches answers to its request by sequence number and command.
//!
//! Matching rules, chosen to work with both the new module and the original's habits:
//! - every request carries `NLM_F_REQUEST | NLM_F_ACK`; a negative ack is the error (with the
//!   extack text when there is one); an ERROR message (ERRNO + MESSAGE) is an error too;
//! - GET waits for the ack *and* the GET reply for that flag (the original sent the reply
//!   asynchronously, after the ack);
//! - QUERY is a dump (`NLM_F_DUMP`, flat rules, ends with `NLMSG_DONE`); if the kernel has no dump
//!   handler (EOPNOTSUPP) it is retried as a plain request, whose answer is one or more
//!   messages with a chain of nested rules, the last carrying COUNT;
//! - a dump whose messages (or `NLMSG_DONE`) carry `NLM_F_DUMP_INTR` was interrupted by a change
//!   of the rule table and may have skipped or repeated a rule: it is read to its end, thrown
//!   away and asked again from the beginning, at most [`DUMP_ATTEMPTS`] times in all, so `query`,
//!   `save`, `status` and the console only ever show a consistent listing — or fail (exit 1);
//! - anything else — in particular the QUERY the kernel pushes after a change when `rchngq` is
//!   enabled — is consumed and ignored.

pub mod decode;
pub mod wire;

use crate::error::CliError;
use crate::grammar::ClearSpec;
use crate::kernel::{Change, Kernel, Notice, Op, Outcome};
use decode::QueryPart;
use e7_proto::msg::{self, Request, RuleSpec};
use e7_proto::nla::Writer;
use e7_proto::{Command, Flag, Mode, FAMILY_NAME, FAMILY_VERSION};
use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;
use std::sync::mpsc::{
    channel, sync_channel, Receiver, RecvTimeoutError, Sender, SyncSender, TrySendError,
};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::Message;

const ENOENT: i32 = 2;
const ENOBUFS: i32 = 105;
const EOPNOTSUPP: i32 = 95;

/// How long to wait for the kernel's answer to one request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a liveness check waits for the controller (see [`Kernel::check_alive`]).
const LIVENESS_TIMEOUT: Duration = Duration::from_secs(1);
/// After the ack of a plain QUERY, how long to wait for further reply messages when the kernel
/// does not say how many rules there are (the original module never sent COUNT).
const QUERY_GRACE: Duration = Duration::from_millis(300);
/// How many times a QUERY dump is sent in all when each one comes back with `NLM_F_DUMP_INTR`
/// (the rule table changed during it). A few: tables change in bursts (a script), and each try
/// is cheap; beyond that the table is being edited continuously and no listing would stay true.
pub const DUMP_ATTEMPTS: u32 = 5;

enum Incoming {
    Msg(Message),
    Failed(String),
}

/// A connection to the e7 module.
pub struct NetlinkKernel {
    socket: Arc<NlSocket>,
    family: u16,
    seq: u32,
    replies: Receiver<Incoming>,
    notices: Option<Receiver<Notice>>,
    dump: bool,
    /// An admin command was sent: the module then counts this socket as an event subscriber, so
    /// it is told DISCONNECT when the connection is dropped.
    joined: bool,
}

/// `E7_DEBUG_NETLINK=1` traces every message received on stderr (for diagnosing a module).
fn trace_enabled() -> bool {
    std::env::var_os("E7_DEBUG_NETLINK").is_some_and(|v| v != "0")
}

/// Notices waiting for the printer, at most: beyond that the printer is behind (a flood), and
/// further events are dropped and reported as one [`Notice::Lost`] instead of growing memory.
const NOTICE_BACKLOG: usize = 4096;

/// The reader's side of the bounded notice channel.
struct NoticeSink {
    tx: SyncSender<Notice>,
    dropped: bool,
}

impl NoticeSink {
    /// Queue a notice without ever blocking the reader (which also carries the replies).
    fn push(&mut self, notice: Notice) {
        if self.dropped {
            if self.tx.try_send(Notice::Lost).is_err() {
                return;
            }
            self.dropped = false;
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(notice) {
            self.dropped = true;
        }
    }
}

fn reader(socket: Arc<NlSocket>, replies: Sender<Incoming>, mut notices: NoticeSink) {
    let trace = trace_enabled();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        match socket.recv(&mut buf[..], Msg::empty()) {
            Ok((0, _)) => continue,
            Ok((len, _)) => {
                let Some(datagram) = buf.get(..len) else {
                    continue;
                };
                for msg in wire::parse_datagram(datagram) {
                    if trace {
                        eprintln!("e7: netlink <- {msg:?}");
                    }
                    let sent = match msg {
                        Ok(Message::Genl {
                            family,
                            cmd,
                            ref attrs,
                            ..
                        }) if family != wire::GENL_ID_CTRL && cmd == Command::Event.value() => {
                            match decode::event(attrs) {
                                Ok(e) => notices.push(Notice::Event(e)),
                                Err(e) => eprintln!("e7: ignoring a malformed event: {e}"),
                            }
                            true
                        }
                        Ok(Message::Genl {
                            family,
                            cmd,
                            seq: 0,
                            ..
                        }) if family != wire::GENL_ID_CTRL
                            && cmd == Command::Disconnect.value() =>
                        {
                            notices.push(Notice::Disconnected);
                            true
                        }
                        Ok(m) => replies.send(Incoming::Msg(m)).is_ok(),
                        Err(e) => replies.send(Incoming::Failed(e)).is_ok(),
                    };
                    if !sent {
                        return;
                    }
                }
            }
            Err(e) if e.raw_os_error() == Some(ENOBUFS) => notices.push(Notice::Lost),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let text = format!("receiving from the kernel failed: {e}");
                notices.push(Notice::Failed(text.clone()));
                let _ = replies.send(Incoming::Failed(text));
                return;
            }
        }
    }
}

/// What one request waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ack,
    Get(Flag),
    QueryDump,
    QueryChain,
    /// A STATS dump: entries until NLMSG_DONE.
    StatsDump,
}

impl NetlinkKernel {
    /// Open a generic netlink socket and resolve the family `eftirlit`.
    pub fn connect() -> Result<Self, CliError> {
        let socket = NlSocket::connect(NlFamily::Generic, None, Groups::empty())
            .map_err(|e| CliError::Failed(format!("cannot open a generic netlink socket: {e}")))?;
        // Both are best effort: old kernels lack extended acks, and the default buffer only risks
        // losing events under a flood (reported as such).
        let _ = socket.enable_ext_ack(true);
        let _ = socket.set_recv_buffer_size(1 << 20);
        let socket = Arc::new(socket);
        let (reply_tx, replies) = channel();
        let (notice_tx, notices) = sync_channel(NOTICE_BACKLOG);
        let notice_tx = NoticeSink {
            tx: notice_tx,
            dropped: false,
        };
        let reader_socket = Arc::clone(&socket);
        std::thread::Builder::new()
            .name("e7-netlink".into())
            .spawn(move || reader(reader_socket, reply_tx, notice_tx))
            .map_err(|e| CliError::Failed(format!("cannot start the netlink reader: {e}")))?;
        let mut kernel = NetlinkKernel {
            socket,
            family: 0,
            seq: 0,
            replies,
            notices: Some(notices),
            dump: true,
            joined: false,
        };
        kernel.family = kernel.resolve_family()?;
        Ok(kernel)
    }

    /// A closure that sends DISCONNECT on this connection without waiting for an answer (for the
    /// signal handler, which runs on another thread while this one may be busy).
    pub fn disconnect_sender(&self) -> impl FnOnce() + Send + 'static {
        let socket = Arc::clone(&self.socket);
        let family = self.family;
        move || {
            let msg = wire::encode(
                family,
                wire::NLM_F_REQUEST,
                0,
                Command::Disconnect.value(),
                FAMILY_VERSION,
                &[],
            );
            let _ = socket.send(&msg[..], Msg::empty());
        }
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    fn send(&self, bytes: &[u8]) -> Result<(), CliError> {
        self.socket
            .send(bytes, Msg::empty())
            .map(|_| ())
            .map_err(|e| CliError::Failed(format!("sending to the kernel failed: {e}")))
    }

    fn recv(&self, deadline: Instant, what: &str) -> Result<Message, CliError> {
        let remaining = deadline.saturating_duration_since(Instant::now());
        // A steady stream of unrelated messages must not keep a request waiting forever.
        let next = if remaining.is_zero() {
            Err(RecvTimeoutError::Timeout)
        } else {
            self.replies.recv_timeout(remaining)
        };
        match next {
            Ok(Incoming::Msg(m)) => Ok(m),
            Ok(Incoming::Failed(e)) => Err(CliError::Failed(e)),
            Err(RecvTimeoutError::Timeout) => Err(CliError::Failed(format!(
                "no answer from the kernel to `{what}` within {} s",
                REPLY_TIMEOUT.as_secs()
            ))),
            Err(RecvTimeoutError::Disconnected) => Err(CliError::Failed(
                "the connection to the kernel is closed".into(),
            )),
        }
    }

    fn resolve_family(&mut self) -> Result<u16, CliError> {
        self.resolve_family_within(REPLY_TIMEOUT)
    }

    fn resolve_family_within(&mut self, timeout: Duration) -> Result<u16, CliError> {
        let seq = self.next_seq();
        if trace_enabled() {
            eprintln!("e7: netlink -> resolve family {FAMILY_NAME} seq {seq}");
        }
        self.send(&wire::encode_get_family(seq, FAMILY_NAME))?;
        let deadline = Instant::now() + timeout;
        let mut id = None;
        loop {
            match self.recv(deadline, "resolve family eftirlit")? {
                Message::Genl {
                    family: wire::GENL_ID_CTRL,
                    cmd: wire::CTRL_CMD_NEWFAMILY,
                    seq: s,
                    attrs,
                    ..
                } if s == seq => id = wire::family_id(&attrs),
                Message::Ack {
                    seq: s,
                    errno,
                    text,
                } if s == seq => {
                    return match (errno, id) {
                        (0, Some(id)) => Ok(id),
                        (0, None) => Err(CliError::Failed(
                            "the netlink controller did not give the family id of `eftirlit`"
                                .into(),
                        )),
                        (ENOENT, _) => Err(CliError::NotLoaded),
                        (errno, _) => Err(CliError::from_errno(
                            "resolve family eftirlit",
                            errno,
                            text.as_deref(),
                        )),
                    };
                }
                _ => {}
            }
        }
    }

    /// Encode `op` with e7-proto's [`Request`] into `buf`: (command, attribute length, what to
    /// wait for).
    fn encode(&self, op: &Op, buf: &mut [u8]) -> Result<(u8, usize, Expect), CliError> {
        let (request, expect) = to_request(op, self.dump);
        let mut w = Writer::new(buf);
        let fits =
            |e| CliError::Failed(format!("`{}` does not fit in one request: {e}", op.word()));
        request.emit(&mut w).map_err(fits)?;
        // A qualified rule is the plain request plus the appended DEST/PORTS/UID attributes.
        if let Some(qual) = qualifiers(op) {
            e7_proto::qual::emit_qualifiers(&mut w, qual).map_err(fits)?;
        }
        Ok((request.command().value(), w.len(), expect))
    }

    /// Send `op` and wait for its answer; a QUERY dump interrupted by a change of the rule
    /// table is asked again (see [`consistent`]).
    fn transact(&mut self, op: &Op) -> Result<Outcome, CliError> {
        consistent(op.word(), || self.transact_once(op))
    }

    /// One try: the answer, or `None` when the dump was interrupted (`NLM_F_DUMP_INTR`).
    fn transact_once(&mut self, op: &Op) -> Result<Option<Outcome>, CliError> {
        let mut buf = [0u8; 1024];
        let (cmd, len, expect) = self.encode(op, &mut buf)?;
        let attrs = buf.get(..len).unwrap_or(&[]);
        let seq = self.next_seq();
        let mut flags = wire::NLM_F_REQUEST | wire::NLM_F_ACK;
        if matches!(expect, Expect::QueryDump | Expect::StatsDump) {
            flags |= wire::NLM_F_DUMP;
        }
        if trace_enabled() {
            eprintln!("e7: netlink -> cmd {cmd} seq {seq} flags {flags:#x} attrs {attrs:?}");
        }
        self.send(&wire::encode(
            self.family,
            flags,
            seq,
            cmd,
            FAMILY_VERSION,
            attrs,
        ))?;

        let word = op.word();
        let deadline = Instant::now() + REPLY_TIMEOUT;
        let mut matcher = Matcher::new(expect, seq, self.family, word);
        let mut grace_until: Option<Instant> = None;
        loop {
            if matcher.awaiting_grace() {
                let until = *grace_until.get_or_insert_with(|| Instant::now() + QUERY_GRACE);
                if Instant::now() >= until {
                    return matcher.assemble().map(Some);
                }
            }
            let wait_until = grace_until.map_or(deadline, |g| g.min(deadline));
            let msg = match self.recv(wait_until, word) {
                Ok(m) => m,
                Err(_) if grace_until.is_some() && Instant::now() < deadline => continue,
                Err(e) => return Err(e),
            };
            match matcher.feed(msg) {
                Progress::Pending => {}
                Progress::Finished(result) => return result.map(Some),
                Progress::DumpInterrupted => return Ok(None),
                Progress::RetryWithoutDump => {
                    // No dump handler: the original's shape.
                    self.dump = false;
                    return self.transact_once(op);
                }
            }
        }
    }
}

/// Run `once` until it gives an answer that is not an interrupted dump (`None`), at most
/// [`DUMP_ATTEMPTS`] times; then fail rather than return a listing that may have skipped or
/// repeated a rule. Errors end it at once. Pure control flow, so it is tested without a socket.
fn consistent(
    word: &str,
    mut once: impl FnMut() -> Result<Option<Outcome>, CliError>,
) -> Result<Outcome, CliError> {
    for _ in 0..DUMP_ATTEMPTS {
        if let Some(outcome) = once()? {
            return Ok(outcome);
        }
    }
    Err(CliError::Failed(format!(
        "the rule table kept changing while `{word}` listed it: {DUMP_ATTEMPTS} listings in a \
         row were interrupted by a change (the kernel set NLM_F_DUMP_INTR); try again once \
         rules are no longer being edited"
    )))
}

/// Where the answer to one request stands.
#[derive(Debug)]
enum Progress {
    /// Keep reading.
    Pending,
    /// The answer is complete (or failed).
    Finished(Result<Outcome, CliError>),
    /// The kernel has no dump handler for QUERY: ask again without `NLM_F_DUMP`.
    RetryWithoutDump,
    /// The QUERY dump ended, but the rule table changed during it (`NLM_F_DUMP_INTR` on one of
    /// its messages): its rules may be skewed, ask again.
    DumpInterrupted,
}

/// Matches incoming messages to one request (see the module docs). Pure logic, no I/O.
#[derive(Debug)]
struct Matcher {
    expect: Expect,
    seq: u32,
    family: u16,
    word: &'static str,
    acked: bool,
    value: Option<u32>,
    parts: Vec<QueryPart>,
    /// STATS entries received so far.
    stats: Vec<crate::kernel::ProgStat>,
    /// A message of this dump carried `NLM_F_DUMP_INTR`.
    interrupted: bool,
}

impl Matcher {
    fn new(expect: Expect, seq: u32, family: u16, word: &'static str) -> Self {
        Matcher {
            expect,
            seq,
            family,
            word,
            acked: false,
            value: None,
            parts: Vec::new(),
            stats: Vec::new(),
            interrupted: false,
        }
    }

    /// A plain QUERY was acked and answered, but the kernel did not say how many rules there
    /// are (the original never did): wait a moment for further messages, then [`Self::assemble`].
    fn awaiting_grace(&self) -> bool {
        self.expect == Expect::QueryChain
            && self.acked
            && !self.parts.is_empty()
            && self.parts.iter().all(|p| p.count.is_none())
    }

    fn assemble(&mut self) -> Result<Outcome, CliError> {
        decode::assemble(std::mem::take(&mut self.parts))
    }

    fn refuse(&self, errno: i32, text: Option<&str>) -> Progress {
        Progress::Finished(Err(CliError::from_errno(self.word, errno, text)))
    }

    fn bad_reply(&self, what: &str, e: String) -> Progress {
        Progress::Finished(Err(CliError::Failed(format!("bad {what} reply: {e}"))))
    }

    fn feed(&mut self, msg: Message) -> Progress {
        let dump = self.expect == Expect::QueryDump;
        match msg {
            Message::Ack { seq, errno, text } if seq == self.seq => {
                if errno == 0 {
                    self.acked = true;
                } else if errno == EOPNOTSUPP && dump {
                    return Progress::RetryWithoutDump;
                } else {
                    return self.refuse(errno, text.as_deref());
                }
            }
            Message::Done {
                seq,
                errno,
                text,
                interrupted,
            } if seq == self.seq => {
                if errno == EOPNOTSUPP && dump {
                    return Progress::RetryWithoutDump;
                }
                if errno != 0 {
                    return self.refuse(errno, text.as_deref());
                }
                if self.expect == Expect::StatsDump {
                    // Counters move all the time: a STATS dump is a snapshot per entry, never
                    // retried for consistency.
                    return Progress::Finished(Ok(Outcome::Stats(std::mem::take(&mut self.stats))));
                }
                if dump {
                    if interrupted || self.interrupted {
                        return Progress::DumpInterrupted;
                    }
                    return Progress::Finished(self.assemble());
                }
            }
            Message::Overrun => {
                return Progress::Finished(Err(CliError::Failed(format!(
                    "the kernel's answer to `{}` overran the socket buffer; try again",
                    self.word
                ))))
            }
            Message::Genl {
                family,
                flags,
                seq,
                cmd,
                attrs,
            } if family == self.family => {
                // Replies carry the request's sequence number; the original module sent 0. A
                // dump is always answered with the request's number.
                let ours =
                    seq == self.seq || (seq == 0 && !dump && self.expect != Expect::StatsDump);
                if !ours {
                    return Progress::Pending;
                }
                if dump && flags & wire::NLM_F_DUMP_INTR != 0 {
                    // Keep reading to NLMSG_DONE (so nothing of this dump is left for the next
                    // try to trip over), then ask again.
                    self.interrupted = true;
                }
                if cmd == Command::Error.value() {
                    let (errno, text) = decode::error(&attrs);
                    return self.refuse(errno, text.as_deref());
                }
                match self.expect {
                    Expect::Get(flag) if cmd == Command::Get.value() => match decode::get(&attrs) {
                        Ok((f, v)) if f == flag.index() => self.value = Some(v),
                        Ok(_) => {}
                        Err(e) => return self.bad_reply("GET", e),
                    },
                    Expect::StatsDump if cmd == Command::Stats.value() => {
                        match decode::stats(&attrs) {
                            Ok(mut list) => self.stats.append(&mut list),
                            Err(e) => return self.bad_reply("STATS", e),
                        }
                    }
                    Expect::QueryDump | Expect::QueryChain if cmd == Command::Query.value() => {
                        match decode::query(&attrs) {
                            Ok(part) => self.parts.push(part),
                            Err(e) => return self.bad_reply("QUERY", e),
                        }
                    }
                    _ => {}
                }
            }
            _ => {}
        }
        // Complete?
        match self.expect {
            Expect::Ack if self.acked => Progress::Finished(Ok(Outcome::Done)),
            Expect::Get(flag) if self.acked => match self.value {
                Some(value) => Progress::Finished(Ok(Outcome::Value { flag, value })),
                None => Progress::Pending,
            },
            Expect::QueryChain if self.acked && self.parts.iter().any(|p| p.count.is_some()) => {
                Progress::Finished(self.assemble())
            }
            _ => Progress::Pending,
        }
    }
}

impl Drop for NetlinkKernel {
    fn drop(&mut self) {
        if self.joined {
            (self.disconnect_sender())();
        }
    }
}

impl Kernel for NetlinkKernel {
    /// Resolve the family again: gone means the module was unloaded, a new id that it was
    /// reloaded (this connection's subscription did not survive either). No answer within a
    /// second is inconclusive (under an event flood the answer itself can be dropped) and counts
    /// as alive; the next check asks again.
    fn check_alive(&mut self) -> Result<(), CliError> {
        match self.resolve_family_within(LIVENESS_TIMEOUT) {
            Ok(id) if id == self.family => Ok(()),
            Ok(_) => Err(CliError::Failed(
                "the e7 module was reloaded; this connection is no longer subscribed".into(),
            )),
            Err(CliError::NotLoaded) => Err(CliError::Failed("the e7 module was unloaded".into())),
            // No answer (dropped in an overflow) or a transient error: ask again next time.
            Err(_) => Ok(()),
        }
    }

    fn call(&mut self, op: &Op) -> Result<Outcome, CliError> {
        match op {
            Op::Disconnect => self.joined = false,
            Op::Get(_) | Op::Query | Op::Stats => {}
            _ => self.joined = true,
        }
        match self.transact(op) {
            // A family that vanished answers ENOENT/EOPNOTSUPP without a text of its own: the
            // module was unloaded (say so), or reloaded under a new id (follow it, once).
            Err(CliError::Refused {
                errno,
                reason,
                command,
            }) if errno == ENOENT || errno == EOPNOTSUPP => match self.resolve_family() {
                Err(CliError::NotLoaded) => Err(CliError::NotLoaded),
                Ok(id) if id != self.family => {
                    self.family = id;
                    self.dump = true;
                    self.transact(op)
                }
                _ => Err(CliError::Refused {
                    errno,
                    reason,
                    command,
                }),
            },
            other => other,
        }
    }

    fn notices(&mut self) -> Option<Receiver<Notice>> {
        self.notices.take()
    }
}

/// The qualifiers `op` carries on top of its plain request.
fn qualifiers(op: &Op) -> Option<&e7_proto::qual::Qualifiers> {
    match op {
        Op::Change(Change::AddQualified { qual, .. })
        | Op::Change(Change::Clear(ClearSpec::Qualified { qual, .. })) => Some(qual),
        _ => None,
    }
}

/// The e7-proto request for `op` and what to wait for; `dump`: send QUERY as a dump. A qualified
/// rule's request is its plain one; [`qualifiers`] are appended by the caller.
fn to_request(op: &Op, dump: bool) -> (Request<'_>, Expect) {
    match op {
        Op::Change(Change::AddQualified {
            action, prot, path, ..
        }) => (
            Request::AddRule(RuleSpec {
                prot: *prot,
                path: path.as_str(),
                action: *action,
            }),
            Expect::Ack,
        ),
        Op::Change(Change::AddRule { action, prot, path }) => (
            Request::AddRule(RuleSpec {
                prot: *prot,
                path: path.as_str(),
                action: *action,
            }),
            Expect::Ack,
        ),
        Op::Change(Change::Enable) => (Request::SetMode(Mode::Enabled), Expect::Ack),
        Op::Change(Change::Clear(spec)) => (
            Request::Clear(match spec {
                ClearSpec::All => msg::ClearSpec::All,
                ClearSpec::Action(a) => msg::ClearSpec::Action(*a),
                ClearSpec::Rule { prot, path } | ClearSpec::Qualified { prot, path, .. } => {
                    msg::ClearSpec::Rule {
                        prot: *prot,
                        path: path.as_str(),
                    }
                }
            }),
            Expect::Ack,
        ),
        Op::Change(Change::Set { flag, value }) => (
            Request::Set {
                flag: *flag,
                value: *value,
            },
            Expect::Ack,
        ),
        Op::Get(flag) => (Request::Get { flag: *flag }, Expect::Get(*flag)),
        Op::Query if dump => (Request::Query, Expect::QueryDump),
        Op::Query => (Request::Query, Expect::QueryChain),
        Op::Subscribe => (Request::Subscribe, Expect::Ack),
        Op::Disconnect => (Request::Disconnect, Expect::Ack),
        Op::Stats => (Request::Stats, Expect::StatsDump),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use e7_proto::msg::{emit_error, emit_get_reply, emit_query_chain, emit_query_dump};
    use e7_proto::msg::{QueryHeader, RuleSpec};
    use e7_proto::{Action, Const};

    const FAMILY: u16 = 0x1c;

    fn genl(seq: u32, cmd: Command, fill: impl FnOnce(&mut Writer<'_>)) -> Message {
        let mut buf = [0u8; 2048];
        let mut w = Writer::new(&mut buf);
        fill(&mut w);
        Message::Genl {
            family: FAMILY,
            flags: 0,
            seq,
            cmd: cmd.value(),
            attrs: w.as_bytes().to_vec(),
        }
    }

    fn ack(seq: u32, errno: i32, text: Option<&str>) -> Message {
        Message::Ack {
            seq,
            errno,
            text: text.map(str::to_string),
        }
    }

    fn rule(path: &str) -> RuleSpec<'_> {
        RuleSpec {
            prot: 17,
            path,
            action: Action::Allow,
        }
    }

    /// The QUERY the module pushes after a change (`rchngq`), with the changing request's seq.
    fn pushed_query(seq: u32) -> Message {
        genl(seq, Command::Query, |w| {
            emit_query_chain(w, Const::Enabled.value(), [rule("/pushed")], 1).unwrap();
        })
    }

    fn finished(p: Progress) -> Result<Outcome, CliError> {
        match p {
            Progress::Finished(r) => r,
            other => panic!("not finished: {other:?}"),
        }
    }

    fn stats_entry(path: &str, accepted: u64) -> e7_proto::stats::Entry<'_> {
        e7_proto::stats::Entry {
            path: path.as_bytes(),
            prot: 17,
            state: Const::Allow.value(),
            reason: e7_proto::stats::Reason::NoRule,
            accept_packets: accepted,
            accept_bytes: accepted * 42,
            drop_packets: 0,
            drop_bytes: 0,
            first_seen: 9,
            last_seen: 1,
        }
    }

    #[test]
    fn a_stats_dump_collects_every_message_until_done() {
        let mut m = Matcher::new(Expect::StatsDump, 4, FAMILY, "stats");
        let one = genl(4, Command::Stats, |w| {
            e7_proto::stats::emit_entry(w, &stats_entry("/opt/a/e7-probe", 6)).unwrap();
            e7_proto::stats::emit_entry(w, &stats_entry("/opt/b/e7-probe", 3)).unwrap();
        });
        let two = genl(4, Command::Stats, |w| {
            e7_proto::stats::emit_entry(w, &stats_entry("/usr/bin/e7-probe", 1)).unwrap();
        });
        assert!(matches!(m.feed(one), Progress::Pending));
        assert!(
            matches!(m.feed(pushed_query(4)), Progress::Pending),
            "other commands are ignored"
        );
        assert!(matches!(m.feed(two), Progress::Pending));
        let done = Message::Done {
            seq: 4,
            errno: 0,
            text: None,
            interrupted: false,
        };
        let Outcome::Stats(list) = finished(m.feed(done)).unwrap() else {
            panic!("not a STATS answer");
        };
        let got: Vec<(&str, u64, u64)> = list
            .iter()
            .map(|s| (s.path.as_str(), s.accept_packets, s.accept_bytes))
            .collect();
        assert_eq!(
            got,
            [
                ("/opt/a/e7-probe", 6, 252),
                ("/opt/b/e7-probe", 3, 126),
                ("/usr/bin/e7-probe", 1, 42)
            ]
        );
    }

    #[test]
    fn a_refused_stats_dump_is_permission_denied() {
        // The module's dump .start refuses an unprivileged reader with an EPERM ack.
        let mut m = Matcher::new(Expect::StatsDump, 5, FAMILY, "stats");
        let e = finished(m.feed(ack(5, 1, None))).unwrap_err();
        assert_eq!(e.exit_code(), 4);
        assert!(e.to_string().contains("statsunpriv"), "{e}");
    }

    #[test]
    fn ack_completes_a_change_and_pushed_queries_are_ignored() {
        let mut m = Matcher::new(Expect::Ack, 7, FAMILY, "allow");
        assert!(matches!(m.feed(pushed_query(7)), Progress::Pending));
        assert!(matches!(m.feed(pushed_query(6)), Progress::Pending));
        assert!(
            matches!(m.feed(ack(6, 0, None)), Progress::Pending),
            "another request's ack"
        );
        assert_eq!(finished(m.feed(ack(7, 0, None))).unwrap(), Outcome::Done);
    }

    #[test]
    fn error_message_and_negative_ack_refuse_with_the_kernel_text() {
        let mut m = Matcher::new(Expect::Ack, 3, FAMILY, "allow");
        let err = genl(3, Command::Error, |w| {
            emit_error(w, Some(28), Some("rule table full (1024 rules)")).unwrap();
        });
        let e = finished(m.feed(err)).unwrap_err();
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string().contains("rule table full (1024 rules)"),
            "{e}"
        );

        let mut m = Matcher::new(Expect::Ack, 3, FAMILY, "set");
        let e = finished(m.feed(ack(3, 1, Some("needs CAP_NET_ADMIN")))).unwrap_err();
        assert_eq!(e.exit_code(), 4);

        // An ERROR for another request is not ours.
        let mut m = Matcher::new(Expect::Ack, 4, FAMILY, "set");
        let other = genl(3, Command::Error, |w| {
            emit_error(w, Some(22), None).unwrap()
        });
        assert!(matches!(m.feed(other), Progress::Pending));
    }

    #[test]
    fn get_needs_the_ack_and_the_reply_in_either_order() {
        let reply = |seq, flag: Flag, v| {
            genl(seq, Command::Get, move |w| {
                emit_get_reply(w, flag, v).unwrap()
            })
        };
        let mut m = Matcher::new(Expect::Get(Flag::Mode), 9, FAMILY, "get");
        assert!(matches!(
            m.feed(reply(9, Flag::Mode, Const::Block.value())),
            Progress::Pending
        ));
        assert_eq!(
            finished(m.feed(ack(9, 0, None))).unwrap(),
            Outcome::Value {
                flag: Flag::Mode,
                value: Const::Block.value()
            }
        );
        // Original module: ack first, reply later with seq 0; a reply for another flag is skipped.
        let mut m = Matcher::new(Expect::Get(Flag::UnkRule), 2, FAMILY, "get");
        assert!(matches!(m.feed(ack(2, 0, None)), Progress::Pending));
        assert!(matches!(m.feed(reply(0, Flag::Mode, 1)), Progress::Pending));
        assert_eq!(
            finished(m.feed(reply(0, Flag::UnkRule, Const::Allow.value()))).unwrap(),
            Outcome::Value {
                flag: Flag::UnkRule,
                value: Const::Allow.value()
            }
        );
    }

    #[test]
    fn dump_collects_until_done_and_falls_back_on_eopnotsupp() {
        let mut m = Matcher::new(Expect::QueryDump, 5, FAMILY, "query");
        let first = genl(5, Command::Query, |w| {
            let h = QueryHeader {
                mode: Const::Enabled.value(),
                count: 2,
            };
            emit_query_dump(w, Some(h), [rule("/a")]).unwrap();
        });
        let second = genl(5, Command::Query, |w| {
            emit_query_dump(w, None, [rule("/b")]).unwrap();
        });
        assert!(matches!(m.feed(first), Progress::Pending));
        assert!(
            matches!(m.feed(pushed_query(0)), Progress::Pending),
            "seq 0 is never a dump part"
        );
        assert!(matches!(m.feed(pushed_query(4)), Progress::Pending));
        assert!(matches!(m.feed(second), Progress::Pending));
        let done = Message::Done {
            seq: 5,
            errno: 0,
            text: None,
            interrupted: false,
        };
        match finished(m.feed(done)).unwrap() {
            Outcome::Rules(set) => {
                let paths: Vec<_> = set.rules.iter().map(|r| r.path.as_str()).collect();
                assert_eq!(paths, ["/a", "/b"]);
                assert_eq!(set.mode, Const::Enabled.value());
            }
            other => panic!("{other:?}"),
        }
        let mut m = Matcher::new(Expect::QueryDump, 6, FAMILY, "query");
        assert!(matches!(
            m.feed(ack(6, EOPNOTSUPP, None)),
            Progress::RetryWithoutDump
        ));
    }

    /// A QUERY dump answering `seq`: one message per path, the first with the header (COUNT =
    /// number of paths), then `NLMSG_DONE`; `intr_at`: that message carries NLM_F_DUMP_INTR.
    fn dump_reply(seq: u32, paths: &[&str], intr_at: Option<usize>) -> Vec<Message> {
        let count = u32::try_from(paths.len()).unwrap();
        let mut out: Vec<Message> = paths
            .iter()
            .enumerate()
            .map(|(i, path)| {
                let m = genl(seq, Command::Query, |w| {
                    let h = (i == 0).then_some(QueryHeader {
                        mode: Const::Enabled.value(),
                        count,
                    });
                    emit_query_dump(w, h, [rule(path)]).unwrap();
                });
                match m {
                    Message::Genl {
                        family,
                        seq,
                        cmd,
                        attrs,
                        ..
                    } => Message::Genl {
                        family,
                        flags: wire::NLM_F_MULTI
                            | if intr_at == Some(i) {
                                wire::NLM_F_DUMP_INTR
                            } else {
                                0
                            },
                        seq,
                        cmd,
                        attrs,
                    },
                    other => other,
                }
            })
            .collect();
        out.push(Message::Done {
            seq,
            errno: 0,
            text: None,
            interrupted: false,
        });
        out
    }

    /// One try as `transact_once` makes it: a fresh matcher fed the try's messages.
    fn one_try(seq: u32, msgs: Vec<Message>) -> Result<Option<Outcome>, CliError> {
        let mut m = Matcher::new(Expect::QueryDump, seq, FAMILY, "query");
        for msg in msgs {
            match m.feed(msg) {
                Progress::Pending => {}
                Progress::Finished(r) => return r.map(Some),
                Progress::DumpInterrupted => return Ok(None),
                Progress::RetryWithoutDump => panic!("a dump handler exists"),
            }
        }
        panic!("the dump did not end");
    }

    fn listed(outcome: Outcome) -> Vec<String> {
        match outcome {
            Outcome::Rules(set) => set.rules.into_iter().map(|r| r.path).collect(),
            other => panic!("not a listing: {other:?}"),
        }
    }

    #[test]
    fn dump_intr_on_a_middle_message_is_read_to_done_then_reported() {
        // The skewed dump repeats /b but is self-consistent otherwise (COUNT 3, 3 rules): only
        // the flag tells it apart.
        let mut msgs = dump_reply(5, &["/a", "/b", "/b"], Some(1)).into_iter();
        let mut m = Matcher::new(Expect::QueryDump, 5, FAMILY, "query");
        for _ in 0..3 {
            assert!(matches!(m.feed(msgs.next().unwrap()), Progress::Pending));
        }
        assert!(matches!(
            m.feed(msgs.next().unwrap()),
            Progress::DumpInterrupted
        ));
        // Without the flag the same messages are a valid listing.
        assert_eq!(
            listed(
                one_try(5, dump_reply(5, &["/a", "/b", "/b"], None))
                    .unwrap()
                    .unwrap()
            ),
            ["/a", "/b", "/b"]
        );
        // The flag on NLMSG_DONE alone counts too.
        let mut m = Matcher::new(Expect::QueryDump, 6, FAMILY, "query");
        let done = Message::Done {
            seq: 6,
            errno: 0,
            text: None,
            interrupted: true,
        };
        assert!(matches!(m.feed(done), Progress::DumpInterrupted));
        // Another request's interrupted dump is not ours.
        let mut m = Matcher::new(Expect::QueryDump, 7, FAMILY, "query");
        for msg in dump_reply(6, &["/x"], Some(0)) {
            assert!(matches!(m.feed(msg), Progress::Pending));
        }
    }

    #[test]
    fn an_interrupted_dump_is_retried_and_the_retry_is_returned() {
        let mut tries = vec![
            dump_reply(1, &["/a", "/b", "/b"], Some(1)),
            dump_reply(2, &["/a", "/c"], None),
        ]
        .into_iter();
        let mut seq = 0;
        let outcome = consistent("query", || {
            seq += 1;
            one_try(seq, tries.next().expect("no third try"))
        })
        .unwrap();
        assert_eq!(seq, 2, "exactly one retry");
        assert_eq!(listed(outcome), ["/a", "/c"]);
    }

    #[test]
    fn a_table_that_keeps_changing_fails_after_a_few_tries() {
        let mut seq = 0;
        let e = consistent("query", || {
            seq += 1;
            one_try(seq, dump_reply(seq, &["/a", "/b"], Some(1)))
        })
        .unwrap_err();
        assert_eq!(seq, DUMP_ATTEMPTS);
        assert_eq!(e.exit_code(), 1);
        assert!(
            e.to_string()
                .contains("the rule table kept changing while `query` listed it"),
            "{e}"
        );
        // An error is not retried.
        let mut calls = 0;
        let e = consistent("query", || {
            calls += 1;
            one_try(1, vec![ack(1, 1, None)])
        })
        .unwrap_err();
        assert_eq!((calls, e.exit_code()), (1, 4));
    }

    #[test]
    fn chain_query_finishes_on_count_or_after_grace() {
        let mut m = Matcher::new(Expect::QueryChain, 8, FAMILY, "query");
        assert!(matches!(m.feed(ack(8, 0, None)), Progress::Pending));
        let with_count = genl(8, Command::Query, |w| {
            emit_query_chain(w, Const::Disabled.value(), [rule("/a"), rule("/b")], 2).unwrap();
        });
        assert!(matches!(
            finished(m.feed(with_count)),
            Ok(Outcome::Rules(_))
        ));

        // The original: no COUNT, reply after the ack with seq 0 -> wait for the grace period.
        let mut m = Matcher::new(Expect::QueryChain, 8, FAMILY, "query");
        let no_count = genl(0, Command::Query, |w| {
            w.put_u32(e7_proto::Attr::State.value(), Const::Disabled.value())
                .unwrap();
        });
        assert!(matches!(m.feed(no_count), Progress::Pending));
        assert!(!m.awaiting_grace(), "not before the ack");
        assert!(matches!(m.feed(ack(8, 0, None)), Progress::Pending));
        assert!(m.awaiting_grace());
        match m.assemble().unwrap() {
            Outcome::Rules(set) => assert!(set.rules.is_empty()),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn malformed_replies_and_overruns_fail_clearly() {
        let mut m = Matcher::new(Expect::Get(Flag::Mode), 1, FAMILY, "get");
        let bad = Message::Genl {
            family: FAMILY,
            flags: 0,
            seq: 1,
            cmd: Command::Get.value(),
            attrs: vec![1, 2],
        };
        let e = finished(m.feed(bad)).unwrap_err();
        assert!(e.to_string().starts_with("bad GET reply"), "{e}");
        let mut m = Matcher::new(Expect::Ack, 1, FAMILY, "allow");
        assert!(finished(m.feed(Message::Overrun)).is_err());
        // Another family's traffic is ignored.
        let mut m = Matcher::new(Expect::Ack, 1, FAMILY, "allow");
        let other = Message::Genl {
            family: 0x10,
            flags: 0,
            seq: 1,
            cmd: 1,
            attrs: vec![],
        };
        assert!(matches!(m.feed(other), Progress::Pending));
    }

    /// The permission message of every request matches why the module refuses it: exactly the
    /// commands e7-proto marks admin (GENL_ADMIN_PERM) get "needs root", and only the ones that
    /// change the firewall say they change it (SUBSCRIBE changes nothing).
    #[test]
    fn permission_messages_follow_the_schemas_admin_bits() {
        let ops = [
            Op::Change(Change::AddRule {
                action: Action::Allow,
                prot: 17,
                path: "/x".into(),
            }),
            Op::Change(Change::AddRule {
                action: Action::Block,
                prot: 17,
                path: "/x".into(),
            }),
            Op::Change(Change::Enable),
            Op::Change(Change::Clear(ClearSpec::All)),
            Op::Change(Change::Set {
                flag: Flag::Mode,
                value: Const::Enabled.value(),
            }),
            Op::Get(Flag::Mode),
            Op::Query,
            Op::Subscribe,
            Op::Disconnect,
        ];
        for op in &ops {
            let command = to_request(op, true).0.command();
            let text = CliError::from_errno(op.word(), 1, None).to_string();
            assert_eq!(
                text.contains("needs root (CAP_NET_ADMIN)"),
                command.admin(),
                "{op:?}: {text}"
            );
            let changes = command.admin() && command != Command::Subscribe;
            assert_eq!(
                text.contains("changes the firewall"),
                changes,
                "{op:?}: {text}"
            );
        }
    }
}

#[cfg(test)]
mod sink_tests {
    use super::*;

    #[test]
    fn a_full_backlog_drops_events_and_reports_the_loss_once() {
        let (tx, rx) = sync_channel(2);
        let mut sink = NoticeSink { tx, dropped: false };
        let ev = |n: u32| {
            Notice::Event(crate::kernel::Event {
                state: 0xFF02,
                prot: 17,
                path: format!("/p{n}"),
                peer: Default::default(),
            })
        };
        for n in 0..5 {
            sink.push(ev(n));
        }
        assert_eq!(rx.try_recv().unwrap(), ev(0));
        assert_eq!(rx.try_recv().unwrap(), ev(1));
        assert!(rx.try_recv().is_err());
        sink.push(ev(9));
        assert_eq!(rx.try_recv().unwrap(), Notice::Lost);
        assert_eq!(rx.try_recv().unwrap(), ev(9));
        // Nobody listening at all: pushing never blocks or panics.
        drop(rx);
        sink.push(ev(10));
    }
}
