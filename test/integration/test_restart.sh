#!/usr/bin/env bash
# kill -9 of ndocker-snapshotter must not disturb a running container, and a
# restart on the same root and socket must bring back the same snapshots:
#  - a long-running container (rootfs through ndocker) keeps RUNNING, keeps
#    writing to its rootfs and accepts `ctr task exec` while the daemon is dead;
#  - after the restart `ctr snapshots ls` equals the list before the kill, the
#    folders under the running container's overlay mount still exist, and a
#    new container runs;
#  - after removing everything, GC through the restarted daemon leaves the
#    tiers empty.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup restart
SN=$NDOCKER_SNAPSHOTTER_NAME

ndt_start_and_pull
ndt_pass "pulled $REF through $SN"

ndt_step "long-running container c1"
# shellcheck disable=SC2016 # expanded by the container's shell
ctr_run -d --null-io --snapshotter "$SN" "$REF" c1 /bin/sh -c \
  'i=0; while true; do i=$((i+1)); echo $i >/tmp/counter; cat /etc/greeting >/dev/null; sleep 0.2; done' >/dev/null
task_running() { [[ "$(ctr_task_status c1)" == RUNNING ]]; }
ndt_wait_until 20 "task c1 to be RUNNING" task_running
counter() { ctr_exec --exec-id "cnt$RANDOM" c1 cat /tmp/counter; }
counter_advances() { # counter_advances: the container writes to its rootfs
  local a b
  a=$(counter) || return 1
  sleep 0.6
  b=$(counter) || return 1
  ((b > a))
}
counter_advances || ndt_fail "c1 does not update /tmp/counter"
ndt_pass "c1 RUNNING and writing to its rootfs (/tmp/counter=$(counter))"

rootfs=$NDT_CTRD_STATE/io.containerd.runtime.v2.task/$NDT_NS/c1/rootfs
mopts=$(awk -v m="$rootfs" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 3); exit } }' /proc/self/mountinfo)
[[ -n "$mopts" ]] || ndt_fail "c1's rootfs $rootfs is not a mount point"
ndt_log "c1 rootfs mount options: $mopts"
# the layer folders under c1's mount (upperdir, workdir, lowerdirs), with inode numbers
mount_dirs() {
  tr ',' '\n' <<<"$mopts" | sed -n 's/^\(lowerdir\|upperdir\|workdir\)=//p' | tr ':' '\n' | while read -r p; do
    [[ "$p" == /* ]] || continue # a relative path is relative to containerd's cwd at mount time
    printf '%s %s\n' "$p" "$(stat -L -c %d:%i "$p" 2>/dev/null || echo MISSING)"
  done
}
mount_dirs >"$NDT_WORKDIR/mountdirs.before"
[[ -s "$NDT_WORKDIR/mountdirs.before" ]] || ndt_fail "no absolute upper/lower dir in c1's mount options: $mopts"

snap_ls() { ctrw snapshots --snapshotter "$SN" ls | LC_ALL=C sort; }
snap_ls >"$NDT_WORKDIR/snapshots.before"
image_layer_usage "$SN" "$REF" >"$NDT_WORKDIR/usage.before"
ndt_log "$SN snapshots before the kill: $(($(wc -l <"$NDT_WORKDIR/snapshots.before") - 1))"
ndocker_snapshot_dirs >"$NDT_WORKDIR/dirs.before"

ndt_step "kill -9 ndocker-snapshotter"
ndocker_kill9
task_running || ndt_fail "c1 is '$(ctr_task_status c1)' after the daemon was killed, expected RUNNING"
ndt_pass "c1 still RUNNING"
out=$(ctr_exec --exec-id e1 c1 cat /etc/greeting) || ndt_fail "ctr task exec into c1 failed while the daemon was dead"
assert_eq "$NDT_GREETING" "$out" "ctr task exec c1 cat /etc/greeting while the daemon is dead"
counter_advances || ndt_fail "c1 stopped writing to its rootfs while the daemon was dead"
ndt_pass "c1 keeps writing to its rootfs"

ndt_step "restart ndocker-snapshotter on the same root and socket"
t0=$(ndt_now)
ndocker_restart
# containerd reconnects by itself (backoff capped at 3 s)
ndt_wait_until 20 "ctr snapshots --snapshotter $SN ls to work again" ctrw snapshots --snapshotter "$SN" ls
ndt_log "snapshotter usable through containerd $(ndt_elapsed "$t0") s after the restart began"
snap_ls >"$NDT_WORKDIR/snapshots.after"
assert_file_eq "$NDT_WORKDIR/snapshots.before" "$NDT_WORKDIR/snapshots.after" "ctr snapshots ls after the restart equals the list before the kill"
image_layer_usage "$SN" "$REF" >"$NDT_WORKDIR/usage.after"
assert_file_eq "$NDT_WORKDIR/usage.before" "$NDT_WORKDIR/usage.after" "Usage of every committed layer is the same after the restart"
mount_dirs >"$NDT_WORKDIR/mountdirs.after"
assert_file_eq "$NDT_WORKDIR/mountdirs.before" "$NDT_WORKDIR/mountdirs.after" \
  "every folder under c1's overlay mount still exists, same inode"
ndocker_snapshot_dirs >"$NDT_WORKDIR/dirs.after"
if ! cmp -s "$NDT_WORKDIR/dirs.before" "$NDT_WORKDIR/dirs.after"; then
  ndt_log "note: tier folders changed across the restart:"
  diff "$NDT_WORKDIR/dirs.before" "$NDT_WORKDIR/dirs.after" >&2 || true
fi

task_running || ndt_fail "c1 is '$(ctr_task_status c1)' after the restart, expected RUNNING"
out=$(ctr_exec --exec-id e2 c1 cat /etc/greeting) || ndt_fail "ctr task exec into c1 failed after the restart"
assert_eq "$NDT_GREETING" "$out" "ctr task exec c1 cat /etc/greeting after the restart"
counter_advances || ndt_fail "c1 stopped writing to its rootfs after the restart"
ndt_pass "c1 keeps writing to its rootfs"

out=$(ctr_run --rm --snapshotter "$SN" "$REF" c2 /bin/sh -c 'cat /etc/greeting /data/c; echo written >/tmp/new; cat /tmp/new') ||
  ndt_fail "ctr run --rm c2 through the restarted daemon failed"
assert_eq "$(printf '%s\n' "$NDT_GREETING" "$NDT_DATA_C" written)" "$out" "new container c2 through the restarted daemon"

ndt_step "stop c1, remove everything, GC through the restarted daemon"
ctr_remove_container c1
ndt_pass "c1 stopped and removed"
ctrw image rm --sync "$REF" >/dev/null
ndocker_assert_gc_clean 30
