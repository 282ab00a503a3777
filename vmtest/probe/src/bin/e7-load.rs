//! `e7-load`: the load generator of the VM benchmark (`make -C vmtest bench`, `vmtest/bench.sh`).
//!
//! Why a binary of its own: the benchmark needs a program that does nothing but the measured
//! operation in a tight loop, timed by the guest's `CLOCK_MONOTONIC`. Under qemu with
//! `-icount shift=0` the guest's clocks advance exactly one nanosecond per executed guest
//! instruction, so a `CLOCK_MONOTONIC` delta *is* an instruction count (`calib` verifies that
//! claim on every run with a loop of known length). The figures printed here are raw; the host
//! (`vmtest/bench.sh`) subtracts the "module not loaded" round to get e7's added cost.
//!
//! Commands (each prints one `E7LOAD ...` line of `key=value` fields):
//! - `calib N`: N iterations of a two-instruction loop (`dec; jnz`): `ns` should be 2·N;
//! - `udp N`: N 64-byte `send`s on a connected UDP socket to a loopback receiver that never reads
//!   (its queue fills, later datagrams are dropped silently: no reply traffic);
//! - `tcp N`: N loopback TCP connections: connect, accept, the client closes with a reset
//!   (`SO_LINGER` 0), then the server: SYN, SYN-ACK, ACK, RST, and no TIME_WAIT socket piles up
//!   (thousands of them would make later rounds' port searches slower than earlier ones').
//!
//! Every traffic command first warms up (so the measured loop sees cached verdicts) and reports
//! the kernel's IPv4 `OutRequests` delta over the measured loop, so the host can check that every
//! packet counted is one the firewall hook saw.
#![allow(unsafe_code)]

use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::os::raw::c_int;
use std::process::ExitCode;
use std::time::Instant;

/// Warm-up operations before the measured loop.
const WARMUP: u32 = 64;

/// `Ip: OutRequests` from `/proc/net/snmp` (the header line names the columns).
fn out_requests() -> io::Result<u64> {
    let snmp = std::fs::read_to_string("/proc/net/snmp")?;
    let mut ip = snmp.lines().filter(|l| l.starts_with("Ip: "));
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            "no Ip: OutRequests in /proc/net/snmp",
        )
    };
    let (Some(names), Some(values)) = (ip.next(), ip.next()) else {
        return Err(bad());
    };
    let col = names
        .split_whitespace()
        .position(|n| n == "OutRequests")
        .ok_or_else(bad)?;
    values
        .split_whitespace()
        .nth(col)
        .and_then(|v| v.parse().ok())
        .ok_or_else(bad)
}

/// Runs `n` two-instruction iterations (`dec rcx; jnz`).
fn spin(n: u64) {
    if n == 0 {
        return;
    }
    // SAFETY: the block only decrements a scratch register it declares as clobbered; it touches no
    // memory and no stack, and terminates because n > 0 counts down to zero.
    unsafe {
        std::arch::asm!(
            "2:",
            "dec {n}",
            "jnz 2b",
            n = inout(reg) n => _,
            options(nomem, nostack),
        );
    }
}

fn calib(n: u64) -> io::Result<String> {
    let t = Instant::now();
    spin(n);
    let ns = t.elapsed().as_nanos();
    Ok(format!(
        "kind=calib n={n} instr={} ns={ns} ns_per_instr={:.4}",
        2 * n,
        ns as f64 / (2 * n) as f64
    ))
}

fn udp(n: u32) -> io::Result<String> {
    let rx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    let tx = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
    tx.connect(rx.local_addr()?)?;
    let buf = [0x5au8; 64];
    // A full receive queue makes no reply packet; a failed send would not be a packet at all.
    for _ in 0..WARMUP {
        tx.send(&buf)?;
    }
    let o0 = out_requests()?;
    let t = Instant::now();
    for _ in 0..n {
        tx.send(&buf)?;
    }
    let ns = t.elapsed().as_nanos();
    let o1 = out_requests()?;
    Ok(format!(
        "kind=udp n={n} ns={ns} outreq={}",
        o1.wrapping_sub(o0)
    ))
}

extern "C" {
    /// `setsockopt(2)` from the C library std links.
    fn setsockopt(fd: c_int, level: c_int, name: c_int, val: *const u8, len: u32) -> c_int;
}

/// `SO_LINGER` {on, 0 s}: `close` sends a reset and leaves no TIME_WAIT socket.
fn linger0(s: &TcpStream) -> io::Result<()> {
    const SOL_SOCKET: c_int = 1;
    const SO_LINGER: c_int = 13;
    let mut v = [0u8; 8]; // struct linger { int l_onoff; int l_linger; }
    v[..4].copy_from_slice(&1i32.to_ne_bytes());
    // SAFETY: `v` is a live 8-byte `struct linger` for the duration of the call and its exact
    // length is passed; the descriptor is owned by `s` and open.
    let rc = unsafe { setsockopt(s.as_raw_fd(), SOL_SOCKET, SO_LINGER, v.as_ptr(), 8) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn tcp_once(l: &TcpListener, addr: SocketAddr) -> io::Result<()> {
    let c = TcpStream::connect(addr)?;
    linger0(&c)?;
    let (s, _) = l.accept()?;
    drop(c);
    drop(s);
    Ok(())
}

fn tcp(n: u32) -> io::Result<String> {
    let l = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    let addr = l.local_addr()?;
    for _ in 0..WARMUP {
        tcp_once(&l, addr)?;
    }
    let o0 = out_requests()?;
    let t = Instant::now();
    for _ in 0..n {
        tcp_once(&l, addr)?;
    }
    let ns = t.elapsed().as_nanos();
    let o1 = out_requests()?;
    Ok(format!(
        "kind=tcp n={n} ns={ns} outreq={}",
        o1.wrapping_sub(o0)
    ))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let n = args.get(1).and_then(|s| s.parse::<u32>().ok());
    let r = match (args.first().map(String::as_str), n) {
        (Some("calib"), Some(n)) => calib(u64::from(n)),
        (Some("udp"), Some(n)) => udp(n),
        (Some("tcp"), Some(n)) => tcp(n),
        _ => {
            eprintln!(
                "usage: e7-load calib|udp|tcp N   (N: a positive count; got {:?})",
                args
            );
            return ExitCode::from(2);
        }
    };
    match r {
        Ok(line) => {
            println!("E7LOAD {line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("e7-load: {e}");
            ExitCode::FAILURE
        }
    }
}
