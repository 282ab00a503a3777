//! `e7-probe`: the traffic generator of the e7 VM tests.
//!
//! e7 decides per *program*, so the end-to-end tests need a program whose path they control and that can
//! produce every kind of traffic the module distinguishes: TCP, UDP and ICMP over IPv4 and IPv6, other IP
//! protocols, many short sockets from many processes, a long-lived socket across a rule change, and the same
//! traffic from an unprivileged user. The VM copies this one static binary to several paths
//! (`/opt/a/e7-probe`, `/opt/b/e7-probe`, a path longer than 255 bytes) and each copy is a different
//! "program" to the firewall.
//!
//! Every traffic command prints one result line and exits 0 when delivered, 1 when blocked, 2 on any other
//! error (including bad usage), so shell cases can branch on the exit code alone.
#![deny(unsafe_code)]

mod dest;
mod fuzz;
mod genl;
mod net;
mod sys;
mod uring;

use std::fmt;
use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use net::{Outcome, Proto, Session};

const USAGE: &str = "\
usage: e7-probe [--timeout MS] COMMAND ...
traffic (exit 0 delivered, 1 blocked, 2 error):
  udp4|udp6|tcp4|tcp6|icmp4|icmp6|udp4m|tcp4m|udp6x [PORT]
                                           one exchange with a loopback receiver (PORT 0/absent: any free)
  raw4|raw6 IPPROTO                        one datagram of another IP protocol on a raw socket (root)
  uring4|uring6 [worker]                   one UDP datagram with IORING_OP_SEND + IOSQE_FIXED_FILE on a
                                           registered socket whose descriptor was closed (worker: from an
                                           io-wq worker thread, IOSQE_ASYNC)
  inherit4|inherit6 PROG                   PROG (exec'ed with this process's connected UDP socket) sends
                                           first, then this program sends on the same socket; exit code of
                                           this program's send
  steal4|steal6 PROG                       PROG creates a connected UDP socket and sends first; this
                                           program takes it with pidfd_getfd(2) and sends; exit code of
                                           this program's send
  udplite4|udplite6                        one UDP-Lite datagram to the loopback (any user)
  sctp4|sctp6                              one SCTP message between two sockets of this process (sctp.ko)
  smc4|smc6 SINK                           one message from an AF_SMC socket to a TCP listener in another
                                           program, SINK (run as `SINK sink4|sink6`; needs smc.ko)
  sink4|sink6                              listen on the loopback, print `port N`, read one connection's line;
                                           exit 0 when it is the probe's message, 1 when none came in time
  mptcp4|mptcp6                            one message from an MPTCP socket to a TCP listener
  flip v4|v6 GATEFILE AFTER [fresh]        UDP sends on ONE connected socket in a tight loop (`fresh`: a new
                                           connected socket for every send, all from this one process); each
                                           send first checks whether GATEFILE exists; AFTER sends after it
                                           appeared, prints `flip before_ok=.. before_blocked=.. after_ok=..
                                           after_blocked=.. errors=..` (prints `running` once the first send
                                           returned)
  twophase PROTO GATEFILE [PORT]           exchange, wait until GATEFILE exists, exchange again on the SAME
                                           socket; prints `phase1 ...`, `phase2 ...`; exit code of phase 2
  storm SOCKETS PROCS [udp4|udp6|tcp4|tcp6 [PORT]]
                                           SOCKETS short-lived sockets spread over PROCS processes (copies of
                                           this executable; TCP: 64 connects in flight per process); exit 0
                                           all delivered, 1 all blocked, 2 mixed. PORT: connect to another
                                           program's listener there instead of our own
  listen4|listen6 PORT SECS                accept and close TCP connections on loopback PORT for SECS seconds
  churn SECS                               open, send once on, and close UDP sockets for SECS seconds
  hoard FDS SECS                           hold FDS descriptors (one UDP socket, dup'ed) for SECS seconds: a
                                           long process walk at little memory
  walkstorm SECS                           for SECS seconds: a fresh TCP listener, connected to by a helper
                                           process, again and again (each first SYN-ACK leaves from softirq on
                                           an unknown socket: a deferral, i.e. a walk as often as allowed)
  hold PORT SECS [udp4|udp6]               keep sending for SECS seconds; prints counts; exit 0
  beat PROTO MS TALLYFILE [ROUNDS]         the demo's background traffic: one PROTO exchange every MS
                                           milliseconds, printing nothing; after each, TALLYFILE is replaced
                                           by one line `PROG PROTO: rounds=N delivered=D blocked=B errors=E
                                           last=WORD`; ROUNDS 0 or absent: until killed
  after GATEFILE COMMAND...                wait until GATEFILE exists, then run COMMAND in this process (the
                                           binary-deleted-while-running case)
destinations (rules with `to`/`port`; ADDR must be local: 127.0.0.0/8, ::1 or an address on lo):
  to udp|tcp|udpx ADDR [PORT]              one exchange with a receiver bound on ADDR:PORT (udp: unconnected
                                           sendto; udpx: UDP over IPv6 behind a Destination Options header,
                                           root)
  alternate ADDR_A ADDR_B ROUNDS [PORT]    ONE unconnected UDP socket sends to A, then B, ROUNDS times; prints
                                           `alternate a_ok=.. a_blocked=.. b_ok=.. b_blocked=.. errors=..`
  reconnect ADDR_A ADDR_B ROUNDS [PORT]    ONE UDP socket: connect A, send twice, connect B, send, ROUNDS
                                           times; prints `reconnect a_ok=.. ..` (A counts two per round)
  connected ADDR ROUNDS [PORT]             ONE connected UDP socket sends ROUNDS times; prints
                                           `connected ok=.. blocked=.. errors=..`
  sendto ADDR ROUNDS [PORT]                ONE unconnected UDP socket sends to ADDR ROUNDS times; prints
                                           `sendto ok=.. blocked=.. errors=..`
  route udp|connected|tcp FINAL HOP[,HOP...]
                                           UDP to FINAL through the HOPs (first hop first): IPv6 a segment
                                           routing header (IPV6_RTHDR), IPv4 a loose source route
                                           (IP_OPTIONS), both allowed to any user. udp: unconnected sendto
                                           through the route, then (option removed) sendto the first hop;
                                           prints `route routed=sent|blocked plain=delivered|blocked`.
                                           connected: connected to FINAL, a plain send, one through the
                                           route, a plain one; prints `route before=.. routed=.. after=..`.
                                           tcp: one TCP exchange through the route (option set before
                                           connect); prints `route routed=delivered|blocked` (arrives only
                                           where the route is processed: IPv6 seg6_enabled).
                                           Exit code of the routed send (sent: the hook let it leave)
  udp4m|tcp4m are IPv4 from a dual-stack IPv6 socket (to ::ffff:127.0.0.1); udp6x is UDP over IPv6 behind a
  Destination Options header (root)
other:
  compat-query [RCVBUF]                    the original console's QUERY (no dump): walk the chained replies
                                           (SO_RCVBUF RCVBUF first, e.g. libnl's 32768); exit 0 when the chain
                                           holds exactly COUNT rules and the reply ended (NLMSG_DONE or ack 0)
  genl-fuzz SEED COUNT                     COUNT random and mutated requests to the e7 family (seeded);
                                           prints the figures; exit 0 unless the probe itself failed
  console SECS                             the original console: plain QUERY, then print every EVENT and the
                                           DISCONNECT as they arrive (`ready`, `event ...`, `disconnect ...`)
  dump-edit [CMD...]                       start a QUERY dump (NLM_F_DUMP) on a fresh socket, run CMD before
                                           reading anything, read to NLMSG_DONE; prints rules, COUNT and which
                                           messages carried NLM_F_DUMP_INTR; exit 0 when the dump ended
  as-user UID[:GID] CMD [ARG...]           drop to UID (and GID, default = UID, no supplementary groups), exec CMD
  userns [-n] [-M | -m SRC DST] CMD [ARG...]
                                           enter a new user namespace (any user; uid 0 inside), with -n also a
                                           new network namespace (loopback up), with -M a new mount namespace,
                                           with -m one where SRC is bind-mounted on DST; then exec CMD
options:
  --timeout MS                             how long to wait for delivery (default 1000, or $E7_PROBE_TIMEOUT_MS)";

/// A parsed command line.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Cmd {
    Hoard {
        fds: u32,
        secs: u64,
    },
    WalkStorm {
        secs: u64,
    },
    ConnectWorker,
    Probe {
        proto: Proto,
        port: u16,
    },
    Raw {
        v6: bool,
        ipproto: u8,
    },
    UdpLite {
        v6: bool,
    },
    Sctp {
        v6: bool,
    },
    Smc {
        v6: bool,
        sink: String,
    },
    Sink {
        v6: bool,
    },
    Mptcp {
        v6: bool,
    },
    UserNs {
        net: bool,
        mnt: bool,
        bind: Option<(PathBuf, PathBuf)>,
        cmd: Vec<String>,
    },
    Flip {
        v6: bool,
        gate: PathBuf,
        after: u32,
        fresh: bool,
    },
    TwoPhase {
        proto: Proto,
        gate: PathBuf,
        port: u16,
    },
    Storm {
        sockets: u32,
        procs: u32,
        proto: Proto,
        port: u16,
    },
    Listen {
        v6: bool,
        port: u16,
        secs: u64,
    },
    Churn {
        secs: u64,
    },
    StormWorker {
        proto: Proto,
        dst: SocketAddr,
        count: u32,
    },
    Hold {
        port: u16,
        secs: u64,
        proto: Proto,
    },
    Beat {
        proto: Proto,
        every: Duration,
        tally: PathBuf,
        rounds: u64,
    },
    AsUser {
        uid: u32,
        gid: u32,
        cmd: Vec<String>,
    },
    After {
        gate: PathBuf,
        inner: Box<Cmd>,
    },
    Uring {
        v6: bool,
        worker: bool,
    },
    Inherit {
        v6: bool,
        prog: String,
    },
    SendFd {
        fd: i32,
    },
    Steal {
        v6: bool,
        prog: String,
    },
    HoldSock {
        v6: bool,
        port: u16,
    },
    CompatQuery {
        rcvbuf: Option<u32>,
    },
    DumpEdit {
        edit: Vec<String>,
    },
    GenlFuzz {
        seed: u64,
        count: u32,
    },
    Console {
        secs: u64,
    },
    To {
        kind: dest::Kind,
        addr: std::net::IpAddr,
        port: u16,
    },
    Alternate {
        reconnect: bool,
        a: std::net::IpAddr,
        b: std::net::IpAddr,
        rounds: u32,
        port: u16,
    },
    Connected {
        addr: std::net::IpAddr,
        rounds: u32,
        port: u16,
        connect: bool,
    },
    Route {
        kind: dest::RouteKind,
        fin: std::net::IpAddr,
        hops: Vec<std::net::IpAddr>,
    },
    Help,
}

/// A command-line error: what was wrong and what would be right.
#[derive(Debug, Clone, PartialEq, Eq)]
struct UsageError(String);

impl fmt::Display for UsageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn usage_err<T>(msg: impl Into<String>) -> Result<T, UsageError> {
    Err(UsageError(msg.into()))
}

fn parse_num<T: std::str::FromStr>(
    what: &str,
    s: Option<&String>,
    range: &str,
) -> Result<T, UsageError> {
    let Some(s) = s else {
        return usage_err(format!("missing {what} ({range})"));
    };
    s.parse()
        .map_err(|_| UsageError(format!("{what} must be {range}, got {s:?}")))
}

fn parse_proto(
    s: Option<&String>,
    allowed: &[Proto],
    default: Option<Proto>,
) -> Result<Proto, UsageError> {
    let names: Vec<&str> = allowed.iter().map(|p| p.name()).collect();
    match s {
        None => default.map_or_else(
            || usage_err(format!("missing protocol (one of {})", names.join(", "))),
            Ok,
        ),
        Some(s) => match Proto::parse(s) {
            Some(p) if allowed.contains(&p) => Ok(p),
            _ => usage_err(format!(
                "protocol must be one of {}, got {s:?}",
                names.join(", ")
            )),
        },
    }
}

fn no_more(args: &[String], at: usize) -> Result<(), UsageError> {
    match args.get(at) {
        None => Ok(()),
        Some(extra) => usage_err(format!("unexpected extra argument {extra:?}")),
    }
}

const PORT_RANGE: &str = "a port number 0-65535";
const STORM_PROTOS: [Proto; 4] = [Proto::Udp4, Proto::Udp6, Proto::Tcp4, Proto::Tcp6];

/// Parses the arguments after the program name; returns the command and the delivery timeout.
fn parse(args: &[String]) -> Result<(Cmd, Duration), UsageError> {
    let mut timeout_ms: u64 = match std::env::var("E7_PROBE_TIMEOUT_MS") {
        Ok(v) => v.parse().map_err(|_| {
            UsageError(format!(
                "E7_PROBE_TIMEOUT_MS must be milliseconds, got {v:?}"
            ))
        })?,
        Err(_) => 1000,
    };
    let mut args = args;
    if args.first().map(String::as_str) == Some("--timeout") {
        timeout_ms = parse_num("--timeout", args.get(1), "milliseconds")?;
        args = args.get(2..).unwrap_or(&[]);
    }
    Ok((parse_cmd(args)?, Duration::from_millis(timeout_ms)))
}

/// Parses one command (everything after the options).
fn parse_cmd(args: &[String]) -> Result<Cmd, UsageError> {
    let Some(cmd) = args.first() else {
        return usage_err("missing command");
    };
    let cmd = match cmd.as_str() {
        "help" | "--help" | "-h" => Cmd::Help,
        p if Proto::parse(p).is_some() => {
            let proto = parse_proto(Some(&args[0]), &Proto::ALL, None)?;
            let port = match args.get(1) {
                None => 0,
                s => parse_num("PORT", s, PORT_RANGE)?,
            };
            no_more(args, 2)?;
            Cmd::Probe { proto, port }
        }
        "to" => {
            let kind = match args.get(1).map(String::as_str).and_then(dest::Kind::parse) {
                Some(k) => k,
                None => {
                    return usage_err(format!(
                        "to: expected udp, tcp or udpx, got {:?}",
                        args.get(1)
                    ))
                }
            };
            let addr = parse_num("ADDR", args.get(2), "an IPv4 or IPv6 address")?;
            let port = match args.get(3) {
                None => 0,
                s => parse_num("PORT", s, PORT_RANGE)?,
            };
            no_more(args, 4)?;
            Cmd::To { kind, addr, port }
        }
        "route" => {
            let Some(kind) = args
                .get(1)
                .map(String::as_str)
                .and_then(dest::RouteKind::parse)
            else {
                return usage_err(format!(
                    "route: expected udp, connected or tcp, got {:?}",
                    args.get(1)
                ));
            };
            let fin = parse_num("FINAL", args.get(2), "an IPv4 or IPv6 address")?;
            let Some(list) = args.get(3) else {
                return usage_err("route: missing HOP[,HOP...] (addresses, the first hop first)");
            };
            let hops = list
                .split(',')
                .map(|h| {
                    h.parse().map_err(|_| {
                        UsageError(format!(
                            "route: HOP must be an IPv4 or IPv6 address, got {h:?}"
                        ))
                    })
                })
                .collect::<Result<Vec<std::net::IpAddr>, _>>()?;
            no_more(args, 4)?;
            Cmd::Route { kind, fin, hops }
        }
        "alternate" | "reconnect" => {
            let a = parse_num("ADDR_A", args.get(1), "an IPv4 or IPv6 address")?;
            let b = parse_num("ADDR_B", args.get(2), "an IPv4 or IPv6 address")?;
            let rounds = parse_num("ROUNDS", args.get(3), "a number of rounds")?;
            let port = match args.get(4) {
                None => 0,
                s => parse_num("PORT", s, PORT_RANGE)?,
            };
            no_more(args, 5)?;
            Cmd::Alternate {
                reconnect: args[0] == "reconnect",
                a,
                b,
                rounds,
                port,
            }
        }
        "connected" | "sendto" => {
            let addr = parse_num("ADDR", args.get(1), "an IPv4 or IPv6 address")?;
            let rounds = parse_num("ROUNDS", args.get(2), "a number of sends")?;
            let port = match args.get(3) {
                None => 0,
                s => parse_num("PORT", s, PORT_RANGE)?,
            };
            no_more(args, 4)?;
            Cmd::Connected {
                addr,
                rounds,
                port,
                connect: args[0] == "connected",
            }
        }
        "raw4" | "raw6" => {
            let ipproto = parse_num("IPPROTO", args.get(1), "an IP protocol number 0-255")?;
            no_more(args, 2)?;
            Cmd::Raw {
                v6: args[0] == "raw6",
                ipproto,
            }
        }
        "uring4" | "uring6" => {
            let worker = match args.get(1).map(String::as_str) {
                None => false,
                Some("worker") => true,
                Some(o) => {
                    return usage_err(format!(
                        "{}: expected `worker` or nothing, got {o:?}",
                        args[0]
                    ))
                }
            };
            no_more(args, 2)?;
            Cmd::Uring {
                v6: args[0] == "uring6",
                worker,
            }
        }
        "inherit4" | "inherit6" => {
            let Some(prog) = args.get(1) else {
                return usage_err(format!(
                    "{}: missing PROG (the program that sends first)",
                    args[0]
                ));
            };
            no_more(args, 2)?;
            Cmd::Inherit {
                v6: args[0] == "inherit6",
                prog: prog.clone(),
            }
        }
        "steal4" | "steal6" => {
            let Some(prog) = args.get(1) else {
                return usage_err(format!(
                    "{}: missing PROG (the program that owns the socket and sends first)",
                    args[0]
                ));
            };
            no_more(args, 2)?;
            Cmd::Steal {
                v6: args[0] == "steal6",
                prog: prog.clone(),
            }
        }
        "hold-sock" => {
            let v6 = match args.get(1).map(String::as_str) {
                Some("4") => false,
                Some("6") => true,
                o => return usage_err(format!("hold-sock: expected 4 or 6, got {o:?}")),
            };
            let port = parse_num("PORT", args.get(2), PORT_RANGE)?;
            no_more(args, 3)?;
            Cmd::HoldSock { v6, port }
        }
        "send-fd" => {
            let fd = parse_num("FD", args.get(1), "an inherited descriptor number")?;
            no_more(args, 2)?;
            Cmd::SendFd { fd }
        }
        "udplite4" | "udplite6" => {
            no_more(args, 1)?;
            Cmd::UdpLite {
                v6: args[0] == "udplite6",
            }
        }
        "sctp4" | "sctp6" => {
            no_more(args, 1)?;
            Cmd::Sctp {
                v6: args[0] == "sctp6",
            }
        }
        "smc4" | "smc6" => {
            let Some(sink) = args.get(1) else {
                return usage_err(format!(
                    "{}: missing SINK (the program that listens: runs `SINK sink4|sink6`)",
                    args[0]
                ));
            };
            no_more(args, 2)?;
            Cmd::Smc {
                v6: args[0] == "smc6",
                sink: sink.clone(),
            }
        }
        "sink4" | "sink6" => {
            no_more(args, 1)?;
            Cmd::Sink {
                v6: args[0] == "sink6",
            }
        }
        "mptcp4" | "mptcp6" => {
            no_more(args, 1)?;
            Cmd::Mptcp {
                v6: args[0] == "mptcp6",
            }
        }
        "userns" => {
            let mut rest = args.get(1..).unwrap_or(&[]);
            let mut net = false;
            let mut mnt = false;
            let mut bind = None;
            loop {
                match rest.first().map(String::as_str) {
                    Some("-n") => {
                        net = true;
                        rest = &rest[1..];
                    }
                    Some("-M") => {
                        mnt = true;
                        rest = &rest[1..];
                    }
                    Some("-m") => {
                        let (Some(src), Some(dst)) = (rest.get(1), rest.get(2)) else {
                            return usage_err(
                                "userns -m: needs SRC and DST (bind-mount SRC on DST)",
                            );
                        };
                        bind = Some((PathBuf::from(src), PathBuf::from(dst)));
                        mnt = true;
                        rest = &rest[3..];
                    }
                    _ => break,
                }
            }
            if rest.is_empty() {
                return usage_err("userns: missing the command to run");
            }
            Cmd::UserNs {
                net,
                mnt,
                bind,
                cmd: rest.to_vec(),
            }
        }
        "flip" => {
            let v6 = match args.get(1).map(String::as_str) {
                Some("v4") => false,
                Some("v6") => true,
                other => {
                    return usage_err(format!("flip: want v4 or v6 as the family, got {other:?}"))
                }
            };
            let Some(gate) = args.get(2) else {
                return usage_err(
                    "flip: missing GATEFILE (a path the test creates after its change)",
                );
            };
            let after: u32 = parse_num("AFTER", args.get(3), "a send count 1-100000")?;
            if after == 0 || after > 100_000 {
                return usage_err(format!("flip: AFTER must be 1-100000, got {after}"));
            }
            let fresh = match args.get(4).map(String::as_str) {
                None => false,
                Some("fresh") => true,
                Some(other) => {
                    return usage_err(format!(
                        "flip: the optional 4th argument is `fresh` (a new socket per send), got `{other}`"
                    ))
                }
            };
            no_more(args, 5)?;
            Cmd::Flip {
                v6,
                gate: PathBuf::from(gate),
                after,
                fresh,
            }
        }
        "twophase" => {
            let proto = parse_proto(args.get(1), &Proto::ALL, None)?;
            let Some(gate) = args.get(2) else {
                return usage_err(
                    "twophase: missing GATEFILE (a path that the test creates to start phase 2)",
                );
            };
            let port = match args.get(3) {
                None => 0,
                s => parse_num("PORT", s, PORT_RANGE)?,
            };
            no_more(args, 4)?;
            Cmd::TwoPhase {
                proto,
                gate: PathBuf::from(gate),
                port,
            }
        }
        "storm" => {
            let sockets: u32 = parse_num("SOCKETS", args.get(1), "a socket count >= 1")?;
            let procs: u32 = parse_num("PROCS", args.get(2), "a process count 1-1000")?;
            if sockets == 0 || procs == 0 || procs > 1000 || procs > sockets {
                return usage_err(format!(
                    "storm needs 1 <= PROCS <= 1000 and PROCS <= SOCKETS, got SOCKETS={sockets} PROCS={procs}"
                ));
            }
            let proto = parse_proto(args.get(3), &STORM_PROTOS, Some(Proto::Udp4))?;
            let port = match args.get(4) {
                None => 0,
                s => parse_num("PORT", s, PORT_RANGE)?,
            };
            no_more(args, 5)?;
            Cmd::Storm {
                sockets,
                procs,
                proto,
                port,
            }
        }
        "listen4" | "listen6" => {
            let port = parse_num("PORT", args.get(1), PORT_RANGE)?;
            let secs = parse_num("SECS", args.get(2), "seconds to listen")?;
            no_more(args, 3)?;
            Cmd::Listen {
                v6: args[0] == "listen6",
                port,
                secs,
            }
        }
        "churn" => {
            let secs = parse_num("SECS", args.get(1), "seconds to churn")?;
            no_more(args, 2)?;
            Cmd::Churn { secs }
        }
        "hoard" => {
            let fds = parse_num("FDS", args.get(1), "a descriptor count >= 1")?;
            let secs = parse_num("SECS", args.get(2), "seconds to hold")?;
            no_more(args, 3)?;
            Cmd::Hoard { fds, secs }
        }
        "walkstorm" => {
            let secs = parse_num("SECS", args.get(1), "seconds")?;
            no_more(args, 2)?;
            Cmd::WalkStorm { secs }
        }
        "connect-worker" => {
            no_more(args, 1)?;
            Cmd::ConnectWorker
        }
        "storm-worker" => {
            let proto = parse_proto(args.get(1), &STORM_PROTOS, None)?;
            let dst = parse_num("ADDR", args.get(2), "a socket address like 127.0.0.1:9")?;
            let count = parse_num("COUNT", args.get(3), "a socket count")?;
            no_more(args, 4)?;
            Cmd::StormWorker { proto, dst, count }
        }
        "hold" => {
            let port = parse_num("PORT", args.get(1), PORT_RANGE)?;
            let secs = parse_num("SECS", args.get(2), "whole seconds")?;
            let proto = parse_proto(args.get(3), &[Proto::Udp4, Proto::Udp6], Some(Proto::Udp4))?;
            no_more(args, 4)?;
            Cmd::Hold { port, secs, proto }
        }
        "beat" => {
            let proto = parse_proto(args.get(1), &Proto::ALL, None)?;
            let ms: u64 = parse_num(
                "MS",
                args.get(2),
                "milliseconds between exchanges, e.g. 2000",
            )?;
            if ms == 0 {
                return usage_err("beat: MS must be at least 1 (milliseconds between exchanges)");
            }
            let Some(tally) = args.get(3) else {
                return usage_err("beat: missing TALLYFILE (where to keep the counts)");
            };
            let rounds = match args.get(4) {
                None => 0,
                s => parse_num("ROUNDS", s, "a number of exchanges (0: until killed)")?,
            };
            no_more(args, 5)?;
            Cmd::Beat {
                proto,
                every: Duration::from_millis(ms),
                tally: PathBuf::from(tally),
                rounds,
            }
        }
        "compat-query" => {
            let rcvbuf = match args.get(1) {
                Some(_) => Some(parse_num("RCVBUF", args.get(1), "bytes, e.g. 32768")?),
                None => None,
            };
            no_more(args, 2)?;
            Cmd::CompatQuery { rcvbuf }
        }
        "console" => {
            let secs = parse_num("SECS", args.get(1), "whole seconds")?;
            no_more(args, 2)?;
            Cmd::Console { secs }
        }
        "genl-fuzz" => {
            let seed = parse_num("SEED", args.get(1), "a number")?;
            let count = parse_num("COUNT", args.get(2), "a number of messages")?;
            no_more(args, 3)?;
            Cmd::GenlFuzz { seed, count }
        }
        "dump-edit" => Cmd::DumpEdit {
            edit: args.get(1..).unwrap_or(&[]).to_vec(),
        },
        "after" => {
            let Some(gate) = args.get(1) else {
                return usage_err("after: missing GATEFILE");
            };
            let rest = args.get(2..).unwrap_or(&[]);
            if rest.first().map(String::as_str) == Some("after") {
                return usage_err("after: the command to run cannot itself be `after`");
            }
            Cmd::After {
                gate: PathBuf::from(gate),
                inner: Box::new(parse_cmd(rest)?),
            }
        }
        "as-user" => {
            let Some(ids) = args.get(1) else {
                return usage_err("as-user: missing UID[:GID]");
            };
            let (uid, gid) = match ids.split_once(':') {
                Some((u, g)) => (
                    parse_num("UID", Some(&u.to_string()), "a numeric user id")?,
                    parse_num("GID", Some(&g.to_string()), "a numeric group id")?,
                ),
                None => {
                    let u = parse_num("UID", Some(ids), "a numeric user id")?;
                    (u, u)
                }
            };
            let cmd: Vec<String> = args.get(2..).unwrap_or(&[]).to_vec();
            if cmd.is_empty() {
                return usage_err("as-user: missing the command to run");
            }
            Cmd::AsUser { uid, gid, cmd }
        }
        other => return usage_err(format!("unknown command {other:?}")),
    };
    Ok(cmd)
}

fn report(o: &Outcome) -> ExitCode {
    println!("{o}");
    ExitCode::from(o.exit_code())
}

fn two_phase(proto: Proto, gate: &std::path::Path, port: u16, timeout: Duration) -> ExitCode {
    let mut session = match Session::open(proto, port, timeout) {
        Ok(s) => s,
        Err(o) => {
            println!("phase1 {o}");
            println!(
                "phase2 error: phase 1 could not open the {} session",
                proto.name()
            );
            return ExitCode::from(2);
        }
    };
    println!("phase1 {}", session.exchange(timeout));
    if !wait_gate(gate) {
        println!(
            "phase2 error: gate file {} did not appear within 60 s",
            gate.display()
        );
        return ExitCode::from(2);
    }
    let o = session.exchange(timeout);
    println!("phase2 {o}");
    ExitCode::from(o.exit_code())
}

/// Per-worker tallies, also the storm's totals.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Tally {
    delivered: u32,
    blocked: u32,
    errors: u32,
}

