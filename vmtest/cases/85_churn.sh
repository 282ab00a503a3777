# Connection storms next to an unprivileged socket churner (issue 7, hole #1). A packet whose owner
# cannot be found right now (a SYN retransmitted by a timer after its socket was evicted from the
# known-socket cache, a listener's first SYN-ACK) used to leave as `unkproc` (allow by default), and any
# user could force that for others by churning sockets. Now such a packet is dropped (TCP retransmits;
# the deferred work identifies the socket), and one user's churn only evicts that user's cache entries.

# churn_storm V PORT N: a blocked program's N connections (4 processes, 2.5 s each: past the first
# SYN retransmit) to the allowed program's listener while uid 65534 churns sockets: none delivered;
# then the allowed program's own N connections and N datagrams under the same churn: all delivered.
churn_storm() {
    "$PB" "listen$1" "$2" 120 >/tmp/listen.out 2>&1 &
    l=$!
    "$PU" as-user "$NOBODY" "$PU" churn 100 >/tmp/churn.out 2>&1 &
    c=$!
    sleep 1
    run "$PA" --timeout 2500 storm "$3" 4 "tcp$1" "$2"
    [ "$RC" = 1 ] && ok "blocked program, $3 tcp$1 connections under churn: $(short "$OUT")" \
        || fail "blocked program: want all $3 blocked (rc 1), rc $RC: $(short "$OUT")"
    run "$PB" --timeout 5000 storm "$3" 4 "tcp$1"
    [ "$RC" = 0 ] && ok "allowed program, $3 tcp$1 connections under churn: $(short "$OUT")" \
        || fail "allowed program: want all $3 delivered (rc 0), rc $RC: $(short "$OUT")"
    # UDP loss of the allowed program under the same churn (datagrams e7 dropped = blocked count).
    run "$PB" storm "$3" 4 "udp$1"
    [ "$RC" = 0 ] && ok "allowed program, $3 udp$1 datagrams under churn (loss = blocked): $(short "$OUT")" \
        || fail "allowed program udp$1: want all $3 delivered (rc 0), rc $RC: $(short "$OUT")"
    kill "$c" "$l" 2>/dev/null
    wait "$c" "$l" 2>/dev/null
    note "churner (uid 65534): $(tail -n1 /tmp/churn.out)"
}

churn_rule() { echo "allow tcp /opt/rules/prog$1"; }

case_storm_churn() {
    enforce
    # 1000 rules; the blocked program's rule is the last one.
    load_rules 1000 "block any $PA" churn_rule
    churn_storm 4 47001 1000
    churn_storm 6 47002 400
    run e7 --json get qpackets
    note "qpackets after the churn storms: $OUT"
}
