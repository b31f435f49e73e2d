#!/usr/bin/env bash
# Micro-benchmarks of ndocker-snapshotter against containerd's stock overlayfs
# snapshotter, measured in the same run on the same machine:
#
#  1. Snapshots API latency (ndocker-snapshot-bench): Prepare/Mounts/Commit/Stat
#     p50/p99 through the socket, List and Stat with --store-size (10,000)
#     snapshots in the store, Prepare/Commit latency with the store full.
#     Three targets, interleaved call by call:
#       containerd/overlayfs  containerd's in-tree overlay, through containerd's socket
#       containerd/ndocker    the proxy plugin `ndocker`, through containerd's socket
#       direct/ndocker        a second ndocker daemon, straight to its socket
#  2. Daemon memory: VmRSS/VmHWM (and RssAnon/RssFile) of both ndocker daemons
#     and of containerd, idle / after filling the store / after the workload /
#     after the cleanup / after the container runs; on-disk metadata size.
#  3. Container start, cold: the test image (test/integration/lib.sh) pulled
#     with both snapshotters; after `sync; echo 3 > drop_caches`, one
#     `ctr run --rm` (time to its first output line), then --containers (20)
#     at once (time until all of them printed their line, and until all
#     exited). Snapshotters interleaved: overlayfs, ndocker, overlayfs, ...
#     for --rounds (3) rounds.
#
# Results (not committed): test/bench/micro/results/<timestamp>/
#   api.csv         target,snapshotter,op,n,p50_us,p99_us,mean_us,min_us,max_us
#   memory.csv      phase,process,pid,vmrss_kib,vmhwm_kib,rssanon_kib,rssfile_kib
#   metadata.csv    phase,store,bytes
#   containers.csv  round,snapshotter,containers,first_output_s,all_output_s,all_exited_s
#   results.md      the tables below, ratios ndocker/overlayfs (also printed)
#   env.txt         machine, versions, load, command line
#
# Usage (root; the machine should be otherwise idle, it rarely is):
#   test/bench/micro/run.sh [--store-size N] [--iterations N] [--loaded-iterations N]
#                           [--rounds N] [--containers N] [--out DIR]
#                           [--skip-api] [--skip-containers]
# Environment: NDOCKER_BIN (daemon, default build/cmd/ndocker-snapshotter),
# SNAPSHOT_BENCH_BIN (default: built on demand in /var/tmp/ndocker-bench/build-micro),
# NDT_TMPDIR (where the throwaway containerd/daemons live, default /var/tmp),
# NDT_NDOCKER_LOG_LEVEL (default info, the daemon's production default).
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail

MICRO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$MICRO_DIR/../../.." && pwd)

STORE_SIZE=10000
ITERATIONS=200
LOADED_ITERATIONS=100
ROUNDS=3
CONTAINERS=20
OUT=""
SKIP_API=0
SKIP_CONTAINERS=0
CMDLINE="$0 $*"
while (($#)); do
  case $1 in
    --store-size) STORE_SIZE=$2; shift 2 ;;
    --iterations) ITERATIONS=$2; shift 2 ;;
    --loaded-iterations) LOADED_ITERATIONS=$2; shift 2 ;;
    --rounds) ROUNDS=$2; shift 2 ;;
    --containers) CONTAINERS=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --skip-api) SKIP_API=1; shift ;;
    --skip-containers) SKIP_CONTAINERS=1; shift ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

# A full run takes several minutes; lib.sh's watchdog would stop it at 300 s.
: "${NDT_TEST_TIMEOUT:=7200}"
: "${NDT_NDOCKER_LOG_LEVEL:=info}"
export NDT_TEST_TIMEOUT NDT_NDOCKER_LOG_LEVEL
# shellcheck source=../../integration/lib.sh
source "$SRC_DIR/test/integration/lib.sh"

[[ -n "$OUT" ]] || OUT=$MICRO_DIR/results/$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

# ---------------------------------------------------------------------------
# the benchmark client

bench_binary() {
  if [[ -n "${SNAPSHOT_BENCH_BIN:-}" ]]; then
    [[ -x "$SNAPSHOT_BENCH_BIN" ]] || { echo "SNAPSHOT_BENCH_BIN=$SNAPSHOT_BENCH_BIN is not executable" >&2; exit 1; }
    return 0
  fi
  local b=/var/tmp/ndocker-bench/build-micro
  if [[ ! -f "$b/CMakeCache.txt" ]]; then
    cmake -S "$MICRO_DIR" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  echo "building ndocker-snapshot-bench in $b" >&2
  cmake --build "$b" -j2 >&2
  SNAPSHOT_BENCH_BIN=$b/ndocker-snapshot-bench
}
((SKIP_API)) || bench_binary # before ndt_setup: a build needs no cleanup

