//! Traffic to a chosen destination, for rules with `to` and `port` (issue 11).
//!
//! The VM has only the loopback interface, but every address routed to it is local: all of
//! `127.0.0.0/8`, and any address the case adds to `lo` (`10.1.0.1`, `2001:db8::1`). So a
//! receiver bound on such an address is a distinct destination the hook sees, and delivery can
//! be checked end to end. Every command binds its receivers first, then sends; a send refused
//! with `EPERM` is the drop.

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::time::Duration;

use crate::net::{classify_send_error, Outcome};
use crate::sys;

/// What `to` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// One datagram from an unconnected UDP socket (`sendto`).
    Udp,
    /// One message over a fresh TCP connection.
    Tcp,
    /// `Udp` over IPv6 behind a Destination Options extension header (root).
    UdpX,
}

impl Kind {
    /// The command-line word.
    pub fn parse(s: &str) -> Option<Kind> {
        match s {
            "udp" => Some(Kind::Udp),
            "tcp" => Some(Kind::Tcp),
            "udpx" => Some(Kind::UdpX),
            _ => None,
        }
    }
}

fn unspecified(addr: IpAddr) -> IpAddr {
    if addr.is_ipv6() {
        IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED)
    } else {
        IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
}

fn receiver(addr: IpAddr, port: u16) -> Result<(UdpSocket, SocketAddr), Outcome> {
    let rx = UdpSocket::bind((addr, port))
        .map_err(|e| Outcome::Failed(format!("bind receiver [{addr}]:{port}: {e}")))?;
    let at = rx
        .local_addr()
        .map_err(|e| Outcome::Failed(format!("receiver address: {e}")))?;
    Ok((rx, at))
}

/// Whether `msg` arrives at `rx` within `timeout` (other datagrams are skipped).
fn arrives(rx: &UdpSocket, msg: &[u8], timeout: Duration) -> Result<bool, Outcome> {
    rx.set_read_timeout(Some(timeout))
        .map_err(|e| Outcome::Failed(format!("receiver timeout: {e}")))?;
    let mut buf = [0u8; 256];
    loop {
        match rx.recv(&mut buf) {
            Ok(n) if buf.get(..n) == Some(msg) => return Ok(true),
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return Ok(false)
            }
            Err(e) => return Err(Outcome::Failed(format!("receive: {e}"))),
        }
    }
}

/// One exchange to `addr`:`port` (0: any free port).
pub fn to(kind: Kind, addr: IpAddr, port: u16, timeout: Duration) -> Outcome {
    match kind {
        Kind::Udp | Kind::UdpX => {
            let (rx, dst) = match receiver(addr, port) {
                Ok(r) => r,
                Err(o) => return o,
            };
            let tx = match UdpSocket::bind((unspecified(addr), 0)) {
                Ok(s) => s,
                Err(e) => return Outcome::Failed(format!("bind sender: {e}")),
            };
            if kind == Kind::UdpX {
                if !addr.is_ipv6() {
                    return Outcome::Failed("udpx needs an IPv6 address".into());
                }
                if let Err(e) = sys::set_ipv6_dstopts(&tx) {
                    return Outcome::Failed(format!("setsockopt IPV6_DSTOPTS (needs root): {e}"));
                }
            }
            let msg = format!("e7-probe to {dst}");
            if let Err(e) = tx.send_to(msg.as_bytes(), dst) {
                return classify_send_error("sendto", &e);
            }
            match arrives(&rx, msg.as_bytes(), timeout) {
                Ok(true) => Outcome::Delivered(format!("udp to {dst}")),
                Ok(false) => Outcome::Blocked(format!("nothing arrived at {dst}")),
                Err(o) => o,
            }
        }
        Kind::Tcp => {
            let listener = match TcpListener::bind((addr, port)) {
                Ok(l) => l,
                Err(e) => return Outcome::Failed(format!("listen on [{addr}]:{port}: {e}")),
            };
            let dst = match listener.local_addr() {
                Ok(a) => a,
                Err(e) => return Outcome::Failed(format!("listener address: {e}")),
            };
            let mut client = match TcpStream::connect_timeout(&dst, timeout) {
                Ok(c) => c,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return Outcome::Blocked(format!("no TCP handshake with {dst}"))
                }
                Err(e) => return classify_send_error("connect", &e),
            };
            if let Err(e) = client.write_all(b"e7-probe to\n") {
                return classify_send_error("send", &e);
            }
            if let Err(e) = listener.set_nonblocking(false) {
                return Outcome::Failed(format!("listener: {e}"));
            }
            let (mut server, _) = match listener.accept() {
                Ok(s) => s,
                Err(e) => return Outcome::Failed(format!("accept: {e}")),
            };
            let _ = server.set_read_timeout(Some(timeout));
            let mut buf = [0u8; 12];
            match server.read_exact(&mut buf) {
                Ok(()) if &buf == b"e7-probe to\n" => Outcome::Delivered(format!("tcp to {dst}")),
                Ok(()) => Outcome::Failed("wrong bytes arrived".into()),
                Err(_) => Outcome::Blocked(format!("the message did not reach {dst}")),
            }
        }
    }
}

