# The original console against e7, and what an unprivileged user can do to unload.

# The original console sends QUERY and GET at start and then waits for events; it never sends SUBSCRIBE.
# As root it must get events and the DISCONNECT at unload (the original made any client that sent a command
# its event receiver; e7 subscribed only ports that sent an admin command, so this console saw nothing).
# The same console as uid 65534 must get neither.
case_console_that_only_queried_gets_events() {
    enforce
    "$PU" console 40 >/tmp/con-root 2>&1 &
    root=$!
    "$PU" as-user "$NOBODY" "$PU" console 40 >/tmp/con-nobody 2>&1 &
    nobody=$!
    wait_for /tmp/con-root ready 10 && wait_for /tmp/con-nobody ready 10 \
        && ok "both consoles read their QUERY" \
        || fail "QUERY at start: root: $(short "$(cat /tmp/con-root)"); nobody: $(short "$(cat /tmp/con-nobody)")"
    # An unruled program's packet: a PENDING event (norule is on by default).
    _i=0
    while ! grep -q '^event' /tmp/con-root && [ "$_i" -lt 20 ]; do
        "$PA" udp4 >/dev/null 2>&1
        sleep 0.3
        _i=$((_i + 1))
    done
    grep -q '^event 0xff02' /tmp/con-root && ok "root console got a PENDING event: $(grep -m1 '^event' /tmp/con-root)" \
        || fail "root console got no event: $(short "$(cat /tmp/con-root)")"
    must rmmod e7
    wait_for /tmp/con-root disconnect 10 && ok "root console got DISCONNECT at unload: $(grep -m1 disconnect /tmp/con-root)" \
        || fail "root console got no DISCONNECT: $(short "$(cat /tmp/con-root)")"
    wait "$root"
    grep -q '^event\|disconnect' /tmp/con-nobody && fail "uid $NOBODY console got events: $(short "$(cat /tmp/con-nobody)")" \
        || ok "uid $NOBODY console got no event and no DISCONNECT"
    kill "$nobody" 2>/dev/null
    wait "$nobody" 2>/dev/null
    must insmod "$E7_KO"
}

# Any user can start a QUERY dump and never read it; the kernel then holds a module reference, so rmmod
# fails for as long as that socket lives (the kernel gives a module no way to end another socket's dump).
# Documented in crates/e7-kmod/README.md; e7-unload.sh (make reload) must name the holder, and unloading
# must work once it is gone.
case_unload_held_by_an_unprivileged_dump() {
    i=1
    while [ "$i" -le 100 ]; do
        echo "allow udp /opt/held/program-number-$i"
        i=$((i + 1))
    done >/tmp/held.e7
    must e7 run /tmp/held.e7
    # The probe starts the dump, then runs `sleep 60` before reading anything.
    "$PU" as-user "$NOBODY" "$PU" dump-edit sleep 60 >/tmp/held.out 2>&1 &
    holder=$!
    _n=0
    while ! awk 'NR > 1 && $2 == 16 && $7 != 0 { f = 1 } END { exit !f }' /proc/net/netlink && [ "$_n" -lt 50 ]; do
        sleep 0.1
        _n=$((_n + 1))
    done
    run /e7/e7-unload.sh
    [ "$RC" = 1 ] && printf '%s' "$OUT" | grep -q "pid $holder (e7-probe, uid $NOBODY) holds an unfinished netlink dump" \
        && ok "unload refused and the holder named: $(short "$OUT")" \
        || fail "e7-unload.sh with a held dump: rc $RC: $(short "$OUT")"
    module_loaded && ok "the module stays loaded (and enforcing) meanwhile" || fail "module gone although a dump held it"
    kill "$holder"
    wait "$holder" 2>/dev/null
    # The socket's release (and the dump's module reference) may complete just after the process is gone.
    _n=0
    while module_loaded && [ "$_n" -lt 30 ]; do
        run /e7/e7-unload.sh
        module_loaded && sleep 0.2
        _n=$((_n + 1))
    done
    module_loaded && fail "still loaded after the holder died: $(short "$OUT")" || ok "unloaded once the holder is gone: $OUT"
    must insmod "$E7_KO"
}