ndt_setup micro-bench
ndt_log "results go to $OUT"

{
  echo "date: $(date -Is)"
  echo "command: $CMDLINE"
  echo "host: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ { print $2 " kB" }' /proc/meminfo)"
  echo "workdir: $NDT_WORKDIR ($(stat -f -c %T "$NDT_WORKDIR"), $(df --output=source "$NDT_WORKDIR" | tail -1))"
  echo "containerd: $(containerd --version)"
  echo "runc: $(runc --version | head -1)"
  echo "ndocker: $NDOCKER_BIN ($("$NDOCKER_BIN" --version 2>&1 | head -1)), log level $NDT_NDOCKER_LOG_LEVEL"
  echo "git: $(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC_DIR" diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "store size $STORE_SIZE, iterations $ITERATIONS, loaded iterations $LOADED_ITERATIONS, rounds $ROUNDS, containers $CONTAINERS"
} >"$OUT/env.txt"

# ---------------------------------------------------------------------------
# daemons: ndocker behind containerd, a second ndocker for direct calls, containerd

ndt_step "daemons"
ndocker_start
NDOCKER_DIRECT_ROOT=$NDT_WORKDIR/ndocker-direct
NDOCKER_DIRECT_SOCK=$NDT_WORKDIR/run/ndocker-direct.sock
ndt_spawn ndocker-direct "$NDT_WORKDIR/logs/ndocker-direct.log" "$NDOCKER_BIN" \
  --root "$NDOCKER_DIRECT_ROOT" --address "$NDOCKER_DIRECT_SOCK" \
  --config "$NDT_WORKDIR/ndocker-config.toml" --log-level "$NDT_NDOCKER_LOG_LEVEL"
NDOCKER_DIRECT_PID=$NDT_LAST_PID
ndt_wait_until 30 "the direct ndocker daemon to listen on $NDOCKER_DIRECT_SOCK" ndt__socket_accepts "$NDOCKER_DIRECT_SOCK"
ndt_log "direct ndocker-snapshotter up (pid $NDOCKER_DIRECT_PID, socket $NDOCKER_DIRECT_SOCK)"
containerd_start
OVERLAY_ROOT=$NDT_CTRD_ROOT/io.containerd.snapshotter.v1.overlayfs
for p in "$NDT_CTRD_PID:containerd" "$NDOCKER_PID:ndocker-snapsho" "$NDOCKER_DIRECT_PID:ndocker-snapsho"; do
  comm=$(cat "/proc/${p%%:*}/comm" 2>/dev/null || true)
  [[ "$comm" == "${p#*:}" ]] || ndt_fail "pid ${p%%:*} is '$comm', expected ${p#*:} (memory would be measured on the wrong process)"
done

# ---------------------------------------------------------------------------
# memory and metadata samples

echo "phase,process,pid,vmrss_kib,vmhwm_kib,rssanon_kib,rssfile_kib" >"$OUT/memory.csv"
echo "phase,store,bytes" >"$OUT/metadata.csv"
# The hook the bench runs at each phase (a separate process: values baked in).
cat >"$OUT/hook.sh" <<EOF
#!/usr/bin/env bash
# written by run.sh: ndocker-snapshot-bench --hook, argument = phase
phase=\$1
for p in containerd:$NDT_CTRD_PID ndocker:$NDOCKER_PID ndocker-direct:$NDOCKER_DIRECT_PID; do
  awk -v ph="\$phase" -v name="\${p%%:*}" -v pid="\${p#*:}" '
    /^VmRSS:/ { rss = \$2 } /^VmHWM:/ { hwm = \$2 } /^RssAnon:/ { an = \$2 } /^RssFile:/ { fi = \$2 }
    END { print ph "," name "," pid "," rss "," hwm "," an "," fi }' "/proc/\${p#*:}/status" >>"$OUT/memory.csv"
