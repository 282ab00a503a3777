//! Traffic primitives: one "exchange" per protocol, classified as delivered, blocked or failed.
//!
//! e7 decides at netfilter `LOCAL_OUT`. A drop there makes the sending syscall fail with `EPERM` when the
//! packet is sent synchronously from the caller (UDP `sendto`, ICMP ping sockets, raw sockets), which is the
//! cleanest possible "blocked" signal. TCP is different: `connect()` ignores the transmit error of its SYN and
//! `send()` only queues data, so for TCP the probe watches the *receiving* end (it runs both ends itself, so
//! both are attributed to the same executable) and reports "blocked" when nothing arrives within the timeout.
//! That also catches retransmissions sent later from timer context: if the module let those through, the
//! data would arrive and the probe would say "delivered".

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::{Duration, Instant};

use crate::sys;

/// `EPERM`: what a netfilter drop at `LOCAL_OUT` turns into for a synchronous sender.
const EPERM: i32 = 1;

/// Protocols and address families the probe can exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proto {
    /// UDP over IPv4.
    Udp4,
    /// UDP over IPv6.
    Udp6,
    /// TCP over IPv4.
    Tcp4,
    /// TCP over IPv6.
    Tcp6,
    /// ICMP echo over IPv4 (ping socket).
    Icmp4,
    /// ICMPv6 echo over IPv6 (ping socket).
    Icmp6,
    /// UDP over IPv4 from a dual-stack IPv6 socket (destination `::ffff:127.0.0.1`).
    Udp4m,
    /// TCP over IPv4 from a dual-stack IPv6 socket (destination `::ffff:127.0.0.1`).
    Tcp4m,
    /// UDP over IPv6 behind a Destination Options extension header (root).
    Udp6x,
}

impl Proto {
    /// Every protocol, in the order the usage text lists them.
    pub const ALL: [Proto; 9] = [
        Proto::Udp4,
        Proto::Udp6,
        Proto::Tcp4,
        Proto::Tcp6,
        Proto::Icmp4,
        Proto::Icmp6,
        Proto::Udp4m,
        Proto::Tcp4m,
        Proto::Udp6x,
    ];

    /// Parses `udp4`, `udp6`, `tcp4`, `tcp6`, `icmp4`, `icmp6`, `udp4m`, `tcp4m` (and `udp`, `tcp`,
    /// `icmp` for IPv4).
    pub fn parse(s: &str) -> Option<Proto> {
        Some(match s {
            "udp4" | "udp" => Proto::Udp4,
            "udp6" => Proto::Udp6,
            "tcp4" | "tcp" => Proto::Tcp4,
            "tcp6" => Proto::Tcp6,
            "icmp4" | "icmp" => Proto::Icmp4,
            "icmp6" => Proto::Icmp6,
            "udp4m" => Proto::Udp4m,
            "tcp4m" => Proto::Tcp4m,
            "udp6x" => Proto::Udp6x,
            _ => return None,
        })
    }

    /// The canonical name (`udp4` …).
    pub fn name(self) -> &'static str {
        match self {
            Proto::Udp4 => "udp4",
            Proto::Udp6 => "udp6",
            Proto::Tcp4 => "tcp4",
            Proto::Tcp6 => "tcp6",
            Proto::Icmp4 => "icmp4",
            Proto::Icmp6 => "icmp6",
            Proto::Udp4m => "udp4m",
            Proto::Tcp4m => "tcp4m",
            Proto::Udp6x => "udp6x",
        }
    }

    /// True when the packets on the wire are IPv6.
    fn v6(self) -> bool {
        matches!(
            self,
            Proto::Udp6 | Proto::Tcp6 | Proto::Icmp6 | Proto::Udp6x
        )
    }

    /// True for the dual-stack variants: an AF_INET6 socket sending IPv4 packets.
    fn mapped(self) -> bool {
        matches!(self, Proto::Udp4m | Proto::Tcp4m)
    }

    /// The loopback address receivers bind to (the wire family's).
    pub fn loopback(self) -> IpAddr {
        loopback(self.v6())
    }

    /// The address senders use to reach `rx`: `rx` itself, or its IPv4-mapped IPv6 form for the
    /// dual-stack variants.
    pub fn sender_view(self, rx: SocketAddr) -> SocketAddr {
        match (self.mapped(), rx.ip()) {
            (true, IpAddr::V4(v4)) => SocketAddr::new(IpAddr::V6(v4.to_ipv6_mapped()), rx.port()),
            _ => rx,
        }
    }

    /// The local address a sender binds to: loopback, or `::` for the dual-stack variants (an IPv6
    /// socket bound to `::1` could not reach an IPv4 address).
    fn sender_bind(self) -> IpAddr {
        if self.mapped() {
            IpAddr::V6(Ipv6Addr::UNSPECIFIED)
        } else {
            self.loopback()
        }
    }
}

