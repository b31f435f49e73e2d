#!/usr/bin/env bash
# Checks that every corpus image really starts and that its readiness probe
# fires, through stock containerd 1.6 + overlayfs (no ndocker), using the
# integration-test library (its own containerd, registry, workdir, cleanup).
#
#   verify.sh [--only NAME,...] [--registry HOST:PORT] [--cache DIR] [--out FILE]
#
# Without --registry it starts a registry on 127.0.0.1 and pushes the images
# (push.sh); with it, the images must already be there (e.g. the benchmark
# network's: `net/netns.sh exec-client images/verify.sh --registry 10.213.0.2:5000`,
# which then also checks that pulls and --net-host containers work inside the
# client namespace). For each image: `ctr image pull --plain-http`, then a
# cold start (sync + drop_caches first) and a warm start, each `ctr run --rm
# --net-host` until the probe fires (or the image's time budget runs out),
# then SIGKILL. Prints a table and writes JSON (--out, default
# $NDB_CACHE/verify.json; the containers' output goes to <out>-logs/).
# Exit status 1 if a probe did not fire.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=corpus.sh
source "$HERE/corpus.sh"
: "${NDT_TEST_TIMEOUT:=3600}"
export NDT_TEST_TIMEOUT
# shellcheck source=../../integration/lib.sh
source "$HERE/../../integration/lib.sh"

only="" registry="" out=""
while (($#)); do
  case $1 in
    --only) only=$2; shift 2 ;;
    --registry) registry=$2; shift 2 ;;
    --cache) NDB_CACHE=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
: "${out:=$NDB_CACHE/verify.json}"
if [[ -n "$only" ]]; then IFS=, read -r -a names <<<"$only"; else mapfile -t names < <(corpus_names); fi

ndt_setup bench-verify
if [[ -z "$registry" ]]; then
  registry_start
  registry=$NDT_REGISTRY
  ndt_step "push to $registry"
  bash "$HERE/push.sh" "$registry" "${names[@]}" >&2 || ndt_fail "push failed"
fi
containerd_start --no-ndocker

# start_once NAME REF MODE: one ctr run until the probe; prints
# "<fired 0|1> <seconds> <reason>".
start_once() {
  local name=$1 ref=$2 mode=$3 probe budget id log pid t0 t1 rc=0
  probe=$(corpus_probe "$name")
  budget=$(corpus_budget "$name")
  id=vfy-$name-$mode
  log=$NDT_WORKDIR/logs/run-$name-$mode.log
  if [[ $mode == cold ]]; then
    sync
    echo 3 >/proc/sys/vm/drop_caches
  fi
  t0=$(ndb_now_ns)
  ctr_run --rm --net-host --snapshotter overlayfs "$ref" "$id" >"$log" 2>&1 </dev/null &
  pid=$!
  bench_probe_wait "$probe" "$log" "$budget" "$pid" || rc=$?
  t1=$(ndb_now_ns)
  ctrw task kill -s SIGKILL "$id" >/dev/null 2>&1 || true
  local i
  for i in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  ctrw task rm -f "$id" >/dev/null 2>&1 || true
  ctrw container rm "$id" >/dev/null 2>&1 || true
  local reason=fired
  case $rc in
    1) reason=timeout ;;
    2) reason=exited ;;
  esac
  if ((rc != 0)); then
    ndt_log "$name ($mode): probe $probe did not fire ($reason); last lines of the output:"
    tail -n 15 "$log" | sed 's/^/    /' >&2
  fi
  awk -v a="$t0" -v b="$t1" -v f=$((rc == 0)) -v r="$reason" 'BEGIN { printf "%d %.3f %s\n", f, (b - a) / 1e9, r }'
}

results=()
failed=0
for name in "${names[@]}"; do
  ref=$(corpus_ref "$name" "$registry")
  ndt_step "$name: pull $ref"
  t0=$(ndb_now_ns)
  ctr_pull overlayfs "$ref"
  pull_s=$(awk -v a="$t0" -v b="$(ndb_now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
  read -r cold_ok cold_s cold_why < <(start_once "$name" "$ref" cold)
  read -r warm_ok warm_s warm_why < <(start_once "$name" "$ref" warm)
  ndt_log "$name: pull ${pull_s}s, cold start ${cold_s}s ($cold_why), warm start ${warm_s}s ($warm_why)"
  ((cold_ok && warm_ok)) || failed=1
  results+=("$(jq -n --arg name "$name" --arg category "$(corpus_field "$name" category)" \
    --arg probe "$(corpus_probe "$name")" --argjson pull "$pull_s" \
    --argjson cold "$cold_s" --argjson cold_ok "$cold_ok" --arg cold_why "$cold_why" \
    --argjson warm "$warm_s" --argjson warm_ok "$warm_ok" --arg warm_why "$warm_why" \
    '{name: $name, category: $category, probe: $probe, pull_s: $pull,
      cold_start_s: $cold, cold_fired: ($cold_ok == 1), cold_result: $cold_why,
      warm_start_s: $warm, warm_fired: ($warm_ok == 1), warm_result: $warm_why}')")
  ctrw image rm --sync "$ref" >/dev/null # each pull starts from an empty content store
done

mkdir -p "$(dirname "$out")" "${out%.json}-logs"
cp "$NDT_WORKDIR"/logs/run-*.log "${out%.json}-logs/" 2>/dev/null || true
printf '%s\n' "${results[@]}" | jq -s --arg reg "$registry" --arg when "$(date -Is)" \
  '{when: $when, registry: $reg, snapshotter: "overlayfs", images: .}' >"$out"
{
  printf '\n%-11s %-13s %8s %9s %9s  %-6s %s\n' image category pull_s cold_s warm_s fired probe
  jq -r '.images[] | [.name, .category, .pull_s, .cold_start_s, .warm_start_s,
    (if .cold_fired and .warm_fired then "yes" else "NO" end), .probe] | @tsv' "$out" |
    while IFS=$'\t' read -r n c p cs ws f pr; do
      printf '%-11s %-13s %8.2f %9.2f %9.2f  %-6s %s\n' "$n" "$c" "$p" "$cs" "$ws" "$f" "$pr"
    done
  echo "results: $out"
} >&2
exit "$failed"
