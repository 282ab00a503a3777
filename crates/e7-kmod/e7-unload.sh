#!/bin/sh
# e7-unload.sh: unload the e7 module, or say exactly what holds it.
#
# Why this exists: a netlink dump pins the module that serves it (the kernel takes a module
# reference when the dump starts and drops it when the dump ends or its socket closes), and the
# reader decides when it ends. Any local user may ask for the rule list (QUERY), so any user can
# hold an unfinished dump open and make `rmmod e7` fail with "Module e7 is in use" for as long as
# the socket lives. The kernel offers a module no way to end another socket's dump, so e7 cannot
# prevent this; what an administrator does is find the socket and end its owner, which this
# script shows. Used by `make reload` and after `make install` / `make dkms`.
set -u

[ -d /sys/module/e7 ] || { echo "e7: not loaded"; exit 0; }
if rmmod e7 2>/dev/null; then
    echo "e7: unloaded"
    exit 0
fi
refs=$(cat /sys/module/e7/refcnt 2>/dev/null || echo '?')
echo "e7: cannot unload: the module is in use ($refs references)." >&2
# /proc/net/netlink columns: sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode.
# Eth 16 = generic netlink; Dump != 0: a dump is in progress on that socket.
found=0
for ino in $(awk 'NR > 1 && $2 == 16 && $7 != 0 { print $10 }' /proc/net/netlink 2>/dev/null); do
    for fd in /proc/[0-9]*/fd/*; do
        if [ "$(readlink "$fd" 2>/dev/null)" = "socket:[$ino]" ]; then
            pid=${fd#/proc/}
            pid=${pid%%/*}
            echo "e7:   pid $pid ($(cat "/proc/$pid/comm" 2>/dev/null), uid $(awk '/^Uid:/ { print $2 }' "/proc/$pid/status" 2>/dev/null)) holds an unfinished netlink dump (socket inode $ino)" >&2
            found=1
        fi
    done
done
if [ "$found" = 1 ]; then
    echo "e7: end those processes (kill PID), then run this again. A dump pins the module until its" >&2
    echo "e7: reader finishes it or closes the socket; the kernel gives e7 no way to end it." >&2
else
    echo "e7: no unfinished netlink dump found; another module or an open e7 client may hold it" >&2
    echo "e7: (lsmod | grep e7; ss -f netlink -p)." >&2
fi
exit 1