/// `127.0.0.1` or `::1`.
pub fn loopback(v6: bool) -> IpAddr {
    if v6 {
        IpAddr::V6(Ipv6Addr::LOCALHOST)
    } else {
        IpAddr::V4(Ipv4Addr::LOCALHOST)
    }
}

/// The verdict of one exchange, as the probe reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The packet left (and, where checkable, arrived). The string is an optional detail.
    Delivered(String),
    /// The packet was dropped: `EPERM` from the sender, or (TCP) nothing arrived in time.
    Blocked(String),
    /// Something else went wrong; the test cannot conclude either way.
    Failed(String),
}

impl Outcome {
    /// Process exit code: 0 delivered, 1 blocked, 2 any other error.
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Delivered(_) => 0,
            Outcome::Blocked(_) => 1,
            Outcome::Failed(_) => 2,
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Outcome::Delivered(d) if d.is_empty() => write!(f, "delivered"),
            Outcome::Delivered(d) => write!(f, "delivered ({d})"),
            Outcome::Blocked(d) => write!(f, "blocked ({d})"),
            Outcome::Failed(d) => write!(f, "error: {d}"),
        }
    }
}

/// Classifies a failed send: `EPERM` is the drop signal, anything else is an error.
pub fn classify_send_error(what: &str, e: &io::Error) -> Outcome {
    if e.raw_os_error() == Some(EPERM) {
        Outcome::Blocked("EPERM".into())
    } else {
        Outcome::Failed(format!("{what}: {e}"))
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// An open conversation with ourselves over one protocol; [`Session::exchange`] can run more than once on the
/// same sockets (the "rule change applies to an already-open socket" case).
pub enum Session {
    /// A sender socket and a bound receiver.
    Udp {
        /// Sending socket (unbound until the first send).
        tx: UdpSocket,
        /// Receiving socket bound on loopback.
        rx: UdpSocket,
        /// `rx`'s address.
        dst: SocketAddr,
        /// Sequence number, so a late datagram is never taken for the current one.
        seq: u32,
        /// `udp6x` only: a raw socket for IPv6 next-header 60 that sees every packet carrying a Destination
        /// Options header, proving the extension header really was on the wire.
        witness: Option<UdpSocket>,
    },
    /// Both ends of one established connection.
    Tcp {
        /// Connecting side; data is written here.
        client: TcpStream,
        /// Accepted side; data is read here.
        server: TcpStream,
        /// Sequence number of the next message.
        seq: u32,
    },
    /// An ICMP ping socket (kernel-assigned echo identifier).
    Icmp {
        /// The ping socket.
        sock: UdpSocket,
        /// IPv6 (ICMPv6) or IPv4.
        v6: bool,
        /// Echo sequence number of the next request.
        seq: u16,
    },
}

impl Session {
    /// Opens the sockets for `proto`; `port` 0 picks a free port. TCP performs its handshake here, so a
    /// blocked TCP program already yields `Err(Outcome::Blocked)`.
    pub fn open(proto: Proto, port: u16, timeout: Duration) -> Result<Session, Outcome> {
        let lo = proto.loopback();
        match proto {
            Proto::Udp4 | Proto::Udp6 | Proto::Udp4m | Proto::Udp6x => {
                let rx = UdpSocket::bind((lo, port)).map_err(|e| {
                    Outcome::Failed(format!("bind UDP receiver [{lo}]:{port}: {e}"))
                })?;
                let dst = rx
                    .local_addr()
                    .map(|a| proto.sender_view(a))
                    .map_err(|e| Outcome::Failed(format!("receiver address: {e}")))?;
                let tx = UdpSocket::bind((proto.sender_bind(), 0))
                    .map_err(|e| Outcome::Failed(format!("bind UDP sender: {e}")))?;
                let mut witness = None;
                if proto == Proto::Udp6x {
                    sys::set_ipv6_dstopts(&tx).map_err(|e| {
                        Outcome::Failed(format!("setsockopt IPV6_DSTOPTS (needs root): {e}"))
                    })?;
                    witness = Some(
                        sys::datagram_socket(sys::AF_INET6, sys::SOCK_RAW, IPPROTO_DSTOPTS)
                            .map_err(|e| Outcome::Failed(format!("raw witness socket: {e}")))?,
                    );
                }
                Ok(Session::Udp {
                    tx,
                    rx,
                    dst,
                    seq: 0,
                    witness,
                })
            }
            Proto::Tcp4 | Proto::Tcp6 | Proto::Tcp4m => {
                let listener = TcpListener::bind((lo, port))
                    .map_err(|e| Outcome::Failed(format!("listen on [{lo}]:{port}: {e}")))?;
                let dst = listener
                    .local_addr()
                    .map(|a| proto.sender_view(a))
                    .map_err(|e| Outcome::Failed(format!("listener address: {e}")))?;
                let client = match TcpStream::connect_timeout(&dst, timeout) {
                    Ok(c) => c,
                    Err(e) if is_timeout(&e) => {
                        return Err(Outcome::Blocked(format!(
                            "no TCP handshake within {} ms",
                            timeout.as_millis()
                        )))
                    }
                    Err(e) => return Err(classify_send_error("connect", &e)),
                };
                let server = accept_within(&listener, timeout)?;
                Ok(Session::Tcp {
                    client,
                    server,
                    seq: 0,
                })
            }
            Proto::Icmp4 | Proto::Icmp6 => {
                let v6 = proto.v6();
                let sock = ping_socket(v6)?;
                Ok(Session::Icmp { sock, v6, seq: 0 })
            }
        }
    }

    /// Sends one message and reports whether it was delivered.
    pub fn exchange(&mut self, timeout: Duration) -> Outcome {
        match self {
            Session::Udp {
                tx,
                rx,
                dst,
                seq,
                witness,
            } => {
                *seq += 1;
                let msg = format!("e7-probe udp {seq}");
                if let Err(e) = tx.send_to(msg.as_bytes(), *dst) {
                    return classify_send_error("sendto", &e);
                }
                match recv_matching(rx, msg.as_bytes(), timeout) {
                    Ok(true) => match witness {
                        None => Outcome::Delivered(String::new()),
                        Some(w) => match recv_any(w, timeout) {
                            Ok(true) => {
                                Outcome::Delivered("Destination Options header seen".into())
                            }
                            Ok(false) => Outcome::Failed(
                                "delivered, but no Destination Options header was on the wire"
                                    .into(),
                            ),
                            Err(e) => Outcome::Failed(format!("witness receive: {e}")),
                        },
                    },
                    Ok(false) => Outcome::Failed(format!(
                        "sent, but nothing received within {} ms",
                        timeout.as_millis()
                    )),
                    Err(e) => Outcome::Failed(format!("receive: {e}")),
                }
            }
            Session::Tcp {
                client,
                server,
                seq,
            } => {
                *seq += 1;
                let msg = format!("e7-probe tcp {seq}\n");
                if let Err(e) = client.write_all(msg.as_bytes()) {
                    return classify_send_error("send", &e);
                }
                match read_exact_within(server, msg.len(), timeout) {
                    Ok(Some(got)) if got == msg.as_bytes() => Outcome::Delivered(String::new()),
                    Ok(Some(got)) => Outcome::Failed(format!(
                        "received unexpected bytes {:?}",
                        String::from_utf8_lossy(&got)
                    )),
                    Ok(None) => Outcome::Blocked(format!(
                        "no data arrived within {} ms",
                        timeout.as_millis()
                    )),
                    Err(e) => Outcome::Failed(format!("receive: {e}")),
                }
            }
            Session::Icmp { sock, v6, seq } => {
                *seq = seq.wrapping_add(1);
                let request = echo_request(*v6, *seq);
                let dst = SocketAddr::new(loopback(*v6), 0);
                if let Err(e) = sock.send_to(&request, dst) {
                    return classify_send_error("sendto", &e);
                }
                match wait_echo_reply(sock, *v6, *seq, timeout) {
                    Ok(true) => Outcome::Delivered("reply received".into()),
                    Ok(false) => no_echo_reply(*v6, timeout),
                    Err(e) => Outcome::Failed(format!("receive: {e}")),
                }
            }
        }
    }
}

/// The verdict when an echo request was accepted by `sendto` but no reply came back.
///
/// IPv4 ping sockets report a `LOCAL_OUT` drop as `EPERM`, so a successful send means the request left and
/// only the reply (sent by the kernel itself) is missing: delivered. ICMPv6 ping sockets cannot tell: on
/// Linux 6.1 `icmpv6_push_pending_frames()` discards the transmit error, so a dropped echo request returns
/// success from `sendto`; a missing reply is the only drop signal there is.
pub fn no_echo_reply(v6: bool, timeout: Duration) -> Outcome {
    if v6 {
        Outcome::Blocked(format!(
            "no echo reply within {} ms; ICMPv6 ping sockets do not report EPERM",
            timeout.as_millis()
        ))
    } else {
        Outcome::Delivered(format!("no reply within {} ms", timeout.as_millis()))
    }
}

/// One complete probe: open and exchange once.
pub fn probe(proto: Proto, port: u16, timeout: Duration) -> Outcome {
    match Session::open(proto, port, timeout) {
        Ok(mut s) => s.exchange(timeout),
        Err(o) => o,
    }
}

fn accept_within(listener: &TcpListener, timeout: Duration) -> Result<TcpStream, Outcome> {
    listener
        .set_nonblocking(true)
        .map_err(|e| Outcome::Failed(format!("listener nonblocking: {e}")))?;
    let deadline = Instant::now() + timeout;
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)
                    .map_err(|e| Outcome::Failed(format!("accepted socket blocking: {e}")))?;
                return Ok(s);
            }
            Err(e) if is_timeout(&e) => {
                if Instant::now() >= deadline {
                    return Err(Outcome::Blocked(format!(
                        "handshake not completed on the listening side within {} ms",
                        timeout.as_millis()
                    )));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(Outcome::Failed(format!("accept: {e}"))),
        }
    }
}

