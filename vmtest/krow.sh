#!/usr/bin/env bash
# The kernel matrix: which Debian kernels e7 is built and tested on, and where each comes from.
#
#   krow.sh rows               the row names, one a line (the matrix, in the order CI runs it)
#   krow.sh version ROW        the row's kernel ABI, newest available now (e.g. 6.12.95+deb12-amd64)
#   krow.sh image ROW          fetch the row's kernel image; print the path of its vmlinuz (config next to it)
#   krow.sh headers ROW        fetch + unpack the row's headers; check its kbuild tools run; print KDIR
#   krow.sh modules ROW NAME   NAME.ko and the modules it depends on, from the row's kernel package, decompressed
#                              into .vm/kernel/KVER/modules/NAME/ with their load order in `order`; print it
#   krow.sh chroot ROW         the build root whose tools run the row's kbuild ("/" = this host), created
#                              (and cached under .vm/) if needed
#   krow.sh apt ROW ARGS...    run apt-get/apt-cache (first of ARGS) with the row's private apt configuration
#   krow.sh qemu               fetch the emulator the VM runs on (qemu-system-x86 from bookworm-backports,
#                              unpacked under .vm/qemu/); print the path of its qemu-system-x86_64
#
# Rows (one home for this table: everything else asks this script):
#   6.1      Debian 12's kernel (bookworm, through the machine's own apt; headers installed by scripts/deps.sh)
#   6.12     6.12.x+deb12 from bookworm-backports (same source as Debian 13's 6.12; kbuild built for Debian 12)
#   6.12-rt  its PREEMPT_RT flavour (-rt-amd64)
#   sid      the newest kernel in Debian unstable; its kbuild tools need sid's glibc and gcc, so the module is
#            built inside a minimal sid chroot (mmdebstrap, cached under .vm/sid-root)
#
# Extra suites go through a PRIVATE apt configuration under .vm/apt/SUITE (own sources list, lists, cache and
# an empty dpkg status), passed with -o options: /etc/apt is never read for sources nor written. Packages are
# fetched with `apt-get download` and unpacked with `dpkg -x`, never installed on this machine. "Newest" is
# decided at run time from the suite's package lists (refreshed when older than E7_APT_MAX_AGE minutes,
# default 60), so the matrix follows Debian's updates without edits. A row whose packages cannot be fetched
# fails with an error naming the package; nothing is skipped silently.
# E7_KVER overrides the version of whichever row is asked for.
set -euo pipefail

VMTEST="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$VMTEST/.." && pwd)"
VM="$ROOT/.vm"
MIRROR="${E7_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
KEYRING=/usr/share/keyrings/debian-archive-keyring.gpg
# What the sid build root holds besides minbase: the compiler the kernel was built with is added per kernel
# (its headers package names it), these are the rest of what kbuild runs.
SID_BASE_PKGS="make,libc6-dev,binutils,libelf1t64,libssl3t64,zlib1g,pahole,bc,kmod"

die() { printf 'krow: error: %s\n' "$*" >&2; exit 1; }
log() { printf 'krow: %s\n' "$*" >&2; }

ROWS=(6.1 6.12 6.12-rt sid)

check_row() {
    case "$1" in
        6.1 | 6.12 | 6.12-rt | sid) ;;
        *) die "unknown kernel row '$1' (rows: ${ROWS[*]})" ;;
    esac
}

# The apt suite a row comes from ("" = the machine's own apt sources, i.e. bookworm).
row_suite() {
    case "$1" in
        6.1) echo "" ;;
        6.12 | 6.12-rt) echo bookworm-backports ;;
        sid) echo sid ;;
    esac
}

# An extended regex matching the row's headers package names; the ABI is the name minus "linux-headers-".
row_headers_re() {
    case "$1" in
        6.1) echo '^linux-headers-6\.1\.0-[0-9]+-amd64$' ;;
        6.12) echo '^linux-headers-6\.12\.[0-9]+\+deb12-amd64$' ;;
        6.12-rt) echo '^linux-headers-6\.12\.[0-9]+\+deb12-rt-amd64$' ;;
        sid) echo '^linux-headers-[0-9]+\.[0-9]+(\.[0-9]+)?(-rc[0-9]+)?\+deb[0-9]+-amd64$' ;;
    esac
}

