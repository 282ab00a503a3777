#!/usr/bin/env bash
# Installs what building and testing e7 needs on Debian 12, idempotently: the newest Debian 12 kernel
# headers (the module build), qemu (the VM's firmware and libraries, and the benchmark's emulator; the VM
# cases run a newer QEMU that vmtest/krow.sh fetches) + busybox-static + cpio (the VM), valgrind (cachegrind), pahole
# (dwarves: BTF for the 6.12+ rows' modules), mmdebstrap (the sid row's build root), tmux (the `e7 top` test), and the Rust
# toolchain pinned by rust-toolchain.toml with rust-src (the kernel build's -Zbuild-std).
# The other rows' headers and images are not installed: vmtest/krow.sh fetches and unpacks them under .vm/.
# Used by .ci/run and by `make demo`; does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive

pkgs=(make gcc libc6-dev bc cpio kmod libelf-dev busybox-static qemu-system-x86 valgrind dwarves mmdebstrap tmux)
kver="$(./vmtest/kernel-version.sh 2>/dev/null || true)"
if [ -z "$kver" ]; then
    $SUDO apt-get update -qq
    kver="$(./vmtest/kernel-version.sh)"
fi
pkgs+=("linux-headers-${kver}")
missing=()
for p in "${pkgs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "deps: installing ${missing[*]}"
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

toolchain="$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml)"
if ! rustup component list --toolchain "$toolchain" --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "deps: installing Rust $toolchain with rust-src"
    rustup toolchain install "$toolchain" --profile minimal --component rust-src,rustfmt,clippy
fi
