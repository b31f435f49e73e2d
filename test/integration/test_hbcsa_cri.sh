#!/usr/bin/env bash
# HBCSA cold-start tracing of a container started through CRI (issue 9: "the
# same through CRI (pod sandbox + container)"): containerd's CRI plugin
# unpacks into ndocker, RunPodSandbox starts the pause container,
# CreateContainer + StartContainer the app, and the daemon's tracer ([hbcsa]
# enabled, quiet_ms = 1000) must turn the app's start into a profile of
# exactly the files it read, each attributed to the layer that served it.
#
# The app image (3 layers):
#   L0 /bin/sh (busybox-static itself, not a symlink: the exec reports the
#      path it opened), /bin/busybox, /etc/motd (never read)
#   L1 /app/data/{a,b,c}, /app/decoy/{x,y}
#   L2 /app/run.sh (#!/bin/sh), the entrypoint: reads /app/data/a and
#      /app/data/b with shell built-ins (no other executable), prints them
#      and exits 0; /app/data/c and /app/decoy are never opened.
# The pause image is one layer with /pause/busybox (cri_pause_image_push):
# its container is traced too, under its own image; none of its files may
# show up in the app's profile.
# Expected profile of the app: /app/run.sh (L2), /bin/sh (L0), /app/data/a
# and /app/data/b (L1), sizes as in the image, data a before b, no
# incomplete run; the layers are committed ndocker snapshots of containerd's
# namespace k8s.io (ndockerctl ls --json). The daemon then builds the app's
# hot layer by itself ([hbcsa] promote = "after-trace", the default), and a
# second container of the app in the same pod runs on it (not traced). Then
# the containers and the pod are removed through CRI and nothing of them may
# stay mounted, the hot layer's mount included. Demotion: once the hot layer
# is ready, the app's layers that the pull put on the fast tier are moved to
# the slow tier by the mover (while the second container runs).
#
# NDT_VARIANT=create_gap gives L0 an /etc/passwd and /etc/group, as nearly
# every real image has, and waits 2.5 s (> quiet_ms) between CreateContainer
# and StartContainer, as a kubelet may (init containers, image pulls of
# siblings, a loaded node). CreateContainer makes containerd read both files
# from the host through a temporary mount of the container's snapshot
# (oci.WithAdditionalGIDs -> mount.WithTempMount). Those reads are the
# container's files, but they must not start its trace's quiet clock (that
# used to end the trace before the container ran). Expected: those two (L0)
# and the four files above.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup hbcsa_cri
VARIANT=${NDT_VARIANT:-}
case $VARIANT in
  "") CREATE_GAP=0 ;;
  create_gap) CREATE_GAP=2.5 ;;
  *) ndt_fail "unknown NDT_VARIANT=$VARIANT (known: create_gap)" ;;
esac

ndt_step "registry, pause and app images"
registry_start
cri_pause_image_push

A_TEXT="data a: read by run.sh"
B_TEXT="data b: read by run.sh"
L=$NDT_WORKDIR/oci-app
B=$NDT_WORKDIR/app-bundle
R=$B/rootfs
umoci init --layout "$L"
umoci new --image "$L:v1"
umoci unpack --image "$L:v1" "$B" >/dev/null
mkdir -p "$R"/{bin,etc,tmp}
chmod 1777 "$R/tmp"
cp /bin/busybox "$R/bin/sh"
cp /bin/busybox "$R/bin/busybox"
chmod 0755 "$R/bin/sh" "$R/bin/busybox"
printf 'never read\n' >"$R/etc/motd"
EXPECT_ETC=()
if [[ $VARIANT == create_gap ]]; then
  printf 'root:x:0:0:root:/root:/bin/sh\n' >"$R/etc/passwd"
  printf 'root:x:0:\n' >"$R/etc/group"
  EXPECT_ETC=(/etc/passwd /etc/group)
