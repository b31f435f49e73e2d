#!/usr/bin/env bash
# HBCSA "measure and report" (issue 9): for each corpus image, one traced cold
# start through ndocker with the cold-start tracer on, and the static
# analysis' verdicts for the same image. Not part of CI. Root only. Needs the
# corpus built (images/build.sh) and the daemon, ndockerctl and
# ndocker-analyze built (build/).
#
#   test/bench/hif.sh [--images a,b] [--out FILE.csv] [--quiet-ms 2000]
#                     [--limit-ms 30000] [--keep-raw DIR] [--crosscheck]
#
# Setup (one throwaway set, test/integration/lib.sh): a docker-registry in
# the workdir that every image is pushed to (images/push.sh), ndocker with
#   [lass] containerd_root = <this containerd's root>   (LASS on: the static
#   [hbcsa] enabled = true, quiet_ms, limit_ms           advisor follows its
#                                                       pull sessions)
# (fast tier: tmpfs NDT_FAST_TIER_SIZE, default here 1G; slow tier: ext4
# image NDT_SLOW_TIER_SIZE, default here 3G), and containerd 1.6 with ndocker
# as proxy snapshotter; everything in the host network namespace (the tcp
# probes connect to 127.0.0.1; `ctr run --net-host`). No testbed, no shaping:
# what is measured is what a cold start reads, not how long it takes.
# NDB_HIF_EXTRA_CONFIG: TOML appended to the daemon's config, e.g.
# $'[placement]\ncontainer_tier = "fast"'.
#
# Per image, one after the other (each image removed, snapshots GC'd, before
# the next; so every image is pulled onto empty tiers):
#   1. `ctr image pull --snapshotter ndocker` (fetch, then unpack);
#   2. `ndocker-analyze --json <content store> <manifest>`: the class and
#      keep_fast of every layer (the daemon's static advisor computes the
#      same); the same analysis of the image with its history as BuildKit
#      writes it (analyze_buildkit below: the corpus' base layer carries a
#      comment of its own that the analyzer misreads); `ndockerctl ls --json`:
#      the tier and rule the daemon gave each layer at its unpack
#      (static-engine / static-app when the static analysis kept it fast);
#      `ndockerctl plan --json` is kept too (it has LASS's decisions only);
#   3. caches dropped, `ctr run --rm --net-host` until the corpus probe fires
#      (stdout line or tcp port, images/corpus.sh bench_probe_wait);
#   4. the container keeps running until the tracer ends the trace by itself
#      (nothing new for quiet_ms, or limit_ms after the first event) and the
#      profile exists (`ndockerctl profile ls --json`, polled for at most
#      limit_ms + 15 s); then SIGKILL. If the profile is still missing then,
#      the kill ends the trace (reason "exit") and it is polled 15 s more;
#   5. the profile (`profile show <digest> --json`), the daemon's
#      "trace done" / "recorded cold-start trace" log lines.
#
# Output: FILE.csv (default results/hif-<date>.csv), one row per image:
#   image, category, manifest, layers,
#   unpacked_bytes   sum of the layers' regular-file bytes (ndocker-analyze
#                    file_bytes: what the layer tars hold, overwritten files
#                    counted in each layer)
#   rootfs_bytes     du -sb of the final rootfs (build.sh info.json, the
#                    README's "unpacked MB")
#   profile_files, profile_bytes (sum of the profile files' sizes),
#   share            profile_bytes / unpacked_bytes
#   share_rootfs     profile_bytes / rootfs_bytes
#   probe_s          ctr run -> probe fired
#   trace_end, trace_events, trace_complete, tracer_cpu_ms (the daemon's
#                    "trace done" line: why it ended, events, overflow, CPU)
#   trace_end_s      ctr run -> the trace's end (its log time); for a "quiet"
#                    end the last new file came quiet_ms before
#   trace_after_probe_s  trace end minus probe time (< 0: the trace ended
#                    before the image was ready: quiet_ms passed without a
#                    new file; later files would be missing)
#   static_classes   class per layer, bottom first ("base;engine;...")
#   kept_layers      indices the static analysis keeps fast
#   rules            the daemon's placement rule per layer (ndockerctl ls)
#   layer_hot_bytes  hot bytes per layer ("0:123;1:0;...")
#   hot_bytes_kept, agreement (hot_bytes_kept / profile_bytes),
#   kept_no_hot      kept layers that served no hot file (indices),
#   hot_unkept_layers  layers not kept that served hot bytes (indices)
#   *_bk             the same for the BuildKit-history analysis
# FILE-layers.csv, one row per layer: image, index, chain_id, class,
#   keep_fast, class_bk, keep_fast_bk, tier, rule, file_bytes, entries,
#   hot_files, hot_bytes, created_by.
# --crosscheck: an independent record of the same cold start to check the
#   tracer against: bpftrace (tracefs is mounted for the run if it is not) logs every
#   successful open/openat/openat2/execve/execveat outside the host mount
#   namespace; before the container is stopped, tools/hif-crosscheck.py
#   keeps the container's mount namespace (from the container's start on),
#   resolves each name inside the running container's rootfs mount, drops
#   the container's own (upperdir) files and its other mounts, and compares
#   the image files opened with the profile: FILE-crosscheck.csv (image, syscall_files,
#   profile_files, common, missed (opened before the trace's end, not in the
#   profile), missed_bytes, late (first opened after the trace's end, before
#   the check), late_bytes, profile_only, profile_only_bytes, upper_files,
#   missed_examples, late_examples, profile_only_examples)
#   and crosscheck.json, bpftrace.out.gz per image.
# Raw data, per image (profile.json, analyze[-buildkit].{json,txt}, plan.json,
#   ls.json, container.out, daemon-trace.log) and ndocker-hbcsa.log: --keep-raw
#   DIR (default FILE without .csv, a directory). At the end hif-report.py
#   writes the markdown tables (FILE.md; see its header for comparing runs).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$BENCH/../.." && pwd)

