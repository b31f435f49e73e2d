#!/usr/bin/env bash
# The snapshot label containerd.io/snapshot/ndocker.tier=fast|slow (an
# operator override) puts a new snapshot on that tier. ctr 1.6 cannot label a
# `ctr snapshots prepare`, but `ctr run --snapshotter-label` labels the
# container's rootfs snapshot (the label passes containerd's filter because it
# starts with containerd.io/snapshot/). For each tier:
#  - exactly one new snapshot folder appears, on that tier;
#  - the container's overlay upperdir and workdir (as mounted, short links
#    resolved) are that folder's fs and work;
#  - a file the container writes shows up in that folder's fs;
# and an unknown tier name is refused with a clear error and leaves nothing.
# Runs on two tier filesystems (tmpfs, ext4), or on one with NDT_SAME_FS_TIERS=1.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

TIER_LABEL=containerd.io/snapshot/ndocker.tier
ndt_setup tiers
SN=$NDOCKER_SNAPSHOTTER_NAME

ndt_start_and_pull
if [[ "${NDT_SAME_FS_TIERS:-0}" == 1 ]]; then
  assert_eq "$(stat -c %d "$(ndocker_tier_dir fast)")" "$(stat -c %d "$(ndocker_tier_dir slow)")" \
    "NDT_SAME_FS_TIERS=1: both tiers on one filesystem (device)"
else
  assert_eq "tmpfs ext4" "$(ndt_tier_fstype fast) $(ndt_tier_fstype slow)" "tier filesystems (fast slow)"
fi
ndt_log "image layers are on: $(ndocker_snapshot_dirs | cut -d/ -f1 | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }')"

# check_tier TIER
check_tier() {
  local tier=$1 id=c-$1 before after new
  ndt_step "container $id with $TIER_LABEL=$tier"
  before=$(ndocker_snapshot_dirs)
  ctr_run -d --null-io --snapshotter "$SN" --snapshotter-label "$TIER_LABEL=$tier" "$REF" "$id" \
    /bin/sh -c 'while true; do sleep 1; done' >/dev/null ||
    ndt_fail "ctr run with --snapshotter-label $TIER_LABEL=$tier failed"
  after=$(ndocker_snapshot_dirs)
  new=$(comm -13 <(echo "$before") <(echo "$after") | sed '/^$/d')
  [[ -n "$new" ]] || ndt_fail "no new snapshot folder on either tier for container $id"
  [[ $(grep -c . <<<"$new") -eq 1 ]] || ndt_fail "more than one new snapshot folder for container $id: $(tr '\n' ' ' <<<"$new")"
  [[ "$new" == "$tier/"* ]] || ndt_fail "container $id asked for tier $tier, its snapshot folder is $new"
  ndt_pass "the rootfs snapshot of $id is $new"
  local dir
  dir=$(ndocker_tier_dir "${new%%/*}")/snapshots/${new#*/}

  # what the kernel mounted for the container
  local rootfs=$NDT_CTRD_STATE/io.containerd.runtime.v2.task/$NDT_NS/$id/rootfs mopts upper work
  mopts=$(awk -v m="$rootfs" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 3); exit } }' /proc/self/mountinfo)
  [[ -n "$mopts" ]] || ndt_fail "rootfs of $id ($rootfs) is not mounted"
  upper=$(tr ',' '\n' <<<"$mopts" | sed -n 's/^upperdir=//p')
  work=$(tr ',' '\n' <<<"$mopts" | sed -n 's/^workdir=//p')
  [[ -n "$upper" && -n "$work" ]] || ndt_fail "rootfs of $id is not an overlay with upperdir and workdir: $mopts"
  assert_eq "$(realpath "$dir/fs")" "$(realpath "$upper")" "upperdir of $id (resolved)"
  assert_eq "$(realpath "$dir/work")" "$(realpath "$work")" "workdir of $id (resolved)"

  local marker="written on the $tier tier"
  ctr_exec --exec-id w1 "$id" /bin/sh -c "echo '$marker' >/tmp/marker" || ndt_fail "exec into $id failed"
  [[ -f "$dir/fs/tmp/marker" ]] || ndt_fail "/tmp/marker written in $id is not in $dir/fs/tmp"
  assert_eq "$marker" "$(cat "$dir/fs/tmp/marker")" "file written by $id lands in $dir/fs"
  local out
  out=$(ctr_exec --exec-id r1 "$id" cat /etc/greeting /data/c) || ndt_fail "exec into $id failed"
  assert_eq "$(printf '%s\n' "$NDT_GREETING" "$NDT_DATA_C")" "$out" "image content seen from $id"
}

check_tier fast
check_tier slow

ndt_step "an unknown tier is refused"
before=$(ndocker_snapshot_dirs)
snaps_before=$(ctrw snapshots --snapshotter "$SN" ls | LC_ALL=C sort)
if err=$(ctrw container create --snapshotter "$SN" --snapshotter-label "$TIER_LABEL=warm" "$REF" c-warm 2>&1); then
  ndt_fail "container with $TIER_LABEL=warm was created; expected an InvalidArgument error"
fi
grep -qi 'tier' <<<"$err" || ndt_fail "the error for $TIER_LABEL=warm does not mention the tier: $err"
ndt_pass "refused: $err"
assert_eq "$before" "$(ndocker_snapshot_dirs)" "no snapshot folder created for the refused label"
assert_eq "$snaps_before" "$(ctrw snapshots --snapshotter "$SN" ls | LC_ALL=C sort)" "no snapshot listed for the refused label"

ndt_step "remove everything; GC empties both tiers"
for id in c-fast c-slow; do
  ctrw task kill -s SIGKILL "$id"
done
stopped() { [[ "$(ctr_task_status "$1")" == STOPPED ]]; }
for id in c-fast c-slow; do
  ndt_wait_until 20 "task $id to stop" stopped "$id"
  ctrw task rm "$id" >/dev/null
  ctrw container rm "$id"
done
ctrw image rm --sync "$REF" >/dev/null
ndocker_assert_gc_clean 30
