//! e7-core's panic-free CRC-32 is byte-for-byte crc32fast's checksum.

use e7_core::crc::{crc32, Crc32};
use proptest::prelude::*;

#[test]
fn known_vectors() {
    assert_eq!(crc32(b""), 0);
    assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    assert_eq!(crc32(b"/usr/bin/wget"), crc32fast::hash(b"/usr/bin/wget"));
}

proptest! {
    #[test]
    fn equals_crc32fast(data in proptest::collection::vec(any::<u8>(), 0..600)) {
        prop_assert_eq!(crc32(&data), crc32fast::hash(&data));
    }

    #[test]
    fn incremental_equals_one_shot(data in proptest::collection::vec(any::<u8>(), 0..300), cut in 0usize..300) {
        let cut = cut.min(data.len());
        let mut c = Crc32::new();
        c.update(&data[..cut]);
        let prefix = c.finalize();
        c.update(&data[cut..]);
        prop_assert_eq!(prefix, crc32fast::hash(&data[..cut]));
        prop_assert_eq!(c.finalize(), crc32fast::hash(&data));
    }
}
