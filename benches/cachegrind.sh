#!/usr/bin/env bash
# Instructions per operation for every e7-core bench scenario, measured with cachegrind:
# for each scenario, run `cg <scenario> N` and `cg <scenario> 0` (same setup, no operations) under
# `valgrind --tool=cachegrind` and print (I_refs(N) - I_refs(0)) / N.
#
# Usage: benches/cachegrind.sh [scenario...]   (default: all; N from $ITERS, default 20000)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
ITERS="${ITERS:-20000}"
command -v valgrind >/dev/null || { echo "valgrind is not installed (apt-get install valgrind)" >&2; exit 1; }
cargo build -q --release -p e7-benches --bin cg
CG="$CARGO_TARGET_DIR/release/cg"
scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || mapfile -t scenarios < <("$CG" --list)

irefs() { # scenario iterations -> total instructions executed
  valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null "$CG" "$1" "$2" 2>&1 |
    awk '/I *refs:/ {gsub(",", "", $NF); print $NF}'
}

printf '%-24s %14s\n' scenario instr/op
for s in "${scenarios[@]}"; do
  n=$ITERS
  [ "$s" = active_refill ] && n=$((ITERS / 100))   # one op = a 1000-socket walk
  base=$(irefs "$s" 0)
  full=$(irefs "$s" "$n")
  awk -v s="$s" -v b="$base" -v f="$full" -v n="$n" 'BEGIN { printf "%-24s %14.1f\n", s, (f - b) / n }'
done
