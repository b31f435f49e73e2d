#!/usr/bin/env bash
# Side-by-side benchmark runner: every image of the corpus under every
# configuration, rounds interleaved so that drift hits all alike. Not part of
# CI. Root only. Needs the testbed (testbed/testbed up), the network
# (net/netns.sh up; net/netns.sh push) and the corpus (images/build.sh).
#
#   test/bench/run.sh [--images a,b] [--configs c1,c2] [--runs N] [--out DIR]
#                     [--no-fresh-fs]   (default: `testbed reformat` before each measurement)
#                     [--pull ctr|cri]  ctr (default): `ctr image pull`, fetch in ctr;
#                                       cri: CRI PullImage (net/cri-pull.py), fetch and
#                                       unpack inside containerd (started with the cri plugin)
#                     [--no-start]      pull metrics only (no cold/warm start)
#                     [--first-round N] start at round N (resume an interrupted run
#                                       into the same --out: rows are appended)
#                     [--checkpoint-fs] before the cold start's drop_caches, freeze and
#                                       thaw both tiers (fsfreeze): ext4 writes back and
#                                       checkpoints its journal, so drop_caches can drop
#                                       every metadata block (without it, directory blocks
#                                       of the last layers unpacked are sometimes still
#                                       cached: a bimodal cold start, see RESULTS.md)
#                     [--concurrent N] after the warm start, caches dropped, N containers
#                                       of the image started at once: cold_concurrent_s =
#                                       until every one's probe fired (stdout probes only;
#                                       each container in its own network namespace)
#                     [--trace-cold DIR] trace the slow tier's requests during each cold
#                                       start (emulator trace) and attribute them to files
#                                       (tools/attribute-io.py) before the container stops:
#                                       DIR/<round>-<image>-<config>.{trace,json}; the
#                                       look-up freezes the slow fs, so the warm start of
#                                       a traced measurement is not comparable
#
# Configurations (containerd root = content store + overlayfs snapshots):
#   overlay-slow   stock overlayfs, containerd root on the slow tier ("Docker")
#   overlay-fast   stock overlayfs, containerd root on the fast tier ("NVM-Docker")
#   ndocker-slow   ndocker, containerd root + ndocker root on slow, default tier slow
#   ndocker-fast   ndocker, containerd root + ndocker root on fast, default tier fast
#   ndocker-slow-rootfast  as ndocker-slow, but the ndocker root (LMDB metadata,
#                  l/ links) on the fast tier: NOT "everything on slow"; for
#                  attributing ndocker's own metadata I/O only
#   (ndocker-slow/-fast/-slow-rootfast: LASS off, container rootfs on the same tier)
#   ndocker-ldl    ndocker with LASS policy ldl: containerd root (content store,
#                  whose blobs containerd fsyncs as they arrive) and the ndocker
#                  root (metadata, links: a few MB) on the fast tier, layers
#                  placed per LASS, container rootfs on slow
#   ndocker-predict  the same with LASS policy predict
#   ndocker-ldl-ctrdslow  ndocker-ldl with containerd's root on the slow tier,
#                  as overlay-slow ("Docker") has it
#   ndocker-hbcsa  ndocker-ldl-ctrdslow with HBCSA part 2: the image's first
#                  start is traced (not measured: a node pays it once per
#                  image), the daemon builds its hot layer on the fast tier and
#                  demotes its layers to slow ([hbcsa] promote = "after-trace",
#                  demote = true); cold and warm starts are then measured on
#                  the hot layer. fast_layer_share counts the hot layer as fast.
#                  Container rootfs (the writable upper, written at start) on
#                  the fast tier (NDB_HBCSA_CONTAINER_TIER=slow to change).
#                  fast_bytes is allocated bytes here (du -sB1): the hot
#                  layer's metacopy stubs are sparse files of the real size.
#                  NDB_HBCSA_PRIME=1: one more start before the measured
#                  cold start, so that the hot layer is already mounted.
#   ndocker-hbcsa-ctrdfast  the same with containerd's root (content store,
#                  metadata) on the fast tier, as overlay-fast has it;
#                  fast_bytes then includes the content store
#   ndocker-lass   LASS only: policy ldl, HBCSA off ([hbcsa] enabled =
#                  false: no static analysis, no tracer, no hot layer);
#                  containerd root on fast as in ndocker-hbcsa-ctrdfast,
#                  container rootfs on the fast tier (the default)
#   ndocker-static LASS + HBCSA static analysis only: engine/app layers kept
#                  on fast, the measured cold start is the image's first
#                  (so it is traced, but no hot layer is built: promote =
#                  "manual"); otherwise as ndocker-lass
#   NDB_NDOCKER_EXTRA_CONFIG: TOML appended to the LASS configs' ndocker
#   config, e.g. "[tiers.slow]" and "flush_on_commit = true" on two lines
#
# One CSV row per (round, image, configuration):
#   pull_s                  `ctr image pull` wall time (fetch + unpack)
#   pull_sync_s             the same plus the `sync` that writes back what
#                           containerd does not fsync (unpacked files)
#   store_after_download_s  pull end minus the commit time of the last blob
#                           (the mtime containerd gives a blob at commit)
#   cold_start_s            caches dropped, `ctr run` until the readiness probe
#   warm_start_s            a second container of the same image, caches warm
#   fast_bytes, slow_bytes  bytes this configuration left on each tier
#   fast_layer_share        share of the unpacked layer bytes on the fast tier
#                           (ndocker: its fast/slow snapshot dirs; overlay-fast 1,
#                           overlay-slow 0)
#   cold_concurrent_s, concurrent  with --concurrent N: N cold starts at once,
#                           until the last is ready (N in `concurrent`)
#   cold_seeks, cold_slow_read_mb  positionings and bytes read on the emulated
#                           disk during the cold start (from the emulator's
#                           stats file): separates a snapshotter's own I/O
#                           from where ext4 happened to put the files
set -euo pipefail
BENCH=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC=$(cd "$BENCH/../.." && pwd)

