# Module lifecycle: unload while traffic flows and a client is subscribed, reload, load-time parameters,
# and save -> rmmod/insmod -> run restores the same state. Each case leaves the module loaded with
# default parameters (the runner reloads it otherwise).

case_rmmod_under_traffic() {
    enforce
    must e7 block udp "$PA"
    must e7 set drops enabled
    must e7 set squelch disabled
    e7 --json monitor --timeout 60 >/tmp/mon 2>&1 &
    mon=$!
    "$PA" hold 0 5 udp4 >/tmp/ha 2>&1 &
    ha=$!
    "$PB" hold 0 5 udp6 >/tmp/hb 2>&1 &
    hb=$!
    "$PU" storm 3000 10 udp4 >/tmp/st 2>&1 &
    st=$!
    sleep 1.5
    alive "$mon" && ok "monitor connected and running" || fail "monitor died before rmmod: $(short "$(cat /tmp/mon)")"
    must rmmod e7
    [ ! -d /sys/module/e7 ] && ok "module gone" || fail "/sys/module/e7 still exists after rmmod"
    # The subscribed client is told (DISCONNECT) or notices, and exits instead of hanging.
    if wait_exit "$mon" 10; then
        wait "$mon"
        ok "monitor exited after unload (rc $?): $(tail -n1 /tmp/mon)"
    else
        fail "monitor still running 10 s after rmmod: $(short "$(tail -n 3 /tmp/mon)")"
    fi
    wait "$ha"
    wait "$hb"
    wait "$st"
    # a was blocked before the unload and delivered after it; b was never blocked.
    grep -q 'send_eperm=[1-9]' /tmp/ha && grep -q 'sent_ok=[1-9]' /tmp/ha \
        && ok "a: $(cat /tmp/ha)" || fail "a want drops before and deliveries after rmmod: $(cat /tmp/ha)"
    grep -q 'send_eperm=0 ' /tmp/hb && grep -q 'sent_ok=[1-9]' /tmp/hb \
        && ok "b: $(cat /tmp/hb)" || fail "b want all delivered: $(cat /tmp/hb)"
    must insmod "$E7_KO"
    expect_flag mode disabled
    expect_rules 0
}

case_reload() {
    for round in 1 2 3; do
        must e7 set mode enabled
        must e7 block any "$PA"
        expect blocked "$PA" udp4
        "$PB" udp6 >/dev/null &
        reload_module
        expect_flag mode disabled
        expect_rules 0
        expect delivered "$PA" udp4
    done
    run e7 --json get uptime
    up=$(json_field "$(printf '%s' "$OUT" | tr -d ' \n')" raw)
    [ -n "$up" ] && [ "$up" -le 3 ] && ok "uptime restarted at reload ($up s)" || fail "uptime after reload: '$up'"
}

# Parameters given to insmod enforce from the very first packet, before any rule or command.
case_module_params() {
    must rmmod e7
    must insmod "$E7_KO" mode=enabled unkrule=block
    expect blocked "$PA" udp4
    expect blocked "$PB" tcp6
    expect blocked "$PU" icmp4
    expect_flag mode enabled
    expect_flag unkrule block
    must e7 allow udp "$PA"
    expect delivered "$PA" udp4
    must rmmod e7
    must insmod "$E7_KO" mode=block
    expect blocked "$PA" udp6
    expect_flag mode block
    must rmmod e7
    must insmod "$E7_KO" unkprot=block longpath=allow drops=enabled
    expect_flag unkprot block
    expect_flag longpath allow
    expect_flag drops enabled
    expect_flag mode disabled
    must rmmod e7
    # A bad value refuses the load rather than starting in an unintended state.
    run insmod "$E7_KO" mode=enforcing
    if [ "$RC" != 0 ] && [ ! -d /sys/module/e7 ]; then
        ok "insmod mode=enforcing refused: $(short "$OUT") / $(dmesg | grep e7 | tail -n1)"
    else
        fail "insmod mode=enforcing -> rc $RC, module loaded: $([ -d /sys/module/e7 ] && echo yes || echo no)"
    fi
    [ -d /sys/module/e7 ] || must insmod "$E7_KO"
    expect_flag mode disabled
}

case_save_restore() {
    must e7 allow udp "$PA"
    must e7 block tcp "$PA"
    must e7 block any /opt/b/
    must e7 allow icmpv6 /opt/
    must e7 allow any "/opt/with space/prog"
    must e7 set unkrule block
    must e7 set drops enabled
    must e7 set longpath allow
    must e7 set squelch disabled
    must e7 set mode enabled
    must e7 save /tmp/saved.e7
    note "saved file:"
    cat /tmp/saved.e7
    must e7 check /tmp/saved.e7
    before=$(e7 --json query)
    flags_before=$(for f in mode debug fail unkproc unkprot norule squelch unkrule drops accepts rchngq longpath; do e7 get "$f"; done 2>&1)
    reload_module
    expect_rules 0
    must e7 run /tmp/saved.e7
    after=$(e7 --json query)
    flags_after=$(for f in mode debug fail unkproc unkprot norule squelch unkrule drops accepts rchngq longpath; do e7 get "$f"; done 2>&1)
    [ "$before" = "$after" ] && ok "query identical after save/reload/run ($(json_field "$(printf '%s' "$after" | tr -d ' \n')" count) rules)" \
        || fail "query differs: before $(short "$before") after $(short "$after")"
    [ "$flags_before" = "$flags_after" ] && ok "all flags identical" \
        || fail "flags differ: before $(short "$flags_before") after $(short "$flags_after")"
    # And the restored state is enforced.
    expect delivered "$PA" udp4
    expect blocked "$PB" udp4
    expect blocked "$PU" udp4
}