impl Tally {
    fn add(&mut self, o: &Outcome) {
        match o {
            Outcome::Delivered(_) => self.delivered += 1,
            Outcome::Blocked(_) => self.blocked += 1,
            Outcome::Failed(_) => self.errors += 1,
        }
    }

    fn line(&self) -> String {
        format!(
            "delivered={} blocked={} errors={}",
            self.delivered, self.blocked, self.errors
        )
    }

    /// Parses a worker's `delivered=A blocked=B errors=C` line.
    fn parse(line: &str) -> Option<Tally> {
        let mut t = Tally::default();
        let mut seen = 0;
        for field in line.split_whitespace() {
            let Some((k, v)) = field.split_once('=') else {
                continue;
            };
            let slot = match k {
                "delivered" => &mut t.delivered,
                "blocked" => &mut t.blocked,
                "errors" => &mut t.errors,
                _ => continue,
            };
            *slot = v.parse().ok()?;
            seen += 1;
        }
        (seen == 3).then_some(t)
    }
}

/// TCP connections a storm worker keeps in flight at once (threads), so blocked connects — each
/// waits the whole timeout — do not serialise.
const TCP_PARALLEL: u32 = 64;

fn storm_worker(proto: Proto, dst: SocketAddr, count: u32, timeout: Duration) -> ExitCode {
    let mut t = Tally::default();
    let mut first_error = None;
    let threads = match proto {
        Proto::Tcp4 | Proto::Tcp6 | Proto::Tcp4m => TCP_PARALLEL.min(count).max(1),
        _ => 1,
    };
    let outcomes: Vec<Outcome> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..threads)
            .map(|i| {
                let n = count / threads + u32::from(i < count % threads);
                sc.spawn(move || {
                    (0..n)
                        .map(|_| net::one_shot(proto, dst, timeout))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join()
                    .unwrap_or_else(|_| vec![Outcome::Failed("worker thread panicked".into())])
            })
            .collect()
    });
    for o in &outcomes {
        if first_error.is_none() {
            if let Outcome::Failed(m) = o {
                first_error = Some(m.clone());
            }
        }
        t.add(o);
    }
    match first_error {
        Some(e) => println!("{} first_error={e:?}", t.line()),
        None => println!("{}", t.line()),
    }
    ExitCode::SUCCESS
}

