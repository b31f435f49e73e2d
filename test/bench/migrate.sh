#!/usr/bin/env bash
# Benchmark of the mover (issue 8): what a fast→slow migration of one corpus
# image's layers achieves against the `[migration] throttle` setting, and what
# it costs a container of another image started while it runs (the throttle's
# purpose). Not part of CI. Root only. Needs the testbed (testbed/testbed up),
# the network (net/netns.sh up; net/netns.sh push) and the two images
# (images/build.sh --only BIG,SMALL).
#
#   test/bench/migrate.sh [--big postgres] [--small redis] [--runs 3]
#                         [--throttles 0,50MiB,20MiB] [--delay 1] [--out DIR]
#                         [--no-overlay]
#
#   --big NAME        the image whose layers migrate (default postgres)
#   --small NAME      the image that is cold-started (default redis)
#   --throttles LIST  `[migration] throttle` values; 0 = unlimited
#   --delay S         seconds between starting the background migration and
#                     the cold start (default 1: the copy is under way)
#   --no-overlay      skip the stock overlayfs reference
#   NDB_XTRACE=1      set -x after setup (debugging the script)
#
# Setup (one run, `testbed reformat` first, so both tiers start empty):
#   ndocker: fast tier + ndocker root (LMDB, l/ links) + containerd root on the
#     fast tier, slow tier on the emulated disk; LASS off, container rootfs on
#     slow ([placement] container_tier = "slow"). SMALL is pulled into the
#     run's namespace with ndocker's default tier slow (its layers are
#     unpacked on the emulated disk); then ndocker restarts with default tier
#     fast and BIG is pulled into a second namespace (<ns>big), all on fast.
#     The migrations name BIG's snapshots by key, so the base layer that all
#     corpus images share (a separate snapshot in SMALL's namespace) is not
#     moved along with it, as `ndockerctl migrate <chainID>` would do.
#   overlay-slow (reference; with a fresh fs before it): stock containerd
#     overlayfs, containerd root on the slow tier ("Docker" in run.sh), SMALL
#     pulled and cold-started the same way.
#
# Per round and throttle setting T (the order of settings rotates each round):
#   1. ndocker restarted with throttle 0; BIG migrated back to fast (--wait),
#      until its retired slow copies are reaped; ndocker restarted with T
#   2. cold_nomig: caches dropped, `ctr run` of SMALL until its readiness
#      probe (no migration running)
#   3. migrate_alone: caches dropped, `ndockerctl migrate <key> slow --wait`
#      for each of BIG's layers in turn, timed as a whole; MiB/s = sum of the
#      layers' sizes (`ndockerctl ls --json`) / time
#   4. as 1 (back to fast, unthrottled; restart with T)
#   5. cold_during + migrate_during: caches dropped, the same migration as 3
#      started in a background shell, --delay later the cold start of SMALL;
#      the migration's own time and MiB/s under that competition is a row too
#      (`mig_running_at_ready` = 1 when it was still copying when SMALL became
#      ready: otherwise the cold start was not fully overlapped)
#   Every measurement records the 1-minute load average first (`load1`): on a
#   shared machine, other work is part of the noise.
#
# Output (DIR, default test/bench/results/migrate-<date>): results.csv, one row
# per measurement:
#   round, throttle, throttle_bytes, measure (cold_nomig | migrate_alone |
#   cold_during | migrate_during | cold_overlay_slow), seconds, bytes, mib_s,
#   load1, slow_seeks, slow_read_mb, slow_write_mb (emulated disk counters over
#   the window; a cold start's window ends when it is ready), mig_running_at_ready
# and summary.md (medians per setting and the ratios), from migrate-report.py.
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$BENCH/../.." && pwd)

big=postgres small=redis runs=3 throttles="0,50MiB,20MiB" delay=1 out="" overlay=1
fast_dir=${NDB_FAST_DIR:-/mnt/ndocker-bench/fast} slow_dir=${NDB_SLOW_DIR:-/mnt/ndocker-bench/slow}
while (($#)); do
  case $1 in
    --big) big=$2; shift 2 ;;
    --small) small=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --throttles) throttles=$2; shift 2 ;;
    --delay) delay=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --no-overlay) overlay=0; shift ;;
    --fast-dir) fast_dir=$2; shift 2 ;;
    --slow-dir) slow_dir=$2; shift 2 ;;
    -h | --help) sed -n '2,58p' "$0"; exit 0 ;;
    *) echo "migrate.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done

