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
//! - anything else — in particular the QUERY the kernel pushes after a change when `rchngq` is
//!   enabled — is consumed and ignored.

pub mod decode;
pub mod wire;

use crate::error::CliError;
use crate::grammar::ClearSpec;
use crate::kernel::{Kernel, Notice, Op, Outcome};
use decode::QueryPart;
use e7_proto::msg::{self, Request, RuleSpec};
use e7_proto::nla::Writer;
use e7_proto::{Command, Flag, Mode, FAMILY_NAME, FAMILY_VERSION};
use neli::consts::socket::{Msg, NlFamily};
use neli::socket::NlSocket;
use neli::utils::Groups;
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};
use wire::Message;

const ENOENT: i32 = 2;
const ENOBUFS: i32 = 105;
const EOPNOTSUPP: i32 = 95;

/// How long to wait for the kernel's answer to one request.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(5);
/// After the ack of a plain QUERY, how long to wait for further reply messages when the kernel
/// does not say how many rules there are (the original module never sent COUNT).
const QUERY_GRACE: Duration = Duration::from_millis(300);

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

fn reader(socket: Arc<NlSocket>, replies: Sender<Incoming>, notices: Sender<Notice>) {
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
                            let notice = match decode::event(attrs) {
                                Ok(e) => Notice::Event(e),
                                Err(e) => Notice::Failed(format!("malformed event: {e}")),
                            };
                            // Nobody listening (not subscribed, or the console quit): drop it.
                            let _ = notices.send(notice);
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
                            let _ = notices.send(Notice::Disconnected);
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
            Err(e) if e.raw_os_error() == Some(ENOBUFS) => {
                let _ = notices.send(Notice::Lost);
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                let text = format!("receiving from the kernel failed: {e}");
                let _ = notices.send(Notice::Failed(text.clone()));
                let _ = replies.send(Incoming::Failed(text));
                return;
            }
        }
    }
}

