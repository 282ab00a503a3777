#!/usr/bin/env bash
# Instructions per operation for every e7-core bench scenario, measured with cachegrind:
# for each scenario, run `cg <scenario> N` and `cg <scenario> 0` (same setup, no operations) under
# `valgrind --tool=cachegrind` and print (I_refs(N) - I_refs(0)) / N.
#
# With COLD=1 it also prints the cache lines one operation touches when it starts cold: `cg <scenario>
# N cold` (a 16 MiB buffer read and written before every operation, twice the simulated 8 MiB
# last-level cache) minus `cg <scenario> N flush` (the same flushing, no operation), last-level data
# misses (D) and instruction misses (I) divided by N (N from $COLD_ITERS, default 200).
#
# Usage: [COLD=1] benches/cachegrind.sh [scenario...]   (default: all; N from $ITERS, default 20000)
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

# misses scenario iterations mode -> "LLd-misses LLi-misses" under a fixed cache model
CACHES=(--I1=32768,8,64 --D1=32768,8,64 --LL=8388608,16,64)
misses() {
  valgrind --tool=cachegrind --cache-sim=yes "${CACHES[@]}" --cachegrind-out-file=/dev/null "$CG" "$1" "$2" "$3" 2>&1 |
    awk '/LLd misses:/ {gsub(",", "", $4); d = $4} /LLi misses:/ {gsub(",", "", $4); i = $4} END {print d, i}'
}
COLD_ITERS="${COLD_ITERS:-200}"

if [ "${COLD:-0}" = 1 ]; then
  printf '%-24s %14s %12s %12s\n' scenario instr/op 'cold D lines' 'cold I lines'
else
  printf '%-24s %14s\n' scenario instr/op
fi
for s in "${scenarios[@]}"; do
  n=$ITERS
  [ "$s" = active_refill ] && n=$((ITERS / 100))   # one op = a 1000-socket walk
  base=$(irefs "$s" 0)
  full=$(irefs "$s" "$n")
  if [ "${COLD:-0}" = 1 ]; then
    read -r cd ci < <(misses "$s" "$COLD_ITERS" cold)
    read -r fd fi < <(misses "$s" "$COLD_ITERS" flush)
    awk -v s="$s" -v b="$base" -v f="$full" -v n="$n" -v cd="$cd" -v ci="$ci" -v fd="$fd" -v fi="$fi" -v cn="$COLD_ITERS" \
      'BEGIN { printf "%-24s %14.1f %12.1f %12.1f\n", s, (f - b) / n, (cd - fd) / cn, (ci - fi) / cn }'
  else
    awk -v s="$s" -v b="$base" -v f="$full" -v n="$n" 'BEGIN { printf "%-24s %14.1f\n", s, (f - b) / n }'
  fi
done
