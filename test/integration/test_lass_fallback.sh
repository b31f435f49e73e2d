#!/usr/bin/env bash
# LASS fallbacks: placement must never make a pull or a run fail.
#  a. [lass] enabled = false: ctr pull works; every layer has rule watcher-off;
#  b. enabled, but containerd_root is a regular file (content store
#     unreadable): ctr pull works; every layer has rule store-unreadable, on
#     the default tier (fast);
#  c. `ctr run` of the image (enabled, no container_tier: default fast, the
#     tmpfs fast tier has room for container_reserve): the container's active
#     rootfs snapshot has rule container-rootfs, tier fast; the container runs.
# Each phase on fresh containerd and ndocker roots.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lass_lib.sh"

ndt_setup lass_fallback
SN=$NDOCKER_SNAPSHOTTER_NAME

ndt_step "registry and a small image with busybox"
registry_start
image_build_random "$NDT_WORKDIR/oci" v1 --busybox 256K 512K
image_push "$NDT_WORKDIR/oci" v1 ndt/lass-fallback
REF=$NDT_IMAGE_REF


ndt_step "a. [lass] enabled = false"
lass_ctr_pull_phase off 2 enabled=false policy=ldl containerd_root="$(lass_ctrd_root off)"
for i in 0 1; do
  lass_expect_placement "$SNAPS" "${CHAINS[i]}" 'fast|slow' watcher-off "LASS off: L$i"
done

ndt_step "b. containerd_root is a regular file"
NOT_A_DIR=$NDT_WORKDIR/not-a-containerd-root
echo "not a directory" >"$NOT_A_DIR"
lass_ctr_pull_phase unreadable 2 enabled=true policy=ldl containerd_root="$NOT_A_DIR"
for i in 0 1; do
  lass_expect_placement "$SNAPS" "${CHAINS[i]}" fast store-unreadable "unreadable store: L$i"
done

ndt_step "c. container rootfs"
lass_ctr_pull_phase run 2 enabled=true policy=ldl containerd_root="$(lass_ctrd_root run)"
ctr_run -d --null-io --snapshotter "$SN" "$REF" c1 /bin/sh -c 'while true; do sleep 1; done' >/dev/null ||
  ndt_fail "ctr run of $REF failed"
running() { [[ "$(ctr_task_status c1)" == RUNNING ]]; }
ndt_wait_until 20 "task c1 to run" running
out=$(ctr_exec --exec-id e1 c1 /bin/sh -c 'ls /data') || ndt_fail "exec into c1 failed"
assert_eq "$(printf 'layer0.bin\nlayer1.bin')" "$out" "container c1 sees both layers"
SNAPS=$(lass_ls_json)
lass_show_snapshots "$SNAPS"
rootfs=$(jq -c '[.[] | select(.kind == "active" and (.key | endswith("/c1")))] | .[0] // empty' <<<"$SNAPS")
[[ -n "$rootfs" ]] || ndt_fail "no active snapshot for container c1 in ndockerctl ls --json"
lass_expect_placement "$SNAPS" "$(jq -r .key <<<"$rootfs")" fast container-rootfs "rootfs of container c1"
ctrw task kill -s SIGKILL c1
stopped() { [[ "$(ctr_task_status c1)" == STOPPED ]]; }
ndt_wait_until 20 "task c1 to stop" stopped
ctrw task rm c1 >/dev/null
ctrw container rm c1

lass_finish