/// What one request waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expect {
    Ack,
    Get(Flag),
    QueryDump,
    QueryChain,
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
        let (notice_tx, notices) = channel();
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
        match self.replies.recv_timeout(remaining) {
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
        let seq = self.next_seq();
        self.send(&wire::encode_get_family(seq, FAMILY_NAME))?;
        let deadline = Instant::now() + REPLY_TIMEOUT;
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
        let (request, expect) = match op {
            Op::AddRule { action, prot, path } => (
                Request::AddRule(RuleSpec {
                    prot: *prot,
                    path: path.as_str(),
                    action: *action,
                }),
                Expect::Ack,
            ),
            Op::Enable => (Request::SetMode(Mode::Enabled), Expect::Ack),
            Op::Clear(spec) => (
                Request::Clear(match spec {
                    ClearSpec::All => msg::ClearSpec::All,
                    ClearSpec::Action(a) => msg::ClearSpec::Action(*a),
                    ClearSpec::Rule { prot, path } => msg::ClearSpec::Rule {
                        prot: *prot,
                        path: path.as_str(),
                    },
                }),
                Expect::Ack,
            ),
            Op::Set { flag, value } => (
                Request::Set {
                    flag: *flag,
                    value: *value,
                },
                Expect::Ack,
            ),
            Op::Get(flag) => (Request::Get { flag: *flag }, Expect::Get(*flag)),
            Op::Query if self.dump => (Request::Query, Expect::QueryDump),
            Op::Query => (Request::Query, Expect::QueryChain),
            Op::Subscribe => (Request::Subscribe, Expect::Ack),
            Op::Disconnect => (Request::Disconnect, Expect::Ack),
        };
        let mut w = Writer::new(buf);
        request.emit(&mut w).map_err(|e| {
            CliError::Failed(format!("`{}` does not fit in one request: {e}", op.word()))
        })?;
        Ok((request.command().value(), w.len(), expect))
    }

    fn transact(&mut self, op: &Op) -> Result<Outcome, CliError> {
        let mut buf = [0u8; 1024];
        let (cmd, len, expect) = self.encode(op, &mut buf)?;
        let attrs = buf.get(..len).unwrap_or(&[]);
        let seq = self.next_seq();
        let mut flags = wire::NLM_F_REQUEST | wire::NLM_F_ACK;
        if expect == Expect::QueryDump {
            flags |= wire::NLM_F_DUMP;
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
        let mut acked = false;
        let mut value = None;
        let mut parts: Vec<QueryPart> = Vec::new();
        let mut grace_until: Option<Instant> = None;
        loop {
            // Completion checks.
            match expect {
                Expect::Ack if acked => return Ok(Outcome::Done),
                Expect::Get(flag) if acked => {
                    if let Some(value) = value {
                        return Ok(Outcome::Value { flag, value });
                    }
                }
                Expect::QueryChain if acked && !parts.is_empty() => {
                    if parts.iter().any(|p| p.count.is_some()) {
                        return decode::assemble(parts);
                    }
                    let until = *grace_until.get_or_insert_with(|| Instant::now() + QUERY_GRACE);
                    if Instant::now() >= until {
                        return decode::assemble(parts);
                    }
                }
                _ => {}
            }
            let wait_until = match grace_until {
                Some(g) => g.min(deadline),
                None => deadline,
            };
            let msg = match self.recv(wait_until, word) {
                Ok(m) => m,
                Err(_) if grace_until.is_some() && Instant::now() < deadline => continue,
                Err(e) => return Err(e),
            };
            match msg {
                Message::Ack {
                    seq: s,
                    errno,
                    text,
                } if s == seq => {
                    if errno == 0 {
                        acked = true;
                    } else if errno == EOPNOTSUPP && expect == Expect::QueryDump {
                        // No dump handler: the original's shape.
                        self.dump = false;
                        return self.transact(op);
                    } else {
                        return Err(CliError::from_errno(word, errno, text.as_deref()));
                    }
                }
                Message::Done {
                    seq: s,
                    errno,
                    text,
                } if s == seq => {
                    if errno == EOPNOTSUPP && expect == Expect::QueryDump {
                        self.dump = false;
                        return self.transact(op);
                    }
                    if errno != 0 {
                        return Err(CliError::from_errno(word, errno, text.as_deref()));
                    }
                    if expect == Expect::QueryDump {
                        return decode::assemble(parts);
                    }
                }
                Message::Overrun => {
                    return Err(CliError::Failed(format!(
                        "the kernel's answer to `{word}` overran the socket buffer; try again"
                    )))
                }
                Message::Genl {
                    family,
                    seq: s,
                    cmd: c,
                    attrs,
                    ..
                } if family == self.family => {
                    let ours = s == seq || (s == 0 && expect != Expect::QueryDump);
                    if !ours {
                        continue;
                    }
                    if c == Command::Error.value() {
                        let (errno, text) = decode::error(&attrs);
                        return Err(CliError::from_errno(word, errno, text.as_deref()));
                    }
                    match expect {
                        Expect::Get(flag) if c == Command::Get.value() => {
                            let (f, v) = decode::get(&attrs)
                                .map_err(|e| CliError::Failed(format!("bad GET reply: {e}")))?;
                            if f == flag.index() {
                                value = Some(v);
                            }
                        }
                        Expect::QueryDump if c == Command::Query.value() => {
                            parts.push(
                                decode::query(&attrs).map_err(|e| {
                                    CliError::Failed(format!("bad QUERY reply: {e}"))
                                })?,
                            );
                        }
                        Expect::QueryChain if c == Command::Query.value() => {
                            parts.push(
                                decode::query(&attrs).map_err(|e| {
                                    CliError::Failed(format!("bad QUERY reply: {e}"))
                                })?,
                            );
                        }
                        _ => {}
                    }
                }
                _ => {}
            }
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
    fn call(&mut self, op: &Op) -> Result<Outcome, CliError> {
        match op {
            Op::Disconnect => self.joined = false,
            Op::Get(_) | Op::Query => {}
            _ => self.joined = true,
        }
        self.transact(op)
    }

    fn notices(&mut self) -> Option<Receiver<Notice>> {
        self.notices.take()
    }
}
