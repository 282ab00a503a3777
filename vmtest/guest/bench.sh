# The VM benchmark, guest side (sourced by /init with e7mode=bench; busybox ash). See vmtest/bench.sh.
#
# Rounds, in this order, each from a fresh insmod: off (module not loaded), disabled (loaded, 1001
# rules, mode disabled), cached (enforcing; the load generator has a rule, so every measured packet
# is a cached verdict), norule (enforcing; no rule for the load generator, an `e7 monitor`
# subscribed, so every packet takes the no-rule path with its pending event and squelch). Each
# round runs `e7-load udp` and `e7-load tcp` E7_BENCH_REPS times. Output lines (the host parses them):
#   E7BENCH mark <round> <kind> begin|end     (the host timestamps them: wall clock)
#   E7LOAD kind=... n=... ns=... outreq=...   (the load generator's figures: under -icount shift=0,
#                                             ns = guest instructions)
#   E7BENCH hook <round> <kind> outreq=N qpackets=M   (enforcing rounds: the hook saw every packet
#                                             iff M == N)
#   E7BENCH error <text>

LOAD=/usr/bin/e7-load
# BLOCK > 0: one more round, "blocklist": as "cached", plus BLOCK lines `block any / to 10.A.B.0/24`
# loaded with `e7 run` (its guest time is printed: `E7BENCH note blocklist ...`); needs a module whose
# qualified table holds them (10,000: `make -C crates/e7-kmod E7_FEATURES=blocklist`).
BLOCK=${e7benchblock:-0}
UDP_N=${e7benchudp:-20000}
TCP_N=${e7benchtcp:-500}
REPS=${e7benchreps:-3}

berr() { echo "E7BENCH error $*"; }

unload() { [ -d /sys/module/e7 ] && { rmmod e7 || berr "rmmod failed"; }; }

# fresh MODE RULE: reload the module, 1000 filler rules (+ the load generator's rule when RULE=yes).
fresh() {
    unload
    insmod "$E7_KO" || { berr "insmod failed"; return 1; }
    {
        _i=0
        while [ $_i -lt 1000 ]; do
            echo "allow udp /opt/filler/p$_i"
            _i=$((_i + 1))
        done
        [ "$2" = yes ] && echo "allow $LOAD"
        echo "set mode $1"
    } >/tmp/bench.e7
    e7 run /tmp/bench.e7 >/dev/null || { berr "e7 run /tmp/bench.e7 failed"; return 1; }
}

outreq() { awk '/^Ip: /{ if (h) { print $(c); exit } for (i = 1; i <= NF; i++) if ($i == "OutRequests") c = i; h = 1 }' /proc/net/snmp; }
qpackets() { e7 get qpackets | awk '{print $2}'; }

# measure ROUND CHECK: the udp and tcp loads; CHECK=yes compares OutRequests with qpackets.
measure() {
    for _kind in udp tcp; do
        _n=$UDP_N
        [ "$_kind" = tcp ] && _n=$TCP_N
        _r=0
        while [ $_r -lt "$REPS" ]; do
            [ "$2" = yes ] && { _o0=$(outreq); _q0=$(qpackets); }
            echo "E7BENCH mark $1 $_kind begin"
            $LOAD "$_kind" "$_n" || berr "$LOAD $_kind $_n failed in round $1"
            echo "E7BENCH mark $1 $_kind end"
            [ "$2" = yes ] && echo "E7BENCH hook $1 $_kind outreq=$(($(outreq) - _o0)) qpackets=$(($(qpackets) - _q0))"
            _r=$((_r + 1))
        done
    done
}

dmesg -c >/dev/null
echo
echo "E7BENCH info kernel $(uname -r), $(nproc) cpus"
$LOAD calib 50000000
unload
measure off no
fresh disabled yes && measure disabled no
fresh enabled yes && measure cached yes
if [ "$BLOCK" -gt 0 ] && fresh enabled yes; then
    _i=0
    while [ $_i -lt "$BLOCK" ]; do
        echo "block any / to 10.$((_i / 256)).$((_i % 256)).0/24"
        _i=$((_i + 1))
    done >/tmp/blocklist.e7
    _t0=$(cut -d' ' -f1 /proc/uptime)
    if e7 run /tmp/blocklist.e7 >/dev/null; then
        _t1=$(cut -d' ' -f1 /proc/uptime)
        _n=$(e7 --json query | tr -d ' \n' | sed -n 's/.*"count":\([0-9]*\).*/\1/p')
        echo "E7BENCH note blocklist: $BLOCK lines loaded with e7 run in $(awk "BEGIN{print $_t1 - $_t0}") s of guest time (-icount: 1 s = 10^9 guest instructions); the module holds $_n rules"
        # It blocks: a blocklisted destination (added to lo), for a program without a rule of its own.
        ip addr add 10.0.7.1/32 dev lo
        if /opt/a/e7-probe to udp 10.0.7.1 >/dev/null 2>&1; then
            berr "blocklist: 10.0.7.1 was not blocked"
        elif [ $? = 1 ]; then
            echo "E7BENCH note blocklist: udp to 10.0.7.1 (in 10.0.7.0/24) blocked"
        else
            berr "blocklist: the probe to 10.0.7.1 failed"
        fi
        ip addr del 10.0.7.1/32 dev lo
        measure blocklist yes
    else
        berr "e7 run /tmp/blocklist.e7 failed ($BLOCK lines)"
    fi
fi
if fresh enabled no; then
    e7 monitor --timeout 100000 >/dev/null 2>&1 &
    _mon=$!
    sleep 1
    measure norule yes
    kill $_mon 2>/dev/null
    wait $_mon 2>/dev/null
fi
unload
if dmesg | grep -Eq 'Oops|WARNING|BUG|Call Trace'; then
    berr "kernel log reports a problem"
    dmesg
fi
echo "E7BENCH done"