/// IPv6 next-header value of a Destination Options header.
const IPPROTO_DSTOPTS: i32 = 60;

/// True when any datagram arrives within the timeout.
fn recv_any(s: &UdpSocket, timeout: Duration) -> io::Result<bool> {
    s.set_read_timeout(Some(timeout))?;
    let mut buf = [0u8; 2048];
    match s.recv(&mut buf) {
        Ok(_) => Ok(true),
        Err(e) if is_timeout(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Receives datagrams until one equals `want` (true) or the timeout passes (false).
fn recv_matching(rx: &UdpSocket, want: &[u8], timeout: Duration) -> io::Result<bool> {
    recv_until(rx, timeout, |d| d == want)
}

/// Receives datagrams until one satisfies `pred` (true) or the timeout passes (false).
fn recv_until(
    sock: &UdpSocket,
    timeout: Duration,
    pred: impl Fn(&[u8]) -> bool,
) -> io::Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 2048];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(false);
        }
        sock.set_read_timeout(Some(left))?;
        match sock.recv(&mut buf) {
            Ok(n) if pred(buf.get(..n).unwrap_or(&[])) => return Ok(true),
            Ok(_) => continue,
            Err(e) if is_timeout(&e) => return Ok(false),
            Err(e) => return Err(e),
        }
    }
}

