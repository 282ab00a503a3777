# An unprivileged user (uid 65534, no capabilities) may read (query, get, status) but every mutation is
# refused with EPERM, which the CLI reports as exit code 4 with a clear message; it cannot subscribe to
# events, and its queries and DISCONNECTs do not take events away from the admin's monitor (the original's
# "last sender wins" connection latch).

as_nobody() { "$PU" as-user "$NOBODY" "$@"; }

case_unpriv_query_get() {
    must e7 block udp "$PA"
    must e7 set unkrule block
    run as_nobody e7 --json query
    j=$(printf '%s' "$OUT" | tr -d ' \n')
    [ "$RC" = 0 ] && [ "$(json_field "$j" count)" = 1 ] && printf '%s' "$j" | grep -qF "\"path\":\"$PA\"" \
        && ok "unprivileged query sees the rule" || fail "unprivileged query -> rc $RC: $(short "$OUT")"
    expect_out block as_nobody e7 get unkrule
    expect_out disabled as_nobody e7 get mode
    must as_nobody e7 query
    must as_nobody e7 status
    must as_nobody e7 get uptime
}

# Rules are about programs, not users: an unprivileged user's copy of a blocked program is blocked too
# (including unprivileged ICMP ping sockets), the other copy is not.
case_unpriv_traffic() {
    enforce
    must e7 block any "$PA"
    for p in udp4 udp6 tcp4 icmp4 icmp6; do
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$p"
        expect delivered "$PU" as-user "$NOBODY" "$PB" "$p"
    done
}

# expect_refused CMD...: rc 4, a message about permission, nothing changed.
expect_refused() {
    run as_nobody "$@"
    if [ "$RC" = 4 ] && printf '%s' "$OUT" | grep -qiE 'permission|CAP_NET_ADMIN|root'; then
        ok "unprivileged '$*' refused: $(short "$OUT")"
    else
        fail "unprivileged '$*' -> rc $RC, want 4 and a permission message; output: $(short "$OUT")"
    fi
}

case_unpriv_mutations_refused() {
    must e7 block udp "$PA"
    printf 'allow udp /opt/x/y\n' >/tmp/rules.e7
    chmod 644 /tmp/rules.e7
    expect_refused e7 allow udp /opt/x/y
    expect_refused e7 block /opt/x/y
    expect_refused e7 block tcp /opt/
    expect_refused e7 clear
    expect_refused e7 clear block
    expect_refused e7 clear udp "$PA"
    expect_refused e7 enable
    expect_refused e7 set mode enabled
    expect_refused e7 set unkrule block
    expect_refused e7 run /tmp/rules.e7
    # The same refusals through the console.
    run sh -c "printf 'set mode block\n' | $PU as-user $NOBODY e7 shell"
    printf '%s' "$OUT" | grep -qiE 'permission|CAP_NET_ADMIN|root' && ok "console reports the refusal: $(short "$OUT")" \
        || fail "unprivileged console 'set mode block' did not report a permission error: rc $RC $(short "$OUT")"
    # Nothing changed.
    expect_rules 1
    expect_rule block udp "$PA"
    expect_flag mode disabled
    expect_flag unkrule allow
}

# The admin's monitor gets the events; an unprivileged monitor is refused and gets none, even while the
# admin is subscribed and events flow.
case_unpriv_monitor() {
    enforce
    e7 --json monitor --count 1 --timeout 15 >/tmp/admin.mon 2>&1 &
    apid=$!
    sleep 0.5
    as_nobody e7 --json monitor --count 1 --timeout 5 >/tmp/nobody.mon 2>&1 &
    npid=$!
    # The original routed every message to the last sender, privileged or not, and let anyone DISCONNECT
    # it: an unprivileged query or disconnect must not take the admin's events away.
    must as_nobody e7 query
    must as_nobody e7 get mode
    run sh -c "printf 'disconnect\nquery\n' | $PU as-user $NOBODY e7 shell"
    note "unprivileged console disconnect: rc $RC $(short "$OUT")"
    i=0
    while alive "$apid" && [ "$i" -lt 40 ]; do
        "$PA" udp4 >/dev/null
        sleep 0.3
        i=$((i + 1))
    done
    wait_exit "$npid" 8 || fail "unprivileged monitor still running after 8 s"
    wait "$apid"
    arc=$?
    wait "$npid"
    nrc=$?
    grep -q '"event"' /tmp/admin.mon && ok "admin monitor got: $(head -n1 /tmp/admin.mon)" \
        || fail "admin monitor got no event (rc $arc): $(short "$(cat /tmp/admin.mon)")"
    [ "$arc" = 0 ] && ok "admin monitor exit 0" || fail "admin monitor exit $arc"
    if grep -q '"event"' /tmp/nobody.mon; then
        fail "unprivileged monitor received events: $(short "$(cat /tmp/nobody.mon)")"
    else
        ok "unprivileged monitor received no event"
    fi
    [ "$nrc" = 4 ] && ok "unprivileged monitor refused with exit 4: $(short "$(cat /tmp/nobody.mon)")" \
        || fail "unprivileged monitor exit $nrc, want 4 (permission denied): $(short "$(cat /tmp/nobody.mon)")"
}