# --- private apt --------------------------------------------------------------------------------------
# apt_run ROW apt-get|apt-cache ARGS...: the tool with the row's apt configuration.
apt_run() {
    local row="$1" tool="$2" suite d
    shift 2
    suite="$(row_suite "$row")"
    if [ -z "$suite" ]; then
        "$tool" "$@"
        return
    fi
    d="$VM/apt/$suite"
    "$tool" -o Dir::Etc::SourceList="$d/sources.list" -o Dir::Etc::SourceParts="$d/sources.list.d" \
        -o Dir::Etc::Preferences="$d/preferences" -o Dir::Etc::PreferencesParts="$d/preferences.d" \
        -o Dir::State::Lists="$d/lists" -o Dir::State::status="$d/status" -o Dir::Cache="$d/cache" \
        -o APT::Architecture=amd64 -o APT::Architectures=amd64 -o Debug::NoLocking=1 "$@"
}

# apt_ready ROW: the row's private package lists exist and are fresh (apt-get update when not).
apt_ready() {
    local row="$1" suite d
    suite="$(row_suite "$row")"
    [ -n "$suite" ] || return 0
    d="$VM/apt/$suite"
    if [ -z "$(find "$d/lists" -maxdepth 1 -name '*_Packages' -mmin "-${E7_APT_MAX_AGE:-60}" 2>/dev/null)" ]; then
        mkdir -p "$d/lists/partial" "$d/cache/archives/partial" "$d/sources.list.d" "$d/preferences.d"
        echo "deb [signed-by=$KEYRING] $MIRROR $suite main" >"$d/sources.list"
        : >"$d/status"
        : >"$d/preferences"
        log "apt-get update for $suite (private configuration in .vm/apt/$suite)"
        apt_run "$row" apt-get update -q >"$d/update.log" 2>&1 ||
            die "apt-get update for $suite failed: $(tail -n 3 "$d/update.log")"
        touch "$d/lists"/*_Packages
    fi
}

# pkg_exists ROW PKG: the row's apt knows PKG (with a downloadable version).
pkg_exists() {
    apt_run "$1" apt-cache show --no-all-versions "$2" >/dev/null 2>&1
}

# The packages that carry the kernel image for ABI $1, in the order they are tried. Debian 12 and the
# backports ship linux-image-ABI-unsigned; newer suites split the image into linux-binary-ABI (the
# vmlinuz) and linux-base-ABI (config, System.map), and linux-image-ABI is only a metapackage there.
image_pkgs() {
    echo "linux-image-$1-unsigned linux-binary-$1 linux-image-$1"
}

# --- version ------------------------------------------------------------------------------------------
cmd_version() {
    local row="$1" kv p
    if [ -n "${E7_KVER:-}" ]; then
        echo "$E7_KVER"
        return
    fi
    apt_ready "$row"
    # Newest first; the first ABI that also has an image wins.
    for kv in $(apt_run "$row" apt-cache search --names-only "$(row_headers_re "$row")" | awk '{print $1}' |
        sed 's/^linux-headers-//' | sort -rV); do
        for p in $(image_pkgs "$kv"); do
            if pkg_exists "$row" "$p"; then
                echo "$kv"
                return
            fi
        done
    done
    die "row $row: no kernel with both headers and an image in suite '$(row_suite "$row")' (empty: this machine's apt; apt-get update?)"
}

# download ROW DIR PKG...: apt-get download each PKG into DIR (cached: an existing PKG_*.deb is kept).
download() {
    local row="$1" dir="$2" p
    shift 2
    mkdir -p "$dir"
    for p in "$@"; do
        compgen -G "$dir/${p}_*.deb" >/dev/null && continue
        log "apt-get download $p (row $row, into ${dir#"$ROOT"/})"
        (cd "$dir" && apt_run "$row" apt-get download -q "$p" >"$dir/apt.log" 2>&1) ||
            die "row $row: cannot download $p: $(grep -v '^W:' "$dir/apt.log" | tail -n 3)"
    done
}

# deps_named ROW PKG GLOB: the Depends of PKG that match the shell glob GLOB (alternatives split).
deps_named() {
    apt_run "$1" apt-cache show --no-all-versions "$2" | sed -n 's/^Depends: //p' | tr ',|' '\n' |
        sed 's/^ *//; s/ .*//' | while read -r d; do
        # shellcheck disable=SC2254
        case "$d" in $3) echo "$d" ;; esac
    done
}

