#!/usr/bin/env bash
# Issue 8: layers migrate between the tiers (a tmpfs and an ext4 image) while
# containers run from them, and no container ever reads a changed byte.
#
#  - The mover is throttled ([migration] throttle = NDT_MOVER_THROTTLE,
#    default 4MiB per second) so that
#    the containers complete several passes during each round of migrations
#    (checked: the test fails rather than pass without concurrent reads).
#  - The test image: lib.sh's 5 layers (busybox, whiteouts, an opaque dir,
#    xattrs, symlinks, hardlinks) plus a 6th with ~7 MB of random files, a
#    hardlink pair, symlinks and /app/checksummer.sh. Every layer is placed on
#    the fast tier (LASS off, default tier fast).
#  - c1 runs checksummer.sh: it lists every regular file of its rootfs once
#    (the image's files), checksums them all (pass 0, checked against the
#    image on the host), then again and again, printing "MISMATCH <file>" or
#    "READERR <file>" for any difference and counting passes.
#  - Every layer migrates fast->slow (`ndockerctl migrate <chainID> slow
#    --wait`): `ndockerctl ls --json` says slow, generation >= 1, the old copy
#    retired on the fast tier and still on disk (c1's overlay uses it), the new
#    copy byte-identical (tree dump with the overlay xattrs).
#  - c2 starts on the slow copies; the page cache is dropped; every layer
#    migrates back slow->fast: the copies c1 and c2 use (generation 0 on fast,
#    1 on slow) are both still on disk.
#  - Both keep checksumming for several passes after the migrations with no
#    MISMATCH/READERR; a new container c3 reads the image correctly.
#  - c1 is removed (task kill, task delete, container rm, a synchronous GC):
#    the generation-0 copies go, the generation-1 ones stay (c2 runs on them).
#    Then c2 is removed: every retired copy goes, exactly one copy per
#    snapshot remains, byte-identical; finally GC leaves the tiers empty.
#
# Prints "TIMING ..." lines per phase.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup mover_live
SN=$NDOCKER_SNAPSHOTTER_NAME
MIN_PASSES_AFTER=${NDT_MOVER_MIN_PASSES:-5}

[[ -x "$NDOCKERCTL_BIN" ]] || ndt_fail "NDOCKERCTL_BIN=$NDOCKERCTL_BIN is not an executable; build it first"
if ! "$NDOCKERCTL_BIN" --help 2>&1 | grep -Eq '^ +migrate +'; then
  ndt_fail "ndockerctl has no 'migrate' subcommand: issue 8's mover is not in this build ($NDOCKERCTL_BIN)"
fi

# ---------------------------------------------------------------------------
ndt_step "registry, test image with a bulk layer and the checksummer"
registry_start
image_build "$NDT_WORKDIR/oci" v1
work=$NDT_WORKDIR/imagebuild-bulk
rm -rf "$work"
mkdir -p "$work"
umoci unpack --image "$NDT_WORKDIR/oci:v1" "$work/bundle" >/dev/null
r=$work/bundle/rootfs
for d in a b c d; do
  mkdir -p "$r/bulk/$d"
  for i in 1 2 3 4 5 6; do head -c 262144 /dev/urandom >"$r/bulk/$d/f$i"; done
done
mkdir -p "$r/bulk/hl"
head -c 1048576 /dev/urandom >"$r/bulk/hl/one"
ln "$r/bulk/hl/one" "$r/bulk/hl/two"
ln -s ../a/f1 "$r/bulk/hl/sym-rel"
ln -s /bulk/b/f2 "$r/bulk/hl/sym-abs"
mkdir -p "$r/app"
cat >"$r/app/checksummer.sh" <<'EOF'
#!/bin/sh
# Checksums every regular file of the image, pass after pass. Pass 0 is the
# reference; every later pass is compared with it. In /tmp/ck: files, sum0,
# passes (the number of passes completed), log (START, MISMATCH, READERR).
o=/tmp/ck
mkdir -p $o
find / -xdev -type f ! -path '/tmp/*' | sort >$o/files
if ! xargs sha256sum <$o/files >$o/sum0 2>$o/err0; then
  sed 's|^|READERR pass 0: |' $o/err0 >>$o/log