# As run.sh: ctr (fetch) and containerd run in the client network namespace.
if [[ -z "${NDB_IN_CLIENT_NS:-}" ]]; then
  mountpoint -q "$fast_dir" || { echo "migrate.sh: $fast_dir is not mounted: run test/bench/testbed/testbed up" >&2; exit 1; }
  mountpoint -q "$slow_dir" || { echo "migrate.sh: $slow_dir is not mounted: run test/bench/testbed/testbed up" >&2; exit 1; }
  eval "$("$BENCH/net/netns.sh" env)"
  eval "$("$BENCH/testbed/testbed" env)"
  export NDB_REGISTRY NDB_IN_CLIENT_NS=1 NDOCKER_BENCH_HDD_STATS NDOCKER_BENCH_SLOW_DEV
  exec "$BENCH/net/netns.sh" exec-client "$0" --big "$big" --small "$small" --runs "$runs" \
    --throttles "$throttles" --delay "$delay" --out "${out:-$BENCH/results/migrate-$(date +%Y%m%d-%H%M%S)}" \
    --fast-dir "$fast_dir" --slow-dir "$slow_dir" $( ((overlay)) || echo --no-overlay)
fi

export NDOCKER_BIN=${NDOCKER_BIN:-$SRC/build/cmd/ndocker-snapshotter}
export NDOCKERCTL_BIN=${NDOCKERCTL_BIN:-$SRC/build/cmd/ndockerctl}
export NDT_TEST_TIMEOUT=0 NDT_NDOCKER_LOG_LEVEL=info
# shellcheck source=../integration/lib.sh
source "$SRC/test/integration/lib.sh"
# shellcheck source=images/corpus.sh
source "$BENCH/images/corpus.sh"

IFS=, read -r -a throttle_list <<<"$throttles"
mkdir -p "$out"
csv=$out/results.csv
echo "round,throttle,throttle_bytes,measure,seconds,bytes,mib_s,load1,slow_seeks,slow_read_mb,slow_write_mb,mig_running_at_ready" >"$csv"

ndt_setup migbench
[[ -z "${NDB_XTRACE:-}" ]] || set -x
ndt_log "registry $NDB_REGISTRY, tiers fast=$fast_dir slow=$slow_dir, big=$big small=$small, results $out"
fast_home=$fast_dir/bench/migrate slow_home=$slow_dir/bench/migrate
small_ref=$(corpus_ref "$small" "$NDB_REGISTRY") big_ref=$(corpus_ref "$big" "$NDB_REGISTRY")
probe=$(corpus_probe "$small") budget=$(corpus_budget "$small")
NS_SMALL=$NDT_NS NS_BIG=${NDT_NS}big mig_pid=""

# --- helpers (the first five as in run.sh, which is not sourceable) ----------
drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
hdd_stat() { [[ -r "${NDOCKER_BENCH_HDD_STATS:-}" ]] && awk -v k="$1" '$1 == k { print $2 }' "$NDOCKER_BENCH_HDD_STATS"; }
wipe() { ndt_unmount_all_under "$1"; rm -rf "$1"; }
stop_container() {
  ctrw task kill -s KILL "$1" >/dev/null 2>&1 || true
  wait "$2" 2>/dev/null || true
  ctrw container rm "$1" >/dev/null 2>&1 || true
}
load1() { cut -d' ' -f1 /proc/loadavg; }
fresh_fs() {
  local tries=0
  until "$BENCH/testbed/testbed" reformat >/dev/null; do
    ((++tries < 40)) || ndt_fail "testbed reformat kept refusing"
    sleep 0.5
  done
}
# throttle_bytes T: "0", "20MiB", 52428800 -> bytes/s (as the daemon reads it)
throttle_bytes() {
  [[ $1 == - ]] && return 0
  awk -v t="$1" 'BEGIN { n = t + 0; u = t; sub(/^[0-9.]+/, "", u)
    m["" ] = 1; m["B"] = 1; m["KiB"] = 1024; m["MiB"] = 1048576; m["GiB"] = 1073741824
    m["KB"] = 1000; m["MB"] = 1000000; m["GB"] = 1000000000
    if (!(u in m)) { print "?"; exit 1 } printf "%d", n * m[u] }'
}

# disk window: "seeks read_mb write_mb" of the emulated disk since counters0
counters0() { c_seeks=$(hdd_stat seeks) c_read=$(hdd_stat bytes_read) c_write=$(hdd_stat bytes_written); }
counters_since() {
  if [[ -z "$c_seeks" || -z "$c_read" || -z "$c_write" ]]; then echo "- - -"; return; fi
  awk -v s0="$c_seeks" -v r0="$c_read" -v w0="$c_write" -v s="$(hdd_stat seeks)" -v r="$(hdd_stat bytes_read)" \
    -v w="$(hdd_stat bytes_written)" 'BEGIN { printf "%d %.1f %.1f\n", s - s0, (r - r0) / 1048576, (w - w0) / 1048576 }'
}

