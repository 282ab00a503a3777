# A full rule table (1024 rules, e7-core's RuleRing default) is answered completely by QUERY (the
# original sent nothing once the reply outgrew one message), a flip works on a full table (B14) and its
# rchngq push is one message, and the 1025th rule is refused with a clear error.

# full_table_rule I: rule I of the full table, in four shapes (long paths make more QUERY messages).
full_table_rule() {
    case $(($1 % 4)) in
    0) echo "block udp /opt/rules/prog$1" ;;
    1) echo "allow tcp /opt/rules/prog$1" ;;
    2) echo "block any /opt/rules/dir$1/" ;;
    3) echo "allow icmpv6 /opt/rules/a-somewhat-longer-path-to-use-more-of-each-message/prog$1" ;;
    esac
}

case_full_table_1024() {
    load_rules 1024 "block udp $PA" full_table_rule # rule 1024, last in the table
    j=$(qjson)
    c=$(json_field "$j" count)
    n=$(json_rules "$j")
    [ "$c" = 1024 ] && [ "$n" = 1024 ] && ok "query: count 1024, 1024 rules listed" \
        || fail "query: count '$c', rules listed $n, want 1024 and 1024"
    printf '%s' "$j" | grep -qF '{"action":"allow","protocol":"tcp","path":"/opt/rules/prog1"}' \
        && printf '%s' "$j" | grep -qF "{\"action\":\"block\",\"protocol\":\"udp\",\"path\":\"$PA\"}" \
        && ok "first and last rule present" || fail "first or last rule missing from the full query"
    # Insertion order is preserved: rule 1 first, a's rule last.
    first=$(printf '%s' "$j" | grep -o '"path":"[^"]*"' | head -n1)
    last=$(printf '%s' "$j" | grep -o '"path":"[^"]*"' | tail -n1)
    [ "$first" = '"path":"/opt/rules/prog1"' ] && [ "$last" = "\"path\":\"$PA\"" ] && ok "query order = insertion order" \
        || fail "query order: first $first, last $last"
    # The original console's QUERY (no dump): a chain of nests split over several complete messages, the
    # last with COUNT. The original sent nothing at all once the chain outgrew one message (B15).
    run "$PU" compat-query
    [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -q 'rules=1024 count=1024' && ok "chained QUERY: $OUT" \
        || fail "chained QUERY of the full table: rc $RC: $(short "$OUT")"
    # Unprivileged users get the same answer.
    expect_out 'rules=1024 count=1024' "$PU" as-user "$NOBODY" "$PU" compat-query
    # With libnl's default receive buffer (32 KiB requested, 64 KiB effective) too: the reply is a
    # reader-driven dump (one message built whenever the reader drained its buffer). Sent at once, the
    # 16 messages overflowed it: the last one and the ack were dropped (ENOBUFS) and 962 rules arrived.
    run "$PU" compat-query 32768
    [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -q 'rules=1024 count=1024 .*end=done' \
        && ok "chained QUERY, 32 KiB SO_RCVBUF: $OUT" \
        || fail "chained QUERY with a 32 KiB SO_RCVBUF: rc $RC: $(short "$OUT")"
    expect_out 'rules=1024 count=1024' "$PU" as-user "$NOBODY" "$PU" compat-query 32768
    # Plain text lists them too (one line per rule, at least).
    lines=$(e7 query 2>&1 | grep -c '/opt/rules/\|/opt/a/')
    [ "$lines" -ge 1024 ] && ok "text query lists $lines rule lines" || fail "text query lists only $lines rule lines"
    # The last rule of a full table is enforced.
    enforce
    expect blocked "$PA" udp4
    expect delivered "$PB" udp4
    # Table full: a new rule is refused (exit 1) with a message, the table is unchanged.
    run e7 block udp /opt/rules/one-too-many
    [ "$RC" = 1 ] && printf '%s' "$OUT" | grep -qi 'full\|1024\|capacity\|no space' \
        && ok "1025th rule refused: $(short "$OUT")" || fail "1025th rule -> rc $RC, want 1 and a 'full' message: $(short "$OUT")"
    # Flipping an existing rule needs no new slot. With rchngq on (the default), the QUERY pushed after the
    # change is ONE message, a notice for a table this large (mode and COUNT, ask with QUERY): sent at once,
    # the 16 messages of the whole table overran small receive buffers (ENOBUFS, the ack lost).
    run env E7_DEBUG_NETLINK=1 e7 allow udp /opt/rules/prog4
    pushed=$(printf '%s\n' "$OUT" | grep -c 'cmd: 7,')
    [ "$RC" = 0 ] && [ "$pushed" = 1 ] && ok "flip on a full table; rchngq pushed 1 QUERY message" \
        || fail "flip on a full table: rc $RC, $pushed pushed QUERY messages (want 0 and 1): $(short "$OUT")"
    expect_rule allow udp /opt/rules/prog4
    expect_rules 1024
    must e7 clear
    expect_rules 0
}

# A QUERY dump cut by a rule edit from another socket is flagged NLM_F_DUMP_INTR, on NLMSG_DONE too, so a
# client that only checks the end of the dump learns its table is stale. The probe starts the dump (the
# first page-sized message, about 70 rules, is built at once), runs the edit, then reads the rest. Before
# the fix the final call returned before recording the generation: `e7 clear` here ended with a clean
# NLMSG_DONE after 70 of 200 rules, and an edit between two full messages flagged only that message.
case_dump_intr_on_concurrent_edit() {
    : >/tmp/dump.e7
    i=1
    while [ "$i" -le 200 ]; do
        echo "allow udp /opt/dump/program-number-$i"
        i=$((i + 1))
    done >>/tmp/dump.e7
    must e7 run /tmp/dump.e7
    run "$PU" dump-edit
    [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -q 'rules=200 count=200 intr_messages=0 intr_done=0' \
        && ok "undisturbed dump, never flagged: $OUT" || fail "undisturbed dump: rc $RC: $(short "$OUT")"
    # The last rule removed between message 1 and 2: message 2 and the DONE are flagged.
    run "$PU" dump-edit e7 clear udp /opt/dump/program-number-200
    [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -q 'intr_messages=[1-9].* intr_done=1' \
        && ok "edit between two messages flags them and the DONE: $OUT" \
        || fail "edit between two messages: rc $RC: $(short "$OUT")"
    must e7 clear
    must e7 run /tmp/dump.e7
    # Everything cleared after the first message: the dump is short, and says so on NLMSG_DONE.
    run "$PU" dump-edit e7 clear
    [ "$RC" = 0 ] && printf '%s' "$OUT" | grep -q 'count=200 .*intr_done=1' \
        && ok "dump cut short by CLEAR is flagged on NLMSG_DONE: $OUT" \
        || fail "dump cut short by CLEAR: rc $RC: $(short "$OUT")"
    expect_rules 0
}
