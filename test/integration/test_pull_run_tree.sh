#!/usr/bin/env bash
# Pull and run the multi-layer test image through the stock overlayfs
# snapshotter and through ndocker; the image as each one serves it (a mounted
# view of the top chainID) must be byte-for-byte the same tree, and must show
# the whiteout, the opaque directory, the xattr, the setuid bit, the owners,
# the symlinks and the hardlinks of the layers. Then the image is removed and
# containerd's GC must leave no snapshot folder and no short link behind.
#
# Runs with the tiers on two filesystems (tmpfs, ext4: the budget move at
# commit copies across them) and, as integration:pull_run_tree@same_fs, with
# NDT_SAME_FS_TIERS=1 on the workdir's filesystem (the move is a rename, and
# Usage must equal overlayfs's to the byte).
#
# Prints "TIMING snapshotter=<x> pull=<s> run=<s>" for each snapshotter.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup pull_run_tree

ndt_step "registry and test image"
registry_start
image_build_and_push
REF=$NDT_IMAGE_REF

ndt_step "ndocker-snapshotter and containerd"
# A fast budget smaller than the image: the 2 MB layer 2 cannot fit after
# layer 1 and is moved to the slow tier at commit, so the tree below is served
# from both tiers at once.
ndocker_start --fast-budget 2MiB
containerd_start
plugin=$(ctrw plugins ls | awk -v n="$NDOCKER_SNAPSHOTTER_NAME" '$1 == "io.containerd.snapshotter.v1" && $2 == n { print $NF }')
assert_eq ok "$plugin" "containerd plugin io.containerd.snapshotter.v1 $NDOCKER_SNAPSHOTTER_NAME status"

# What the container prints, and what it must print (from the image recipe in lib.sh).
RUN_CMD='cat /etc/greeting /etc/greeting.rel /etc/greeting.abs /opt/nest/etc-link/greeting \
  /data/c /data/newsub/d /opt/hl/two /opt/nest/deeper/file; ls -A /data; \
  if [ -e /etc/gone ]; then echo gone-present; else echo gone-absent; fi; \
  stat -c "%a %u:%g %n" /bin/suid-busybox /home/user /opt/owned/f123 /tmp; /app/run.sh'
EXPECTED=$(printf '%s\n' "$NDT_GREETING" "$NDT_GREETING" "$NDT_GREETING" "$NDT_GREETING" \
  "$NDT_DATA_C" "$NDT_DATA_D" "$NDT_HL" "$NDT_DEEP" c newsub gone-absent \
  "4755 0:0 /bin/suid-busybox" "750 1000:1000 /home/user" "640 123:456 /opt/owned/f123" \
  "1777 0:0 /tmp" "$NDT_APP")

# pull_and_run SNAPSHOTTER: timed pull and `ctr run --rm`, output checked,
# then the tree dump of the image as SNAPSHOTTER serves it.
pull_and_run() {
  local sn=$1 t0 pull_s run_s out
  ndt_step "pull and run through $sn"
  t0=$(ndt_now)
  ctr_pull "$sn" "$REF"
  pull_s=$(ndt_elapsed "$t0")
  t0=$(ndt_now)
  out=$(ctr_run --rm --snapshotter "$sn" "$REF" "t1-$sn" /bin/sh -c "$RUN_CMD" 2>"$NDT_WORKDIR/logs/run-$sn.err") ||
    { cat "$NDT_WORKDIR/logs/run-$sn.err" >&2; ndt_fail "ctr run --rm --snapshotter $sn failed; its output: $out"; }
  run_s=$(ndt_elapsed "$t0")
  if [[ "$out" != "$EXPECTED" ]]; then
    diff -u <(echo "$EXPECTED") <(echo "$out") >&2 || true
    ndt_fail "container output through $sn differs from the image recipe (diff above: - expected, + actual)"
  fi
  ndt_pass "container output through $sn ($(wc -l <<<"$out") lines: file contents, whiteout, opaque dir, modes, owners)"
  echo "TIMING snapshotter=$sn pull=$pull_s run=$run_s"
  snapshot_tree "$sn" "$REF" >"$NDT_WORKDIR/tree-$sn.txt"
  ndt_log "tree of $REF through $sn: $(wc -l <"$NDT_WORKDIR/tree-$sn.txt") paths"
}