fi
echo "START $(wc -l <$o/files) files" >>$o/log
pass=0
while true; do
  pass=$((pass + 1))
  if ! xargs sha256sum <$o/files >$o/sum 2>$o/err; then
    sed "s|^|READERR pass $pass: |" $o/err >>$o/log
  fi
  awk -v p=$pass 'NR == FNR { want[$2] = $1; next }
    { got[$2] = 1; if (want[$2] != $1) print "MISMATCH " $2 " pass " p }
    END { for (f in want) if (!(f in got)) print "READERR " f " pass " p " (no checksum)" }' $o/sum0 $o/sum >>$o/log
  echo $pass >$o/passes.new && mv $o/passes.new $o/passes
done
EOF
chmod 0755 "$r/app/checksummer.sh"
umoci repack --refresh-bundle --history.created_by "ndt layer 6: bulk data, links, checksummer" \
  --image "$NDT_WORKDIR/oci:v1" "$work/bundle" >/dev/null
# The reference: sha256 of every regular file of the image (as the container
# lists them: absolute paths, /tmp left out).
(cd "$r" && find . -xdev -type f ! -path './tmp/*' | LC_ALL=C sort | xargs sha256sum) |
  sed 's|  \./|  /|' | LC_ALL=C sort -k2 >"$NDT_WORKDIR/reference.sums"
ndt_log "image: $(wc -l <"$NDT_WORKDIR/reference.sums") regular files, $(du -sh --apparent-size "$r" | cut -f1) apparent"
rm -rf "$work"
image_push "$NDT_WORKDIR/oci" v1 ndt/mover
REF=$NDT_IMAGE_REF

ndt_step "ndocker (LASS off, every layer on the fast tier, mover throttled) and containerd"
# The throttle makes each direction take a few seconds (~10 MB of layers), so
# that the containers run many checksum passes while the copies are made.
cfg=$NDT_WORKDIR/ndocker-mover.toml
# No hot layer: the containers here mount the layer chain itself, whose
# copies the test follows (a hot layer's mount names the layers too and would
# hold the copies it was made over; hbcsa_cri demotes under one).
printf '[lass]\nenabled = false\ncontainerd_root = "%s"\n[placement]\ndefault_tier = "fast"\n[migration]\nthrottle = "%s"\n[hbcsa]\npromote = "manual"\n' \
  "$(containerd_root_dir)" "${NDT_MOVER_THROTTLE:-4MiB}" >"$cfg"
