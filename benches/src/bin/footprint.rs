//! Memory footprint of every e7-core structure at its default capacity (bytes, `size_of`), and of
//! the other capacities used by the benches. Run: `cargo run -p e7-benches --bin footprint`.

use std::mem::size_of;

use e7_core::sync::Engine;
use e7_core::{
    ActiveCache, CachedVerdict, ExeId, ExePath, ExeTable, Flags, KnownSocket, QualTable, Rule,
    RuleRing, SocketCache, Squelch,
};

fn row(name: &str, bytes: usize, per: Option<(usize, &str)>) {
    match per {
        Some((n, what)) => println!(
            "{name:<44} {bytes:>10} B  ({:.1} KiB; {} B per {what})",
            bytes as f64 / 1024.0,
            bytes / n
        ),
        None => println!("{name:<44} {bytes:>10} B"),
    }
}

fn main() {
    println!("e7-core memory footprint (size_of, bytes)");
    row("ExePath", size_of::<ExePath>(), None);
    row("ExeId", size_of::<ExeId>(), None);
    row("Rule", size_of::<Rule>(), None);
    row("KnownSocket", size_of::<KnownSocket>(), None);
    row("CachedVerdict", size_of::<CachedVerdict>(), None);
    row("Flags", size_of::<Flags>(), None);
    row(
        "ExeTable<256> (default)",
        size_of::<ExeTable>(),
        Some((256, "path")),
    );
    row(
        "SocketCache<128, 8> (default)",
        size_of::<SocketCache>(),
        Some((1024, "socket")),
    );
    row(
        "ActiveCache<1024> (default)",
        size_of::<ActiveCache>(),
        Some((1024, "inode")),
    );
    row(
        "RuleRing<1024> (default)",
        size_of::<RuleRing>(),
        Some((1024, "rule")),
    );
    row(
        "RuleRing<16>",
        size_of::<RuleRing<16>>(),
        Some((16, "rule")),
    );
    row(
        "RuleRing<128>",
        size_of::<RuleRing<128>>(),
        Some((128, "rule")),
    );
    row(
        "RuleRing<4096>",
        size_of::<RuleRing<4096>>(),
        Some((4096, "rule")),
    );
    row(
        "Squelch<256> (default)",
        size_of::<Squelch>(),
        Some((256 * e7_core::squelch::CLASSES, "entry")),
    );
    row(
        "QualTable<1024, 65536> (default)",
        size_of::<QualTable>(),
        Some((1024, "qualified rule")),
    );
    row(
        "BlocklistTable = QualTable<16384, 262144>",
        size_of::<e7_core::BlocklistTable>(),
        Some((16384, "qualified rule")),
    );
    row(
        "QualTable entry (metadata + index, no path)",
        QualTable::<1>::ENTRY_BYTES,
        None,
    );
    row(
        "Engine<parking_lot> (all of the above, defaults)",
        size_of::<Engine<parking_lot::RawRwLock>>(),
        None,
    );
    println!(
        "original E7 for comparison: rules 128 = 18 688 B, KSC 512 = 79 936 B, ASC 512 = 6 144 B"
    );
}