done
for m in overlayfs:$OVERLAY_ROOT/metadata.db ndocker:$NDOCKER_ROOT/metadata/data.mdb \\
         ndocker-direct:$NDOCKER_DIRECT_ROOT/metadata/data.mdb containerd-meta:$NDT_CTRD_ROOT/io.containerd.metadata.v1.bolt/meta.db; do
  [[ -f "\${m#*:}" ]] && echo "\$phase,\${m%%:*},\$(stat -c %s "\${m#*:}")" >>"$OUT/metadata.csv"
done
exit 0
EOF
chmod +x "$OUT/hook.sh"

# ---------------------------------------------------------------------------
# 1. Snapshots API

if ((SKIP_API == 0)); then
  ndt_step "Snapshots API: $ITERATIONS cycles, $STORE_SIZE-snapshot store, interleaved over 3 targets"
  t0=$(ndt_now)
  "$SNAPSHOT_BENCH_BIN" \
    --target "containerd:$NDT_CTRD_SOCK:overlayfs" \
    --target "containerd:$NDT_CTRD_SOCK:$NDOCKER_SNAPSHOTTER_NAME" \
    --target "direct:$NDOCKER_DIRECT_SOCK:$NDOCKER_SNAPSHOTTER_NAME" \
    --namespace "$NDT_NS" --iterations "$ITERATIONS" --store-size "$STORE_SIZE" \
    --loaded-iterations "$LOADED_ITERATIONS" --csv "$OUT/api.csv" --hook "$OUT/hook.sh" \
    2> >(tee "$OUT/api.log" >&2) ||
    ndt_fail "ndocker-snapshot-bench failed (exit $?); see $OUT/api.log"
  ndt_log "Snapshots API part took $(ndt_elapsed "$t0") s"

  # Everything the bench created must be gone from the backends too (the GC
  # that Leases.Delete(sync) ran, and Cleanup for the direct daemon).
  overlay_dirs() { find "$OVERLAY_ROOT/snapshots" -mindepth 1 -maxdepth 1 2>/dev/null; }
  overlay_clean() { [[ -z "$(overlay_dirs)" ]]; }
  direct_dirs() { find "$NDOCKER_DIRECT_ROOT"/{fast,slow}/snapshots -mindepth 1 -maxdepth 1 2>/dev/null; }
  direct_clean() { [[ -z "$(direct_dirs)" ]]; }
  ndt_wait_until_quiet 60 overlay_clean || ndt_fail "overlayfs snapshot folders left after the bench: $(overlay_dirs | wc -l)"
  ndt_wait_until_quiet 60 ndocker_tiers_empty || ndt_fail "ndocker snapshot folders left after the bench: $(ndocker_snapshot_dirs | wc -l)"
  ndt_wait_until_quiet 60 direct_clean || ndt_fail "direct ndocker snapshot folders left after the bench: $(direct_dirs | wc -l)"
  ndt_pass "no snapshot folder left in overlayfs, ndocker or the direct ndocker after the bench"
fi

# ---------------------------------------------------------------------------
# 3. container start, cold

# first_line TSFILE OUTFILE: stamp the arrival of the first line of stdin,
# keep the whole output.
first_line() {
  local line
  if IFS= read -r line; then
    printf '%s\n' "$EPOCHREALTIME" >"$1"
    printf '%s\n' "$line" >"$2"
  fi
  cat >>"$2"
}

# run_batch SNAPSHOTTER N TAG: drop caches, start N `ctr run --rm` at once;
# sets BATCH="<first output s> <all output s> <all exited s>" after the start
# (runs in this shell, so that ndt_fail stops the script).
run_batch() {
  local sn=$1 n=$2 tag=$3 i dir t0 t_end pid rc=0
  local -a pids=()
  dir=$NDT_WORKDIR/tmp/$tag
  mkdir -p "$dir"
  sync
  echo 3 >/proc/sys/vm/drop_caches
  t0=$EPOCHREALTIME
  for ((i = 0; i < n; i++)); do
    (ctr_run --rm --snapshotter "$sn" "$REF" "$tag-$i" 2>"$dir/$i.err" | first_line "$dir/$i.ts" "$dir/$i.out") &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  t_end=$EPOCHREALTIME
  for ((i = 0; i < n; i++)); do
    if [[ ! -s "$dir/$i.ts" || "$(head -n 1 "$dir/$i.out")" != "$NDT_GREETING" ]]; then
      cat "$dir/$i.err" >&2
      ndt_fail "container $tag-$i through $sn printed [$(head -c 200 "$dir/$i.out" 2>/dev/null)] (exit $rc), expected the greeting"
    fi
  done
  ((rc == 0)) || ndt_fail "a ctr run of batch $tag through $sn exited with $rc"
  BATCH=$(cat "$dir"/*.ts | awk -v t0="$t0" -v te="$t_end" '
    { d = $1 - t0; if (NR == 1 || d < lo) lo = d; if (d > hi) hi = d }
    END { printf "%.3f %.3f %.3f\n", lo, hi, te - t0 }')
  rm -rf "$dir"
}

# settle: no container left, and containerd's GC done with the rootfs snapshots.
settle() {
  ndt_wait_until 60 "containers to be gone" bash -c "[[ -z \"\$(ctr --address '$NDT_CTRD_SOCK' --namespace '$NDT_NS' container ls -q)\" ]]"
  sleep 2
}

if ((SKIP_CONTAINERS == 0)); then
  ndt_step "container start (cold): 1 and $CONTAINERS at once, $ROUNDS rounds, snapshotters interleaved"
  registry_start
  image_build_and_push
  REF=$NDT_IMAGE_REF
  for sn in overlayfs "$NDOCKER_SNAPSHOTTER_NAME"; do ctr_pull "$sn" "$REF"; done
  ndt_pass "pulled $REF with overlayfs and $NDOCKER_SNAPSHOTTER_NAME"
  # one unmeasured run each: first-use costs (shim binary, runc, cgroup setup)
  for sn in overlayfs "$NDOCKER_SNAPSHOTTER_NAME"; do run_batch "$sn" 1 "warm-$sn"; settle; done
  echo "round,snapshotter,containers,first_output_s,all_output_s,all_exited_s" >"$OUT/containers.csv"
  for ((r = 1; r <= ROUNDS; r++)); do
    for n in 1 "$CONTAINERS"; do
      for sn in overlayfs "$NDOCKER_SNAPSHOTTER_NAME"; do
        run_batch "$sn" "$n" "r$r-$sn-$n"
        read -r first all exited <<<"$BATCH"
        echo "$r,$sn,$n,$first,$all,$exited" >>"$OUT/containers.csv"
        ndt_log "round $r: $n container(s) through $sn: first output ${first}s, all output ${all}s, all exited ${exited}s"
        settle
      done
    done
  done
  "$OUT/hook.sh" after-containers
fi

echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"

# ---------------------------------------------------------------------------
# report

python3 - "$OUT" >"$OUT/results.md" <<'PY'
import csv, os, statistics, sys

out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    if not os.path.exists(p):
        return []
    with open(p) as f:
        return list(csv.DictReader(f))

def ratio(a, b):
    try:
        a, b = float(a), float(b)
        return f"{a / b:.2f}" if b > 0 else "n/a"
    except (TypeError, ValueError):
        return "n/a"

def us(v):
    v = float(v)
    return f"{v / 1000:.1f} ms" if v >= 10000 else f"{v:.0f}"

env = open(os.path.join(out, "env.txt")).read().strip().splitlines()
print("# ndocker-snapshotter micro-benchmarks\n")
for line in env:
    print(f"- {line}")
print("\nThe machine is shared (2 CPUs, other work running): numbers are noisy. "
      "Snapshot API calls of the three targets are interleaved call by call, "
      "container runs alternate overlayfs/ndocker; compare ratios, not absolutes.\n")

api = rows("api.csv")
if api:
    by = {}
    ops = []
    for r in api:
        key = f"{r['target']}/{r['snapshotter']}"
        by[(r["op"], key)] = r
        if r["op"] not in ops:
            ops.append(r["op"])
    base, prox, direct = "containerd/overlayfs", "containerd/ndocker", "direct/ndocker"
    print("## Snapshots API latency (µs unless marked; one interleaved run)\n")
    print("ratio = ndocker / overlayfs for the same op, p50 against p50 and p99 against p99. "
          "`direct` = the ndocker socket without containerd (no overlayfs counterpart exists: "
          "overlayfs lives inside containerd), ratio still against containerd/overlayfs.\n")
    print("| op | n | overlayfs p50 | overlayfs p99 | ndocker p50 | ndocker p99 | **ratio p50** | **ratio p99** "
          "| direct p50 | direct p99 | direct ratio p50 | direct ratio p99 |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    gc_notes = []
    for op in ops:
        b, p, d = by.get((op, base)), by.get((op, prox)), by.get((op, direct))
        if op in ("lease-delete-sync", "cleanup"):
            # containerd's GC is global: whichever Leases.Delete(sync) runs first
            # collects every snapshotter's garbage; no fair ratio.
            for k, t in ((base, b), (prox, p), (direct, d)):
                if t:
                    gc_notes.append(f"{op} {k}: {float(t['p50_us']) / 1000:.1f} ms")
            continue
        if not b:
            continue
        cells = [op, b["n"], us(b["p50_us"]), us(b["p99_us"])]
        for t in (p, d):
            if t:
                cells += [us(t["p50_us"]), us(t["p99_us"]),
                          ratio(t["p50_us"], b["p50_us"]), ratio(t["p99_us"], b["p99_us"])]
            else:
                cells += ["-"] * 4
        cells[6] = f"**{cells[6]}**"
        cells[7] = f"**{cells[7]}**"
        print("| " + " | ".join(cells) + " |")
    print("\nlist@N = one whole List stream (no filter) over the store; stat@N = Stat of a random "
          "snapshot in it; *@N = with N snapshots in the store; prepare.fill = the Prepare calls that "
          "filled it (first and last 1000 shown apart); lease-delete-sync = Leases.Delete(sync=true), "
          "i.e. containerd's GC removing whatever the backend still held; remove* through containerd "
          "only touch containerd's metadata (the backend Remove happens in the GC).\n")
    if gc_notes:
        print("Not in the table (containerd's GC is global, so the first Leases.Delete(sync) also "
              "collects the other snapshotter's garbage; no fair ratio): " + "; ".join(gc_notes) + ".\n")

mem = rows("memory.csv")
if mem:
    print("## Memory (KiB)\n")
    print("overlayfs runs inside containerd, so it has no RSS of its own: the ratio column is the "
          "resident memory the ndocker daemon adds, relative to containerd's (which holds overlayfs "
          "and the metadata of every snapshotter). RSS includes LMDB/bolt pages mapped from the "
          "metadata files (RssFile).\n")
    print("| phase | ndocker VmRSS | ndocker VmHWM | ndocker RssAnon/RssFile | direct ndocker VmRSS | direct VmHWM "
          "| containerd VmRSS | containerd VmHWM | **ndocker/containerd RSS** |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    phases = []
    for r in mem:
        if r["phase"] not in phases:
            phases.append(r["phase"])
    for ph in phases:
        m = {r["process"]: r for r in mem if r["phase"] == ph}
        n, d, c = m.get("ndocker", {}), m.get("ndocker-direct", {}), m.get("containerd", {})
        print(f"| {ph} | {n.get('vmrss_kib','-')} | {n.get('vmhwm_kib','-')} | "
              f"{n.get('rssanon_kib','-')}/{n.get('rssfile_kib','-')} | {d.get('vmrss_kib','-')} | "
              f"{d.get('vmhwm_kib','-')} | {c.get('vmrss_kib','-')} | {c.get('vmhwm_kib','-')} | "
              f"**{ratio(n.get('vmrss_kib'), c.get('vmrss_kib'))}** |")
    meta = rows("metadata.csv")
    if meta:
        print("\nOn-disk metadata (bytes): ndocker's LMDB data.mdb against overlayfs' bolt metadata.db\n")
        print("| phase | overlayfs metadata.db | ndocker data.mdb | **ratio** | direct ndocker data.mdb | containerd meta.db |")
        print("|---|---:|---:|---:|---:|---:|")
        for ph in phases:
            m = {r["store"]: r["bytes"] for r in meta if r["phase"] == ph}
            if not m:
                continue
            print(f"| {ph} | {m.get('overlayfs','-')} | {m.get('ndocker','-')} | "
                  f"**{ratio(m.get('ndocker'), m.get('overlayfs'))}** | {m.get('ndocker-direct','-')} | "
                  f"{m.get('containerd-meta','-')} |")
    print()

cont = rows("containers.csv")
if cont:
    print("## Container start, cold (page cache dropped before each batch), seconds\n")
    print("`ctr run --rm` of the test image (prints one line); 1 container, then N at once. "
          "first/all output = until the first/last container printed its line; exited = until every "
          "`ctr run --rm` returned (includes task and snapshot teardown). min and median over the rounds.\n")
    print("| containers | metric | overlayfs min | overlayfs median | ndocker min | ndocker median | **ratio median** | ratio min |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    ns = sorted({int(r["containers"]) for r in cont})
    sns = [s for s in dict.fromkeys(r["snapshotter"] for r in cont)]
    other = [s for s in sns if s != "overlayfs"]
    for n in ns:
        for metric, col in (("first output", "first_output_s"), ("all output", "all_output_s"),
                            ("all exited", "all_exited_s")):
            if n == 1 and metric == "all output":
                continue
            vals = {s: [float(r[col]) for r in cont if r["snapshotter"] == s and int(r["containers"]) == n]
                    for s in sns}
            o = vals.get("overlayfs", [])
            for s in other:
                v = vals.get(s, [])
                if not o or not v:
                    continue
                print(f"| {n} | {metric} | {min(o):.3f} | {statistics.median(o):.3f} | {min(v):.3f} | "
                      f"{statistics.median(v):.3f} | **{statistics.median(v) / statistics.median(o):.2f}** | "
                      f"{min(v) / min(o):.2f} |")
    print(f"\nrounds: {len({r['round'] for r in cont})}; raw rows in containers.csv")
PY
echo
cat "$OUT/results.md"
echo
ndt_log "results in $OUT"
