#!/usr/bin/env bash
# Soak of ndocker-snapshotter's socket (issue 8): a private daemon on a temp
# root, then ndocker-soak-bench against it (default 120 s at 1,000 RPC/s with
# 200 concurrent List/Stat callers, Prepare/Commit/Remove churn, Cleanup every
# 10 s, fd/RSS samples every 5 s), then the daemon is stopped (SIGTERM) and
# its log is searched for errors. A benchmark, not a test: read the figures.
#
# Usage (root, so that the churn can write into the snapshots):
#   test/bench/micro/soak.sh [--out DIR] [--socket PATH] [-- <ndocker-soak-bench options>]
#     --socket PATH   soak a daemon that is already running instead (not stopped)
# Environment: NDOCKER_BIN (default build/cmd/ndocker-snapshotter),
# SOAK_BENCH_BIN (default: built on demand in /var/tmp/ndocker-bench/build-micro),
# NDT_TMPDIR (where the temp root goes, default /var/tmp),
# SOAK_LOG_LEVEL (daemon log level, default info).
# Results: DIR (default test/bench/micro/results/soak-<timestamp>/):
#   soak.txt (the summary), soak.csv (per RPC), daemon.log, env.txt
set -euo pipefail

MICRO_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SRC_DIR=$(cd "$MICRO_DIR/../../.." && pwd)
OUT=""
SOCKET=""
while (($#)); do
  case $1 in
    --out) OUT=$2; shift 2 ;;
    --socket) SOCKET=$2; shift 2 ;;
    --) shift; break ;;
    -h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

[[ -n "$OUT" ]] || OUT=$MICRO_DIR/results/soak-$(date +%Y%m%d-%H%M%S)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

if [[ -z "${SOAK_BENCH_BIN:-}" ]]; then
  b=/var/tmp/ndocker-bench/build-micro
  [[ -f "$b/CMakeCache.txt" ]] || cmake -S "$MICRO_DIR" -B "$b" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  echo "building ndocker-soak-bench in $b" >&2
  cmake --build "$b" -j2 --target ndocker-soak-bench >&2
  SOAK_BENCH_BIN=$b/ndocker-soak-bench
fi
[[ -x "$SOAK_BENCH_BIN" ]] || { echo "SOAK_BENCH_BIN=$SOAK_BENCH_BIN is not executable" >&2; exit 1; }

DAEMON_PID=""
WORK=""
cleanup() {
  if [[ -n "$DAEMON_PID" ]] && kill -0 "$DAEMON_PID" 2>/dev/null; then
    kill -TERM "$DAEMON_PID" 2>/dev/null || true
    wait "$DAEMON_PID" 2>/dev/null || true
  fi
  [[ -z "$WORK" ]] || rm -rf "$WORK"
}
trap cleanup EXIT

if [[ -z "$SOCKET" ]]; then
  NDOCKER_BIN=${NDOCKER_BIN:-$SRC_DIR/build/cmd/ndocker-snapshotter}
  [[ -x "$NDOCKER_BIN" ]] || { echo "no daemon binary at $NDOCKER_BIN (set NDOCKER_BIN)" >&2; exit 1; }
  WORK=$(mktemp -d "${NDT_TMPDIR:-/var/tmp}/ndocker-soak-XXXXXX")
  SOCKET=$WORK/run/nd.sock
  # LASS follows a content store that does not exist: placement by default rules.
  printf '[lass]\ncontainerd_root = "%s/containerd"\n' "$WORK" >"$WORK/config.toml"
  "$NDOCKER_BIN" --root "$WORK/root" --address "$SOCKET" --config "$WORK/config.toml" \
    --log-level "${SOAK_LOG_LEVEL:-info}" >"$OUT/daemon.log" 2>&1 &
  DAEMON_PID=$!
  for _ in $(seq 300); do
    [[ -S "$SOCKET" ]] && break
    kill -0 "$DAEMON_PID" 2>/dev/null || { cat "$OUT/daemon.log" >&2; exit 1; }
    sleep 0.1
  done
  [[ -S "$SOCKET" ]] || { echo "daemon did not listen on $SOCKET" >&2; exit 1; }
fi

{
  echo "date: $(date -Is)"
  echo "host: $(uname -srm), $(nproc) CPUs, $(awk '/MemTotal/ { print $2 " kB" }' /proc/meminfo)"
  echo "daemon: ${NDOCKER_BIN:-already running at $SOCKET}, log level ${SOAK_LOG_LEVEL:-info}"
  echo "git: $(git -C "$SRC_DIR" rev-parse --short HEAD 2>/dev/null)$(git -C "$SRC_DIR" diff --quiet 2>/dev/null || echo ' (dirty)')"
  echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
  echo "options: $*"
} >"$OUT/env.txt"

rc=0
"$SOAK_BENCH_BIN" --socket "$SOCKET" --csv "$OUT/soak.csv" "$@" | tee "$OUT/soak.txt" || rc=$?
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/env.txt"

if [[ -n "$DAEMON_PID" ]]; then
  kill -TERM "$DAEMON_PID"
  drc=0
  wait "$DAEMON_PID" || drc=$?
  DAEMON_PID=""
  echo "daemon exit status: $drc" | tee -a "$OUT/soak.txt"
  n=$(grep -c -E 'level=(error|critical)' "$OUT/daemon.log" || true)
  echo "daemon log: $n error lines" | tee -a "$OUT/soak.txt"
  ((drc == 0)) || rc=1
fi
echo "results: $OUT" >&2
exit "$rc"
