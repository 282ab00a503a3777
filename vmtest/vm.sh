#!/usr/bin/env bash
# e7 VM harness, host side. Subcommands (the Makefile calls them; each can be run alone):
#   kernel      fetch the row's kernel image into .vm/ (apt-get download + dpkg -x; never installed)
#   build       build e7.ko for the row's kernel, a static e7 and a static e7-probe
#   initramfs   assemble .vm/initramfs-ROW.cpio.gz (busybox-static, module, binaries, guest scripts, cases)
#   test        boot the VM, run the cases, parse the serial log, exit non-zero on any failure
#   demo        boot the VM with the module loaded and `e7 shell` on the console (interactive)
#   demo-check  the demo driven through a FIFO: type commands and `quit`, expect answers and a power-off
#   all         kernel + build + initramfs + test + demo-check (what `make -C vmtest test` runs; with
#               E7_CASES set, only the named cases and no demo-check)
#   list        list the case names
#   matrix      `all` (every case + demo-check) on every row of the kernel matrix (krow.sh rows), one after
#               the other, whatever fails; prints the versions that ran and writes the supported-kernels
#               table (vmtest/supported-kernels.md, shown in the README); fails if any row failed
# Environment: E7_KROW=6.1|6.12|6.12-rt|sid (the kernel row, default 6.1; see krow.sh; `make ... KROW=`),
#   E7_CASES="a b" (run only these cases), E7_VM_ACCEL=tcg|kvm (else autodetect), E7_QEMU (the emulator:
#   default bookworm-backports' QEMU, krow.sh qemu),
#   E7_VM_TIMEOUT (seconds for the whole boot, default 900), E7_CASE_TIMEOUT (per case in the guest, default 150),
#   E7_KVER (kernel ABI of the row, default: the newest, krow.sh version), E7_VM_SMP / E7_VM_MEM (default 2 /
#   the row's, see row_mem),
#   E7_KMOD_PREBUILT=1 (use crates/e7-kmod/e7.ko as it is, do not run its make),
#   E7_VM_ALLOW_MISSING=1 (build the initramfs even if e7.ko or the e7 CLI cannot be built yet: the cases that
#   need them then fail, which is how the harness itself was proven before the module existed).
set -euo pipefail

VMTEST="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$VMTEST/.." && pwd)"
VM="$ROOT/.vm"
KMOD="$ROOT/crates/e7-kmod"
TRIPLE=x86_64-unknown-linux-gnu
CARGO="${CARGO:-cargo}"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
BIN_DIR="$TARGET_DIR/$TRIPLE/release"
# Static, and non-PIE: a static-pie binary relocates itself at every start, touching most of its pages, and
# under TCG those copy-on-write faults cost ~100 ms per `e7` run (measured: e7 get mode 118 ms as static-pie,
# 24 ms non-PIE). The cases start e7 hundreds of times.
STATIC_RUSTFLAGS="-C target-feature=+crt-static -C relocation-model=static"

log() { printf 'vmtest: %s\n' "$*" >&2; }
die() { printf 'vmtest: error: %s\n' "$*" >&2; exit 1; }

ROW="${E7_KROW:-6.1}"
ALL_ROWS="$("$VMTEST/krow.sh" rows | xargs)"
case " $ALL_ROWS " in *" $ROW "*) ;; *) die "E7_KROW must be one of: $ALL_ROWS; got '$ROW'" ;; esac
INITRAMFS="$VM/initramfs-$ROW.cpio.gz"

kver() { "$VMTEST/krow.sh" version "$ROW"; }

# The guest's memory per row (MiB), the one place to raise it for a kernel that needs more. Measured: 512 MiB
# runs every row (boot_smoke, full_table_1024, storm_attribution pass on sid and 6.12-rt with 512; MemTotal
# in the guest ≈ 470 MB on 6.12-rt and sid).
row_mem() {
    case "$1" in
        *) echo 512 ;;
    esac
}

# --- kernel -------------------------------------------------------------------------------------------
# Prints the path of the row's extracted vmlinuz (krow.sh image: cached under .vm/kernel/KVER/, with its
# config next to it).
cmd_kernel() {
    "$VMTEST/krow.sh" image "$ROW" || die "row $ROW: no kernel image (see the krow error above)"
}

