#!/usr/bin/env bash
# Print the kernel ABI of a row of the kernel matrix, newest available now (default row: Debian 12's 6.1,
# e.g. 6.1.0-57-amd64; or $1 / E7_KROW: 6.12, 6.12-rt, sid). E7_KVER overrides it. The rows and where
# each comes from are defined once, in krow.sh.
set -euo pipefail
exec "$(dirname "${BASH_SOURCE[0]}")/krow.sh" version "${1:-${E7_KROW:-6.1}}"
