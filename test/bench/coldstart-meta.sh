#!/usr/bin/env bash
# coldstart-meta.sh: issue 10's cold-start measurement of a *metadata layer*
# (bench, not CI; root; the testbed must be up: test/bench/testbed/testbed up).
#
# For each image, three layouts of the same layers (extracted from the corpus
# OCI layout with oci-layers-to-dirs.sh, once onto each tier):
#   overlayfs-slow  lowerdir=L_top:...:L_bottom, all on the slow tier
#   meta            lowerdir=META::L_top::...::L_bottom,metacopy=on,redirect_dir=on:
#                   META on the fast tier (built by ndocker-bench-build-meta =
#                   hbcsa::BuildMetadataLayer from the image's hot-file profile),
#                   the layers on the slow tier as data-only lower layers
#   meta-erofs      the same with META packed as an EROFS image on the fast tier
#                   (mkfs.erofs --chunksize=4096, as composefs does), mounted
#                   read-only through a loop device
#   overlayfs-fast  lowerdir=L_top:...:L_bottom, all on the fast tier
# Every mount gets a fresh upperdir on tmpfs (the container's writable layer,
# kept off both tiers so only the image is measured), /dev (rbind) and /proc.
# One cold start = mount, drop caches (testbed drop-caches), reset the slow
# disk's counters, then the image's corpus command (entrypoint + cmd, user,
# workdir, env from test/bench/images/corpus.json) in a chroot of the view,
# timed by tools/chroot-start.py until the corpus probe holds (stdout line,
# TCP port) -- or, with CMD_<image> overridden below, until the command exits.
# Layouts are interleaved in each round (slow, meta, fast, slow, meta, ...).
#
# Usage:
#   test/bench/coldstart-meta.sh [--images "nginx redis python3"] [--rounds 3]
#       [--profiles DIR]   DIR/<image>/profile.json = `ndockerctl profile show --json`
#       [--out PREFIX]     PREFIX.csv (+ PREFIX-meta-<image>.json, PREFIX-verify-<image>.txt)
#       [--build DIR]      build dir holding test/bench/tools/ndocker-bench-build-meta
#       [--verify full|meta|none]  tree comparison of meta vs overlayfs-slow
#                          (meta: type/mode/owner/size/link/xattrs of every path +
#                          sha256 of the hot files; full: sha256 of every file)
#       [--timeout S]      per start (default 60)
#       [--layouts "overlayfs-slow meta meta-erofs overlayfs-fast"]  (the default)
# Work dirs: <tier>/coldmeta/<image>/{layers,meta}; kept for reruns
# (--clean to remove them at the end).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

images="nginx redis python3"
rounds=3
profiles=""
out="$here/results/coldstart-meta-$(date -u +%Y%m%d)"
build="$repo/build"
verify=meta
timeout_s=60
clean=0
layouts="overlayfs-slow meta meta-erofs overlayfs-fast"
while [ $# -gt 0 ]; do
  case $1 in
    --images) images=$2; shift 2 ;;
    --rounds) rounds=$2; shift 2 ;;
    --profiles) profiles=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --build) build=$2; shift 2 ;;
    --verify) verify=$2; shift 2 ;;
    --timeout) timeout_s=$2; shift 2 ;;
    --clean) clean=1; shift ;;
    --layouts) layouts=$2; shift 2 ;;
    *) echo "unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$profiles" ] || { echo "--profiles DIR is required" >&2; exit 2; }
[ "$(id -u)" = 0 ] || { echo "needs root" >&2; exit 2; }

T=$here/testbed/testbed
$T status >/dev/null || { echo "testbed is not up (test/bench/testbed/testbed up)" >&2; exit 2; }
eval "$($T env)"
SLOW=$NDOCKER_BENCH_SLOW_DIR FAST=$NDOCKER_BENCH_FAST_DIR STATS=$NDOCKER_BENCH_HDD_STATS
corpus=$here/images/corpus.json
oci=${NDOCKER_BENCH_OCI:-/var/tmp/ndocker-bench/cache/oci}
buildmeta=$build/test/bench/tools/ndocker-bench-build-meta
[ -x "$buildmeta" ] || { echo "build it first: cmake --build $build --target ndocker-bench-build-meta" >&2; exit 2; }
run=/run/ndocker-coldmeta
mkdir -p "$run" "$(dirname "$out")"
csv=$out.csv
[ -s "$csv" ] || echo "image,layout,round,ok,seconds,seeks,bytes_read,reads,busy_ms,load1,detail" >"$csv"

log() { echo "[$(date -u +%H:%M:%S)] $*" >&2; }

