# Rules that say where and who (issue 11): `to`, `port`, `user`, enforced by the module. The VM has only
# the loopback interface, but every address routed to it is a distinct local destination: 127.0.0.0/8, and
# the addresses qual_addrs adds to `lo`. `e7-probe to udp|tcp|udpx ADDR [PORT]` binds a receiver there and
# sends once (exit 0 delivered, 1 blocked); `alternate`, `reconnect` and `connected` drive one socket.
# Senders run as uid 65534 wherever an unprivileged user could send.

# Extra local destinations (idempotent: the VM lives across cases).
qual_addrs() {
    for a in 10.1.0.1 10.1.0.2 10.2.0.1; do ip addr add "$a/32" dev lo 2>/dev/null; done
    for a in 2001:db8::1 2001:db9::1; do ip -6 addr add "$a/128" dev lo 2>/dev/null; done
    ip addr show dev lo | grep -q 'inet 10.1.0.2/' && ip -6 addr show dev lo | grep -q '2001:db8::1/' \
        && ok "local destinations added to lo" || fail "could not add addresses to lo: $(short "$(ip addr show dev lo 2>&1)")"
}

# nobody PROG ARGS...: PROG run as uid 65534 (through the probe's as-user).
nobody() { "$PU" as-user "$NOBODY" "$@"; }

# cached_hits ADDR WHAT: uid 65534's program "a" sends 4 datagrams on one connected socket to ADDR; all are
# delivered, and the debug log (every decision, rate-limited to 10 lines per 5 s, hence few packets) shows at
# least one answered from the cache ("(cached)"). Leaves `debug` enabled.
cached_hits() {
    must e7 set debug enabled
    sleep 5
    dmesg -c >/dev/null
    run nobody "$PA" connected "$1" 4
    [ "$OUT" = "connected ok=4 blocked=0 errors=0" ] && ok "$OUT" || fail "connected -> rc $RC: $(short "$OUT")"
    _log=$(dmesg -c | grep -F "exe=$PA")
    _hits=$(printf '%s\n' "$_log" | grep -c '(cached)')
    [ "$_hits" -ge 1 ] && ok "$2: $_hits cached hits" || fail "$2: no cached hit; log: $(short "$_log")"
}

# udp_decisions N HITS WHAT: the debug log since the last `dmesg -c` holds N UDP decisions for program "a",
# HITS of them answered from the cache.
udp_decisions() {
    _log=$(dmesg -c | grep -F "exe=$PA")
    _n=$(printf '%s\n' "$_log" | grep -c 'proto=17')
    _hits=$(printf '%s\n' "$_log" | grep -c '(cached)')
    [ "$_n" = "$1" ] && [ "$_hits" = "$2" ] && ok "$3: $1 decisions, $2 from the cache" \
        || fail "$3: $_n decisions logged, $_hits cached (want $1, $2): $(short "$_log")"
}

# `block any / to PREFIX` blocks every program, root or not, tcp and udp, to that prefix only; the rule
# is listed with its qualifier and `e7 save` writes it back.
case_qual_to_blocks_every_program() {
    qual_addrs
    enforce
    must e7 block any / to 10.1.0.0/16
    expect_out 'block any / to 10.1.0.0/16' e7 query
    for p in udp tcp; do
        expect blocked "$PA" to "$p" 10.1.0.1
        expect blocked "$PB" to "$p" 10.1.0.2
        expect blocked "$PU" as-user "$NOBODY" "$PA" to "$p" 10.1.0.1
        # Other destinations flow, for the same programs.
        expect delivered "$PA" to "$p" 10.2.0.1
        expect delivered "$PU" as-user "$NOBODY" "$PA" to "$p" 127.0.0.1
    done
    must e7 save /tmp/qual-saved.e7
    grep -qx 'block any / to 10.1.0.0/16' /tmp/qual-saved.e7 && ok "saved: $(grep ' to ' /tmp/qual-saved.e7)" \
        || fail "e7 save did not write the qualified rule: $(short "$(cat /tmp/qual-saved.e7)")"
    must e7 clear any / to 10.1.0.0/16
    expect_rules 0
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 10.1.0.1
    # `e7 run` restores it from the saved file.
    must e7 run /tmp/qual-saved.e7
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 10.1.0.1
}

