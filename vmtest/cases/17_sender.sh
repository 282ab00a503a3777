# Who sent a packet, when "whoever holds a descriptor for the socket" is the wrong question (issue 7,
# holes #2 and #6): in task context the sender is the current task.

as_nobody() { "$PU" as-user "$NOBODY" "$@"; }

# io_uring: a socket registered with IORING_REGISTER_FILES and then close()d is in no fd table;
# IORING_OP_SEND + IOSQE_FIXED_FILE sends it inline (the submitting task) or from an io-wq worker
# thread (IOSQE_ASYNC). Before: no owner found -> unkproc -> delivered although `sendto` was blocked.
case_uring_fixed_file() {
    enforce
    must e7 block any "$PA"
    for v in uring4 uring6; do
        expect blocked "$PA" "$v"
        expect blocked "$PA" "$v" worker
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$v"
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$v" worker
        expect delivered "$PB" "$v"
        expect delivered "$PU" as-user "$NOBODY" "$PB" "$v" worker
    done
}

# A socket keeps no first sender's identity: the blocked program's connected UDP socket is inherited
# by an allowed program (fork + exec), which sends first; the blocked program's own send on the same
# socket must still be blocked (before: the allowed program's cached verdict carried it). And the other
# way round, the allowed program is not blocked by the verdict its child earned.
case_inherited_socket() {
    enforce
    must e7 block any "$PA"
    for v in inherit4 inherit6; do
        expect blocked "$PA" "$v" "$PB"
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$v" "$PB"
        expect delivered "$PB" "$v" "$PA"
        expect delivered "$PB" "$v" "$PB"
    done
}

# pidfd_getfd(2): the blocked program takes the allowed program's connected UDP socket (which already
# sent, so its verdict is cached) and sends on it: blocked (before: the allowed program's verdict
# carried it). The other way round, the allowed program's send on a socket the blocked one owns is
# delivered.
case_pidfd_getfd_socket() {
    enforce
    must e7 block any "$PA"
    for v in steal4 steal6; do
        expect blocked "$PA" "$v" "$PB"
        expect blocked "$PU" as-user "$NOBODY" "$PA" "$v" "$PB"
        expect delivered "$PB" "$v" "$PA"
        expect delivered "$PB" "$v" "$PB"
    done
}
