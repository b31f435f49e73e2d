#!/usr/bin/env bash
# HBCSA cold-start tracer and hot-file profiles (issue 9) against real
# containerd, runc and a registry. The daemon runs with [hbcsa] enabled and a
# short quiet period; the images are built here with umoci from this host's
# files, pushed with skopeo and pulled with `ctr --snapshotter ndocker`:
#   L1 the dynamic loader, the libraries `ldd /usr/bin/cat` lists (libc) and
#      an /etc/ld.so.cache made by `ldconfig -r` for them
#   L2 busybox-static as /bin/sh (a regular file, not a symlink)
#   L3 /usr/bin/cat (dynamically linked)
#   app:   L4 /app/start.sh (#!/bin/sh) reads /app/data/{a,b,c} with
#          /usr/bin/cat (also d with the argument "more"); /app/decoy/{x,y}
#          are never opened
#   other: L4 /srv/run.sh reads /srv/in/{p,q}; /srv/in/unread is not opened
#   quick: L4 /quick/marker only; ENTRYPOINT /bin/sh -c true (exits at once)
# L1-L3 are the same blobs in all three images (shared snapshots); L3 is
# migrated to the slow tier before the runs, so that the files come from both
# tier filesystems (tmpfs, ext4). /etc/ld.so.cache is expected: ldconfig -r
# made it for L1's libraries and the loader opens it when it exists (it is
# the one file no script names).
# Checked, on `ndockerctl profile show --json`, exactly (both ways): the
# paths, the layer (chainID) serving each, its size, its run count, the
# first-access order of a single-process start, the version, the runs.
#  1. app, one `ctr run --rm`: script, /bin/sh, cat, loader, ld.so.cache,
#     libc, data a b c; nothing from /app/decoy.
#  2. app again with "more": the union (+ /app/data/d), runs 2 for the common
#     files and 1 for d, the version grown.
#  3. app ("slow": pauses between its reads) and other started together with
#     `ctr run -d`, both running at once: two separate, exact profiles (the
#     shared base layers' files in both, nothing of one in the other); the
#     traces end by the quiet period (a detached container's rootfs stays
#     until `ctr container rm`); app's version unchanged (same file set),
#     its runs 3.
#  4. quick: a container that exits at once gives a complete trace of
#     /bin/sh ("recorded cold-start trace ... complete=true").
#  5. the opt-out label containerd.io/snapshot/ndocker.trace=false, set with
#     `ctr run --snapshotter-label` (containerd passes containerd.io/snapshot/*
#     labels of the new snapshot on to the snapshotter's Prepare): no trace,
#     no run in quick's profile; the next run without it is traced.
#  6. profile export, rm, import: the same profile back.
#  7. ndockerctl promote app: a hot layer (metadata layer) built from the
#     profile under <fast>/hot/<id>: the profile's files with their data,
#     the decoy as a metacopy stub of the right size; `hot ls` lists it; it
#     survives a restart. With fault points built in, the daemon is killed
#     (-9) after each build step; the restart leaves either no version and no
#     directory, or (after the last step) the ready one.
#  8. app's next containers run over the hot layer, mounted once read-only at
#     <root>/hot-mounts/<id> (META over the layers as data-only layers): files
#     read as in the image (hot ones and stubs), changes copy whole files up
#     into a plain upper (no metacopy/redirect xattrs). Such containers are
#     traced for the hot layer's misses only: t-app-after reads nothing the
#     hot layer lacks (no run recorded); t-hot reads the decoy's stubs, which
#     join the profile (a new version); promote builds a new hot layer with
#     their data and the old version is dropped once unused. `ctr image rm
#     --sync` of app: the hot layer is retired, unmounted and dropped
#     (record, directory, mount point).
# Traces are awaited by polling the profile (bounded), never a fixed sleep.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

ndt_setup hbcsa_trace
ndt_require_cmds ldd ldconfig busybox chroot

TRACE_QUIET_MS=1000
TRACE_LABEL=containerd.io/snapshot/ndocker.trace
DYN_BIN=/usr/bin/cat

L=$NDT_WORKDIR/oci-trace
B=$NDT_WORKDIR/trace-bundle
R=$B/rootfs

# What each image file is: its layer (1-4, bottom first) and size, by path.
declare -A EXP_LAYER=() EXP_SIZE=()

# expect_file PATH LAYER: the file at PATH in the bundle being built belongs to LAYER.
expect_file() {
  [[ -f "$R$1" && ! -L "$R$1" ]] || ndt_fail "image build: $1 is not a regular file in the bundle"
  EXP_LAYER[$1]=$2
  EXP_SIZE[$1]=$(stat -c %s "$R$1")
}

repack() { umoci repack --refresh-bundle --history.created_by "$2" --image "$L:$1" "$B" >/dev/null; }

# ---------------------------------------------------------------------------
ndt_step "images: a loader+libc, busybox /bin/sh and dynamic cat base; three app layers"
umoci init --layout "$L"
umoci new --image "$L:base"
umoci unpack --image "$L:base" "$B" >/dev/null

