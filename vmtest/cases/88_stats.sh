# Per-program statistics (STATS, `e7 stats`): the module's counts must equal what the program itself
# counted, accepted and (after a block) dropped, and only root may read them unless `statsunpriv` says so.

# beat_tally FILE: "DELIVERED BLOCKED ERRORS ROUNDS" from an `e7-probe beat` tally line.
beat_tally() {
    sed -n 's/.*rounds=\([0-9]*\) delivered=\([0-9]*\) blocked=\([0-9]*\) errors=\([0-9]*\).*/\2 \3 \4 \1/p' "$1"
}

# stats_of PATH [CMD...]: "ACC_PKTS ACC_BYTES DROP_PKTS DROP_BYTES VERDICT REASON" of PATH from
# `e7 --json stats` (run as CMD... e7, default plain e7); empty when PATH is not listed.
stats_of() {
    _p=$1
    shift
    "$@" e7 --json stats 2>/dev/null | tr -d ' ' | grep -F "\"path\":\"$_p\"" | sed -n \
        's/.*"verdict":"\([a-z]*\)","reason":"\([a-z]*\)".*"accepted":{"packets":\([0-9]*\),"bytes":\([0-9]*\)},"dropped":{"packets":\([0-9]*\),"bytes":\([0-9]*\)}.*/\3 \4 \5 \6 \1 \2/p'
}

