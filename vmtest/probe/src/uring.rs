//! Sending through io_uring and on inherited descriptors: the two ways around "the owner is whoever
//! holds a descriptor" that the VM cases try (e7 issue 7, holes #2 and #6).
//!
//! - [`uring_send`]: a connected UDP socket is registered with `IORING_REGISTER_FILES`, its
//!   descriptor is `close()`d (the socket is now in no fd table), and one datagram is sent with
//!   `IORING_OP_SEND` + `IOSQE_FIXED_FILE` — inline in the submitting task, or (with `IOSQE_ASYNC`)
//!   from an io-wq worker thread.
//! - [`inherit`]: a connected UDP socket is inherited by another program (fork + exec), which sends
//!   first; then this program sends on the same socket.
//! - [`steal`]: another program creates a connected UDP socket and sends first; this program takes
//!   the descriptor with `pidfd_getfd(2)` and sends on it.
//!
//! No libc crate: the io_uring and pidfd system calls go through the C library's `syscall(2)`, the rings
//! through `mmap(2)`; std links the C library already. Like `sys.rs`, this module is an audited
//! exception to the crate's `deny(unsafe_code)`; every block says why it is sound. x86-64 only (the
//! VM's architecture): the syscall numbers below are x86-64's.
#![allow(unsafe_code)]

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::os::raw::{c_int, c_long, c_void};
use std::process::Command;
use std::time::Duration;

use crate::net::{classify_send_error, loopback, Outcome};

const SYS_IO_URING_SETUP: c_long = 425;
const SYS_IO_URING_ENTER: c_long = 426;
const SYS_IO_URING_REGISTER: c_long = 427;
const IORING_OFF_SQ_RING: i64 = 0;
const IORING_OFF_CQ_RING: i64 = 0x800_0000;
const IORING_OFF_SQES: i64 = 0x1000_0000;
const IORING_REGISTER_FILES: c_long = 2;
const IORING_ENTER_GETEVENTS: c_long = 1;
const IORING_OP_SEND: u8 = 26;
const IOSQE_FIXED_FILE: u8 = 1;
const IOSQE_ASYNC: u8 = 1 << 4;
const PROT_READ_WRITE: c_int = 0x1 | 0x2;
const MAP_SHARED_POPULATE: c_int = 0x01 | 0x8000;
const F_SETFD: c_int = 2;

extern "C" {
    fn syscall(num: c_long, ...) -> c_long;
    fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    fn munmap(addr: *mut c_void, len: usize) -> c_int;
    fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
}

/// `struct io_sqring_offsets` / `struct io_cqring_offsets` (both 40 bytes; field names differ).
#[repr(C)]
#[derive(Default, Clone, Copy)]
struct RingOffsets {
    head: u32,
    tail: u32,
    ring_mask: u32,
    ring_entries: u32,
    flags_or_overflow: u32,
    /// SQ: `dropped`; CQ: `cqes`.
    dropped_or_cqes: u32,
    /// SQ: `array`; CQ: `flags`.
    array_or_flags: u32,
    resv1: u32,
    resv2: u64,
}

/// `struct io_uring_params` (120 bytes).
#[repr(C)]
#[derive(Default)]
struct Params {
    sq_entries: u32,
    cq_entries: u32,
    flags: u32,
    sq_thread_cpu: u32,
    sq_thread_idle: u32,
    features: u32,
    wq_fd: u32,
    resv: [u32; 3],
    sq_off: RingOffsets,
    cq_off: RingOffsets,
}

const _: () = assert!(std::mem::size_of::<Params>() == 120);

/// One mapping, unmapped on drop.
struct Map {
    ptr: *mut u8,
    len: usize,
}

impl Map {
    fn new(fd: RawFd, len: usize, off: i64) -> io::Result<Map> {
        // SAFETY: a fresh shared mapping of the ring fd at the offset io_uring defines; the kernel
        // checks len and offset; MAP_FAILED (-1) is checked below.
        let p = unsafe {
            mmap(
                std::ptr::null_mut(),
                len,
                PROT_READ_WRITE,
                MAP_SHARED_POPULATE,
                fd,
                off,
            )
        };
        if p as isize == -1 {
            return Err(io::Error::last_os_error());
        }
        Ok(Map { ptr: p.cast(), len })
    }

    /// The u32 at byte offset `off` (offsets come from the kernel's params and are inside the map).
    fn u32_at(&self, off: u32) -> *mut u32 {
        assert!(
            off as usize + 4 <= self.len,
            "ring offset {off} outside the mapping"
        );
        // SAFETY: in bounds (checked above); the kernel aligns ring fields to 4 bytes.
        unsafe { self.ptr.add(off as usize).cast() }
    }
}

