#!/usr/bin/env bash
# Benchmark (issue 9, not CI): can a cold-start tracer miss a container's
# first exec? Compares
#   A  the daemon's tracer: ONE fanotify group, one FAN_MARK_FILESYSTEM mark
#      per tier filesystem placed at daemon start ([hbcsa] enabled = true);
#   B  per-container marks: tools/permount_tracer.cc, a prototype that waits
#      for each new overlay (upperdir under the ndocker root) in
#      /proc/self/mountinfo (poll POLLPRI) and only then marks that overlay's
#      filesystem (FAN_OPEN | FAN_OPEN_EXEC, own group, fd events: overlay
#      refuses FID-reporting marks, see the tool's header).
# Root only. A throwaway registry, ndocker and containerd (test/integration/
# lib.sh), nothing of the host's.
#
#   test/bench/tracer-race.sh [--runs 50] [--series A,B,A-load,B-load]
#                             [--load-procs 2] [--out DIR]
#
# Image (umoci, from this host's files; one layer each):
#   L1 the loader and libraries `ldd /usr/bin/cat` lists + their ld.so.cache
#   L2 busybox-static as /bin/sh     L3 /usr/bin/cat (dynamically linked)
#   L4 /app/start.sh (#!/bin/sh, ENTRYPOINT): exec /usr/bin/cat /app/data/input
# So a complete trace has: /app/start.sh (exec), /bin/sh (its interpreter,
# exec), the loader, /app/data/input (the file it reads).
#
# Series (each --runs `ctr run --rm` in a row, ids <series>-<n>):
#   A       before each run `ndockerctl profile rm <digest>`; after it, poll
#           (bounded, 15 s) `ndockerctl profile show <digest> --json` until the
#           run is in; its files are the trace of that run alone.
#   B       the same with permount_tracer running (the daemon's tracer stays
#           on: independent groups; its profile is still polled, but the
#           prototype's event fds open the layer files again through the
#           overlay, which the daemon's tier marks also see, so the daemon's
#           results of B series are not counted).
#   *-load  the same while --load-procs busy loops (`nice -n 0`) run.
# Output (DIR, default test/bench/results/tracer-race-<date>): runs.csv (one
# row per run), permount-<series>.jsonl (the prototype's per-overlay
# records), table.md (the summary table), ndocker.log (the daemon log).
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$BENCH/../.." && pwd)

runs=50 series="A,B,A-load,B-load" load_procs=2 out=""
while (($#)); do
  case $1 in
    --runs) runs=$2; shift 2 ;;
    --series) series=$2; shift 2 ;;
    --load-procs) load_procs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,38p' "$0"; exit 0 ;;
    *) echo "tracer-race.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
out=${out:-$BENCH/results/tracer-race-$(date +%Y%m%d)}
mkdir -p "$out"
out=$(cd "$out" && pwd)

export NDOCKER_BIN=${NDOCKER_BIN:-$SRC/build/cmd/ndocker-snapshotter}
export NDOCKERCTL_BIN=${NDOCKERCTL_BIN:-$SRC/build/cmd/ndockerctl}
export NDT_TEST_TIMEOUT=${NDT_TEST_TIMEOUT:-3600} NDT_NDOCKER_LOG_LEVEL=${NDT_NDOCKER_LOG_LEVEL:-info}
# shellcheck disable=SC2119 # lib functions take optional arguments
# shellcheck source=../integration/lib.sh
source "$SRC/test/integration/lib.sh"

ndt_setup tracerrace
ndt_require_cmds ldd ldconfig busybox g++ jq
DYN_BIN=/usr/bin/cat
QUIET_MS=500
PROFILE_WAIT_S=15

# ---------------------------------------------------------------------------
ndt_step "prototype: permount_tracer"
TOOL=$NDT_WORKDIR/permount_tracer
g++ -std=c++20 -O2 -Wall -Wextra -Werror -o "$TOOL" "$BENCH/tools/permount_tracer.cc" ||
  ndt_fail "g++ permount_tracer.cc failed"

# ---------------------------------------------------------------------------
ndt_step "image: loader+libs, busybox /bin/sh, $DYN_BIN, /app/start.sh reading /app/data/input"
L=$NDT_WORKDIR/oci-race
B=$NDT_WORKDIR/race-bundle
R=$B/rootfs
repack() { umoci repack --refresh-bundle --history.created_by "$1" --image "$L:race" "$B" >/dev/null; }
umoci init --layout "$L"
umoci new --image "$L:race"
umoci unpack --image "$L:race" "$B" >/dev/null
LOADER=""
while read -r line; do
  case $line in
    *"=> /"*) p=${line#*=> }; p=${p%% (*} ;;
    /*) p=${line%% (*} ;;
    *"=> not found"*) ndt_fail "ldd $DYN_BIN: $line" ;;
    *) continue ;;
  esac
  mkdir -p "$R$(dirname "$p")"
  cp -L "$p" "$R$p"
  [[ "$p" == */ld-linux* ]] && LOADER=$p
