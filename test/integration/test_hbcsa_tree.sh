#!/usr/bin/env bash
# HBCSA part 2 against real containerd: after `ndockerctl promote --wait`
# (hot layer built, the image's fast-tier layers demoted to slow), the image
# as ndocker serves it is the tree containerd's own overlayfs serves, and a
# container started from it behaves as with overlayfs. The test image is
# lib.sh's multi-layer one (whiteout, opaque dir, xattrs, hardlinks, setuid,
# owners, symlinks).
#  1. overlayfs reference: the image's tree (a mounted view), and what a
#     container that writes, deletes and renames files sees afterwards.
#  2. ndocker: every layer on the fast tier; a first run is traced (its hot
#     files: the ones it reads); a container that checksums the image's files
#     in a loop runs from the layer chain throughout steps 3-4 (its start is
#     traced as well: the profile's second run).
#  3. promote --wait: one ready hot layer; every layer demoted (on slow, the
#     fast tier holds no committed layer); `status --json`: the hot layer's
#     bytes, bytes demoted, nothing in flight; `ndockerctl images`: profiled
#     before, done after (hot layer, no byte of the image's layers on fast).
#  4. With fault points built in: kill -9 at each step of a layer's demotion
#     (the mover's), restart: a fresh view is still the overlayfs tree; the
#     next promote --wait finishes it.
#  5. The live container read the image's bytes on every pass and exits
#     cleanly; once it is gone, no old copy stays on the fast tier: its bytes
#     are the hot layer's alone.
#  6. A fresh view is prepared over the hot layer and its tree (type, mode,
#     owner, size, sha256, link target, xattrs, hardlink groups) equals
#     overlayfs's.
#  7. The writing container, started over the hot layer: the same tree as
#     under overlayfs (append to and overwrite of hot files, delete of a hot
#     hardlink, delete of a directory holding hot files and its re-creation,
#     rename of a directory holding a hot file, chmod, rename, new hardlink).
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup hbcsa_tree
SN=$NDOCKER_SNAPSHOTTER_NAME

ndt_step "registry, test image, ndocker with [hbcsa] enabled, containerd"
registry_start
image_build_and_push
REF=$NDT_IMAGE_REF
cfg=$NDT_WORKDIR/ndocker-tree.toml
cat >"$cfg" <<EOF
[lass]
containerd_root = "$(containerd_root_dir)"

[hbcsa]
enabled = true
quiet_ms = 1000
promote = "manual"
EOF
ndocker_start --config "$cfg"
containerd_start
ndt_wait_until 10 "the daemon log line 'hot layers'" grep -q 'msg="hot layers" mounted=' "$NDOCKER_LOG"
assert_grep 'msg="hot layers" mounted=true' "$NDOCKER_LOG" "hot layers are mounted on this kernel"

# The writing container's script: changes, then one line per path of its
# root filesystem (no other mounts): type, mode, owner; for non-directories
# the link count; for files size and sha256; for symlinks the target.
MUTATE='set -e
echo appended >>/etc/greeting
printf "rewritten\n" >/data/c
rm /opt/hl/one
rm -r /opt/nest
mkdir /opt/nest
echo again >/opt/nest/x
mv /app /app2
chmod 0600 /app2/run.sh
mv /etc/motd /etc/motd2
ln /data/newsub/d /data/newsub/d2
find / -xdev | sort | while read -r p; do
  t=$(stat -c %F "$p")
  line="$p $t $(stat -c "%a %u:%g" "$p")"
  case $t in
    directory) ;;
    symbolic*) line="$line nlink=$(stat -c %h "$p") target=$(readlink "$p")" ;;
    regular*) line="$line nlink=$(stat -c %h "$p") size=$(stat -c %s "$p") $(sha256sum "$p" | cut -d" " -f1)" ;;
    *) line="$line nlink=$(stat -c %h "$p")" ;;
  esac
  echo "$line"