stat_field() { awk -v k="$1" '$1 == k { print $2 }' "$STATS"; }

# layers_on TIER IMAGE: extracts once; prints the layer dirs top first, ':'-separated
layers_on() {
  local tier=$1 img=$2 dir=$1/coldmeta/$2
  if [ ! -s "$dir.layers.txt" ]; then
    log "$img: extracting layers onto $tier"
    mkdir -p "$dir"
    "$here/oci-layers-to-dirs.sh" "$oci/$img" "$dir/layers" >"$dir.layers.txt.tmp"
    sync -f "$tier"
    mv "$dir.layers.txt.tmp" "$dir.layers.txt"
  fi
  cat "$dir.layers.txt"
}

merged=$run/merged
unmount_view() {
  if mountpoint -q "$merged"; then umount -R "$merged"; fi
  if mountpoint -q "$run/upper"; then umount "$run/upper"; fi
}
erofs_mnt=$run/meta-erofs
cleanup() {
  unmount_view
  if mountpoint -q "$erofs_mnt"; then umount "$erofs_mnt"; fi
}
trap cleanup EXIT

# mount_view OPTIONS: overlay at $merged with a fresh tmpfs upperdir, /dev and /proc
mount_view() {
  unmount_view
  mkdir -p "$merged" "$run/upper"
  mount -t tmpfs -o size=2G,mode=0755 coldmeta-upper "$run/upper"
  mkdir -p "$run/upper/u" "$run/upper/w"
  mount -t overlay coldmeta -o "$1,upperdir=$run/upper/u,workdir=$run/upper/w" "$merged"
  mount --rbind /dev "$merged/dev"
  mount -t proc proc "$merged/proc"
}

