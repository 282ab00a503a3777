# The three modes. `disabled` lets everything through whatever the rules say; `enabled` applies rules and
# default actions; `block` drops every packet of every program and protocol (the original's B1 made block
# behave like enabled).

ALL_PROTOS="udp4 udp6 tcp4 tcp6 icmp4 icmp6"

case_mode_disabled() {
    expect_flag mode disabled
    must e7 block any "$PA"
    must e7 set unkrule block
    must e7 set unkprot block
    for p in $ALL_PROTOS; do expect delivered "$PA" "$p"; done
    expect delivered "$PB" udp4
    expect delivered "$PL" udp6
    expect delivered "$PU" raw4 253
    # `enable` turns the same state into enforcement.
    must e7 enable
    expect_flag mode enabled
    expect blocked "$PA" udp4
    must e7 set mode disabled
    expect delivered "$PA" udp4
}

case_mode_enabled() {
    must e7 set mode enabled
    expect_flag mode enabled
    # No rule and every default action at allow: everything still flows.
    for p in $ALL_PROTOS; do expect delivered "$PA" "$p"; done
    must e7 block udp "$PA"
    expect blocked "$PA" udp4
    expect delivered "$PA" tcp4
}

case_mode_block() {
    must e7 allow any "$PA"
    must e7 allow any /opt/
    must e7 set mode block
    expect_flag mode block
    for p in $ALL_PROTOS; do
        expect blocked "$PA" "$p"
        expect blocked "$PU" "$p"
    done
    expect blocked "$PU" raw4 253
    expect blocked "$PU" raw6 253
    expect blocked "$PL" udp4
    # The control channel is netlink, not IP: the CLI keeps working and can lift the block.
    expect_rules 2
    must e7 set mode disabled
    for p in $ALL_PROTOS; do expect delivered "$PU" "$p"; done
}

# Mode values are checked: a wrong value is refused and the mode is unchanged.
case_mode_invalid_value() {
    run e7 set mode allow
    [ "$RC" = 1 ] || [ "$RC" = 2 ] && ok "set mode allow refused (rc $RC): $(short "$OUT")" \
        || fail "e7 set mode allow -> rc $RC, want 1 or 2; output: $(short "$OUT")"
    printf '%s' "$OUT" | grep -qiE 'enabled|disabled|block' && ok "error lists the valid values" \
        || fail "error for 'set mode allow' does not name the valid values: $(short "$OUT")"
    run e7 set mode 12345
    [ "$RC" = 1 ] || [ "$RC" = 2 ] && ok "set mode 12345 refused (rc $RC)" \
        || fail "e7 set mode 12345 -> rc $RC, want 1 or 2; output: $(short "$OUT")"
    expect_flag mode disabled
}

# The hook reads the mode before anything else and lets every packet through while it is `disabled`
# (the cheap path). That must never leave a window: the first packet after `set mode enabled` (or
# `block`) is decided, for an unprivileged sender too, however often the mode flips.
case_mode_enable_next_packet() {
    must e7 block udp "$PA"
    must e7 block tcp "$PA"
    for i in 1 2 3 4 5; do
        must e7 set mode disabled
        expect delivered "$PU" as-user "$NOBODY" "$PA" udp4
        must e7 set mode enabled
        expect blocked "$PU" as-user "$NOBODY" "$PA" udp4
        expect blocked "$PU" as-user "$NOBODY" "$PA" tcp4
        must e7 set mode disabled
        must e7 set mode block
        expect blocked "$PU" as-user "$NOBODY" "$PU" udp6
    done
}
