#!/usr/bin/env bash
# Checks that both kinds of pull cross the shaped link: starts a containerd
# (stock, overlayfs, CRI plugin on) in the client namespace and, at 100mbit
# and then unshaped, pulls one corpus image with `ctr image pull` (fetch in
# ctr) and with a CRI PullImage (fetch in containerd), emptying the content
# store in between (plus a fetch-only `ctr content fetch`, which shows the
# link's rate without the unpack). Then runs it once with `ctr run --net-host` and waits for
# its probe (so containers and tcp probes work in the namespace too).
#
#   net/netns.sh up && net/netns.sh push      # once
#   net/check-pulls.sh [IMAGE]                # default: python3
#
# Restores the rate that was set before. Uses test/integration/lib.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NETNS=$HERE/netns.sh
image=${1:-python3}

eval "$("$NETNS" env)"
if [[ "$(stat -L -c %i /proc/self/ns/net)" != "$(stat -L -c %i "/run/netns/$NDB_NET_NS_CLIENT")" ]]; then
  # run the whole check (containerd, ctr, probes) inside the client namespace
  exec "$NETNS" exec-client "$0" "$@"
fi

# shellcheck source=../images/corpus.sh
source "$HERE/../images/corpus.sh"
# shellcheck source=../../integration/lib.sh
source "$HERE/../../integration/lib.sh"

ndt_setup bench-net-check
old_rate=$NDB_NET_RATE
ndt_on_cleanup "'$NETNS' rate '${old_rate:-100mbit}' >/dev/null 2>&1"
# lib.sh's CRI config: registry mirror with plain HTTP for $NDT_REGISTRY and
# the snapshotter named here (stock overlayfs: ndocker is not involved)
NDT_REGISTRY=$NDB_REGISTRY
NDOCKER_SNAPSHOTTER_NAME=overlayfs
containerd_start --cri --no-ndocker

ref=$(corpus_ref "$image" "$NDB_REGISTRY")
comp=$(curl -fsS -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
  "http://$NDB_REGISTRY/v2/$NDB_REPO_PREFIX/$image/manifests/$NDB_TAG" | jq '[.layers[].size, .config.size] | add')
ndt_log "image $ref: $(awk -v b="$comp" 'BEGIN { printf "%.1f MB", b / 1e6 }') compressed"

cri() { /usr/bin/python3 "$HERE/cri-pull.py" --address "$NDT_CTRD_SOCK" "$@"; }
content_empty() {
  [[ -z "$(ctr --address "$NDT_CTRD_SOCK" -n "$1" content ls -q 2>/dev/null)" ]]
}
elapsed_since() { awk -v a="$1" -v b="$(ndb_now_ns)" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }
report() { # WHAT SECONDS
  awk -v w="$1" -v s="$2" -v b="$comp" -v r="$3" 'BEGIN {
    printf "%-10s %-20s %6.2f s  %6.2f MB/s\n", r, w, s, b / 1e6 / s }'
}

table=()
for rate in 100mbit 0; do
  "$NETNS" rate "$rate" >/dev/null 2>&1
  ndt_step "rate $rate: ctr content fetch (fetch only, in ctr)"
  t0=$(ndb_now_ns)
  ctrw content fetch --plain-http "$ref" >"$NDT_WORKDIR/logs/fetch.out" 2>&1 || { cat "$NDT_WORKDIR/logs/fetch.out" >&2; ndt_fail "ctr content fetch failed"; }
  table+=("$(report "ctr fetch only" "$(elapsed_since "$t0")" "$rate")")
  ctrw content ls -q | xargs -r ctr --address "$NDT_CTRD_SOCK" -n "$NDT_NS" content rm >/dev/null
  ndt_wait_until 30 "content store of $NDT_NS to be empty" content_empty "$NDT_NS"

  ndt_step "rate $rate: ctr image pull (fetch in ctr)"
  t0=$(ndb_now_ns)
  ctr_pull overlayfs "$ref"
  table+=("$(report "ctr pull+unpack" "$(elapsed_since "$t0")" "$rate")")
  ctrw image rm --sync "$ref" >/dev/null
  ndt_wait_until 30 "content store of $NDT_NS to be empty" content_empty "$NDT_NS"

  ndt_step "rate $rate: CRI PullImage (fetch in containerd)"
  t0=$(ndb_now_ns)
  cri "$ref" >&2 || ndt_fail "CRI pull of $ref failed"
  table+=("$(report "CRI pull+unpack" "$(elapsed_since "$t0")" "$rate")")
  cri --remove "$ref" >&2 || ndt_fail "CRI RemoveImage of $ref failed"
  ctr --address "$NDT_CTRD_SOCK" -n k8s.io content prune references >/dev/null 2>&1 || true
  ndt_wait_until 30 "content store of k8s.io to be empty" content_empty k8s.io
done

ndt_step "run $image with ctr run --net-host in $NDB_NET_NS_CLIENT"
"$NETNS" rate "${old_rate:-100mbit}" >/dev/null 2>&1
ctr_pull overlayfs "$ref"
log=$NDT_WORKDIR/logs/run.log
t0=$(ndb_now_ns)
ctr_run --rm --net-host --snapshotter overlayfs "$ref" chk-run >"$log" 2>&1 </dev/null &
pid=$!
rc=0
bench_probe_wait "$(corpus_probe "$image")" "$log" "$(corpus_budget "$image")" "$pid" || rc=$?
start_s=$(elapsed_since "$t0")
ctrw task kill -s SIGKILL chk-run >/dev/null 2>&1 || true
wait "$pid" 2>/dev/null || true
((rc == 0)) || { cat "$log" >&2; ndt_fail "probe $(corpus_probe "$image") did not fire (rc $rc)"; }

printf '\n%-10s %-20s %8s  %s\n' rate what time throughput >&2
printf '%s\n' "${table[@]}" >&2
printf 'start of %s via containerd+overlayfs in %s: probe %s fired after %s s\n' "$image" "$NDB_NET_NS_CLIENT" "$(corpus_probe "$image")" "$start_s" >&2