impl Drop for Map {
    fn drop(&mut self) {
        // SAFETY: ptr/len came from a successful mmap and are unmapped exactly once.
        unsafe { munmap(self.ptr.cast(), self.len) };
    }
}

fn check(rc: c_long, what: &str) -> Result<c_long, Outcome> {
    if rc < 0 {
        Err(Outcome::Failed(format!(
            "{what}: {}",
            io::Error::last_os_error()
        )))
    } else {
        Ok(rc)
    }
}

/// A connected UDP sender and its loopback receiver.
fn pair(v6: bool, timeout: Duration) -> Result<(UdpSocket, UdpSocket), Outcome> {
    let fail = |what: &str, e: io::Error| Outcome::Failed(format!("{what}: {e}"));
    let rx = UdpSocket::bind(SocketAddr::new(loopback(v6), 0)).map_err(|e| fail("bind", e))?;
    rx.set_read_timeout(Some(timeout))
        .map_err(|e| fail("timeout", e))?;
    let tx = UdpSocket::bind(SocketAddr::new(loopback(v6), 0)).map_err(|e| fail("bind", e))?;
    tx.connect(rx.local_addr().map_err(|e| fail("addr", e))?)
        .map_err(|e| fail("connect", e))?;
    Ok((tx, rx))
}

/// Waits for one datagram: delivered, or blocked when none arrives in time.
fn received(rx: &UdpSocket, what: &str) -> Outcome {
    let mut buf = [0u8; 64];
    match rx.recv(&mut buf) {
        Ok(_) => Outcome::Delivered(what.into()),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Outcome::Blocked(format!("{what}: nothing arrived"))
        }
        Err(e) => Outcome::Failed(format!("recv: {e}")),
    }
}

/// Sends one datagram with `IORING_OP_SEND` + `IOSQE_FIXED_FILE` on a registered UDP socket whose
/// descriptor was closed; `worker` adds `IOSQE_ASYNC` (an io-wq worker thread sends it).
pub fn uring_send(v6: bool, worker: bool, timeout: Duration) -> Outcome {
    match uring_send_inner(v6, worker, timeout) {
        Ok(o) | Err(o) => o,
    }
}