/// Counts of one destination's sends.
#[derive(Debug, Default, Clone, Copy)]
struct Tally {
    ok: u32,
    blocked: u32,
    errors: u32,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Delivered(_) => self.ok += 1,
            Outcome::Blocked(_) => self.blocked += 1,
            Outcome::Failed(_) => self.errors += 1,
        }
    }
}

/// One send of `msg` on `tx` (to `dst`, or connected when `None`), checked at `rx`.
fn send_one(
    tx: &UdpSocket,
    dst: Option<SocketAddr>,
    rx: &UdpSocket,
    msg: &[u8],
    timeout: Duration,
) -> Outcome {
    let sent = match dst {
        Some(d) => tx.send_to(msg, d),
        None => tx.send(msg),
    };
    if let Err(e) = sent {
        return classify_send_error("send", &e);
    }
    match arrives(rx, msg, timeout) {
        Ok(true) => Outcome::Delivered(String::new()),
        Ok(false) => Outcome::Blocked("did not arrive".into()),
        Err(o) => o,
    }
}

/// Prints `NAME a_ok=.. a_blocked=.. b_ok=.. b_blocked=.. errors=..` for the two destinations' tallies
/// (or `NAME <failure>`); the exit code: 0, or 2 when a send failed otherwise than blocked.
fn report_pair(name: &str, r: Result<(Tally, Tally), Outcome>) -> u8 {
    match r {
        Ok((ta, tb)) => {
            println!(
                "{name} a_ok={} a_blocked={} b_ok={} b_blocked={} errors={}",
                ta.ok,
                ta.blocked,
                tb.ok,
                tb.blocked,
                ta.errors + tb.errors
            );
            u8::from(ta.errors + tb.errors != 0) * 2
        }
        Err(o) => {
            println!("{name} {o}");
            2
        }
    }
}

/// ONE unconnected UDP socket sends to `a`, then `b`, `rounds` times; prints
/// `alternate a_ok=.. a_blocked=.. b_ok=.. b_blocked=.. errors=..`. Exit 0 unless a send failed
/// for another reason than the firewall.
pub fn alternate(a: IpAddr, b: IpAddr, port: u16, rounds: u32, timeout: Duration) -> u8 {
    let run = || -> Result<(Tally, Tally), Outcome> {
        let (rxa, da) = receiver(a, port)?;
        let (rxb, db) = receiver(b, port)?;
        if a.is_ipv6() != b.is_ipv6() {
            return Err(Outcome::Failed(
                "both addresses must be of one family".into(),
            ));
        }
        let tx = UdpSocket::bind((unspecified(a), 0))
            .map_err(|e| Outcome::Failed(format!("bind sender: {e}")))?;
        let (mut ta, mut tb) = (Tally::default(), Tally::default());
        for i in 0..rounds {
            ta.add(&send_one(
                &tx,
                Some(da),
                &rxa,
                format!("a{i}").as_bytes(),
                timeout,
            ));
            tb.add(&send_one(
                &tx,
                Some(db),
                &rxb,
                format!("b{i}").as_bytes(),
                timeout,
            ));
        }
        Ok((ta, tb))
    };
    report_pair("alternate", run())
}