/// Reads exactly `len` bytes unless the timeout passes first (`None`) or the peer closes (error).
fn read_exact_within(
    s: &mut TcpStream,
    len: usize,
    timeout: Duration,
) -> io::Result<Option<Vec<u8>>> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::with_capacity(len);
    let mut buf = [0u8; 256];
    while got.len() < len {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        s.set_read_timeout(Some(left))?;
        let want = (len - got.len()).min(buf.len());
        match s.read(buf.get_mut(..want).unwrap_or(&mut [])) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed by peer",
                ))
            }
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or(&[])),
            Err(e) if is_timeout(&e) => return Ok(None),
            Err(e) => return Err(e),
        }
    }
    Ok(Some(got))
}

/// Opens an ICMP(v6) ping socket. Needs `net.ipv4.ping_group_range` to include the caller's group (the VM
/// sets it to everything); root falls back to a raw socket if ping sockets are unavailable.
fn ping_socket(v6: bool) -> Result<UdpSocket, Outcome> {
    let (domain, proto) = if v6 {
        (sys::AF_INET6, 58)
    } else {
        (sys::AF_INET, 1)
    };
    match sys::datagram_socket(domain, sys::SOCK_DGRAM, proto) {
        Ok(s) => Ok(s),
        Err(ping_err) => sys::datagram_socket(domain, sys::SOCK_RAW, proto).map_err(|raw_err| {
            Outcome::Failed(format!(
                "ping socket: {ping_err} (set net.ipv4.ping_group_range to include this group); \
                 raw socket: {raw_err}"
            ))
        }),
    }
}