# L1: exactly what ldd says the dynamic binary needs (libraries and loader),
# copied to the paths ldd prints (symlinks resolved), and their ld.so.cache.
LIBS=()
while read -r line; do
  case $line in
    *"=> /"*) p=${line#*=> }; p=${p%% (*} ;;
    /*) p=${line%% (*} ;;
    *"=> not found"*) ndt_fail "ldd $DYN_BIN: $line" ;;
    *) continue ;; # linux-vdso.so.1: no file
  esac
  mkdir -p "$R$(dirname "$p")"
  cp -L "$p" "$R$p"
  LIBS+=("$p")
done < <(ldd "$DYN_BIN")
((${#LIBS[@]} >= 2)) || ndt_fail "ldd $DYN_BIN listed ${#LIBS[*]} files (${LIBS[*]}): expected the loader and libc at least"
mkdir -p "$R/etc"
ldconfig -X -r "$R" || ndt_fail "ldconfig -r $R failed"
for p in "${LIBS[@]}" /etc/ld.so.cache; do expect_file "$p" 1; done
ndt_log "L1: ${LIBS[*]} /etc/ld.so.cache (from ldd $DYN_BIN and ldconfig -r)"
repack base "ndt trace L1: loader, libraries, ld.so.cache"

# L2: the shell (busybox-static, its applets run in-process or via /proc/self/exe)
mkdir -p "$R"/{bin,tmp,proc,sys,dev}
chmod 1777 "$R/tmp"
cp /bin/busybox "$R/bin/sh"
chmod 0755 "$R/bin/sh"
expect_file /bin/sh 2
repack base "ndt trace L2: busybox-static as /bin/sh"

# L3: the dynamically linked binary
mkdir -p "$R/usr/bin"
cp "$DYN_BIN" "$R$DYN_BIN"
expect_file "$DYN_BIN" 3
repack base "ndt trace L3: $DYN_BIN"
umoci config --image "$L:base" --config.env PATH=/usr/bin:/bin --config.workingdir /

# app_image TAG: a new image TAG from base (L1-L3 shared), bundle unpacked in $B.
app_image() {
  umoci tag --image "$L:base" "$1"
  rm -rf "$B"
  umoci unpack --image "$L:$1" "$B" >/dev/null
}

app_image app
mkdir -p "$R/app/data" "$R/app/decoy"
cat >"$R/app/start.sh" <<'EOF'
#!/bin/sh
# reads a b c; "more": d too; "slow": pauses between the reads and stays up
[ "$1" = slow ] && sleep 0.3
/usr/bin/cat /app/data/a /app/data/b
[ "$1" = slow ] && sleep 0.3
/usr/bin/cat /app/data/c
[ "$1" = more ] && /usr/bin/cat /app/data/d
[ "$1" = slow ] && sleep 3
exit 0
EOF
chmod 0755 "$R/app/start.sh"
for f in a b c d; do printf 'app data %s\n' "$f" >"$R/app/data/$f"; done
head -c 3000 /dev/urandom | base64 >"$R/app/data/b" # sizes differ from file to file
for f in x y; do printf 'decoy %s: never opened\n' "$f" >"$R/app/decoy/$f"; done
for f in /app/start.sh /app/data/a /app/data/b /app/data/c /app/data/d; do expect_file "$f" 4; done
APP_OUT_ABC=$(cat "$R/app/data/a" "$R/app/data/b" "$R/app/data/c")
APP_OUT_D=$(cat "$R/app/data/d")
repack app "ndt trace L4: /app"
umoci config --image "$L:app" --config.entrypoint /app/start.sh

app_image other
mkdir -p "$R/srv/in"
cat >"$R/srv/run.sh" <<'EOF'
#!/bin/sh
sleep 0.3
/usr/bin/cat /srv/in/p
sleep 0.3
/usr/bin/cat /srv/in/q
sleep 3
EOF
chmod 0755 "$R/srv/run.sh"
printf 'other p\n' >"$R/srv/in/p"
printf 'other q, a little longer\n' >"$R/srv/in/q"
printf 'other: never opened\n' >"$R/srv/in/unread"
for f in /srv/run.sh /srv/in/p /srv/in/q; do expect_file "$f" 4; done
OTHER_OUT=$(cat "$R/srv/in/p" "$R/srv/in/q")
repack other "ndt trace L4: /srv"
umoci config --image "$L:other" --config.entrypoint /srv/run.sh

app_image quick
mkdir -p "$R/quick"
printf 'quick: never opened\n' >"$R/quick/marker"
repack quick "ndt trace L4: /quick"
umoci config --image "$L:quick" --config.entrypoint /bin/sh --config.entrypoint -c --config.entrypoint true

# The images work as built (outside any container): chroot into app's tree.
rm -rf "$B"
umoci unpack --image "$L:app" "$B" >/dev/null
out=$(env -i PATH=/usr/bin:/bin "$(command -v chroot)" "$R" /app/start.sh more 2>&1) ||
  ndt_fail "image app does not run in a chroot: $out"
assert_eq "$APP_OUT_ABC"$'\n'"$APP_OUT_D" "$out" "app's /app/start.sh more in a chroot of the image"
rm -rf "$B"

# ---------------------------------------------------------------------------
ndt_step "registry, ndocker with [hbcsa] enabled, containerd, pulls"
registry_start
declare -A REF=() DIGEST=() CHAINS=()
for t in app other quick; do
  image_push "$L" "$t" "trace/$t"
  REF[$t]=$NDT_IMAGE_REF
done
cat >"$NDT_WORKDIR/ndocker-trace.toml" <<EOF
[lass]
containerd_root = "$(containerd_root_dir)"

[hbcsa]
enabled = true
quiet_ms = $TRACE_QUIET_MS
# Steps 1-6 need app traced run after run (a container on a hot layer is not
# traced); step 7 builds the hot layer by hand.
promote = "manual"
EOF
ndocker_start --config "$NDT_WORKDIR/ndocker-trace.toml"
containerd_start
ndt_wait_until 10 "the daemon log line 'cold-start tracer running'" grep -q 'cold-start tracer running' "$NDOCKER_LOG"
if grep -q 'cold-start tracer not running' "$NDOCKER_LOG"; then
  ndt_fail "the tracer did not start: $(grep 'cold-start tracer not running' "$NDOCKER_LOG")"
fi
ndt_pass "tracer running ($(grep -o 'quiet_ms=[0-9]* limit_ms=[0-9]*' "$NDOCKER_LOG" | tail -n 1))"
LS=""
for t in app other quick; do
  ctr_pull "$NDOCKER_SNAPSHOTTER_NAME" "${REF[$t]}"
  DIGEST[$t]=$(ctrw images ls | awk -v r="${REF[$t]}" 'NR > 1 && $1 == r { print $3 }')
  [[ "${DIGEST[$t]}" == sha256:* ]] || ndt_fail "no manifest digest for ${REF[$t]} in ctr images ls"
  CHAINS[$t]=$(image_chain_ids "${REF[$t]}" | tr '\n' ' ')
  read -r -a c <<<"${CHAINS[$t]}"
  ((${#c[@]} == 4)) || ndt_fail "$t: expected 4 layers, got ${#c[@]}"
done
# The chainIDs are the snapshots ndocker committed (ndockerctl ls), base shared.
LS=$(ndocker_ls_json)
for t in app other quick; do
  for c in ${CHAINS[$t]}; do
    [[ -n "$(ndocker_snapshot_json "$LS" "$c")" ]] || ndt_fail "$t: chainID $c is not a committed snapshot in ndockerctl ls --json"
  done
done
read -r -a ca <<<"${CHAINS[app]}"
read -r -a co <<<"${CHAINS[other]}"
assert_eq "${ca[*]:0:3}" "${co[*]:0:3}" "app and other share L1-L3 (chainIDs)"
[[ "${ca[3]}" != "${co[3]}" ]] || ndt_fail "app and other have the same top chainID"
# Serve the images from both tier filesystems (the tracer marks each): L3
# (cat, shared) moves to the slow tier's ext4; the rest stays where placed.
ndockerctlw migrate "${ca[2]}" slow --wait >/dev/null || ndt_fail "ndockerctl migrate ${ca[2]} slow failed"
LS=$(ndocker_ls_json)
assert_eq slow "$(ndocker_snapshot_json "$LS" "${ca[2]}" | jq -r .tier)" "L3 ($DYN_BIN) on the slow tier"
ndt_log "layers of app by tier: $(for c in "${ca[@]}"; do ndocker_snapshot_json "$LS" "$c" | jq -r .tier; done | tr '\n' ' ')(L1-L4; container rootfs upper dirs as placed)"
assert_eq "" "$(ndockerctlw profile ls --json)" "no profile before any container ran"

# ---------------------------------------------------------------------------
# profiles

# profile_json IMAGE: the profile as `ndockerctl profile show --json` prints
# it (empty when there is none yet). By name through containerd.
profile_json() {
  ndockerctlw profile show --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "${REF[$1]}" --json 2>/dev/null || true
}
profile_runs_at_least() {
  local r
  r=$(profile_json "$1" | jq -r '.runs // 0' 2>/dev/null) || return 1
  [[ "$r" =~ ^[0-9]+$ ]] && ((r >= $2))
}

# wait_runs IMAGE N: poll until the profile of IMAGE has N runs (bounded),
# then it must have exactly N. Sets P (the profile JSON).
wait_runs() {
  local t=$1 n=$2 t0
  t0=$(ndt_now)
  ndt_wait_until 30 "the profile of $t to count $n traced run(s)" profile_runs_at_least "$t" "$n"
  P=$(profile_json "$t")
  assert_eq "$n" "$(jq -r .runs <<<"$P")" "$t: traced runs in the profile (after $(ndt_elapsed "$t0")s)"
  ndockerctlw profile show --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "${REF[$t]}" | sed 's/^/    /' >&2
}

# check_profile IMAGE PATH=RUNS...: P holds exactly these files, each served
# by its layer (chainID of EXP_LAYER), of its size, seen in RUNS runs; for
# the image's manifest digest and top chainID, no incomplete run.
check_profile() {
  local t=$1 arg path want got missing extra
  shift
  local -a chain
  read -r -a chain <<<"${CHAINS[$t]}"
  assert_eq "${DIGEST[$t]}" "$(jq -r .image <<<"$P")" "$t: profile's image (manifest digest)"
  assert_eq "${chain[3]}" "$(jq -r .top_chain <<<"$P")" "$t: profile's top layer (chainID)"
  assert_eq 0 "$(jq -r .incomplete_runs <<<"$P")" "$t: incomplete runs"
  local idx
  want=$(for arg in "$@"; do
    path=${arg%=*}
    idx=${EXP_LAYER[$path]:-}
    [[ -n "$idx" ]] || ndt_fail "check_profile: no expectation for $path"
    printf '%s layer=%s size=%s runs=%s\n' "$path" "${chain[idx - 1]}" "${EXP_SIZE[$path]}" "${arg##*=}"
  done | LC_ALL=C sort)
  got=$(jq -r '.files[] | "\(.path) layer=\(.layer) size=\(.size) runs=\(.runs)"' <<<"$P" | LC_ALL=C sort)
  missing=$(LC_ALL=C comm -23 <(cut -d' ' -f1 <<<"$want") <(cut -d' ' -f1 <<<"$got") | tr '\n' ' ')
  extra=$(LC_ALL=C comm -13 <(cut -d' ' -f1 <<<"$want") <(cut -d' ' -f1 <<<"$got") | tr '\n' ' ')
  [[ -z "$missing" ]] || ndt_log "$t: files missing from the profile: $missing"
  [[ -z "$extra" ]] || ndt_log "$t: files in the profile that the start did not read: $extra"
  assert_eq "$want" "$got" "$t: profile files (path, layer, size, runs)"
  local bytes=0 s
  for s in $(jq -r '.files[].size' <<<"$P"); do bytes=$((bytes + s)); done
  assert_eq "$bytes" "$(jq -r .bytes <<<"$P")" "$t: profile bytes = sum of the file sizes"
}

# trace_log CONTAINER WHAT: the daemon's log line WHAT ("trace done",
# "recorded cold-start trace") for CONTAINER.
trace_log() { grep -E "msg=\"$2\" container=\"?$1\"? " "$NDOCKER_LOG" || true; }

APP_BASE=("${LIBS[@]/%/=1}" /etc/ld.so.cache=1 /bin/sh=1 "$DYN_BIN=1" /app/start.sh=1)

# ---------------------------------------------------------------------------
ndt_step "1. app: one ctr run --rm"
out=$(ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "${REF[app]}" t-app-1 2>"$NDT_WORKDIR/logs/run-1.err") ||
  { cat "$NDT_WORKDIR/logs/run-1.err" >&2; ndt_fail "ctr run app failed: $out"; }
assert_eq "$APP_OUT_ABC" "$out" "app's output (a, b, c)"
wait_runs app 1
check_profile app "${APP_BASE[@]}" /app/data/a=1 /app/data/b=1 /app/data/c=1
assert_no_grep '/decoy/' <(jq -r '.files[].path' <<<"$P") "nothing from /app/decoy in app's profile"
# One process chain: kernel exec of the script and its interpreter, the
# shell reading the script, exec of cat, its loader, the cache, libc, data.
order=$(jq -r '[.files[].path] | join(" ")' <<<"$P")
want_order="/app/start.sh /bin/sh $DYN_BIN"
for p in "${LIBS[@]}"; do [[ "$p" == */ld-linux* ]] && want_order+=" $p"; done
want_order+=" /etc/ld.so.cache"
for p in "${LIBS[@]}"; do [[ "$p" != */ld-linux* ]] && want_order+=" $p"; done
want_order+=" /app/data/a /app/data/b /app/data/c"
assert_eq "$want_order" "$order" "app: files in first-access order"
V1=$(jq -r .version <<<"$P")
# ndockerctl plan: each layer's static class (with evidence) and the
# profile's files it serves, consistent with the profile.
PLAN=$(ndockerctlw plan --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "${REF[app]}" --json) ||
  ndt_fail "ndockerctl plan ${REF[app]} failed"