images="" configs="overlay-slow,overlay-fast,ndocker-slow,ndocker-fast" runs=3 out="" fresh_fs=1 concurrent=0
pull_mode=ctr start=1 trace_cold="" checkpoint_fs=0 first_round=1
fast_dir=${NDB_FAST_DIR:-/mnt/ndocker-bench/fast} slow_dir=${NDB_SLOW_DIR:-/mnt/ndocker-bench/slow}
while (($#)); do
  case $1 in
    --images) images=$2; shift 2 ;;
    --configs) configs=$2; shift 2 ;;
    --concurrent) concurrent=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --fast-dir) fast_dir=$2; shift 2 ;;
    --slow-dir) slow_dir=$2; shift 2 ;;
    --no-fresh-fs) fresh_fs=0; shift ;;
    --pull) pull_mode=$2; shift 2 ;;
    --no-start) start=0; shift ;;
    --checkpoint-fs) checkpoint_fs=1; shift ;;
    --first-round) first_round=$2; shift 2 ;;
    --trace-cold) trace_cold=$(realpath -m "$2"); shift 2 ;;
    -h | --help) sed -n '2,42p' "$0"; exit 0 ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[[ $pull_mode == ctr || $pull_mode == cri ]] || { echo "run.sh: --pull ctr|cri" >&2; exit 2; }

