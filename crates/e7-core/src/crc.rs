//! CRC-32 (IEEE 802.3, reflected, the zlib/crc32fast checksum), panic-free, slicing-by-8.
//!
//! Why not crc32fast directly: its portable (no-SIMD) path, the one the kernel target uses, indexes
//! slices in ways the optimiser cannot prove in bounds and counts bytes with an overflow-checked add,
//! so it links `core::panicking` into the kernel object, which the module build rejects. This is the
//! same function (`tests/crc.rs` checks it against crc32fast byte for byte) written so that every
//! table index is a `u8` into a 256-entry table and every block is a fixed-size array: no bounds
//! check, no arithmetic that can overflow.

const fn make_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut s = 1;
    while s < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[s - 1][i];
            t[s][i] = (prev >> 8) ^ t[0][(prev & 0xFF) as usize];
            i += 1;
        }
        s += 1;
    }
    t
}

static TABLES: [[u32; 256]; 8] = make_tables();

#[inline(always)]
fn t(table: &[u32; 256], index: u32) -> u32 {
    // `index as u8` is < 256, so this indexing cannot fail (and compiles without a check).
    table[usize::from(index as u8)]
}

/// Incremental CRC-32 state (`Copy`, so a prefix's checksum can be taken without cloning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32 {
    state: u32,
}

impl Default for Crc32 {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32 {
    /// The empty checksum.
    pub const fn new() -> Self {
        Crc32 { state: !0 }
    }

    /// Feeds bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        let [t0, t1, t2, t3, t4, t5, t6, t7] = &TABLES;
        let mut c = self.state;
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut b = [0u8; 8];
            b.copy_from_slice(chunk);
            let lo = u32::from_le_bytes([b[0], b[1], b[2], b[3]]) ^ c;
            let hi = u32::from_le_bytes([b[4], b[5], b[6], b[7]]);
            c = t(t7, lo)
                ^ t(t6, lo >> 8)
                ^ t(t5, lo >> 16)
                ^ t(t4, lo >> 24)
                ^ t(t3, hi)
                ^ t(t2, hi >> 8)
                ^ t(t1, hi >> 16)
                ^ t(t0, hi >> 24);
        }
        for &byte in chunks.remainder() {
            c = (c >> 8) ^ t(t0, c ^ u32::from(byte));
        }
        self.state = c;
    }

    /// The checksum of everything fed so far.
    pub const fn finalize(self) -> u32 {
        !self.state
    }
}

/// CRC-32 of `bytes`.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = Crc32::new();
    c.update(bytes);
    c.finalize()
}