# `port`: a list and a range, tcp and udp; ports outside still flow.
case_qual_port() {
    enforce
    must e7 block udp / port 5353,5400-5410
    must e7 block tcp /opt/a/ to 127.0.0.0/8 port 7000-7010,7100
    for port in 5353 5400 5410; do expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.1 "$port"; done
    for port in 5352 5354 5399 5411; do expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.1 "$port"; done
    for port in 7000 7005 7010 7100; do expect blocked "$PU" as-user "$NOBODY" "$PA" to tcp 127.0.0.1 "$port"; done
    for port in 6999 7011 7099; do expect delivered "$PU" as-user "$NOBODY" "$PA" to tcp 127.0.0.1 "$port"; done
    # The tcp rule is for /opt/a/ only; the udp one for every program.
    expect delivered "$PU" as-user "$NOBODY" "$PB" to tcp 127.0.0.1 7005
    expect blocked "$PU" as-user "$NOBODY" "$PB" to udp 127.0.0.1 5405
}

# `user`: uid 65534 is blocked, root is not, running the same program. Becoming root in a user namespace
# of its own (with or without a network namespace of its own) does not help: the socket's uid is the one
# the initial namespace sees.
case_qual_user() {
    enforce
    must e7 block any / user 65534
    expect_out 'block any / user 65534' e7 query
    for p in udp4 tcp4 udp6 tcp6; do
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$p"
        expect delivered "$PA" "$p"
    done
    E7_PROBE_TIMEOUT_MS=2500 expect blocked "$PU" as-user "$NOBODY" "$PU" userns "$PA" udp4
    E7_PROBE_TIMEOUT_MS=2500 expect blocked "$PU" as-user "$NOBODY" "$PU" userns -n "$PA" tcp4
    E7_PROBE_TIMEOUT_MS=2500 expect delivered "$PU" userns -n "$PA" tcp4
}

# An IPv6 destination, also behind a Destination Options extension header (udpx: root only, as setting
# that header needs CAP_NET_RAW); an unprivileged sender over plain UDP and TCP.
case_qual_ipv6_exthdr() {
    qual_addrs
    enforce
    must e7 block any / to 2001:db8::/32
    expect blocked "$PA" to udpx 2001:db8::1
    expect delivered "$PA" to udpx 2001:db9::1
    expect delivered "$PA" to udpx ::1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to tcp 2001:db8::1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to tcp 2001:db9::1
    # A port rule behind the extension header: the port is read past it.
    must e7 block udp / to ::1 port 5999
    expect blocked "$PA" to udpx ::1 5999
    expect delivered "$PA" to udpx ::1 5998
    # An IPv6 connected socket stays on the cached path under these rules (its verdict is cached with
    # the destination's keyed hash); the same socket's packets to a blocked address never were.
    cached_hits 2001:db9::1 "IPv6 connected socket"
    run nobody "$PA" sendto 2001:db8::1 3
    [ "$OUT" = "sendto ok=0 blocked=3 errors=0" ] && ok "$OUT" || fail "sendto blocked v6 -> rc $RC: $(short "$OUT")"
}

# The precedence table's lines 1-3 (README): each pair of rules once one way, once the other.
case_qual_precedence() {
    qual_addrs
    enforce
    # 1. A rule naming the packet's user beats a rule for every user, even a more precise one.
    must e7 block any / to 127.0.0.5
    must e7 allow any / user 65534
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.5
    expect blocked "$PA" to udp 127.0.0.5
    must e7 clear
    # 2. A longer prefix beats a shorter (both orders of insertion).
    must e7 block any / to 10.1.0.0/16
    must e7 allow any / to 10.1.0.1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 10.1.0.1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 10.1.0.2
    must e7 clear
    must e7 allow any / to 10.1.0.0/16
    must e7 block any / to 10.1.0.1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 10.1.0.1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 10.1.0.2
    must e7 clear
    # 3. A port list beats no port (same destination).
    must e7 block udp / to 127.0.0.6
    must e7 allow udp / to 127.0.0.6 port 6000
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.6 6000
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.6 6001
    # ... and a qualified rule beats the program's plain rule (destination over program).
    must e7 allow udp "$PA"
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.6 6001
    # Adding the same rule with the other action flips it.
    must e7 allow udp / to 127.0.0.6
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.6 6001
}

