//! The probe's only FFI: `socket(2)` for the socket kinds std cannot create, one `setsockopt(2)`, and the
//! namespace calls of `userns` (`unshare(2)`, `mount(2)`, the loopback's `SIOCSIFFLAGS`).
//!
//! std opens TCP and UDP sockets, but not ICMP "ping" sockets (`SOCK_DGRAM` + `IPPROTO_ICMP(V6)`) nor raw IP
//! sockets, and the ICMP and `unkprot` cases need both. Once the descriptor exists it is an ordinary datagram
//! socket, so it is wrapped in a std [`UdpSocket`] and everything else (`sendto`, `recv`, timeouts) goes
//! through safe std code. `setsockopt(IPV6_DSTOPTS)` (an option std has no API for) adds an IPv6 extension
//! header. The crate denies `unsafe_code`; this module is the single, audited exception. No
//! libc crate is needed: std already links the C library that provides `socket`.
#![allow(unsafe_code)]

use std::io;
use std::net::UdpSocket;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
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

/// `IPPROTO_IPV6`, the level of IPv6 socket options.
const IPPROTO_IPV6: c_int = 41;
/// `IPV6_DSTOPTS` (`<linux/in6.h>`): a sticky Destination Options header for every packet sent.
const IPV6_DSTOPTS: c_int = 59;

/// `AF_SMC` from `<sys/socket.h>`: SMC sockets (they take `AF_INET`/`AF_INET6` addresses).
pub const AF_SMC: c_int = 43;
/// `SOCK_STREAM`.
pub const SOCK_STREAM: c_int = 1;

/// `SOCK_SEQPACKET`: a one-to-many SCTP socket with `IPPROTO_SCTP`.
pub const SOCK_SEQPACKET: c_int = 5;

/// `CLONE_NEWUSER`, `CLONE_NEWNET`, `CLONE_NEWNS` from `<sched.h>`.
const CLONE_NEWUSER: c_int = 0x1000_0000;
const CLONE_NEWNET: c_int = 0x4000_0000;
const CLONE_NEWNS: c_int = 0x0002_0000;
/// `MS_BIND` from `<sys/mount.h>`.
const MS_BIND: std::os::raw::c_ulong = 4096;
/// `SIOCGIFFLAGS`, `SIOCSIFFLAGS` from `<linux/sockios.h>`; `IFF_UP`.
const SIOCGIFFLAGS: std::os::raw::c_ulong = 0x8913;
const SIOCSIFFLAGS: std::os::raw::c_ulong = 0x8914;
const IFF_UP: i16 = 1;