done'
# run_mutate SNAPSHOTTER NAME: the script in a fresh container; its output.
run_mutate() {
  ctr_run --rm --snapshotter "$1" "$REF" "$2" /bin/sh -c "$MUTATE" 2>"$NDT_WORKDIR/logs/$2.err" ||
    { cat "$NDT_WORKDIR/logs/$2.err" >&2; ndt_fail "the writing container $2 through $1 failed"; }
}

# ---------------------------------------------------------------------------
ndt_step "1. reference: the image through containerd's overlayfs"
ctr_pull overlayfs "$REF"
snapshot_tree overlayfs "$REF" >"$NDT_WORKDIR/tree-overlayfs.txt"
run_mutate overlayfs t-mut-overlayfs >"$NDT_WORKDIR/mut-overlayfs.txt"
(($(wc -l <"$NDT_WORKDIR/mut-overlayfs.txt") > 100)) || ndt_fail "the writing container printed too little: $(head -5 "$NDT_WORKDIR/mut-overlayfs.txt")"
assert_grep '^/etc/greeting regular file 644 0:0 nlink=1 size=' "$NDT_WORKDIR/mut-overlayfs.txt" "overlayfs: /etc/greeting written"
assert_no_grep '^/opt/hl/one ' "$NDT_WORKDIR/mut-overlayfs.txt" "overlayfs: /opt/hl/one deleted"
assert_grep '^/app2/run.sh regular file 600 ' "$NDT_WORKDIR/mut-overlayfs.txt" "overlayfs: /app renamed, run.sh chmod 600"
ndt_pass "overlayfs: tree of $(wc -l <"$NDT_WORKDIR/tree-overlayfs.txt") paths; the writing container's view of $(wc -l <"$NDT_WORKDIR/mut-overlayfs.txt") paths"