# The rest of the precedence table (README), each with rules that differ in that part only, in both orders
# of insertion where the order could matter: line 2's "a written prefix over a scope", line 3's "fewer ports
# over more", line 4 (an exact path over a folder, a deeper folder over a shallower), line 5 (a named
# protocol over `any`) and line 6 (equal keys: block over allow, whatever was added first).
case_qual_precedence_rest() {
    qual_addrs
    enforce
    # 2. A written prefix beats a scope.
    must e7 block any / to localhost
    must e7 allow any / to 127.0.0.5
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.5
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.6
    must e7 clear
    # 3. Fewer ports beat more (same destination).
    must e7 block udp / to 127.0.0.7 port 6000-6010
    must e7 allow udp / to 127.0.0.7 port 6000,6001
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7 6000
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7 6005
    must e7 clear
    # 4. An exact path beats its folder; a deeper folder beats a shallower (same destination).
    must e7 allow udp "$PA" to 127.0.0.7
    must e7 block udp /opt/ to 127.0.0.7
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7
    expect blocked "$PU" as-user "$NOBODY" "$PB" to udp 127.0.0.7
    must e7 clear
    must e7 block udp /opt/ to 127.0.0.7
    must e7 allow udp /opt/b/ to 127.0.0.7
    expect delivered "$PU" as-user "$NOBODY" "$PB" to udp 127.0.0.7
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7
    must e7 clear
    # 5. A named protocol beats `any` (same program and destination).
    must e7 block any "$PA" to 127.0.0.7
    must e7 allow udp "$PA" to 127.0.0.7
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7
    expect blocked "$PU" as-user "$NOBODY" "$PA" to tcp 127.0.0.7 7000
    must e7 clear
    # 6. Equal keys (two port lists of one size, both holding the port): block wins, in either order.
    must e7 allow udp / to 127.0.0.7 port 6000,6001
    must e7 block udp / to 127.0.0.7 port 6000,6002
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7 6000
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7 6001
    must e7 clear
    must e7 block udp / to 127.0.0.7 port 6000,6002
    must e7 allow udp / to 127.0.0.7 port 6000,6001
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7 6000
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.7 6001
    must e7 clear
}

# Every line of the precedence table (README) again with IPv6 destinations, uid 65534 sending, and an
# IPv4-mapped IPv6 destination (a dual-stack socket's packet to ::ffff:a.b.c.d leaves as IPv4) matching an
# IPv4 rule.
case_qual_precedence_ipv6() {
    qual_addrs
    ip -6 addr add 2001:db8::2/128 dev lo 2>/dev/null
    enforce
    # 1. A rule naming the packet's user beats a rule for every user, even a more precise one.
    must e7 block any / to 2001:db8::1
    must e7 allow any / user 65534
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1
    expect blocked "$PA" to udp 2001:db8::1
    must e7 clear
    # 2. A longer prefix beats a shorter (both orders of insertion); a written prefix beats a scope.
    must e7 block any / to 2001:db8::/32
    must e7 allow any / to 2001:db8::1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::2
    must e7 clear
    must e7 allow any / to 2001:db8::/32
    must e7 block any / to 2001:db8::1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to tcp 2001:db8::1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to tcp 2001:db8::2
    must e7 clear
    must e7 block any / to localhost
    must e7 allow any / to ::1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp ::1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 127.0.0.5
    must e7 clear
    # 3. A port list beats no port; fewer ports beat more.
    must e7 block udp / to 2001:db8::1
    must e7 allow udp / to 2001:db8::1 port 6000
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1 6000
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1 6001
    must e7 clear
    must e7 block udp / to 2001:db8::1 port 6000-6010
    must e7 allow udp / to 2001:db8::1 port 6000,6001
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1 6001
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1 6005
    must e7 clear
    # 4. An exact path beats its folder.
    must e7 allow udp "$PA" to 2001:db8::1
    must e7 block udp /opt/ to 2001:db8::1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1
    expect blocked "$PU" as-user "$NOBODY" "$PB" to udp 2001:db8::1
    must e7 clear
    # 5. A named protocol beats `any`.
    must e7 block any "$PA" to 2001:db8::1
    must e7 allow udp "$PA" to 2001:db8::1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to tcp 2001:db8::1 7000
    must e7 clear
    # 6. Equal keys: block wins.
    must e7 allow udp / to 2001:db8::1 port 6000,6001
    must e7 block udp / to 2001:db8::1 port 6000,6002
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1 6000
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp 2001:db8::1 6001
    must e7 clear
    # An IPv4 rule holds for an IPv4-mapped IPv6 destination (udp and tcp from a dual-stack socket).
    must e7 block any / to 10.2.0.1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp ::ffff:10.2.0.1
    expect blocked "$PU" as-user "$NOBODY" "$PA" to tcp ::ffff:10.2.0.1
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp ::ffff:10.1.0.1
    must e7 clear
}

