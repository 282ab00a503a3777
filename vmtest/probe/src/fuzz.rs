//! `genl-fuzz`: random and mutated generic-netlink messages to the e7 family, for the VM fuzz case.
//!
//! Every message is a request (NLM_F_REQUEST) to the family id, built from a seeded xorshift
//! generator so a failing run is reproduced by its seed. The mix: random commands (mostly 0..=11,
//! sometimes any byte) and versions; attributes of random types (known ones, their NLA_F_NESTED /
//! byte-order bits, unknown ones) and lengths, u32s of the wrong size, strings without NUL or with
//! embedded NULs and paths near the 255-byte limit, nests holding garbage or claiming more than
//! they hold, attributes running past the message end, nlmsg_len shorter or longer than the
//! datagram, well-formed requests with bytes flipped, and NLM_F_DUMP (and NLM_F_ACK) on any of it.
//! After each send every reply waiting on the socket is read (non-blocking), which also drives any
//! dump the kernel started, so the socket never stalls.

use std::io;
use std::time::Instant;

use crate::genl;

const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK: u16 = 4;
const NLM_F_DUMP: u16 = 0x300;
const NLA_F_NESTED: u16 = 0x8000;
const NLA_F_NET_BYTEORDER: u16 = 0x4000;

/// xorshift64* (seed 0 is mapped to a fixed non-zero state).
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(if seed == 0 {
            0x9E37_79B9_7F4A_7C15
        } else {
            seed
        })
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in `0..n` (n > 0).
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

fn attr(out: &mut Vec<u8>, kind: u16, payload: &[u8]) {
    let len = 4 + payload.len();
    out.extend_from_slice(&(len.min(0xffff) as u16).to_ne_bytes());
    out.extend_from_slice(&kind.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len() + (4 - len % 4) % 4, 0);
}

const PATHS: [&[u8]; 6] = [
    b"/usr/bin/fuzz",
    b"/",
    b"/opt/fuzz/",
    b"relative",
    b"/a//b",
    b"/x/../y",
];

fn payload(r: &mut Rng, depth: u32) -> Vec<u8> {
    match r.below(9) {
        0 => Vec::new(),
        1 => (r.below(20) as u32).to_ne_bytes().to_vec(),
        2 => r.next().to_ne_bytes()[..r.below(8) as usize].to_vec(),
        3 => {
            // A path, with or without NUL.
            let mut p = PATHS[r.below(PATHS.len() as u64) as usize].to_vec();
            if r.chance(2) {
                p.push(0);
            }
            p
        }
        4 => {
            // Near the 255-byte limit, maybe an embedded NUL.
            let mut p = b"/".to_vec();
            p.resize(250 + r.below(12) as usize, b'p');
            if r.chance(3) {
                let at = r.below(p.len() as u64) as usize;
                p[at] = 0;
            }
            p.push(0);
            p
        }
        5 if depth < 3 => attrs(r, depth + 1),
        6 => {
            // A nest header claiming more than follows.
            let mut v = Vec::new();
            v.extend_from_slice(&(8 + r.below(200) as u16).to_ne_bytes());
            v.extend_from_slice(&(r.below(12) as u16 | NLA_F_NESTED).to_ne_bytes());
            let n = r.below(6) as usize;
            v.extend(r.bytes(n));
            v
        }
        7 => (0xFF00u32 | r.below(8) as u32).to_ne_bytes().to_vec(),
        _ => {
            let n = r.below(40) as usize;
            r.bytes(n)
        }
    }
}

fn attr_type(r: &mut Rng) -> u16 {
    let base = if r.chance(8) {
        r.next() as u16 & 0x3fff
    } else {
        r.below(13) as u16
    };
    match r.below(10) {
        0 => base | NLA_F_NESTED,
        1 => base | NLA_F_NET_BYTEORDER,
        _ => base,
    }
}

fn attrs(r: &mut Rng, depth: u32) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..r.below(5) {
        let kind = attr_type(r);
        let p = payload(r, depth);
        attr(&mut out, kind, &p);
    }
    if r.chance(6) && !out.is_empty() {
        // An attribute whose length runs past the end (or is below the header size).
        let len = if r.chance(2) {
            out.len() as u16 + 40
        } else {
            r.below(4) as u16
        };
        out[0..2].copy_from_slice(&len.to_ne_bytes());
    }
    out
}

/// A well-formed request of a known shape (before mutation).
fn valid(r: &mut Rng) -> (u8, Vec<u8>) {
    let mut a = Vec::new();
    let path = PATHS[r.below(3) as usize];
    let mut p = path.to_vec();
    p.push(0);
    match r.below(7) {
        0 => (7, a), // QUERY
        1 => {
            attr(&mut a, 3, &(r.below(14) as u32).to_ne_bytes()); // GET FLAG
            (10, a)
        }
        2 => {
            attr(&mut a, 3, &(r.below(14) as u32).to_ne_bytes()); // SET FLAG VALUE
            attr(&mut a, 6, &(0xFF00u32 | r.below(8) as u32).to_ne_bytes());
            (9, a)
        }
        3 | 4 => {
            attr(
                &mut a,
                4,
                &[6u32, 17, 1, 58, 0xffff_ffff][r.below(5) as usize].to_ne_bytes(),
            );
            attr(&mut a, 2, &p);
            (if r.chance(2) { 3 } else { 4 }, a) // BLOCK / ALLOW rule
        }
        5 => {
            attr(&mut a, 2, &p);
            (6, a) // CLEAR one rule
        }
        _ => ([1u8, 2, 5, 8, 11][r.below(5) as usize], a),
    }
}