for img in $images; do
  j=$(jq -c --arg n "$img" '.images[] | select(.name == $n)' "$corpus")
  [ -n "$j" ] || { log "$img: not in $corpus, skipped"; continue; }
  prof=$profiles/$img/profile.json
  [ -s "$prof" ] || { log "$img: no profile at $prof, skipped"; continue; }

  slow_layers=$(layers_on "$SLOW" "$img")
  fast_layers=$(layers_on "$FAST" "$img")

  # The metadata layer, built from the fast copies (same tarballs; only the
  # build reads them), its stubs redirecting by path, so it serves either copy.
  meta=$FAST/coldmeta/$img/meta
  jq -r '.files[].path' "$prof" >"$run/$img.hot"
  if [ ! -d "$meta" ]; then
    log "$img: building the metadata layer ($(wc -l <"$run/$img.hot") hot paths)"
    # shellcheck disable=SC2086
    "$buildmeta" "$meta" "$run/$img.hot" ${fast_layers//:/ } >"$meta.report.json"
  fi
  cp "$meta.report.json" "$out-meta-$img.json"
  unpacked=$(du -sB1 "$FAST/coldmeta/$img/layers" | cut -f1)
  meta_du=$(du -sB1 "$meta" | cut -f1)
  echo "$unpacked" >"$out-layers-bytes-$img.txt"
  log "$img: META $meta_du B on fast (du), layers $unpacked B (du on fast)"

  opt_slow="lowerdir=$slow_layers"
  opt_fast="lowerdir=$fast_layers"
  opt_erofs=""
  if [[ " $layouts " == *" meta-erofs "* ]]; then
    img_erofs=$FAST/coldmeta/$img/meta.erofs
    if [ ! -s "$img_erofs" ]; then
      log "$img: mkfs.erofs of the metadata layer"
      # mkfs.erofs 1.5 fails ("Could not format the device: EIO", no failing
      # syscall) when the image is written to the file system holding the
      # source tree (here both on the fast tier); build it on /var/tmp, copy it.
      tmpimg=/var/tmp/ndocker-coldmeta-$img.erofs
      rm -f "$tmpimg"
      mkfs.erofs --quiet --chunksize=4096 "$tmpimg" "$meta" 2>&1 | tr -d '\r' | tail -5 >"$out-erofs-$img.log"
      cp --sparse=always "$tmpimg" "$img_erofs.tmp"
      rm -f "$tmpimg"
      sync -f "$FAST"
      mv "$img_erofs.tmp" "$img_erofs"
    fi
    du -B1 "$img_erofs" | cut -f1 >"$out-erofs-bytes-$img.txt"
    stat -c %s "$img_erofs" >>"$out-erofs-bytes-$img.txt"
    mkdir -p "$erofs_mnt"
    if mountpoint -q "$erofs_mnt"; then umount "$erofs_mnt"; fi
    mount -t erofs -o loop,ro "$img_erofs" "$erofs_mnt"
    opt_erofs="lowerdir=$erofs_mnt::${slow_layers//:/::},metacopy=on,redirect_dir=on"
  fi
  opt_meta="lowerdir=$meta::${slow_layers//:/::},metacopy=on,redirect_dir=on"

  # The start: corpus entrypoint + cmd, env, workdir, user (name -> uid from the view)
  mapfile -t argv < <(jq -r '(.entrypoint + .cmd)[]' <<<"$j")
  mapfile -t envs < <(jq -r '.env[]' <<<"$j")
  workdir=$(jq -r '.workdir // ""' <<<"$j")
  user=$(jq -r '.user // ""' <<<"$j")
  probe=$(jq -r '.probe' <<<"$j")
  case $probe in stdout:*|tcp:*) ;; *) probe=exit ;; esac
  envargs=()
  for e in "${envs[@]}"; do envargs+=(--env "$e"); done

  for r in $(seq 1 "$rounds"); do
    for layout in $layouts; do
      case $layout in
        overlayfs-slow) opt=$opt_slow ;;
        meta) opt=$opt_meta ;;
        meta-erofs) opt=$opt_erofs ;;
        overlayfs-fast) opt=$opt_fast ;;
        *) echo "unknown layout $layout" >&2; exit 2 ;;
      esac
      mount_view "$opt"
      uarg=()
      if [ -n "$user" ]; then
        uid=$(awk -F: -v u="$user" '$1 == u { print $3 ":" $4 }' "$merged/etc/passwd")
        uarg=(--user "${uid:-$user}")
      fi
      "$T" drop-caches >/dev/null
      echo reset >"$STATS"
      load1=$(cut -d' ' -f1 /proc/loadavg)
      res=$("$here/tools/chroot-start.py" --root "$merged" --workdir "${workdir:-/}" \
        "${uarg[@]}" "${envargs[@]}" --probe "$probe" --timeout "$timeout_s" -- "${argv[@]}" || true)
      seeks=$(stat_field seeks) bread=$(stat_field bytes_read) reads=$(stat_field reads) busy=$(stat_field busy_ms)
      ok=$(jq -r '.ok' <<<"$res") secs=$(jq -r '.seconds // ""' <<<"$res")
      detail=$(jq -r '.detail + " " + (.tail | join(" | "))' <<<"$res" | tr ',\n' ';;' | cut -c1-200)
      echo "$img,$layout,$r,$ok,$secs,$seeks,$bread,$reads,$busy,$load1,\"$detail\"" >>"$csv"
      log "$img $layout round $r: ok=$ok ${secs}s seeks=$seeks read=$bread"
      unmount_view
    done
  done

  # Tree comparison: meta's view against overlayfs-slow's (fresh mounts, no upper writes).
  if [ "$verify" != none ]; then
    vlog=$out-verify-$img.txt
    mkdir -p "$run/va" "$run/vb"
    mount -t overlay coldmeta-va -o "$opt_slow" "$run/va"
    mount -t overlay coldmeta-vb -o "$opt_meta" "$run/vb"
    sha=hot
    [ "$verify" = full ] && sha=all
    if python3 "$here/tools/tree-compare.py" --sha "$sha" --hot "$run/$img.hot" "$run/va" "$run/vb" >"$vlog" 2>&1; then
      log "$img: views equal ($(tail -1 "$vlog"))"
    else
      log "$img: views DIFFER, see $vlog"
    fi
    umount "$run/va" "$run/vb"
    if [ -n "$opt_erofs" ]; then
      mount -t overlay coldmeta-va -o "$opt_slow" "$run/va"
      mount -t overlay coldmeta-vb -o "$opt_erofs" "$run/vb"
      if python3 "$here/tools/tree-compare.py" --sha "$sha" --hot "$run/$img.hot" "$run/va" "$run/vb" >"$out-verify-erofs-$img.txt" 2>&1; then
        log "$img: meta-erofs view equal ($(tail -1 "$out-verify-erofs-$img.txt"))"
      else
        log "$img: meta-erofs view DIFFERS, see $out-verify-erofs-$img.txt"
      fi
      umount "$run/va" "$run/vb"
    fi
  fi
  if mountpoint -q "$erofs_mnt"; then umount "$erofs_mnt"; fi
  if [ "$clean" = 1 ]; then rm -rf "$SLOW/coldmeta/$img" "$FAST/coldmeta/$img" "$SLOW/coldmeta/$img.layers.txt" "$FAST/coldmeta/$img.layers.txt"; fi
done
log "done: $csv"