/// An ICMP(v6) echo request. Ping sockets overwrite the identifier and checksum; for the raw-socket fallback
/// the ICMPv4 checksum is computed here (the kernel computes ICMPv6 checksums itself).
pub fn echo_request(v6: bool, seq: u16) -> Vec<u8> {
    let kind = if v6 { 128 } else { 8 };
    let mut p = vec![kind, 0, 0, 0, 0x0e, 0x07];
    p.extend_from_slice(&seq.to_be_bytes());
    p.extend_from_slice(b"e7-probe icmp echo");
    if !v6 {
        let sum = internet_checksum(&p).to_be_bytes();
        p[2] = sum[0];
        p[3] = sum[1];
    }
    p
}

/// RFC 1071 ones' complement checksum.
pub fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    // The loop above leaves at most 16 bits.
    !(sum as u16)
}

/// True when `pkt` is the echo reply for `seq`. Ping sockets deliver the bare ICMP message; a raw IPv4 socket
/// (the fallback) prepends the IP header, which is skipped here.
pub fn is_echo_reply(pkt: &[u8], v6: bool, seq: u16) -> bool {
    let reply = if v6 { 129 } else { 0 };
    let icmp = match pkt.first() {
        Some(b) if !v6 && b >> 4 == 4 => pkt.get(usize::from(b & 0x0f) * 4..).unwrap_or(&[]),
        _ => pkt,
    };
    icmp.first() == Some(&reply) && icmp.get(6..8) == Some(&seq.to_be_bytes()[..])
}

fn wait_echo_reply(sock: &UdpSocket, v6: bool, seq: u16, timeout: Duration) -> io::Result<bool> {
    recv_until(sock, timeout, |d| is_echo_reply(d, v6, seq))
}

/// Sends one datagram of IP protocol `ipproto` on a raw socket (CAP_NET_RAW: root, or any user inside its
/// own user and network namespace).
pub fn raw(v6: bool, ipproto: u8) -> Outcome {
    let domain = if v6 { sys::AF_INET6 } else { sys::AF_INET };
    let sock = match sys::datagram_socket(domain, sys::SOCK_RAW, i32::from(ipproto)) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("raw socket for IP protocol {ipproto}: {e}")),
    };
    match sock.send_to(b"e7-probe raw", SocketAddr::new(loopback(v6), 0)) {
        Ok(_) => Outcome::Delivered(String::new()),
        Err(e) => classify_send_error("sendto", &e),
    }
}

/// `IPPROTO_UDPLITE`.
const IPPROTO_UDPLITE: i32 = 136;

/// Sends one UDP-Lite datagram to the loopback discard port (any user may open UDP-Lite sockets): a drop at
/// `LOCAL_OUT` makes `sendto` fail with `EPERM`, a delivery succeeds (no receiver is needed).
pub fn udplite(v6: bool) -> Outcome {
    let domain = if v6 { sys::AF_INET6 } else { sys::AF_INET };
    let sock = match sys::datagram_socket(domain, sys::SOCK_DGRAM, IPPROTO_UDPLITE) {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("UDP-Lite socket: {e}")),
    };
    match sock.send_to(b"e7-probe udplite", SocketAddr::new(loopback(v6), 9)) {
        Ok(_) => Outcome::Delivered(String::new()),
        Err(e) => classify_send_error("sendto", &e),
    }
}

/// `SMCPROTO_SMC` / `SMCPROTO_SMC6`: the protocol argument of an `AF_SMC` socket.
const SMCPROTO_SMC: i32 = 0;
const SMCPROTO_SMC6: i32 = 1;

/// `EINPROGRESS`.
const EINPROGRESS: i32 = 115;

/// `IPPROTO_MPTCP`.
const IPPROTO_MPTCP: i32 = 262;

/// One message from a stream socket of `domain`/`protocol` to a plain TCP listener of this process
/// over the loopback: delivered when the listener reads it within `timeout`.
fn stream_via(domain: i32, protocol: i32, v6: bool, what: &str, timeout: Duration) -> Outcome {
    let listener = match TcpListener::bind((loopback(v6), 0)) {
        Ok(l) => l,
        Err(e) => return Outcome::Failed(format!("bind: {e}")),
    };
    let dst = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(format!("getsockname: {e}")),
    };
    let mut stream = match sys::stream_connect(domain, protocol, dst, timeout) {
        Ok(s) => s,
        // A blocking connect that runs into SO_SNDTIMEO fails with EINPROGRESS.
        Err(e) if is_timeout(&e) || e.raw_os_error() == Some(EINPROGRESS) => {
            return Outcome::Blocked(format!(
                "no {what} handshake within {} ms",
                timeout.as_millis()
            ))
        }
        Err(e) => return classify_send_error(&format!("{what} socket/connect"), &e),
    };
    let msg = b"e7-probe stream\n";
    if let Err(e) = stream.write_all(msg) {
        return classify_send_error("send", &e);
    }
    let mut conn = match accept_within(&listener, timeout) {
        Ok(c) => c,
        Err(o) => return o,
    };
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return Outcome::Blocked(format!(
                "no data over {what} within {} ms",
                timeout.as_millis()
            ));
        }
        match conn.read(&mut buf) {
            Ok(0) => return Outcome::Failed(format!("{what} peer closed without data")),
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or(&[])),
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Outcome::Failed(format!("read: {e}")),
        }
    }
    if got == msg {
        Outcome::Delivered(String::new())
    } else {
        Outcome::Failed(format!("unexpected data {got:?}"))
    }
}