ndocker_start --config "$cfg"
assert_eq "tmpfs ext4" "$(ndt_tier_fstype fast) $(ndt_tier_fstype slow)" "tier filesystems (fast slow)"
containerd_start
t0=$(ndt_now)
ctr_pull "$SN" "$REF"
echo "TIMING phase=pull seconds=$(ndt_elapsed "$t0")"
mapfile -t CHAINS < <(image_chain_ids "$REF")
((${#CHAINS[@]} == 6)) || ndt_fail "expected 6 chainIDs, got ${#CHAINS[@]}"

# per layer: snapshot id, and the tree dump of its generation-0 copy
LS=$(ndocker_ls_json)
declare -A ID=() GEN0=() GEN1=()
for c in "${CHAINS[@]}"; do
  j=$(ndocker_snapshot_json "$LS" "$c")
  [[ -n "$j" ]] || ndt_fail "no committed snapshot for chainID $c in ndockerctl ls --json"
  [[ "$(jq -r .tier <<<"$j")" == fast ]] || ndt_fail "layer $c is not on the fast tier before the migrations: $j"
  ID[$c]=$(jq -r .id <<<"$j")
  GEN0[$c]=$(ndocker_current_fs "${ID[$c]}")
  NDT_TREE_DUMP_OVERLAY_XATTRS=1 tree_dump "${GEN0[$c]}" >"$NDT_WORKDIR/layer-${ID[$c]}.dump"
done
ndt_pass "6 layers committed on the fast tier (ids ${ID[*]})"

# ---------------------------------------------------------------------------
# containers that checksum

# start_checksummer ID: ctr run -d ID /app/checksummer.sh; waits for pass 1
# and checks pass 0 against the image.
start_checksummer() {
  local id=$1
  ctr_run -d --null-io --snapshotter "$SN" "$REF" "$id" /app/checksummer.sh >/dev/null ||
    ndt_fail "ctr run -d $id failed"
  ndt_wait_until 60 "container $id to finish its first checksum pass" passes_at_least "$id" 1
  LC_ALL=C sort -k2 "$(ck_dir "$id")/sum0" >"$NDT_WORKDIR/$id.sum0"
  assert_file_eq "$NDT_WORKDIR/reference.sums" "$NDT_WORKDIR/$id.sum0" "$id: pass 0 checksums equal the image's files"
}
# ck_dir ID: the container's /tmp/ck as the host sees it, in its rootfs
# overlay's upperdir (read from the host: `ctr task exec` may lose the output
# of a short command on a busy machine).
ck_dir() {
  local rootfs=$NDT_CTRD_STATE/io.containerd.runtime.v2.task/$NDT_NS/$1/rootfs upper
  upper=$(awk -v m="$rootfs" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 3); exit } }' /proc/self/mountinfo |
    tr ',' '\n' | sed -n 's/^upperdir=//p')
  [[ -n "$upper" ]] || ndt_fail "container $1: no overlay with an upperdir mounted at $rootfs"
  echo "$upper/tmp/ck"
}
passes() { cat "$(ck_dir "$1")/passes" 2>/dev/null || echo 0; }
passes_at_least() { (($(passes "$1") >= $2)); }
checksum_log() { cat "$(ck_dir "$1")/log"; }
# assert_checksums_clean ID: no MISMATCH or READERR in ID's log.
assert_checksums_clean() {
  local log
  log=$(checksum_log "$1") || ndt_fail "cannot read $1's checksum log"
  if grep -Eq '^(MISMATCH|READERR)' <<<"$log"; then
    ndt_fail "$1 read changed or unreadable bytes: $(grep -E '^(MISMATCH|READERR)' <<<"$log" | head -20 | tr '\n' '|')"
  fi
  ndt_pass "$1: $(passes "$1") passes over $(sed -n 's/^START //p' <<<"$log"), no MISMATCH, no READERR"
}
# gc_now: a synchronous containerd GC (removing a lease with --sync collects
# everything unreferenced; the snapshotter gets its Removes and a Cleanup).
gc_now() {
  local lease
  lease=$(ctrw leases create | awk '{ print $1 }')
  ctrw leases rm --sync "$lease" >/dev/null
}

