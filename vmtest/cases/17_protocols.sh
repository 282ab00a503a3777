# `any` means any: every packet a program's socket sends is identified, whatever its IP protocol, so a
# block rule cannot be walked around with UDP-Lite (built in, unprivileged), a raw socket of another
# protocol (CAP_NET_RAW, which any user gets in its own user + network namespace) or SCTP. Before, such
# packets got `unkprot` (allow by default) before identification.

as_nobody() { "$PU" as-user "$NOBODY" "$@"; }

# UDP-Lite from an unprivileged user: `block any` stops it, a rule naming udplite is more specific.
case_any_udplite() {
    # A kernel built without UDP-Lite (the sid row's 7.x has none) leaves nothing to get
    # around, and the case says so.
    run "$PA" udplite4
    if printf '%s' "$OUT" | grep -q 'Protocol not supported'; then
        ok "this kernel has no UDP-Lite (EPROTONOSUPPORT): nothing to test"
        return
    fi
    enforce
    must e7 block any "$PA"
    for p in udplite4 udplite6; do
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$p"
        expect delivered "$PU" as-user "$NOBODY" "$PB" "$p"
    done
    must e7 allow udplite "$PA"
    expect_rule allow udplite "$PA"
    expect delivered "$PU" as-user "$NOBODY" "$PA" udplite4
    expect blocked "$PU" as-user "$NOBODY" "$PA" udp4
    # unkrule block: no rule for /opt/b → blocked (it was `unkprot`, allow).
    must e7 set unkrule block
    expect blocked "$PU" as-user "$NOBODY" "$PB" udplite6
}

# Raw sockets of other IP protocols, from uid 65534 inside its own user + network namespace (the hooks
# cover every netns), and as root in the initial one. A rule may name a protocol by name or number.
case_any_raw_userns() {
    enforce
    must e7 block any "$PA"
    for v in raw4 raw6; do
        expect blocked "$PU" as-user "$NOBODY" "$PU" userns -n "$PA" "$v" 253
        expect delivered "$PU" as-user "$NOBODY" "$PU" userns -n "$PB" "$v" 253
        expect blocked "$PA" "$v" 47
    done
    # Specific protocol rules: gre (47) by name, 253 by number.
    must e7 block gre "$PB"
    must e7 block 253 "$PU"
    expect_rule block gre "$PB"
    expect_rule block 253 "$PU"
    expect blocked "$PU" as-user "$NOBODY" "$PU" userns -n "$PB" raw4 47
    expect delivered "$PU" as-user "$NOBODY" "$PU" userns -n "$PB" raw6 253
    expect blocked "$PU" raw4 253
    expect delivered "$PU" raw4 254
    # `unkprot` is for packets no program owns: it does not decide an identified program's packets.
    must e7 set unkprot block
    expect delivered "$PU" as-user "$NOBODY" "$PU" userns -n "$PB" raw4 253
    # The rules survive save and restore with their protocol names and numbers.
    must e7 save /tmp/proto-rules.e7
    run grep -c -e '^block gre /opt/b/e7-probe$' -e '^block 253 /usr/bin/e7-probe$' /tmp/proto-rules.e7
    [ "$OUT" = 2 ] && ok "saved: gre and 253 rules" || fail "saved rules: $(short "$(cat /tmp/proto-rules.e7)")"
    must e7 clear
    must e7 run /tmp/proto-rules.e7
    expect_rule block 253 "$PU"
    expect blocked "$PU" raw4 253
}

# SCTP from an unprivileged user (on Debian it is autoloaded by the first socket; the guest has no module
# database, so the case loads sctp.ko and its dependencies, shipped in the initramfs by vm.sh).
# load_module NAME: insmod NAME.ko and what it needs from /e7/modules (vm.sh ships them in load order).
# A module the row's kernel does not build (listed in /e7/modules/absent by vm.sh) has nothing to test.
load_module() {
    grep -q "^$1 " /proc/modules && return 0
    [ -d "/sys/module/$1" ] && return 0 # built in
    if grep -qx "$1" /e7/modules/absent 2>/dev/null; then
        ok "this kernel is built without $1 (vm.sh: its CONFIG_ symbol is not set): nothing to test"
        return 1
    fi
    for m in $(cat /e7/modules/order); do
        grep -q "^$m " /proc/modules || insmod "/e7/modules/$m.ko" 2>/dev/null
        [ "$m" = "$1" ] && break
    done
    grep -q "^$1 " /proc/modules && return 0
    fail "$1.ko could not be loaded (in /e7/modules: $(ls /e7/modules 2>&1 | tr '\n' ' '))"
    return 1
}

case_any_sctp() {
    load_module sctp || return
    enforce
    for v in sctp4 sctp6; do expect delivered "$PU" as-user "$NOBODY" "$PA" "$v"; done
    must e7 block any "$PA"
    for v in sctp4 sctp6; do
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$v"
        expect delivered "$PU" as-user "$NOBODY" "$PB" "$v"
    done
    must e7 allow sctp "$PA"
    expect_rule allow sctp "$PA"
    expect delivered "$PU" as-user "$NOBODY" "$PA" sctp6
    must e7 set unkrule block
    must e7 clear
    expect blocked "$PU" as-user "$NOBODY" "$PB" sctp4
}