assert_eq "$V1" "$(jq -r .profile_version <<<"$PLAN")" "plan: the profile's version"
for c in "${ca[@]}"; do
  assert_eq "$(jq -r --arg c "$c" '[.files[] | select(.layer == $c)] | length' <<<"$P")" \
    "$(jq -r --arg c "$c" '.layers[] | select(.chain_id == $c) | .hot_files' <<<"$PLAN")" "plan: hot files of layer $c"
done
assert_eq application "$(jq -r --arg c "${ca[3]}" '.layers[] | select(.chain_id == $c) | .class' <<<"$PLAN")" \
  "plan: L4 (the entrypoint script) is an application layer"
[[ "$(jq -r --arg c "${ca[3]}" '.layers[] | select(.chain_id == $c) | .class_evidence | length' <<<"$PLAN")" -ge 1 ]] ||
  ndt_fail "plan: no evidence for L4's class"
ndockerctlw plan --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "${REF[app]}" | sed 's/^/    /' >&2
ndt_log "app profile version $V1; trace: $(trace_log t-app-1 'trace done' | grep -o 'files=.*')"

# ---------------------------------------------------------------------------
ndt_step "2. app again, reading /app/data/d too"
out=$(ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "${REF[app]}" t-app-2 /app/start.sh more 2>"$NDT_WORKDIR/logs/run-2.err") ||
  { cat "$NDT_WORKDIR/logs/run-2.err" >&2; ndt_fail "ctr run app more failed: $out"; }