# migrate_all TIER: ndockerctl migrate <chainID> TIER --wait for every layer,
# top first; then checks each layer's record and new copy. Sets MIGRATE_SECONDS.
migrate_all() {
  local to=$1 c out t0 j cur i
  t0=$(ndt_now)
  for ((i = ${#CHAINS[@]} - 1; i >= 0; i--)); do
    c=${CHAINS[i]}
    out=$(ndockerctlw migrate "$c" "$to" --wait 2>&1) || ndt_fail "ndockerctl migrate $c $to --wait failed: $out"
    ndt_log "migrate L$i ($c) -> $to: $(tr '\n' ' ' <<<"$out")"
  done
  MIGRATE_SECONDS=$(ndt_elapsed "$t0")
  LS=$(ndocker_ls_json)
  for c in "${CHAINS[@]}"; do
    j=$(ndocker_snapshot_json "$LS" "$c")
    [[ "$(jq -r .tier <<<"$j")" == "$to" ]] || ndt_fail "after migrate $to, ls --json of $c says: $j"
    case $(jq -r '.migration // ""' <<<"$j") in
      queued | copying) ndt_fail "migrate --wait returned while $c is still migrating: $j" ;;
    esac
    cur=$(ndocker_current_fs "${ID[$c]}")
    [[ "$cur" == "$(realpath "$(ndocker_tier_dir "$to")")"/* ]] ||
      ndt_fail "the link of $c resolves to $cur, not to the $to tier"
    NDT_TREE_DUMP_OVERLAY_XATTRS=1 tree_dump "$cur" >"$NDT_WORKDIR/now.dump"
    assert_file_eq "$NDT_WORKDIR/layer-${ID[$c]}.dump" "$NDT_WORKDIR/now.dump" "the $to copy of layer ${ID[$c]} is byte-identical"
  done
}

# assert_copies_exist LABEL GEN_ARRAY_NAME: every copy is still on disk, unchanged.
assert_copies_exist() {
  local -n gens=$2
  local c
  for c in "${CHAINS[@]}"; do
    [[ -d "${gens[$c]}" ]] || ndt_fail "$1 copy ${gens[$c]} of layer ${ID[$c]} is gone while a container uses it"
    NDT_TREE_DUMP_OVERLAY_XATTRS=1 tree_dump "${gens[$c]}" >"$NDT_WORKDIR/old.dump"
    cmp -s "$NDT_WORKDIR/layer-${ID[$c]}.dump" "$NDT_WORKDIR/old.dump" ||
      ndt_fail "$1 copy ${gens[$c]} of layer ${ID[$c]} changed while a container uses it"
  done
  ndt_pass "every $1 copy is still on disk, unchanged"
}

# ---------------------------------------------------------------------------
ndt_step "c1 checksums the image while its layers migrate fast -> slow"
start_checksummer c1
p_before=$(passes c1)
migrate_all slow
p_after=$(passes c1)
echo "TIMING phase=migrate-fast-to-slow layers=6 seconds=$MIGRATE_SECONDS c1_passes_during=$((p_after - p_before))"
# Not vacuous: the container really read while the layers were being copied.
((p_after - p_before >= 2)) || ndt_fail "c1 completed only $((p_after - p_before)) checksum passes during the migrations ($MIGRATE_SECONDS s): nothing was read while copying"
LS=$(ndocker_ls_json)
for c in "${CHAINS[@]}"; do
  j=$(ndocker_snapshot_json "$LS" "$c")
  (($(jq -r '.generation // -1' <<<"$j") >= 1)) || ndt_fail "layer $c: generation not >= 1 after a migration: $j"
  # the retired copy on the fast tier is listed and is the one c1 uses
  path=$(jq -r '[.retired[]? | select(.tier == "fast")][0].path // empty' <<<"$j")
  [[ -n "$path" ]] || ndt_fail "layer $c: no retired copy on the fast tier in ls --json while c1 uses it: $j"
  [[ -d "$path" ]] || ndt_fail "layer $c: retired copy $path is not on disk"
  [[ "${GEN0[$c]}" == "$(realpath "$path")" || "${GEN0[$c]}" == "$(realpath "$path")/fs" ]] ||
    ndt_fail "layer $c: retired copy $path is not the copy c1 uses (${GEN0[$c]})"
  GEN1[$c]=$(ndocker_current_fs "${ID[$c]}")
done
ndt_pass "every layer on the slow tier at generation >= 1, the fast copies retired and listed"
assert_copies_exist generation-0 GEN0
assert_checksums_clean c1

ndt_step "c2 starts on the slow copies; page cache dropped; every layer migrates slow -> fast"
start_checksummer c2
sync
echo 3 >/proc/sys/vm/drop_caches # c2's next reads come from the ext4 image
p1=$(passes c1) p2=$(passes c2)
migrate_all fast
q1=$(passes c1) q2=$(passes c2)
echo "TIMING phase=migrate-slow-to-fast layers=6 seconds=$MIGRATE_SECONDS c1_passes_during=$((q1 - p1)) c2_passes_during=$((q2 - p2))"
((q1 - p1 >= 2 && q2 - p2 >= 2)) || ndt_fail "c1/c2 completed only $((q1 - p1))/$((q2 - p2)) passes during the migrations back: nothing was read while copying"
LS=$(ndocker_ls_json)
for c in "${CHAINS[@]}"; do
  j=$(ndocker_snapshot_json "$LS" "$c")
  (($(jq -r '.generation // -1' <<<"$j") >= 2)) || ndt_fail "layer $c: generation not >= 2 after two migrations: $j"
  [[ -n "$(jq -r '[.retired[]? | select(.tier == "slow")][0].path // empty' <<<"$j")" ]] ||
    ndt_fail "layer $c: no retired copy on the slow tier in ls --json while c2 uses it: $j"
done
assert_copies_exist generation-0 GEN0
assert_copies_exist generation-1 GEN1

ndt_step "both keep checksumming after the migrations"
t0=$(ndt_now)
for id in c1 c2; do
  want=$(($(passes "$id") + MIN_PASSES_AFTER))
  ndt_wait_until 120 "$id to complete $MIN_PASSES_AFTER more passes" passes_at_least "$id" "$want"
  assert_checksums_clean "$id"
done
echo "TIMING phase=passes-after seconds=$(ndt_elapsed "$t0") passes=$MIN_PASSES_AFTER"
out=$(ctr_run --rm --snapshotter "$SN" "$REF" c3 /bin/sh -c \
  "find / -xdev -type f ! -path '/tmp/*' | sort | xargs sha256sum") || ndt_fail "ctr run --rm c3 failed"
LC_ALL=C sort -k2 <<<"$out" >"$NDT_WORKDIR/c3.sums"
assert_file_eq "$NDT_WORKDIR/reference.sums" "$NDT_WORKDIR/c3.sums" "a new container c3 reads every file of the image correctly"

ndt_step "c1 goes: the generation-0 copies go, the generation-1 copies stay for c2"
t0=$(ndt_now)
ctr_remove_container c1
gc_now
gen0_gone() {
  local c
  for c in "${CHAINS[@]}"; do [[ ! -e "${GEN0[$c]}" ]] || return 1; done
}
ndt_wait_until 60 "the generation-0 copies to be deleted after c1 was removed" gen0_gone
echo "TIMING phase=reap-after-c1 seconds=$(ndt_elapsed "$t0")"
ndt_pass "generation-0 copies deleted"
assert_copies_exist generation-1 GEN1
assert_checksums_clean c2

ndt_step "c2 goes: every retired copy goes, one copy per snapshot remains"
t0=$(ndt_now)
ctr_remove_container c2
gc_now
one_copy_each() {
  local ls c
  ls=$(ndocker_ls_json)
  [[ "$(jq '[.[] | .retired // [] | length] | add // 0' <<<"$ls")" == 0 ]] || return 1
  for c in "${CHAINS[@]}"; do [[ ! -e "${GEN1[$c]}" ]] || return 1; done
  # one folder per snapshot id on the tiers (<id> or <id>-<generation>)
  [[ -z "$(ndocker_snapshot_dirs | sed 's|^[a-z]*/||; s|-.*||' | sort | uniq -d)" ]]
}
if ! ndt_wait_until_quiet 60 one_copy_each; then
  ndt_log "ls --json: $(ndocker_ls_json | jq -c '[.[] | {key, tier, generation, migration, retired}]')"
  ndt_log "snapshot dirs: $(ndocker_snapshot_dirs | tr '\n' ' ')"
  ndt_fail "retired copies left 60 s after every container was removed"
fi
echo "TIMING phase=reap-after-c2 seconds=$(ndt_elapsed "$t0")"
ndt_pass "no retired copy left; one folder per snapshot: $(ndocker_snapshot_dirs | tr '\n' ' ')"
for c in "${CHAINS[@]}"; do
  NDT_TREE_DUMP_OVERLAY_XATTRS=1 tree_dump "$(ndocker_current_fs "${ID[$c]}")" >"$NDT_WORKDIR/now.dump"
  cmp -s "$NDT_WORKDIR/layer-${ID[$c]}.dump" "$NDT_WORKDIR/now.dump" || ndt_fail "layer ${ID[$c]} changed after the reaping"
done
ndt_pass "every layer still byte-identical"
for t in fast slow; do
  assert_eq "" "$(find "$(ndocker_tier_dir "$t")/staging" -mindepth 1 -maxdepth 1 2>/dev/null)" "nothing in the $t tier's staging"
done

ndt_step "image removal: GC leaves the tiers empty"
ctrw image rm --sync "$REF" >/dev/null
ndocker_assert_gc_clean 60