extern "C" {
    /// `int unshare(int flags)`.
    fn unshare(flags: c_int) -> c_int;
    /// `uid_t getuid(void)`, `gid_t getgid(void)`.
    fn getuid() -> u32;
    fn getgid() -> u32;
    /// `int mount(const char *src, const char *dst, const char *fstype, unsigned long flags,
    /// const void *data)`.
    fn mount(
        src: *const std::os::raw::c_char,
        dst: *const std::os::raw::c_char,
        fstype: *const std::os::raw::c_char,
        flags: std::os::raw::c_ulong,
        data: *const u8,
    ) -> c_int;
    /// `int bind(int fd, const struct sockaddr *addr, socklen_t len)`.
    fn bind(fd: c_int, addr: *const u8, len: u32) -> c_int;
    /// `int connect(int fd, const struct sockaddr *addr, socklen_t len)`.
    fn connect(fd: c_int, addr: *const u8, len: u32) -> c_int;
    /// `int listen(int fd, int backlog)`.
    fn listen(fd: c_int, backlog: c_int) -> c_int;
    /// `int ioctl(int fd, unsigned long request, ...)`, called with a `struct ifreq *`.
    fn ioctl(fd: c_int, request: std::os::raw::c_ulong, arg: *mut u8) -> c_int;
    /// `int socket(int domain, int type, int protocol)` from the C library std links against.
    fn socket(domain: c_int, ty: c_int, protocol: c_int) -> c_int;
    /// `int setsockopt(int fd, int level, int optname, const void *optval, socklen_t optlen)`.
    fn setsockopt(fd: c_int, level: c_int, optname: c_int, optval: *const u8, optlen: u32)
        -> c_int;
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

/// `SOL_SOCKET` / `SO_RCVBUF`.
const SOL_SOCKET: c_int = 1;
const SO_RCVBUF: c_int = 8;

/// Requests a receive buffer of `bytes` (the kernel doubles it for bookkeeping), as libnl's
/// `nl_socket_set_buffer_size` does.
pub fn set_rcvbuf(sock: &impl AsRawFd, bytes: u32) -> io::Result<()> {
    let v = (bytes as c_int).to_ne_bytes();
    // SAFETY: `v` is a live 4-byte buffer for the duration of the call and its exact length is passed;
    // the kernel copies it. The descriptor is owned by `sock` and open.
    let rc = unsafe { setsockopt(sock.as_raw_fd(), SOL_SOCKET, SO_RCVBUF, v.as_ptr(), 4) };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// The smallest Destination Options header: next header (filled in by the kernel), length 0 (= 8 bytes),
/// and a PadN option covering the remaining 6 bytes.
pub const DSTOPTS_PADN: [u8; 8] = [0, 0, 1, 4, 0, 0, 0, 0];

/// Makes every IPv6 packet of `sock` carry [`DSTOPTS_PADN`], so the transport header is no longer the
/// first header after the IPv6 header (CAP_NET_RAW needed). Used to check that the module walks IPv6
/// extension headers to find the real protocol.
pub fn set_ipv6_dstopts(sock: &impl AsRawFd) -> io::Result<()> {
    let opt = DSTOPTS_PADN;
    // SAFETY: `opt` is a live 8-byte buffer for the duration of the call and its exact length is passed;
    // the kernel copies it and keeps no pointer. The descriptor is owned by `sock` and open.
    let rc = unsafe {
        setsockopt(
            sock.as_raw_fd(),
            IPPROTO_IPV6,
            IPV6_DSTOPTS,
            opt.as_ptr(),
            8,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `IPPROTO_IP` and `IP_OPTIONS` (`<linux/in.h>`): IPv4 options for every packet sent.
const IPPROTO_IP: c_int = 0;
const IP_OPTIONS: c_int = 4;
/// `IPV6_RTHDR` (`<linux/in6.h>`): a sticky routing header for every packet sent.
const IPV6_RTHDR: c_int = 57;
/// `IPOPT_LSRR`: the loose source route option.
const IPOPT_LSRR: u8 = 131;
/// `IPV6_SRCRT_TYPE_4`: a segment routing header.
const IPV6_SRCRT_TYPE_4: u8 = 4;

/// The sticky route option that sends a socket's packets through `hops` (the first hop first)
/// before their destination, as a socket may set it: IPv4 `IP_OPTIONS` with a loose source route
/// (the kernel takes its first address as the first hop and writes the destination into its last
/// slot), IPv6 `IPV6_RTHDR` with a segment routing header (type 4; segment 0 is the destination,
/// which the kernel fills in, and the first hop is the last segment). Returns (IPv6?, option bytes).
pub fn route_option(hops: &[std::net::IpAddr]) -> io::Result<(bool, Vec<u8>)> {
    let v6 = hops.first().is_some_and(|h| h.is_ipv6());
    let mut opt = Vec::new();
    if v6 {
        let n = hops.len() + 1;
        let last = u8::try_from(hops.len()).map_err(|_| io::Error::other("too many hops"))?;
        let hdrlen = u8::try_from(2 * n).map_err(|_| io::Error::other("too many hops"))?;
        // next header (kernel), length in 8-octet units past the first 8, type, segments left,
        // first segment (the last index), flags, tag.
        opt.extend_from_slice(&[0, hdrlen, IPV6_SRCRT_TYPE_4, last, last, 0, 0, 0]);
        opt.extend_from_slice(&[0; 16]); // segment 0: the destination (the kernel writes it)
        for h in hops.iter().rev() {
            match h {
                std::net::IpAddr::V6(a) => opt.extend_from_slice(&a.octets()),
                std::net::IpAddr::V4(_) => return Err(io::Error::other("mixed address families")),
            }
        }
    } else if !hops.is_empty() {
        let len = u8::try_from(3 + 4 * (hops.len() + 1))
            .ok()
            .filter(|l| *l <= 40)
            .ok_or_else(|| io::Error::other("too many hops for 40 bytes of IPv4 options"))?;
        opt.extend_from_slice(&[IPOPT_LSRR, len, 4]);
        for h in hops {
            match h {
                std::net::IpAddr::V4(a) => opt.extend_from_slice(&a.octets()),
                std::net::IpAddr::V6(_) => return Err(io::Error::other("mixed address families")),
            }
        }
        opt.extend_from_slice(&[0; 4]); // the destination's slot (the kernel writes it)
    }
    Ok((v6, opt))
}

/// Sets [`route_option`]`(hops)` on `sock`.
pub fn set_route(sock: &impl AsRawFd, hops: &[std::net::IpAddr]) -> io::Result<()> {
    let (v6, opt) = route_option(hops)?;
    let len = u32::try_from(opt.len()).map_err(|_| io::Error::other("option too long"))?;
    let (level, name) = if v6 {
        (IPPROTO_IPV6, IPV6_RTHDR)
    } else {
        (IPPROTO_IP, IP_OPTIONS)
    };
    // SAFETY: `opt` is a live buffer of `len` bytes for the duration of the call; the kernel
    // copies it and keeps no pointer. The descriptor is owned by `sock` and open.
    check(unsafe { setsockopt(sock.as_raw_fd(), level, name, opt.as_ptr(), len) })
}

/// Removes the route option of `sock` (`v6`: `IPV6_RTHDR`, else `IP_OPTIONS`).
pub fn clear_route(sock: &impl AsRawFd, v6: bool) -> io::Result<()> {
    let (level, name) = if v6 {
        (IPPROTO_IPV6, IPV6_RTHDR)
    } else {
        (IPPROTO_IP, IP_OPTIONS)
    };
    // SAFETY: a zero-length option (the pointer is not read); the descriptor is owned by `sock`.
    check(unsafe { setsockopt(sock.as_raw_fd(), level, name, [0u8; 1].as_ptr(), 0) })
}

fn check(rc: c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// Enters a new user namespace (and a new network and/or mount namespace owned by it) and maps uid and
/// gid 0 inside to the caller's ids, so the process holds every capability over the new namespaces.
/// The process must be single-threaded (it is: the probe starts no thread before this).
pub fn enter_user_ns(net: bool, mnt: bool) -> io::Result<()> {
    // SAFETY: getuid/getgid have no preconditions and cannot fail.
    let (uid, gid) = unsafe { (getuid(), getgid()) };
    let mut flags = CLONE_NEWUSER;
    if net {
        flags |= CLONE_NEWNET;
    }
    if mnt {
        flags |= CLONE_NEWNS;
    }
    // SAFETY: unshare takes an integer flag set and touches no memory of ours.
    check(unsafe { unshare(flags) })?;
    std::fs::write("/proc/self/setgroups", "deny")?;
    std::fs::write("/proc/self/uid_map", format!("0 {uid} 1"))?;
    std::fs::write("/proc/self/gid_map", format!("0 {gid} 1"))?;
    Ok(())
}

/// Binds `sock` to the loopback address (port chosen by the kernel) and listens: the receiving end
/// of a one-to-many SCTP exchange (std has no bind or listen for a descriptor it did not create).
pub fn bind_loopback_and_listen(sock: &impl AsRawFd, v6: bool) -> io::Result<()> {
    let lo: std::net::IpAddr = if v6 {
        std::net::Ipv6Addr::LOCALHOST.into()
    } else {
        std::net::Ipv4Addr::LOCALHOST.into()
    };
    let (sa, len) = sockaddr(std::net::SocketAddr::new(lo, 0));
    // SAFETY: `sa` is a live buffer of at least `len` bytes holding a valid sockaddr for the call;
    // the kernel copies it. The descriptor is owned by `sock` and open.
    check(unsafe { bind(sock.as_raw_fd(), sa.as_ptr(), len) })?;
    // SAFETY: integers only; the descriptor is open.
    check(unsafe { listen(sock.as_raw_fd(), 4) })
}

/// A `struct sockaddr_in` / `sockaddr_in6` for `addr`, and its length.
fn sockaddr(addr: std::net::SocketAddr) -> ([u8; 28], u32) {
    let mut sa = [0u8; 28];
    match addr {
        std::net::SocketAddr::V4(a) => {
            sa[..2].copy_from_slice(&(AF_INET as u16).to_ne_bytes());
            sa[2..4].copy_from_slice(&a.port().to_be_bytes());
            sa[4..8].copy_from_slice(&a.ip().octets());
            (sa, 16)
        }
        std::net::SocketAddr::V6(a) => {
            sa[..2].copy_from_slice(&(AF_INET6 as u16).to_ne_bytes());
            sa[2..4].copy_from_slice(&a.port().to_be_bytes());
            sa[8..24].copy_from_slice(&a.ip().octets());
            (sa, 28)
        }
    }
}

/// Opens `socket(domain, SOCK_STREAM, protocol)` (an SMC socket: `AF_SMC`) and connects it to
/// `addr` within the socket's send timeout `timeout` (SO_SNDTIMEO bounds a blocking connect).
pub fn stream_connect(
    domain: c_int,
    protocol: c_int,
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
) -> io::Result<std::net::TcpStream> {
    stream_connect_with(domain, protocol, addr, timeout, &|_| Ok(()))
}

/// [`stream_connect`], with `setup` run on the socket before it connects (socket options that
/// must be in place for the SYN).
pub fn stream_connect_with(
    domain: c_int,
    protocol: c_int,
    addr: std::net::SocketAddr,
    timeout: std::time::Duration,
    setup: &dyn Fn(&std::net::TcpStream) -> io::Result<()>,
) -> io::Result<std::net::TcpStream> {
    // SAFETY: integers only; returns a new descriptor or -1.
    let fd = unsafe { socket(domain, SOCK_STREAM | SOCK_CLOEXEC, protocol) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by a successful `socket` call and is owned by nothing else.
    let stream = std::net::TcpStream::from(unsafe { OwnedFd::from_raw_fd(fd) });
    stream.set_write_timeout(Some(timeout))?;
    setup(&stream)?;
    let (sa, len) = sockaddr(addr);
    // SAFETY: `sa` holds a valid sockaddr of `len` bytes for the call; the kernel copies it. The
    // descriptor is owned by `stream` and open.
    check(unsafe { connect(stream.as_raw_fd(), sa.as_ptr(), len) })?;
    Ok(stream)
}

/// Sets `IFF_UP` on `lo` of the current network namespace.
pub fn loopback_up() -> io::Result<()> {
    let sock = datagram_socket(AF_INET, SOCK_DGRAM, 0)?;
    // struct ifreq: 16-byte name, then a union whose first member is `short ifr_flags`; 40 bytes.
    let mut ifr = [0u8; 40];
    ifr[..2].copy_from_slice(b"lo");
    // SAFETY: `ifr` is a live, writable 40-byte `struct ifreq` for the duration of each call; the kernel
    // copies it in and out and keeps no pointer. The descriptor is owned by `sock` and open.
    check(unsafe { ioctl(sock.as_raw_fd(), SIOCGIFFLAGS, ifr.as_mut_ptr()) })?;
    let flags = i16::from_ne_bytes([ifr[16], ifr[17]]) | IFF_UP;
    ifr[16..18].copy_from_slice(&flags.to_ne_bytes());
    // SAFETY: as above.
    check(unsafe { ioctl(sock.as_raw_fd(), SIOCSIFFLAGS, ifr.as_mut_ptr()) })
}

/// Bind-mounts `src` on `dst` (in the current mount namespace).
pub fn bind_mount(src: &std::path::Path, dst: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &std::path::Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
    };
    let (src, dst) = (c(src)?, c(dst)?);
    // SAFETY: `src` and `dst` are NUL-terminated strings alive for the call; fstype and data may be NULL
    // for MS_BIND; the kernel copies the strings and keeps no pointer.
    check(unsafe {
        mount(
            src.as_ptr(),
            dst.as_ptr(),
            std::ptr::null(),
            MS_BIND,
            std::ptr::null(),
        )
    })
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
    fn dstopts_on_a_non_ipv6_socket_is_refused() {
        let s = UdpSocket::bind("127.0.0.1:0").expect("bind");
        assert!(
            set_ipv6_dstopts(&s).is_err(),
            "IPv6 options do not apply to an AF_INET socket"
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