# --- build --------------------------------------------------------------------------------------------
cmd_build() {
    local missing=0
    # The module variant with a qualified table for a 10,000-line blocklist (E7_FEATURES=blocklist), for
    # the case qual_blocklist_10k: built first (the plain build below then leaves the tree as it was),
    # for a whole run or when E7_CASES names that case.
    rm -f "$VM/e7-blocklist.ko"
    case " ${E7_CASES:-qual_blocklist_10k} " in
    *" qual_blocklist_10k "*)
        if [ "${E7_VM_VARIANTS:-0}" = 1 ] && [ "${E7_KMOD_PREBUILT:-0}" != 1 ] && [ -f "$KMOD/Makefile" ]; then
            log "building the blocklist variant of e7.ko for row $ROW (make -C crates/e7-kmod KROW=$ROW E7_FEATURES=blocklist)"
            if make -C "$KMOD" KROW="$ROW" E7_FEATURES=blocklist >"$VM/kmod-build-blocklist.log" 2>&1; then
                cp "$KMOD/e7.ko" "$VM/e7-blocklist.ko"
            else
                tail -n 40 "$VM/kmod-build-blocklist.log" >&2
                die "blocklist module build failed (full log: .vm/kmod-build-blocklist.log)"
            fi
        fi
        ;;
    esac
    if [ "${E7_KMOD_PREBUILT:-0}" = 1 ] && [ -f "$KMOD/e7.ko" ]; then
        log "using the existing crates/e7-kmod/e7.ko (E7_KMOD_PREBUILT=1, not rebuilt)"
    elif [ -f "$KMOD/Makefile" ]; then
        log "building e7.ko for row $ROW (make -C crates/e7-kmod KROW=$ROW)"
        if ! make -C "$KMOD" KROW="$ROW" >"$VM/kmod-build.log" 2>&1; then
            tail -n 40 "$VM/kmod-build.log" >&2
            [ "${E7_VM_ALLOW_MISSING:-0}" = 1 ] || die "module build failed (full log: .vm/kmod-build.log)"
            missing=1
        fi
    else
        [ "${E7_VM_ALLOW_MISSING:-0}" = 1 ] || die "crates/e7-kmod/Makefile does not exist yet"
        log "WARNING: no crates/e7-kmod/Makefile; building the VM without e7.ko"
        missing=1
    fi
    log "building static e7 and e7-probe (--target $TRIPLE, crt-static, non-PIE, target dir $TARGET_DIR)"
    if ! RUSTFLAGS="$STATIC_RUSTFLAGS" "$CARGO" build --release --target "$TRIPLE" \
        -p e7-probe --manifest-path "$ROOT/Cargo.toml" >"$VM/probe-build.log" 2>&1; then
        tail -n 40 "$VM/probe-build.log" >&2
        die "e7-probe build failed (.vm/probe-build.log)"
    fi
    if ! RUSTFLAGS="$STATIC_RUSTFLAGS" "$CARGO" build --release --target "$TRIPLE" \
        -p e7-cli --manifest-path "$ROOT/Cargo.toml" >"$VM/cli-build.log" 2>&1; then
        tail -n 40 "$VM/cli-build.log" >&2
        [ "${E7_VM_ALLOW_MISSING:-0}" = 1 ] || die "e7 CLI build failed (.vm/cli-build.log)"
        log "WARNING: e7 CLI build failed; continuing without it"
        missing=1
    fi
    [ "$missing" = 0 ] || log "WARNING: some artifacts are missing; cases that need them will fail"
}

# An ELF without a program interpreter is statically linked (readelf comes with binutils, which the module
# build needs anyway; `file` is not installed everywhere).
is_static() {
    local hdr
    hdr="$(readelf -lW "$(readlink -f "$1")" 2>/dev/null)" || return 1
    [ -n "$hdr" ] && ! grep -q 'program interpreter' <<<"$hdr"
}

