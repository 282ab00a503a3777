# The guest test runner (sourced by /init). Prints, on the serial console:
#   E7INFO ...                       context (kernel, cpus, module)
#   E7CASE <name> PASS|FAIL <detail> one line per case
#   E7LOG <name>: ...                the case's own output (always; the host shows it for failed cases)
#   the full kernel log between E7INFO dmesg-begin / dmesg-end
#   E7RESULT PASS|FAIL
# Cases run one by one, each in its own session with a watchdog (e7casetimeout seconds, from the kernel
# command line), from a reset firewall. The kernel log written during a case is checked right after it, so
# a WARNING or Oops is blamed on the case that caused it.

CASE_TIMEOUT=${e7casetimeout:-150}
BAD_RE='Oops|WARNING|BUG|Call Trace|general protection fault|possible recursive locking|circular locking dependency|inconsistent lock state|suspicious RCU usage|INFO: task .* blocked'

all_cases() { sed -n 's/^case_\([a-z0-9_]*\)() *{.*/\1/p' /e7/cases/*.sh; }

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# Loads the module if a previous case left it unloaded, then resets rules and flags. Prints a problem.
prepare() {
    if [ ! -d /sys/module/e7 ]; then
        [ -f "$E7_KO" ] || { echo "no $E7_KO in the initramfs (module not built)"; return 1; }
        _o=$(insmod "$E7_KO" 2>&1) || { echo "insmod failed: $_o"; return 1; }
    fi
    command -v e7 >/dev/null || { echo "no e7 CLI in the initramfs"; return 1; }
    _o=$(e7 run /e7/reset.e7 2>&1) || { echo "reset (e7 run /e7/reset.e7) failed: $(echo "$_o" | head -n 3 | tr '\n' ' ')"; return 1; }
    return 0
}

dmesg -c >/tmp/dmesg.all
echo # the boot messages may leave the cursor mid-line: harness lines must start a line
echo "E7INFO kernel $(uname -r), $(nproc) cpus, $(grep MemTotal /proc/meminfo | tr -s ' ')"
echo "E7INFO probe $(ls -l $PA | awk '{print $5}') bytes, e7 $(ls -l /bin/e7 2>/dev/null | awk '{print $5}') bytes, module $(ls -l $E7_KO 2>/dev/null | awk '{print $5}') bytes"
if [ -f "$E7_KO" ]; then
    _o=$(insmod "$E7_KO" 2>&1) && echo "E7INFO insmod ok, taint $(cat /proc/sys/kernel/tainted)" \
        || echo "E7INFO insmod failed: $_o"
fi

# Cost of the two building blocks under this accelerator (for the timing report).
if [ -d /sys/module/e7 ]; then
    _t0=$(uptime_s)
    for _i in 1 2 3 4 5; do e7 get mode >/dev/null 2>&1; done
    _t1=$(uptime_s)
    for _i in 1 2 3 4 5; do "$PU" udp4 >/dev/null 2>&1; done
    _t2=$(uptime_s)
    echo "E7INFO cost: e7 get mode $(awk -v a="$_t0" -v b="$_t1" 'BEGIN{printf "%.0f", (b-a)*200}') ms, e7-probe udp4 $(awk -v a="$_t1" -v b="$_t2" 'BEGIN{printf "%.0f", (b-a)*200}') ms"
fi

selected=$(echo "${e7cases:-all}" | tr ':' ' ')
[ "$selected" = all ] && selected=$(all_cases)
known=" $(all_cases | tr '\n' ' ') "
overall=PASS
npass=0
nfail=0
suite_t0=$(uptime_s)
for c in $selected; do
    t0=$(uptime_s)
    detail=""
    case "$known" in
    *" $c "*)
        if problem=$(prepare); then
            setsid sh /e7/run-case.sh "$c" >/tmp/case.log 2>&1 &
            pid=$!
            setsid sh -c "sleep $CASE_TIMEOUT; kill -KILL -$pid" >/dev/null 2>&1 &
            wd=$!
            wait "$pid"
            rc=$?
            kill -KILL -"$wd" 2>/dev/null
            kill -KILL -"$pid" 2>/dev/null # whatever the case left running
            if [ "$rc" = 0 ]; then
                verdict=PASS
            else
                verdict=FAIL
                detail=$(grep -m1 '^FAIL: ' /tmp/case.log | cut -c7-200)
                [ "$rc" = 137 ] && detail="timed out after ${CASE_TIMEOUT}s (killed); first failure: ${detail:-none}"
                [ -n "$detail" ] || detail="exit code $rc"
            fi
        else
            echo "$problem" >/tmp/case.log
            verdict=FAIL
            detail="setup: $problem"
        fi
        ;;
    *)
        echo "unknown case; known cases: $known" >/tmp/case.log
        verdict=FAIL
        detail="unknown case name"
        ;;
    esac
    dmesg -c >/tmp/dmesg.case
    cat /tmp/dmesg.case >>/tmp/dmesg.all
    kbad=$(grep -E "$BAD_RE" /tmp/dmesg.case | head -n 3 | tr '\n' ' ')
    if [ -n "$kbad" ]; then
        verdict=FAIL
        detail="kernel log: $kbad ${detail}"
        echo "kernel log during the case:" >>/tmp/case.log
        cat /tmp/dmesg.case >>/tmp/case.log
    fi
    head -n 300 /tmp/case.log | sed "s/^/E7LOG $c: /"
    secs=$(awk -v a="$t0" -v b="$(uptime_s)" 'BEGIN{printf "%.1f", b-a}')
    echo "E7CASE $c $verdict ${secs}s ${detail}"
    if [ "$verdict" = PASS ]; then npass=$((npass + 1)); else
        nfail=$((nfail + 1))
        overall=FAIL
    fi
done

# Final module unload must be clean too.
if [ -d /sys/module/e7 ]; then
    _o=$(rmmod e7 2>&1) || { echo "E7INFO final rmmod failed: $_o"; overall=FAIL; }
fi
dmesg -c >>/tmp/dmesg.all
echo "E7INFO dmesg-begin"
cat /tmp/dmesg.all
echo "E7INFO dmesg-end"
if grep -qE "$BAD_RE" /tmp/dmesg.all; then
    echo "E7INFO kernel log shows a problem: $(grep -m1 -E "$BAD_RE" /tmp/dmesg.all)"
    overall=FAIL
fi
echo "E7INFO $npass passed, $nfail failed in $(awk -v a="$suite_t0" -v b="$(uptime_s)" 'BEGIN{printf "%.0f", b-a}')s guest time"
echo "E7RESULT $overall"
