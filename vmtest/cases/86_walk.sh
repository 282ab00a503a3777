# The process walk (issue 7, "The process walk"). A socket whose owner cannot be asked directly (a
# listener's first SYN-ACK, a packet from softirq on a socket e7 has not seen) is identified by
# walking every process's descriptors. That walk used to run as ONE section with bottom halves off
# under a global write lock, as long as processes x descriptors, and any user could trigger it every
# 50 ms. Now it is collected in chunks with no lock held (process context, preemptible) and each
# chunk of at most `chunk` pairs is merged under a short lock: `max_merge` in the module's
# walk_stats can never exceed `chunk`, whatever the number of processes and descriptors, and
# `max_lock_ns` is the longest bottom-halves-off section a walk caused.

# walk_stat KEY: one counter from /sys/module/e7/parameters/walk_stats.
walk_stat() {
    tr ' ' '\n' </sys/module/e7/parameters/walk_stats | sed -n "s/^$1=//p"
}

case_walk_bounded() {
    enforce
    must e7 allow any "$PB"
    if [ ! -r /sys/module/e7/parameters/walk_stats ]; then
        fail "no /sys/module/e7/parameters/walk_stats: the walk's sections are not bounded or not counted"
        return
    fi
    before=$(cat /sys/module/e7/parameters/walk_stats)
    c0=$(walk_stat cycles)
    m0=$(walk_stat merged)
    # The attacker: uid 65534, 200 processes x 1000 descriptors (one UDP socket each, dup'ed:
    # every descriptor is a step of the walk, at little memory).
    : >/tmp/hoard.out
    hoarders=
    i=0
    while [ "$i" -lt 200 ]; do
        "$PU" as-user "$NOBODY" "$PU" hoard 1000 150 >>/tmp/hoard.out 2>&1 &
        hoarders="$hoarders $!"
        i=$((i + 1))
    done
    t=0
    while [ "$(grep -c '^holding 1000 ' /tmp/hoard.out)" -lt 200 ] && [ "$t" -lt 60 ]; do
        sleep 1
        t=$((t + 1))
    done
    ready=$(grep -c '^holding 1000 ' /tmp/hoard.out)
    [ "$ready" = 200 ] && ok "uid 65534 holds 200 x 1000 descriptors" \
        || fail "hoarders ready: $ready of 200: $(short "$(sort /tmp/hoard.out | uniq -c)")"
    # ... and makes the walk run as often as it may: fresh listeners whose first SYN-ACK leaves
    # from softirq on an unknown socket, for 8 s; meanwhile an allowed program's connections.
    "$PU" as-user "$NOBODY" "$PU" walkstorm 8 >/tmp/walkstorm.out 2>&1 &
    w=$!
    sleep 1
    expect_rc 0 "$PB" --timeout 5000 storm 100 4 tcp4
    wait "$w"
    note "$(cat /tmp/walkstorm.out)"
    after=$(cat /sys/module/e7/parameters/walk_stats)
    note "walk_stats before: $before"
    note "walk_stats after:  $after"
    c1=$(walk_stat cycles)
    m1=$(walk_stat merged)
    mm=$(walk_stat max_merge)
    chunk=$(walk_stat chunk)
    ns=$(walk_stat max_lock_ns)
    [ $((c1 - c0)) -ge 2 ] && ok "$((c1 - c0)) whole walks (cycles) during the attack" \
        || fail "want >= 2 whole walks during the attack, got $((c1 - c0))"
    [ $((m1 - m0)) -ge 200000 ] && ok "the walks visited the hoard: $((m1 - m0)) pairs merged" \
        || fail "want >= 200000 pairs merged (200 x 1000 descriptors), got $((m1 - m0))"
    [ "$mm" -ge 1 ] && [ "$mm" -le "$chunk" ] \
        && ok "most pairs merged under one lock hold: $mm (bound: chunk = $chunk)" \
        || fail "max_merge $mm outside 1..$chunk: a locked section grew with the table"
    merges=$(walk_stat merges)
    total=$(walk_stat total_lock_ns)
    [ "$merges" -ge 1 ] && mean=$((total / merges)) || mean=0
    note "bottom-halves-off sections of the walk (chunk merges): $merges, mean $mean ns, longest $ns ns"
    # shellcheck disable=SC2086 # a list of pids
    kill $hoarders 2>/dev/null
    wait 2>/dev/null
}