fn uring_send_inner(v6: bool, worker: bool, timeout: Duration) -> Result<Outcome, Outcome> {
    let (tx, rx) = pair(v6, timeout)?;
    let mut p = Params::default();
    // SAFETY: io_uring_setup(entries, params*): p is a valid, writable io_uring_params.
    let fd = check(
        unsafe { syscall(SYS_IO_URING_SETUP, 4 as c_long, &mut p as *mut Params) },
        "io_uring_setup",
    )?;
    // SAFETY: a new descriptor owned by nobody else.
    let ring = unsafe { OwnedFd::from_raw_fd(fd as RawFd) };
    let rfd = ring.as_raw_fd();
    let fail = |what: &str, e: io::Error| Outcome::Failed(format!("{what}: {e}"));
    let sq_len = p.sq_off.array_or_flags as usize + p.sq_entries as usize * 4;
    let cq_len = p.cq_off.dropped_or_cqes as usize + p.cq_entries as usize * 16;
    let sq = Map::new(rfd, sq_len, IORING_OFF_SQ_RING).map_err(|e| fail("mmap sq", e))?;
    let cq = Map::new(rfd, cq_len, IORING_OFF_CQ_RING).map_err(|e| fail("mmap cq", e))?;
    let sqes = Map::new(rfd, p.sq_entries as usize * 64, IORING_OFF_SQES)
        .map_err(|e| fail("mmap sqes", e))?;

    // Register the socket, then close its only descriptor: no fd table holds it any more.
    let files: [i32; 1] = [tx.into_raw_fd()];
    // SAFETY: io_uring_register(fd, REGISTER_FILES, int*, 1): files is a live array of one fd.
    let reg = unsafe {
        syscall(
            SYS_IO_URING_REGISTER,
            rfd as c_long,
            IORING_REGISTER_FILES,
            files.as_ptr(),
            1 as c_long,
        )
    };
    // SAFETY: files[0] came from into_raw_fd and is closed exactly once, here.
    drop(unsafe { OwnedFd::from_raw_fd(files[0]) });
    check(reg, "io_uring_register(FILES)")?;

    let payload = *b"e7-uring";
    // SAFETY: sqes maps sq_entries (>= 1) 64-byte entries; entry 0 is ours (nothing submitted
    // yet). Layout of struct io_uring_sqe: opcode@0 flags@1 fd@4 addr@16 len@24 user_data@32.
    unsafe {
        let e = sqes.ptr;
        std::ptr::write_bytes(e, 0, 64);
        *e = IORING_OP_SEND;
        *e.add(1) = IOSQE_FIXED_FILE | if worker { IOSQE_ASYNC } else { 0 };
        e.add(4).cast::<i32>().write(0); // index 0 of the registered files
        e.add(16).cast::<u64>().write(payload.as_ptr() as u64);
        e.add(24).cast::<u32>().write(payload.len() as u32);
        e.add(32).cast::<u64>().write(7);
    }
    let tail = sq.u32_at(p.sq_off.tail);
    let mask = sq.u32_at(p.sq_off.ring_mask);
    let array = p.sq_off.array_or_flags;
    // SAFETY: tail/mask/array are u32 fields of the mapped SQ ring; the kernel reads the tail
    // only after our release store (the fence), io_uring's documented protocol.
    unsafe {
        let t = tail.read_volatile();
        let slot = sq.u32_at(array + (t & mask.read_volatile()) * 4);
        slot.write_volatile(0);
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        tail.write_volatile(t.wrapping_add(1));
    }
    // SAFETY: io_uring_enter(fd, to_submit=1, min_complete=1, GETEVENTS, sigset NULL, 0).
    let n = unsafe {
        syscall(
            SYS_IO_URING_ENTER,
            rfd as c_long,
            1 as c_long,
            1 as c_long,
            IORING_ENTER_GETEVENTS,
            std::ptr::null::<c_void>(),
            0 as c_long,
        )
    };
    check(n, "io_uring_enter")?;
    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
    let head = cq.u32_at(p.cq_off.head);
    let cmask = cq.u32_at(p.cq_off.ring_mask);
    // SAFETY: head/mask are fields of the mapped CQ ring; the CQE at head is complete (enter
    // waited for one). struct io_uring_cqe: user_data@0 (u64), res@8 (i32), flags@12.
    let res = unsafe {
        let h = head.read_volatile();
        let off = p.cq_off.dropped_or_cqes + (h & cmask.read_volatile()) * 16 + 8;
        let r = cq.u32_at(off).read_volatile() as i32;
        head.write_volatile(h.wrapping_add(1));
        r
    };
    drop((sqes, cq, sq, ring));
    let how = if worker { "io-wq worker" } else { "inline" };
    if res < 0 {
        return Ok(classify_send_error(
            &format!("IORING_OP_SEND ({how})"),
            &io::Error::from_raw_os_error(-res),
        ));
    }
    Ok(received(
        &rx,
        &format!("IORING_OP_SEND {how}, fixed file, fd closed"),
    ))
}