# One unconnected UDP socket alternating between an allowed and a blocked destination: every packet gets
# its own destination's verdict (a verdict cached per socket would carry the first one to the other). A
# connected socket that reconnects elsewhere gets the new destination's verdict. A connected socket's
# packets are still answered from the cache (debug log: "(cached)").
case_qual_udp_alternation() {
    enforce
    must e7 block udp / to 127.0.0.9
    run nobody "$PA" alternate 127.0.0.8 127.0.0.9 6
    [ "$OUT" = "alternate a_ok=6 a_blocked=0 b_ok=0 b_blocked=6 errors=0" ] && ok "$OUT" \
        || fail "alternate (allowed first) -> rc $RC: $(short "$OUT")"
    run nobody "$PA" alternate 127.0.0.9 127.0.0.8 6
    [ "$OUT" = "alternate a_ok=0 a_blocked=6 b_ok=6 b_blocked=0 errors=0" ] && ok "$OUT" \
        || fail "alternate (blocked first) -> rc $RC: $(short "$OUT")"
    run nobody "$PA" reconnect 127.0.0.8 127.0.0.9 3
    [ "$OUT" = "reconnect a_ok=6 a_blocked=0 b_ok=0 b_blocked=3 errors=0" ] && ok "$OUT" \
        || fail "reconnect -> rc $RC: $(short "$OUT")"
    cached_hits 127.0.0.8 "connected socket"
    sleep 5
    run nobody "$PA" alternate 127.0.0.8 127.0.0.9 2
    [ "$OUT" = "alternate a_ok=2 a_blocked=0 b_ok=0 b_blocked=2 errors=0" ] && ok "$OUT" || fail "alternate -> $(short "$OUT")"
    udp_decisions 4 0 "unconnected socket, alternating"
    # An unconnected socket sending to one destination again and again: its verdict is cached for that
    # destination, so every packet after the first is answered from the cache.
    sleep 5
    dmesg -c >/dev/null
    run nobody "$PA" sendto 127.0.0.8 4
    [ "$OUT" = "sendto ok=4 blocked=0 errors=0" ] && ok "$OUT" || fail "sendto -> rc $RC: $(short "$OUT")"
    udp_decisions 4 3 "unconnected socket, one destination"
}