images="" out="" quiet_ms=2000 limit_ms=30000 raw="" crosscheck=0
while (($#)); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --quiet-ms) quiet_ms=$2; shift 2 ;;
    --limit-ms) limit_ms=$2; shift 2 ;;
    --keep-raw) raw=$2; shift 2 ;;
    --crosscheck) crosscheck=1; shift ;;
    -h | --help) sed -n '2,90p' "$0"; exit 0 ;;
    *) echo "hif.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

export NDOCKER_BIN=${NDOCKER_BIN:-$SRC/build/cmd/ndocker-snapshotter}
export NDOCKERCTL_BIN=${NDOCKERCTL_BIN:-$SRC/build/cmd/ndockerctl}
NDOCKER_ANALYZE_BIN=${NDOCKER_ANALYZE_BIN:-$SRC/build/hbcsa/ndocker-analyze}
export NDT_TEST_TIMEOUT=0 NDT_NDOCKER_LOG_LEVEL=info
export NDT_FAST_TIER_SIZE=${NDT_FAST_TIER_SIZE:-1G} NDT_SLOW_TIER_SIZE=${NDT_SLOW_TIER_SIZE:-3G}
# shellcheck source=../integration/lib.sh
source "$SRC/test/integration/lib.sh"
# shellcheck source=images/corpus.sh
source "$BENCH/images/corpus.sh"

for b in "$NDOCKER_BIN" "$NDOCKERCTL_BIN" "$NDOCKER_ANALYZE_BIN"; do
  [[ -x "$b" ]] || { echo "hif.sh: $b is not built" >&2; exit 1; }
done
if [[ -z "$images" ]]; then
  for n in $(corpus_names); do
    if [[ -f "$(corpus_layout "$n")/.recipe-hash" ]]; then images+=${images:+,}$n; else echo "hif.sh: $n not built, skipped" >&2; fi
  done