assert_eq "$APP_OUT_ABC"$'\n'"$APP_OUT_D" "$out" "app's output (a, b, c, d)"
wait_runs app 2
APP_BASE2=("${APP_BASE[@]/%=1/=2}")
check_profile app "${APP_BASE2[@]}" /app/data/a=2 /app/data/b=2 /app/data/c=2 /app/data/d=1
assert_eq /app/data/d "$(jq -r '.files[-1].path' <<<"$P")" "app: the new file is appended last"
V2=$(jq -r .version <<<"$P")
((V2 > V1)) || ndt_fail "app: profile version did not grow with a new file ($V1 -> $V2)"
ndt_pass "app: profile version $V1 -> $V2"

# ---------------------------------------------------------------------------
ndt_step "3. app and other started together (ctr run -d), separate profiles"
ctr_run -d --log-uri "file://$NDT_WORKDIR/logs/c-app.out" --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" \
  "${REF[app]}" c-app /app/start.sh slow >"$NDT_WORKDIR/logs/c-app.ctr" 2>&1 &
pid_a=$!
ctr_run -d --log-uri "file://$NDT_WORKDIR/logs/c-other.out" --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" \
  "${REF[other]}" c-other >"$NDT_WORKDIR/logs/c-other.ctr" 2>&1 &
