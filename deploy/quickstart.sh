#!/usr/bin/env bash
# Quickstart: installs the dependencies, builds, starts a throwaway containerd
# (with its CRI plugin), registry and ndocker-snapshotter under a temp dir, and
#  1. builds a small multi-layer image, pulls it with `ctr` (everything is
#     downloaded before unpack, so LASS keeps it on the fast tier while the
#     budget lasts) and runs it; the tracer records the files that start
#     read (HBCSA): the image's hot-file profile, each layer's static class
#     and hot files (`ndockerctl profile show`, `ndockerctl plan`), the hot
#     layer the daemon builds from it (hot files with data, the rest metacopy
#     stubs), the layers it then demotes to the slow tier, and a second
#     container running on the hot layer;
#  2. pulls an image of random layers through CRI (PullImage: streamed unpack,
#     3 downloads at a time) behind a 4 MiB/s link: LASS puts the layers below
#     the last-downloading one on the slow tier and the rest on the fast tier;
# and shows where each layer went and why (`ndockerctl ls`, `ndockerctl plan`);
#  3. moves the first image's layers back to the fast tier with `ndockerctl
#     migrate` while a container runs from them (old copies kept until it is
#     gone).
# Everything it started and made is removed at the end (QUICKSTART_KEEP=1
# keeps the files). Run as root on Debian 12.
#
#   QUICKSTART_FAST_BUDGET=16MiB  fast-tier budget (default 16MiB: both images
#                                 fit; 2MiB shows layers overflowing to slow)
#   QUICKSTART_POLICY=ldl         LASS policy: ldl or predict
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
cd "$src"
[[ $(id -u) -eq 0 ]] || { echo "quickstart.sh must run as root" >&2; exit 1; }

echo "== installing dependencies"
deploy/install-deps.sh
echo "== building"
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j "$(nproc)" --target ndocker-snapshotter ndockerctl ndocker-test-cri ndocker-test-throttle

export NDOCKER_BIN=$src/build/cmd/ndocker-snapshotter NDOCKERCTL_BIN=$src/build/cmd/ndockerctl
export NDOCKER_TEST_CRI_BIN=$src/build/test/cri/ndocker-test-cri
export NDOCKER_TEST_THROTTLE_BIN=$src/build/test/tools/ndocker-test-throttle
export NDT_KEEP=${QUICKSTART_KEEP:-0} NDT_NDOCKER_LOG_LEVEL=info NDT_TEST_TIMEOUT=900
# shellcheck source=../test/integration/lib.sh
source "$src/test/integration/lib.sh"

budget=${QUICKSTART_FAST_BUDGET:-16MiB}
policy=${QUICKSTART_POLICY:-ldl}
ndt_setup quickstart
ndt_step "starting a registry on 127.0.0.1 (and a 4 MiB/s link to it), ndocker-snapshotter (fast budget $budget, LASS policy $policy) and containerd"
registry_start
throttle_start 4MiB
config=$NDT_WORKDIR/ndocker-quickstart.toml
printf '[tiers.fast]\nbudget = "%s"\n[lass]\npolicy = "%s"\ncontainerd_root = "%s"\n' \
  "$budget" "$policy" "$(containerd_root_dir)" >"$config"
ndocker_start --config "$config"
containerd_start --cri

# where_layers_went REF [NS]: one line per layer of REF: tier, size, rule.
where_layers_went() {
  local snapshots n=0 chain line
  snapshots=$("$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" ls --json)
  printf '%-6s %-14s %-5s %10s  %s\n' LAYER CHAINID TIER BYTES RULE
  for chain in $(NDT_NS=${2:-$NDT_NS} image_chain_ids "$1"); do
    n=$((n + 1))
    line=$(jq -c --arg c "$chain" 'select(.kind == "committed" and (.key | endswith("/" + $c)))' <<<"$snapshots" | head -n 1)
    printf '%-6s %-14s %-5s %10s  %s\n' "$n" "${chain:7:12}" "$(jq -r .tier <<<"$line")" \
      "$(jq -r .size <<<"$line")" "$(jq -r .rule <<<"$line")"
  done
}

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

ndt_step "HBCSA: the files that start read (fanotify trace, merged into the image's profile)"
profile_of_ref() {
  "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" profile show --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "$ref"
}
ndt_wait_until 30 "the cold-start profile of $ref" profile_of_ref
profile_of_ref
echo
ndt_step "each layer's static class (with evidence) and the profile's files it serves (ndockerctl plan)"
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" plan --containerd-address "$NDT_CTRD_SOCK" -n "$NDT_NS" "$ref"

