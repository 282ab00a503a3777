//! Cachegrind driver: `cg <scenario> <iterations>` sets the scenario up, then runs its operation
//! `iterations` times. `benches/cachegrind.sh` runs it under `valgrind --tool=cachegrind` with N and
//! with 0 iterations and divides the difference by N. `cg --list` prints the scenario names.
//!
//! `cg <scenario> <iterations> cold` reads a buffer larger than the (simulated) last-level cache
//! before every operation, so each operation starts with no line of e7's state cached;
//! `cg <scenario> <iterations> flush` does only the flushing. The difference of their cache misses,
//! divided by N, is the number of cache lines one operation touches cold
//! (`benches/cachegrind.sh` with `COLD=1`).

use std::hint::black_box;
use std::process::ExitCode;

use e7_benches::Scenario;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--list") {
        for s in Scenario::all() {
            println!("{}", s.name());
        }
        return ExitCode::SUCCESS;
    }
    let (Some(name), Some(n)) = (args.first(), args.get(1)) else {
        eprintln!("usage: cg <scenario> <iterations> | cg --list");
        return ExitCode::from(2);
    };
    let Some(scenario) = Scenario::from_name(name) else {
        eprintln!("unknown scenario `{name}`: run `cg --list` for the names");
        return ExitCode::from(2);
    };
    let Ok(n) = n.parse::<u64>() else {
        eprintln!("iterations must be a non-negative integer, got `{n}`");
        return ExitCode::from(2);
    };
    let (flush, op) = match args.get(2).map(String::as_str) {
        None => (false, true),
        Some("cold") => (true, true),
        Some("flush") => (true, false),
        Some(other) => {
            eprintln!("the third argument must be `cold` or `flush`, got `{other}`");
            return ExitCode::from(2);
        }
    };
    let mut state = scenario.setup();
    let mut buf = if flush {
        vec![1u8; FLUSH_BYTES]
    } else {
        Vec::new()
    };
    let mut acc = 0u64;
    for _ in 0..n {
        if flush {
            acc = acc.wrapping_add(evict(&mut buf));
        }
        if op {
            acc = acc.wrapping_add(state.op());
        }
    }
    black_box(acc);
    ExitCode::SUCCESS
}

/// Bytes read and written between operations in `cold`/`flush` mode: twice the last-level cache
/// `cachegrind.sh` simulates (8 MiB), so nothing of the previous operation survives in any level.
const FLUSH_BYTES: usize = 16 << 20;

/// Touches (reads and writes) one byte of every 64-byte line of `buf`.
#[inline(never)]
fn evict(buf: &mut [u8]) -> u64 {
    let mut sum = 0u64;
    for line in buf.chunks_exact_mut(64) {
        if let Some(b) = line.first_mut() {
            sum = sum.wrapping_add(u64::from(*b));
            *b = b.wrapping_add(1);
        }
    }
    black_box(sum)
}