row() { # round throttle measure seconds bytes load seeks read write running
  local mib=""
  [[ -n "$5" && -n "$4" && "$4" != none ]] && mib=$(awk -v b="$5" -v s="$4" 'BEGIN { if (s > 0) printf "%.1f", b / s / 1048576 }')
  local s=$4; [[ $s == none ]] && s=""
  local seeks=$7 rd=$8 wr=$9; [[ $seeks == - ]] && seeks="" rd="" wr=""
  printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$1" "$2" "$(throttle_bytes "$2")" "$3" "$s" "$5" "$mib" "$6" \
    "$seeks" "$rd" "$wr" "${10}" | tee -a "$csv"
}

nd_config=$NDT_WORKDIR/ndocker-migrate.toml
# nd_restart DEFAULT_TIER THROTTLE: (re)start ndocker on the run's root and tiers.
nd_restart() {
  [[ -n "${NDOCKER_PID:-}" ]] && kill -0 "$NDOCKER_PID" 2>/dev/null && ndocker_stop
  printf '[placement]\ncontainer_tier = "slow"\n[lass]\nenabled = false\n[migration]\nthrottle = "%s"\nidle_io_priority = true\nreap_interval_seconds = 1\n' \
    "$2" >"$nd_config"
  NDOCKER_ROOT=$fast_home/ndocker ndocker_start --fast-path "$fast_home/fast" --slow-path "$slow_home/slow" \
    --default-tier "$1" --config "$nd_config"
  cur_throttle=$2
  # containerd's proxy connection comes back by itself; make sure it has.
  if [[ -n "${NDT_CTRD_PID:-}" ]] && kill -0 "$NDT_CTRD_PID" 2>/dev/null; then
    ndt_wait_until 30 "containerd to reach ndocker again" ctrw snapshots --snapshotter ndocker ls
  fi
}
ndctl() { "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" "$@"; }
# The committed snapshots of namespace NS as "key size tier", parents first.
ns_layers() {
  ndctl ls --json | jq -r --arg p "$1/" 'select(.kind == "committed" and (.key | startswith($p)))
    | [.id, .key, .size, .tier] | @tsv' | sort -n | cut -f2-
}
# wait_reaped: until no record holds a retired copy (its deletion would
# otherwise land in the next measurement), then sync.
wait_reaped() {
  local i
  for ((i = 0; i < 600; i++)); do
    [[ -z "$(ndctl ls --json | jq -r 'select((.retired | length) > 0 or .migration != "") | .key')" ]] && { sync; return 0; }
    sleep 0.1
  done
  ndt_fail "retired copies still present after 60 s"
}
# migrate_big TIER: every layer of BIG to TIER, one after the other (--wait).
migrate_big() {
  local key
  for key in "${big_keys[@]}"; do ndctl migrate "$key" "$1" --wait >/dev/null; done
}
# big_to_fast: BIG back on fast, unthrottled, retired copies gone; then T again.
big_to_fast() {
  nd_restart fast 0
  migrate_big fast
  wait_reaped
  nd_restart fast "$1"
}

# cold_start ID: caches must be dropped and counters0 run by the caller. Sets
# cold_s (seconds to ready, none when the probe did not fire), cold_disk (the
# emulated disk's "seeks read_mb write_mb" from counters0 to ready) and
# running_at_ready.
cold_start() {
  local id=$1 log=$NDT_WORKDIR/logs/$1.out pid rc=0 t0 t
  t0=$(now)
  ctr_run --rm --net-host --snapshotter "$sn" "$small_ref" "$id" >"$log" 2>&1 &
  pid=$!
  bench_probe_wait "$probe" "$log" "$budget" "$pid" || rc=$?
  t=$(ndt_elapsed "$t0")
  cold_disk=$(counters_since)  # as run.sh: the disk window ends at ready, before the stop
  running_at_ready=0
  [[ -n "${mig_pid:-}" && ! -e "$NDT_WORKDIR/mig.done" ]] && running_at_ready=1
  stop_container "$id" "$pid"
  if ((rc != 0)); then
    ndt_log "container $id: probe $probe did not fire (rc $rc); output:"; tail -n 20 "$log" >&2
    t=none
  fi
  cold_s=$t
}

