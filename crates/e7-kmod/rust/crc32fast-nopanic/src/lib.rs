//! A panic-free CRC-32 (IEEE 802.3, reflected, polynomial 0xEDB88320) with the subset of
//! `crc32fast`'s API that e7-core uses (`Hasher::{new, new_with_initial, update, finalize,
//! reset}`, `hash`).
//!
//! Why it exists: the e7 kernel build rejects any `core::panicking` symbol in the linked Rust
//! object, and crates.io `crc32fast`'s portable slice-by-16 loop keeps bounds checks LLVM cannot
//! remove. The kernel staticlib's workspace patches `crc32fast` with this crate; host builds and
//! tests of e7-core keep the real one. Results are identical (checked by the tests below against
//! the standard check value and a bitwise reference). It is slice-by-4 with `chunks_exact` and
//! table lookups indexed by `u8` into 256-entry tables, so no index can be out of bounds.
#![no_std]
#![forbid(unsafe_code)]

const fn make_tables() -> [[u32; 256]; 4] {
    let mut t = [[0u32; 256]; 4];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut i = 0;
    while i < 256 {
        t[1][i] = (t[0][i] >> 8) ^ t[0][(t[0][i] & 0xFF) as usize];
        t[2][i] = (t[1][i] >> 8) ^ t[0][(t[1][i] & 0xFF) as usize];
        t[3][i] = (t[2][i] >> 8) ^ t[0][(t[2][i] & 0xFF) as usize];
        i += 1;
    }
    t
}

static TABLES: [[u32; 256]; 4] = make_tables();

#[inline]
fn t(table: &[u32; 256], b: u8) -> u32 {
    // A u8 index into a 256-entry array: the bounds check is provably dead.
    table[b as usize]
}

fn update(crc: u32, buf: &[u8]) -> u32 {
    let [t0, t1, t2, t3] = &TABLES;
    let mut c = !crc;
    let mut chunks = buf.chunks_exact(4);
    for ch in &mut chunks {
        if let [a, b, d, e] = *ch {
            let x = c ^ u32::from_le_bytes([a, b, d, e]);
            c = t(t3, x as u8) ^ t(t2, (x >> 8) as u8) ^ t(t1, (x >> 16) as u8) ^ t(t0, (x >> 24) as u8);
        }
    }
    for &b in chunks.remainder() {
        c = (c >> 8) ^ t(t0, (c as u8) ^ b);
    }
    !c
}

/// Incremental CRC-32 hasher (the `crc32fast::Hasher` API subset).
#[derive(Clone, Debug, Default)]
pub struct Hasher {
    crc: u32,
    amount: u64,
}

impl Hasher {
    /// A hasher with initial value 0.
    pub fn new() -> Self {
        Self::new_with_initial(0)
    }

    /// A hasher continuing from `init`.
    pub fn new_with_initial(init: u32) -> Self {
        Hasher { crc: init, amount: 0 }
    }

    /// Feeds bytes.
    pub fn update(&mut self, buf: &[u8]) {
        self.crc = update(self.crc, buf);
        self.amount = self.amount.wrapping_add(buf.len() as u64);
    }

    /// The CRC of everything fed so far.
    pub fn finalize(self) -> u32 {
        self.crc
    }

    /// Starts over.
    pub fn reset(&mut self) {
        self.crc = 0;
        self.amount = 0;
    }
}

/// CRC-32 of `buf`.
pub fn hash(buf: &[u8]) -> u32 {
    update(0, buf)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bitwise(buf: &[u8]) -> u32 {
        let mut c = !0u32;
        for &b in buf {
            c ^= u32::from(b);
            for _ in 0..8 {
                c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
            }
        }
        !c
    }

    #[test]
    fn check_value() {
        assert_eq!(hash(b"123456789"), 0xCBF4_3926);
        assert_eq!(hash(b""), 0);
    }

    #[test]
    fn matches_bitwise_reference_for_every_length_and_split() {
        let data: [u8; 67] = core::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11));
        for len in 0..=data.len() {
            let buf = &data[..len];
            assert_eq!(hash(buf), bitwise(buf), "len {len}");
            for split in 0..=len {
                let mut h = Hasher::new();
                h.update(&buf[..split]);
                h.update(&buf[split..]);
                assert_eq!(h.finalize(), bitwise(buf), "len {len} split {split}");
            }
        }
    }
}
