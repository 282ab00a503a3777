# File-less sockets that carry a user's traffic (issue 7 hole 3). An AF_SMC socket without RDMA/ISM devices
# falls back to TCP over its internal, kernel-created TCP socket (`clcsock`). That socket has no file
# until the fallback, so its first packets looked like a kernel socket's and their `unkproc` verdict was
# cached for the socket: all its traffic, after the fallback too, was delivered past a block rule. Now the
# clcsock is not cached before the fallback, and after it (SMC gives it the user socket's file) its packets
# are the program's.

# The listener is another program (`$PU sink4|sink6`, allowed), so only the SMC side's packets are judged.
case_smc_fallback() {
    load_module smc || return
    enforce
    must e7 allow any "$PU"
    for v in smc4 smc6; do expect delivered "$PU" as-user "$NOBODY" "$PA" "$v" "$PU"; done
    must e7 block any "$PA"
    for v in smc4 smc6; do
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$v" "$PU"
        expect delivered "$PU" as-user "$NOBODY" "$PB" "$v" "$PU"
    done
    # unkrule block: a program without a rule gets nothing through SMC either.
    must e7 set unkrule block
    expect blocked "$PU" as-user "$NOBODY" "$PB" smc4 "$PU"
    must e7 allow tcp "$PB"
    expect delivered "$PU" as-user "$NOBODY" "$PB" smc6 "$PU"
}

# MPTCP (built in, any user) carries a socket's traffic on subflow sockets the kernel creates itself. They
# are grafted onto the MPTCP socket (their sk_socket is the user's), so they are identified like it: not a
# hole, guarded here. unkproc=block would drop them if they were not.
case_mptcp_subflows() {
    enforce
    must e7 set unkproc block
    for v in mptcp4 mptcp6; do expect delivered "$PU" as-user "$NOBODY" "$PB" "$v"; done
    must e7 block any "$PB"
    for v in mptcp4 mptcp6; do
        E7_PROBE_TIMEOUT_MS=1500 expect blocked "$PU" as-user "$NOBODY" "$PB" "$v"
    done
}