pid_o=$!
wait "$pid_a" || { cat "$NDT_WORKDIR/logs/c-app.ctr" >&2; ndt_fail "ctr run -d c-app failed"; }
wait "$pid_o" || { cat "$NDT_WORKDIR/logs/c-other.ctr" >&2; ndt_fail "ctr run -d c-other failed"; }
both_running() { [[ "$(ctr_task_status c-app) $(ctr_task_status c-other)" == "RUNNING RUNNING" ]]; }
both_running || ndt_fail "c-app and c-other are not both running after their start: $(ctrw task ls | tr '\n' '|')"
ndt_pass "c-app and c-other run at the same time"
# Their rootfs stays until `ctr container rm`: the traces end by the quiet period.
wait_runs app 3
APP_BASE3=("${APP_BASE[@]/%=1/=3}")
check_profile app "${APP_BASE3[@]}" /app/data/a=3 /app/data/b=3 /app/data/c=3 /app/data/d=1
assert_eq "$V2" "$(jq -r .version <<<"$P")" "app: version unchanged by a run reading no new file"
wait_runs other 1
check_profile other "${LIBS[@]/%/=1}" /etc/ld.so.cache=1 /bin/sh=1 "$DYN_BIN=1" /srv/run.sh=1 /srv/in/p=1 /srv/in/q=1
for c in c-app c-other; do
  line=$(trace_log "$c" 'trace done')
  [[ -n "$line" ]] || ndt_fail "no 'trace done' log line for $c"
  [[ "$line" == *" end=quiet "* ]] || ndt_fail "$c: trace did not end by the quiet period: $line"
  ndt_pass "$c: trace ended by the quiet period ($(grep -o 'files=.*' <<<"$line"))"
done
both_stopped() { [[ "$(ctr_task_status c-app) $(ctr_task_status c-other)" == "STOPPED STOPPED" ]]; }
ndt_wait_until 20 "c-app and c-other to exit" both_stopped
assert_eq "$APP_OUT_ABC" "$(cat "$NDT_WORKDIR/logs/c-app.out")" "c-app's output"
assert_eq "$OTHER_OUT" "$(cat "$NDT_WORKDIR/logs/c-other.out")" "c-other's output"
for c in c-app c-other; do
  ctrw task rm "$c" >/dev/null || ndt_fail "ctr task rm $c failed"
  ctrw container rm "$c" || ndt_fail "ctr container rm $c failed"
done
assert_eq 2 "$(ndockerctlw profile ls --json | wc -l)" "two profiles (app, other)"

# ---------------------------------------------------------------------------
ndt_step "4. quick: a container that exits at once"
ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "${REF[quick]}" t-quick-1 >"$NDT_WORKDIR/logs/run-q1.out" 2>&1 ||
  { cat "$NDT_WORKDIR/logs/run-q1.out" >&2; ndt_fail "ctr run quick failed"; }
wait_runs quick 1
check_profile quick /bin/sh=1
line=$(trace_log t-quick-1 'recorded cold-start trace')
[[ "$line" == *" files=1 complete=true "* ]] || ndt_fail "t-quick-1: no 'recorded cold-start trace ... files=1 complete=true' line: [$line]"
ndt_pass "t-quick-1: short complete trace ($(trace_log t-quick-1 'trace done' | grep -o 'files=.*'))"

# ---------------------------------------------------------------------------
ndt_step "5. opt-out: ctr run --snapshotter-label $TRACE_LABEL=false"
ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" --snapshotter-label "$TRACE_LABEL=false" \
  "${REF[quick]}" t-quick-optout >"$NDT_WORKDIR/logs/run-q2.out" 2>&1 ||
  { cat "$NDT_WORKDIR/logs/run-q2.out" >&2; ndt_fail "ctr run quick (opt-out) failed"; }
# A traced run after it: had the opt-out container been watched, its trace
# (ended when --rm removed its rootfs, before this one was prepared) would
# have been recorded first.
ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "${REF[quick]}" t-quick-2 >"$NDT_WORKDIR/logs/run-q3.out" 2>&1 ||
  { cat "$NDT_WORKDIR/logs/run-q3.out" >&2; ndt_fail "ctr run quick failed"; }
wait_runs quick 2
check_profile quick /bin/sh=2
assert_eq "" "$(trace_log t-quick-optout 'trace done')$(trace_log t-quick-optout 'recorded cold-start trace')" \
  "no trace of the opted-out container t-quick-optout"
[[ -n "$(trace_log t-quick-2 'recorded cold-start trace')" ]] || ndt_fail "t-quick-2 was not recorded"

# Nothing else was recorded anywhere.
assert_eq "$(printf '%s\n' "${DIGEST[app]}" "${DIGEST[other]}" "${DIGEST[quick]}" | LC_ALL=C sort)" \
  "$(ndockerctlw profile ls --json | jq -r .image | LC_ALL=C sort)" "profiles: exactly app, other, quick"
