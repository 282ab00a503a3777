#!/usr/bin/env bash
# The VM benchmark (`make -C vmtest bench`): e7's added cost per packet, in guest instructions.
#
# One boot of the row's kernel (default 6.1) under qemu TCG with `-icount shift=0,sleep=off`: qemu then
# advances the guest's clocks by exactly 1 ns per executed guest instruction, so the guest's
# CLOCK_MONOTONIC deltas are instruction counts (the guest checks that first: `e7-load calib`, a loop of a
# known 2 instructions per iteration, must read 1.000 ns per instruction). One vCPU, so nothing else runs.
# The guest (vmtest/guest/bench.sh) runs the load generator (vmtest/probe/src/bin/e7-load.rs) in rounds,
# each from a fresh insmod: off (module not loaded) / disabled / cached (enforcing, the sender has a rule)
# / norule (enforcing, no rule, a subscriber: pending events + squelch); 1000 filler rules in every loaded
# round. This script prints, per round, the added instructions per UDP packet and per TCP connection
# (the round's figure minus "off", the minimum over E7_BENCH_REPS runs), whether the hook saw every packet
# (module `qpackets` delta == the kernel's Ip OutRequests delta), and the host wall-clock ratio of each
# round to "off" (qemu's real time, for reference only: TCG is not a CPU).
#
# Environment: E7_KROW (row, default 6.1), E7_BENCH_UDP (sends per run, 20000), E7_BENCH_TCP (connections
# per run, 500), E7_BENCH_REPS (runs per round and kind, 3), E7_BENCH_NOBUILD=1 (reuse the initramfs),
# E7_BENCH_BLOCK=N (one more round, "cached" plus N `block any / to PREFIX` rules loaded with `e7 run`; for
# 10,000 build the module with E7_FEATURES=blocklist, which the build step passes on),
# E7_VM_TIMEOUT (seconds, default 1800). Output: the table on stdout, the serial log in
# .vm/logs/bench-ROW-DATE.log.
set -euo pipefail

VMTEST="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$VMTEST/.." && pwd)"
VM="$ROOT/.vm"
ROW="${E7_KROW:-6.1}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/x86_64-unknown-linux-gnu/release"
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

export E7_KROW="$ROW"
vmlinuz="$("$VMTEST/vm.sh" kernel)"
if [ "${E7_BENCH_NOBUILD:-0}" != 1 ]; then
    "$VMTEST/vm.sh" build
    "$VMTEST/vm.sh" initramfs
fi
base="$VM/initramfs-$ROW.cpio.gz"
[ -f "$base" ] || die "no ${base#"$ROOT"/} (run without E7_BENCH_NOBUILD)"
[ -x "$BIN_DIR/e7-load" ] || die "no $BIN_DIR/e7-load (run without E7_BENCH_NOBUILD)"

# The bench's files as a second cpio archive appended to the test initramfs (the kernel unpacks
# concatenated archives in order).
st="$VM/bench-initramfs"
rm -rf "$st"
mkdir -p "$st/usr/bin" "$st/e7"
install -m 0755 "$BIN_DIR/e7-load" "$st/usr/bin/e7-load"
install -m 0644 "$VMTEST/guest/bench.sh" "$st/e7/bench.sh"
initrd="$VM/initramfs-bench-$ROW.cpio.gz"
{
    cat "$base"
    (cd "$st" && find . -print0 | sort -z | cpio --null -o -H newc --owner 0:0 --quiet) | gzip -1
} >"$initrd"

mkdir -p "$VM/logs"
logf="$VM/logs/bench-$ROW-$(date +%Y%m%d-%H%M%S).log"
echo "bench: booting $(basename "$vmlinuz") (row $ROW) under TCG -icount shift=0, 1 vCPU; log: $logf" >&2
rc=0
# Each serial line is stamped with the host's clock as it arrives (the wall-clock column). The machine's own
# QEMU (Debian 12's 7.2), unlike the VM cases (krow.sh qemu): -icount runs one vCPU on one thread, which the
# stale-translation race of 7.2's multi-threaded TCG cannot reach, and every figure in benches/README.md
# was counted with it (another QEMU's `-cpu max` offers other CPU features, so the guest kernel patches
# itself differently and counts differ). E7_QEMU overrides.
timeout -k 5 "${E7_VM_TIMEOUT:-1800}" "${E7_QEMU:-qemu-system-x86_64}" -accel tcg -icount shift=0,sleep=off -cpu max \
    -smp 1 -m "${E7_VM_MEM:-512}" -nographic -no-reboot -kernel "$vmlinuz" -initrd "$initrd" \
    -append "console=ttyS0 panic=-1 panic_on_warn=1 loglevel=4 e7mode=bench e7benchudp=${E7_BENCH_UDP:-20000} e7benchtcp=${E7_BENCH_TCP:-500} e7benchreps=${E7_BENCH_REPS:-3} e7benchblock=${E7_BENCH_BLOCK:-0}" \
    </dev/null 2>&1 | while IFS= read -r line; do printf '%s %s\n' "$EPOCHREALTIME" "${line%$'\r'}"; done >"$logf" || rc=$?
ln -sf "$(basename "$logf")" "$VM/logs/bench-latest.log"
[ "$rc" = 0 ] || die "qemu failed or timed out (exit $rc); log: $logf"

"$VMTEST/bench-report.sh" "$logf"
