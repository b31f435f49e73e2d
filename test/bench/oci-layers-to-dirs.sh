#!/usr/bin/env bash
# oci-layers-to-dirs.sh LAYOUT OUTDIR: extracts each layer of the first image
# in an OCI layout into its own directory OUTDIR/<n> (1 = bottom), converting
# OCI whiteouts to overlayfs ones the way containerd's applier does
# (.wh.<name> -> a 0/0 character device <name>; .wh..wh..opq -> the
# directory gets trusted.overlay.opaque=y). Prints the layer directories top
# first, colon-separated, as NDOCKER_PROMOTER_BENCH_LAYERS wants them.
# Needs root (devices, owners, trusted.* xattrs).
set -euo pipefail
layout=$1 out=$2
manifest=$(jq -r '.manifests[0].digest' "$layout/index.json")
mapfile -t blobs < <(jq -r '.layers[].digest' "$layout/blobs/${manifest/://}")
mkdir -p "$out"
dirs=()
n=0
for digest in "${blobs[@]}"; do
  n=$((n + 1))
  d=$out/$n
  rm -rf "$d"
  mkdir -p "$d"
  tar --numeric-owner --same-owner -p --xattrs --xattrs-include='*' -xf "$layout/blobs/${digest/://}" -C "$d"
  # Opaque markers first: a directory's own whiteouts stay valid inside it.
  while IFS= read -r -d '' m; do
    setfattr -n trusted.overlay.opaque -v y "$(dirname "$m")"
    rm -f "$m"
  done < <(find "$d" -name '.wh..wh..opq' -print0)
  while IFS= read -r -d '' w; do
    name=$(basename "$w")
    target=$(dirname "$w")/${name#.wh.}
    rm -rf "$w" "$target"
    mknod "$target" c 0 0
  done < <(find "$d" -name '.wh.*' -print0)
  dirs=("$d" "${dirs[@]}")
done
(IFS=:; echo "${dirs[*]}")