# --- initramfs ----------------------------------------------------------------------------------------
cmd_initramfs() {
    local st="$VM/initramfs" bb f
    rm -rf "$st"
    mkdir -p "$st"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,tmp,run,root,e7/cases,opt/a,opt/b}
    bb="$(command -v busybox || true)"
    [ -n "$bb" ] && is_static "$bb" || bb=/bin/busybox
    is_static "$bb" || die "need a static busybox (apt-get install busybox-static); $bb is not static"
    cp "$bb" "$st/bin/busybox"
    ln -s busybox "$st/bin/sh"
    install -m 0755 "$VMTEST/guest/init" "$st/init"
    install -m 0644 "$VMTEST/guest/lib.sh" "$VMTEST/guest/runner.sh" "$VMTEST/guest/run-case.sh" \
        "$VMTEST/guest/reset.e7" "$st/e7/"
    for f in "$VMTEST"/cases/*.sh; do install -m 0644 "$f" "$st/e7/cases/"; done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$st/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$st/etc/group"
    if [ -f "$BIN_DIR/e7-probe" ]; then
        is_static "$BIN_DIR/e7-probe" || die "$BIN_DIR/e7-probe is not statically linked"
        # Three copies = three different programs to the firewall (the long-path copy is made at boot).
        install -m 0755 "$BIN_DIR/e7-probe" "$st/usr/bin/e7-probe"
        install -m 0755 "$BIN_DIR/e7-probe" "$st/opt/a/e7-probe"
        install -m 0755 "$BIN_DIR/e7-probe" "$st/opt/b/e7-probe"
    else
        die "no $BIN_DIR/e7-probe (run: vm.sh build)"
    fi
    if [ -f "$BIN_DIR/e7" ]; then
        is_static "$BIN_DIR/e7" || die "$BIN_DIR/e7 is not statically linked"
        install -m 0755 "$BIN_DIR/e7" "$st/bin/e7"
    else
        log "WARNING: no $BIN_DIR/e7 in the initramfs"
    fi
    if [ -f "$KMOD/e7.ko" ]; then
        # Debug info is 95% of the .ko; the guest does not need it.
        strip --strip-debug -o "$st/e7/e7.ko" "$KMOD/e7.ko"
        [ ! -f "$VM/e7-blocklist.ko" ] || strip --strip-debug -o "$st/e7/e7-blocklist.ko" "$VM/e7-blocklist.ko"
        install -m 0755 "$KMOD/e7-unload.sh" "$st/e7/"
    else
        log "WARNING: no crates/e7-kmod/e7.ko in the initramfs"
    fi
    if [ -f "$st/e7/e7.ko" ]; then
        local vm want
        vm="$(modinfo -F vermagic "$st/e7/e7.ko" | awk '{print $1}')"
        want="$(kver)"
        [ "$vm" = "$want" ] || die "crates/e7-kmod/e7.ko is built for $vm, row $ROW boots $want (rebuild: vm.sh build)"
    fi
    initramfs_modules "$st" sctp:IP_SCTP smc:SMC
    (cd "$st" && find . -print0 | sort -z | cpio --null -o -H newc --owner 0:0 --quiet) | gzip -1 >"$INITRAMFS"
    local cases=("$st"/e7/cases/*.sh)
    log "initramfs: $(du -h "$INITRAMFS" | cut -f1) (${#cases[@]} case files, $(cmd_list | wc -l) cases, row $ROW)"
}

# initramfs_modules STAGE NAME:CONFIG...: each module NAME.ko and the modules it depends on, from the row's
# kernel package (krow.sh modules), into STAGE/e7/modules/ with their load order in `order` (cases any_sctp,
# smc_fallback: the guest has no modprobe database, so the cases insmod them in that order). A module whose
# CONFIG_ symbol the row's kernel does not set (sid has no SMC) is listed in `absent`, and its case says so.
initramfs_modules() {
    local st="$1" name sym dir m cfg
    shift
    cfg="$VM/kernel/$(kver)/config-$(kver)"
    mkdir -p "$st/e7/modules"
    : >"$st/e7/modules/order"
    : >"$st/e7/modules/absent"
    for name in "$@"; do
        sym="${name#*:}"
        name="${name%%:*}"
        if [ -f "$cfg" ] && ! grep -q "^CONFIG_$sym=[my]" "$cfg"; then
            log "row $ROW: CONFIG_$sym is not set: no $name.ko (its case reports it)"
            echo "$name" >>"$st/e7/modules/absent"
            continue
        fi
        grep -q "^CONFIG_$sym=y" "$cfg" 2>/dev/null && continue
        dir="$("$VMTEST/krow.sh" modules "$ROW" "$name")" || die "row $ROW: no $name.ko (see the krow error above)"
        while read -r m; do
            grep -qx "$m" "$st/e7/modules/order" && continue
            strip --strip-debug -o "$st/e7/modules/$m.ko" "$dir/$m.ko"
            echo "$m" >>"$st/e7/modules/order"
        done <"$dir/order"
    done
}

# --- qemu ---------------------------------------------------------------------------------------------
# KVM only when it can really run a stock kernel: /dev/kvm usable AND a VMX/SVM module loaded. Some hosts
# (this project's dev machines) expose /dev/kvm through kvm_pvm, which hangs on a normal kernel.
pick_accel() {
    case "${E7_VM_ACCEL:-}" in
        kvm | tcg) echo "$E7_VM_ACCEL"; return ;;
        "") ;;
        *) die "E7_VM_ACCEL must be kvm or tcg, got '$E7_VM_ACCEL'" ;;
    esac
    if [ -r /dev/kvm ] && [ -w /dev/kvm ] && { [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]; }; then
        echo kvm
    else
        echo tcg
    fi
}

# The emulator (krow.sh qemu: bookworm-backports' QEMU, not Debian 12's 7.2, whose multi-threaded TCG can run
# stale code after the guest kernel patches its own; see there). Resolved once; E7_QEMU overrides (a path
# or a command name, e.g. E7_QEMU=qemu-system-x86_64 for the machine's own).
QEMU_BIN=""
qemu_bin() {
    if [ -z "$QEMU_BIN" ]; then
        QEMU_BIN="${E7_QEMU:-$("$VMTEST/krow.sh" qemu)}" || die "no emulator (krow.sh qemu failed, see above; E7_QEMU=qemu-system-x86_64 uses this machine's)"
        log "emulator: $QEMU_BIN ($("$QEMU_BIN" --version | head -n1))"
    fi
}

# "QEMU 10.0.2" (the emulator's version, for the matrix table).
qemu_version() {
    qemu_bin
    "$QEMU_BIN" --version | head -n1 | awk '{print "QEMU " $4}'
}

qemu_args() { # $1 = vmlinuz, $2 = extra kernel cmdline
    local accel
    accel="$(pick_accel)"
    if [ "$accel" = kvm ]; then
        echo "-enable-kvm -cpu host"
    else
        echo "-accel tcg -cpu max"
    fi
    echo "-m ${E7_VM_MEM:-$(row_mem "$ROW")} -smp ${E7_VM_SMP:-2} -nographic -no-reboot -kernel $1 -initrd $INITRAMFS"
}

cmdline_base="console=ttyS0 panic=-1 panic_on_warn=1 loglevel=${E7_VM_LOGLEVEL:-4}"

cmd_test() {
    local vmlinuz accel cases logdir logf start rc timeout_s
    vmlinuz="$(cmd_kernel)"
    qemu_bin
    [ -f "$INITRAMFS" ] || die "no ${INITRAMFS#"$ROOT"/} (run: E7_KROW=$ROW vm.sh initramfs)"
    accel="$(pick_accel)"
    cases="$(echo "${E7_CASES:-all}" | tr ' ,' '::' | sed 's/^:*//; s/:*$//')"
    logdir="$VM/logs"
    mkdir -p "$logdir"
    logf="$logdir/vmtest-$ROW-$(date +%Y%m%d-%H%M%S).log"
    timeout_s="${E7_VM_TIMEOUT:-900}"
    log "booting $(basename "$vmlinuz") under $accel (timeout ${timeout_s}s, cases: ${cases//:/ }); serial log: $logf"
    start=$(date +%s)
    local attempt
    for attempt in 1 2; do
        rc=0
        # shellcheck disable=SC2046
        timeout -k 5 "$timeout_s" "$QEMU_BIN" $(qemu_args "$vmlinuz") \
            -append "$cmdline_base e7mode=test e7cases=$cases e7casetimeout=${E7_CASE_TIMEOUT:-150}" \
            </dev/null >"$logf" 2>&1 || rc=$?
        # A boot that ended before the runner's first line never loaded e7.ko (the runner prints that
        # line, then loads it): the row's stock kernel or the emulator failed, not e7. Booted once more,
        # said loudly, with what the failed boot printed kept next to the log. Anything later is e7's.
        if [ "$attempt" = 2 ] || [ "$rc" = 124 ] || grep -aq '^E7INFO kernel ' "$logf"; then break; fi
        boot_again "$logf" "the guest ended (qemu exit $rc) before the test runner started"
    done
    ln -sf "$(basename "$logf")" "$logdir/latest.log"
    ln -sf "$(basename "$logf")" "$logdir/latest-$ROW.log"
    local wall=$(($(date +%s) - start)) prc=0
    "$VMTEST/parse-log.sh" "$logf" "$rc" "$wall" || prc=$?
    check_booted "$logf" || prc=1
    return "$prc"
}