/// One message over MPTCP (`IPPROTO_MPTCP`, built in, any user) to a plain TCP listener: the kernel
/// carries it on subflow sockets it creates itself.
pub fn mptcp(v6: bool, timeout: Duration) -> Outcome {
    let domain = if v6 { sys::AF_INET6 } else { sys::AF_INET };
    stream_via(domain, IPPROTO_MPTCP, v6, "MPTCP", timeout)
}

/// One message from an `AF_SMC` socket to a plain TCP listener in another program over the loopback.
/// Without RDMA or ISM devices SMC falls back to TCP over its internal, kernel-created TCP socket
/// (`clcsock`); delivered when the listener (`SINK sink4|sink6`, whose verdicts are its own, so only
/// the SMC side's packets are judged) reads the message within `timeout`.
pub fn smc(v6: bool, sink: &str, timeout: Duration) -> Outcome {
    use std::io::BufRead;
    let proto = if v6 { SMCPROTO_SMC6 } else { SMCPROTO_SMC };
    let mut child = match std::process::Command::new(sink)
        .arg(if v6 { "sink6" } else { "sink4" })
        .stdout(std::process::Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return Outcome::Failed(format!("cannot run the sink {sink}: {e}")),
    };
    let mut line = String::new();
    if let Some(out) = child.stdout.take() {
        let _ = std::io::BufReader::new(out).read_line(&mut line);
    }
    let Some(port) = line
        .trim()
        .strip_prefix("port ")
        .and_then(|p| p.parse::<u16>().ok())
    else {
        let _ = child.kill();
        let _ = child.wait();
        return Outcome::Failed(format!("sink said {line:?}, expected `port N`"));
    };
    let dst = SocketAddr::new(loopback(v6), port);
    let sent = match sys::stream_connect(sys::AF_SMC, proto, dst, timeout) {
        Ok(mut stream) => stream.write_all(b"e7-probe stream\n").map(|()| stream),
        Err(e) => Err(e),
    };
    let status = child.wait();
    match (sent, status) {
        (Ok(_), Ok(st)) if st.success() => Outcome::Delivered(String::new()),
        (Ok(_), Ok(_)) => Outcome::Blocked(format!(
            "the sink read nothing within {} ms",
            timeout.as_millis()
        )),
        (Err(e), _) if is_timeout(&e) || e.raw_os_error() == Some(EINPROGRESS) => Outcome::Blocked(
            format!("no SMC handshake within {} ms", timeout.as_millis()),
        ),
        (Err(e), _) => classify_send_error("SMC socket/connect/send", &e),
        (_, Err(e)) => Outcome::Failed(format!("sink: {e}")),
    }
}

/// The other end of [`smc`]: a loopback TCP listener that first connects to itself once (its own
/// SYN leaves in task context and identifies this process image; the listener's SYN-ACK is then
/// decided in softirq by that known image and the listener is cached), so a client's SYN-ACK is
/// decided at once (a listener no one has seen loses its first SYN-ACK to deferred identification,
/// and an SMC client whose handshake is delayed by a second fails with EPROTO). Prints `port N` and
/// reads one connection's line. Exit 0: the probe's message arrived; 1: nothing in time; 2: anything
/// else.
pub fn sink(v6: bool, timeout: Duration) -> std::process::ExitCode {
    use std::process::ExitCode;
    let listener = match TcpListener::bind((loopback(v6), 0)) {
        Ok(l) => l,
        Err(e) => {
            println!("error: bind: {e}");
            return ExitCode::from(2);
        }
    };
    let Ok(addr) = listener.local_addr() else {
        println!("error: getsockname");
        return ExitCode::from(2);
    };
    let port = addr.port();
    if let Ok(own) = TcpStream::connect_timeout(&addr, timeout) {
        drop(own);
        let _ = accept_within(&listener, timeout);
    }
    println!("port {port}");
    let _ = std::io::stdout().flush();
    let mut conn = match accept_within(&listener, timeout) {
        Ok(c) => c,
        Err(_) => return ExitCode::from(1),
    };
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while !got.ends_with(b"\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.set_read_timeout(Some(left)).is_err() {
            return ExitCode::from(1);
        }
        match conn.read(&mut buf) {
            Ok(0) => return ExitCode::from(1),
            Ok(n) => got.extend_from_slice(buf.get(..n).unwrap_or(&[])),
            Err(e) if is_timeout(&e) => continue,
            Err(_) => return ExitCode::from(2),
        }
    }
    if got == b"e7-probe stream\n" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(2)
    }
}