# udp_bytes FROM TO: IP bytes of the beat's UDP datagrams FROM..TO ("e7-probe udp N" + 8 + 20).
udp_bytes() {
    _b=0
    _i=$1
    while [ "$_i" -le "$2" ]; do
        _b=$((_b + 28 + ${#_i} + 13))
        _i=$((_i + 1))
    done
    echo "$_b"
}

case_stats_equal_the_senders_tally() {
    # A fresh module: no earlier case's packets in the counters.
    reload_module
    enforce
    rm -f /tmp/beat-a /tmp/beat-b
    # One UDP datagram per round, nothing else on the network from these programs.
    "$PA" --timeout 3000 beat udp4 20 /tmp/beat-a 6 >/dev/null 2>&1
    "$PB" --timeout 3000 beat udp4 20 /tmp/beat-b 3 >/dev/null 2>&1
    # shellcheck disable=SC2046 # split on purpose: four numbers
    set -- $(beat_tally /tmp/beat-a)
    [ "$1 $2 $3 $4" = "6 0 0 6" ] && ok "a's tally: $(cat /tmp/beat-a)" || fail "a's tally: $(cat /tmp/beat-a)"
    _want="6 $(udp_bytes 1 6) 0 0 allow norule"
    _got=$(stats_of "$PA")
    [ "$_got" = "$_want" ] && ok "stats of $PA = its tally: $_got" \
        || fail "stats of $PA: '$_got', want '$_want'; $(short "$(e7 --json stats 2>&1)")"
    _got=$(stats_of "$PB")
    [ "$_got" = "3 $(udp_bytes 1 3) 0 0 allow norule" ] && ok "stats of $PB: $_got" \
        || fail "stats of $PB: '$_got'; $(short "$(e7 --json stats 2>&1)")"

    # After a block: the same program's next packets are counted as dropped, by the rule.
    must e7 block udp "$PA"
    "$PA" --timeout 3000 beat udp4 20 /tmp/beat-a 4 >/dev/null 2>&1
    # shellcheck disable=SC2046 # split on purpose: four numbers
    set -- $(beat_tally /tmp/beat-a)
    [ "$1 $2 $4" = "0 4 4" ] && ok "a's tally after the block: $(cat /tmp/beat-a)" \
        || fail "a's tally after the block: $(cat /tmp/beat-a)"
    _want="6 $(udp_bytes 1 6) 4 $(udp_bytes 1 4) block rule"
    _got=$(stats_of "$PA")
    [ "$_got" = "$_want" ] && ok "stats of $PA after the block: $_got" \
        || fail "stats of $PA after the block: '$_got', want '$_want'; $(short "$(e7 --json stats 2>&1)")"
    expect_out "block udp $PA" e7 stats
    # b was not touched.
    _got=$(stats_of "$PB")
    [ "${_got%% *}" = 3 ] && ok "$PB unchanged: $_got" || fail "$PB changed: '$_got'"
}

# STATS shows every program's network use: admin only by default (exit 4 as uid 65534), for everybody
# once root enables `statsunpriv`, which uid 65534 cannot enable itself.
case_stats_unprivileged_read_needs_the_flag() {
    enforce
    "$PA" --timeout 3000 beat udp4 20 /tmp/beat-u 2 >/dev/null 2>&1
    expect_flag statsunpriv disabled
    expect_rc 4 "$PU" as-user "$NOBODY" e7 stats
    expect_rc 4 "$PU" as-user "$NOBODY" e7 --json stats
    # Root of its own user namespace is still no admin of the module.
    expect_rc 4 "$PU" as-user "$NOBODY" "$PU" userns e7 stats
    expect_rc 4 "$PU" as-user "$NOBODY" e7 set statsunpriv enabled
    expect_flag statsunpriv disabled
    # `e7 top` refuses the same way before taking the screen.
    expect_rc 4 "$PU" as-user "$NOBODY" e7 top --count 1
    must e7 set statsunpriv enabled
    _got=$(stats_of "$PA" "$PU" as-user "$NOBODY")
    [ -n "$_got" ] && ok "uid $NOBODY reads the stats once allowed: $_got" \
        || fail "uid $NOBODY cannot read the stats with statsunpriv enabled: $(short "$("$PU" as-user "$NOBODY" e7 stats 2>&1)")"
    # Reading is all it gets: a rule still needs root.
    expect_rc 4 "$PU" as-user "$NOBODY" e7 block udp "$PA"
    must e7 set statsunpriv disabled
    expect_rc 4 "$PU" as-user "$NOBODY" e7 stats
}

# Not a terminal: `e7 top` prints the plain table every interval.
case_top_plain_when_not_a_terminal() {
    enforce
    "$PA" --timeout 3000 beat udp4 20 /tmp/beat-t 2 >/dev/null 2>&1
    run e7 top --interval 0.2 --count 2
    _n=$(printf '%s\n' "$OUT" | grep -c '^PROGRAM')
    if [ "$RC" = 0 ] && [ "$_n" = 2 ] && printf '%s' "$OUT" | grep -q "^$PA "; then
        ok "e7 top | cat: two tables listing $PA"
    else
        fail "e7 top --count 2 (not a terminal): rc $RC, $_n tables: $(short "$OUT")"
    fi
}

# The module keeps 256 programs (its executable table, least recently used out first); a program that
# takes a slot another one had must start from zero. 300 names for one file (hard links: distinct
# executable paths, no extra memory), each sending one datagram, cycle every slot at least once, so
# every count above 1 would be a previous program's packets shown under a new name.
case_stats_a_reused_slot_starts_from_zero() {
    reload_module
    enforce
    "$PA" --timeout 3000 beat udp4 20 /tmp/beat-r 3 >/dev/null 2>&1
    _got=$(stats_of "$PA")
    [ "${_got%% *}" = 3 ] && ok "$PA before: $_got" || fail "$PA before: '$_got'"
    mkdir -p /opt/many
    _i=0
    while [ "$_i" -lt 300 ]; do
        ln -f "$PU" "/opt/many/p$_i" || fail "ln $PU /opt/many/p$_i"
        _i=$((_i + 1))
    done
    _i=0
    _sent=0
    while [ "$_i" -lt 300 ]; do
        "/opt/many/p$_i" udp4 >/dev/null 2>&1 && _sent=$((_sent + 1))
        _i=$((_i + 1))
    done
    [ "$_sent" = 300 ] && ok "300 programs sent one datagram each" || fail "only $_sent of 300 delivered"
    e7 --json stats 2>&1 | tr -d ' ' >/tmp/many.json
    _n=$(grep -c '"path":"/opt/many/' /tmp/many.json)
    _one=$(grep '"path":"/opt/many/' /tmp/many.json | grep -c '"accepted":{"packets":1,"bytes":42}')
    if [ "$_n" -ge 200 ] && [ "$_n" -le 256 ] && [ "$_one" = "$_n" ]; then
        ok "$_n programs listed (256 slots), each with exactly its own datagram"
    else
        fail "$_n programs listed, $_one with exactly their own datagram: $(short "$(grep '"path":"/opt/many/' /tmp/many.json | grep -v '"accepted":{"packets":1,"bytes":42}' | head -n 3)")"
    fi
    _got=$(stats_of "$PA")
    [ -z "$_got" ] && ok "$PA left the table and its counts with it" || fail "$PA still listed after 300 others: '$_got'"
    rm -rf /opt/many
}