/// ONE UDP socket sends to `addr`:`port` `rounds` times, connected to it (`connect`) or with
/// `sendto` on an unconnected socket; prints `connected ok=.. blocked=.. errors=..` (or `sendto
/// ...`). Exit 0 unless a send failed for another reason.
pub fn connected(addr: IpAddr, port: u16, rounds: u32, connect: bool, timeout: Duration) -> u8 {
    let what = if connect { "connected" } else { "sendto" };
    let run = || -> Result<Tally, Outcome> {
        let (rx, dst) = receiver(addr, port)?;
        let tx = UdpSocket::bind((unspecified(addr), 0))
            .map_err(|e| Outcome::Failed(format!("bind sender: {e}")))?;
        if connect {
            tx.connect(dst)
                .map_err(|e| Outcome::Failed(format!("connect: {e}")))?;
        }
        let to = (!connect).then_some(dst);
        let mut t = Tally::default();
        for i in 0..rounds {
            t.add(&send_one(&tx, to, &rx, format!("c{i}").as_bytes(), timeout));
        }
        Ok(t)
    };
    match run() {
        Ok(t) => {
            println!(
                "{what} ok={} blocked={} errors={}",
                t.ok, t.blocked, t.errors
            );
            u8::from(t.errors != 0) * 2
        }
        Err(o) => {
            println!("{what} {o}");
            2
        }
    }
}

/// ONE UDP socket connected to `a` sends, is connected to `b` (same port) and sends, `rounds`
/// times: a reconnect must never carry `a`'s cached verdict to `b`. Prints like [`alternate`].
pub fn reconnect(a: IpAddr, b: IpAddr, port: u16, rounds: u32, timeout: Duration) -> u8 {
    let run = || -> Result<(Tally, Tally), Outcome> {
        let (rxa, da) = receiver(a, port)?;
        let (rxb, db) = receiver(b, da.port())?;
        let tx = UdpSocket::bind((unspecified(a), 0))
            .map_err(|e| Outcome::Failed(format!("bind sender: {e}")))?;
        let (mut ta, mut tb) = (Tally::default(), Tally::default());
        for i in 0..rounds {
            tx.connect(da)
                .map_err(|e| Outcome::Failed(format!("connect: {e}")))?;
            ta.add(&send_one(
                &tx,
                None,
                &rxa,
                format!("a{i}").as_bytes(),
                timeout,
            ));
            ta.add(&send_one(
                &tx,
                None,
                &rxa,
                format!("A{i}").as_bytes(),
                timeout,
            ));
            tx.connect(db)
                .map_err(|e| Outcome::Failed(format!("connect: {e}")))?;
            tb.add(&send_one(
                &tx,
                None,
                &rxb,
                format!("b{i}").as_bytes(),
                timeout,
            ));
        }
        Ok((ta, tb))
    };
    report_pair("reconnect", run())
}

/// How `route` sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    /// An unconnected UDP socket: `sendto(FINAL)` through the route, then (option removed)
    /// `sendto(first hop)`.
    Udp,
    /// A UDP socket connected to FINAL: a plain send, a send through the route, a plain send.
    Connected,
    /// A TCP connection to FINAL through the route (the option set before `connect`), one message
    /// checked at the listener: it arrives only where the VM processes the route (IPv6
    /// `seg6_enabled`).
    Tcp,
}

impl RouteKind {
    /// The command-line word.
    pub fn parse(s: &str) -> Option<RouteKind> {
        match s {
            "udp" => Some(RouteKind::Udp),
            "connected" => Some(RouteKind::Connected),
            "tcp" => Some(RouteKind::Tcp),
            _ => None,
        }
    }
}

/// One send through a route: `sent` (the packet left: the hook accepted it), `blocked` (EPERM),
/// or the error. Not checked at a receiver: the VM does not forward source-routed packets.
fn routed_send(tx: &UdpSocket, dst: Option<SocketAddr>, msg: &[u8]) -> Outcome {
    let sent = match dst {
        Some(d) => tx.send_to(msg, d),
        None => tx.send(msg),
    };
    match sent {
        Ok(_) => Outcome::Delivered("sent".into()),
        Err(e) => classify_send_error("send through the route", &e),
    }
}

fn word(o: &Outcome, ok: &str) -> String {
    match o {
        Outcome::Delivered(_) => ok.into(),
        Outcome::Blocked(_) => "blocked".into(),
        Outcome::Failed(e) => format!("error({e})"),
    }
}

