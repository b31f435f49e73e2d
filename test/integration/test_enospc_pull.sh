#!/usr/bin/env bash
# Issue 8: a full fast tier never fails a pull (DESIGN §7). The fast tier is a
# tmpfs of 40 MiB with no budget (the core keeps a reserve free on the fast
# filesystem: 16 MiB today), the slow tier the usual ext4 image.
#  1. Random (incompressible: blob size ~ unpacked size) layers of about
#     2.5 MiB (busybox + 512K), 3 MiB, 3 MiB, 48 MiB and 256 KiB: the pull
#     succeeds; L0 is on the fast tier (it fits by any measure), the 48 MiB
#     layer, bigger than the whole fast tier, on the slow one; the fast tier's
#     committed bytes fit it; no "no space left" anywhere; a container reads
#     every file byte-identical; nothing in staging; GC empties both tiers.
#  2. (integration:enospc_pull@zeros, NDT_VARIANT=zeros) A compressible
#     layer: 48 MiB of zeros in a ~130 KB blob, so an estimate from the
#     blob's size says "small": the unpack itself fills the fast tier, and the
#     pull must still succeed, with the layer on the slow tier, read back
#     intact.
# Each phase prints the placement of every layer (rule and reason).
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup enospc_pull
SN=$NDOCKER_SNAPSHOTTER_NAME
export NDT_FAST_TIER_SIZE=40M

