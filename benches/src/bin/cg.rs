//! Cachegrind driver: `cg <scenario> <iterations>` sets the scenario up, then runs its operation
//! `iterations` times. `benches/cachegrind.sh` runs it under `valgrind --tool=cachegrind` with N and
//! with 0 iterations and divides the difference by N. `cg --list` prints the scenario names.

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
    let mut state = scenario.setup();
    let mut acc = 0u64;
    for _ in 0..n {
        acc = acc.wrapping_add(state.op());
    }
    black_box(acc);
    ExitCode::SUCCESS
}