fi
umoci repack --refresh-bundle --history.created_by "ndt L0: busybox-static as /bin/sh" --image "$L:v1" "$B" >/dev/null
mkdir -p "$R/app/data" "$R/app/decoy"
printf '%s\n' "$A_TEXT" >"$R/app/data/a"
printf '%s\n' "$B_TEXT" >"$R/app/data/b"
printf 'data c: never read\n' >"$R/app/data/c"
printf 'decoy x\n' >"$R/app/decoy/x"
head -c 65536 /dev/urandom >"$R/app/decoy/y"
umoci repack --refresh-bundle --history.created_by "ndt L1: /app/data, /app/decoy" --image "$L:v1" "$B" >/dev/null
cat >"$R/app/run.sh" <<'EOF'
#!/bin/sh
# shell built-ins only: no executable but /bin/sh runs
read -r a </app/data/a
read -r b </app/data/b
echo "a=[$a]"
echo "b=[$b]"
EOF
chmod 0755 "$R/app/run.sh"
umoci repack --refresh-bundle --history.created_by "ndt L2: /app/run.sh" --image "$L:v1" "$B" >/dev/null
umoci config --image "$L:v1" --config.entrypoint /app/run.sh --config.workingdir / --config.env PATH=/bin
# sizes as the profile must report them
declare -A SIZE=()
for f in /app/run.sh /bin/sh /app/data/a /app/data/b "${EXPECT_ETC[@]}"; do SIZE[$f]=$(stat -c %s "$R$f"); done
rm -rf "$B"
image_push "$L" v1 ndt/hbcsa-cri
REF=$NDT_IMAGE_REF

ndt_step "daemons: ndocker with [hbcsa] enabled, containerd with CRI"
CONFIG=$NDT_WORKDIR/ndocker-hbcsa.toml
printf '[lass]\ncontainerd_root = "%s"\n\n[hbcsa]\nenabled = true\nquiet_ms = 1000\n' "$(containerd_root_dir)" >"$CONFIG"
ndocker_start --config "$CONFIG"
containerd_start --cri
ndt_wait_until 10 "the tracer to run" grep -q 'cold-start tracer running' "$NDOCKER_LOG"
ver=$(cri version) || ndt_fail "CRI Version failed: $ver"
assert_grep '^runtime_name=containerd$' <(printf '%s\n' "$ver") "CRI RuntimeService answers (Version: $(tr '\n' ' ' <<<"$ver"))"

