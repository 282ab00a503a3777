//! Rule qualifiers: *where* (`to` a destination, `port`) and *who* (`user`).
//!
//! A rule without qualifiers means what it always meant: every destination, every port, every
//! user. A qualified rule narrows that. This module is the one home of the qualifiers' values,
//! their text form (the CLI grammar and the wire both use it: one parser, one printer), the named
//! scopes, and the precedence key the engine and its reference model rank matches by.
//!
//! **Destinations** ([`Dest`]): `any`, a named [`Scope`], or an IPv4/IPv6 address or prefix
//! (`10.0.0.0/8`, `2001:db8::/32`, `1.1.1.1`). An IPv4-mapped IPv6 prefix (`::ffff:10.0.0.0/104`)
//! is stored as the IPv4 prefix it names, and an IPv4-mapped IPv6 destination address is matched as
//! the IPv4 address it carries ([`Addr::canonical`]), so one IPv4 rule covers both. A prefix with
//! host bits set (`10.0.0.1/8`) is refused with the prefix it probably meant.
//!
//! **Scopes** (decided here, documented in the README): every address is in exactly one of
//! - `localhost`: `127.0.0.0/8`, `0.0.0.0/8` (Linux delivers `0.0.0.0` locally), `::1/128`, `::/128`;
//! - `lan`: `10.0.0.0/8`, `172.16.0.0/12`, `192.168.0.0/16` (RFC 1918), `169.254.0.0/16` (link-local),
//!   `224.0.0.0/4` and `255.255.255.255/32` (multicast and limited broadcast, which a host sends only on
//!   its attached networks), `fc00::/7` (ULA), `fe80::/10` (link-local), `ff00::/8` (multicast);
//! - `internet`: every other address — including `100.64.0.0/10` (RFC 6598 shared space: the
//!   carrier's network, not the user's, so a `lan` rule must not reach it).
//!
//! **Ports** ([`Ports`]): 1–65535, single ports, ranges and lists (`53`, `1024-65535`, `80,443`), kept
//! sorted and merged, at most [`MAX_PORT_RANGES`] ranges. Only protocols with ports take them
//! ([`protocol_has_ports`]: tcp, udp, udplite, sctp, and `any`, which then matches only packets of
//! those protocols).
//!
//! **Users**: a uid (the CLI resolves names); it matches the uid the packet's socket belongs to.

use core::fmt;

use crate::schema::Const;

/// A named class of destinations; every address is in exactly one (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// This host: `127.0.0.0/8`, `0.0.0.0/8`, `::1`, `::`.
    Localhost,
    /// The attached networks: private, link-local, unique-local, multicast, broadcast.
    Lan,
    /// Everything else.
    Internet,
}

impl Scope {
    /// Every scope, in order.
    pub const ALL: [Scope; 3] = [Scope::Localhost, Scope::Lan, Scope::Internet];

    /// The word users type.
    pub const fn name(self) -> &'static str {
        match self {
            Scope::Localhost => "localhost",
            Scope::Lan => "lan",
            Scope::Internet => "internet",
        }
    }

    /// The scope named `word`.
    pub fn from_name(word: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.name() == word)
    }

    /// The prefixes that make up `localhost` or `lan` (`internet` is their complement).
    pub const fn prefixes(self) -> &'static [Dest] {
        match self {
            Scope::Localhost => LOCALHOST,
            Scope::Lan => LAN,
            Scope::Internet => &[],
        }
    }

    /// The scope `addr` is in: [`Scope::prefixes`] written as integer tests (a first packet's
    /// lookup runs this; a test checks it against the listed prefixes).
    pub fn of(addr: Addr) -> Scope {
        match addr.canonical() {
            Addr::V4(a) => {
                let v = u32::from_be_bytes(a);
                match v >> 24 {
                    127 | 0 => Scope::Localhost,
                    10 => Scope::Lan,
                    _ if v >> 20 == 0xAC1 // 172.16.0.0/12
                        || v >> 16 == 0xC0A8 // 192.168.0.0/16
                        || v >> 16 == 0xA9FE // 169.254.0.0/16
                        || v >> 28 == 0xE // 224.0.0.0/4
                        || v == u32::MAX =>
                    {
                        Scope::Lan
                    }
                    _ => Scope::Internet,
                }
            }
            Addr::V6(a) => {
                let v = u128::from_be_bytes(a);
                if v <= 1 {
                    Scope::Localhost // :: and ::1
                } else if v >> 121 == 0x7E // fc00::/7
                    || v >> 118 == 0x3FA // fe80::/10
                    || v >> 120 == 0xFF
                // ff00::/8
                {
                    Scope::Lan
                } else {
                    Scope::Internet
                }
            }
        }
    }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Dest {
    Dest::V4 {
        net: [a, b, c, d],
        len,
    }
}