# Events name where the packet went and whose socket sent it, so the rule they suggest can be written:
# `e7 monitor` prints `event pending tcp PROG -> ADDR:PORT uid N`, `--json` has destination, port and uid.
# With no rule depending on destinations (read for the event only) and with one (read for the decision).
case_qual_events() {
    qual_addrs
    enforce
    monitor_until /tmp/qe1 nobody "$PA" to tcp 10.2.0.1 7443
    expect_event /tmp/qe1 '"event":"pending"' '"protocol":"tcp"' "\"path\":\"$PA\"" '"destination":"10.2.0.1"' \
        '"port":7443' '"uid":65534'
    # Text, IPv6, root.
    e7 monitor --count 1 --timeout 8 >/tmp/qe2 2>&1 &
    _m=$!
    _i=0
    while alive "$_m" && [ "$_i" -lt 35 ]; do
        "$PB" to udp 2001:db8::1 5300 >/dev/null 2>&1
        sleep 0.3
        _i=$((_i + 1))
    done
    wait "$_m"
    grep -qxF "event pending udp $PB -> [2001:db8::1]:5300 uid 0" /tmp/qe2 && ok "monitor: $(grep event /tmp/qe2)" \
        || fail "monitor text: $(short "$(cat /tmp/qe2)")"
    # A rule depends on destinations: the decision's own facts go into the event.
    must e7 block udp / to 10.2.0.1
    must e7 set drops enabled
    monitor_until /tmp/qe3 nobody "$PA" to udp 10.2.0.1 5301
    expect_event /tmp/qe3 '"event":"block"' '"protocol":"udp"' '"destination":"10.2.0.1"' '"port":5301' '"uid":65534'
}

# blocklist N MID LAST PAST: N lines `block any / to 10.A.B.0/24` (A = 1 + i/256, B = i mod 256, i < N) loaded
# with `e7 run` (the load time is noted: TCG; the VM benchmark states it in guest instructions). Every program,
# root or uid 65534, even one with its own allow rule, is blocked to the first prefix (10.1.0.1), MID and the
# last prefix (LAST); PAST (the next /24) and 10.200.0.1 flow; the allowed program's connected socket is still
# answered from the cache (debug log: "(cached)").
blocklist() {
    _n=$1 _mid=$2 _last=$3 _past=$4
    qual_addrs
    for a in "$_mid" "$_last" "$_past" 10.200.0.1; do ip addr add "$a/32" dev lo 2>/dev/null; done
    enforce
    _i=0
    while [ $_i -lt "$_n" ]; do
        echo "block any / to 10.$((1 + _i / 256)).$((_i % 256)).0/24"
        _i=$((_i + 1))
    done >/tmp/blocklist.e7
    _t0=$(cut -d' ' -f1 /proc/uptime)
    must e7 run /tmp/blocklist.e7
    _t1=$(cut -d' ' -f1 /proc/uptime)
    note "$_n blocklist lines loaded with e7 run in $(awk "BEGIN{print $_t1 - $_t0}") s (TCG)"
    expect_rules "$_n"
    must e7 allow udp "$PA"
    expect blocked "$PA" to udp 10.1.0.1
    expect blocked "$PU" as-user "$NOBODY" "$PB" to tcp "$_mid"
    expect blocked "$PU" as-user "$NOBODY" "$PA" to udp "$_last"
    expect delivered "$PU" as-user "$NOBODY" "$PA" to udp "$_past"
    expect delivered "$PU" as-user "$NOBODY" "$PB" to tcp 10.200.0.1
    cached_hits 10.200.0.1 "allowed program, $_n prefixes loaded"
    must e7 set debug disabled
}

# 1,000 lines (10.1.0.0/24 … 10.4.231.0/24): the default module holds 1,024 qualified rules.
case_qual_blocklist() {
    blocklist 1000 10.2.128.1 10.4.231.1 10.4.232.1
}

# The issue's blocklist: 10,000 lines (10.1.0.0/24 … 10.40.15.0/24) in the module built for it
# (E7_FEATURES=blocklist: 16,384 qualified rules; vm.sh ships it as /e7/e7-blocklist.ko for a whole run or when
# E7_CASES names this case), then the default module again.
case_qual_blocklist_10k() {
    if [ ! -f /e7/e7-blocklist.ko ]; then
        fail "no /e7/e7-blocklist.ko: vm.sh builds it for a whole run or when E7_CASES names qual_blocklist_10k"
        return
    fi
    _plain=$E7_KO
    E7_KO=/e7/e7-blocklist.ko
    reload_module
    E7_KO=$_plain
    blocklist 10000 10.20.128.1 10.40.15.1 10.40.16.1
    reload_module
}