/// One fuzzed datagram for `family`.
pub fn message(r: &mut Rng, family: u16, seq: u32) -> Vec<u8> {
    let (cmd, body) = if r.chance(2) {
        let (c, mut b) = valid(r);
        // Flip a few bytes of the attributes (headers included).
        for _ in 0..r.below(3) {
            if !b.is_empty() {
                let at = r.below(b.len() as u64) as usize;
                b[at] ^= 1 << r.below(8);
            }
        }
        (c, b)
    } else {
        let c = if r.chance(10) {
            r.next() as u8
        } else {
            r.below(12) as u8
        };
        (c, attrs(r, 0))
    };
    let mut flags = NLM_F_REQUEST;
    if r.chance(3) {
        flags |= NLM_F_DUMP;
    }
    if r.chance(2) {
        flags |= NLM_F_ACK;
    }
    if r.chance(20) {
        flags |= (r.next() as u16) & 0x0ff0;
    }
    let version = if r.chance(4) { r.next() as u8 } else { 1 };
    let mut m = genl::request(family, flags, seq, cmd, &body);
    m[17] = version;
    if r.chance(8) {
        m[18] = r.next() as u8; // reserved
    }
    if r.chance(15) {
        // nlmsg_len disagreeing with the datagram, or the datagram cut short.
        match r.below(3) {
            0 => {
                let len = (m.len() as u32).wrapping_add(r.below(64) as u32 + 1);
                m[0..4].copy_from_slice(&len.to_ne_bytes());
            }
            1 => {
                let len = r.below(m.len() as u64) as u32;
                m[0..4].copy_from_slice(&len.to_ne_bytes());
            }
            _ => {
                let keep = 16 + r.below((m.len() - 15) as u64) as usize;
                m.truncate(keep);
                let len = m.len() as u32;
                m[0..4].copy_from_slice(&len.to_ne_bytes());
            }
        }
    }
    m
}

/// Sends `count` fuzzed messages seeded with `seed`; prints the figures. Errors only for the
/// probe's own setup (socket, family lookup); the kernel refusing a message is the point.
pub fn run(seed: u64, count: u32) -> Result<String, String> {
    let s = genl::open().map_err(|e| format!("netlink socket: {e}"))?;
    let family = genl::resolve(&s)?;
    s.set_nonblocking(true).map_err(|e| e.to_string())?;
    let mut r = Rng::new(seed);
    let (mut sent, mut send_err, mut replies, mut bytes) = (0u32, 0u32, 0u64, 0u64);
    let mut buf = vec![0u8; 1 << 16];
    let start = Instant::now();
    for i in 0..count {
        let m = message(&mut r, family, i);
        match s.send(&m) {
            Ok(_) => sent += 1,
            Err(_) => send_err += 1,
        }
        bytes += m.len() as u64;
        loop {
            match s.recv(&mut buf) {
                Ok(_) => replies += 1,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                // ENOBUFS (replies dropped while we were not reading) and the like: keep going.
                Err(_) => {}
            }
        }
    }
    Ok(format!(
        "genl-fuzz seed={seed} messages={count} sent={sent} send_errors={send_err} bytes={bytes} \
         replies={replies} secs={:.1}",
        start.elapsed().as_secs_f64()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_messages() {
        let a: Vec<_> = {
            let mut r = Rng::new(42);
            (0..200).map(|i| message(&mut r, 0x20, i)).collect()
        };
        let mut r = Rng::new(42);
        let b: Vec<_> = (0..200).map(|i| message(&mut r, 0x20, i)).collect();
        assert_eq!(a, b);
        let mut r = Rng::new(43);
        let c: Vec<_> = (0..200).map(|i| message(&mut r, 0x20, i)).collect();
        assert_ne!(a, c);
    }

    #[test]
    fn the_mix_covers_dumps_bad_lengths_and_every_command() {
        let mut r = Rng::new(7);
        let (mut dumps, mut bad_len, mut cmds) = (0, 0, std::collections::HashSet::new());
        for i in 0..5000 {
            let m = message(&mut r, 0x20, i);
            assert!(m.len() >= 16);
            let flags = u16::from_ne_bytes([m[6], m[7]]);
            assert_ne!(flags & NLM_F_REQUEST, 0);
            if flags & NLM_F_DUMP == NLM_F_DUMP {
                dumps += 1;
            }
            if u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize != m.len() {
                bad_len += 1;
            }
            if let Some(&c) = m.get(16) {
                cmds.insert(c);
            }
        }
        assert!(dumps > 1000, "{dumps}");
        assert!(bad_len > 50, "{bad_len}");
        assert!((0..12).all(|c| cmds.contains(&c)), "{cmds:?}");
    }
}