/// `IPPROTO_SCTP`.
const IPPROTO_SCTP: i32 = 132;

/// One SCTP message over the loopback between two one-to-many sockets of this process: delivered when
/// the listener receives it within `timeout`. A drop at `LOCAL_OUT` does not fail `sendto` (SCTP
/// queues the message and sends the association's INIT itself), so only the receipt tells.
pub fn sctp(v6: bool, timeout: Duration) -> Outcome {
    let domain = if v6 { sys::AF_INET6 } else { sys::AF_INET };
    let open = || sys::datagram_socket(domain, sys::SOCK_SEQPACKET, IPPROTO_SCTP);
    let listener = match open() {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("SCTP socket (is sctp.ko loaded?): {e}")),
    };
    if let Err(e) = sys::bind_loopback_and_listen(&listener, v6) {
        return Outcome::Failed(format!("SCTP bind/listen: {e}"));
    }
    let dst = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(format!("SCTP getsockname: {e}")),
    };
    let sender = match open() {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("SCTP socket: {e}")),
    };
    // sendto waits for the new association to come up (SO_SNDTIMEO, unbounded by default): bound it,
    // or a dropped INIT would keep the probe waiting through every INIT retransmission.
    if sender.set_write_timeout(Some(timeout)).is_err() {
        return Outcome::Failed("SCTP: cannot set a send timeout".into());
    }
    if let Err(e) = sender.send_to(b"e7-probe sctp", dst) {
        return classify_send_error("sendto", &e);
    }
    let deadline = Instant::now() + timeout;
    let mut buf = [0u8; 64];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Outcome::Blocked(format!("no SCTP message within {} ms", timeout.as_millis()));
        }
        if listener.set_read_timeout(Some(left)).is_err() {
            return Outcome::Failed("SCTP: cannot set a receive timeout".into());
        }
        match listener.recv(&mut buf) {
            Ok(n) if buf.get(..n) == Some(&b"e7-probe sctp"[..]) => {
                return Outcome::Delivered(String::new())
            }
            Ok(_) => continue,
            Err(e) if is_timeout(&e) => continue,
            Err(e) => return Outcome::Failed(format!("SCTP recv: {e}")),
        }
    }
}