const fn v6(first: u16, len: u8) -> Dest {
    let [hi, lo] = first.to_be_bytes();
    let mut net = [0u8; 16];
    net[0] = hi;
    net[1] = lo;
    Dest::V6 { net, len }
}

const LOCALHOST: &[Dest] = &[
    v4(127, 0, 0, 0, 8),
    v4(0, 0, 0, 0, 8),
    Dest::V6 {
        net: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1],
        len: 128,
    },
    Dest::V6 {
        net: [0; 16],
        len: 128,
    },
];

const LAN: &[Dest] = &[
    v4(10, 0, 0, 0, 8),
    v4(172, 16, 0, 0, 12),
    v4(192, 168, 0, 0, 16),
    v4(169, 254, 0, 0, 16),
    v4(224, 0, 0, 0, 4),
    v4(255, 255, 255, 255, 32),
    v6(0xfc00, 7),
    v6(0xfe80, 10),
    v6(0xff00, 8),
];

/// A packet's destination address.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Addr {
    /// IPv4, network byte order.
    V4([u8; 4]),
    /// IPv6, network byte order.
    V6([u8; 16]),
}

impl Addr {
    /// An IPv4-mapped IPv6 address (`::ffff:a.b.c.d`) as the IPv4 address it carries; others as
    /// they are. Rules match the canonical form.
    pub const fn canonical(self) -> Addr {
        match self {
            Addr::V6([0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, a, b, c, d]) => {
                Addr::V4([a, b, c, d])
            }
            other => other,
        }
    }
}

impl fmt::Display for Addr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Addr::V4(a) => write_v4(f, a),
            Addr::V6(a) => write_v6(f, a),
        }
    }
}

// ---- addresses as text, without `core::net` ----------------------------------------------------
// `core::net`'s parser and formatter have reachable panics (its number reader, slice indexing), and
// so do `str::split`, `str::find` with a string pattern and `str::parse` (slice indexing in their
// searchers): the kernel module parses DEST and PORTS, and its build refuses any `core::panicking`
// path. So these parsers split on single bytes with checked access only ([`split_byte`],
// [`find_pair`]); a test compares them with `std::net` on random addresses.

/// `s` split at every `sep` byte (an ASCII separator, so every piece is a `str`): like
/// `s.split(sep as char)`, without a reachable panic.
fn split_byte(s: &str, sep: u8) -> impl Iterator<Item = &str> + '_ {
    let mut rest = Some(s);
    core::iter::from_fn(move || {
        let r = rest?;
        match r.bytes().position(|b| b == sep) {
            Some(i) => {
                rest = r.get(i.saturating_add(1)..);
                r.get(..i)
            }
            None => {
                rest = None;
                Some(r)
            }
        }
    })
}

/// `s` split at the first `sep` byte, like `s.split_once(sep as char)`.
fn split_once_byte(s: &str, sep: u8) -> Option<(&str, &str)> {
    let i = s.bytes().position(|b| b == sep)?;
    Some((s.get(..i)?, s.get(i.saturating_add(1)..)?))
}

/// Where the first `pair` (two bytes) starts in `s`, like `s.find("::")`.
pub fn find_pair(s: &str, pair: [u8; 2]) -> Option<usize> {
    s.as_bytes().windows(2).position(|w| w == pair)
}

/// A dotted-quad IPv4 address (`10.0.0.1`; no leading zeros, no other forms).
pub fn parse_v4(s: &str) -> Option<[u8; 4]> {
    let mut out = [0u8; 4];
    let mut n = 0usize;
    for part in split_byte(s, b'.') {
        let b = part.as_bytes();
        if b.is_empty() || b.len() > 3 || !b.iter().all(u8::is_ascii_digit) {
            return None;
        }
        if b.len() > 1 && b.first() == Some(&b'0') {
            return None;
        }
        let v = b.iter().fold(0u32, |acc, d| {
            acc.wrapping_mul(10)
                .wrapping_add(u32::from(d.wrapping_sub(b'0')))
        });
        let slot = out.get_mut(n)?;
        *slot = u8::try_from(v).ok()?;
        n = n.wrapping_add(1);
    }
    (n == 4).then_some(out)
}