# --- image --------------------------------------------------------------------------------------------
# Prints the path of the row's vmlinuz; its config is kept next to it (config-KVER). Of what `dpkg -x`
# unpacks only those two files are kept (cache: .vm/kernel/KVER/).
cmd_image() {
    local row="$1" kv dir vmlinuz p deb
    kv="$(cmd_version "$row")"
    dir="$VM/kernel/$kv"
    vmlinuz="$dir/vmlinuz-$kv"
    if [ ! -f "$vmlinuz" ] || [ ! -f "$dir/config-$kv" ]; then
        apt_ready "$row"
        mkdir -p "$dir"
        deb=""
        for p in $(image_pkgs "$kv"); do
            if compgen -G "$dir/${p}_*.deb" >/dev/null || pkg_exists "$row" "$p"; then
                download "$row" "$dir" "$p"
                deb="$(compgen -G "$dir/${p}_*.deb" | head -n1)"
                break
            fi
        done
        [ -n "$deb" ] || die "row $row: none of $(image_pkgs "$kv") can be fetched"
        rm -rf "$dir/x"
        dpkg -x "$deb" "$dir/x"
        # Where the files are: boot/vmlinuz-ABI + boot/config-ABI (Debian 12, backports), or
        # usr/lib/modules/ABI/vmlinuz + config (newer suites, the config in linux-base-ABI).
        local img cfg m="$dir/x/usr/lib/modules/$kv"
        if [ ! -f "$dir/x/boot/config-$kv" ] && [ ! -f "$m/config" ] && pkg_exists "$row" "linux-base-$kv"; then
            download "$row" "$dir" "linux-base-$kv"
            dpkg -x "$(compgen -G "$dir/linux-base-${kv}_*.deb" | head -n1)" "$dir/x"
        fi
        img="$dir/x/boot/vmlinuz-$kv"; [ -f "$img" ] || img="$m/vmlinuz"
        cfg="$dir/x/boot/config-$kv"; [ -f "$cfg" ] || cfg="$m/config"
        [ -f "$img" ] || die "$deb has no boot/vmlinuz-$kv nor usr/lib/modules/$kv/vmlinuz"
        [ -f "$cfg" ] || die "row $row: no kernel config for $kv in $deb (nor in linux-base-$kv)"
        mv "$cfg" "$dir/config-$kv"
        mv "$img" "$vmlinuz"
        rm -rf "$dir/x" "$dir"/*.deb
    fi
    echo "$vmlinuz"
}

# --- modules ------------------------------------------------------------------------------------------
# The packages that carry the modules for ABI $1: the image package on Debian 12 and the backports,
# linux-modules-ABI in newer suites.
module_pkgs() {
    echo "linux-image-$1-unsigned linux-modules-$1"
}

# cmd_modules ROW NAME: NAME.ko and, before it, every module its `depends=` names (recursively), plus
# crc32c_generic when the package has it (libcrc32c asks the crypto API for "crc32c" at load time, which
# would need modprobe). Decompressed (.ko.xz/.ko.zst), load order in `order`. Cached per kernel (the
# package is removed once the modules are out, as `image` does).
cmd_modules() {
    local row="$1" name="$2" kv dir out p deb x
    kv="$(cmd_version "$row")"
    dir="$VM/kernel/$kv"
    out="$dir/modules/$name"
    if [ ! -f "$out/order" ]; then
        apt_ready "$row"
        deb=""
        for p in $(module_pkgs "$kv"); do
            if compgen -G "$dir/${p}_*.deb" >/dev/null || pkg_exists "$row" "$p"; then
                download "$row" "$dir" "$p"
                deb="$(compgen -G "$dir/${p}_*.deb" | head -n1)"
                break
            fi
        done
        [ -n "$deb" ] || die "row $row: none of $(module_pkgs "$kv") can be fetched (for $name.ko)"
        x="$dir/modules/x"
        rm -rf "$x" "$out"
        mkdir -p "$x" "$out"
        dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$x" --wildcards '*/kernel/net/*' '*/kernel/lib/*' '*/kernel/crypto/*' \
            '*/kernel/drivers/infiniband/*'
        # find_ko NAME: the module file (names use _ where files may use -).
        find_ko() { find "$x" -name "$1.ko*" -o -name "$(echo "$1" | tr _ -).ko*" | head -n1; }
        add() { # add NAME: its dependencies first, then itself (once)
            local f d
            grep -qx "$1" "$out/order" 2>/dev/null && return 0
            f="$(find_ko "$1")"
            [ -n "$f" ] || die "row $row: module $1 (for $name.ko) is not in $deb"
            for d in $(modinfo -F depends "$f" | tr , ' '); do add "$d"; done
            case "$f" in
                *.ko.xz) xz -dc "$f" >"$out/$1.ko" ;;
                *.ko.zst) zstd -qdc "$f" >"$out/$1.ko" ;;
                *.ko.gz) gzip -dc "$f" >"$out/$1.ko" ;;
                *) cp "$f" "$out/$1.ko" ;;
            esac
            echo "$1" >>"$out/order"
        }
        [ -z "$(find_ko crc32c_generic)" ] || add crc32c_generic
        add "$name"
        rm -rf "$x" "$deb"
    fi
    echo "$out"
}

# --- build root ---------------------------------------------------------------------------------------
# Prints "/" for rows whose kbuild runs on this (Debian 12) host, else the sid build root's path, creating it
# on first use: mmdebstrap --variant=minbase of sid plus the row's compiler and kbuild's runtime libraries.
cmd_chroot() {
    local row="$1" r cc
    [ "$row" = sid ] || { echo /; return; }
    r="$VM/sid-root"
    if [ ! -x "$r/usr/bin/make" ]; then
        command -v mmdebstrap >/dev/null || die "row sid needs mmdebstrap (scripts/deps.sh installs it)"
        [ "$(id -u)" = 0 ] || die "row sid builds in a chroot: run as root (or use the other rows)"
        rm -rf "$r" "$r.tmp"
        log "creating the sid build root (mmdebstrap minbase; once, cached in .vm/sid-root)"
        local t0=$SECONDS valid
        # mmdebstrap's apt does not read this machine's apt.conf.d; carry over its release-expiry policy (a
        # mirror pinned to a snapshot serves Release files past their Valid-Until).
        valid="$(apt-config shell V Acquire::Check-Valid-Until | sed -n "s/^V='\(.*\)'$/\1/p")"
        mmdebstrap --variant=minbase --include="$SID_BASE_PKGS" --keyring="$KEYRING" \
            --aptopt='Acquire::Retries "3"' --aptopt="Acquire::Check-Valid-Until \"${valid:-true}\"" \
            sid "$r.tmp" "$MIRROR" >"$VM/sid-root.log" 2>&1 ||
            die "mmdebstrap sid failed: $(tail -n 5 "$VM/sid-root.log")"
        mv "$r.tmp" "$r"
        log "sid build root ready in $((SECONDS - t0))s"
    fi
    # The compiler the kernel was built with (e.g. gcc-16), as its headers package depends on it.
    cc="$(cat "$r/.e7-cc" 2>/dev/null || true)"
    local want
    want="$(deps_named sid "linux-headers-$(cmd_version sid)" 'gcc-[0-9]*' | head -n1)"
    [ -n "$want" ] || die "row sid: cannot tell which gcc linux-headers-$(cmd_version sid) needs"
    if [ "$cc" != "$want" ]; then
        log "installing $want in the sid build root"
        if ! { chroot "$r" apt-get update -q && chroot "$r" env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends "$want"; } >"$VM/sid-root.log" 2>&1; then
            die "row sid: cannot install $want in the build root: $(tail -n 3 "$VM/sid-root.log")"
        fi
        echo "$want" >"$r/.e7-cc"
    fi
    echo "$r"
}

# --- headers ------------------------------------------------------------------------------------------
# Prints KDIR as seen from the row's build root. For 6.1 that is the installed /usr/src/linux-headers-KVER
# (scripts/deps.sh installs it, as for any Debian 12 user); for the other rows the headers, their -common
# package and linux-kbuild are unpacked with dpkg -x into .vm/headers/KVER (for sid: into the sid build
# root's /usr/src and /usr/lib, where its own tools run them). Kbuild's tools (fixdep, modpost, objtool)
# are then run once to prove they work there.
cmd_headers() {
    local row="$1" kv br dest kdir p deps
    kv="$(cmd_version "$row")"
    if [ "$row" = 6.1 ]; then
        kdir="/usr/src/linux-headers-$kv"
        [ -f "$kdir/Makefile" ] || die "row 6.1: $kdir is not installed (scripts/deps.sh installs linux-headers-$kv)"
        echo "$kdir"
        return
    fi
    br="$(cmd_chroot "$row")"
    if [ "$br" = / ]; then dest="$VM/headers/$kv"; else dest="$br"; fi
    kdir="$dest/usr/src/linux-headers-$kv"
    if [ ! -f "$kdir/.e7-unpacked" ]; then
        apt_ready "$row"
        pkg_exists "$row" "linux-headers-$kv" ||
            die "row $row: linux-headers-$kv cannot be fetched (not in suite '$(row_suite "$row")')"
        deps="$(deps_named "$row" "linux-headers-$kv" 'linux-headers-*-common*'; deps_named "$row" "linux-headers-$kv" 'linux-kbuild-*')"
        [ -n "$deps" ] || die "row $row: linux-headers-$kv names no -common/linux-kbuild package"
        # shellcheck disable=SC2086
        download "$row" "$VM/debs/$kv" "linux-headers-$kv" $deps
        mkdir -p "$dest"
        for p in "linux-headers-$kv" $deps; do
            dpkg -x "$(compgen -G "$VM/debs/$kv/${p}_*.deb" | head -n1)" "$dest"
        done
        # The flavour's Makefile includes the -common one by absolute path; point it into the unpacked tree.
        if [ "$br" = / ]; then
            sed -i "s#^include /usr/src/#include $dest/usr/src/#" "$kdir/Makefile"
        fi
        [ -f "$kdir/.config" ] || die "row $row: unpacked headers have no $kdir/.config"
        touch "$kdir/.e7-unpacked"
        rm -rf "$VM/debs/$kv"
    fi
    check_kbuild_tools "$row" "$br" "$kdir"
    if [ "$br" = / ]; then echo "$kdir"; else echo "${kdir#"$br"}"; fi
}

# check_kbuild_tools ROW BUILDROOT KDIR: run fixdep, modpost and objtool once where the build will run them;
# a tool linked against a newer glibc than the build root's fails here with the loader's message.
check_kbuild_tools() {
    local row="$1" br="$2" kdir="$3" t rel out rc
    for t in scripts/basic/fixdep scripts/mod/modpost tools/objtool/objtool; do
        [ -e "$kdir/$t" ] || die "row $row: headers lack $t"
        rel="$kdir/$t"
        rc=0
        if [ "$br" = / ]; then
            out="$("$rel" </dev/null 2>&1)" || rc=$?
        else
            out="$(chroot "$br" "${rel#"$br"}" </dev/null 2>&1)" || rc=$?
        fi
        if [ "$rc" -ge 126 ] || grep -qiE 'GLIBC_|error while loading shared libraries|not found' <<<"$out"; then
            die "row $row: kbuild tool $t does not run in build root $br (exit $rc): $(head -n 2 <<<"$out")"
        fi
    done
}

# --- qemu ---------------------------------------------------------------------------------------------
# The emulator of the VM cases and the demo: qemu-system-x86 from bookworm-backports (10.x), unpacked like a
# kernel (never installed) into .vm/qemu/VERSION/, and run with this machine's firmware (/usr/share/qemu and
# the BIOS it links, from Debian 12's own qemu-system-x86, which scripts/deps.sh installs, with the libraries
# both need). Why not Debian 12's QEMU 7.2: its multi-threaded TCG can translate a block from a code page
# while another vCPU patches that page, and keep the stale block (fixed in QEMU 8.1 by "accel/tcg: Always
# lock pages before translation"; 7.2 does not have it). The guest kernel patches its code whenever a
# static key flips, e.g. netfilter's "a hook exists" keys when e7 registers its first hooks or unregisters
# its last, and a vCPU that runs the stale block hits an int3 that is no longer there: "Oops: int3" in
# __ip6_local_out, a panic (seen once in rmmod_under_traffic on 6.12, under 7.2).
QEMU_MIN=8.1
QEMU_ROW=6.12 # the row whose suite (bookworm-backports) carries the emulator
cmd_qemu() {
    local ver dir bin deb out
    apt_ready "$QEMU_ROW"
    ver="$(apt_run "$QEMU_ROW" apt-cache show --no-all-versions qemu-system-x86 2>/dev/null |
        sed -n 's/^Version: //p' | head -n1)"
    [ -n "$ver" ] || die "no qemu-system-x86 in $(row_suite "$QEMU_ROW") (see .vm/apt/$(row_suite "$QEMU_ROW")/update.log)"
    dir="$VM/qemu/$(tr ':~+' '___' <<<"$ver")"
    bin="$dir/x/usr/bin/qemu-system-x86_64"
    if [ ! -x "$bin" ]; then
        download "$QEMU_ROW" "$dir" qemu-system-x86
        deb="$(compgen -G "$dir/qemu-system-x86_*.deb" | head -n1)"
        rm -rf "$dir/x"
        dpkg -x "$deb" "$dir/x"
        rm -f "$deb"
        [ -x "$bin" ] || die "$deb has no usr/bin/qemu-system-x86_64"
    fi
    # It must run here (its libraries are Debian 12's) and be new enough.
    out="$("$bin" --version 2>&1 | head -n1)" || die "$bin does not run: $out"
    local v="${out#QEMU emulator version }"
    v="${v%% *}"
    [ "$(printf '%s\n%s\n' "$QEMU_MIN" "$v" | sort -V | head -n1)" = "$QEMU_MIN" ] ||
        die "$bin is QEMU $v; the VM needs $QEMU_MIN or newer (see krow.sh: qemu)"
    echo "$bin"
}

[ $# -ge 1 ] || die "usage: krow.sh rows | qemu | version|image|headers|chroot ROW | modules ROW NAME | apt ROW TOOL ARGS..."
mkdir -p "$VM"
cmd="$1"
shift
case "$cmd" in
    rows) printf '%s\n' "${ROWS[@]}" ;;
    qemu)
        [ $# -eq 0 ] || die "usage: krow.sh qemu"
        cmd_qemu
        ;;
    modules)
        [ $# -eq 2 ] || die "usage: krow.sh modules ROW NAME (rows: ${ROWS[*]})"
        check_row "$1"
        cmd_modules "$1" "$2"
        ;;
    version | image | headers | chroot)
        [ $# -eq 1 ] || die "usage: krow.sh $cmd ROW (rows: ${ROWS[*]})"
        check_row "$1"
        "cmd_$cmd" "$1"
        ;;
    apt)
        [ $# -ge 2 ] || die "usage: krow.sh apt ROW apt-get|apt-cache ARGS..."
        check_row "$1"
        apt_ready "$1"
        apt_run "$@"
        ;;
    *) die "unknown subcommand '$cmd' (rows, version, image, headers, chroot, modules, apt, qemu)" ;;
esac
