#!/usr/bin/env bash
# Issue 8: a full fast tier never fails a pull (DESIGN §7). The fast tier is
# a tmpfs of 8 MiB and has no budget; the image (random, incompressible data,
# so blob size ~ unpacked size) has layers of about 2.5 MiB (busybox + 512K),
# 3 MiB, 3 MiB, 12 MiB and 256 KiB: the 12 MiB layer cannot fit on the fast
# tier at all, and the two 3 MiB layers cannot both fit next to L0.
#  - `ctr image pull --snapshotter ndocker` succeeds (LASS follows this
#    containerd, so the core knows each layer's expected size);
#  - the 12 MiB layer is on the slow tier; every layer is on some tier, the
#    fast tier's committed bytes fit its filesystem;
#  - a container reads every data file byte-identical to the image;
#  - nothing is left in either tier's staging, and GC empties both tiers.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup enospc_pull
SN=$NDOCKER_SNAPSHOTTER_NAME
export NDT_FAST_TIER_SIZE=8M

ndt_step "registry and an image with a layer bigger than the fast tier"
registry_start
image_build_random "$NDT_WORKDIR/oci" v1 --busybox 512K 3M 3M 12M 256K
# what the data files must read as
work=$NDT_WORKDIR/unpacked
umoci unpack --image "$NDT_WORKDIR/oci:v1" "$work" >/dev/null
(cd "$work/rootfs" && sha256sum data/layer*.bin | sed 's|  data/|  /data/|') >"$NDT_WORKDIR/reference.sums"
rm -rf "$work"
image_push "$NDT_WORKDIR/oci" v1 ndt/enospc
REF=$NDT_IMAGE_REF

ndt_step "ndocker with an 8 MiB tmpfs fast tier, containerd"
ndocker_start
assert_eq "tmpfs ext4" "$(ndt_tier_fstype fast) $(ndt_tier_fstype slow)" "tier filesystems (fast slow)"
fast_total=$(df -B1 --output=size "$(ndocker_tier_dir fast)" | tail -1 | tr -d ' ')
ndt_log "fast tier: $fast_total bytes"
containerd_start

ndt_step "ctr image pull through ndocker"
log=$NDT_WORKDIR/logs/pull-enospc.out
t0=$(ndt_now)
if ! ctrw image pull --plain-http --snapshotter "$SN" "$REF" >"$log" 2>&1; then
  ndt_log "ctr image pull output:"
  cat "$log" >&2
  ndt_log "ndocker log lines about space:"
  grep -iE 'no space|enospc|resource_exhausted|exhausted' "$NDOCKER_LOG" | tail -20 >&2 || true
  ndt_fail "ctr image pull --snapshotter $SN failed with the fast tier full (exact error above)"
fi
echo "TIMING phase=pull seconds=$(ndt_elapsed "$t0")"
ndt_pass "the pull succeeded"

mapfile -t CHAINS < <(image_chain_ids "$REF")
((${#CHAINS[@]} == 5)) || ndt_fail "expected 5 chainIDs, got ${#CHAINS[@]}"
LS=$(ndocker_ls_json)
for ((i = 0; i < 5; i++)); do
  j=$(ndocker_snapshot_json "$LS" "${CHAINS[i]}")
  [[ -n "$j" ]] || ndt_fail "no committed snapshot for L$i (${CHAINS[i]})"
  ndt_log "L$i: $(jq -c '{tier, size, rule, reason}' <<<"$j")"
done
assert_eq slow "$(ndocker_snapshot_json "$LS" "${CHAINS[3]}" | jq -r .tier)" "tier of the 12 MiB layer L3"
fast_bytes=$(jq '[.[] | select(.kind == "committed" and .tier == "fast") | .size] | add // 0' <<<"$LS")
((fast_bytes <= fast_total)) || ndt_fail "committed bytes on the fast tier ($fast_bytes) exceed its filesystem ($fast_total)"
ndt_pass "fast tier holds $fast_bytes committed bytes of $fast_total"
for t in fast slow; do
  assert_eq "" "$(find "$(ndocker_tier_dir "$t")/staging" -mindepth 1 -maxdepth 1 2>/dev/null)" "nothing in the $t tier's staging"
done

ndt_step "a container reads every data file correctly"
out=$(ctr_run --rm --snapshotter "$SN" "$REF" c1 /bin/sh -c 'sha256sum /data/layer*.bin') || ndt_fail "ctr run --rm c1 failed"
assert_eq "$(cat "$NDT_WORKDIR/reference.sums")" "$out" "sha256 of /data/layer*.bin in a container"

ndt_step "image removal: GC leaves the tiers empty"
ctrw image rm --sync "$REF" >/dev/null
ndocker_assert_gc_clean 60