/// Hex groups separated by `:` (the last may be a dotted quad when `v4_tail`), into `out`; the
/// number of 16-bit groups written.
fn parse_groups(s: &str, out: &mut [u16; 8], v4_tail: bool) -> Option<usize> {
    if s.is_empty() {
        return Some(0);
    }
    let mut n = 0usize;
    let count = split_byte(s, b':').count();
    for (i, g) in split_byte(s, b':').enumerate() {
        if v4_tail && i.wrapping_add(1) == count && g.bytes().any(|b| b == b'.') {
            let [a, b, c, d] = parse_v4(g)?;
            for v in [u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])] {
                *out.get_mut(n)? = v;
                n = n.wrapping_add(1);
            }
            continue;
        }
        let b = g.as_bytes();
        if b.is_empty() || b.len() > 4 || !b.iter().all(u8::is_ascii_hexdigit) {
            return None;
        }
        let v = b.iter().fold(0u16, |acc, &c| {
            let d = match c {
                b'0'..=b'9' => c.wrapping_sub(b'0'),
                b'a'..=b'f' => c.wrapping_sub(b'a').wrapping_add(10),
                _ => c.wrapping_sub(b'A').wrapping_add(10),
            };
            acc.wrapping_shl(4) | u16::from(d)
        });
        *out.get_mut(n)? = v;
        n = n.wrapping_add(1);
    }
    Some(n)
}

/// An IPv6 address in any RFC 4291 text form (`2001:db8::1`, `::`, `::ffff:10.0.0.1`).
pub fn parse_v6(s: &str) -> Option<[u8; 16]> {
    let mut groups = [0u16; 8];
    match find_pair(s, *b"::") {
        None => {
            if parse_groups(s, &mut groups, true)? != 8 {
                return None;
            }
        }
        Some(at) => {
            let head = s.get(..at)?;
            let tail = s.get(at.wrapping_add(2)..)?;
            if find_pair(tail, *b"::").is_some() {
                return None;
            }
            let mut h = [0u16; 8];
            let mut t = [0u16; 8];
            let nh = parse_groups(head, &mut h, false)?;
            let nt = parse_groups(tail, &mut t, true)?;
            if nh.wrapping_add(nt) > 7 {
                return None;
            }
            for (d, v) in groups.iter_mut().zip(h.iter().take(nh)) {
                *d = *v;
            }
            let start = 8usize.wrapping_sub(nt);
            for (d, v) in groups.iter_mut().skip(start).zip(t.iter().take(nt)) {
                *d = *v;
            }
        }
    }
    let mut out = [0u8; 16];
    for (pair, g) in out.chunks_exact_mut(2).zip(groups) {
        for (d, b) in pair.iter_mut().zip(g.to_be_bytes()) {
            *d = b;
        }
    }
    Some(out)
}

fn write_v4(f: &mut fmt::Formatter<'_>, [a, b, c, d]: [u8; 4]) -> fmt::Result {
    write!(f, "{a}.{b}.{c}.{d}")
}

/// RFC 5952: lower-case hex, the longest run (the first of equals) of two or more zero groups as
/// `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`.
fn write_v6(f: &mut fmt::Formatter<'_>, a: [u8; 16]) -> fmt::Result {
    if let Addr::V4(v4) = Addr::V6(a).canonical() {
        f.write_str("::ffff:")?;
        return write_v4(f, v4);
    }
    let mut g = [0u16; 8];
    for (d, pair) in g.iter_mut().zip(a.chunks_exact(2)) {
        let mut b = [0u8; 2];
        for (x, y) in b.iter_mut().zip(pair) {
            *x = *y;
        }
        *d = u16::from_be_bytes(b);
    }
    // Longest run of zero groups.
    let (mut best, mut best_len, mut cur, mut cur_len) = (0usize, 0usize, 0usize, 0usize);
    for (i, v) in g.iter().enumerate() {
        if *v == 0 {
            if cur_len == 0 {
                cur = i;
            }
            cur_len = cur_len.wrapping_add(1);
            if cur_len > best_len {
                best = cur;
                best_len = cur_len;
            }
        } else {
            cur_len = 0;
        }
    }
    let compress = best_len >= 2;
    let mut i = 0usize;
    while i < 8 {
        if compress && i == best {
            f.write_str("::")?;
            i = i.wrapping_add(best_len);
            continue;
        }
        if i > 0 && !(compress && i == best.wrapping_add(best_len)) {
            f.write_str(":")?;
        }
        write!(f, "{:x}", g.get(i).copied().unwrap_or(0))?;
        i = i.wrapping_add(1);
    }
    Ok(())
}

