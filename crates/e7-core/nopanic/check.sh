#!/usr/bin/env bash
# Builds the kernel-shaped staticlib (see Cargo.toml: x86_64-unknown-none, panic=abort, fat LTO,
# overflow checks ON) and fails if any function reachable from the e7np_* entry points calls into
# `core::panicking`. With fat LTO the crate's object holds only code reachable from the exported
# entry points, so a relocation to a panicking symbol from any function other than the panicking
# functions themselves is a reachable panic. Exit 0 = panic-free.
set -euo pipefail
cd "$(dirname "$0")"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
# OVERFLOW_CHECKS=0 checks the build without overflow checks (default 1: with them, the stricter case).
export CARGO_PROFILE_RELEASE_OVERFLOW_CHECKS="$( [ "${OVERFLOW_CHECKS:-1}" = 0 ] && echo false || echo true)"
RUSTC_BOOTSTRAP=1 RUSTFLAGS="-Crelocation-model=static -Ccode-model=kernel" \
  cargo build --release --target x86_64-unknown-none -Zbuild-std=core -q
lib="$CARGO_TARGET_DIR/x86_64-unknown-none/release/libe7_core_nopanic.a"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
(cd "$work" && ar x "$lib")
obj=$(ls "$work"/e7_core_nopanic-*.o)
entries=$(nm "$obj" | awk '$2 == "T" && $3 ~ /^e7np_/ {print $3}' | wc -l)
offenders=$(objdump -dr --no-show-raw-insn "$obj" |
  awk '/^[0-9a-f]+ <.*>:$/ {fn = $2}
       /R_X86_64/ && /panicking/ && fn !~ /panicking/ {print fn, "->", $NF}' | sort -u)
if [ -n "$offenders" ]; then
  echo "$offenders"
  echo "FAIL: panicking code is reachable from the e7-core entry points ($entries checked)"
  exit 1
fi
echo "OK: no core::panicking call reachable from $entries e7-core entry points"
