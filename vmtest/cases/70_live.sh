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
