# Basic sanity: the VM, the probe copies and the module are usable before anything is enforced.

# Module loaded, CLI talks to it, defaults in place, and every protocol is delivered in mode disabled.
case_boot_smoke() {
    [ -d /sys/module/e7 ] && ok "module e7 loaded" || fail "module e7 is not loaded"
    must e7 status
    expect_flag mode disabled
    expect_rules 0
    for p in udp4 udp6 tcp4 tcp6 icmp4 icmp6; do
        expect delivered "$PA" "$p"
    done
    expect delivered "$PU" raw4 253
    _len=$(printf '%s' "$PL" | wc -c)
    [ "$_len" -gt 255 ] && ok "long probe path is $_len bytes" || fail "long probe path is only $_len bytes"
    expect delivered "$PL" udp4
    cmp "$PA" "$PB" && ok "/opt/a and /opt/b hold the same binary" || fail "probe copies differ"
}
