# A rule or mode change applies to an already-open socket at its next packet: `e7-probe twophase` opens
# one socket, exchanges once, waits for a gate file, exchanges again on the same socket.

# twophase PROG PROTO WANT1 WANT2 CHANGE-CMD...: run the two phases around CHANGE-CMD.
twophase() {
    _prog=$1 _proto=$2 _w1=$3 _w2=$4
    shift 4
    rm -f /tmp/gate /tmp/tp
    E7_PROBE_TIMEOUT_MS=1500 "$_prog" twophase "$_proto" /tmp/gate >/tmp/tp 2>&1 &
    _p=$!
    wait_for /tmp/tp phase1 20 || fail "$_proto: phase 1 did not report within 20 s"
    grep -q "^phase1 $_w1" /tmp/tp && ok "$_proto phase 1: $(grep phase1 /tmp/tp)" \
        || fail "$_proto phase 1: want $_w1, got: $(short "$(cat /tmp/tp)")"
    must "$@"
    touch /tmp/gate
    wait "$_p"
    grep -q "^phase2 $_w2" /tmp/tp && ok "$_proto phase 2 after '$*': $(grep phase2 /tmp/tp)" \
        || fail "$_proto phase 2 after '$*': want $_w2, got: $(short "$(cat /tmp/tp)")"
}

case_live_rule_change() {
    enforce
    twophase "$PA" udp4 delivered blocked e7 block udp "$PA"
    twophase "$PA" udp6 blocked delivered e7 clear udp "$PA"
    # TCP: the established connection's next segment (and its retransmissions, sent later from timer
    # context, where no process is current) must stay dropped.
    twophase "$PA" tcp4 delivered blocked e7 block tcp "$PA"
    must e7 clear
    twophase "$PB" tcp6 delivered blocked e7 block any /opt/b/
    must e7 clear
    twophase "$PA" icmp4 delivered blocked e7 block icmp "$PA"
    twophase "$PA" icmp6 delivered blocked e7 block icmpv6 /opt/a/
}

case_live_mode_change() {
    twophase "$PA" udp4 delivered blocked e7 set mode block
    must e7 set mode disabled
    must e7 block udp "$PA"
    twophase "$PA" udp6 delivered blocked e7 set mode enabled
    twophase "$PA" udp4 blocked delivered e7 set mode disabled
    must e7 clear
    enforce
    twophase "$PB" tcp4 delivered blocked e7 set unkrule block
}

# flip FAMILY OLD NEW CHANGE-CMD...: `e7-probe flip` as uid 65534 sends UDP on one socket in a tight
# loop, checking a gate file before each send; CHANGE-CMD runs while it sends and the gate appears
# once the change was acknowledged. Every send started after the gate must get NEW (2000 of them),
# and some before it got OLD (the sender really raced the change).
flip() {
    _fam=$1 _old=$2 _new=$3
    shift 3
    rm -f /tmp/fgate /tmp/flip
    # shellcheck disable=SC2086 # $FLIP_FRESH is empty or the one word `fresh`
    "$PU" as-user "$NOBODY" "$PA" flip "$_fam" /tmp/fgate 2000 ${FLIP_FRESH:-} >/tmp/flip 2>&1 &
    _p=$!
    wait_for /tmp/flip running 20 || fail "flip $_fam: the sender did not start: $(short "$(cat /tmp/flip)")"
    must "$@"
    touch /tmp/fgate
    wait "$_p"
    _l=$(grep '^flip ' /tmp/flip)
    _n() { echo "$_l" | sed -n "s/.* $1=\([0-9]*\).*/\1/p"; }
    _want_after=after_ok _other_after=after_blocked _want_before=before_blocked
    [ "$_new" = blocked ] && _want_after=after_blocked _other_after=after_ok
    [ "$_old" = delivered ] && _want_before=before_ok
    if [ "$(_n "$_want_after")" = 2000 ] && [ "$(_n "$_other_after")" = 0 ] && [ "$(_n errors)" = 0 ] \
        && [ "$(_n "$_want_before")" -gt 0 ] 2>/dev/null; then
        ok "$_fam $_old -> $_new under a running sender ('$*'): $_l"
    else
        fail "$_fam $_old -> $_new under a running sender ('$*'): want $_want_after=2000 $_other_after=0" \
            "errors=0 $_want_before>0, got: $(short "$(cat /tmp/flip)")"
    fi
}

# The hit path reads the known-socket cache without a lock (a sequence count per entry), so a rule or
# mode change now races every packet in flight on other CPUs: no send that starts after the change's
# ack may still get the old verdict (issue 10).
case_live_flip_under_sender() {
    FLIP_FRESH=
    enforce
    flip v4 delivered blocked e7 block udp "$PA"
    flip v4 blocked delivered e7 clear udp "$PA"
    flip v6 delivered blocked e7 block any /opt/a/
    must e7 clear
    flip v6 delivered blocked e7 set mode block
    must e7 set mode enabled
    flip v4 delivered blocked e7 set unkrule block
    must e7 set unkrule allow
}

# A program's new sockets take the verdict its process image remembered (issue 10: each TCP SYN skips
# the rule lookup). The memo must die with the policy: uid 65534's sender opens a NEW socket for every
# send, racing rule and mode changes; no send that starts after the change's ack may get the old verdict.
case_live_flip_new_sockets() {
    enforce
    FLIP_FRESH=fresh
    flip v4 delivered blocked e7 block udp "$PA"
    flip v4 blocked delivered e7 clear udp "$PA"
    flip v6 delivered blocked e7 block any /opt/a/
    must e7 clear
    flip v4 delivered blocked e7 set unkrule block
    must e7 set unkrule allow
    FLIP_FRESH=
}