/// One short-lived socket that sends one message to `dst` (the storm's unit of work). UDP: delivered when
/// `sendto` succeeds. TCP: delivered when the handshake completes and the write is accepted.
pub fn one_shot(proto: Proto, dst: SocketAddr, timeout: Duration) -> Outcome {
    match proto {
        Proto::Udp4 | Proto::Udp6 | Proto::Udp4m | Proto::Udp6x => {
            let s = match UdpSocket::bind((proto.sender_bind(), 0)) {
                Ok(s) => s,
                Err(e) => return Outcome::Failed(format!("bind: {e}")),
            };
            match s.send_to(b"e7-probe storm", dst) {
                Ok(_) => Outcome::Delivered(String::new()),
                Err(e) => classify_send_error("sendto", &e),
            }
        }
        Proto::Tcp4 | Proto::Tcp6 | Proto::Tcp4m => match TcpStream::connect_timeout(&dst, timeout)
        {
            Ok(mut c) => match c.write_all(b"e7-probe storm\n") {
                Ok(()) => Outcome::Delivered(String::new()),
                Err(e) => classify_send_error("send", &e),
            },
            Err(e) if is_timeout(&e) => Outcome::Blocked("no TCP handshake".into()),
            Err(e) => classify_send_error("connect", &e),
        },
        Proto::Icmp4 | Proto::Icmp6 => {
            Outcome::Failed("storms use udp4, udp6, tcp4 or tcp6".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(2000);

    #[test]
    fn proto_names_round_trip() {
        for p in Proto::ALL {
            assert_eq!(Proto::parse(p.name()), Some(p));
        }
        assert_eq!(Proto::parse("udp"), Some(Proto::Udp4));
        assert_eq!(Proto::parse("sctp"), None);
    }

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(Outcome::Delivered(String::new()).exit_code(), 0);
        assert_eq!(Outcome::Blocked("EPERM".into()).exit_code(), 1);
        assert_eq!(Outcome::Failed("x".into()).exit_code(), 2);
        assert_eq!(
            Outcome::Blocked("EPERM".into()).to_string(),
            "blocked (EPERM)"
        );
        assert_eq!(Outcome::Delivered(String::new()).to_string(), "delivered");
    }

    #[test]
    fn eperm_is_blocked_other_errors_are_failures() {
        let eperm = io::Error::from_raw_os_error(EPERM);
        assert_eq!(
            classify_send_error("sendto", &eperm),
            Outcome::Blocked("EPERM".into())
        );
        let refused = io::Error::from_raw_os_error(111);
        assert!(
            matches!(classify_send_error("sendto", &refused), Outcome::Failed(m) if m.starts_with("sendto:"))
        );
    }

    #[test]
    fn echo_packets_are_recognised_by_type_and_sequence() {
        let req = echo_request(false, 7);
        assert_eq!(req.first(), Some(&8));
        let mut reply = req.clone();
        reply[0] = 0;
        assert!(is_echo_reply(&reply, false, 7));
        assert!(
            !is_echo_reply(&reply, false, 8),
            "another sequence number is not our reply"
        );
        assert!(
            !is_echo_reply(&req, false, 7),
            "our own request is not a reply"
        );
        let mut reply6 = echo_request(true, 3);
        assert_eq!(reply6.first(), Some(&128));
        reply6[0] = 129;
        assert!(is_echo_reply(&reply6, true, 3));
        assert!(
            !is_echo_reply(&[0], false, 0),
            "a truncated packet is not a reply"
        );
    }

    #[test]
    fn a_missing_echo_reply_is_a_block_only_for_icmpv6() {
        let t = Duration::from_millis(5);
        assert_eq!(
            no_echo_reply(false, t).exit_code(),
            0,
            "v4: sendto succeeded, the request left"
        );
        let v6 = no_echo_reply(true, t);
        assert_eq!(v6.exit_code(), 1);
        assert!(v6.to_string().contains("no echo reply"), "{v6}");
    }

    #[test]
    fn icmp4_checksum_verifies_to_zero() {
        let req = echo_request(false, 0x1234);
        assert_eq!(
            internet_checksum(&req),
            0,
            "a packet with its checksum folds to zero"
        );
        assert_eq!(
            internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            !0xddf2
        );
    }

    #[test]
    fn udp4_loopback_is_delivered_twice_on_one_session() {
        let mut s = Session::open(Proto::Udp4, 0, T).expect("open");
        assert_eq!(s.exchange(T), Outcome::Delivered(String::new()));
        assert_eq!(s.exchange(T), Outcome::Delivered(String::new()));
    }

    #[test]
    fn dual_stack_variants_send_ipv4_from_an_ipv6_socket() {
        let rx: SocketAddr = "127.0.0.1:5".parse().expect("addr");
        assert_eq!(
            Proto::Udp4m.sender_view(rx).to_string(),
            "[::ffff:127.0.0.1]:5"
        );
        assert_eq!(Proto::Udp4.sender_view(rx), rx);
        for p in [Proto::Udp4m, Proto::Tcp4m] {
            let mut s = Session::open(p, 0, T).expect("open");
            assert_eq!(
                s.exchange(T),
                Outcome::Delivered(String::new()),
                "{}",
                p.name()
            );
        }
    }

    #[test]
    fn tcp4_loopback_is_delivered_twice_on_one_connection() {
        let mut s = Session::open(Proto::Tcp4, 0, T).expect("open");
        assert_eq!(s.exchange(T), Outcome::Delivered(String::new()));
        assert_eq!(s.exchange(T), Outcome::Delivered(String::new()));
    }

    #[test]
    fn udp_receiver_that_never_gets_data_reports_failure_not_delivery() {
        // A receiver nobody sends to: recv_matching must time out rather than report success.
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind");
        assert!(!recv_matching(&rx, b"x", Duration::from_millis(50)).expect("recv"));
    }

    #[test]
    fn tcp_storm_unit_reaches_a_listener() {
        let l = TcpListener::bind("127.0.0.1:0").expect("listen");
        let dst = l.local_addr().expect("addr");
        assert_eq!(
            one_shot(Proto::Tcp4, dst, T),
            Outcome::Delivered(String::new())
        );
        assert!(matches!(one_shot(Proto::Icmp4, dst, T), Outcome::Failed(_)));
    }
}