/// Where a rule applies: `any`, a scope, or a prefix (host bits zero, IPv4-mapped stored as IPv4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Dest {
    /// Every destination (the unqualified meaning).
    Any,
    /// A named scope.
    Scope(Scope),
    /// An IPv4 prefix, `len` 0..=32.
    V4 {
        /// Network address, host bits zero.
        net: [u8; 4],
        /// Prefix length.
        len: u8,
    },
    /// An IPv6 prefix, `len` 0..=128 (never IPv4-mapped: those are [`Dest::V4`]).
    V6 {
        /// Network address, host bits zero.
        net: [u8; 16],
        /// Prefix length.
        len: u8,
    },
}

/// `net` with every bit from `len` on cleared (a const-free, panic-free mask).
pub fn mask<const B: usize>(mut net: [u8; B], len: u8) -> [u8; B] {
    for (i, byte) in net.iter_mut().enumerate() {
        let bits_before = i.saturating_mul(8);
        let keep = usize::from(len).saturating_sub(bits_before).min(8);
        let m: u8 = if keep >= 8 {
            0xff
        } else {
            !(0xffu8.checked_shr(keep as u32).unwrap_or(0))
        };
        *byte &= m;
    }
    net
}

impl Dest {
    /// Whether `addr` (canonicalised) is in this destination.
    pub fn contains(&self, addr: Addr) -> bool {
        match (*self, addr.canonical()) {
            (Dest::Any, _) => true,
            (Dest::Scope(s), a) => Scope::of(a) == s,
            (Dest::V4 { net, len }, Addr::V4(a)) => mask(a, len) == net,
            (Dest::V6 { net, len }, Addr::V6(a)) => mask(a, len) == net,
            _ => false,
        }
    }

    /// Precedence rank of the destination part (higher wins): `any` 0, a scope 1, a prefix of
    /// length `p` 2 + `p` (IPv4 and IPv6 never compete: a packet has one family).
    pub const fn rank(&self) -> u8 {
        match *self {
            Dest::Any => 0,
            Dest::Scope(_) => 1,
            Dest::V4 { len, .. } | Dest::V6 { len, .. } => len.saturating_add(2),
        }
    }

    /// Parses `any`, a scope name, or an address/prefix; see the module docs.
    pub fn parse(text: &str) -> Result<Dest, QualError> {
        if text == "any" {
            return Ok(Dest::Any);
        }
        if let Some(s) = Scope::from_name(text) {
            return Ok(Dest::Scope(s));
        }
        let (addr, len) = match split_once_byte(text, b'/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let bad = || QualError::BadDest;
        let (addr, max) = if let Some(a) = parse_v4(addr) {
            (Addr::V4(a), 32u8)
        } else if let Some(a) = parse_v6(addr) {
            (Addr::V6(a), 128u8)
        } else {
            return Err(bad());
        };
        let len = match len {
            None => max,
            Some(l) => match parse_small(l) {
                Some(n) if n <= u32::from(max) => n as u8,
                _ => return Err(QualError::BadPrefixLen { max }),
            },
        };
        let dest = match (addr, addr.canonical()) {
            (Addr::V4(a), _) => Dest::V4 { net: a, len },
            (Addr::V6(_), Addr::V4(a)) if len >= 96 => Dest::V4 {
                net: a,
                len: len.saturating_sub(96),
            },
            (Addr::V6(a), _) => Dest::V6 { net: a, len },
        };
        let masked = match dest {
            Dest::V4 { net, len } => Dest::V4 {
                net: mask(net, len),
                len,
            },
            Dest::V6 { net, len } => Dest::V6 {
                net: mask(net, len),
                len,
            },
            d => d,
        };
        if masked != dest {
            return Err(QualError::HostBits { meant: masked });
        }
        Ok(dest)
    }
}

impl fmt::Display for Dest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Dest::Any => f.write_str("any"),
            Dest::Scope(s) => f.write_str(s.name()),
            Dest::V4 { net, len: 32 } => write_v4(f, net),
            Dest::V6 { net, len: 128 } => write_v6(f, net),
            Dest::V4 { net, len } => {
                write_v4(f, net)?;
                write!(f, "/{len}")
            }
            Dest::V6 { net, len } => {
                write_v6(f, net)?;
                write!(f, "/{len}")
            }
        }
    }
}