/// Clears `FD_CLOEXEC` so a child inherits the descriptor.
fn inheritable(fd: RawFd) -> io::Result<()> {
    // SAFETY: fcntl(fd, F_SETFD, 0) on an open descriptor owned by the caller.
    if unsafe { fcntl(fd, F_SETFD, 0 as c_int) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Child side of [`inherit`]: one send on inherited descriptor `fd` (a connected UDP socket).
pub fn send_fd(fd: RawFd) -> Outcome {
    if fd < 3 {
        return Outcome::Failed(format!(
            "send-fd: {fd} is not an inherited socket descriptor"
        ));
    }
    // SAFETY: the parent passed this descriptor number for exactly this use; this process owns it
    // from here on (closed on drop).
    let s = unsafe { UdpSocket::from_raw_fd(fd) };
    match s.send(b"e7-child") {
        Ok(_) => Outcome::Delivered("child sent on the inherited socket".into()),
        Err(e) => classify_send_error("send on the inherited socket", &e),
    }
}

/// A connected UDP socket of this program is inherited by `prog` (fork + exec), which sends on it
/// first; then this program sends on the same socket. The outcome is that of this program's send
/// (the child's is printed).
pub fn inherit(v6: bool, prog: &str, timeout: Duration) -> Outcome {
    let (tx, rx) = match pair(v6, timeout) {
        Ok(p) => p,
        Err(o) => return o,
    };
    if let Err(e) = inheritable(tx.as_raw_fd()) {
        return Outcome::Failed(format!("fcntl: {e}"));
    }
    let child = Command::new(prog)
        .args(["send-fd", &tx.as_raw_fd().to_string()])
        .output();
    let child = match child {
        Ok(o) => o,
        Err(e) => return Outcome::Failed(format!("running {prog}: {e}")),
    };
    let said = String::from_utf8_lossy(&child.stdout).trim().to_string();
    let first = received(&rx, "child");
    println!("child {prog}: {said}; its datagram: {first}");
    match tx.send(b"e7-parent") {
        Ok(_) => received(&rx, "parent sent on the socket the child used first"),
        Err(e) => classify_send_error("parent send", &e),
    }
}

const SYS_PIDFD_OPEN: c_long = 434;
const SYS_PIDFD_GETFD: c_long = 438;

/// Child side of [`steal`]: a UDP socket connected to loopback `port`, one datagram sent on it,
/// its descriptor number printed; then it stays open until stdin closes.
pub fn hold_sock(v6: bool, port: u16) -> Outcome {
    let tx = match UdpSocket::bind(SocketAddr::new(loopback(v6), 0))
        .and_then(|s| s.connect(SocketAddr::new(loopback(v6), port)).map(|()| s))
    {
        Ok(s) => s,
        Err(e) => return Outcome::Failed(format!("hold-sock socket: {e}")),
    };
    let first = match tx.send(b"e7-owner") {
        Ok(_) => "sent",
        Err(_) => "send failed",
    };
    println!("fd {} {first}", tx.as_raw_fd());
    let mut sink = String::new();
    let _ = std::io::stdin().read_line(&mut sink);
    Outcome::Delivered("held".into())
}

/// `PROG hold-sock` (the owner) creates a connected UDP socket and sends first; this program takes
/// the descriptor with pidfd_getfd(2) and sends on it. The outcome is that of this program's send.
pub fn steal(v6: bool, prog: &str, timeout: Duration) -> Outcome {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let fail = |what: &str, e: io::Error| Outcome::Failed(format!("{what}: {e}"));
    let rx = match UdpSocket::bind(SocketAddr::new(loopback(v6), 0)) {
        Ok(s) => s,
        Err(e) => return fail("bind", e),
    };
    if let Err(e) = rx.set_read_timeout(Some(timeout)) {
        return fail("timeout", e);
    }
    let port = match rx.local_addr() {
        Ok(a) => a.port(),
        Err(e) => return fail("addr", e),
    };
    let v = if v6 { "6" } else { "4" };
    let mut child = match Command::new(prog)
        .args(["hold-sock", v, &port.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => return fail(&format!("running {prog}"), e),
    };
    let mut line = String::new();
    // Kept open until the child exits (it prints its own result line last).
    let mut out = child.stdout.take().map(BufReader::new);
    if let Some(r) = out.as_mut() {
        let _ = r.read_line(&mut line);
    }
    let fd: Option<i32> = line.split_whitespace().nth(1).and_then(|s| s.parse().ok());
    let first = received(&rx, "owner");
    println!("owner {prog}: {}; its datagram: {first}", line.trim());
    let outcome = match fd {
        None => Outcome::Failed(format!("{prog} hold-sock said {line:?}")),
        Some(fd) => match steal_fd(child.id(), fd) {
            Err(e) => fail("pidfd_getfd", e),
            Ok(s) => match s.send(b"e7-thief") {
                Ok(_) => received(&rx, "sent on the socket taken with pidfd_getfd"),
                Err(e) => classify_send_error("send on the taken socket", &e),
            },
        },
    };
    if let Some(mut stdin) = child.stdin.take() {
        let _ = stdin.write_all(b"\n");
    }
    if let Some(r) = out.as_mut() {
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(r, &mut rest);
    }
    let _ = child.wait();
    outcome
}

/// pidfd_open(pid) + pidfd_getfd(pidfd, fd): a copy of another process's descriptor.
fn steal_fd(pid: u32, fd: i32) -> io::Result<UdpSocket> {
    // SAFETY: pidfd_open(pid, 0) takes two integers; returns a new descriptor or -1.
    let pidfd = unsafe { syscall(SYS_PIDFD_OPEN, pid as c_long, 0 as c_long) };
    if pidfd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor owned by nobody else.
    let pidfd = unsafe { OwnedFd::from_raw_fd(pidfd as RawFd) };
    // SAFETY: pidfd_getfd(pidfd, targetfd, 0) takes three integers; returns a new descriptor.
    let got = unsafe {
        syscall(
            SYS_PIDFD_GETFD,
            pidfd.as_raw_fd() as c_long,
            fd as c_long,
            0 as c_long,
        )
    };
    if got < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor (a copy of the target's socket) owned by nobody else.
    Ok(unsafe { UdpSocket::from_raw_fd(got as RawFd) })
}