ndt_step "CRI pulls of the pause and app images"
cri_pull "$NDT_PAUSE_REF"
cri_pull "$REF"
APP_DIGEST=$(cri_manifest_digest "$REF")
PAUSE_DIGEST=$(cri_manifest_digest "$NDT_PAUSE_REF")
mapfile -t CHAINS < <(NDT_NS=k8s.io image_chain_ids "$REF")
((${#CHAINS[@]} == 3)) || ndt_fail "expected 3 chainIDs for the app image, got ${#CHAINS[@]}"
PAUSE_CHAIN=$(NDT_NS=k8s.io image_top_chain_id "$NDT_PAUSE_REF")
ndt_log "app $APP_DIGEST: L0 ${CHAINS[0]}, L1 ${CHAINS[1]}, L2 ${CHAINS[2]}; pause $PAUSE_DIGEST: ${PAUSE_CHAIN}"
# (the listing first: `ctr ... | grep -q` can fail on SIGPIPE under pipefail)
content=$(ctr --address "$NDT_CTRD_SOCK" -n k8s.io content ls)
grep -qF "containerd.io/gc.ref.snapshot.$NDOCKER_SNAPSHOTTER_NAME=${CHAINS[2]}" <<<"$content" ||
  ndt_fail "the app image was not unpacked through $NDOCKER_SNAPSHOTTER_NAME"
grep -qF "containerd.io/gc.ref.snapshot.$NDOCKER_SNAPSHOTTER_NAME=$PAUSE_CHAIN" <<<"$content" ||
  ndt_fail "the pause image was not unpacked through $NDOCKER_SNAPSHOTTER_NAME"
ndt_pass "both images unpacked through $NDOCKER_SNAPSHOTTER_NAME"

ndt_step "pod sandbox and app container through CRI"
POD_CFG=$NDT_WORKDIR/pod.json
CTR_CFG=$NDT_WORKDIR/app.json
cri_pod_config_write "$POD_CFG" hbcsa-pod
cri_container_config_write "$CTR_CFG" app "$REF"
cri_runp "$POD_CFG"
POD_ID=$CRI_POD_ID
cri_create "$POD_ID" "$CTR_CFG" "$POD_CFG"
CTR_ID=$CRI_CONTAINER_ID
if [[ $CREATE_GAP != 0 ]]; then
  ndt_log "NDT_VARIANT=$VARIANT: ${CREATE_GAP}s between CreateContainer and StartContainer"
  sleep "$CREATE_GAP"
fi
cri_start "$CTR_ID"
cri_wait_exited "$CTR_ID" 60
assert_eq 0 "$CRI_EXIT_CODE" "exit code of the app container"
LOG=$NDT_WORKDIR/cri-logs/hbcsa-pod/app.log
ndt_wait_until 10 "the app's output in $LOG" grep -qF "b=[$B_TEXT]" "$LOG"
assert_grep " stdout F a=\[$A_TEXT\]$" "$LOG" "the app read /app/data/a (CRI log)"
assert_grep " stdout F b=\[$B_TEXT\]$" "$LOG" "the app read /app/data/b (CRI log)"
# the cgroup the tracer reads the container id from
assert_eq "/$NDT_NS" "$(jq -r .linux.cgroup_parent "$POD_CFG")" "cgroup parent of the pod"

ndt_step "the app's profile (tracer: quiet_ms = 1000)"
PROFILE=$NDT_WORKDIR/logs/profile-app.json
profile_ready() {
  ndockerctlw profile show "$APP_DIGEST" --json >"$PROFILE" 2>/dev/null && jq -e '.runs >= 1' "$PROFILE" >/dev/null
}
if ! ndt_wait_until_quiet 30 profile_ready; then
  ndt_log "daemon log (tracer and recorder lines):"
  grep -E 'trace|tracer|profile' "$NDOCKER_LOG" | tail -n 30 >&2 || true
  ndockerctlw profile ls >&2 || true
  ndt_fail "no profile of $APP_DIGEST 30 s after the container exited: the tracer missed the CRI container"
fi
ndt_log "profile of the app:"
ndockerctlw profile show "$APP_DIGEST" | sed 's/^/    /' >&2
assert_eq "$APP_DIGEST" "$(jq -r .image "$PROFILE")" "profile.image"
assert_eq "${CHAINS[2]}" "$(jq -r .top_chain "$PROFILE")" "profile.top_chain"
assert_eq 1 "$(jq -r .runs "$PROFILE")" "profile.runs"
assert_eq 0 "$(jq -r .incomplete_runs "$PROFILE")" "profile.incomplete_runs"
expected=$({
  printf '%s\n' "/app/data/a ${CHAINS[1]} ${SIZE[/app/data/a]}" "/app/data/b ${CHAINS[1]} ${SIZE[/app/data/b]}" \
    "/app/run.sh ${CHAINS[2]} ${SIZE[/app/run.sh]}" "/bin/sh ${CHAINS[0]} ${SIZE[/bin/sh]}"
  for f in "${EXPECT_ETC[@]}"; do printf '%s\n' "$f ${CHAINS[0]} ${SIZE[$f]}"; done
} | LC_ALL=C sort)
actual=$(jq -r '.files[] | "\(.path) \(.layer) \(.size)"' "$PROFILE" | LC_ALL=C sort)
assert_eq "$expected" "$actual" "profile files: path, layer (chainID), size"
order=$(jq -r '.files[].path' "$PROFILE" | tr '\n' ' ')
[[ "$order" == *"/app/data/a "*"/app/data/b "* ]] || ndt_fail "first-access order: /app/data/a must come before /app/data/b: $order"
for f in /app/run.sh /bin/sh; do
  [[ "${order%%/app/data/a *}" == *"$f "* ]] || ndt_fail "first-access order: $f must come before the data: $order"
done
ndt_pass "first-access order: $order"
assert_no_grep '"/app/decoy|"/pause/|/app/data/c|/etc/motd|/bin/busybox' "$PROFILE" "nothing of /app/decoy, /app/data/c, /etc/motd, /bin/busybox or the pause image in the app's profile"

SNAPS=$(ndocker_ls_json)
for i in 0 1 2; do
  s=$(ndocker_snapshot_json "$SNAPS" "${CHAINS[i]}")
  [[ -n "$s" ]] || ndt_fail "L$i (${CHAINS[i]}) is not a committed snapshot in ndockerctl ls --json"
  [[ "$(jq -r .key <<<"$s")" == k8s.io/*/"${CHAINS[i]}" ]] || ndt_fail "L$i's snapshot key $(jq -r .key <<<"$s") is not in namespace k8s.io"
  ndt_pass "L$i ${CHAINS[i]}: committed snapshot $(jq -r '.key + " on " + .tier' <<<"$s")"
done
for l in $(jq -r '.files[].layer' "$PROFILE" | sort -u); do
  [[ -n "$(ndocker_snapshot_json "$SNAPS" "$l")" ]] || ndt_fail "profile layer $l is not a committed snapshot (ndockerctl ls --json)"
done
ndt_pass "every layer of the profile is a committed ndocker snapshot"
assert_grep "recorded cold-start trace.* container=\"?$CTR_ID\"? image=$APP_DIGEST " "$NDOCKER_LOG" \
  "the daemon recorded the trace under the CRI container id $CTR_ID"

ndt_step "the pause container's profile (its own image)"
PPROFILE=$NDT_WORKDIR/logs/profile-pause.json
if ndt_wait_until_quiet 10 ndockerctlw profile show "$PAUSE_DIGEST" --json && ndockerctlw profile show "$PAUSE_DIGEST" --json >"$PPROFILE"; then
  ndt_log "pause profile: $(jq -c '[.files[] | {path, layer}]' "$PPROFILE")"
  assert_eq "$NDT_PAUSE_ENTRYPOINT $PAUSE_CHAIN" "$(jq -r '.files[] | "\(.path) \(.layer)"' "$PPROFILE" | sort -u)" \
    "the pause container's profile: only its entrypoint, from the pause layer"
else
  ndt_log "note: no profile of the pause image"
fi

ndt_step "the app's hot layer, built after its trace; a second container runs on it"
HOT_JSON=$NDT_WORKDIR/logs/hot-app.json
hot_ready() {
  ndockerctlw hot ls --json | jq -c --arg d "$APP_DIGEST" 'select(.image == $d) | .versions[] | select(.state == "ready")' >"$HOT_JSON" &&
    [[ -s "$HOT_JSON" ]]
}
ndt_wait_until 30 "the app's hot layer ([hbcsa] promote = after-trace, the default)" hot_ready
HOT_ID=$(jq -r .id "$HOT_JSON")
assert_eq "$(jq -r .version "$PROFILE")" "$(jq -r .profile_version "$HOT_JSON")" "the hot layer is built from the profile's version"
assert_eq "$(jq '.files | length' "$PROFILE")" "$(jq -r .hot_files "$HOT_JSON")" "the hot layer carries the profile's files"
assert_grep "hot layer promoted after a trace\" image=$APP_DIGEST" "$NDOCKER_LOG" "the daemon built it after the trace"
cri_container_config_write "$NDT_WORKDIR/app2.json" app2 "$REF"
cri_create "$POD_ID" "$NDT_WORKDIR/app2.json" "$POD_CFG"
CTR2_ID=$CRI_CONTAINER_ID
cri_start "$CTR2_ID"
cri_wait_exited "$CTR2_ID" 60
assert_eq 0 "$CRI_EXIT_CODE" "exit code of the second app container"
LOG2=$NDT_WORKDIR/cri-logs/hbcsa-pod/app2.log
ndt_wait_until 10 "the second app's output in $LOG2" grep -qF "b=[$B_TEXT]" "$LOG2"
assert_grep " stdout F a=\[$A_TEXT\]$" "$LOG2" "the second app read /app/data/a from the hot layer"
assert_grep "prepared snapshot\" key=\"?k8s.io/[0-9]+/$CTR2_ID\"? .*shared_lower=$HOT_ID" "$NDOCKER_LOG" \
  "the second container's rootfs was prepared over hot layer $HOT_ID"
assert_grep "tracing the hot layer's misses\" container=\"?$CTR2_ID\"? " "$NDOCKER_LOG" \
  "the second container is traced for the hot layer's misses only"
# It read what the first one read, all from the hot layer: no run recorded.
assert_eq 1 "$(ndockerctlw profile show "$APP_DIGEST" --json | jq -r .runs)" "profile.runs after the second container"

ndt_step "demotion: the app's layers go to the slow tier, the hot layer stays on fast"
fast_at_pull=0
for c in "${CHAINS[@]}"; do
  if grep -qE "committed snapshot\" key=.* name=\"?k8s.io/[0-9]+/$c\"? id=[0-9]+ tier=fast " "$NDOCKER_LOG"; then
    fast_at_pull=$((fast_at_pull + 1))
  fi
done
((fast_at_pull >= 1)) || ndt_fail "no layer of the app was committed on the fast tier (LASS keeps the last-downloading one there)"
app_layers_slow() {
  local snaps c
  snaps=$(ndocker_ls_json)
  for c in "${CHAINS[@]}"; do
    [[ "$(ndocker_snapshot_json "$snaps" "$c" | jq -r .tier)" == slow ]] || return 1
  done
}
ndt_wait_until 30 "the app's layers on the slow tier" app_layers_slow
assert_grep "layers demoted: the hot layer holds their hot files\" hot_layer=$HOT_ID to_slow=$fast_at_pull pinned_fast=0" \
  "$NDOCKER_LOG" "the daemon demoted the $fast_at_pull layers the pull had put on fast"
[[ -d "$(ndocker_tier_dir fast)/hot/$HOT_ID" ]] || ndt_fail "the hot layer is not on the fast tier any more"
hot_total=$(ndockerctlw hot ls --json | jq -s '[.[].versions[] | select(.state != "building") | .bytes] | add')
assert_grep "^hot layers on fast: [0-9]+ \(.*\), counted against its budget$" <(ndockerctlw status) \
  "ndockerctl status shows the hot layers ($hot_total bytes)"
ndt_pass "demoted: $fast_at_pull of 3 layers fast -> slow; the hot layer ($(jq -r .bytes "$HOT_JSON") bytes) stays on fast"

ndt_step "remove the containers and the pod through CRI; nothing stays mounted"
CTRD_TASKS=$NDT_CTRD_STATE/io.containerd.runtime.v2.task/k8s.io
assert_grep "^$CTR_ID $POD_ID CONTAINER_EXITED app " <(cri ps) "CRI ListContainers shows the exited app"
out=$(cri rm "$CTR2_ID" 2>&1) || ndt_fail "CRI RemoveContainer $CTR2_ID failed: $out"
out=$(cri rm "$CTR_ID" 2>&1) || ndt_fail "CRI RemoveContainer $CTR_ID failed: $out"
rc=0
cri inspect "$CTR_ID" >/dev/null 2>&1 || rc=$?
assert_eq 1 "$rc" "exit status of inspect after RemoveContainer (1 = absent)"
cri_rm_pod "$POD_ID"
assert_eq "" "$(cri pods)" "CRI ListPodSandbox after RemovePodSandbox"
assert_eq "" "$(cri ps)" "CRI ListContainers after RemovePodSandbox"
# mounts of ndocker's data (overlays naming its tiers): none but the two tier
# filesystems themselves and the ready hot layer's own read-only mount (kept
# for the image's next containers)
ndocker_mounts_left() {
  awk -v r="$NDOCKER_ROOT" '$5 != r "/fast" && $5 != r "/slow" && index($5, r "/hot-mounts/") != 1 && index($0, r "/")' /proc/self/mountinfo
}
ndocker_no_mounts_left() { [[ -z "$(ndocker_mounts_left)" ]]; }
if ! ndt_wait_until_quiet 10 ndocker_no_mounts_left; then
  ndt_fail "mounts naming $NDOCKER_ROOT left after the pod was removed: $(ndocker_mounts_left | tr '\n' '|')"
fi
ndt_pass "no mount references $NDOCKER_ROOT (only the two tier filesystems and the hot layer's mount)"
for id in "$CTR_ID" "$POD_ID"; do
  assert_eq "" "$(ndt__mounts_under "$CTRD_TASKS/$id")" "no mount left below $CTRD_TASKS/$id"
  assert_eq "" "$(ndt__mounts_under "$NDT_CTRD_STATE/io.containerd.grpc.v1.cri/sandboxes/$id")" "no sandbox mount (shm) left for $id"
  [[ ! -e "/sys/fs/cgroup/$NDT_NS/$id" ]] || ndt_fail "cgroup /sys/fs/cgroup/$NDT_NS/$id left behind"
done
shim_gone() { ! pgrep -f -- "-id $POD_ID" >/dev/null; }
ndt_wait_until 10 "the pod's shim to exit" shim_gone
ndt_pass "the pod's shim exited"
active=$(ctr --address "$NDT_CTRD_SOCK" -n k8s.io snapshots --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" ls | awk 'NR > 1 && $NF != "Committed"')
assert_eq "" "$active" "no active snapshot left in namespace k8s.io"
assert_eq "" "$(ndocker_ls_json | jq -r '.[] | select(.kind != "committed") | .key')" "ndockerctl ls: only committed snapshots"