/// An inclusive port range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PortRange {
    /// First port (≥ 1).
    pub lo: u16,
    /// Last port (≥ `lo`).
    pub hi: u16,
}

/// Most ranges one rule's port list holds after merging (`80,443,8000-8100` is 3).
pub const MAX_PORT_RANGES: usize = 8;

/// A non-empty set of ports: sorted, merged ranges (so equal sets compare equal).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Ports {
    ranges: [PortRange; MAX_PORT_RANGES],
    n: u8,
}

impl Ports {
    /// The ranges, sorted and merged.
    pub fn ranges(&self) -> &[PortRange] {
        self.ranges.get(..usize::from(self.n)).unwrap_or(&[])
    }

    /// Whether `port` is in the set.
    pub fn contains(&self, port: u16) -> bool {
        self.ranges().iter().any(|r| r.lo <= port && port <= r.hi)
    }

    /// How many ports the set covers (1..=65535): fewer is more specific.
    pub fn count(&self) -> u32 {
        self.ranges()
            .iter()
            .map(|r| {
                u32::from(r.hi)
                    .saturating_sub(u32::from(r.lo))
                    .saturating_add(1)
            })
            .fold(0u32, u32::saturating_add)
    }

    /// The set of the given ranges (each `lo <= hi`, `lo >= 1`), sorted and merged; `None` when
    /// it is empty or needs more than [`MAX_PORT_RANGES`] ranges.
    pub fn from_ranges(input: &[PortRange]) -> Result<Ports, QualError> {
        let mut out = Ports {
            ranges: [PortRange { lo: 0, hi: 0 }; MAX_PORT_RANGES],
            n: 0,
        };
        if input.is_empty() {
            return Err(QualError::NoPorts);
        }
        // Selection by increasing `lo` (inputs are tiny), merging as we go; no sort, no panic.
        let mut last: Option<PortRange> = None;
        let mut prev_lo: Option<(u16, usize)> = None;
        for _ in 0..input.len() {
            let next = input
                .iter()
                .enumerate()
                .filter(|(i, r)| match prev_lo {
                    None => true,
                    Some((lo, j)) => (r.lo, *i) > (lo, j),
                })
                .min_by_key(|(i, r)| (r.lo, *i));
            let Some((i, r)) = next else { break };
            prev_lo = Some((r.lo, i));
            if r.lo == 0 || r.lo > r.hi {
                return Err(QualError::BadPort);
            }
            match last {
                Some(l) if u32::from(r.lo) <= u32::from(l.hi).saturating_add(1) => {
                    let merged = PortRange {
                        lo: l.lo,
                        hi: l.hi.max(r.hi),
                    };
                    last = Some(merged);
                    if let Some(slot) = out.ranges.get_mut(usize::from(out.n).saturating_sub(1)) {
                        *slot = merged;
                    }
                }
                _ => {
                    let slot = out
                        .ranges
                        .get_mut(usize::from(out.n))
                        .ok_or(QualError::TooManyPorts)?;
                    *slot = *r;
                    out.n = out.n.saturating_add(1);
                    last = Some(*r);
                }
            }
        }
        Ok(out)
    }

    /// Parses `53`, `1024-65535`, `80,443`, `80,8000-8100`.
    pub fn parse(text: &str) -> Result<Ports, QualError> {
        let mut buf = [PortRange { lo: 0, hi: 0 }; 32];
        let mut n = 0usize;
        for item in split_byte(text, b',') {
            let (lo, hi) = match split_once_byte(item, b'-') {
                Some((a, b)) => (parse_port(a)?, parse_port(b)?),
                None => {
                    let p = parse_port(item)?;
                    (p, p)
                }
            };
            if lo > hi {
                return Err(QualError::BadRange { lo, hi });
            }
            let slot = buf.get_mut(n).ok_or(QualError::TooManyPorts)?;
            *slot = PortRange { lo, hi };
            n = n.saturating_add(1);
        }
        Ports::from_ranges(buf.get(..n).unwrap_or(&[]))
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, r) in self.ranges().iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            if r.lo == r.hi {
                write!(f, "{}", r.lo)?;
            } else {
                write!(f, "{}-{}", r.lo, r.hi)?;
            }
        }
        Ok(())
    }
}