assert_eq "3 1 2" "$(for t in app other quick; do jq -r --arg d "${DIGEST[$t]}" 'select(.image == $d) | .runs' < <(ndockerctlw profile ls --json); done | tr '\n' ' ' | sed 's/ $//')" \
  "runs of app, other, quick in profile ls"
ndt_log "tracer log: $(grep -c 'msg="trace done"' "$NDOCKER_LOG") traces done, $(grep -c 'fanotify queue overflow' "$NDOCKER_LOG" || true) overflows"

ndt_step "6. profile export, rm, import (one node's trace seeds another)"
EXPORTED=$NDT_WORKDIR/app-profile.json
ndockerctlw profile export --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "${REF[app]}" >"$EXPORTED" ||
  ndt_fail "profile export failed"
BEFORE=$(jq -S . "$EXPORTED")
assert_eq "${DIGEST[app]}" "$(jq -r .image "$EXPORTED")" "exported profile's image"
ndockerctlw profile rm --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "${REF[app]}" >/dev/null ||
  ndt_fail "profile rm failed"
assert_eq "" "$(profile_json app)" "app's profile gone after rm"
ndockerctlw profile import "$EXPORTED" >/dev/null || ndt_fail "profile import failed"
assert_eq "$BEFORE" "$(profile_json app | jq -S .)" "the imported profile equals the exported one"

ndt_step "7. promote app: its hot layer from the profile"
HOT_ROOT=$(ndocker_tier_dir fast)/hot
# --keep-layers: the layers stay where they are (step 8 follows their
# directories; demotion is hbcsa_tree's and hbcsa_cri's).
promote_app() {
  ndockerctlw promote --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "${REF[app]}" --keep-layers --json
}
hot_ls_json() { ndockerctlw hot ls --json; }
if [[ "${NDT_FAULT_POINTS:-0}" =~ ^(1|ON|TRUE|true)$ ]]; then
  for point in promote.after-begin promote.after-build promote.after-finish; do
    ndocker_die_at "$point" promote_app
    if [[ $point == promote.after-finish ]]; then
      assert_eq "ready" "$(hot_ls_json | jq -r '.versions[].state')" "after kill -9 at $point: the finished version, ready"
    else
      assert_eq "" "$(hot_ls_json)" "after kill -9 at $point: no hot layer record"
      ndt_dir_empty "$HOT_ROOT" || ndt_fail "after kill -9 at $point: left in $HOT_ROOT: $(ls -A "$HOT_ROOT")"
      ndt_pass "kill -9 at $point: nothing of the build is left"
    fi
  done
else
  ndt_log "fault points not built in (-DNDOCKER_FAULT_POINTS=OFF): the kill -9 steps are skipped"
fi
H=$(promote_app) || ndt_fail "ndockerctl promote failed: $H"
P=$(profile_json app)
assert_eq "${DIGEST[app]}" "$(jq -r .image <<<"$H")" "hot layer's image"
assert_eq 1 "$(jq '[.versions[] | select(.state == "ready")] | length' <<<"$H")" "one ready version"
HV=$(jq -c '.versions[] | select(.state == "ready")' <<<"$H")
assert_eq "$(jq -r .version <<<"$P")" "$(jq -r .profile_version <<<"$HV")" "built from the current profile version"
assert_eq "$(jq '.files | length' <<<"$P")" "$(jq -r .hot_files <<<"$HV")" "every profile file carries its data"
assert_eq 4 "$(jq '.layers | length' <<<"$HV")" "its stubs point into the image's 4 layers"
META=$HOT_ROOT/$(jq -r .id <<<"$HV")
[[ -d "$META" ]] || ndt_fail "no hot layer directory $META"
while IFS=$'\t' read -r path size; do
  [[ -f "$META$path" ]] || ndt_fail "hot layer: $path missing"
  assert_eq "$size" "$(stat -c %s "$META$path")" "hot layer: size of $path"
  if getfattr -n trusted.overlay.metacopy "$META$path" >/dev/null 2>&1; then
    ndt_fail "hot layer: $path is a metacopy stub, not data"
  fi
done < <(jq -r '.files[] | [.path, .size] | @tsv' <<<"$P")
assert_eq "$APP_OUT_ABC" "$(cat "$META/app/data/a" "$META/app/data/b" "$META/app/data/c")" "hot layer: app data a, b, c"
for f in x y; do
  getfattr -n trusted.overlay.metacopy "$META/app/decoy/$f" >/dev/null 2>&1 ||
    ndt_fail "hot layer: /app/decoy/$f (never read) is not a metacopy stub"
  assert_eq "$(printf 'decoy %s: never opened\n' "$f" | wc -c)" "$(stat -c %s "$META/app/decoy/$f")" "stub /app/decoy/$f: size"
  assert_eq 0 "$(stat -c %b "$META/app/decoy/$f")" "stub /app/decoy/$f: no data blocks"
done
ndockerctlw hot ls | sed 's/^/    /' >&2
assert_eq "$(jq -r .id <<<"$HV")" "$(promote_app | jq -r '.versions[] | select(.state == "ready") | .id')" \
  "promote again, same profile version: the same hot layer"