done < <(ldd "$DYN_BIN")
[[ -n "$LOADER" ]] || ndt_fail "no ld-linux in ldd $DYN_BIN"
mkdir -p "$R/etc"
ldconfig -X -r "$R" || ndt_fail "ldconfig -r $R failed"
repack "race L1: loader, libraries, ld.so.cache"
mkdir -p "$R"/{bin,tmp,proc,sys,dev}
cp /bin/busybox "$R/bin/sh"
chmod 0755 "$R/bin/sh"
repack "race L2: busybox-static as /bin/sh"
mkdir -p "$R/usr/bin"
cp "$DYN_BIN" "$R$DYN_BIN"
repack "race L3: $DYN_BIN"
mkdir -p "$R/app/data"
printf '#!/bin/sh\nexec %s /app/data/input\n' "$DYN_BIN" >"$R/app/start.sh"
chmod 0755 "$R/app/start.sh"
INPUT="tracer race input $(date +%s)"
printf '%s\n' "$INPUT" >"$R/app/data/input"
repack "race L4: /app/start.sh, /app/data/input"
umoci config --image "$L:race" --config.env PATH=/usr/bin:/bin --config.workingdir / --config.entrypoint /app/start.sh
rm -rf "$B"

# ---------------------------------------------------------------------------
ndt_step "registry, ndocker ([hbcsa] enabled, quiet_ms $QUIET_MS), containerd, pull"
registry_start
image_push "$L" race bench/tracer-race
REF=$NDT_IMAGE_REF
cat >"$NDT_WORKDIR/ndocker-race.toml" <<EOF
[lass]
containerd_root = "$(containerd_root_dir)"

[hbcsa]
enabled = true
quiet_ms = $QUIET_MS
EOF
ndocker_start --config "$NDT_WORKDIR/ndocker-race.toml"
containerd_start
ndt_wait_until 10 "the daemon log line 'cold-start tracer running'" grep -q 'cold-start tracer running' "$NDOCKER_LOG"
ctr_pull "$NDOCKER_SNAPSHOTTER_NAME" "$REF"
DIGEST=$(ctrw images ls | awk -v r="$REF" 'NR > 1 && $1 == r { print $3 }')
[[ "$DIGEST" == sha256:* ]] || ndt_fail "no digest for $REF"
out_run=$(ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "$REF" warmup 2>&1) || ndt_fail "warm-up ctr run failed: $out_run"
assert_eq "$INPUT" "$out_run" "the entrypoint prints /app/data/input"
ndt_log "image $REF ($DIGEST); loader $LOADER; kernel $(uname -r); $(nproc) CPUs"

# ---------------------------------------------------------------------------
# helpers

LOAD_PIDS=()
load_start() {
  local i
  for ((i = 0; i < load_procs; i++)); do
    nice -n 0 bash -c 'while :; do :; done' &
    LOAD_PIDS+=($!)
  done
  ndt_log "load: ${#LOAD_PIDS[@]} busy loops (pids ${LOAD_PIDS[*]})"
}
load_stop() {
  local p
  for p in "${LOAD_PIDS[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  LOAD_PIDS=()
}
ndt_on_cleanup load_stop

TOOL_PID=""
tool_stop() {
  [[ -n "$TOOL_PID" ]] || return 0
  kill -TERM "$TOOL_PID" 2>/dev/null || true
  wait "$TOOL_PID" 2>/dev/null || true
  TOOL_PID=""
}
ndt_on_cleanup tool_stop

profile_json() { ndockerctlw profile show "$DIGEST" --json 2>/dev/null || true; }
profile_in() { [[ "$(profile_json | jq -r '.runs // 0' 2>/dev/null)" -ge 1 ]]; }

# has PATHS_TEXT SUFFIX: a line of PATHS_TEXT ends with SUFFIX
has() { grep -qE -- "(^|/)${2#/}\$" <<<"$1" && echo 1 || echo 0; }

csv=$out/runs.csv
echo "series,load,run,id,ctr_s,profile_s,d_traced,d_entry,d_sh,d_loader,d_input,d_files,d_end" >"$csv"
declare -A SERIES_LOAD1=() CTR_FAILS=()