fn parse_small(s: &str) -> Option<u32> {
    if s.is_empty() || s.len() > 5 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // At most 5 digits: no overflow.
    Some(s.bytes().fold(0u32, |acc, d| {
        acc.wrapping_mul(10)
            .wrapping_add(u32::from(d.wrapping_sub(b'0')))
    }))
}

fn parse_port(s: &str) -> Result<u16, QualError> {
    match parse_small(s) {
        Some(p @ 1..=65535) => Ok(p as u16),
        _ => Err(QualError::BadPort),
    }
}

/// Whether a rule of protocol `proto` may name ports: tcp, udp, udplite, sctp, and `any` (which
/// then matches only packets of those protocols).
pub const fn protocol_has_ports(proto: u32) -> bool {
    proto == Const::Tcp.value()
        || proto == Const::Udp.value()
        || proto == Const::Udplite.value()
        || proto == Const::Sctp.value()
        || proto == Const::Any.value()
}

/// A rule's qualifiers. [`Qualifiers::NONE`] is the unqualified rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Qualifiers {
    /// Destination (`any` when not given).
    pub dest: Dest,
    /// Destination ports (`None`: every port, and packets without ports).
    pub ports: Option<Ports>,
    /// The socket's uid (`None`: every user).
    pub uid: Option<u32>,
}

impl Qualifiers {
    /// No qualifier: the rule means what an unqualified rule always meant.
    pub const NONE: Qualifiers = Qualifiers {
        dest: Dest::Any,
        ports: None,
        uid: None,
    };

    /// True when nothing narrows the rule.
    pub fn is_none(&self) -> bool {
        *self == Qualifiers::NONE
    }

    /// Checks the qualifiers against the rule's protocol (ports need a protocol with ports).
    pub fn check(&self, proto: u32) -> Result<(), QualError> {
        if self.ports.is_some() && !protocol_has_ports(proto) {
            return Err(QualError::PortsWithoutPorts { proto });
        }
        Ok(())
    }

    /// The feature bits ([`FEATURE_DEST`], ...) a module must announce to enforce these.
    pub fn features(&self) -> u32 {
        let mut f = 0;
        if self.dest != Dest::Any {
            f |= FEATURE_DEST;
        }
        if self.ports.is_some() {
            f |= FEATURE_PORTS;
        }
        if self.uid.is_some() {
            f |= FEATURE_USER;
        }
        f
    }
}

/// Prints the qualifiers in the CLI grammar (` to DEST port PORTS user UID`, each only when set;
/// empty for [`Qualifiers::NONE`]), with a leading space.
impl fmt::Display for Qualifiers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.dest != Dest::Any || self.ports.is_some() {
            write!(f, " to {}", self.dest)?;
        }
        if let Some(p) = &self.ports {
            write!(f, " port {p}")?;
        }
        if let Some(u) = self.uid {
            write!(f, " user {u}")?;
        }
        Ok(())
    }
}

/// Feature bit of the `qualifiers` flag: the module enforces `to` destinations.
pub const FEATURE_DEST: u32 = 1;
/// Feature bit: the module enforces `port` lists.
pub const FEATURE_PORTS: u32 = 2;
/// Feature bit: the module enforces `user` rules.
pub const FEATURE_USER: u32 = 4;

/// A qualifier that cannot be accepted; `Display` says what would be right.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QualError {
    /// Not `any`, a scope or an address.
    BadDest,
    /// The prefix length is out of range or not a number.
    BadPrefixLen {
        /// 32 or 128.
        max: u8,
    },
    /// Host bits set after the prefix length.
    HostBits {
        /// The prefix with them cleared.
        meant: Dest,
    },
    /// A port is not a number 1..=65535.
    BadPort,
    /// A range runs backwards.
    BadRange {
        /// First.
        lo: u16,
        /// Last.
        hi: u16,
    },
    /// An empty port list.
    NoPorts,
    /// More ranges than [`MAX_PORT_RANGES`] after merging.
    TooManyPorts,
    /// Ports on a protocol that has none.
    PortsWithoutPorts {
        /// The rule's protocol.
        proto: u32,
    },
}

