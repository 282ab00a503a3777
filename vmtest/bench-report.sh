#!/usr/bin/env bash
# Turns a VM benchmark log (vmtest/bench.sh; each line "HOST-TIME SERIAL-LINE") into the table of
# benches/README.md. Fails when the guest reported an error, the instruction clock is not 1 ns per
# instruction, the hook missed a packet (module qpackets < kernel OutRequests), or a round is missing.
set -euo pipefail
if [ $# != 1 ] || [ ! -f "$1" ]; then echo "usage: bench-report.sh LOG" >&2; exit 2; fi
awk '
function min_add(key, v) { if (!(key in best) || v < best[key]) best[key] = v }
{ t = $1; $1 = ""; sub(/^ /, "") }
/^E7BENCH info / { sub(/^E7BENCH info /, ""); info = $0 }
/^E7BENCH note / { sub(/^E7BENCH note /, ""); notes = notes "\n" $0 }
/^E7BENCH error / { err = err "\n  " $0 }
/^E7BENCH done/ { done = 1 }
/^E7BENCH mark / {
    if ($5 == "begin") t0 = t
    else { w = t - t0; k = $3 " " $4; if (!(k in wall) || w < wall[k]) wall[k] = w }
    round = $3; kind = $4; next
}
/^E7BENCH hook / {
    split($5, a, "="); split($6, b, "=")
    hooks++
    # Every packet that left passed the hook: qpackets >= OutRequests (a packet e7 dropped, e.g. a
    # softirq miss deferred to the refill work, is decided but never counted as sent).
    if (b[2] < a[2]) { err = err "\n  hook missed packets: " $0 }
    if (b[2] > a[2]) dropped += b[2] - a[2]
    if (a[2] == 0) { err = err "\n  no packets counted: " $0 }
    next
}
/^E7LOAD / {
    delete f
    for (i = 2; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    if (f["kind"] == "calib") { calib = f["ns_per_instr"]; next }
    min_add(round " " f["kind"], f["ns"] / f["n"])
    pkts[f["kind"]] = f["outreq"] / f["n"]
}
END {
    if (!done) err = err "\n  the guest did not finish (no E7BENCH done)"
    if (calib == "" || calib < 0.995 || calib > 1.005) err = err "\n  instruction clock: " calib " ns per instruction, want 1.000"
    split("off disabled cached norule", rounds, " ")
    for (r = 1; r <= 4; r++) for (k = 1; k <= 2; k++) {
        kk = (k == 1 ? "udp" : "tcp")
        if (!((rounds[r] " " kk) in best)) err = err "\n  no figure for round " rounds[r] " " kk
    }
    printf "VM benchmark: %s; instruction clock %.4f ns/instr (want 1); hook saw every packet in %d runs (%d decided but dropped); %.1f IPv4 packets per TCP connection\n\n", info, calib, hooks, dropped, pkts["tcp"]
    print "| round | UDP send (instr) | added per packet | TCP connection (instr) | added per connection | wall UDP / off | wall TCP / off |"
    print "|---|---:|---:|---:|---:|---:|---:|"
    name["off"] = "module not loaded"; name["disabled"] = "loaded, `mode disabled`"
    name["cached"] = "enforcing, cached verdict (allowed)"; name["norule"] = "enforcing, no rule (events + squelch)"
    # The optional round (E7_BENCH_BLOCK): listed when it ran.
    nr = 4
    if (("blocklist udp") in best) { rounds[5] = "blocklist"; nr = 5; name["blocklist"] = "enforcing, cached verdict, with the blocklist" }
    for (r = 1; r <= nr; r++) {
        n = rounds[r]
        u = best[n " udp"]; c = best[n " tcp"]
        printf "| %s | %.0f | %s | %.0f | %s | %.2f | %.2f |\n", name[n], u, (n == "off" ? "" : sprintf("%+.0f", u - best["off udp"])), \
            c, (n == "off" ? "" : sprintf("%+.0f", c - best["off tcp"])), \
            wall[n " udp"] / wall["off udp"], wall[n " tcp"] / wall["off tcp"]
    }
    if (notes != "") print notes
    if (err != "") { print "\nbench: FAIL:" err; exit 1 }
}' "$1"