fi
IFS=, read -r -a image_list <<<"$images"
((${#image_list[@]})) || { echo "hif.sh: no image to measure" >&2; exit 1; }
out=${out:-$BENCH/results/hif-$(date +%Y%m%d).csv}
out=$(realpath -m "$out")
raw=$(realpath -m "${raw:-${out%.csv}}")
layers_csv=${out%.csv}-layers.csv
mkdir -p "$(dirname "$out")" "$raw"

ndt_setup hif
xcsv=${out%.csv}-crosscheck.csv
if ((crosscheck)); then
  ndt_require_cmds bpftrace findmnt
  if ! mountpoint -q /sys/kernel/tracing; then
    mount -t tracefs nodev /sys/kernel/tracing || ndt_fail "cannot mount tracefs (bpftrace needs the syscall tracepoints)"
    ndt_on_cleanup "umount /sys/kernel/tracing 2>/dev/null"
  fi
  echo "image,syscall_files,profile_files,common,missed,missed_bytes,late,late_bytes,profile_only,profile_only_bytes,upper_files,missed_examples,late_examples,profile_only_examples" >"$xcsv"
fi
ndt_log "images ${image_list[*]}; quiet_ms $quiet_ms, limit_ms $limit_ms; results $out, raw $raw"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
ndctl() { "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" "$@"; }
stop_container() {
  ctrw task kill -s SIGKILL "$1" >/dev/null 2>&1 || true
  wait "$2" 2>/dev/null || true
  ctrw container rm "$1" >/dev/null 2>&1 || true
}
# profile_of DIGEST: the profile JSON (one line) of the image, "" if none yet.
# By manifest digest; a profile keyed by the top chainID (the daemon did not
# know the manifest) is taken too and said so by the caller.
profile_of() {
  ndctl profile ls --json 2>/dev/null |
    jq -c --arg d "$1" --arg t "$2" 'select(.image == $d or .image == $t or .top_chain == $t)' | head -n 1
}
# log_field LINE KEY: value of KEY=... in a logfmt line (quotes stripped).
log_field() { sed -n "s/.* $2=\"\\{0,1\\}\\([^\" ]*\\).*/\\1/p" <<<"$1" | head -n 1; }
log_time() { sed -n 's/^time="\([^"]*\)".*/\1/p' <<<"$1" | head -n 1; }

# analyze_buildkit NAME DIR: the static analysis of the same image with its
# history written as BuildKit writes it: an ADD/COPY entry with a comment of
# its own ("ADD rootfs.tar / # debootstrap ... <mirror>", the base layer of
# every corpus image) gets "# buildkit" instead. The analyzer strips only
# "# buildkit", so it reads the mirror URL as the ADD's destination and the
# rootfs layer as the application (see the report). Same layers and chainIDs;
# a scratch OCI layout (blobs hard-linked) with a new config and manifest.
# Writes DIR/analyze-buildkit.json.
analyze_buildkit() {
  local img=$1 d=$2 layout scratch m c cfg md
  layout=$(corpus_layout "$img")
  scratch=$NDT_WORKDIR/oci-buildkit-$img
  rm -rf "$scratch"
  mkdir -p "$scratch"
  cp -al "$layout/blobs" "$scratch/blobs"
  cp "$layout/oci-layout" "$scratch/"
  echo '{"schemaVersion": 2, "manifests": []}' >"$scratch/index.json"
  m=$(jq -r --arg t "$NDB_TAG" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$layout/index.json")
  c=$(jq -r .config.digest "$layout/blobs/sha256/${m#sha256:}")
  jq -c '.history |= map(if ((.created_by // "") | test("^(ADD|COPY) ") and test(" # ") and (test("# buildkit$") | not))
                          then .created_by |= (sub(" # .*$"; "") + " # buildkit") else . end)' \
    "$layout/blobs/sha256/${c#sha256:}" >"$scratch/cfg"
  cfg=sha256:$(sha256sum "$scratch/cfg" | cut -c1-64)
  jq -c --arg d "$cfg" --argjson s "$(stat -c %s "$scratch/cfg")" '.config.digest = $d | .config.size = $s' \
    "$layout/blobs/sha256/${m#sha256:}" >"$scratch/man"
  md=sha256:$(sha256sum "$scratch/man" | cut -c1-64)
  mv "$scratch/cfg" "$scratch/blobs/sha256/${cfg#sha256:}"
  mv "$scratch/man" "$scratch/blobs/sha256/${md#sha256:}"
  "$NDOCKER_ANALYZE_BIN" --json "$scratch" "$md" >"$d/analyze-buildkit.json" || ndt_fail "ndocker-analyze (BuildKit history) $img failed"
  "$NDOCKER_ANALYZE_BIN" "$scratch" "$md" >"$d/analyze-buildkit.txt" 2>&1 || true
  [[ "$(jq -c '[.layers[].chain_id]' "$d/analyze.json")" == "$(jq -c '[.layers[].chain_id]' "$d/analyze-buildkit.json")" ]] ||
    ndt_fail "$img: the BuildKit-history variant has other chainIDs"
  rm -rf "$scratch"
}

# The --crosscheck program: for each open/openat/openat2/execve/execveat of a
# task outside the host mount namespace, the name as passed at the syscall's
# entry ("E") and its result at the exit ("R", same thread), both with the
# time: paired by tools/hif-crosscheck.py in time order (bpftrace prints each
# CPU's buffer in turn, so lines come out of order; a per-thread map of
# 200-byte names instead exceeds the BPF stack).
HOST_MNTNS=$(stat -Lc %i /proc/self/ns/mnt)
BT_PROG='
tracepoint:syscalls:sys_enter_openat, tracepoint:syscalls:sys_enter_openat2
/curtask->nsproxy->mnt_ns->ns.inum != '"$HOST_MNTNS"'/ {
  printf("E\tO\t%llu\t%d\t%d\t%u\t%d\t%s\t%s\n", nsecs, pid, tid, curtask->nsproxy->mnt_ns->ns.inum, args->dfd, comm, str(args->filename));
}
tracepoint:syscalls:sys_enter_open
/curtask->nsproxy->mnt_ns->ns.inum != '"$HOST_MNTNS"'/ {
  printf("E\tO\t%llu\t%d\t%d\t%u\t%d\t%s\t%s\n", nsecs, pid, tid, curtask->nsproxy->mnt_ns->ns.inum, -100, comm, str(args->filename));
}
tracepoint:syscalls:sys_enter_execve
/curtask->nsproxy->mnt_ns->ns.inum != '"$HOST_MNTNS"'/ {
  printf("E\tX\t%llu\t%d\t%d\t%u\t%d\t%s\t%s\n", nsecs, pid, tid, curtask->nsproxy->mnt_ns->ns.inum, -100, comm, str(args->filename));
}
tracepoint:syscalls:sys_enter_execveat
/curtask->nsproxy->mnt_ns->ns.inum != '"$HOST_MNTNS"'/ {
  printf("E\tX\t%llu\t%d\t%d\t%u\t%d\t%s\t%s\n", nsecs, pid, tid, curtask->nsproxy->mnt_ns->ns.inum, args->fd, comm, str(args->filename));
}
tracepoint:syscalls:sys_exit_openat, tracepoint:syscalls:sys_exit_openat2, tracepoint:syscalls:sys_exit_open,
tracepoint:syscalls:sys_exit_execve, tracepoint:syscalls:sys_exit_execveat
/curtask->nsproxy->mnt_ns->ns.inum != '"$HOST_MNTNS"'/ { printf("R\t%llu\t%d\t%d\n", nsecs, tid, args->ret); }
'

# crosscheck_image IMG ID RAWDIR BPFTRACE_PID BPFTRACE_LOG PROFILE_LS_LINE START_MONO_NS:
# while the container still runs and its trace has ended (--crosscheck).
crosscheck_image() {
  local img=$1 id=$2 d=$3 bt_pid=$4 bt_log=$5 p=$6 since=$7 task_pid mntns rootfs upper line t_end until=0 workdir
  if [[ -z "$p" ]]; then
    ndt_log "$img: no profile yet: no crosscheck"
    kill -INT "$bt_pid" 2>/dev/null; wait "$bt_pid" 2>/dev/null || true
    return 0
  fi
  ndctl profile show "$(jq -r .image <<<"$p")" --json >"$d/profile.json"
  task_pid=$(ctrw task ls | awk -v id="$id" 'NR > 1 && $1 == id { print $2 }')
  rootfs=$NDT_CTRD_STATE/io.containerd.runtime.v2.task/$NDT_NS/$id/rootfs
  if [[ -z "$task_pid" ]] || ! mntns=$(stat -Lc %i "/proc/$task_pid/ns/mnt" 2>/dev/null) || ! mountpoint -q "$rootfs"; then
    ndt_log "$img: the container is gone: no crosscheck"
    kill -INT "$bt_pid" 2>/dev/null; wait "$bt_pid" 2>/dev/null || true
    return 0
  fi
  upper=$(findmnt -n -o OPTIONS --mountpoint "$rootfs" | tr ',' '\n' | sed -n 's/^upperdir=//p')
  line=$(grep -E "msg=\"trace done\" container=\"?$id\"? " "$NDOCKER_LOG" | tail -n 1 || true)
  if [[ -z "$line" ]]; then
    ndt_log "$img: no \"trace done\" line for $id: the crosscheck has no trace end"
  else
    t_end=$(date -d "$(log_time "$line")" +%s.%N)
    # the log's wall-clock time on the monotonic clock (bpftrace's nsecs); not awk: mawk's %d stops at 2^31
    until=$(/usr/bin/python3 -c 'import sys, time; print(int((float(sys.argv[1]) - (time.time() - time.monotonic())) * 1e9))' "$t_end")
  fi
  cp "/proc/$task_pid/mountinfo" "$d/container-mountinfo"
  # bpftrace writes its output when it ends (or per line with -B line): stop
  # it first; the container (its rootfs mount) keeps running for the look-ups.
  kill -INT "$bt_pid" 2>/dev/null; wait "$bt_pid" 2>/dev/null || true
  workdir=$(jq -r '.working_dir // "/" | if . == "" then "/" else . end' "$d/analyze.json")
  /usr/bin/python3 "$BENCH/tools/hif-crosscheck.py" --log "$bt_log" --mntns "$mntns" --root "$rootfs" \
    --upper "$upper" --profile "$d/profile.json" --workdir "$workdir" --since-mono "$since" --until-mono "$until" \
    --mountinfo "$d/container-mountinfo" \
    --out "$d/crosscheck.json" || ndt_log "$img: hif-crosscheck.py failed"
  gzip -c "$bt_log" >"$d/bpftrace.out.gz"
  [[ -s "$d/crosscheck.json" ]] || return 0
  jq -r --arg img "$img" '[$img, .syscall_image_files, .profile_files, .common, (.missed | length), .missed_bytes,
      (.late | length), .late_bytes, (.profile_only | length), .profile_only_bytes, (.upper_files_opened | length),
      ([.missed[:8][] | .path] | join(" ")), ([.late[:8][] | .path] | join(" ")),
      ([.profile_only[:8][] | .path] | join(" "))] | @csv' \
    "$d/crosscheck.json" >>"$xcsv"
}

# --- daemons ------------------------------------------------------------------
registry_start
ndt_step "push the corpus to $NDT_REGISTRY"
"$BENCH/images/push.sh" "$NDT_REGISTRY" "${image_list[@]}" >&2 || ndt_fail "push.sh failed"

nd_config=$NDT_WORKDIR/ndocker-hif.toml
printf '[lass]\ncontainerd_root = "%s"\n[hbcsa]\nenabled = true\nquiet_ms = %d\nlimit_ms = %d\n%s\n' \
  "$(containerd_root_dir)" "$quiet_ms" "$limit_ms" "${NDB_HIF_EXTRA_CONFIG:-}" >"$nd_config"
ndocker_start --config "$nd_config"
containerd_start
content=$(containerd_root_dir)/io.containerd.content.v1.content
grep -q 'cold-start tracer running' "$NDOCKER_LOG" || ndt_fail "the daemon's tracer is not running: $(grep -i tracer "$NDOCKER_LOG" | tail -n 3)"

echo "image,category,manifest,layers,unpacked_bytes,rootfs_bytes,profile_files,profile_bytes,share,share_rootfs,probe_s,trace_end,trace_events,trace_complete,tracer_cpu_ms,trace_end_s,trace_after_probe_s,profile_key,static_classes,kept_layers,rules,layer_hot_bytes,hot_bytes_kept,agreement,kept_no_hot,hot_unkept_layers,static_classes_bk,kept_layers_bk,hot_bytes_kept_bk,agreement_bk,kept_no_hot_bk,hot_unkept_layers_bk" >"$out"
echo "image,index,chain_id,class,keep_fast,class_bk,keep_fast_bk,tier,rule,file_bytes,entries,hot_files,hot_bytes,created_by" >"$layers_csv"

measure() {
  local img=$1 ref probe budget category id log pid rc=0 t0 t_probe probe_s digest top d
  ref=$(corpus_ref "$img" "$NDT_REGISTRY")
  probe=$(corpus_probe "$img")
  budget=$(corpus_budget "$img")
  category=$(corpus_field "$img" category)
  id=hif-$img
  log=$NDT_WORKDIR/logs/$id.out
  d=$raw/$img
  mkdir -p "$d"

  ndt_step "$img: pull"
  t0=$(now)
  ctr_pull ndocker "$ref"
  ndt_log "$img pulled in $(ndt_elapsed "$t0") s"
  digest=$(ctrw images ls | awk -v r="$ref" 'NR > 1 && $1 == r { print $3 }')
  [[ $digest == sha256:* ]] || ndt_fail "$img: no manifest digest for $ref"
  "$NDOCKER_ANALYZE_BIN" --json "$content" "$digest" >"$d/analyze.json" || ndt_fail "ndocker-analyze $img failed"
  "$NDOCKER_ANALYZE_BIN" "$content" "$digest" >"$d/analyze.txt" 2>&1 || true
  ndctl plan "$digest" --json >"$d/plan.json" || ndt_fail "ndockerctl plan $img failed"
  ndctl ls --json | jq -s . >"$d/ls.json" || ndt_fail "ndockerctl ls $img failed"
  top=$(jq -r '.layers[-1].chain_id' "$d/analyze.json")
  analyze_buildkit "$img" "$d"

  ndt_step "$img: cold start (probe $probe)"
  local bt_pid="" bt_log=$NDT_WORKDIR/logs/bpftrace-$img.out mono0
  if ((crosscheck)); then
    : >"$bt_log"
    ndt_spawn bpftrace "$bt_log" env BPFTRACE_STRLEN=200 bpftrace -B line -e "$BT_PROG"
    bt_pid=$NDT_LAST_PID
    ndt_wait_until 120 "bpftrace to attach" grep -q '^Attaching' "$bt_log"
  fi
  drop_caches
  mono0=$(/usr/bin/python3 -c 'import time; print(time.monotonic_ns())')
  t0=$(now)
  ctr_run --rm --net-host --snapshotter ndocker "$ref" "$id" >"$log" 2>&1 </dev/null &
  pid=$!
  bench_probe_wait "$probe" "$log" "$budget" "$pid" || rc=$?
  t_probe=$(now)
  probe_s=$(ndt_elapsed "$t0" "$t_probe")
  if ((rc != 0)); then
    ndt_log "$img: probe did not fire (rc $rc); output:"; tail -n 20 "$log" >&2
    probe_s=""
  else
    ndt_log "$img ready in $probe_s s"
  fi
  # Let the trace end by itself while the container runs.
  local p="" deadline=$((SECONDS + limit_ms / 1000 + 15))
  until p=$(profile_of "$digest" "$top") && [[ -n "$p" ]]; do
    ((SECONDS < deadline)) || break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  ((crosscheck)) && crosscheck_image "$img" "$id" "$d" "$bt_pid" "$bt_log" "$p" "$mono0"
  stop_container "$id" "$pid"
  if [[ -z "$p" ]]; then
    ndt_log "$img: no profile while it ran; the kill ends the trace"
    deadline=$((SECONDS + 15))
    until p=$(profile_of "$digest" "$top") && [[ -n "$p" ]]; do
      ((SECONDS < deadline)) || break
      sleep 0.2
    done
  fi
  cp "$log" "$d/container.out"
  if [[ $probe == tcp:* ]]; then
    ndt_wait_until_quiet 10 bash -c "! (exec 3<>/dev/tcp/127.0.0.1/${probe#tcp:}) 2>/dev/null" ||
      ndt_log "$img: port ${probe#tcp:} still accepts 10 s after the kill"
  fi

  local key=manifest
  if [[ -z "$p" ]]; then
    ndt_log "$img: NO PROFILE recorded"
    echo '{"files": [], "bytes": 0}' >"$d/profile.json"
    key=none
  else
    [[ $(jq -r .image <<<"$p") == "$digest" ]] || key=top_chain
    ndctl profile show "$(jq -r .image <<<"$p")" --json >"$d/profile.json" || ndt_fail "profile show $img failed"
  fi
  # The daemon's view of the trace.
  local done_line rec_line t_end="" len="" after=""
  done_line=$(grep -E "msg=\"trace done\" container=\"?$id\"? " "$NDOCKER_LOG" | tail -n 1 || true)
  rec_line=$(grep -E "msg=\"recorded cold-start trace\" container=\"?$id\"? " "$NDOCKER_LOG" | tail -n 1 || true)
  printf '%s\n%s\n' "$done_line" "$rec_line" >"$d/daemon-trace.log"
  if [[ -n "$done_line" ]]; then
    t_end=$(date -d "$(log_time "$done_line")" +%s.%N 2>/dev/null || true)
    if [[ -n "$t_end" ]]; then after=$(ndt_elapsed "$t_probe" "$t_end"); fi
  fi
  # (The first event's time is not logged: the end is given from ctr run.)
  if [[ -n "$t_end" ]]; then len=$(ndt_elapsed "$t0" "$t_end"); fi

  # --- rows ---------------------------------------------------------------
  local unpacked rootfs info=$NDB_CACHE/oci/$img/info.json
  unpacked=$(jq '[.layers[].file_bytes] | add' "$d/analyze.json")
  if [[ -f "$info" ]]; then
    rootfs=$(jq .unpacked_bytes "$info")
  else
    rootfs=$(jq -r --arg n "$img" '.images[] | select(.name == $n) | (.unpacked_mb * 1e6 | floor)' "$BENCH/images/corpus.json")
  fi
  jq -r --arg img "$img" --slurpfile a "$d/analyze.json" --slurpfile b "$d/analyze-buildkit.json" \
    --slurpfile ls "$d/ls.json" '
    . as $p | $a[0].layers[] as $l
    | $b[0].layers[$l.index] as $lb
    | ([$ls[0][] | select(.kind == "committed" and (.key | endswith("/" + $l.chain_id)))][0] // {}) as $s
    | [$p.files[] | select(.layer == $l.chain_id)] as $hot
    | [$img, $l.index, $l.chain_id, $l.class, $l.keep_fast, $lb.class, $lb.keep_fast, ($s.tier // ""), ($s.rule // ""),
       $l.file_bytes, $l.entries, ($hot | length), ([$hot[].size] | add // 0),
       ($l.created_by | gsub("[\n\r]"; " ") | .[0:160])] | @csv' "$d/profile.json" >>"$layers_csv"
  jq -r --arg img "$img" --arg cat "$category" --arg digest "$digest" --argjson unpacked "$unpacked" \
    --argjson rootfs "$rootfs" --arg probe_s "$probe_s" --arg key "$key" \
    --arg tend "$(log_field "$done_line" end)" --arg events "$(log_field "$done_line" events)" \
    --arg complete "$(log_field "$done_line" complete)" --arg cpu_us "$(log_field "$done_line" cpu_us)" \
    --arg len "$len" --arg after "$after" \
    --slurpfile a "$d/analyze.json" --slurpfile b "$d/analyze-buildkit.json" --slurpfile ls "$d/ls.json" '
    . as $p | $a[0].layers as $L
    | ([$p.files[].size] | add // 0) as $pb
    | [$L[] | . as $l | {i: .index, keep: .keep_fast, keepb: $b[0].layers[.index].keep_fast,
        hot: ([$p.files[] | select(.layer == $l.chain_id) | .size] | add // 0),
        nhot: ([$p.files[] | select(.layer == $l.chain_id)] | length)}] as $per
    | ([$per[] | select(.keep) | .hot] | add // 0) as $kept
    | ([$per[] | select(.keepb) | .hot] | add // 0) as $keptb
    | [$img, $cat, $digest, ($L | length), $unpacked, $rootfs, ($p.files | length), $pb,
       (if $unpacked > 0 then ($pb / $unpacked * 10000 | round / 10000) else "" end),
       (if $rootfs > 0 then ($pb / $rootfs * 10000 | round / 10000) else "" end),
       $probe_s, $tend, $events, $complete,
       (if $cpu_us == "" then "" else ($cpu_us | tonumber / 1000) end), $len, $after, $key,
       ([$L[].class] | join(";")),
       ([$L[] | select(.keep_fast) | .index | tostring] | join(";")),
       ([$L[] | . as $l | ([$ls[0][] | select(.kind == "committed" and (.key | endswith("/" + $l.chain_id))) | .rule][0] // "-")] | join(";")),
       ([$per[] | "\(.i):\(.hot)"] | join(";")),
       $kept,
       (if $pb > 0 then ($kept / $pb * 10000 | round / 10000) else "" end),
       ([$per[] | select(.keep and .nhot == 0) | .i | tostring] | join(";")),
       ([$per[] | select((.keep | not) and .hot > 0) | .i | tostring] | join(";")),
       ([$b[0].layers[].class] | join(";")),
       ([$b[0].layers[] | select(.keep_fast) | .index | tostring] | join(";")),
       $keptb,
       (if $pb > 0 then ($keptb / $pb * 10000 | round / 10000) else "" end),
       ([$per[] | select(.keepb and .nhot == 0) | .i | tostring] | join(";")),
       ([$per[] | select((.keepb | not) and .hot > 0) | .i | tostring] | join(";"))] | @csv' \
    "$d/profile.json" | tee -a "$out" >&2

  ndt_step "$img: remove"
  ctrw image rm --sync "$ref" >/dev/null || ndt_log "$img: image rm failed"
  if ! ndt_wait_until_quiet 60 ctr_snapshots_empty ndocker; then
    ndt_log "$img: snapshots left 60 s after image rm: $(ctrw snapshots --snapshotter ndocker ls | tail -n +2 | wc -l)"
  fi
}

for img in "${image_list[@]}"; do
  probe=$(corpus_probe "$img")
  if [[ $probe == tcp:* ]] && bench_probe_check "$probe" /dev/null; then
    ndt_log "$img: something already listens on 127.0.0.1:${probe#tcp:} here: its probe would lie; skipped"
    continue
  fi
  measure "$img"
done
ndctl profile ls >"$raw/profiles.txt" 2>&1 || true
# the daemon's HBCSA lines (tracer, traces, static analysis, placements)
grep -E 'tracer|trace done|cold-start|static analysis|fanotify|profile|level=(warn|error|critical)' "$NDOCKER_LOG" >"$raw/ndocker-hbcsa.log" || true
ndt_log "results: $out ($layers_csv), raw data: $raw"
/usr/bin/python3 "$BENCH/hif-report.py" "$out" >"${out%.csv}.md" && cat "${out%.csv}.md"