# --- overlay-slow reference ---------------------------------------------------
fresh_fs
wipe "$fast_home"; wipe "$slow_home"
mkdir -p "$fast_home" "$slow_home"
if ((overlay)); then
  ndt_step "reference: stock overlayfs, containerd root on slow"
  sn=overlayfs
  NDT_CTRD_ROOT_DIR=$slow_home/containerd-overlay containerd_start --no-ndocker
  ctr_pull overlayfs "$small_ref"
  for ((round = 1; round <= runs; round++)); do
    drop_caches
    l=$(load1); counters0
    cold_start "ovl-$round"
    read -r s r w <<<"$cold_disk"
    row "$round" - cold_overlay_slow "$cold_s" "" "$l" "$s" "$r" "$w" ""
  done
  ctrw image rm "$small_ref" >/dev/null 2>&1 || true
  containerd_stop
  ndt_unmount_all_under "$NDT_WORKDIR"
  wipe "$slow_home/containerd-overlay"
  fresh_fs
  mkdir -p "$fast_home" "$slow_home"
fi

# --- ndocker ------------------------------------------------------------------
ndt_step "ndocker: $small on slow, $big on fast"
sn=ndocker
nd_restart slow 0
NDT_CTRD_ROOT_DIR=$fast_home/containerd containerd_start
ctr_pull ndocker "$small_ref"
nd_restart fast 0
NDT_NS=$NS_BIG ctr_pull ndocker "$big_ref"
NDT_NS=$NS_SMALL
mapfile -t small_layers < <(ns_layers "$NS_SMALL")
mapfile -t big_layers < <(ns_layers "$NS_BIG")
big_keys=() big_bytes=0
for l in "${big_layers[@]}"; do
  read -r k b tier <<<"$l"
  [[ $tier == fast ]] || ndt_fail "$k is on $tier after the pull, expected fast"
  big_keys+=("$k"); big_bytes=$((big_bytes + b))
done
for l in "${small_layers[@]}"; do
  read -r k b tier <<<"$l"
  [[ $tier == slow ]] || ndt_fail "$k ($small) is on $tier after the pull, expected slow"
done
ndt_log "$big: ${#big_keys[@]} layers, $big_bytes bytes on fast; $small: ${#small_layers[@]} layers on slow"
printf '%s\n' "${big_layers[@]}" >"$out/big-layers.tsv"
printf '%s\n' "${small_layers[@]}" >"$out/small-layers.tsv"

n=${#throttle_list[@]}
for ((round = 1; round <= runs; round++)); do
  for ((k = 0; k < n; k++)); do
    T=${throttle_list[$(((k + round - 1) % n))]}
    ndt_step "round $round/$runs: throttle $T"
    big_to_fast "$T"

    drop_caches
    l=$(load1); counters0
    cold_start "nomig-$round-$k"
    read -r s r w <<<"$cold_disk"
    row "$round" "$T" cold_nomig "$cold_s" "" "$l" "$s" "$r" "$w" ""

    drop_caches
    l=$(load1); counters0
    t0=$(now)
    migrate_big slow
    t=$(ndt_elapsed "$t0")
    read -r s r w < <(counters_since)
    row "$round" "$T" migrate_alone "$t" "$big_bytes" "$l" "$s" "$r" "$w" ""
    wait_reaped

    big_to_fast "$T"
    drop_caches
    l=$(load1); counters0
    rm -f "$NDT_WORKDIR/mig.done"
    t0=$(now)
    (migrate_big slow; now >"$NDT_WORKDIR/mig.done") &
    mig_pid=$!
    sleep "$delay"
    [[ -e "$NDT_WORKDIR/mig.done" ]] && ndt_log "the migration ended within --delay $delay s: the cold start does not overlap it"
    cold_start "during-$round-$k"
    running=$running_at_ready
    read -r s r w <<<"$cold_disk"
    row "$round" "$T" cold_during "$cold_s" "" "$l" "$s" "$r" "$w" "$running"
    wait "$mig_pid" || ndt_fail "background migration failed"
    mig_pid=""
    t=$(ndt_elapsed "$t0" "$(cat "$NDT_WORKDIR/mig.done")")
    read -r s r w < <(counters_since)
    row "$round" "$T" migrate_during "$t" "$big_bytes" "$l" "$s" "$r" "$w" "$running"
    wait_reaped
  done
done

ndt_step "done"
ndctl status >"$out/ndocker-status.txt" 2>&1 || true
containerd_stop
ndocker_stop
ndt_unmount_all_under "$NDT_WORKDIR"
ndt_unmount_all_under "$fast_home"; ndt_unmount_all_under "$slow_home"
wipe "$fast_home"; wipe "$slow_home"
ndt_log "results: $csv"
/usr/bin/python3 "$BENCH/migrate-report.py" "$csv" >"$out/summary.md" && cat "$out/summary.md"
