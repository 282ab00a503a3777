# Netlink fuzz: 20,000 random and mutated generic-netlink requests to the e7 family as uid 65534, then
# 20,000 as root (random commands and versions, attribute types and lengths, bad nesting, strings without
# NUL, truncated and mis-sized messages, NLM_F_DUMP on anything; see vmtest/probe/src/fuzz.rs). The VM
# runs with panic_on_warn=1 and the runner fails the case on any kernel warning; here: the module stays
# loaded and answers, and the unprivileged run changed no rule and no flag (compared with `e7 save`).
# The seed is printed; `e7-probe genl-fuzz SEED 20000` replays a run exactly.

case_genl_fuzz() {
    seed=$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')
    note "genl-fuzz seed $seed (unprivileged), $((seed + 1)) (root)"
    # A non-default state, so an unprivileged change of anything would show.
    must e7 allow udp /usr/bin/fuzz-keep
    must e7 block tcp /opt/fuzz/
    must e7 set unkrule block
    must e7 set drops enabled
    must e7 set mode enabled
    must e7 save /tmp/fuzz-before.e7
    run "$PU" as-user "$NOBODY" "$PU" genl-fuzz "$seed" 20000
    [ "$RC" = 0 ] && ok "uid $NOBODY: $OUT" || fail "uid $NOBODY fuzz: rc $RC: $(short "$OUT")"
    must e7 save /tmp/fuzz-after.e7
    if cmp -s /tmp/fuzz-before.e7 /tmp/fuzz-after.e7; then
        ok "the unprivileged run changed no rule and no flag"
    else
        fail "the unprivileged run changed the state: $(short "$(diff /tmp/fuzz-before.e7 /tmp/fuzz-after.e7)")"
    fi
    run "$PU" genl-fuzz "$((seed + 1))" 20000
    [ "$RC" = 0 ] && ok "root: $OUT" || fail "root fuzz: rc $RC: $(short "$OUT")"
    module_loaded && ok "module still loaded" || fail "module gone after the fuzz"
    # Still answering, and still enforcing (the root run set flags at random: back to the defaults).
    must e7 clear
    must e7 run /e7/reset.e7
    enforce
    must e7 block udp "$PA"
    expect blocked "$PA" udp4
    expect delivered "$PB" udp4
    if dmesg | grep -qE 'Oops|WARNING|BUG|Call Trace|general protection'; then
        fail "kernel log: $(short "$(dmesg | grep -E 'Oops|WARNING|BUG|Call Trace' | head -n3)")"
    else
        ok "kernel log clean"
    fi
}
