# Connection storms: thousands of short-lived sockets from many processes at once, two programs with
# opposite verdicts. Every socket must be attributed to its own program (no a-packet allowed, no b-packet
# dropped) and the kernel log must stay clean (the runner checks it after every case).

# storm_pair PROTO SOCKETS PROCS: a and b storm concurrently; a must be all blocked, b all delivered.
storm_pair() {
    "$PA" storm "$2" "$3" "$1" >/tmp/sa 2>&1 &
    a=$!
    "$PB" storm "$2" "$3" "$1" >/tmp/sb 2>&1 &
    b=$!
    wait "$a"
    arc=$?
    wait "$b"
    brc=$?
    [ "$arc" = 1 ] && ok "a ($1): $(tail -n1 /tmp/sa)" || fail "a ($1) want all $2 blocked (rc 1), rc $arc: $(short "$(cat /tmp/sa)")"
    [ "$brc" = 0 ] && ok "b ($1): $(tail -n1 /tmp/sb)" || fail "b ($1) want all $2 delivered (rc 0), rc $brc: $(short "$(cat /tmp/sb)")"
}

case_storm_attribution() {
    enforce
    must e7 block any "$PA"
    storm_pair udp4 4000 40
    storm_pair udp6 2000 20
    # Allow-list posture: only b is allowed, everything unknown is dropped.
    must e7 clear
    must e7 set unkrule block
    must e7 allow any "$PB"
    storm_pair udp4 1000 10
    # TCP: b's connections all complete while a's storm of UDP is being dropped.
    "$PA" storm 1000 10 udp6 >/tmp/sa 2>&1 &
    a=$!
    expect_rc 0 "$PB" --timeout 5000 storm 300 10 tcp4
    expect_rc 0 "$PB" --timeout 5000 storm 200 10 tcp6
    wait "$a"
    [ $? = 1 ] && ok "a udp6 during b's tcp storms: $(tail -n1 /tmp/sa)" || fail "a udp6: $(short "$(cat /tmp/sa)")"
    run e7 --json get evlost
    note "evlost after storms: $OUT"
}
