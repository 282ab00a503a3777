# Helpers shared by the guest runner and every case (sourced; busybox ash).
#
# A case is a shell function `case_<name>` in /e7/cases/*.sh. It runs in its own session (so the runner
# can kill whatever it leaves behind), starts from a reset firewall (no rules, every flag at its default,
# module loaded), and reports through `ok`/`fail`; the case passes when no `fail` was recorded. Checks do
# not stop at the first failure, so one run shows everything that is wrong.

E7_KO=/e7/e7.ko
PA=/opt/a/e7-probe            # program "a"
PB=/opt/b/e7-probe            # program "b": byte-identical copy of a, different path
PU=/usr/bin/e7-probe          # a third copy, used as "some other program"
# The demo's background sources (guest/init, e7mode=demo): their tally files and period.
E7_DEMO_DIR=/run/e7-demo
E7_DEMO_EVERY_MS=2000
# A directory whose probe path is 311 bytes (> 255, the longest path a rule can name).
E7_LONG_DIR=/opt/long/$(printf 'd%.0s' $(seq 60))/$(printf 'e%.0s' $(seq 60))/$(printf 'f%.0s' $(seq 60))/$(printf 'g%.0s' $(seq 60))/$(printf 'h%.0s' $(seq 50))
PL=$E7_LONG_DIR/e7-probe
export E7_PROBE_TIMEOUT_MS=${E7_PROBE_TIMEOUT_MS:-800}
NOBODY=65534
FAILS=0

ok() { echo "ok: $*"; }
fail() {
    echo "FAIL: $*"
    FAILS=$((FAILS + 1))
}
note() { echo "-- $*"; }

# run CMD...: sets OUT (stdout+stderr, trimmed to 40 lines) and RC; never aborts the case.
run() {
    OUT=$("$@" 2>&1)
    RC=$?
    OUT=$(printf '%s\n' "$OUT" | head -n 40)
}

short() { printf '%s' "$1" | tr '\n' ' ' | cut -c1-300; }

# expect_rc WANT CMD...: the command must exit with WANT.
expect_rc() {
    _want=$1
    shift
    run "$@"
    if [ "$RC" = "$_want" ]; then
        ok "$* -> rc $RC"
    else
        fail "$* -> rc $RC, want $_want; output: $(short "$OUT")"
    fi
}

# must CMD...: the command must succeed (rc 0).
must() { expect_rc 0 "$@"; }

# expect_out WANT_SUBSTRING CMD...: rc 0 and the output contains the fixed string.
expect_out() {
    _want=$1
    shift
    run "$@"
    if [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -qF -- "$_want"; then
        ok "$* -> contains '$_want'"
    else
        fail "$* -> rc $RC, want rc 0 and '$_want' in: $(short "$OUT")"
    fi
}

# expect VERDICT PROG PROBE-ARGS...: run e7-probe and compare delivered/blocked (exit 0/1).
# A "blocked" that is only a timeout (TCP: no handshake/data in time; ICMPv6: no reply) where delivery was
# expected is retried once with a 4 s timeout, so a slow, loaded TCG host does not fake a drop. A delivery
# is never retried: it is definitive.
expect() {
    _want=$1
    _prog=$2
    shift 2
    run "$_prog" "$@"
    if [ "$_want" = delivered ] && [ "$RC" = 1 ] && printf '%s' "$OUT" | grep -q ' within '; then
        note "retrying with a 4 s timeout after: $(short "$OUT")"
        OUT=$(E7_PROBE_TIMEOUT_MS=4000 "$_prog" "$@" 2>&1)
        RC=$?
    fi
    case "$RC" in
    0) _got=delivered ;;
    1) _got=blocked ;;
    *) _got="error(rc $RC)" ;;
    esac
    if [ "$_got" = "$_want" ]; then
        ok "$_prog $*: $(short "$OUT")"
    else
        fail "$_prog $*: got '$(short "$OUT")' ($_got), want $_want"
    fi
}

# The rule protocol that covers a probe protocol.
rule_proto() {
    case "$1" in
    udp4 | udp6) echo udp ;;
    tcp4 | tcp6) echo tcp ;;
    icmp4) echo icmp ;;
    icmp6) echo icmpv6 ;;
    *) echo "rule_proto: unknown $1" >&2; echo none ;;
    esac
}

