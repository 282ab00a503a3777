#!/usr/bin/env bash
# Self-test of the host-side verdict (parse-log.sh) on synthetic serial logs: what must pass passes and
# every failure mode the harness promises to catch is caught. No VM needed: `make -C vmtest selftest`.
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
tmp="$(mktemp -d)"; trap 'rm -rf "$tmp"' EXIT
n=0; bad=0

check() { # check NAME WANT_EXIT QEMU_RC <<log
    local name="$1" want="$2" qrc="$3" got
    cat >"$tmp/$name.log"
    "$here/parse-log.sh" "$tmp/$name.log" "$qrc" 1 >"$tmp/$name.out" 2>&1
    got=$?
    n=$((n + 1))
    if [ "$got" = "$want" ]; then echo "ok   $name (exit $got)"; else
        echo "FAIL $name: exit $got, want $want"; sed 's/^/     | /' "$tmp/$name.out"; bad=$((bad + 1))
    fi
}

check all_pass 0 0 <<'L'
[    3.1] Run /init as init process
E7CASE a PASS 1.0s
E7CASE b PASS 2.0s
E7LOG b: FAIL: this text is the case's own output and must not count, nor WARNING nor BUG here
E7INFO dmesg-begin
[    3.5] e7: loaded
E7INFO dmesg-end
E7RESULT PASS
L
check crlf_serial 0 0 < <(printf 'E7CASE a PASS 1.0s\r\nE7RESULT PASS\r\n')
check case_fail 1 0 <<'L'
E7CASE a PASS 1.0s
E7CASE b FAIL 2.0s /opt/a/e7-probe udp4: got delivered, want blocked
E7LOG b: FAIL: /opt/a/e7-probe udp4: got delivered, want blocked
E7RESULT FAIL
L
check no_result_timeout 1 124 <<'L'
E7CASE a PASS 1.0s
[   50.0] something hangs
L
check kernel_warning 1 0 <<'L'
E7CASE a PASS 1.0s
[    4.0] WARNING: CPU: 1 PID: 77 at net/netfilter/core.c:123 nf_hook_slow+0x1/0x2
E7RESULT PASS
L
check kernel_oops 1 0 <<'L'
E7CASE a PASS 1.0s
[    4.0] BUG: kernel NULL pointer dereference, address: 0000000000000008
[    4.0] Oops: 0000 [#1] PREEMPT SMP NOPTI
E7RESULT PASS
L
check lockdep 1 0 <<'L'
E7CASE a PASS 1.0s
[    4.0] WARNING: possible circular locking dependency detected
E7RESULT PASS
L
check panic_no_result 1 0 <<'L'
E7CASE a PASS 1.0s
[    4.0] Kernel panic - not syncing: panic_on_warn set ...
L
check no_cases 1 0 <<'L'
E7RESULT PASS
L
check guest_says_fail 1 0 <<'L'
E7CASE a PASS 1.0s
E7INFO final rmmod failed: rmmod: can't unload module 'e7': Resource temporarily unavailable
E7RESULT FAIL
L
echo "parse-log selftest: $((n - bad))/$n ok"
[ "$bad" = 0 ]