# assert_tree_facts DUMP SNAPSHOTTER: what the layers must add up to.
assert_tree_facts() {
  local d=$1 sn=$2
  ndt_log "checking the tree served by $sn"
  local busybox_sha
  busybox_sha=$(sha256sum /bin/busybox | cut -d' ' -f1)
  assert_tree_line "$d" etc/greeting "type=f mode=0644 owner=0:0 size=$((${#NDT_GREETING} + 1)) sha256=$(ndt_sha_line "$NDT_GREETING") nlink=1\$" \
    "$sn: /etc/greeting holds the layer-3 content"
  assert_tree_absent "$d" etc/gone "$sn: /etc/gone (whiteout in layer 3) is absent"
  local data
  data=$(awk '$1 ~ /^data\// { print $1 }' "$d" | tr '\n' ' ')
  assert_eq "data/c data/newsub data/newsub/d " "$data" "$sn: opaque /data holds only the layer-4 entries"
  assert_tree_line "$d" data/c "sha256=$(ndt_sha_line "$NDT_DATA_C") " "$sn: /data/c content"
  assert_tree_line "$d" opt/nest/deeper/file "sha256=$(ndt_sha_line "$NDT_DEEP") nlink=1 xattrs=\\{$NDT_XATTR_USER_NAME=\"$NDT_XATTR_USER_VALUE\"\\}\$" \
    "$sn: nested file keeps $NDT_XATTR_USER_NAME; $NDT_XATTR_TRUSTED_NAME is dropped (containerd refuses trusted.* from archives)"
  assert_tree_line "$d" bin/suid-busybox "type=f mode=4755 owner=0:0 size=$(stat -c %s /bin/busybox) sha256=$busybox_sha " \
    "$sn: setuid copy of busybox"
  assert_tree_line "$d" bin/busybox "type=f mode=0755 owner=0:0 .*sha256=$busybox_sha " "$sn: /bin/busybox"
  assert_tree_line "$d" bin/sh "type=l mode=0777 owner=0:0 target=busybox nlink=1\$" "$sn: applet symlink /bin/sh"
  assert_tree_line "$d" etc/greeting.rel "type=l .* target=greeting " "$sn: relative symlink"
  assert_tree_line "$d" etc/greeting.abs "type=l .* target=/etc/greeting " "$sn: absolute symlink"
  assert_tree_line "$d" opt/nest/etc-link "type=l .* target=\\.\\./\\.\\./etc " "$sn: relative directory symlink"
  assert_tree_line "$d" opt/hl/one "sha256=$(ndt_sha_line "$NDT_HL") nlink=2 linkgroup=opt/hl/one\$" "$sn: hardlink 1 of 2"
  assert_tree_line "$d" opt/hl/two "sha256=$(ndt_sha_line "$NDT_HL") nlink=2 linkgroup=opt/hl/one\$" "$sn: hardlink 2 of 2, same inode"
  assert_tree_line "$d" home/user "type=d mode=0750 owner=1000:1000\$" "$sn: directory owned by 1000:1000"
  assert_tree_line "$d" home/user/profile "type=f mode=0644 owner=1000:1000 " "$sn: file owned by 1000:1000"
  assert_tree_line "$d" opt/owned/f123 "type=f mode=0640 owner=123:456 " "$sn: file owned by 123:456"
  assert_tree_line "$d" opt/owned/sgid-dir "type=d mode=2775 owner=1000:1000\$" "$sn: setgid directory"
  assert_tree_line "$d" tmp "type=d mode=1777 owner=0:0\$" "$sn: sticky /tmp"
  assert_tree_line "$d" app/run.sh "type=f mode=0755 " "$sn: layer-5 file"
  assert_no_grep '(^|/)\.wh\.' "$d" "$sn: no whiteout file is visible"
  assert_no_grep ' type=[cb] ' "$d" "$sn: no device node (overlay whiteout) is visible"
  assert_no_grep 'trusted\.overlay\.' "$d" "$sn: no trusted.overlay.* xattr is visible"
}

# ---------------------------------------------------------------------------
# 1. Reference: the stock overlayfs snapshotter. Its image is removed again so
#    that the ndocker pull downloads every blob as well (comparable timings).
pull_and_run overlayfs
assert_tree_facts "$NDT_WORKDIR/tree-overlayfs.txt" overlayfs
image_layer_usage overlayfs "$REF" >"$NDT_WORKDIR/usage-overlayfs.txt"
ctrw image rm --sync "$REF" >/dev/null
ovl_snaps=$NDT_CTRD_ROOT/io.containerd.snapshotter.v1.overlayfs/snapshots
ndt_wait_until 30 "overlayfs snapshot folders to be garbage-collected" ndt_dir_empty "$ovl_snaps"
assert_eq "" "$(ctrw content ls -q)" "content store empty after 'ctr image rm --sync' (overlayfs pass)"

