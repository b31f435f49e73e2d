#!/usr/bin/env bash
# A tracer that cannot start never costs a pull or a container: the daemon
# runs without CAP_SYS_ADMIN (setpriv drops it from its bounding and
# inheritable sets), so fanotify_init fails with EPERM. Checked: the daemon
# logs "cold-start tracer not running" with the reason and serves; an image
# is pulled and unpacked through it and a container runs from it with the
# expected output; no profile is recorded; the rootfs is gone after the run.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup hbcsa_no_tracer
command -v setpriv >/dev/null || ndt_fail "setpriv (util-linux) is missing"
REAL_BIN=$NDOCKER_BIN
NDOCKER_BIN=$NDT_WORKDIR/ndocker-without-cap-sys-admin
printf '#!/bin/sh\nexec setpriv --bounding-set -sys_admin --inh-caps -sys_admin -- %q "$@"\n' "$REAL_BIN" >"$NDOCKER_BIN"
chmod 0755 "$NDOCKER_BIN"
export NDOCKER_BIN

ndt_start_and_pull
ndt_step "the daemon runs without CAP_SYS_ADMIN and without its tracer"
grep -q '^CapEff:.*' "/proc/$NDOCKER_PID/status" || ndt_fail "no /proc/$NDOCKER_PID/status for the daemon"
cap_eff=$(awk '/^CapEff:/ { print $2 }' "/proc/$NDOCKER_PID/status")
(((16#$cap_eff & (1 << 21)) == 0)) || ndt_fail "the daemon still has CAP_SYS_ADMIN (CapEff $cap_eff)"
grep -q 'msg="cold-start tracer not running"' "$NDOCKER_LOG" ||
  ndt_fail "the daemon did not log that its tracer is not running"
ndt_pass "$(grep -o 'msg="cold-start tracer not running".*' "$NDOCKER_LOG" | head -n 1)"

ndt_step "a container runs from the image"
out=$(ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "$REF" no-tracer-1 /bin/sh -c 'cat /etc/greeting') ||
  ndt_fail "ctr run failed without the tracer: $out"
assert_eq "$NDT_GREETING" "$out" "the container's output"
assert_eq "" "$(ndockerctlw profile ls --json)" "no profile without a tracer"
assert_eq "" "$(awk -v m="$NDT_CTRD_STATE/io.containerd.runtime.v2.task/$NDT_NS/no-tracer-1/rootfs" '$5 == m' /proc/self/mountinfo)" \
  "the container's rootfs is unmounted after the run"
ctrw image rm --sync "$REF" >/dev/null
ndocker_assert_gc_clean 30