ndocker_restart
assert_eq "$HV" "$(hot_ls_json | jq -c '.versions[] | select(.state == "ready")')" "the hot layer after a restart"
ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "${REF[app]}" t-app-after /app/start.sh >"$NDT_WORKDIR/logs/t-app-after.out" 2>&1 ||
  ndt_fail "app does not run after promotion: $(cat "$NDT_WORKDIR/logs/t-app-after.out")"
ndt_pass "promoted: hot layer $(jq -r .id <<<"$HV"), $(jq -r .bytes <<<"$HV") bytes, $(jq -r .entries <<<"$HV") entries"

ndt_step "8. a container of app runs on the hot layer; the hot layer goes with the image"
HID=$(jq -r .id <<<"$HV")
STACK=$NDOCKER_ROOT/hot-mounts/$HID
assert_grep "prepared snapshot.*t-app-after.*shared_lower=$HID" "$NDOCKER_LOG" "t-app-after was prepared over hot layer $HID"
assert_grep "tracing the hot layer's misses\" container=\"?t-app-after\"? " "$NDOCKER_LOG" \
  "a container on the hot layer is traced for the hot layer's misses"
ndt_wait_until 20 "t-app-after's trace of misses to end" grep -Eq "no hot layer misses\" container=\"?t-app-after\"? " "$NDOCKER_LOG"
P0=$(profile_json app)
assert_eq "$(jq -r .profile_version <<<"$HV")" "$(jq -r .version <<<"$P0")" \
  "t-app-after read only hot files: the profile is still the hot layer's version"
ctr_run -d --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "${REF[app]}" t-hot /bin/sh -c 'sleep 120' >/dev/null ||
  ndt_fail "ctr run -d app t-hot failed"
mountpoint -q "$STACK" || ndt_fail "hot layer $HID is not mounted at $STACK"
stack_opts=$(awk -v mp="$STACK" '$5 == mp { sub(/.* - /, ""); print }' /proc/self/mountinfo)
[[ "$stack_opts" == overlay*"lowerdir=$META::$NDOCKER_ROOT/l/"*metacopy=on* ]] ||
  ndt_fail "hot layer mount: not META over data-only layers through the short links: $stack_opts"
[[ "$stack_opts" == *" ro,"* || "$stack_opts" == *" ro" ]] || ndt_fail "hot layer mount is not read-only: $stack_opts"
ROOTFS_MOUNT=$(grep " - overlay " /proc/self/mountinfo | grep "lowerdir=$STACK," || true)
[[ -n "$ROOTFS_MOUNT" ]] || ndt_fail "t-hot's rootfs is not an overlay with lowerdir=$STACK"
[[ "$ROOTFS_MOUNT" != *metacopy=on* ]] || ndt_fail "t-hot's own overlay has metacopy=on: $ROOTFS_MOUNT"
UPPER=$(grep -o 'upperdir=[^,]*' <<<"$ROOTFS_MOUNT" | head -1 | cut -d= -f2)
# Every file reads as in the image: hot ones from the hot layer, the rest
# (the decoy's stubs) through their redirects from the layers.
exec_out() { ctr_exec --exec-id "e$RANDOM" t-hot "$@"; }
assert_eq "$APP_OUT_ABC"$'\n'"$APP_OUT_D" "$(exec_out /usr/bin/cat /app/data/a /app/data/b /app/data/c /app/data/d)" \
  "t-hot: app data a b c d"
for f in x y; do
  assert_eq "decoy $f: never opened" "$(exec_out /usr/bin/cat /app/decoy/$f)" "t-hot: /app/decoy/$f (a stub in the hot layer)"
done
exec_out /usr/bin/cat "$DYN_BIN" | cmp -s - "$DYN_BIN" || ndt_fail "t-hot: $DYN_BIN differs from the image's"
# Changes copy up whole files into a plain upper: no metacopy, no redirect.
exec_out /bin/sh -c 'echo appended >>/app/decoy/x && chmod 600 /app/data/a && chmod 700 /app/decoy/y' ||
  ndt_fail "t-hot: changing lower files failed"
assert_eq "decoy x: never opened"$'\n'"appended" "$(exec_out /usr/bin/cat /app/decoy/x)" "t-hot: appended to a stub's file"
assert_eq "600 app data a" "$(exec_out /bin/sh -c 'stat -c %a /app/data/a; /usr/bin/cat /app/data/a' | tr '\n' ' ' | sed 's/ $//')" \
  "t-hot: chmod of a hot file keeps its data"
assert_eq "decoy y: never opened" "$(cat "$UPPER/app/decoy/y")" "t-hot: a chmod copied the stub's file up with its data"
assert_eq "" "$(getfattr -R -d -m 'trusted\.overlay\.(metacopy|redirect)' --absolute-names "$UPPER" 2>/dev/null)" \
  "t-hot: no metacopy or redirect xattr in the container's upper dir"
# The daemon restarts while t-hot runs on the hot layer: the hot layer stays
# mounted (a snapshot records it) and the container keeps reading through it.
ndocker_restart
mountpoint -q "$STACK" || ndt_fail "hot layer $HID unmounted by a daemon restart while t-hot runs on it"
assert_eq "app data c" "$(exec_out /usr/bin/cat /app/data/c)" "t-hot reads /app/data/c after a daemon restart"
ctr_remove_container t-hot >/dev/null
ndt_pass "t-hot on hot layer $HID: image content, plain copy-ups"