impl fmt::Display for QualError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            QualError::BadDest => f.write_str(
                "expected a destination: an IPv4 or IPv6 address or prefix (10.0.0.0/8, 2001:db8::/32, 1.1.1.1), or localhost, lan, internet, any",
            ),
            QualError::BadPrefixLen { max } => {
                write!(f, "the prefix length must be a number 0..={max}")
            }
            QualError::HostBits { meant } => write!(
                f,
                "the address has bits set after the prefix length: did you mean {meant}?"
            ),
            QualError::BadPort => {
                f.write_str("expected ports 1..=65535: a port (53), a range (1024-65535) or a list (80,443)")
            }
            QualError::BadRange { lo, hi } => {
                write!(f, "port range {lo}-{hi} runs backwards: write {hi}-{lo}")
            }
            QualError::NoPorts => f.write_str("expected at least one port"),
            QualError::TooManyPorts => write!(
                f,
                "a rule holds at most {MAX_PORT_RANGES} port ranges: split it into several rules"
            ),
            QualError::PortsWithoutPorts { proto } => {
                let name = crate::validate::protocol_name(proto);
                match name {
                    Some(n) => write!(f, "protocol {n} has no ports"),
                    None => write!(f, "protocol {proto} has no ports"),
                }?;
                f.write_str(": `port` needs tcp, udp, udplite, sctp or any")
            }
        }
    }
}

/// The precedence key of a matching rule: compare keys, the greater wins (README, "Precedence").
///
/// Fields in order of significance: a rule for the packet's user over a rule for every user; the
/// destination rank ([`Dest::rank`]: a longer prefix over a shorter, a prefix over a scope, a scope
/// over `any`); a port list over none, then fewer ports over more; the program (an exact path over
/// every folder, a deeper folder over a shallower); a named protocol over `any`; and last, block over
/// allow. Two distinct matching rules with equal keys have the same action, so the verdict is a
/// function of the rule set, never of insertion order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Precedence {
    /// The rule names a user.
    pub user: bool,
    /// [`Dest::rank`].
    pub dest: u8,
    /// The rule names ports.
    pub ports: bool,
    /// 65536 minus the number of ports named (0 without ports).
    pub narrow: u32,
    /// 256 for an exact path, else the folder's length in bytes.
    pub program: u16,
    /// The rule names the packet's protocol (not `any`).
    pub protocol: bool,
    /// The rule blocks.
    pub block: bool,
}

impl Precedence {
    /// The key of a rule with these qualifiers, program rank, protocol specificity and action.
    pub fn of(q: &Qualifiers, program: u16, protocol: bool, block: bool) -> Precedence {
        Precedence {
            user: q.uid.is_some(),
            dest: q.dest.rank(),
            ports: q.ports.is_some(),
            narrow: q.ports.map_or(0, |p| 65536u32.saturating_sub(p.count())),
            program,
            protocol,
            block,
        }
    }

    /// The program rank of an exact path rule.
    pub const EXACT: u16 = 256;
}

/// Writes what the original console is shown for a qualified rule's PATH: the path, then `//`,
/// then the qualifiers as the CLI writes them (`/usr/bin/firefox// to any port 80,443`), cut at
/// [`MAX_PATH_LEN`](crate::MAX_PATH_LEN) bytes. A canonical rule path never contains `//`, so the
/// original console can never read it as an unqualified rule, and sending it back is refused as a
/// non-canonical path. Returns the bytes written.
pub fn legacy_path<'b>(
    path: &[u8],
    q: &Qualifiers,
    buf: &'b mut [u8; crate::MAX_PATH_LEN],
) -> &'b [u8] {
    struct W<'a> {
        buf: &'a mut [u8],
        n: usize,
    }
    impl fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            for b in s.bytes() {
                if let Some(slot) = self.buf.get_mut(self.n) {
                    *slot = b;
                    self.n = self.n.saturating_add(1);
                }
            }
            Ok(())
        }
    }
    // The marker must survive the cut: the path gives way, never the `//`.
    let keep = path.len().min(crate::MAX_PATH_LEN.saturating_sub(2));
    let mut w = W {
        buf: buf.as_mut_slice(),
        n: 0,
    };
    for (slot, b) in w.buf.iter_mut().zip(path.get(..keep).unwrap_or(&[])) {
        *slot = *b;
    }
    w.n = keep;
    let _ = fmt::Write::write_str(&mut w, "//");
    let _ = fmt::Write::write_fmt(&mut w, format_args!("{q}"));
    let n = w.n;
    buf.get(..n).unwrap_or(&[])
}

