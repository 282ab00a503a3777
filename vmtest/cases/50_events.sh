# Events reach a subscribed admin client (`e7 monitor`): PENDING for packets no rule matched (flag norule,
# rate-limited by squelch), BLOCK / ALLOW for packets a rule dropped / accepted (flags drops / accepts).

# monitor_until FILE PROG PROBE-ARGS...: start `e7 --json monitor --count 1 --timeout 8` into FILE, then send
# traffic every 0.3 s until the monitor exits; sets MRC to its exit code.
monitor_until() {
    _f=$1
    shift
    e7 --json monitor --count 1 --timeout 8 >"$_f" 2>&1 &
    _m=$!
    _i=0
    while alive "$_m" && [ "$_i" -lt 35 ]; do
        "$@" >/dev/null 2>&1
        sleep 0.3
        _i=$((_i + 1))
    done
    wait "$_m"
    MRC=$?
}

# expect_event FILE JSON-FRAGMENT...: each fragment appears in one line of FILE.
expect_event() {
    _f=$1
    shift
    _line=$(grep '"event"' "$_f" | tr -d ' ' | head -n1)
    for frag in "$@"; do
        printf '%s' "$_line" | grep -qF -- "$frag" || {
            fail "event '$_line' lacks $frag (monitor rc $MRC, output: $(short "$(cat "$_f")"))"
            return
        }
    done
    ok "event $_line"
}

case_event_pending() {
    enforce
    monitor_until /tmp/m "$PA" udp4
    [ "$MRC" = 0 ] && ok "monitor --count 1 exited 0" || fail "monitor exit $MRC"
    expect_event /tmp/m '"event":"pending"' '"protocol":"udp"' "\"path\":\"$PA\""
    # Also over IPv6 / TCP (the event names the protocol, not the family).
    monitor_until /tmp/m6 "$PB" tcp6
    expect_event /tmp/m6 '"event":"pending"' '"protocol":"tcp"' "\"path\":\"$PB\""
    monitor_until /tmp/mi "$PB" icmp6
    expect_event /tmp/mi '"event":"pending"' '"protocol":"icmpv6"' "\"path\":\"$PB\""
}

case_event_drops() {
    enforce
    must e7 block udp "$PA"
    must e7 set drops enabled
    monitor_until /tmp/m "$PA" udp4
    expect_event /tmp/m '"event":"block"' '"protocol":"udp"' "\"path\":\"$PA\""
}

case_event_accepts() {
    enforce
    must e7 allow icmp "$PA"
    must e7 set accepts enabled
    monitor_until /tmp/m "$PA" icmp4
    expect_event /tmp/m '"event":"allow"' '"protocol":"icmp"' "\"path\":\"$PA\""
}

# With norule/drops/accepts off, the same traffic produces no event at all.
case_event_flags_off() {
    enforce
    must e7 set norule disabled
    must e7 block udp "$PA"
    must e7 allow tcp "$PA"
    e7 --json monitor --count 1 --timeout 4 >/tmp/m 2>&1 &
    m=$!
    sleep 0.3
    for i in 1 2 3 4; do
        "$PA" udp4 >/dev/null
        "$PA" tcp4 >/dev/null
        "$PB" udp4 >/dev/null
    done
    wait_exit "$m" 10 || fail "monitor --timeout 4 still running after 10 s"
    wait "$m"
    if grep -q '"event"' /tmp/m; then fail "events arrived with norule/drops/accepts off: $(short "$(cat /tmp/m)")"; else
        ok "no event with norule, drops and accepts off"
    fi
}

# Human-readable monitor output names the program too.
case_event_monitor_text() {
    enforce
    e7 monitor --count 1 --timeout 8 >/tmp/m 2>&1 &
    m=$!
    i=0
    while alive "$m" && [ "$i" -lt 35 ]; do
        "$PB" udp6 >/dev/null
        sleep 0.3
        i=$((i + 1))
    done
    wait "$m"
    grep -qF "$PB" /tmp/m && grep -qi pending /tmp/m && ok "text monitor: $(head -n1 /tmp/m)" \
        || fail "text monitor output lacks the pending event for $PB: $(short "$(cat /tmp/m)")"
}

# squelch: about one PENDING event per (protocol, program) per second; off: one per packet.
case_event_squelch() {
    enforce
    e7 --json monitor --count 1000 --timeout 5 >/tmp/on 2>&1 &
    m=$!
    sleep 0.5
    "$PA" storm 60 1 udp4 >/tmp/storm.on
    wait "$m"
    on=$(grep -c '"pending"' /tmp/on)
    ms=$(sed -n 's/.* ms=\([0-9]*\).*/\1/p' /tmp/storm.on)
    most=$((${ms:-1000} / 1000 + 2)) # one per started second, plus one for the boundary
    [ "$on" -ge 1 ] && [ "$on" -le "$most" ] && ok "squelch on: $on pending events for 60 packets in $ms ms" \
        || fail "squelch on: $on pending events for 60 packets in $ms ms, want 1..$most"
    must e7 set squelch disabled
    e7 --json monitor --count 60 --timeout 15 >/tmp/off 2>&1 &
    m=$!
    sleep 0.5
    "$PA" storm 60 1 udp4 >/dev/null
    wait "$m"
    off=$(grep -c '"pending"' /tmp/off)
    [ "$off" -ge 30 ] && ok "squelch off: $off pending events for 60 packets" \
        || fail "squelch off: $off pending events for 60 packets, want >= 30 (evlost: $(e7 get evlost 2>&1))"
}

# S10: a subscriber whose process died is forgotten when its netlink socket is released
# (NETLINK_URELEASE), before any event is sent: no event is ever unicast to the dead port (the
# ECONNREFUSED fallback, which logs "is gone; unsubscribed", never fires), and a live admin
# monitor still receives events. (A port reused by a new socket is covered by the kmod host test
# a_released_socket_is_unsubscribed_and_its_reused_port_gets_no_events.)
case_event_dead_subscriber() {
    enforce
    gone0=$(dmesg | grep -c 'is gone; unsubscribed')
    for i in 1 2 3; do
        e7 --json monitor --timeout 30 >/dev/null 2>&1 &
        d=$!
        sleep 0.4
        kill -9 "$d"
        wait "$d" 2>/dev/null
    done
    monitor_until /tmp/m "$PA" udp4
    expect_event /tmp/m '"event":"pending"' '"protocol":"udp"' "\"path\":\"$PA\""
    gone1=$(dmesg | grep -c 'is gone; unsubscribed')
    [ "$gone1" = "$gone0" ] && ok "dead subscribers were dropped at socket release (no unicast to their ports)" \
        || fail "events were unicast to dead subscribers' ports: $(dmesg | grep 'is gone; unsubscribed' | tail -n1)"
}
