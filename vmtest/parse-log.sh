#!/usr/bin/env bash
# Reads the guest's serial log and decides the VM test result.
# usage: parse-log.sh LOG QEMU_EXIT_CODE WALL_SECONDS
# Fails (exit 1) when: any `E7CASE <name> FAIL`, no `E7RESULT` line (timeout, panic, crash), `E7RESULT FAIL`,
# no case ran at all, or any kernel line (everything not written by the harness itself, i.e. not starting
# with E7CASE/E7LOG/E7RESULT/E7INFO) shows an Oops, WARNING, BUG, Call Trace, panic or lockdep report.
set -uo pipefail
logf="$1"; qrc="${2:-0}"; wall="${3:-?}"
clean="$(mktemp)"; trap 'rm -f "$clean"' EXIT
tr -d '\r' <"$logf" >"$clean"

bad_re='Oops|WARNING|BUG|Call Trace|Kernel panic|general protection fault|possible recursive locking|circular locking dependency|inconsistent lock state|suspicious RCU usage|lock held when returning|INFO: task .* blocked'
status=0
pass=0; fail=0
echo "---- e7 VM test cases ----"
while IFS= read -r line; do
    read -r _ name verdict secs detail <<<"$line"
    if [ "$verdict" = PASS ]; then
        pass=$((pass + 1)); printf '  PASS  %-34s %6s\n' "$name" "$secs"
    else
        fail=$((fail + 1)); printf '  FAIL  %-34s %6s  %s\n' "$name" "$secs" "$detail"
        grep -a "^E7LOG $name: " "$clean" | sed "s/^E7LOG $name: /          | /" | head -n 60
    fi
done < <(grep -a '^E7CASE ' "$clean")

kernel_bad="$(grep -av -E '^(E7CASE|E7LOG|E7RESULT|E7INFO) ' "$clean" | grep -a -E "$bad_re" || true)"
if [ -n "$kernel_bad" ]; then
    echo "---- kernel log shows problems ----"
    echo "$kernel_bad" | head -n 40
    status=1
fi
result="$(grep -a '^E7RESULT ' "$clean" | tail -n1 | awk '{print $2}')"
if [ -z "$result" ]; then
    why="qemu exit code $qrc"; [ "$qrc" = 124 ] && why="$why: hard timeout hit"
    echo "---- no E7RESULT line: the guest did not finish ($why) ----"
    echo "last 30 lines of the serial log:"
    tail -n 30 "$clean" | sed 's/^/          | /'
    status=1
elif [ "$result" != PASS ]; then
    status=1
fi
[ $((pass + fail)) -gt 0 ] || { echo "no case ran"; status=1; }
[ "$fail" = 0 ] || status=1
echo "---- $pass passed, $fail failed; guest result: ${result:-missing}; VM wall time ${wall}s; log: $logf ----"
if [ "$status" = 0 ]; then echo "vmtest: PASS"; else echo "vmtest: FAIL"; fi
exit "$status"