// ---- wire --------------------------------------------------------------------------------------

/// Appends the qualifiers' attributes (DEST, PORTS, UID; each only when set) to a rule request or
/// a rule nest. Nothing is written for [`Qualifiers::NONE`], so an unqualified rule stays
/// byte-identical to the original's.
pub fn emit_qualifiers(
    w: &mut crate::nla::Writer<'_>,
    q: &Qualifiers,
) -> Result<(), crate::nla::WriteError> {
    use crate::schema::Attr;
    // Formatted whole into a local buffer, then written: never cut like `put_fmt` would.
    let mut buf = [0u8; crate::QUAL_TEXT_LEN];
    if q.dest != Dest::Any {
        w.put_str(
            Attr::Dest.value(),
            text(&mut buf, format_args!("{}", q.dest))?,
        )?;
    }
    if let Some(p) = &q.ports {
        w.put_str(Attr::Ports.value(), text(&mut buf, format_args!("{p}"))?)?;
    }
    if let Some(u) = q.uid {
        w.put_u32(Attr::Uid.value(), u)?;
    }
    Ok(())
}

/// Formats `args` into `buf`; `TooLong` if it does not fit.
fn text<'b>(
    buf: &'b mut [u8; crate::QUAL_TEXT_LEN],
    args: fmt::Arguments<'_>,
) -> Result<&'b [u8], crate::nla::WriteError> {
    struct W<'a> {
        buf: &'a mut [u8],
        n: usize,
    }
    impl fmt::Write for W<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let end = self.n.checked_add(s.len()).ok_or(fmt::Error)?;
            let dst = self.buf.get_mut(self.n..end).ok_or(fmt::Error)?;
            for (d, b) in dst.iter_mut().zip(s.bytes()) {
                *d = b;
            }
            self.n = end;
            Ok(())
        }
    }
    let mut w = W {
        buf: buf.as_mut_slice(),
        n: 0,
    };
    fmt::Write::write_fmt(&mut w, args).map_err(|_| crate::nla::WriteError::TooLong)?;
    let n = w.n;
    Ok(buf.get(..n).unwrap_or(&[]))
}

/// Why [`parse_qualifiers`] refused a message's qualifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QualWireError {
    /// An attribute is malformed (length, NUL, UTF-8).
    Attr(crate::schema::Attr),
    /// A value does not parse.
    Value(QualError),
}

impl fmt::Display for QualWireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QualWireError::Attr(a) => write!(f, "malformed {} attribute", a.id_name()),
            QualWireError::Value(e) => e.fmt(f),
        }
    }
}

/// Reads the DEST, PORTS and UID attributes among `attrs` (other attributes are the caller's) and
/// checks them against the rule's protocol. Absent attributes leave their qualifier unset.
pub fn parse_qualifiers(attrs: &[u8], proto: u32) -> Result<Qualifiers, QualWireError> {
    use crate::schema::Attr;
    let mut q = Qualifiers::NONE;
    for a in crate::nla::AttrIter::new(attrs) {
        let Ok(a) = a else {
            return Err(QualWireError::Attr(Attr::Dest));
        };
        match a.attr() {
            Some(Attr::Dest) => {
                let s = a
                    .str(crate::QUAL_TEXT_LEN)
                    .map_err(|_| QualWireError::Attr(Attr::Dest))?;
                q.dest = Dest::parse(s).map_err(QualWireError::Value)?;
            }
            Some(Attr::Ports) => {
                let s = a
                    .str(crate::QUAL_TEXT_LEN)
                    .map_err(|_| QualWireError::Attr(Attr::Ports))?;
                q.ports = Some(Ports::parse(s).map_err(QualWireError::Value)?);
            }
            Some(Attr::Uid) => {
                q.uid = Some(a.u32().map_err(|_| QualWireError::Attr(Attr::Uid))?);
            }
            _ => {}
        }
    }
    q.check(proto).map_err(QualWireError::Value)?;
    Ok(q)
}