run_series() {
  local name=$1 load=0 tool=0 i id t0 t1 t2 pj paths end ok
  [[ $name == *-load ]] && load=1
  [[ $name == B* ]] && tool=1
  ndt_step "series $name: $runs x ctr run --rm (load=$load, permount_tracer=$tool)"
  ((load)) && load_start
  if ((tool)); then
    rm -f "$out/permount-$name.jsonl" "$NDT_WORKDIR/tool.ready"
    "$TOOL" --root "$NDOCKER_ROOT" --out "$out/permount-$name.jsonl" --ready "$NDT_WORKDIR/tool.ready" \
      2>"$NDT_WORKDIR/logs/permount-$name.log" &
    TOOL_PID=$!
    ndt_wait_until 10 "permount_tracer ready" test -e "$NDT_WORKDIR/tool.ready"
  fi
  sleep 1 # let the load settle in
  SERIES_LOAD1[$name]=$(cut -d' ' -f1 /proc/loadavg)
  for ((i = 1; i <= runs; i++)); do
    id=$name-$i
    ndockerctlw profile rm "$DIGEST" >/dev/null 2>&1 || true
    t0=$(ndt_now)
    if ! ctr_run --rm --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" "$REF" "$id" >"$NDT_WORKDIR/logs/run.out" 2>&1; then
      ndt_log "ctr run $id failed: $(head -c 300 "$NDT_WORKDIR/logs/run.out")"
      CTR_FAILS[$name]=$((${CTR_FAILS[$name]:-0} + 1))
    elif [[ "$(cat "$NDT_WORKDIR/logs/run.out")" != "$INPUT" ]]; then
      ndt_log "$id printed $(head -c 200 "$NDT_WORKDIR/logs/run.out")"
      CTR_FAILS[$name]=$((${CTR_FAILS[$name]:-0} + 1))
    fi
    t1=$(ndt_now)
    ok=1
    ndt_wait_until_quiet "$PROFILE_WAIT_S" profile_in || ok=0
    t2=$(ndt_now)
    pj=$(profile_json)
    paths=$(jq -r '.files[]?.path' <<<"$pj" 2>/dev/null || true)
    end=$(grep -E "msg=\"trace done\" container=\"?$id\"? " "$NDOCKER_LOG" | grep -oE 'end=[a-z_]+' | head -n 1 || true)
    printf '%s,%s,%d,%s,%s,%s,%d,%d,%d,%d,%d,%d,%s\n' "$name" "$load" "$i" "$id" "$(ndt_elapsed "$t0" "$t1")" \
      "$(ndt_elapsed "$t1" "$t2")" "$ok" "$(has "$paths" /app/start.sh)" "$(has "$paths" /bin/sh)" \
      "$(has "$paths" "$LOADER")" "$(has "$paths" /app/data/input)" "$(grep -c . <<<"$paths" || true)" \
      "${end#end=}" >>"$csv"
    ((i % 10 == 0)) && ndt_log "$name: $i runs"
  done
  if ((tool)); then
    sleep 2.5 # the tool writes an overlay's record 2 s after it is gone
    tool_stop
    cat "$NDT_WORKDIR/logs/permount-$name.log" >&2
  fi
  ((load)) && load_stop
  return 0
}

IFS=, read -r -a series_list <<<"$series"
T_ALL=$(ndt_now)
for s in "${series_list[@]}"; do
  case $s in A | B | A-load | B-load) run_series "$s" ;; *) ndt_fail "unknown series $s" ;; esac
done
ndt_log "all series: $(ndt_elapsed "$T_ALL")s"