/// The storm's sink: a UDP socket nobody reads (datagrams are dropped silently once its buffer fills, so no
/// ICMP errors add noise) or a TCP listener whose connections are accepted and closed by a thread.
enum Sink {
    Udp(UdpSocket),
    Tcp(SocketAddr),
}

fn storm(sockets: u32, procs: u32, proto: Proto, port: u16, timeout: Duration) -> ExitCode {
    let lo = proto.loopback();
    let sink = match proto {
        // Another program's listener (`listen4|listen6 PORT`).
        Proto::Tcp4 | Proto::Tcp6 if port != 0 => Sink::Tcp(SocketAddr::new(lo, port)),
        Proto::Tcp4 | Proto::Tcp6 => match TcpListener::bind((lo, 0)) {
            Ok(l) => {
                let Ok(addr) = l.local_addr() else {
                    println!("error: listener address");
                    return ExitCode::from(2);
                };
                std::thread::spawn(move || {
                    for conn in l.incoming() {
                        drop(conn);
                    }
                });
                Sink::Tcp(addr)
            }
            Err(e) => {
                println!("error: storm listener: {e}");
                return ExitCode::from(2);
            }
        },
        _ => match UdpSocket::bind((lo, 0)) {
            Ok(s) => Sink::Udp(s),
            Err(e) => {
                println!("error: storm sink: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let dst = match &sink {
        Sink::Udp(s) => match s.local_addr() {
            Ok(a) => a,
            Err(e) => {
                println!("error: sink address: {e}");
                return ExitCode::from(2);
            }
        },
        Sink::Tcp(a) => *a,
    };
    let exe = match std::env::current_exe() {
        Ok(p) => p,
        Err(e) => {
            println!("error: cannot find my own executable: {e}");
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let mut children = Vec::new();
    for i in 0..procs {
        let count = sockets / procs + u32::from(i < sockets % procs);
        let spawned = Command::new(&exe)
            .arg("--timeout")
            .arg(timeout.as_millis().to_string())
            .arg("storm-worker")
            .arg(proto.name())
            .arg(dst.to_string())
            .arg(count.to_string())
            .stdout(Stdio::piped())
            .spawn();
        match spawned {
            Ok(c) => children.push((c, count)),
            Err(e) => {
                println!("error: spawn worker {i}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let mut total = Tally::default();
    let mut bad_workers = 0;
    for (child, count) in children {
        let pid = child.id();
        let output = child.wait_with_output();
        let line = match &output {
            Ok(o) => BufReader::new(&o.stdout[..])
                .lines()
                .map_while(Result::ok)
                .last()
                .unwrap_or_default(),
            Err(e) => format!("wait failed: {e}"),
        };
        match Tally::parse(&line) {
            Some(t) if t.delivered + t.blocked + t.errors == count => {
                total.delivered += t.delivered;
                total.blocked += t.blocked;
                total.errors += t.errors;
                if t.errors > 0 || (t.delivered > 0 && t.blocked > 0) {
                    println!("worker pid={pid} {line}");
                }
            }
            _ => {
                bad_workers += 1;
                total.errors += count;
                println!("worker pid={pid} gave no valid tally: {line:?}");
            }
        }
    }
    println!(
        "storm proto={} sockets={sockets} procs={procs} {} bad_workers={bad_workers} ms={}",
        proto.name(),
        total.line(),
        started.elapsed().as_millis()
    );
    drop(sink);
    ExitCode::from(if total.delivered == sockets {
        0
    } else if total.blocked == sockets {
        1
    } else {
        2
    })
}

/// A TCP listener on loopback PORT that accepts and closes connections for SECS seconds (another
/// program's server for `storm ... PORT`).
fn listen(v6: bool, port: u16, secs: u64) -> ExitCode {
    let l = match TcpListener::bind((net::loopback(v6), port)) {
        Ok(l) => l,
        Err(e) => {
            println!("error: listen on port {port}: {e}");
            return ExitCode::from(2);
        }
    };
    std::thread::spawn(move || {
        for conn in l.incoming() {
            drop(conn);
        }
    });
    println!("listening on port {port}");
    std::thread::sleep(Duration::from_secs(secs));
    ExitCode::SUCCESS
}

/// Socket churn: for SECS seconds, open a UDP socket, send one datagram to a local sink (so the
/// firewall identifies and caches it), close it; prints how many. The cache-eviction attack.
fn churn(secs: u64) -> ExitCode {
    let sink = match UdpSocket::bind((net::loopback(false), 0)).and_then(|s| s.local_addr()) {
        Ok(a) => a,
        Err(e) => {
            println!("error: churn sink: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let (mut sockets, mut sent) = (0u64, 0u64);
    let mut next_report = start + Duration::from_secs(1);
    while Instant::now() < end {
        if let Ok(s) = UdpSocket::bind((net::loopback(false), 0)) {
            sockets += 1;
            sent += u64::from(s.send_to(b"churn", sink).is_ok());
        }
        // A line per second, so a churner killed early still reported its rate.
        if Instant::now() >= next_report {
            next_report += Duration::from_secs(1);
            println!(
                "churned {sockets} sockets ({sent} sent) in {:.1} s",
                start.elapsed().as_secs_f64()
            );
        }
    }
    println!("churned {sockets} sockets ({sent} sent) in {secs} s");
    ExitCode::SUCCESS
}

fn hoard(fds: u32, secs: u64) -> ExitCode {
    let sock = match UdpSocket::bind((net::loopback(false), 0)) {
        Ok(s) => s,
        Err(e) => {
            println!("error: hoard: bind: {e}");
            return ExitCode::from(2);
        }
    };
    let mut held = vec![];
    while held.len() + 1 < fds as usize {
        match sock.try_clone() {
            Ok(d) => held.push(d),
            Err(e) => {
                println!("hoard: stopped at {} descriptors: {e}", held.len() + 1);
                break;
            }
        }
    }
    println!("holding {} descriptors", held.len() + 1);
    std::thread::sleep(Duration::from_secs(secs));
    ExitCode::SUCCESS
}

/// A fresh listener per round, connected to from another process (`connect-worker`), so the
/// listener's first SYN-ACK leaves from softirq on a socket e7 has never seen.
fn walk_storm(secs: u64) -> ExitCode {
    let exe = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("/proc/self/exe"));
    let mut child = match Command::new(exe)
        .arg("connect-worker")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            println!("error: walkstorm: spawn: {e}");
            return ExitCode::from(2);
        }
    };
    let (Some(mut to), Some(from)) = (child.stdin.take(), child.stdout.take()) else {
        println!("error: walkstorm: no pipes");
        return ExitCode::from(2);
    };
    let mut from = BufReader::new(from);
    let end = Instant::now() + Duration::from_secs(secs);
    let mut rounds = 0u64;
    let mut line = String::new();
    while Instant::now() < end {
        let Ok(l) = TcpListener::bind((net::loopback(false), 0)) else {
            continue;
        };
        let Ok(port) = l.local_addr().map(|a| a.port()) else {
            continue;
        };
        use std::io::Write as _;
        if writeln!(to, "{port}").is_err() {
            break;
        }
        line.clear();
        if from.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        rounds += 1;
    }
    drop(to);
    let _ = child.wait();
    println!("walkstorm: {rounds} fresh listeners in {secs} s");
    ExitCode::SUCCESS
}

fn connect_worker() -> ExitCode {
    use std::io::Write as _;
    let stdin = std::io::stdin();
    let mut out = std::io::stdout();
    for line in stdin.lock().lines() {
        let Ok(line) = line else { break };
        if let Ok(port) = line.trim().parse::<u16>() {
            let addr = SocketAddr::new(net::loopback(false), port);
            let _ = std::net::TcpStream::connect_timeout(&addr, Duration::from_millis(20));
        }
        if writeln!(out, "done").and_then(|()| out.flush()).is_err() {
            break;
        }
    }
    ExitCode::SUCCESS
}

fn hold(port: u16, secs: u64, proto: Proto) -> ExitCode {
    let lo = proto.loopback();
    let sock = match UdpSocket::bind((lo, 0)) {
        Ok(s) => s,
        Err(e) => {
            println!("error: bind: {e}");
            return ExitCode::from(2);
        }
    };
    let dst = SocketAddr::new(lo, if port == 0 { 9 } else { port });
    let (mut ok, mut eperm, mut other) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        match sock.send_to(b"e7-probe hold", dst) {
            Ok(_) => ok += 1,
            Err(e) => match net::classify_send_error("sendto", &e) {
                Outcome::Blocked(_) => eperm += 1,
                _ => other += 1,
            },
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    println!("hold sent_ok={ok} send_eperm={eperm} send_err={other}");
    ExitCode::from(if ok + eperm == 0 { 2 } else { 0 })
}

/// The word for an outcome in a tally line.
fn outcome_word(o: &Outcome) -> &'static str {
    match o {
        Outcome::Delivered(_) => "delivered",
        Outcome::Blocked(_) => "blocked",
        Outcome::Failed(_) => "error",
    }
}

/// `beat`: what the demo VM runs in the background so the console has traffic to show. One
/// exchange every `every` (start to start), nothing on stdout or stderr (the console shares the
/// terminal) unless the tally cannot be written, which ends it; the running counts go to `tally`, replaced whole after each exchange (written next to
/// it, then renamed) so a reader never sees half a line. `rounds` 0 runs until killed.
fn beat(
    proto: Proto,
    every: Duration,
    tally: &std::path::Path,
    rounds: u64,
    timeout: Duration,
) -> ExitCode {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "e7-probe".to_string());
    let mut tmp = tally.as_os_str().to_owned();
    tmp.push(".new");
    let tmp = PathBuf::from(tmp);
    let mut t = Tally::default();
    let mut done = 0u64;
    loop {
        let started = Instant::now();
        let o = net::probe(proto, 0, timeout);
        t.add(&o);
        done += 1;
        let line = beat_line(&exe, proto, done, &t, &o);
        if let Err(e) = std::fs::write(&tmp, line).and_then(|()| std::fs::rename(&tmp, tally)) {
            println!(
                "error: beat: cannot write the tally {}: {e}",
                tally.display()
            );
            return ExitCode::from(2);
        }
        if rounds != 0 && done >= rounds {
            return ExitCode::SUCCESS;
        }
        std::thread::sleep(every.saturating_sub(started.elapsed()));
    }
}

/// One tally line of `beat`.
fn beat_line(exe: &str, proto: Proto, rounds: u64, t: &Tally, last: &Outcome) -> String {
    format!(
        "{exe} {}: rounds={rounds} {} last={}\n",
        proto.name(),
        t.line(),
        outcome_word(last)
    )
}

fn as_user(uid: u32, gid: u32, cmd: &[String]) -> ExitCode {
    let Some((prog, rest)) = cmd.split_first() else {
        println!("error: as-user: missing the command to run");
        return ExitCode::from(2);
    };
    // std drops supplementary groups (setgroups(0)) when a uid is set, then setgid, then setuid.
    let err = Command::new(prog).args(rest).uid(uid).gid(gid).exec();
    println!("error: as-user {uid}:{gid}: cannot exec {prog}: {err}");
    ExitCode::from(2)
}

/// `userns`: a new user namespace (uid and gid 0 inside, mapped to the caller's), optionally a new
/// network namespace with its loopback up and a new mount namespace with one bind mount, then exec.
/// This is what any unprivileged user can do on Debian; the cases use it to try to get around e7.
fn user_ns(net: bool, mnt: bool, bind: Option<&(PathBuf, PathBuf)>, cmd: &[String]) -> ExitCode {
    let Some((prog, rest)) = cmd.split_first() else {
        println!("error: userns: missing the command to run");
        return ExitCode::from(2);
    };
    if let Err(e) = sys::enter_user_ns(net, mnt) {
        println!("error: userns: {e}");
        return ExitCode::from(2);
    }
    if net {
        if let Err(e) = sys::loopback_up() {
            println!("error: userns: cannot bring the loopback up: {e}");
            return ExitCode::from(2);
        }
    }
    if let Some((src, dst)) = bind {
        if let Err(e) = sys::bind_mount(src, dst) {
            println!(
                "error: userns: cannot bind-mount {} on {}: {e}",
                src.display(),
                dst.display()
            );
            return ExitCode::from(2);
        }
    }
    let err = Command::new(prog).args(rest).exec();
    println!("error: userns: cannot exec {prog}: {err}");
    ExitCode::from(2)
}

/// A policy change under a running sender: one connected UDP socket sends in a tight loop, each
/// send preceded by a check of `gate`, which the test creates once its change was acknowledged.
/// Every send started after the gate was seen must get the new verdict; sends before it may get
/// either (they race the change). Exit 0 when it ran, 2 on a setup error.
fn flip(v6: bool, gate: &std::path::Path, after: u32, fresh: bool) -> ExitCode {
    let lo = net::loopback(v6);
    let (rx, mut tx) = match (UdpSocket::bind((lo, 0)), UdpSocket::bind((lo, 0))) {
        (Ok(rx), Ok(tx)) => (rx, tx),
        (Err(e), _) | (_, Err(e)) => {
            println!("error: flip: bind: {e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = rx.local_addr().and_then(|a| tx.connect(a)) {
        println!("error: flip: connect: {e}");
        return ExitCode::from(2);
    }
    let (mut before_ok, mut before_blocked, mut after_ok, mut after_blocked, mut errors) =
        (0u64, 0u64, 0u64, 0u64, 0u64);
    let mut drain = [0u8; 64];
    let _ = rx.set_nonblocking(true);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut announced = false;
    loop {
        if fresh {
            // A socket this process never sent on: the known-socket cache misses, and the
            // verdict comes from what the process image remembered (or the rules).
            let next = UdpSocket::bind((lo, 0)).and_then(|s| {
                s.connect(rx.local_addr()?)?;
                Ok(s)
            });
            match next {
                Ok(s) => tx = s,
                Err(e) => {
                    println!("error: flip: new socket: {e}");
                    return ExitCode::from(2);
                }
            }
        }
        let seen = gate.exists();
        let r = tx.send(&[0x5a; 64]);
        let blocked = matches!(&r, Err(e) if e.raw_os_error() == Some(libc_eperm()));
        match (seen, &r, blocked) {
            (_, Err(_), false) => errors += 1,
            (false, Ok(_), _) => before_ok += 1,
            (false, Err(_), true) => before_blocked += 1,
            (true, Ok(_), _) => after_ok += 1,
            (true, Err(_), true) => after_blocked += 1,
        }
        // Keep the receiver's buffer from filling (a full buffer drops at delivery, not at send).
        while rx.recv(&mut drain).is_ok() {}
        if !announced {
            println!("running");
            announced = true;
        }
        if after_ok + after_blocked >= u64::from(after) || Instant::now() >= deadline {
            break;
        }
    }
    println!(
        "flip before_ok={before_ok} before_blocked={before_blocked} after_ok={after_ok} \
         after_blocked={after_blocked} errors={errors}"
    );
    ExitCode::SUCCESS
}

/// `EPERM` (a netfilter drop at `LOCAL_OUT`).
const fn libc_eperm() -> i32 {
    1
}

/// Waits up to a minute for `gate` to exist.
fn wait_gate(gate: &std::path::Path) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !gate.exists() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    true
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (cmd, timeout) = match parse(&args) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("e7-probe: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    execute(cmd, timeout)
}

fn execute(cmd: Cmd, timeout: Duration) -> ExitCode {
    match cmd {
        Cmd::Help => {
            println!("{USAGE}");
            ExitCode::SUCCESS
        }
        Cmd::Probe { proto, port } => report(&net::probe(proto, port, timeout)),
        Cmd::Raw { v6, ipproto } => report(&net::raw(v6, ipproto)),
        Cmd::To { kind, addr, port } => report(&dest::to(kind, addr, port, timeout)),
        Cmd::Alternate {
            reconnect: false,
            a,
            b,
            rounds,
            port,
        } => ExitCode::from(dest::alternate(a, b, port, rounds, timeout)),
        Cmd::Alternate {
            reconnect: true,
            a,
            b,
            rounds,
            port,
        } => ExitCode::from(dest::reconnect(a, b, port, rounds, timeout)),
        Cmd::Connected {
            addr,
            rounds,
            port,
            connect,
        } => ExitCode::from(dest::connected(addr, port, rounds, connect, timeout)),
        Cmd::Route { kind, fin, hops } => ExitCode::from(dest::route(kind, fin, &hops, timeout)),
        Cmd::Uring { v6, worker } => report(&uring::uring_send(v6, worker, timeout)),
        Cmd::Inherit { v6, prog } => report(&uring::inherit(v6, &prog, timeout)),
        Cmd::SendFd { fd } => report(&uring::send_fd(fd)),
        Cmd::Steal { v6, prog } => report(&uring::steal(v6, &prog, timeout)),
        Cmd::HoldSock { v6, port } => report(&uring::hold_sock(v6, port)),
        Cmd::UdpLite { v6 } => report(&net::udplite(v6)),
        Cmd::Sctp { v6 } => report(&net::sctp(v6, timeout)),
        Cmd::Smc { v6, sink } => report(&net::smc(v6, &sink, timeout)),
        Cmd::Sink { v6 } => net::sink(v6, timeout),
        Cmd::Mptcp { v6 } => report(&net::mptcp(v6, timeout)),
        Cmd::UserNs {
            net,
            mnt,
            bind,
            cmd,
        } => user_ns(net, mnt, bind.as_ref(), &cmd),
        Cmd::TwoPhase { proto, gate, port } => two_phase(proto, &gate, port, timeout),
        Cmd::Flip {
            v6,
            gate,
            after,
            fresh,
        } => flip(v6, &gate, after, fresh),
        Cmd::Storm {
            sockets,
            procs,
            proto,
            port,
        } => storm(sockets, procs, proto, port, timeout),
        Cmd::Listen { v6, port, secs } => listen(v6, port, secs),
        Cmd::Churn { secs } => churn(secs),
        Cmd::Hoard { fds, secs } => hoard(fds, secs),
        Cmd::WalkStorm { secs } => walk_storm(secs),
        Cmd::ConnectWorker => connect_worker(),
        Cmd::StormWorker { proto, dst, count } => storm_worker(proto, dst, count, timeout),
        Cmd::Hold { port, secs, proto } => hold(port, secs, proto),
        Cmd::Beat {
            proto,
            every,
            tally,
            rounds,
        } => beat(proto, every, &tally, rounds, timeout),
        Cmd::AsUser { uid, gid, cmd } => as_user(uid, gid, &cmd),
        Cmd::Console { secs } => ExitCode::from(if genl::console(secs) { 0 } else { 2 }),
        Cmd::GenlFuzz { seed, count } => match fuzz::run(seed, count) {
            Ok(line) => {
                println!("{line}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                println!("error: {e}");
                ExitCode::from(2)
            }
        },
        Cmd::DumpEdit { edit } => {
            let (line, ended) = genl::dump_edit(timeout.max(Duration::from_secs(5)), &edit);
            println!("{line}");
            ExitCode::from(if ended { 0 } else { 2 })
        }
        Cmd::CompatQuery { rcvbuf } => {
            let (line, complete) = genl::compat_query(timeout.max(Duration::from_secs(5)), rcvbuf);
            println!("{line}");
            ExitCode::from(if complete { 0 } else { 2 })
        }
        Cmd::After { gate, inner } => {
            if wait_gate(&gate) {
                execute(*inner, timeout)
            } else {
                println!(
                    "error: gate file {} did not appear within 60 s",
                    gate.display()
                );
                ExitCode::from(2)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Cmd, UsageError> {
        let v: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        parse(&v).map(|(c, _)| c)
    }

    #[test]
    fn traffic_commands_parse_with_optional_port() {
        assert_eq!(
            p(&["udp4"]),
            Ok(Cmd::Probe {
                proto: Proto::Udp4,
                port: 0
            })
        );
        assert_eq!(
            p(&["tcp6", "9999"]),
            Ok(Cmd::Probe {
                proto: Proto::Tcp6,
                port: 9999
            })
        );
        assert_eq!(p(&["udplite6"]), Ok(Cmd::UdpLite { v6: true }));
        assert_eq!(p(&["sctp4"]), Ok(Cmd::Sctp { v6: false }));
        assert_eq!(
            p(&["smc6", "/x"]),
            Ok(Cmd::Smc {
                v6: true,
                sink: "/x".into()
            })
        );
        assert!(p(&["sctp4", "9"]).is_err());
        assert_eq!(
            p(&["userns", "-n", "-m", "/a", "/b", "/x", "udp4"]),
            Ok(Cmd::UserNs {
                net: true,
                mnt: true,
                bind: Some((PathBuf::from("/a"), PathBuf::from("/b"))),
                cmd: vec!["/x".into(), "udp4".into()]
            })
        );
        assert!(p(&["userns", "-m", "/a"]).is_err());
        assert_eq!(
            p(&["userns", "-M", "/x"]),
            Ok(Cmd::UserNs {
                net: false,
                mnt: true,
                bind: None,
                cmd: vec!["/x".into()]
            })
        );
        assert!(p(&["userns", "-n"]).is_err());
        assert_eq!(
            p(&["raw6", "253"]),
            Ok(Cmd::Raw {
                v6: true,
                ipproto: 253
            })
        );
    }

    #[test]
    fn timeout_option_is_read_before_the_command() {
        let v: Vec<String> = ["--timeout", "250", "icmp6"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let (cmd, t) = parse(&v).expect("parses");
        assert_eq!(t, Duration::from_millis(250));
        assert_eq!(
            cmd,
            Cmd::Probe {
                proto: Proto::Icmp6,
                port: 0
            }
        );
    }

    #[test]
    fn bad_input_names_what_was_wrong() {
        let e = p(&["udp4", "70000"]).expect_err("port too large");
        assert!(e.0.contains("PORT") && e.0.contains("70000"), "{e}");
        let e = p(&["storm", "10", "20"]).expect_err("more procs than sockets");
        assert!(e.0.contains("PROCS <= SOCKETS"), "{e}");
        let e = p(&["storm", "10", "2", "icmp4"]).expect_err("icmp storms are not supported");
        assert!(e.0.contains("udp4, udp6, tcp4, tcp6"), "{e}");
        let e = p(&["frobnicate"]).expect_err("unknown");
        assert!(e.0.contains("frobnicate"), "{e}");
        let e = p(&["as-user", "65534"]).expect_err("no command");
        assert!(e.0.contains("missing the command"), "{e}");
        assert!(
            p(&["udp4", "1", "2"]).is_err(),
            "extra arguments are refused"
        );
        assert!(p(&[]).is_err());
    }

    #[test]
    fn route_parses_hops_and_builds_the_options_the_kernel_takes() {
        let a: std::net::IpAddr = "2001:db8::1".parse().unwrap();
        let b: std::net::IpAddr = "2001:db8::2".parse().unwrap();
        assert_eq!(
            p(&["route", "udp", "2001:db8::9", "2001:db8::1,2001:db8::2"]),
            Ok(Cmd::Route {
                kind: dest::RouteKind::Udp,
                fin: "2001:db8::9".parse().unwrap(),
                hops: vec![a, b],
            })
        );
        let e = p(&["route", "tcp", "10.0.0.1", "10.0.0.2,x"]).expect_err("bad hop");
        assert!(e.0.contains("HOP") && e.0.contains("\"x\""), "{e}");
        let e = p(&["route", "raw", "10.0.0.1", "10.0.0.2"]).expect_err("bad kind");
        assert!(e.0.contains("udp, connected or tcp"), "{e}");
        // IPv6: a type 4 header of 3 segments (destination, then the hops last first), first
        // segment and segments left both 2 (the first hop is segment 2).
        let (v6, opt) = sys::route_option(&[a, b]).unwrap();
        assert!(v6);
        assert_eq!(opt.len(), 8 + 3 * 16);
        assert_eq!(&opt[..8], &[0, 6, 4, 2, 2, 0, 0, 0]);
        assert_eq!(
            &opt[24..40],
            &b.to_string()
                .parse::<std::net::Ipv6Addr>()
                .unwrap()
                .octets()
        );
        assert_eq!(
            &opt[40..56],
            &[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
        );
        // IPv4: LSRR with the hops first hop first and a slot for the destination.
        let (v6, opt) = sys::route_option(&["10.3.0.1".parse().unwrap()]).unwrap();
        assert!(!v6);
        assert_eq!(opt, vec![131, 11, 4, 10, 3, 0, 1, 0, 0, 0, 0]);
        let nine: Vec<std::net::IpAddr> = (0..9)
            .map(|i| format!("10.0.0.{i}").parse().unwrap())
            .collect();
        assert!(
            sys::route_option(&nine).is_err(),
            "more than 40 option bytes"
        );
    }

    #[test]
    fn after_wraps_any_single_command() {
        assert_eq!(
            p(&["after", "/tmp/g", "udp4m"]),
            Ok(Cmd::After {
                gate: PathBuf::from("/tmp/g"),
                inner: Box::new(Cmd::Probe {
                    proto: Proto::Udp4m,
                    port: 0
                })
            })
        );
        assert!(p(&["after", "/tmp/g"]).is_err(), "a command is required");
        assert!(p(&["after", "/tmp/g", "after", "/tmp/h", "udp4"]).is_err());
        assert!(
            p(&["after", "/tmp/g", "udp4", "x"]).is_err(),
            "the inner command is validated"
        );
    }

    #[test]
    fn as_user_accepts_uid_or_uid_gid() {
        assert_eq!(
            p(&["as-user", "65534", "/bin/e7", "query"]),
            Ok(Cmd::AsUser {
                uid: 65534,
                gid: 65534,
                cmd: vec!["/bin/e7".into(), "query".into()]
            })
        );
        assert_eq!(
            p(&["as-user", "1000:100", "id"]),
            Ok(Cmd::AsUser {
                uid: 1000,
                gid: 100,
                cmd: vec!["id".into()]
            })
        );
    }

    #[test]
    fn storm_defaults_to_udp4_and_twophase_needs_a_gate() {
        assert_eq!(
            p(&["storm", "2000", "20"]),
            Ok(Cmd::Storm {
                sockets: 2000,
                procs: 20,
                proto: Proto::Udp4,
                port: 0
            })
        );
        assert_eq!(
            p(&["storm", "1000", "4", "tcp4", "9000"]),
            Ok(Cmd::Storm {
                sockets: 1000,
                procs: 4,
                proto: Proto::Tcp4,
                port: 9000
            })
        );
        assert!(p(&["churn"]).is_err());
        assert_eq!(
            p(&["listen6", "9000", "30"]),
            Ok(Cmd::Listen {
                v6: true,
                port: 9000,
                secs: 30
            })
        );
        assert!(p(&["twophase", "udp4"]).is_err());
        assert_eq!(
            p(&["twophase", "tcp6", "/tmp/g"]),
            Ok(Cmd::TwoPhase {
                proto: Proto::Tcp6,
                gate: PathBuf::from("/tmp/g"),
                port: 0
            })
        );
    }

    #[test]
    fn tally_lines_round_trip_and_reject_garbage() {
        let t = Tally {
            delivered: 3,
            blocked: 2,
            errors: 1,
        };
        assert_eq!(Tally::parse(&t.line()), Some(t));
        assert_eq!(
            Tally::parse(&format!("{} first_error=\"x\"", t.line())),
            Some(t)
        );
        assert_eq!(
            Tally::parse("delivered=1 blocked=2"),
            None,
            "all three fields are required"
        );
        assert_eq!(Tally::parse("delivered=x blocked=0 errors=0"), None);
    }

    #[test]
    fn beat_parses_and_names_what_was_wrong() {
        assert_eq!(
            p(&["beat", "icmp4", "2000", "/run/x"]),
            Ok(Cmd::Beat {
                proto: Proto::Icmp4,
                every: Duration::from_millis(2000),
                tally: PathBuf::from("/run/x"),
                rounds: 0
            })
        );
        assert_eq!(
            p(&["beat", "udp", "10", "/t", "3"]),
            Ok(Cmd::Beat {
                proto: Proto::Udp4,
                every: Duration::from_millis(10),
                tally: PathBuf::from("/t"),
                rounds: 3
            })
        );
        let e = p(&["beat", "udp4", "0", "/t"]).unwrap_err();
        assert!(e.0.contains("at least 1"), "{e}");
        let e = p(&["beat", "udp4", "100"]).unwrap_err();
        assert!(e.0.contains("TALLYFILE"), "{e}");
        assert!(p(&["beat", "ftp", "100", "/t"]).is_err());
        assert!(p(&["beat", "udp4", "100", "/t", "1", "x"]).is_err());
    }

    /// A real run on the host's loopback (no e7 there: every exchange is delivered): the tally file
    /// holds exactly one line with the counts of the rounds run.
    #[test]
    fn beat_keeps_its_tally_in_the_file() {
        let dir = std::env::temp_dir().join(format!("e7-probe-beat-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tally = dir.join("tally");
        let code = beat(
            Proto::Udp4,
            Duration::from_millis(1),
            &tally,
            3,
            Duration::from_millis(1000),
        );
        assert_eq!(code, ExitCode::SUCCESS);
        let text = std::fs::read_to_string(&tally).unwrap();
        assert!(
            text.ends_with(" udp4: rounds=3 delivered=3 blocked=0 errors=0 last=delivered\n"),
            "{text:?}"
        );
        assert_eq!(text.lines().count(), 1);
        assert_eq!(Tally::parse(&text).map(|t| t.delivered), Some(3));
        assert!(!dir.join("tally.new").exists(), "renamed into place");
        let _ = std::fs::remove_dir_all(&dir);
        let line = beat_line(
            "/p",
            Proto::Tcp4,
            2,
            &Tally {
                delivered: 1,
                blocked: 1,
                errors: 0,
            },
            &Outcome::Blocked("x".into()),
        );
        assert_eq!(
            line,
            "/p tcp4: rounds=2 delivered=1 blocked=1 errors=0 last=blocked\n"
        );
    }
}
