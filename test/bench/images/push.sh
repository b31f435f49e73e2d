#!/usr/bin/env bash
# Pushes the built corpus to a registry (plain HTTP):
#
#   push.sh REGISTRY [--cache DIR] [--force] [NAME...]
#
# REGISTRY is host:port; each image goes to REGISTRY/bench/<name>:v1 with
# `skopeo copy --preserve-digests` (the registry then serves the very
# manifests and blobs build.sh made). An image whose manifest the registry
# already serves under that tag is skipped unless --force. Images that are
# not built are reported and skipped (exit status 1 at the end).
# For the benchmark network: `net/netns.sh push` runs this in the registry's
# namespace against its own loopback (unshaped).
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=corpus.sh
source "$HERE/corpus.sh"

registry="" force=0
names=()
while (($#)); do
  case $1 in
    --cache) NDB_CACHE=$2; shift 2 ;;
    --cache=*) NDB_CACHE=${1#*=}; shift ;;
    --force) force=1; shift ;;
    -h | --help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "unknown option $1" >&2; exit 2 ;;
    *) if [[ -z "$registry" ]]; then registry=$1; else names+=("$1"); fi; shift ;;
  esac
done
[[ -n "$registry" ]] || { echo "usage: push.sh REGISTRY [--force] [NAME...]" >&2; exit 2; }
((${#names[@]})) || mapfile -t names < <(corpus_names)
command -v skopeo >/dev/null || { echo "skopeo is missing" >&2; exit 1; }

curl -fsS -o /dev/null --max-time 10 "http://$registry/v2/" || { echo "no registry answers at http://$registry/v2/" >&2; exit 1; }

rc=0
for name in "${names[@]}"; do
  layout=$(corpus_layout "$name")
  if [[ ! -f "$layout/.recipe-hash" ]]; then
    echo "$name: not built (build.sh --only $name)" >&2
    rc=1
    continue
  fi
  local_digest=$(jq -r --arg t "$NDB_TAG" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$layout/index.json")
  repo=$NDB_REPO_PREFIX/$name
  remote_digest=$(curl -fsS -I --max-time 10 -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$registry/v2/$repo/manifests/$NDB_TAG" 2>/dev/null | tr -d '\r' |
    awk 'tolower($1) == "docker-content-digest:" { print $2 }' || true)
  if [[ "$remote_digest" == "$local_digest" && $force == 0 ]]; then
    printf '%-11s up to date  %s/%s:%s %s\n' "$name" "$registry" "$repo" "$NDB_TAG" "$local_digest"
    continue
  fi
  t0=$(date +%s.%N)
  if ! out=$(skopeo --insecure-policy copy -q --preserve-digests --dest-tls-verify=false \
    "oci:$layout:$NDB_TAG" "docker://$registry/$repo:$NDB_TAG" 2>&1); then
    printf '%s\n' "$out" >&2
    echo "$name: skopeo copy failed" >&2
    rc=1
    continue
  fi
  printf '%-11s pushed in %5.1f s  %s/%s:%s %s\n' "$name" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { print b - a }')" \
    "$registry" "$repo" "$NDB_TAG" "$local_digest"
done
exit "$rc"
