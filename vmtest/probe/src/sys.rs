//! The probe's only FFI: `socket(2)` for the socket kinds std cannot create.
//!
//! std opens TCP and UDP sockets, but not ICMP "ping" sockets (`SOCK_DGRAM` + `IPPROTO_ICMP(V6)`) nor raw IP
//! sockets, and the ICMP and `unkprot` cases need both. Once the descriptor exists it is an ordinary datagram
//! socket, so it is wrapped in a std [`UdpSocket`] and everything else (`sendto`, `recv`, timeouts) goes
//! through safe std code. The crate denies `unsafe_code`; this module is the single, audited exception. No
//! libc crate is needed: std already links the C library that provides `socket`.
#![allow(unsafe_code)]

use std::io;
use std::net::UdpSocket;
use std::os::fd::{FromRawFd, OwnedFd};
use std::os::raw::c_int;

/// `AF_INET` from `<sys/socket.h>`.
pub const AF_INET: c_int = 2;
/// `AF_INET6` from `<sys/socket.h>`.
pub const AF_INET6: c_int = 10;
/// `SOCK_DGRAM`: a ping socket when combined with `IPPROTO_ICMP(V6)`.
pub const SOCK_DGRAM: c_int = 2;
/// `SOCK_RAW`: a raw IP socket (needs CAP_NET_RAW).
pub const SOCK_RAW: c_int = 3;
/// `SOCK_CLOEXEC`, so probe sockets never leak into `as-user` children.
const SOCK_CLOEXEC: c_int = 0o2_000_000;

extern "C" {
    /// `int socket(int domain, int type, int protocol)` from the C library std links against.
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
}

/// Opens `socket(domain, ty | SOCK_CLOEXEC, protocol)` and wraps it as a datagram socket.
///
/// Errors are the kernel's (`EACCES` when `net.ipv4.ping_group_range` excludes the caller, `EPERM` for raw
/// sockets without CAP_NET_RAW, `EPROTONOSUPPORT`…).
pub fn datagram_socket(domain: c_int, ty: c_int, protocol: c_int) -> io::Result<UdpSocket> {
    // SAFETY: `socket` takes three integers and has no memory-safety preconditions; it returns a new
    // descriptor or -1 with errno set.
    let fd = unsafe { socket(domain, ty | SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by a successful `socket` call, is open, and is owned by nothing else;
    // OwnedFd takes sole ownership and closes it on drop.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    Ok(UdpSocket::from(owned))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_domain_is_an_error_not_a_descriptor() {
        let err = datagram_socket(-1, SOCK_DGRAM, 0).expect_err("domain -1 cannot exist");
        assert!(
            err.raw_os_error().is_some(),
            "a kernel errno is reported: {err}"
        );
    }

    #[test]
    fn udp_via_ffi_is_a_working_socket() {
        // IPPROTO_UDP = 17: the same path as ping sockets, but usable without any sysctl.
        let s = datagram_socket(AF_INET, SOCK_DGRAM, 17).expect("plain UDP socket");
        let rx = UdpSocket::bind("127.0.0.1:0").expect("bind receiver");
        s.send_to(b"hi", rx.local_addr().expect("addr"))
            .expect("send");
        let mut buf = [0u8; 8];
        assert_eq!(rx.recv(&mut buf).expect("recv"), 2);
    }
}