# Everything that fetches (ctr) and the tcp probes live in the client network
# namespace; re-run this script there once.
if [[ -z "${NDB_IN_CLIENT_NS:-}" ]]; then
  mountpoint -q "$fast_dir" || { echo "run.sh: $fast_dir is not mounted: run test/bench/testbed/testbed up" >&2; exit 1; }
  mountpoint -q "$slow_dir" || { echo "run.sh: $slow_dir is not mounted: run test/bench/testbed/testbed up" >&2; exit 1; }
  eval "$("$BENCH/net/netns.sh" env)"
  eval "$("$BENCH/testbed/testbed" env)"
  export NDB_REGISTRY NDB_IN_CLIENT_NS=1 NDOCKER_BENCH_HDD_STATS NDOCKER_BENCH_SLOW_DEV
  exec "$BENCH/net/netns.sh" exec-client "$0" --images "$images" --configs "$configs" --runs "$runs" \
    --out "${out:-$BENCH/results/$(date +%Y%m%d-%H%M%S)}" --fast-dir "$fast_dir" --slow-dir "$slow_dir" \
    --pull "$pull_mode" $( ((fresh_fs)) || echo --no-fresh-fs) $( ((start)) || echo --no-start) \
    $( ((checkpoint_fs)) && echo --checkpoint-fs) --first-round "$first_round" --concurrent "$concurrent" \
    ${trace_cold:+--trace-cold "$trace_cold"}
fi

export NDOCKER_BIN=${NDOCKER_BIN:-$SRC/build/cmd/ndocker-snapshotter}
export NDOCKERCTL_BIN=${NDOCKERCTL_BIN:-$SRC/build/cmd/ndockerctl}
export NDT_TEST_TIMEOUT=0 NDT_NDOCKER_LOG_LEVEL=info
# shellcheck source=../integration/lib.sh
source "$SRC/test/integration/lib.sh"
# shellcheck source=images/corpus.sh
source "$BENCH/images/corpus.sh"

[[ -n "$images" ]] || images=$(corpus_names | paste -sd, -)
IFS=, read -r -a image_list <<<"$images"
IFS=, read -r -a config_list <<<"$configs"
mkdir -p "$out"
[[ -z "$trace_cold" ]] || mkdir -p "$trace_cold"
csv=$out/results.csv
[[ -s "$csv" ]] || echo "round,image,category,config,rate,pull_s,pull_sync_s,store_after_download_s,cold_start_s,warm_start_s,fast_bytes,slow_bytes,cold_seeks,cold_slow_read_mb,fast_layer_share,cold_concurrent_s,concurrent" >"$csv"

ndt_setup bench
NDB_RATE=$(tc qdisc show dev "${NDB_NET_DEV_CLIENT:-ndb-c0}" 2>/dev/null | sed -n 's/.* rate \([^ ]*\) .*/\1/p' | head -n 1)
NDB_RATE=${NDB_RATE:-unshaped}
ndt_log "registry $NDB_REGISTRY, rate $NDB_RATE, tiers fast=$fast_dir slow=$slow_dir, results $out"