# 2. ndocker
pull_and_run "$NDOCKER_SNAPSHOTTER_NAME"
assert_tree_facts "$NDT_WORKDIR/tree-$NDOCKER_SNAPSHOTTER_NAME.txt" "$NDOCKER_SNAPSHOTTER_NAME"

ndt_step "ndocker serves the same tree as overlayfs"
assert_file_eq "$NDT_WORKDIR/tree-overlayfs.txt" "$NDT_WORKDIR/tree-$NDOCKER_SNAPSHOTTER_NAME.txt" \
  "tree_dump through $NDOCKER_SNAPSHOTTER_NAME equals tree_dump through overlayfs"

image_layer_usage "$NDOCKER_SNAPSHOTTER_NAME" "$REF" >"$NDT_WORKDIR/usage-$NDOCKER_SNAPSHOTTER_NAME.txt"
if [[ "${NDT_SAME_FS_TIERS:-0}" == 1 ]]; then
  # overlayfs and both tiers on the workdir's filesystem: the same blocks.
  assert_file_eq "$NDT_WORKDIR/usage-overlayfs.txt" "$NDT_WORKDIR/usage-$NDOCKER_SNAPSHOTTER_NAME.txt" \
    "Usage (bytes, inodes) of every committed layer through $NDOCKER_SNAPSHOTTER_NAME equals overlayfs"
else
  # Blocks are the filesystem's business (a tmpfs directory takes none, an
  # ext4 one 4 KiB): the inode counts must match, the bytes within one block
  # per inode.
  assert_file_eq <(cut -d' ' -f1,3 "$NDT_WORKDIR/usage-overlayfs.txt") \
    <(cut -d' ' -f1,3 "$NDT_WORKDIR/usage-$NDOCKER_SNAPSHOTTER_NAME.txt") \
    "Usage inodes of every committed layer through $NDOCKER_SNAPSHOTTER_NAME equal overlayfs's"
  far=$(paste -d' ' "$NDT_WORKDIR/usage-overlayfs.txt" "$NDT_WORKDIR/usage-$NDOCKER_SNAPSHOTTER_NAME.txt" |
    awk '{ d = $2 - $5; if (d < 0) d = -d; if (d > 4096 * $3 || ($2 > 0) != ($5 > 0)) print "layer " $1 ": overlayfs " $2 " bytes, ndocker " $5 }')
  [[ -z "$far" ]] || ndt_fail "Usage bytes through $NDOCKER_SNAPSHOTTER_NAME differ from overlayfs's by more than one block per inode: $far"
  ndt_pass "Usage bytes through $NDOCKER_SNAPSHOTTER_NAME within one block per inode of overlayfs's ($(paste -d' ' "$NDT_WORKDIR/usage-overlayfs.txt" "$NDT_WORKDIR/usage-$NDOCKER_SNAPSHOTTER_NAME.txt" | awk '{ printf "L%s %s/%s ", $1, $5, $2 }')ndocker/overlayfs; tiers $(ndt_tier_fstype fast)+$(ndt_tier_fstype slow), overlayfs on $(findmnt -n -o FSTYPE --target "$NDT_CTRD_ROOT"))"
fi

ndt_step "snapshot data lives on the tiers"
dirs=$(ndocker_snapshot_dirs)
ndt_log "snapshot folders: $(tr '\n' ' ' <<<"$dirs")"
[[ -n "$dirs" ]] || ndt_fail "no snapshot folder under $(ndocker_tier_dir fast)/snapshots or $(ndocker_tier_dir slow)/snapshots after the pull"
n=$(grep -c . <<<"$dirs")
((n >= NDT_IMAGE_LAYERS)) || ndt_fail "only $n snapshot folders on the tiers for a $NDT_IMAGE_LAYERS-layer image"
ndt_pass "$n snapshot folders on the tiers (fast: $(grep -c '^fast/' <<<"$dirs" || true), slow: $(grep -c '^slow/' <<<"$dirs" || true)) for $NDT_IMAGE_LAYERS layers"
[[ -n "$(grep '^fast/' <<<"$dirs")" && -n "$(grep '^slow/' <<<"$dirs")" ]] ||
  ndt_fail "expected layers on both tiers with a 2 MiB fast budget"
committed=$(ctrw snapshots --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" ls | awk 'NR > 1 && $NF == "Committed"' | wc -l)
assert_eq "$NDT_IMAGE_LAYERS" "$committed" "committed ndocker snapshots listed by containerd"

ndt_step "image removal: GC must leave nothing on the tiers"
ctrw image rm --sync "$REF" >/dev/null
ndocker_assert_gc_clean 30
