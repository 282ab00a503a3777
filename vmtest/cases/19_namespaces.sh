# A borrowed identity through a mount namespace or a chroot (issue 7 hole 4). `d_path` answers in the
# sender's mount namespace and root, so a program bind-mounted over an allowed path in a private mount
# namespace (any user on Debian: `unshare -r -m`), or placed at an allowed path inside a chroot, was
# delivered under that path's allow rule. Now a program's identity is the path of its executable in the
# initial mount namespace and root, verified (same inode); one without such a path gets `nspath`.

# uid 65534 in its own user + mount namespace: /opt/b/e7-probe bind-mounted over /opt/a/e7-probe.
case_borrowed_identity_mountns() {
    enforce block
    must e7 allow any "$PA"
    expect delivered "$PU" as-user "$NOBODY" "$PA" udp4
    for p in udp4 udp6 tcp4; do
        E7_PROBE_TIMEOUT_MS=2500 expect blocked "$PU" as-user "$NOBODY" "$PU" userns -m "$PB" "$PA" "$PA" "$p"
    done
    # A folder rule is no way around it either.
    must e7 allow any /opt/
    expect blocked "$PU" as-user "$NOBODY" "$PU" userns -m "$PB" "$PA" "$PA" udp6
    # `nspath` alone decides such a program (no path rule can block or allow it). Its first packet
    # waits for the verification like any unverified image's (dropped as deferred; TCP retransmits).
    must e7 set nspath allow
    expect_flag nspath allow
    must e7 block any "$PA"
    must e7 block any /opt/
    E7_PROBE_TIMEOUT_MS=4000 expect delivered "$PU" as-user "$NOBODY" "$PU" userns -m "$PB" "$PA" "$PA" tcp4
    must e7 set nspath block
    must e7 clear
    # The real program in a private mount namespace keeps its identity once its path is verified (the
    # first SYN waits for the verification; TCP retransmits it).
    must e7 allow tcp "$PA"
    E7_PROBE_TIMEOUT_MS=4000 expect delivered "$PU" as-user "$NOBODY" "$PU" userns -M "$PA" tcp4
    E7_PROBE_TIMEOUT_MS=2500 expect blocked "$PU" as-user "$NOBODY" "$PU" userns -M "$PB" tcp4
}

# A chroot (root) whose tree has another program at an allowed path: it is known by its real path.
case_borrowed_identity_chroot() {
    enforce block
    rm -rf /tmp/jail
    mkdir -p /tmp/jail/opt/a
    cp "$PB" /tmp/jail/opt/a/e7-probe
    must e7 allow any "$PA"
    expect delivered "$PA" udp4
    for p in udp4 udp6 tcp4; do
        E7_PROBE_TIMEOUT_MS=2500 expect blocked chroot /tmp/jail /opt/a/e7-probe "$p"
    done
    # A rule for its real path applies (TCP: the first SYN waits for the path verification).
    must e7 allow tcp /tmp/jail/opt/a/e7-probe
    E7_PROBE_TIMEOUT_MS=4000 expect delivered chroot /tmp/jail /opt/a/e7-probe tcp4
    rm -rf /tmp/jail
}