# boot_again LOG WHY: the one retry of `test` and `demo-check`, for a guest that died before e7.ko was
# loaded (WHY says how that is known): a WARNING (the matrix table marks the row "a boot retried" from
# it) with what the failed boot printed (its panic, oops, warning or qemu error lines, then its last
# lines), and the log kept as LOG.boot1 for the next boot to write LOG.
boot_again() {
    log "WARNING: row $ROW: $2, so before e7.ko was loaded; booting again. The failed boot's log:" \
        "$1.boot1; its last lines:"
    { tr -d '\r' <"$1" | grep -aE 'Kernel panic|Oops|WARNING|BUG|qemu' | head -n 5
      tr -d '\r' <"$1" | grep -av '^$' | tail -n 12; } | sed 's/^/    | /' >&2
    mv "$1" "$1.boot1"
}

# check_booted LOG: the guest really ran the row's kernel (the banner in the dumped kernel log names the
# release, and for an -rt row PREEMPT_RT), so a mix-up of images cannot pass as another row.
check_booted() {
    local kv banner
    kv="$(kver)"
    banner="$(tr -d '\r' <"$1" | grep -a -m1 "Linux version $kv " || true)"
    if [ -z "$banner" ]; then
        if grep -aq '^E7INFO dmesg-end' "$1"; then
            echo "vmtest: FAIL: row $ROW: the kernel log has no 'Linux version $kv' banner (wrong kernel booted?)"
        else
            echo "vmtest: FAIL: row $ROW: cannot confirm the booted kernel (the guest never dumped its kernel log)"
        fi
        return 1
    fi
    case "$kv" in
        *-rt-*) grep -q PREEMPT_RT <<<"$banner" || { echo "vmtest: FAIL: row $ROW: $kv booted without PREEMPT_RT: $banner"; return 1; } ;;
    esac
    echo "vmtest: row $ROW booted: ${banner#*Linux version }"
}