# ---------------------------------------------------------------------------
ndt_step "summary"
# The prototype's records, one row per run: marked, latency, entry/sh/loader/input seen.
tool_csv=$out/permount.csv
echo "series,id,marked,mark_error,wake_to_mark_us,t_entry,t_sh,t_loader,t_input,t_events,t_first,first_read_us" >"$tool_csv"
for s in "${series_list[@]}"; do
  f=$out/permount-$s.jsonl
  [[ -f "$f" ]] || continue
  jq -r --arg s "$s" --arg loader "$LOADER" '
    def seen($suf; $exec): [.events[] | select((.name | endswith($suf)) and (($exec | not) or (.mask | test("OPEN_EXEC"))))] | if length > 0 then 1 else 0 end;
    select(.mount_point | test("/rootfs$"))
    | [$s, (.mount_point | split("/") | .[-2]), (if .mark_error == "" then 1 else 0 end), .mark_error, .wake_to_mark_us,
       seen("/app/start.sh"; true), seen("/bin/sh"; true), seen($loader; false), seen("/app/data/input"; false),
       (.events | length), (.events[0].name // "-"), (.events[0].us // -1)] | @csv' "$f" >>"$tool_csv"
done

# median/max of a column of numbers on stdin
stats() { sort -n | awk '{ v[NR] = $1 } END { if (NR == 0) { print "- -"; exit } m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[NR] }'; }
{
  echo "| approach | load | runs | traces missing the entrypoint | missing /bin/sh, loader or input | mark latency median / max (µs) | ctr run median / max (s) | trace ready after exit, median / max (s) | notes |"
  echo "|---|---|---|---|---|---|---|---|---|"
  for s in "${series_list[@]}"; do
    load=no
    [[ $s == *-load ]] && load="$load_procs busy loops"
    read -r cmed cmax < <(awk -F, -v s="$s" 'NR > 1 && $1 == s { print $5 }' "$csv" | stats)
    read -r pmed pmax < <(awk -F, -v s="$s" 'NR > 1 && $1 == s { print $6 }' "$csv" | stats)
    if [[ $s == A* ]]; then
      n=$(awk -F, -v s="$s" 'NR > 1 && $1 == s' "$csv" | wc -l)
      miss=$(awk -F, -v s="$s" 'NR > 1 && $1 == s && $8 != 1' "$csv" | wc -l)
      other=$(awk -F, -v s="$s" 'NR > 1 && $1 == s && ($9 != 1 || $10 != 1 || $11 != 1)' "$csv" | wc -l)
      untraced=$(awk -F, -v s="$s" 'NR > 1 && $1 == s && $7 != 1' "$csv" | wc -l)
      ends=$(awk -F, -v s="$s" 'NR > 1 && $1 == s { e[$13 == "" ? "?" : $13]++ } END { for (k in e) printf "%s%s=%d", (n++ ? " " : ""), k, e[k] }' "$csv")
      echo "| A daemon (tier marks at start) | $load | $n | $miss | $other | (placed at daemon start) | $cmed / $cmax | $pmed / $pmax | no profile in ${PROFILE_WAIT_S}s: $untraced; trace ends: $ends; ctr run failures: ${CTR_FAILS[$s]:-0}; load1 ${SERIES_LOAD1[$s]:-?} |"
    else
      n=$(awk -F, -v s="$s" 'NR > 1 && $1 == s' "$csv" | wc -l)
      rec=$(awk -F, -v s="\"$s\"" 'NR > 1 && $1 == s' "$tool_csv" | wc -l)
      # a run with no record at all (overlay never seen) counts as missed
      miss=$(awk -F, -v s="\"$s\"" 'NR > 1 && $1 == s && $6 != 1' "$tool_csv" | wc -l)
      miss=$((miss + n - rec))
      other=$(awk -F, -v s="\"$s\"" 'NR > 1 && $1 == s && ($7 != 1 || $8 != 1 || $9 != 1)' "$tool_csv" | wc -l)
      other=$((other + n - rec))
      read -r lmed lmax < <(awk -F, -v s="\"$s\"" 'NR > 1 && $1 == s && $3 == 1 { print $5 }' "$tool_csv" | stats)
      read -r fmin < <(awk -F, -v s="\"$s\"" 'NR > 1 && $1 == s && $12 >= 0 { print $12 }' "$tool_csv" | sort -n | head -n 1; echo -)
      markfail=$(awk -F, -v s="\"$s\"" 'NR > 1 && $1 == s && $3 != 1' "$tool_csv" | wc -l)
      firsts=$(awk -F, -v s="\"$s\"" 'NR > 1 && $1 == s { gsub(/"/, "", $11); f[$11]++ } END { for (k in f) printf "%s%s=%d", (n++ ? " " : ""), k, f[k] }' "$tool_csv")
      dmiss=$(awk -F, -v s="$s" 'NR > 1 && $1 == s && $8 != 1' "$csv" | wc -l)
      echo "| B per-overlay mark (mountinfo POLLPRI) | $load | $n | $miss | $other | $lmed / $lmax | $cmed / $cmax | $pmed / $pmax (daemon) | rootfs overlays recorded: $rec; mark failed: $markfail; daemon's traces in the same runs missing the entrypoint: $dmiss (not counted: it also sees the prototype's re-opens); first event seen: $firsts; mark to first event read, min ${fmin} µs; ctr run failures: ${CTR_FAILS[$s]:-0}; load1 ${SERIES_LOAD1[$s]:-?} |"
    fi
  done
} >"$out/table.md"
cat "$out/table.md" >&2
cp "$NDOCKER_LOG" "$out/ndocker.log"
grep -E 'fanotify queue overflow|tracer' "$NDOCKER_LOG" | grep -v 'trace done\|recorded cold-start' | tail -n 5 >&2 || true
ndt_pass "tracer race benchmark: $out"
