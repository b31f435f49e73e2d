#!/usr/bin/env bash
# Quickstart: installs the dependencies, builds, starts a throwaway containerd,
# registry and ndocker-snapshotter under a temp dir, builds a small
# multi-layer image, pulls and runs it through ndocker, and shows which tier
# each layer went to. Everything it started and made is removed at the end
# (QUICKSTART_KEEP=1 keeps the files). Run as root on Debian 12.
#
#   QUICKSTART_FAST_BUDGET=2MiB   fast-tier budget for the demo (default 2MiB,
#                                 small on purpose so that a layer overflows)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
[[ $(id -u) -eq 0 ]] || { echo "quickstart.sh must run as root" >&2; exit 1; }

echo "== installing dependencies"
deploy/install-deps.sh
echo "== building"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target ndocker-snapshotter ndockerctl

export NDOCKER_BIN=$src/build/cmd/ndocker-snapshotter NDOCKERCTL_BIN=$src/build/cmd/ndockerctl
export NDT_KEEP=${QUICKSTART_KEEP:-0} NDT_NDOCKER_LOG_LEVEL=info NDT_TEST_TIMEOUT=900
# shellcheck source=../test/integration/lib.sh
source "$src/test/integration/lib.sh"

budget=${QUICKSTART_FAST_BUDGET:-2MiB}
ndt_setup quickstart
ndt_step "starting a registry on 127.0.0.1, ndocker-snapshotter (fast budget $budget) and containerd"
registry_start
ndocker_start --fast-budget "$budget"
containerd_start
ndt_step "building a 5-layer test image with umoci and pushing it"
image_build_and_push
ref=$NDT_IMAGE_REF

ndt_step "ctr image pull --snapshotter ndocker $ref"
t0=$(ndt_now)
ctr_pull ndocker "$ref"
echo "pulled and unpacked in $(ndt_elapsed "$t0") s"

ndt_step "ctr run --snapshotter ndocker $ref"
ctr_run --rm --snapshotter ndocker "$ref" quickstart1 /bin/sh -c \
  'echo "greeting: $(cat /etc/greeting)"; echo "/data holds: $(ls /data)"; cat /app/run.sh >/dev/null && echo "app layer present"'

ndt_step "where each layer went"
snapshots=$("$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" ls --json)
printf '%-6s %-14s %-5s %10s\n' LAYER CHAINID TIER BYTES
n=0
for chain in $(image_chain_ids "$ref"); do
  n=$((n + 1))
  line=$(jq -c --arg c "$chain" 'select(.kind == "committed" and (.key | endswith("/" + $c)))' <<<"$snapshots" | head -n 1)
  printf '%-6s %-14s %-5s %10s\n' "$n" "${chain:7:12}" "$(jq -r .tier <<<"$line")" "$(jq -r .size <<<"$line")"
done
echo
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" status
echo
echo "Placement reasons, from the daemon's log:"
grep -E 'msg="(prepared|committed) snapshot"' "$NDOCKER_LOG" | sed -E 's/^time="[^"]*" //' | grep -E 'reason=' || true
ndt_step "done; cleaning up (containerd, registry, ndocker, mounts, temp dir)"