cmd_demo() {
    local vmlinuz
    vmlinuz="$(cmd_kernel)"
    qemu_bin
    [ -f "$INITRAMFS" ] || die "no ${INITRAMFS#"$ROOT"/} (run: E7_KROW=$ROW vm.sh initramfs)"
    echo "e7 demo: booting a throwaway VM ($(pick_accel)). The e7 console comes up with three programs"
    echo "  sending in the background; type e7 commands (help, set mode enabled, query,"
    echo "  block udp /opt/a/e7-probe ...). '!' opens a shell in the VM to run programs and e7"
    echo "  commands ('exit' returns to the console), '!CMD' runs one command. 'quit' or Ctrl-D"
    echo "  powers the VM off (Ctrl-A x kills qemu)."
    # The serial console cannot tell the guest this terminal's size: pass it (`e7 top` needs it).
    local size="" rows cols
    if read -r rows cols < <(stty size 2>/dev/null) && [ "${rows:-0}" -gt 0 ] && [ "${cols:-0}" -gt 0 ]; then
        size=" e7rows=$rows e7cols=$cols"
    fi
    # shellcheck disable=SC2046
    exec "$QEMU_BIN" $(qemu_args "$vmlinuz") -append "$cmdline_base quiet e7mode=demo$size"
}

# Drives the demo like a user would, through a FIFO on qemu's stdin, and proves that it shows enforcement
# live: no event while the mode is disabled; after `set mode enabled` pending events of the three background
# sources within seconds; after `block udp /opt/a/e7-probe` block events for it while the others go on, and its
# own tally (read back with the console's `!cat`) counts only blocked sends; after `clear` it delivers again;
# `quit` powers off. Every wait is for a line, bounded by a timeout (TCG is slow), never a fixed sleep.
cmd_demo_check() {
    local vmlinuz fifo logf qpid i rc=0 start
    vmlinuz="$(cmd_kernel)"
    qemu_bin
    [ -f "$INITRAMFS" ] || die "no ${INITRAMFS#"$ROOT"/} (run: E7_KROW=$ROW vm.sh initramfs)"
    fifo="$VM/demo.in"
    logf="$VM/logs/demo-check-$ROW.log"
    mkdir -p "$VM/logs"
    rm -f "$fifo"
    mkfifo "$fifo"
    exec 3<>"$fifo"
    # Emptied first: the wait for the prompt below must not find the previous run's (qemu's redirection
    # happens in the background job, after that wait may have started).
    : >"$logf"
    start=$(date +%s)
    local attempt
    for attempt in 1 2; do
        # shellcheck disable=SC2046
        timeout -k 5 "${E7_VM_TIMEOUT:-900}" "$QEMU_BIN" $(qemu_args "$vmlinuz") \
            -append "$cmdline_base quiet e7mode=demo" <"$fifo" >"$logf" 2>&1 &
        qpid=$!
        for ((i = 0; i < 600; i++)); do
            grep -aq 'e7> ' "$logf" 2>/dev/null && break
            kill -0 "$qpid" 2>/dev/null || break
            sleep 0.5
        done
        # As in `test`: a guest gone before /init's first demo line (printed before e7.ko is loaded)
        # failed in the row's kernel or the emulator; booted once more, loudly.
        if [ "$attempt" = 2 ] || kill -0 "$qpid" 2>/dev/null || grep -aq 'e7 demo: booted' "$logf"; then break; fi
        wait "$qpid" || true
        boot_again "$logf" "the demo guest ended before /init started"
        : >"$logf"
    done
    local booted=$(($(date +%s) - start)) fail="" retries=0
    # The console as lines: carriage returns end lines too (the line editor redraws its prompt after an
    # event with one), terminal escapes removed.
    console() { tr '\r' '\n' <"$logf" | sed 's/\x1b\[[0-9;?]*[a-zA-Z]//g'; }
    # last_line RE: the number of the last console line starting with RE (0: none).
    last_line() { console | grep -an "^$1" | tail -n1 | cut -d: -f1 | grep . || echo 0; }
    # wait_after N RE SECS: wait until a line starting with RE appears after line N; fails after SECS.
    wait_after() {
        local end=$(($(date +%s) + $3))
        while [ "$(last_line "$2")" -le "$1" ]; do
            [ "$(date +%s)" -lt "$end" ] && kill -0 "$qpid" 2>/dev/null || return 1
            sleep 0.25
        done
    }
    # say LINE ANSWER-RE: type LINE until a line starting with ANSWER-RE appears after it. Now and then the
    # first bytes written into this FIFO never reach the guest's serial port (a host/qemu-side loss: the
    # guest's /proc/tty/driver/serial rx count is short by exactly those bytes); every line typed here is
    # idempotent, so it is retyped (up to four times) and counted.
    say() {
        local before tries
        before=$(last_line "$2")
        for ((tries = 1; tries <= 4; tries++)); do
            printf '%s\n' "$1" >&3
            wait_after "$before" "$2" 6 && return 0
            retries=$((retries + 1))
        done
        fail="${fail:-no answer $2 to: $1}"
        return 1
    }
    # tally PROG FIELD: FIELD (rounds, delivered, blocked, errors, last) of PROG's newest tally line on the
    # console (e7-probe beat writes `PROG PROTO: rounds=N delivered=D blocked=B errors=E last=WORD`).
    tally() { console | grep -a "^$1 [a-z0-9]*: rounds=" | tail -n1 | sed -n "s/.* $2=\([a-z0-9]*\).*/\1/p"; }
    # read_tally NAME PROG: show the source's tally file on the console (`!cat`), wait for the new line.
    local dir
    dir="$(sed -n 's/^E7_DEMO_DIR=//p' "$VMTEST/guest/lib.sh")"
    read_tally() { say "!cat $dir/$1" "$2 [a-z0-9]*: rounds="; }
    # until_tally NAME PROG FIELD MIN SECS: read the tally until FIELD >= MIN; fails after SECS.
    until_tally() {
        local end=$(($(date +%s) + $5)) v
        while :; do
            read_tally "$1" "$2" || return 1
            v="$(tally "$2" "$3")"
            [ "${v:-0}" -ge "$4" ] && return 0
            [ "$(date +%s)" -lt "$end" ] || { fail="${fail:-$2: $3 stayed at ${v:-?} (wanted >= $4) for $5 s}"; return 1; }
            sleep 1
        done
    }
    # The sources (guest/init): /opt/a udp4, /opt/b tcp4, /usr/bin icmp4, tallies in E7_DEMO_DIR (guest/lib.sh).
    local pa=/opt/a/e7-probe pb=/opt/b/e7-probe pu=/usr/bin/e7-probe n t_on t_events b0 d1 b1 t_block t_clear
    if [ -n "$(last_line 'e7> ')" ] && [ "$(last_line 'e7> ')" != 0 ]; then
        sleep 0.5
        # Disabled: the sources send (their tally grows), and no event is shown.
        until_tally opt-a "$pa" rounds 1 30 &&
            { [ "$(last_line 'event ')" = 0 ] || fail="${fail:-an event while the mode is disabled}"; } &&
            t_on=$(date +%s) &&
            say 'set mode enabled' 'mode enabled' &&
            n=$(last_line 'mode enabled') &&
            { wait_after "$n" "event pending udp $pa -> " 30 || fail="${fail:-no pending event of $pa within 30 s of enabling}"; } &&
            { wait_after "$n" "event pending tcp $pb" 30 || fail="${fail:-no pending event of $pb within 30 s}"; } &&
            { wait_after "$n" "event pending icmp $pu" 30 || fail="${fail:-no pending event of $pu within 30 s}"; } &&
            t_events=$(($(date +%s) - t_on)) &&
            read_tally opt-a "$pa" && b0="$(tally "$pa" blocked)" &&
            t_block=$(date +%s) &&
            say "block udp $pa" "block udp $pa\$" &&
            n=$(last_line "block udp $pa\$") &&
            { wait_after "$n" "event block udp $pa" 30 || fail="${fail:-no block event of $pa within 30 s of the rule}"; } &&
            { wait_after "$n" "event pending tcp $pb" 30 || fail="${fail:-no more events of $pb after the block of $pa}"; } &&
            # The first blocked send recorded: every later round started under the rule. From then on
            # the tally's delivered count must stand still while blocked grows.
            until_tally opt-a "$pa" blocked $((b0 + 1)) 30 &&
            d1="$(tally "$pa" delivered)" && b1="$(tally "$pa" blocked)" &&
            until_tally opt-a "$pa" blocked $((b1 + 2)) 30 &&
            { [ "$(tally "$pa" delivered)" = "$d1" ] && [ "$(tally "$pa" last)" = blocked ] ||
                fail="${fail:-$pa delivered under the block: delivered $d1 -> $(tally "$pa" delivered), last $(tally "$pa" last)}"; } &&
            t_block=$(($(date +%s) - t_block)) &&
            t_clear=$(date +%s) &&
            say 'clear' 'cleared all rules' &&
            n=$(last_line 'cleared all rules') &&
            { wait_after "$n" "event pending udp $pa -> " 30 || fail="${fail:-no pending event of $pa within 30 s of clear}"; } &&
            until_tally opt-a "$pa" delivered $((d1 + 1)) 30 &&
            t_clear=$(($(date +%s) - t_clear))
    else
        fail="no console prompt"
    fi
    local tries
    for ((tries = 1; tries <= 4; tries++)); do
        printf 'quit\n' >&3
        for ((i = 0; i < 40; i++)); do
            kill -0 "$qpid" 2>/dev/null || break 2
            sleep 0.25
        done
    done
    kill "$qpid" 2>/dev/null || true
    wait "$qpid" || rc=$?
    exec 3>&-
    rm -f "$fifo"
    for want in 'e7 console' 'console closed, powering off' 'reboot: Power down'; do
        if ! tr -d '\r' <"$logf" | grep -aqF -- "$want"; then
            fail="${fail:-not on the console: $want (qemu exit $rc)}"
        fi
    done
    [ "$rc" = 0 ] || fail="${fail:-qemu exit $rc}"
    if [ -n "$fail" ]; then
        echo "demo-check: FAIL: $fail; log: $logf"
        console | grep -av '^$' | tail -n 25 | sed 's/^/    | /'
        return 1
    fi
    echo "demo-check: PASS (row $ROW, $(($(date +%s) - start))s: prompt after ${booted}s, events of all three" \
        "sources ${t_events}s after enabling, block seen and held in ${t_block}s, flowing again ${t_clear}s after" \
        "clear, quit powered off; lines retyped: $retries)"
}