# A rule protocol that does NOT cover the probe protocol.
other_proto() {
    case "$1" in
    udp4 | udp6) echo tcp ;;
    *) echo udp ;;
    esac
}

# `e7 --json query` on one line without blanks (paths in the cases contain no blanks).
qjson() { e7 --json query 2>&1 | tr -d ' \n\t'; }

# json_field JSON KEY: the value of a top-level scalar key (string or number), e.g. count, mode.
json_field() { printf '%s' "$1" | sed -n "s/.*\"$2\":\"\{0,1\}\([^\",}]*\).*/\1/p" | head -n1; }

# Number of rules listed in a compact query JSON.
json_rules() { printf '%s' "$1" | grep -o '"path":' | wc -l; }

# expect_flag FLAG VALUE: `e7 --json get FLAG` reports VALUE.
expect_flag() {
    run e7 --json get "$1"
    _v=$(json_field "$(printf '%s' "$OUT" | tr -d ' \n')" value)
    if [ "$RC" = 0 ] && [ "$_v" = "$2" ]; then
        ok "get $1 = $2"
    else
        fail "e7 --json get $1 -> rc $RC value '$_v', want '$2'; output: $(short "$OUT")"
    fi
}

# expect_rules N: the module holds exactly N rules (count field and listed rules agree).
expect_rules() {
    _j=$(qjson)
    _c=$(json_field "$_j" count)
    _n=$(json_rules "$_j")
    if [ "$_c" = "$1" ] && [ "$_n" = "$1" ]; then
        ok "query: $1 rules"
    else
        fail "query: count '$_c', listed $_n, want $1; json: $(short "$_j")"
    fi
}

# expect_rule ACTION PROTO PATH: that exact rule is listed by `e7 --json query`.
expect_rule() {
    _r="{\"action\":\"$1\",\"protocol\":\"$2\",\"path\":\"$3\"}"
    _r=$(printf '%s' "$_r" | tr -d ' \n\t') # qjson drops blanks, also inside paths
    if qjson | grep -qF -- "$_r"; then ok "rule $1 $2 $3 listed"; else fail "rule $_r not in query: $(short "$(qjson)")"; fi
}

# load_rules N LAST RULE_FN: load an N-rule table with one `e7 run`: rules 1..N-1 are the lines
# `RULE_FN i` prints (one "action protocol path" each), rule N is LAST (last in the table: the
# lowest precedence, and the one a case looks for at the end of a listing).
load_rules() {
    _i=1
    while [ "$_i" -lt "$1" ]; do
        "$3" "$_i"
        _i=$((_i + 1))
    done >/tmp/load_rules.e7
    echo "$2" >>/tmp/load_rules.e7
    must e7 run /tmp/load_rules.e7
}

# enforce [unkrule-action]: mode enabled (and the no-rule default).
enforce() {
    must e7 set mode enabled
    [ -z "${1:-}" ] || must e7 set unkrule "$1"
}

# wait_for FILE PATTERN SECONDS: poll until FILE contains PATTERN (fixed string); returns 1 on timeout.
wait_for() {
    _i=0
    while [ "$_i" -lt $(($3 * 10)) ]; do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.1
        _i=$((_i + 1))
    done
    return 1
}

# wait_exe PID PATH: wait (up to 10 s) until process PID runs the executable PATH (it has exec'd).
wait_exe() {
    _i=0
    while [ "$(readlink "/proc/$1/exe" 2>/dev/null)" != "$2" ]; do
        [ "$_i" -ge 100 ] && return 1
        sleep 0.1
        _i=$((_i + 1))
    done
}

# alive PID: the process exists and is not a zombie.
alive() { [ -d "/proc/$1" ] && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }

# wait_exit PID SECONDS: wait until PID is gone; returns 1 if it is still running after SECONDS.
wait_exit() {
    _i=0
    while alive "$1"; do
        [ "$_i" -ge $(($2 * 10)) ] && return 1
        sleep 0.1
        _i=$((_i + 1))
    done
    return 0
}

module_loaded() { [ -d /sys/module/e7 ]; }

# load_module [PARAMS...]: insmod (after rmmod if loaded); fails the case on error.
reload_module() {
    if module_loaded; then must rmmod e7; fi
    must insmod "$E7_KO" "$@"
}
