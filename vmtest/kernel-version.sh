#!/usr/bin/env bash
# Print the newest Debian 12 amd64 kernel ABI (e.g. 6.1.0-57-amd64) that has both headers and an image.
# E7_KVER overrides it.
set -euo pipefail
if [ -n "${E7_KVER:-}" ]; then echo "$E7_KVER"; exit 0; fi
apt-cache search --names-only '^linux-headers-6\.1\.0-[0-9]+-amd64$' | awk '{print $1}' \
  | sed 's/^linux-headers-//' | sort -V | tail -n1