cmd_list() {
    sed -n 's/^case_\([a-z0-9_]*\)() *{.*/\1/p' "$VMTEST"/cases/*.sh
}

# --- matrix -------------------------------------------------------------------------------------------
# Every row, one after the other (a failing row does not stop the others), each a full `all` in its own
# process. Then the versions that ran and what each proved, as a table: .vm/matrix/table.md, and (for a
# run of every case) the README's "Supported kernels" section between its markers.
cmd_matrix() {
    local row out rc any=0 t0 kv built cases demo secs table date retried failed=""
    mkdir -p "$VM/matrix"
    table="$VM/matrix/table.md"
    date="$(date -u +%Y-%m-%d)"
    {
        echo "| row | kernel (Debian package version) | module build | VM cases passed | demo | result |"
        echo "|---|---|---|---|---|---|"
    } >"$table"
    # First the emulator and every row's kernel image and headers (and the sid build root), timed: what a
    # cold CI run downloads. A row whose packages cannot be fetched fails here, loudly, and its `all` fails too.
    t0=$(date +%s)
    qemu_bin
    log "emulator ready in $(($(date +%s) - t0))s"
    # Every row runs this one (the apt lists may move on during a matrix; the table names one QEMU).
    export E7_QEMU="$QEMU_BIN"
    for row in $ALL_ROWS; do
        t0=$(date +%s)
        if kv="$("$VMTEST/krow.sh" version "$row")" && "$VMTEST/krow.sh" image "$row" >/dev/null &&
            "$VMTEST/krow.sh" headers "$row" >/dev/null; then
            log "row $row: kernel $kv ($(pkg_version "$row" "$kv")): image, headers$([ "$row" = sid ] && echo ', build root') ready in $(($(date +%s) - t0))s"
        else
            log "ERROR: row $row: its kernel packages could not be fetched (see above); the row fails"
        fi
    done
    for row in $ALL_ROWS; do
        out="$VM/matrix/$row.log"
        log "==== row $row ===="
        t0=$(date +%s)
        rc=0
        E7_KROW="$row" "$0" all 2>&1 | tee "$out" || rc=$?
        secs=$(($(date +%s) - t0))
        [ "$rc" = 0 ] || { any=1; failed="$failed $row"; }
        kv="$(sed -n 's/^vmtest: row .* booted: \([^ ]*\) .*/\1/p' "$out" | head -n1)"
        [ -n "$kv" ] || kv="$(E7_KROW="$row" "$VMTEST/krow.sh" version "$row" 2>/dev/null || echo '?')"
        kv="$kv ($(pkg_version "$row" "$kv"))"
        if grep -q '^e7: built .* no panicking symbols' "$VM/kmod-build.log" 2>/dev/null && grep -q "^vmtest: building e7.ko for row $row" "$out"; then
            built="clean (objtool, modpost, codegen check)"
        else
            built="FAILED"
        fi
        cases="$(sed -n 's/^---- \([0-9]*\) passed, \([0-9]*\) failed.*/\1 of \1+\2/p' "$out" | tail -n1)"
        cases="$(awk -F' of ' '{ split($2, a, "+"); print $1 " of " a[1] + a[2] }' <<<"${cases:-0 of 0+0}")"
        if grep -q '^demo-check: PASS' "$out"; then demo=PASS
        elif [ -n "${E7_CASES:-}" ]; then demo="not run"
        else demo=FAIL; fi
        retried=""
        ! grep -q '^vmtest: WARNING: row .* booting again' "$out" || retried=", a boot retried"
        echo "| $row | $kv | $built | $cases | $demo | $([ "$rc" = 0 ] && echo PASS || echo FAIL) (${secs}s$retried) |" >>"$table"
        log "==== row $row: $([ "$rc" = 0 ] && echo PASS || echo FAIL) in ${secs}s ===="
    done
    echo
    echo "e7 kernel matrix ($date, ${E7_CASES:+cases: $E7_CASES, }$(qemu_version), accel $(pick_accel)):"
    cat "$table"
    failure_summary "$failed"
    if [ -z "${E7_CASES:-}" ]; then
        update_readme "$table" "$date"
    fi
    return "$any"
}

