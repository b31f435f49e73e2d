#!/usr/bin/env bash
# reap.sh DIR...: clean up after test runs that could not clean up themselves
# (SIGKILL, e.g. by an outer timeout):
#  - an integration-test workdir (/var/tmp/ndt-<name>.XXXXXX, has ndt.env):
#    kills its containers, shims and daemons, unmounts everything below it
#    (the tier filesystems too), detaches the loop devices of its tier images
#    and removes it;
#  - a daemon-test dir ($TMPDIR/ndocker-daemon-XXXXXX, has
#    .ndocker-daemon-test-owner; the next daemon-test run reaps these by
#    itself): kills its daemon, unmounts, detaches, removes.
set -uo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
(($# > 0)) || { echo "usage: $0 DIR..." >&2; exit 2; }

# reap_daemon_test_dir DIR
reap_daemon_test_dir() {
  local dir p
  dir=$(realpath "$1") || return 1
  for p in $(ndt__pids_mentioning "$dir/"); do kill -KILL "$p" 2>/dev/null; done
  ndt_unmount_all_under "$dir"
  ndt__detach_loops_under "$dir"
  [[ -z "$(ndt__mounts_under "$dir")" ]] || { echo "mounts remain below $dir" >&2; return 1; }
  rm -rf --one-file-system "$dir" 2>/dev/null || { chattr -R -f -i -a "$dir"; rm -rf --one-file-system "$dir"; }
}

rc=0
for d in "$@"; do
  if [[ -f "$d/.ndocker-daemon-test-owner" ]]; then
    ( reap_daemon_test_dir "$d" ) && echo "reaped $d" || rc=1
  else
    ( ndt_reap_workdir "$d" ) && echo "reaped $d" || rc=1
  fi
done
exit "$rc"