ndt_step "registry and an image with a layer bigger than the fast tier"
registry_start
PHASE=${NDT_VARIANT:-random}
[[ $PHASE == random || $PHASE == zeros ]] || ndt_fail "NDT_VARIANT=$PHASE: want random (default) or zeros"
# reference_sums TAG: sha256 of /data/* in the image, as a container prints them
reference_sums() {
  local work=$NDT_WORKDIR/unpacked
  rm -rf "$work"
  umoci unpack --image "$NDT_WORKDIR/oci:$1" "$work" >/dev/null
  (cd "$work/rootfs" && sha256sum data/* | sed 's|  data/|  /data/|')
  rm -rf "$work"
}
if [[ $PHASE == random ]]; then
  image_build_random "$NDT_WORKDIR/oci" v1 --busybox 512K 3M 3M 48M 256K
  reference_sums v1 >"$NDT_WORKDIR/reference.sums"
  image_push "$NDT_WORKDIR/oci" v1 ndt/enospc
  REF=$NDT_IMAGE_REF
else
  # phase 2's image: busybox, then 48 MiB of zeros (a tiny gzip blob)
  image_build_random "$NDT_WORKDIR/oci" zeros --busybox 64K
  work=$NDT_WORKDIR/imagebuild-zeros
  rm -rf "$work"
  umoci unpack --image "$NDT_WORKDIR/oci:zeros" "$work/bundle" >/dev/null
  head -c 50331648 /dev/zero >"$work/bundle/rootfs/data/zeros.bin"
  umoci repack --refresh-bundle --history.created_by "ndt layer: 48 MiB of zeros" --image "$NDT_WORKDIR/oci:zeros" "$work/bundle" >/dev/null
  rm -rf "$work"
  ndt_log "image zeros: blobs $(image_layer_blob_sizes "$NDT_WORKDIR/oci" zeros | tr '\n' ' ')"
  reference_sums zeros >"$NDT_WORKDIR/reference-zeros.sums"
  image_push "$NDT_WORKDIR/oci" zeros ndt/enospc-zeros
  REF_ZEROS=$NDT_IMAGE_REF
fi

ndt_step "ndocker with a 40 MiB tmpfs fast tier, containerd"
ndocker_start
assert_eq "tmpfs ext4" "$(ndt_tier_fstype fast) $(ndt_tier_fstype slow)" "tier filesystems (fast slow)"
fast_total=$(df -B1 --output=size "$(ndocker_tier_dir fast)" | tail -1 | tr -d ' ')
ndt_log "fast tier: $fast_total bytes"
containerd_start

# pull_checked REF LAYERS: ctr pull through ndocker, which must succeed (the
# exact containerd error is printed otherwise); prints every layer's
# placement; sets CHAINS and LS.
pull_checked() {
  local ref=$1 layers=$2 log=$NDT_WORKDIR/logs/pull-enospc.out t0 i j
  t0=$(ndt_now)
  if ! ctrw image pull --plain-http --snapshotter "$SN" "$ref" >"$log" 2>&1; then
    ndt_log "ctr image pull output:"
    cat "$log" >&2
    ndt_log "ndocker log lines about space:"
    grep -iE 'no space|enospc|resource_exhausted|exhausted|fast-fs' "$NDOCKER_LOG" | tail -20 >&2 || true
    ndt_fail "ctr image pull --snapshotter $SN $ref failed with the fast tier short of space (exact error above)"
  fi
  echo "TIMING phase=pull ref=$ref seconds=$(ndt_elapsed "$t0")"
  ndt_pass "the pull of $ref succeeded"
  mapfile -t CHAINS < <(image_chain_ids "$ref")
  ((${#CHAINS[@]} == layers)) || ndt_fail "expected $layers chainIDs, got ${#CHAINS[@]}"
  LS=$(ndocker_ls_json)
  for ((i = 0; i < layers; i++)); do
    j=$(ndocker_snapshot_json "$LS" "${CHAINS[i]}")
    [[ -n "$j" ]] || ndt_fail "no committed snapshot for L$i (${CHAINS[i]})"
    ndt_log "L$i: $(jq -c '{tier, size, rule, reason}' <<<"$j")"
  done
}
tier_of() { ndocker_snapshot_json "$LS" "${CHAINS[$1]}" | jq -r .tier; }
# check_after_pull REF REFERENCE_SUMS: fast bytes fit, no ENOSPC anywhere,
# nothing in staging, a container reads /data/* intact, GC empties the tiers.
check_after_pull() {
  local ref=$1 sums=$2 fast_bytes out t
  fast_bytes=$(jq '[.[] | select(.kind == "committed" and .tier == "fast") | .size] | add // 0' <<<"$LS")
  ((fast_bytes <= fast_total)) || ndt_fail "committed bytes on the fast tier ($fast_bytes) exceed its filesystem ($fast_total)"
  ndt_pass "fast tier holds $fast_bytes committed bytes of $fast_total"
  assert_no_grep 'no space left on device' "$NDT_WORKDIR/logs/pull-enospc.out" "no ENOSPC in ctr's output"
  for t in fast slow; do
    assert_eq "" "$(find "$(ndocker_tier_dir "$t")/staging" -mindepth 1 -maxdepth 1 2>/dev/null)" "nothing in the $t tier's staging"
  done
  out=$(ctr_run --rm --snapshotter "$SN" "$ref" reader /bin/sh -c 'sha256sum /data/*') || ndt_fail "ctr run --rm of $ref failed"
  assert_eq "$(cat "$sums")" "$out" "sha256 of /data/* in a container of $ref"
  ctrw image rm --sync "$ref" >/dev/null
  ndocker_assert_gc_clean 60
}

if [[ $PHASE == random ]]; then
  ndt_step "1. random layers; L3 (48 MiB) is bigger than the fast tier"
  pull_checked "$REF" 5
  assert_eq fast "$(tier_of 0)" "tier of L0 (2.5 MiB: it fits)"
  assert_eq slow "$(tier_of 3)" "tier of the 48 MiB layer L3"
  check_after_pull "$REF" "$NDT_WORKDIR/reference.sums"
else
  ndt_step "2. 48 MiB of zeros in a ~130 KB blob: the unpack itself fills the fast tier"
  pull_checked "$REF_ZEROS" 2
  assert_eq slow "$(tier_of 1)" "tier of the 48 MiB zeros layer L1"
  check_after_pull "$REF_ZEROS" "$NDT_WORKDIR/reference-zeros.sums"
fi
