# How the module identifies the program behind a packet, beyond the plain cases: dual-stack sockets,
# a binary deleted or replaced while it runs, and network namespaces other than the initial one.

# An AF_INET6 socket sending to ::ffff:127.0.0.1 emits IPv4 packets; the program is still identified.
case_dualstack_mapped() {
    enforce
    must e7 block any "$PA"
    expect blocked "$PA" udp4m
    expect blocked "$PA" tcp4m
    expect delivered "$PB" udp4m
    expect delivered "$PB" tcp4m
    must e7 clear
    must e7 set unkrule block
    must e7 allow udp /opt/b/
    expect delivered "$PB" udp4m
    expect blocked "$PA" udp4m
}

# Starts /opt/del/e7-probe held at a gate, runs MUTATION (a shell command) on its file while it runs, then
# releases it: its exchange must end with exit code WANT (0 delivered, 1 blocked).
gated_probe_after() { # WANT PROTO LABEL MUTATION
    rm -f /tmp/gate
    /opt/del/e7-probe after /tmp/gate "$2" >/tmp/del.out 2>&1 &
    p=$!
    wait_exe "$p" /opt/del/e7-probe || fail "/opt/del/e7-probe did not start"
    eval "$4"
    touch /tmp/gate
    wait "$p"
    rc=$?
    [ "$rc" = "$1" ] && ok "$3: $(cat /tmp/del.out)" \
        || fail "$3 (/opt/del/e7-probe): rc $rc, want $1: $(short "$(cat /tmp/del.out)")"
}

# The kernel names a deleted executable "<path> (deleted)"; the suffix is stripped, so the rules for the
# path still apply to a program whose file was removed or replaced after it started.
case_deleted_binary() {
    mkdir -p /opt/del
    enforce
    must e7 block udp /opt/del/e7-probe
    cp "$PU" /opt/del/e7-probe
    gated_probe_after 1 udp4 "deleted binary still blocked" 'rm /opt/del/e7-probe'
    # Replaced by another file (an upgrade): same.
    cp "$PU" /opt/del/e7-probe
    gated_probe_after 1 udp6 "replaced binary still blocked" \
        'cp "$PU" /opt/del/e7-probe.new && mv /opt/del/e7-probe.new /opt/del/e7-probe'
    # And an allow rule keeps allowing it.
    must e7 clear
    must e7 set unkrule block
    must e7 allow any /opt/del/e7-probe
    gated_probe_after 0 udp4 "deleted binary still allowed" 'rm /opt/del/e7-probe'
}

# The hooks are registered in every network namespace: a program in a fresh netns is filtered by the same
# rules (the control family itself is init_net only).
case_netns_hooks() {
    enforce
    must e7 block any "$PA"
    cat >/tmp/inns.sh <<X
export E7_PROBE_TIMEOUT_MS=2000
ip link set lo up
echo "0 2147483647" >/proc/sys/net/ipv4/ping_group_range
for p in udp4 udp6 tcp4 icmp4; do
    $PA \$p; echo "a \$p rc=\$?"
    $PB \$p; echo "b \$p rc=\$?"
done
X
    run unshare -n sh /tmp/inns.sh
    note "in a new netns: $(short "$OUT")"
    for p in udp4 udp6 tcp4 icmp4; do
        printf '%s\n' "$OUT" | grep -q "^a $p rc=1" && ok "netns: a $p blocked" || fail "netns: a $p not blocked: $(short "$OUT")"
        printf '%s\n' "$OUT" | grep -q "^b $p rc=0" && ok "netns: b $p delivered" || fail "netns: b $p not delivered: $(short "$OUT")"
    done
}

# IPv6 extension headers: the module must walk them to find the transport protocol. With a Destination
# Options header in front, UDP is still UDP (without the walk the packet would look like protocol 60 and
# fall under `unkprot`).
case_ipv6_exthdr() {
    enforce
    must e7 set unkprot allow
    must e7 block udp "$PA"
    expect blocked "$PA" udp6x
    expect delivered "$PB" udp6x
    must e7 clear
    must e7 set unkrule block
    must e7 allow udp "$PB"
    expect delivered "$PB" udp6x
    expect blocked "$PA" udp6x
}