drop_caches() { sync; echo 3 >/proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
# Containers just removed may be garbage-collected while du walks: tolerate it.
# -x: never into a mount below (a hot layer's mount shows its layers on slow).
bytes_of() { if [[ -d "$1" ]]; then { du -xsb "$1" 2>/dev/null || true; } | tail -n 1 | cut -f1; else echo 0; fi; }
# alloc_of DIR: allocated bytes (sparse files count what they hold).
alloc_of() { if [[ -d "$1" ]]; then { du -xsB1 "$1" 2>/dev/null || true; } | tail -n 1 | cut -f1; else echo 0; fi; }

# hdd_stat KEY: a counter of the HDD emulator (empty when unavailable).
hdd_stat() { [[ -r "${NDOCKER_BENCH_HDD_STATS:-}" ]] && awk -v k="$1" '$1 == k { print $2 }' "$NDOCKER_BENCH_HDD_STATS"; }

# wipe DIR: remove a configuration's data; nothing may still be mounted there.
wipe() {
  ndt_unmount_all_under "$1"
  rm -rf "$1"
}

# start_container SNAPSHOTTER REF ID LOG: `ctr run` in the background; prints its pid.
start_container() {
  ctr_run --rm --net-host --snapshotter "$1" "$2" "$3" >"$4" 2>&1 &
  echo $!
}

# stop_container ID PID
stop_container() {
  ctrw task kill -s KILL "$1" >/dev/null 2>&1 || true
  wait "$2" 2>/dev/null || true
  ctrw container rm "$1" >/dev/null 2>&1 || true
}

# wait_port_closed PORT: up to 10 s until nothing accepts on 127.0.0.1:PORT.
wait_port_closed() {
  local i
  for ((i = 0; i < 200; i++)); do
    bench_probe_check "tcp:$1" /dev/null || return 0
    sleep 0.05
  done
  ndt_log "port $1 still accepts 10 s after the container was stopped"
}

# time_start SNAPSHOTTER REF ID PROBE BUDGET [TRACE]: prints "SECONDS SEEKS
# READ_MB": from `ctr run` to ready, and the emulated disk's positionings and
# bytes read in that window ("-" when unknown; SECONDS "none" when the probe
# never fired). TRACE: path prefix; the emulator traces the window into
# TRACE.trace, attributed into TRACE.json while the container still runs.
time_start() {
  local sn=$1 ref=$2 id=$3 probe=$4 budget=$5 trace=${6:-} log=$NDT_WORKDIR/logs/$3.out t0 pid rc=0
  local seeks0 bytes0 seeks="-" mb="-"
  if [[ -n "$trace" ]]; then
    rm -f "$trace.trace"
    echo "trace $trace.trace" >"$NDOCKER_BENCH_HDD_STATS"
  fi
  seeks0=$(hdd_stat seeks) bytes0=$(hdd_stat bytes_read)
  t0=$(now)
  pid=$(start_container "$sn" "$ref" "$id" "$log")
  bench_probe_wait "$probe" "$log" "$budget" "$pid" || rc=$?
  local t
  t=$(ndt_elapsed "$t0")
  if [[ -n "$seeks0" && -n "$bytes0" ]]; then
    seeks=$(($(hdd_stat seeks) - seeks0))
    mb=$(awk -v a="$bytes0" -v b="$(hdd_stat bytes_read)" 'BEGIN { printf "%.1f", (b - a) / 1048576 }')
  fi
  if [[ -n "$trace" ]]; then
    echo "trace off" >"$NDOCKER_BENCH_HDD_STATS"
    /usr/bin/python3 "$BENCH/tools/attribute-io.py" capture --trace "$trace.trace" --dev "$NDOCKER_BENCH_SLOW_DEV" \
      --mnt "$slow_dir" --out "$trace.json" --label "$(basename "$trace" | cut -d- -f2-)" >&2 ||
      ndt_log "attribute-io.py failed for $trace.trace"
  fi
  stop_container "$id" "$pid"
  # A tcp probe must not see this container's port in the next start (seen
  # once: a warm start of 0.009 s, then a process still holding the rootfs).
  [[ $probe == tcp:* ]] && wait_port_closed "${probe#tcp:}"
  if ((rc != 0)); then
    ndt_log "container $id: probe $probe did not fire (rc $rc); output:"; tail -n 20 "$log" >&2
    t=""
  fi
  echo "${t:-none} $seeks $mb"
}

# time_concurrent SNAPSHOTTER REF ID PROBE BUDGET N: N containers of REF
# started at once (caches dropped by the caller); prints the seconds until
# every one's probe fired, "none" when one did not within 4x its budget.
time_concurrent() {
  local sn=$1 ref=$2 id=$3 probe=$4 budget=$5 n=$6 t0 i rc=0 t
  local -a pids=() logs=()
  t0=$(now)
  # Each in its own network namespace (no --net-host): the corpus apps
  # listen on fixed ports, so only one of them could bind on the host's.
  for ((i = 0; i < n; i++)); do
    logs[i]=$NDT_WORKDIR/logs/$id-$i.out
    ctr_run --rm --snapshotter "$sn" "$ref" "$id-$i" >"${logs[i]}" 2>&1 &
    pids[i]=$!
  done
  for ((i = 0; i < n; i++)); do
    if ! bench_probe_wait "$probe" "${logs[i]}" "$((budget * 4))" "${pids[i]}"; then
      ndt_log "container $id-$i of $n: probe $probe did not fire; output:"; tail -n 5 "${logs[i]}" >&2
      rc=1
    fi
  done
  t=$(ndt_elapsed "$t0")
  for ((i = 0; i < n; i++)); do stop_container "$id-$i" "${pids[i]}"; done
  if ((rc == 0)); then echo "$t"; else echo none; fi
}

# measure ROUND IMAGE CONFIG
measure() {
  local round=$1 img=$2 cfg=$3 ref probe budget category sn home_tier
  ref=$(corpus_ref "$img" "$NDB_REGISTRY")
  probe=$(corpus_probe "$img")
  budget=$(corpus_budget "$img")
  category=$(corpus_field "$img" category)
  case $cfg in
    overlay-slow) sn=overlayfs home_tier=$slow_dir ;;
    overlay-fast) sn=overlayfs home_tier=$fast_dir ;;
    ndocker-slow) sn=ndocker home_tier=$slow_dir ;;
    ndocker-fast) sn=ndocker home_tier=$fast_dir ;;
    ndocker-slow-rootfast) sn=ndocker home_tier=$slow_dir ;;
    ndocker-ldl | ndocker-predict) sn=ndocker home_tier=$fast_dir ;;
    ndocker-ldl-ctrdslow | ndocker-hbcsa) sn=ndocker home_tier=$slow_dir ;;
    ndocker-hbcsa-ctrdfast | ndocker-lass | ndocker-static) sn=ndocker home_tier=$fast_dir ;;
    *) ndt_fail "unknown configuration $cfg" ;;
  esac
  local fast_home=$fast_dir/bench/$cfg slow_home=$slow_dir/bench/$cfg
  # Every measurement starts from a new, empty file system on both tiers: on
  # the emulated disk, where earlier runs' files were freed decides how many
  # positionings a cold start pays (seen as bimodal cold starts without it).
  # A container's last processes may hold its rootfs for a moment after
  # `ctr task kill` + `container rm`: retry for up to 20 s.
  if ((fresh_fs)); then
    local tries=0
    until "$BENCH/testbed/testbed" reformat >/dev/null; do
      ((++tries < 40)) || ndt_fail "testbed reformat kept refusing"
      sleep 0.5
    done
  fi
  wipe "$fast_home"; wipe "$slow_home"
  mkdir -p "$fast_home" "$slow_home"
  local home=$home_tier/bench/$cfg
  if [[ $sn == ndocker ]]; then
    local nd_root=$home/ndocker tier=${cfg#ndocker-} nd_config=$NDT_WORKDIR/ndocker-$cfg.toml
    [[ $cfg == ndocker-slow-rootfast ]] && nd_root=$fast_home/ndocker tier=slow
    case $cfg in
      ndocker-ldl | ndocker-predict | ndocker-ldl-ctrdslow)
        nd_root=$fast_home/ndocker tier=fast
        local policy=${cfg#ndocker-}
        printf '[placement]\ncontainer_tier = "slow"\n[lass]\npolicy = "%s"\ncontainerd_root = "%s"\n%s\n' \
          "${policy%-ctrdslow}" "$home/containerd" "${NDB_NDOCKER_EXTRA_CONFIG:-}" >"$nd_config" ;;
      ndocker-lass | ndocker-static)
        nd_root=$fast_home/ndocker tier=fast
        local hbcsa='enabled = false'
        [[ $cfg == ndocker-static ]] && hbcsa='promote = "manual"'
        printf '[lass]\npolicy = "ldl"\ncontainerd_root = "%s"\n[hbcsa]\n%s\n%s\n' \
          "$home/containerd" "$hbcsa" "${NDB_NDOCKER_EXTRA_CONFIG:-}" >"$nd_config" ;;
      ndocker-hbcsa | ndocker-hbcsa-ctrdfast)
        nd_root=$fast_home/ndocker tier=fast
        printf '[placement]\ncontainer_tier = "%s"\n[lass]\npolicy = "ldl"\ncontainerd_root = "%s"\n[hbcsa]\npromote = "after-trace"\ndemote = true\n%s\n' \
          "${NDB_HBCSA_CONTAINER_TIER:-fast}" \
          "$home/containerd" "${NDB_NDOCKER_EXTRA_CONFIG:-}" >"$nd_config" ;;
      *)
        printf '[placement]\ncontainer_tier = "%s"\n[lass]\nenabled = false\n' "$tier" >"$nd_config" ;;
    esac
    NDOCKER_ROOT=$nd_root ndocker_start --fast-path "$fast_home/fast" --slow-path "$slow_home/slow" \
      --default-tier "$tier" --config "$nd_config"
  fi
  local -a ctrd_args=()
  [[ $sn == ndocker ]] || ctrd_args+=(--no-ndocker)
  if [[ $pull_mode == cri ]]; then
    # CRI pulls unpack with the cri plugin's snapshotter; plain HTTP through
    # a mirror entry for the registry; images land in namespace k8s.io.
    ctrd_args+=(--cri)
    export NDT_CRI_SNAPSHOTTER=$sn NDT_REGISTRY=$NDB_REGISTRY
  fi
  NDT_CTRD_ROOT_DIR=$home/containerd containerd_start "${ctrd_args[@]}"
  local ns_saved=$NDT_NS
  [[ $pull_mode == cri ]] && NDT_NS=k8s.io

  drop_caches
  local t0 t1 t2
  t0=$(now)
  if [[ $pull_mode == cri ]]; then
    /usr/bin/python3 "$BENCH/net/cri-pull.py" --address "$NDT_CTRD_SOCK" "$ref" >"$NDT_WORKDIR/logs/cri-pull.out" 2>&1 ||
      { cat "$NDT_WORKDIR/logs/cri-pull.out" >&2; ndt_fail "CRI pull of $ref failed"; }
  else
    ctr_pull "$sn" "$ref"
  fi
  t1=$(now)
  sync
  t2=$(now)
  local last_blob
  last_blob=$(find "$NDT_CTRD_ROOT/io.containerd.content.v1.content/blobs/sha256" -type f -printf '%T@\n' | sort -n | tail -n 1)
  local cold=none warm=none cold_seeks=- cold_read_mb=- _s _m conc=none
  if ((start)); then
    if ((checkpoint_fs)); then
      local d
      for d in "$slow_dir" "$fast_dir"; do fsfreeze -f "$d" && fsfreeze -u "$d"; done
    fi
    if [[ $cfg == ndocker-hbcsa* ]]; then
      local first
      drop_caches
      read -r first _s _m < <(time_start "$sn" "$ref" "trace-$round-$img" "$probe" "$budget")
      ndt_log "$img: first (traced) start ${first}s; waiting for its hot layer and the demotion"
      hot_ready() { "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" hot ls --json | jq -e 'select(.versions[]?.state == "ready")' >/dev/null; }
      no_fast_layers() {
        "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" ls --json |
          jq -e -s '[.[] | select(.kind == "committed" and .tier == "fast")] | length == 0' >/dev/null
      }
      ndt_wait_until 120 "the hot layer of $img" hot_ready
      ndt_wait_until 300 "the demotion of $img's layers" no_fast_layers
      # The fast copies go once no mount can use them (the traced container
      # held them): at the daemon's next reap, within reap_interval_seconds.
      no_retired_fast() { ! "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" status | grep -q '^retired copies on fast'; }
      ndt_wait_until 90 "the demoted layers' fast copies to go" no_retired_fast
      if [[ "${NDB_HBCSA_PRIME:-0}" == 1 ]]; then
        # Diagnosis: one start on the hot layer before the measured one, so
        # the hot layer is already mounted (as on a node where the image ran
        # since it was promoted); its cost is then not in the cold start.
        read -r _ _s _m < <(time_start "$sn" "$ref" "prime-$round-$img" "$probe" "$budget")
      fi
      "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" hot ls >&2
    fi
    drop_caches
    read -r cold cold_seeks cold_read_mb < <(time_start "$sn" "$ref" "cold-$round-$img" "$probe" "$budget" \
      ${trace_cold:+"$trace_cold/$round-$img-$cfg"})
    read -r warm _s _m < <(time_start "$sn" "$ref" "warm-$round-$img" "$probe" "$budget")
    if ((concurrent > 0)) && [[ $probe == stdout:* ]]; then
      drop_caches
      conc=$(time_concurrent "$sn" "$ref" "conc-$round-$img" "$probe" "$budget" "$concurrent")
      ndt_log "$img $cfg: $concurrent cold starts at once: ${conc}s (one: ${cold}s)"
    fi
  fi
  NDT_NS=$ns_saved
  # CSV: empty cells for what is unknown.
  [[ $cold == none ]] && cold=""
  [[ $warm == none ]] && warm=""
  [[ $cold_seeks == - ]] && cold_seeks=""
  [[ $cold_read_mb == - ]] && cold_read_mb=""
  local conc_n=""
  if [[ $conc == none ]]; then conc=""; else conc_n=$concurrent; fi
  local fast_bytes slow_bytes share
  case $cfg in
    overlay-slow) share=0 ;;
    overlay-fast) share=1 ;;
    *)
      local lf ls
      lf=$(bytes_of "$fast_home/fast/snapshots") ls=$(bytes_of "$slow_home/slow/snapshots")
      # The hot layer is the image's fast-tier share under HBCSA.
      lf=$((lf + $(alloc_of "$fast_home/fast/hot")))
      share=$(awk -v f="$lf" -v s="$ls" 'BEGIN { if (f + s > 0) printf "%.3f", f / (f + s) }') ;;
  esac
  fast_bytes=$(bytes_of "$fast_home")
  slow_bytes=$(bytes_of "$slow_home")
  if [[ $cfg == ndocker-hbcsa* ]]; then
    fast_bytes=$(alloc_of "$fast_home")
    # What the fast device holds, by part (allocated bytes).
    ndt_log "$img $cfg fast device: $(cd "$fast_home" && du -xsB1 ndocker/* fast/* containerd/* 2>/dev/null | tr '\t\n' '= ' )"
  fi
  printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$round" "$img" "$category" "$cfg" "$NDB_RATE" \
    "$(ndt_elapsed "$t0" "$t1")" "$(ndt_elapsed "$t0" "$t2")" "$(ndt_elapsed "$last_blob" "$t1")" \
    "$cold" "$warm" "$fast_bytes" "$slow_bytes" "$cold_seeks" "$cold_read_mb" "$share" "$conc" "$conc_n" | tee -a "$csv"

  containerd_stop
  [[ $sn == ndocker ]] && ndocker_stop
  ndt_unmount_all_under "$NDT_WORKDIR"
  wipe "$fast_home"; wipe "$slow_home"
  unset NDOCKER_ROOT
}

for ((round = first_round; round <= runs; round++)); do
  for img in "${image_list[@]}"; do
    # Rotate the order of configurations each round so no configuration always
    # runs first (page cache, writeback, thermal drift).
    n=${#config_list[@]}
    for ((k = 0; k < n; k++)); do
      cfg=${config_list[$(((k + round - 1) % n))]}
      ndt_step "round $round/$runs: $img under $cfg"
      measure "$round" "$img" "$cfg"
    done
  done
done
ndt_log "results: $csv"
if [[ -n "$trace_cold" ]] && compgen -G "$trace_cold/*.json" >/dev/null; then
  /usr/bin/python3 "$BENCH/tools/attribute-io.py" report "$trace_cold"/*.json >"$trace_cold/attribution.md" || true
  ndt_log "cold-start I/O attribution: $trace_cold/attribution.md"
fi
/usr/bin/python3 "$BENCH/report.py" "$csv" --plots "$out" --out "$out/RESULTS.md" \
  --note "Rate: $NDB_RATE. Tiers: slow = $slow_dir, fast = $fast_dir (see test/bench/testbed)."
