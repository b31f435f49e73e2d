#!/usr/bin/env bash
# reap.sh WORKDIR...: clean up after integration-test runs that could not clean
# up themselves (SIGKILL, e.g. by an outer timeout): kills their containers,
# shims and daemons, unmounts everything below WORKDIR and removes it.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# > 0)) || { echo "usage: $0 WORKDIR..." >&2; exit 2; }
rc=0
for d in "$@"; do
  ( ndt_reap_workdir "$d" ) && echo "reaped $d" || rc=1
done
exit "$rc"