# failure_summary "ROW...": after the table, for each failed ROW, why it failed: the lines of its log that
# say so (failed cases with their output, the guest log's tail when it did not finish, kernel problems, a
# failed demo check, build errors), at most 60 lines a row; for a row that passed, its warnings (a boot
# retried). A CI log shows its end: the reason must be there, not only thousands of lines above it.
failure_summary() {
    local row out
    for row in $ALL_ROWS; do
        out="$VM/matrix/$row.log"
        [ -f "$out" ] || continue
        if [[ " $1 " == *" $row "* ]]; then
            echo
            echo "---- why row $row failed (from ${out#"$ROOT"/}) ----"
            awk '
                /^---- e7 VM test cases ----$/ { inres = 1; next }
                inres && /^  PASS  / { next }
                inres && /^---- [0-9]+ passed/ { print; inres = 0; next }
                inres { print; next }
                /^vmtest: (error|ERROR|FAIL|WARNING)/ || /^demo-check: FAIL/ || /^    \| / || /^(error|ERROR)[:[]/ { print }
            ' "$out" | head -n 60
        elif grep -q '^vmtest: WARNING' "$out"; then
            echo
            echo "---- row $row passed, with warnings ----"
            grep -A15 '^vmtest: WARNING' "$out" | grep -E '^(vmtest: WARNING|    \| )' | head -n 40
        fi
    done
}

# The Debian package version of the row's kernel (from its apt lists; "?" when unknown).
pkg_version() {
    "$VMTEST/krow.sh" apt "$1" apt-cache show --no-all-versions "linux-headers-$2" 2>/dev/null |
        sed -n 's/^Version: //p' | head -n1 | grep . || echo '?'
}

# update_readme TABLE DATE: replace the README's generated table (between the markers) with TABLE.
update_readme() {
    local readme="$ROOT/README.md" begin='<!-- supported-kernels:begin (generated by vmtest/vm.sh matrix; do not edit) -->'
    local end='<!-- supported-kernels:end -->'
    if ! grep -qF -- "$begin" "$readme" || ! grep -qF -- "$end" "$readme"; then
        log "README.md has no supported-kernels markers; table left in ${1#"$ROOT"/}"
        return 0
    fi
    awk -v b="$begin" -v e="$end" -v t="$1" -v d="$2" -v a="$(qemu_version), accel $(pick_accel)" '
        $0 == b { print; print ""; print "Last full run: " d ", every VM case plus the demo check on each row (" a ")."; print "";
                  while ((getline l < t) > 0) print l; print ""; skip = 1; next }
        $0 == e { skip = 0 }
        !skip { print }' "$readme" >"$readme.tmp" && mv "$readme.tmp" "$readme"
    log "README.md supported-kernels table updated"
}

mkdir -p "$VM"
case "${1:-all}" in
    kernel) cmd_kernel ;;
    build) cmd_build ;;
    initramfs) cmd_initramfs ;;
    test) cmd_test ;;
    demo) cmd_demo ;;
    list) cmd_list ;;
    demo-check) cmd_demo_check ;;
    matrix) cmd_matrix ;;
    all)
        t0=$(date +%s)
        cmd_kernel >/dev/null
        E7_VM_VARIANTS=1 cmd_build
        cmd_initramfs
        log "build phase took $(($(date +%s) - t0))s"
        rc=0
        cmd_test || rc=$?
        [ -n "${E7_CASES:-}" ] || cmd_demo_check || rc=1
        log "row $ROW ($(kver)): total wall time $(($(date +%s) - t0))s (build + boot + cases)"
        exit "$rc"
        ;;
    *) die "unknown subcommand '$1' (kernel, build, initramfs, test, demo, demo-check, all, list, matrix)" ;;
esac