/// UDP to `fin` through `hops` (first hop first; IPv6: a segment routing header, IPv4: a loose
/// source route, both as an unprivileged socket may set them), next to plain sends on the same
/// socket (see [`RouteKind`]). Prints `route routed=sent|blocked plain=delivered|blocked` (udp) or
/// `route before=.. routed=.. after=..` (connected); exit code of the routed send: 0 sent, 1
/// blocked, 2 error.
pub fn route(kind: RouteKind, fin: IpAddr, hops: &[IpAddr], timeout: Duration) -> u8 {
    let run = || -> Result<(Option<Outcome>, Outcome, Outcome), Outcome> {
        let Some(&first) = hops.first() else {
            return Err(Outcome::Failed("no hop".into()));
        };
        if hops.iter().any(|h| h.is_ipv6() != fin.is_ipv6()) {
            return Err(Outcome::Failed("hops and FINAL must be one family".into()));
        }
        // One receiver on every local address, so no plain send meets a port unreachable.
        let (rx, at) = receiver(unspecified(fin), 0)?;
        let port = at.port();
        let tx = UdpSocket::bind((unspecified(fin), 0))
            .map_err(|e| Outcome::Failed(format!("bind sender: {e}")))?;
        let set = || {
            sys::set_route(&tx, hops)
                .map_err(|e| Outcome::Failed(format!("setsockopt route option: {e}")))
        };
        let clear = || {
            sys::clear_route(&tx, fin.is_ipv6())
                .map_err(|e| Outcome::Failed(format!("remove route option: {e}")))
        };
        let final_dst = SocketAddr::new(fin, port);
        match kind {
            RouteKind::Tcp => Ok((
                None,
                route_tcp(fin, hops, timeout),
                Outcome::Delivered(String::new()),
            )),
            RouteKind::Udp => {
                set()?;
                let routed = routed_send(&tx, Some(final_dst), b"e7-probe routed");
                clear()?;
                let plain = send_one(
                    &tx,
                    Some(SocketAddr::new(first, port)),
                    &rx,
                    b"e7-probe plain",
                    timeout,
                );
                Ok((None, routed, plain))
            }
            RouteKind::Connected => {
                tx.connect(final_dst)
                    .map_err(|e| Outcome::Failed(format!("connect: {e}")))?;
                let before = send_one(&tx, None, &rx, b"e7-probe before", timeout);
                set()?;
                let routed = routed_send(&tx, None, b"e7-probe routed");
                clear()?;
                let after = send_one(&tx, None, &rx, b"e7-probe after", timeout);
                Ok((Some(before), routed, after))
            }
        }
    };
    match run() {
        Ok((before, routed, plain)) => {
            match before {
                None if kind == RouteKind::Tcp => {
                    println!("route routed={}", word(&routed, "delivered"))
                }
                None => println!(
                    "route routed={} plain={}",
                    word(&routed, "sent"),
                    word(&plain, "delivered")
                ),
                Some(b) => println!(
                    "route before={} routed={} after={}",
                    word(&b, "delivered"),
                    word(&routed, "sent"),
                    word(&plain, "delivered")
                ),
            }
            routed.exit_code()
        }
        Err(o) => {
            println!("route {o}");
            2
        }
    }
}

/// One TCP exchange with a listener on `fin` through `hops`: `Delivered` when the message arrived,
/// `Blocked` on EPERM or when no handshake completed within `timeout` (the SYN was dropped).
fn route_tcp(fin: IpAddr, hops: &[IpAddr], timeout: Duration) -> Outcome {
    let listener = match TcpListener::bind((fin, 0)) {
        Ok(l) => l,
        Err(e) => return Outcome::Failed(format!("listen on [{fin}]:0: {e}")),
    };
    let dst = match listener.local_addr() {
        Ok(a) => a,
        Err(e) => return Outcome::Failed(format!("listener address: {e}")),
    };
    let domain = if fin.is_ipv6() {
        sys::AF_INET6
    } else {
        sys::AF_INET
    };
    let mut client =
        match sys::stream_connect_with(domain, 6, dst, timeout, &|s| sys::set_route(s, hops)) {
            Ok(c) => c,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) || e.raw_os_error() == Some(115) =>
            {
                // EINPROGRESS: SO_SNDTIMEO ended the blocking connect.
                return Outcome::Blocked(format!("no TCP handshake with {dst}"));
            }
            Err(e) => return classify_send_error("connect", &e),
        };
    if let Err(e) = client.write_all(b"e7-probe route\n") {
        return classify_send_error("send", &e);
    }
    let (mut server, _) = match listener.accept() {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("accept: {e}")),
    };
    let _ = server.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 15];
    match server.read_exact(&mut buf) {
        Ok(()) if &buf == b"e7-probe route\n" => Outcome::Delivered(format!("tcp to {dst}")),
        Ok(()) => Outcome::Failed("wrong bytes arrived".into()),
        Err(_) => Outcome::Blocked(format!("the message did not reach {dst}")),
    }
}