# t-hot read the decoy's stubs: its trace holds them (the hot files it read
# came from the hot layer, which the tracer does not see), and they join
# app's profile.
profile_has_decoys() {
  profile_json app | jq -e '[.files[].path] | index("/app/decoy/x") and index("/app/decoy/y")' >/dev/null
}
ndt_wait_until 30 "t-hot's misses in app's profile" profile_has_decoys
P=$(profile_json app)
assert_grep "recorded the hot layer's misses\" container=\"?t-hot\"? " "$NDOCKER_LOG" "t-hot's trace recorded as misses"
assert_eq "$(($(jq -r .version <<<"$P0") + 1))" "$(jq -r .version <<<"$P")" "the misses made a new profile version"
assert_eq "$(($(jq -r .runs <<<"$P0") + 1))" "$(jq -r .runs <<<"$P")" "t-hot's trace is one more run"
read -r -a app_chain <<<"${CHAINS[app]}"
for f in x y; do
  assert_eq "${app_chain[3]} $(printf 'decoy %s: never opened\n' "$f" | wc -c) 1" \
    "$(jq -r --arg p "/app/decoy/$f" '.files[] | select(.path == $p) | "\(.layer) \(.size) \(.runs)"' <<<"$P")" \
    "profile: /app/decoy/$f from app's L4, its size, 1 run"
done
assert_eq "$(jq -c '[.files[].path] | sort' <<<"$P0")" \
  "$(jq -c '[.files[].path | select(. != "/app/decoy/x" and . != "/app/decoy/y")] | sort' <<<"$P")" \
  "profile: the other files as before"
# promote builds the new version with the decoy's data; the old version,
# retired, goes once no mount uses it.
OLD_META=$META
H=$(promote_app) || ndt_fail "ndockerctl promote (misses) failed: $H"
HV=$(jq -c '.versions[] | select(.state == "ready")' <<<"$H")
assert_eq "$(jq -r .version <<<"$P")" "$(jq -r .profile_version <<<"$HV")" "the new hot layer is built from the new profile version"
[[ "$(jq -r .id <<<"$HV")" != "$HID" ]] || ndt_fail "promote after the misses kept hot layer $HID"
HID=$(jq -r .id <<<"$HV")
META=$HOT_ROOT/$HID
STACK=$NDOCKER_ROOT/hot-mounts/$HID
for f in x y; do
  if getfattr -n trusted.overlay.metacopy "$META/app/decoy/$f" >/dev/null 2>&1; then
    ndt_fail "new hot layer: /app/decoy/$f is still a metacopy stub"
  fi
  assert_eq "decoy $f: never opened" "$(cat "$META/app/decoy/$f")" "new hot layer: /app/decoy/$f with its data"
done
ndt_wait_until 60 "the previous hot layer version to go" bash -c "[[ ! -e '$OLD_META' ]]"
assert_eq "$HID" "$(hot_ls_json | jq -r '.versions[].id')" "one hot layer version of app: the new one"
ndt_pass "the hot layer's misses: profile version $(jq -r .version <<<"$P"), hot layer $HID"

# The image goes: its top layer's snapshot is removed, the hot layer is
# retired and, with no snapshot or mount on it, unmounted and dropped (with
# fault points: the daemon is killed between the unmount and the drop, and
# the restart finishes it).
TOP_DIR=$(ndocker_tier_dir "$(jq -r '.layers[0].tier' <<<"$HV")")/snapshots/$(jq -r '.layers[0].snapshot_id' <<<"$HV")
[[ -d "$TOP_DIR" ]] || ndt_fail "app's top layer is not at $TOP_DIR"
KILLED_AT_DROP=0
if [[ "${NDT_FAULT_POINTS:-0}" =~ ^(1|ON|TRUE|true)$ ]]; then
  export NDOCKER_FAULT_POINT=hot-drop.after-unmount
  ndocker_restart
  unset NDOCKER_FAULT_POINT
  KILLED_AT_DROP=1
fi
ctrw image rm --sync "${REF[app]}" >/dev/null
if ((KILLED_AT_DROP)); then
  ndt_wait_until 20 "the daemon to die at hot-drop.after-unmount" bash -c "! kill -0 $NDOCKER_PID 2>/dev/null"
  wait "$NDOCKER_PID" 2>/dev/null || true
  assert_grep 'fault point reached" point=hot-drop.after-unmount' "$NDOCKER_LOG" "the daemon died between the unmount and the drop"
  [[ -d "$META" ]] || ndt_fail "the hot layer's directory went before its record"
  ndocker_restart
fi
ndt_wait_until 20 "hot layer $HID to be dropped" bash -c "! mountpoint -q '$STACK' && [[ ! -e '$META' ]]"
# The stack was the last user of the top layer's directory: the Cleanup run
# after the drop removes it (containerd's own Cleanup had to skip it).
ndt_wait_until 20 "app's top layer directory to go" bash -c "[[ ! -e '$TOP_DIR' ]]"
assert_eq "" "$(hot_ls_json | jq -r '.versions[]?.id')" "no hot layer version of app after the image went"
assert_grep "retired hot layer dropped\" image=${DIGEST[app]} hot_layer=$HID" "$NDOCKER_LOG" "the daemon says it dropped hot layer $HID"
ndt_dir_empty "$NDOCKER_ROOT/hot-mounts" || ndt_fail "left in hot-mounts: $(ls -A "$NDOCKER_ROOT/hot-mounts")"
ndt_pass "image removed: hot layer $HID unmounted and dropped"
ndt_pass "cold-start traces and profiles"