ndt_step "where each layer of the ctr pull went (all downloaded before unpack: fast while the $budget budget lasts)"
grep -E 'msg="committed snapshot"' "$NDOCKER_LOG" | grep -oE 'name=[^ ]+|tier=[a-z]+|rule=[a-z-]+' | paste - - - | sed 's/^/  /'

ndt_step "HBCSA: the hot layer the daemon built after that trace, and the layers it demoted to slow"
hot_id() { "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" hot ls --json | jq -r '.versions[] | select(.state == "ready") | .id' | head -1; }
ndt_wait_until 30 "the hot layer of $ref ([hbcsa] promote = after-trace)" bash -c "[[ -n \"\$(\"$NDOCKERCTL_BIN\" --address \"$NDOCKER_SOCK\" hot ls --json | jq -r '.versions[]? | select(.state == \"ready\") | .id')\" ]]"
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" hot ls
echo "its hot files carry their data, every other file is a metacopy stub (0 blocks) pointing into the layers:"
find "$(ndocker_tier_dir fast)/hot/$(hot_id)" -type f -printf '  %P\t%s bytes\t%b blocks\n' | sort | head -20
grep -E 'msg="layers demoted' "$NDOCKER_LOG" | sed 's/^/  /' || true
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" status | grep -E "migrat" || true
layers_all_slow() {
  local snapshots chain
  snapshots=$("$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" ls --json)
  for chain in $(image_chain_ids "$ref"); do
    jq -e --arg c "$chain" 'select(.kind == "committed" and (.key | endswith("/" + $c)) and .tier == "fast")' <<<"$snapshots" >/dev/null && return 1
  done
  return 0
}
ndt_wait_until 60 "the demoted layers to reach the slow tier (the mover is throttled)" layers_all_slow
echo "where the layers are now:"
where_layers_went "$ref"
echo "per image (ndockerctl images): state, hot layer, the image's layer bytes on fast and slow:"
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" images | sed 's/^/  /'

ndt_step "a new container of $ref runs on the hot layer (its rootfs: a plain overlay over the hot layer's read-only mount)"
ctr_run --rm --snapshotter ndocker "$ref" quickstart1b /bin/sh -c 'echo "greeting: $(cat /etc/greeting)"; echo "/data holds: $(ls /data)"'
grep -E 'msg="prepared snapshot".*quickstart1b' "$NDOCKER_LOG" | grep -oE 'key=[^ ]+|shared_lower=[0-9]+' | paste - - | sed 's/^/  /'
grep -E 'msg="hot layer mounted"' "$NDOCKER_LOG" | tail -1 | sed 's/^/  /'
grep -E 'trace skipped.*quickstart1b' "$NDOCKER_LOG" | sed 's/^/  /' || true
echo
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" status

ndt_step "CRI pull (streamed unpack) of 5 random layers, 1M 1M 8M 256K 256K, through the 4 MiB/s link"
image_build_random "$NDT_WORKDIR/oci-random" v1 1M 1M 8M 256K 256K
image_push "$NDT_WORKDIR/oci-random" v1 quickstart/lass
random_ref=$(ndt_throttled_ref "$NDT_IMAGE_REF")
cri_pull "$random_ref"
echo "CRI pull took ${CRI_PULL_SECONDS} s"
ndt_step "where each layer of the CRI pull went and why (ndockerctl plan)"
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" plan --containerd-address "$NDT_CTRD_SOCK" -n k8s.io "$random_ref"
echo
where_layers_went "$random_ref" k8s.io
echo
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" status
ndt_step "the mover: a container runs from the ctr-pulled image while its layers move back to the fast tier (ndockerctl migrate)"
ctrw run -d --snapshotter ndocker "$ref" quickstart2 /bin/sh -c 'while :; do cat /etc/greeting >/dev/null; sleep 0.2; done'
for chain in $(image_chain_ids "$ref"); do
  "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" migrate "$chain" fast --wait
done
where_layers_went "$ref"
echo "old copies are kept while the running container (through its hot layer's mount) may use them:"
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" status | grep -E "retired|migrat" || true
ctr_run --rm --snapshotter ndocker "$ref" quickstart3 /bin/sh -c 'echo "a new container reads: $(cat /etc/greeting)"'
ctrw task delete --force quickstart2 >/dev/null
ctrw container rm quickstart2 >/dev/null
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" status | grep -E "retired|migrat" || true
echo "(the old copies go at the next Cleanup containerd's GC runs, or within [migration] reap_interval_seconds)"

ndt_step "done; cleaning up (containerd, registry, throttle, ndocker, mounts, temp dir)"