# ---------------------------------------------------------------------------
ndt_step "2. ndocker: every layer on fast, a traced first run, a container that checksums"
ctr_pull "$SN" "$REF"
mapfile -t CHAINS < <(image_chain_ids "$REF")
((${#CHAINS[@]} == NDT_IMAGE_LAYERS)) || ndt_fail "expected $NDT_IMAGE_LAYERS chainIDs, got ${#CHAINS[@]}"
for c in "${CHAINS[@]}"; do
  ndockerctlw migrate "$c" fast --wait >/dev/null || ndt_fail "ndockerctl migrate $c fast failed"
done
layer_tiers() {
  local ls c
  ls=$(ndocker_ls_json)
  for c in "${CHAINS[@]}"; do ndocker_snapshot_json "$ls" "$c" | jq -r .tier; done | tr '\n' ' ' | sed 's/ $//'
}
assert_eq "$(printf 'fast %.0s' "${CHAINS[@]}" | sed 's/ $//')" "$(layer_tiers)" "every layer on the fast tier"
DIGEST=$(ctrw images ls | awk -v r="$REF" 'NR > 1 && $1 == r { print $3 }')
[[ "$DIGEST" == sha256:* ]] || ndt_fail "no manifest digest for $REF"
profile_runs() {
  ndockerctlw profile show --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "$REF" --json 2>/dev/null | jq -r '.runs // 0'
}
out=$(ctr_run --rm --snapshotter "$SN" "$REF" t-first /bin/sh -c \
  'cat /etc/greeting /data/c /opt/hl/two /opt/nest/deeper/file /app/run.sh >/dev/null && echo read') ||
  ndt_fail "the first container failed: $out"
profile_traced() { (($(profile_runs) >= 1)); }
ndt_wait_until 30 "the first run's trace in the profile" profile_traced
PROFILE=$(ndockerctlw profile show --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "$REF" --json)
for f in /etc/greeting /data/c /opt/hl/two /opt/nest/deeper/file /app/run.sh; do
  jq -e --arg p "$f" '.files[] | select(.path == $p)' <<<"$PROFILE" >/dev/null ||
    ndt_fail "the traced run read $f but the profile lacks it: $(jq -c '[.files[].path]' <<<"$PROFILE")"
done
ndt_pass "profile: $(jq '.files | length' <<<"$PROFILE") hot files from run 1 ($(profile_runs) run)"
image_json() { ndockerctlw images --json | jq -c --arg d "$DIGEST" 'select(.image == $d)'; }
I=$(image_json)
assert_eq "profiled 0 $NDT_IMAGE_LAYERS $NDT_IMAGE_LAYERS" "$(jq -r '"\(.state) \(.hot_layer) \(.layers) \(.layers_fast)"' <<<"$I")" \
  "ndockerctl images: profiled, no hot layer, every layer on fast"

# The live reader: pass 0 writes its sums, every later pass compares.
LIVE_FILES="/etc/greeting /data/c /opt/hl/two /opt/nest/deeper/file /app/run.sh /bin/busybox /etc/motd /data/newsub/d /home/user/profile"
LIVE='mkdir -p /tmp/ck; n=0
sha256sum '"$LIVE_FILES"' >/tmp/ck/sum0 || echo READERR >>/tmp/ck/log
while [ ! -e /tmp/ck/stop ]; do
  if sha256sum '"$LIVE_FILES"' >/tmp/ck/now 2>>/tmp/ck/log; then
    cmp -s /tmp/ck/now /tmp/ck/sum0 || { echo MISMATCH; cat /tmp/ck/now; } >>/tmp/ck/log
  else
    echo READERR >>/tmp/ck/log
  fi
  n=$((n + 1)); echo $n >/tmp/ck/passes
  sleep 0.1
done
echo DONE >>/tmp/ck/log'
ctr_run -d --null-io --snapshotter "$SN" "$REF" c-live /bin/sh -c "$LIVE" >/dev/null || ndt_fail "ctr run -d c-live failed"
# ck_file NAME: c-live's /tmp/ck/NAME as the host sees it in its upperdir.
ck_file() {
  local rootfs=$NDT_CTRD_STATE/io.containerd.runtime.v2.task/$NDT_NS/c-live/rootfs upper
  upper=$(awk -v m="$rootfs" '$5 == m { for (i = 7; i <= NF; i++) if ($i == "-") { print $(i + 3); exit } }' /proc/self/mountinfo |
    tr ',' '\n' | sed -n 's/^upperdir=//p')
  [[ -n "$upper" ]] || ndt_fail "c-live: no overlay with an upperdir mounted at $rootfs"
  echo "$upper/tmp/ck/$1"
}
C_LIVE_UPPER_CK=""
live_passes() { cat "$(ck_file passes)" 2>/dev/null || echo 0; }
live_passes_at_least() { (($(live_passes) >= $1)); }
ndt_wait_until 30 "c-live's first pass" live_passes_at_least 1
C_LIVE_UPPER_CK=$(dirname "$(ck_file passes)")
# Its pass 0 against the reference tree's sha256 of each file.
while read -r sum path; do
  grep -q "^${path#/} .*sha256=$sum " "$NDT_WORKDIR/tree-overlayfs.txt" ||
    ndt_fail "c-live read $path as $sum, not the image's content"
done <"$C_LIVE_UPPER_CK/sum0"
assert_grep "prepared snapshot\" key=\"?[^\" ]*/c-live\"? .*shared_lower=0$" "$NDOCKER_LOG" "c-live runs from the layer chain (no hot layer yet)"
# c-live's start is traced too (its reads join the profile): promoted below
# from both runs, so that a later promote finds the same profile version.
profile_traced_twice() { (($(profile_runs) >= 2)); }
ndt_wait_until 30 "c-live's trace in the profile" profile_traced_twice
ndt_pass "c-live: pass 0 equals the image ($(wc -l <"$C_LIVE_UPPER_CK/sum0") files), $(live_passes) passes so far"

# ---------------------------------------------------------------------------
ndt_step "3. promote --wait: the hot layer, then every layer to slow"
promote() {
  ndockerctlw promote --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "$REF" --wait --json
}
status_json() { ndockerctlw status --json; }
H=$(promote) || ndt_fail "ndockerctl promote --wait failed: $H"
assert_eq "$DIGEST" "$(jq -r .image <<<"$H")" "hot layer's image"
HV=$(jq -c '.versions[] | select(.state == "ready")' <<<"$H")
[[ -n "$HV" ]] || ndt_fail "no ready version after promote: $H"
HID=$(jq -r .id <<<"$HV")
HBYTES=$(jq -r .bytes <<<"$HV")
assert_eq "$NDT_IMAGE_LAYERS" "$(jq '.demoted | length' <<<"$H")" "promote --wait demoted every layer ($(jq -c .demoted <<<"$H"))"
assert_eq "$(printf 'slow %.0s' "${CHAINS[@]}" | sed 's/ $//')" "$(layer_tiers)" "every layer on the slow tier after promote --wait"
S=$(status_json) || ndt_fail "ndockerctl status --json failed: $S"
assert_eq 0 "$(jq -r '.tiers[] | select(.name == "fast") | .committed_bytes | tonumber' <<<"$S")" "status: no committed bytes on fast"
assert_eq "1 $HBYTES" "$(jq -r '"\(.hot_layers | tonumber) \(.hot_layer_bytes | tonumber)"' <<<"$S")" "status: one hot layer of $HBYTES bytes"
assert_eq 0 "$(jq '.migrations | length' <<<"$S")" "status: no migration in flight after --wait"
(($(jq -r '.bytes_demoted | tonumber' <<<"$S") > 0)) || ndt_fail "status: bytes_demoted is 0 after the demotion: $S"
ndt_pass "status --json: hot layer $HID of $HBYTES bytes, $(jq -r .bytes_demoted <<<"$S") bytes demoted, $(jq -r .bytes_migrated <<<"$S") migrated"
ndockerctlw status | sed 's/^/    /' >&2
I=$(image_json)
assert_eq "done $HID $HBYTES 0 0" "$(jq -r '"\(.state) \(.hot_layer) \(.hot_bytes) \(.layers_fast) \(.fast_bytes)"' <<<"$I")" \
  "ndockerctl images: done, hot layer $HID, nothing of the image's layers on fast"
ndockerctlw images | sed 's/^/    /' >&2
H2=$(promote) || ndt_fail "a second promote failed: $H2"
assert_eq "$HID 0" "$(jq -r '"\(.versions[] | select(.state == "ready") | .id) \(.demoted | length)"' <<<"$H2")" \
  "promote again: the same version, nothing left to demote"

# ---------------------------------------------------------------------------
# view_tree NAME: snapshot_tree of the image through ndocker into tree-NAME.txt.
view_tree() { snapshot_tree "$SN" "$REF" >"$NDT_WORKDIR/tree-$1.txt"; }
if [[ "${NDT_FAULT_POINTS:-0}" =~ ^(1|ON|TRUE|true)$ ]]; then
  ndt_step "4. kill -9 at each step of a layer's demotion"
  for point in migrate.after-copy migrate.after-rename migrate.after-txn migrate.after-link; do
    # Back to fast (the hot layer stays ready), then demote with the fault.
    for c in "${CHAINS[@]}"; do ndockerctlw migrate "$c" fast --wait >/dev/null || ndt_fail "migrate $c fast failed"; done
    ndocker_die_at "$point" promote
    assert_eq "$HID" "$(ndockerctlw hot ls --json | jq -r '.versions[] | select(.state == "ready") | .id')" \
      "after kill -9 at $point: hot layer $HID ready"
    view_tree "$point"
    assert_file_eq "$NDT_WORKDIR/tree-overlayfs.txt" "$NDT_WORKDIR/tree-$point.txt" \
      "after kill -9 at $point: a fresh view is the overlayfs tree (layers: $(layer_tiers))"
    promote >/dev/null || ndt_fail "promote --wait after kill -9 at $point failed"
    assert_eq "$(printf 'slow %.0s' "${CHAINS[@]}" | sed 's/ $//')" "$(layer_tiers)" "after kill -9 at $point: the next promote --wait demoted every layer"
  done
else
  ndt_log "fault points not built in (-DNDOCKER_FAULT_POINTS=OFF): the kill -9 steps are skipped"
fi

# ---------------------------------------------------------------------------
ndt_step "5. the live container read the image throughout and exits cleanly"
passes_before=$(live_passes)
ndt_wait_until 30 "c-live to pass again after the demotions" live_passes_at_least $((passes_before + 3))
ctr_exec --exec-id stop c-live /bin/touch /tmp/ck/stop || ndt_fail "ctr task exec c-live touch /tmp/ck/stop failed"
ndt_wait_until 30 "c-live to exit" ctr_task_stopped c-live
log=$(cat "$C_LIVE_UPPER_CK/log" 2>/dev/null || true)
if grep -Eq '^(MISMATCH|READERR)' <<<"$log"; then
  ndt_fail "c-live read changed or unreadable bytes: $(head -20 <<<"$log" | tr '\n' '|')"
fi
assert_eq DONE "$(tail -n 1 <<<"$log")" "c-live left its loop and exited"
ndt_pass "c-live: $(cat "$C_LIVE_UPPER_CK/passes") passes over $(wc -l <"$C_LIVE_UPPER_CK/sum0") files during promotion and demotion, no MISMATCH, no READERR"
ctrw task delete c-live >/dev/null
ctrw container rm c-live
# Its snapshot goes with the container; the Cleanup that follows removes the
# fast copies it kept.
lease=$(ctrw leases create | awk '{ print $1 }')
ctrw leases rm --sync "$lease" >/dev/null
fast_retired() { status_json | jq -r '.tiers[] | select(.name == "fast") | .retired_copies | tonumber'; }
no_fast_retired() { [[ "$(fast_retired)" == 0 ]]; }
ndt_wait_until 30 "the fast tier's retired copies to go" no_fast_retired
assert_eq 0 "$(fast_retired)" "no old copy left on fast"
[[ -z "$(ndocker_snapshot_dirs | grep '^fast/' || true)" ]] ||
  ndt_fail "snapshot folders left on the fast tier: $(ndocker_snapshot_dirs | grep '^fast/' | tr '\n' ' ')"
S=$(status_json)
assert_eq "0 $HBYTES" "$(jq -r '"\(.tiers[] | select(.name == "fast") | .used_bytes | tonumber) \(.hot_layer_bytes | tonumber)"' <<<"$S")" \
  "the fast tier holds the hot layer alone (snapshots: 0 bytes; hot layer: $HBYTES)"

# ---------------------------------------------------------------------------
ndt_step "6. a fresh view over the hot layer is the overlayfs tree"
# Only this step's log lines (step 4 made views too).
log_from=$(($(stat -c %s "$NDOCKER_LOG") + 1))
view_tree promoted
tail -c +"$log_from" "$NDOCKER_LOG" >"$NDT_WORKDIR/logs/step6.log"
assert_grep "viewed snapshot\" key=\"?[^\" ]*/ndt-view-$SN-[0-9]*\"? .*shared_lower=$HID$" "$NDT_WORKDIR/logs/step6.log" "the view was prepared over hot layer $HID"
assert_file_eq "$NDT_WORKDIR/tree-overlayfs.txt" "$NDT_WORKDIR/tree-promoted.txt" \
  "tree over the hot layer equals overlayfs's ($(wc -l <"$NDT_WORKDIR/tree-promoted.txt") paths: type, mode, owner, size, sha256, target, xattrs, hardlink groups)"

# ---------------------------------------------------------------------------
ndt_step "7. writes, deletes and renames in a container over the hot layer"
run_mutate "$SN" t-mut-ndocker >"$NDT_WORKDIR/mut-ndocker.txt"
assert_grep "prepared snapshot\" key=\"?[^\" ]*/t-mut-ndocker\"? .*shared_lower=$HID$" "$NDOCKER_LOG" "t-mut-ndocker ran over hot layer $HID"
assert_file_eq "$NDT_WORKDIR/mut-overlayfs.txt" "$NDT_WORKDIR/mut-ndocker.txt" \
  "the writing container's view through $SN equals overlayfs's ($(wc -l <"$NDT_WORKDIR/mut-ndocker.txt") paths)"
out=$(ctr_run --rm --snapshotter "$SN" "$REF" t-run) || ndt_fail "the image's own command failed: $out"
assert_eq "$NDT_GREETING" "$out" "the image's command prints /etc/greeting"


# ---------------------------------------------------------------------------
ndt_step "8. the fast tier over its high watermark: a pull succeeds, pressure demotes"
# A second image, a layer of 1.5 MB that no longer fits the fast tier.
BIG=$NDT_WORKDIR/oci-big
umoci init --layout "$BIG"
umoci new --image "$BIG:big"
umoci unpack --image "$BIG:big" "$NDT_WORKDIR/big-bundle" >/dev/null
head -c 1500000 /dev/urandom >"$NDT_WORKDIR/big-bundle/rootfs/blob"
umoci repack --image "$BIG:big" "$NDT_WORKDIR/big-bundle" >/dev/null
rm -rf "$NDT_WORKDIR/big-bundle"
image_push "$BIG" big tree/big
BIG_REF=$NDT_IMAGE_REF
# Every layer but the bottom one back on fast would count U bytes with the
# hot layer; a budget of U / 0.95 puts them at 95%: over the 90% mark.
LS=$(ndocker_ls_json)
U=$HBYTES
for c in "${CHAINS[@]:1}"; do U=$((U + $(ndocker_snapshot_json "$LS" "$c" | jq -r .size))); done
BUDGET=$((U * 100 / 95))
cat >>"$cfg" <<EOF

[tiers.fast]
budget = $BUDGET
high_watermark = 0.90
low_watermark = 0.75
pressure_check_seconds = 20
EOF
ndocker_restart
assert_grep "fast-tier pressure demotion on\" budget=$BUDGET " "$NDOCKER_LOG" "pressure demotion on with a budget of $BUDGET bytes"
for c in "${CHAINS[@]:1}"; do ndockerctlw migrate "$c" fast --wait >/dev/null || ndt_fail "migrate $c fast failed"; done
# fast_counted: committed bytes on fast plus the hot layers', as the budget counts them.
fast_counted() { status_json | jq -r '(.tiers[] | select(.name == "fast") | .committed_bytes | tonumber) + (.hot_layer_bytes | tonumber)'; }
before=$(fast_counted)
# The first check runs 20 s after the start: well after this pull.
((before * 100 >= BUDGET * 90)) || ndt_fail "fast tier at $before of $BUDGET bytes before the pull: not over 90%"
ndt_pass "fast tier: $before of $BUDGET bytes counted ($((before * 100 / BUDGET))%) after moving layers 2-$NDT_IMAGE_LAYERS back"
ctr_pull "$SN" "$BIG_REF"
assert_eq slow "$(ndocker_snapshot_json "$(ndocker_ls_json)" "$(image_top_chain_id "$BIG_REF")" | jq -r .tier)" \
  "pull of tree/big at $before of $BUDGET counted fast bytes succeeded; its layer did not fit the budget"
LOW=$((BUDGET * 75 / 100))
under_low() { (($(fast_counted) <= LOW)); }
ndt_wait_until 60 "the pressure check to bring the fast tier under its low watermark ($LOW bytes)" under_low
assert_grep "fast tier over its high watermark: demoting least recently used layers" "$NDOCKER_LOG" "the pressure check ran"
ndt_pass "fast tier at $(fast_counted) of $BUDGET counted bytes (low watermark $LOW); layers now: $(layer_tiers)"
ctr_run --rm --snapshotter "$SN" "$REF" t-after-pressure >/dev/null || ndt_fail "the image does not run after the pressure demotion"
