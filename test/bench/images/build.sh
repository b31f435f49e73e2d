#!/usr/bin/env bash
# Builds the benchmark image corpus (recipes/*.sh) into OCI layouts with umoci.
#
#   build.sh [--only NAME,...] [--cache DIR] [--force] [--manifest] [--list]
#
#   --only NAME,...  build just these (and what they are built FROM)
#   --cache DIR      cache directory (default $NDB_CACHE, else /var/tmp/ndocker-bench/cache)
#   --force          rebuild the named images (or all) even if cached
#   --manifest       only (re)write corpus.json next to this script from the
#                    recipes (sizes from the cache when built); no build
#   --list           print the corpus and what is cached; no build
#
# Root only (chroot, mounts). Every image starts from one debootstrap
# --variant=minbase bookworm rootfs (debootstrapped once from the mirror apt
# uses on this machine, cached as a tarball) and adds layers like a Dockerfile
# would: RUN steps run in a chroot of the unpacked bundle (proc, sys and a
# minimal /dev mounted, a policy-rc.d that keeps services from starting, the
# apt download cache bind-mounted), COPY steps copy files/ into it, and each
# step becomes one layer through `umoci repack --history.created_by`. ENV,
# CMD, ... become history entries without a layer (umoci config).
#
# Cache layout ($CACHE): base/ debootstrap tarballs, oci/<name>/ one OCI
# layout per image (tag v1) with .recipe-hash and info.json, apt-archives/
# downloaded .debs, hostbuild/ things built on the host (the java jar,
# node_modules), logs/<name>.log, work/ scratch (emptied on exit).
# An image is rebuilt when the hash of its recipe (recipe file, files/<name>/,
# the hash of what it is built FROM, the build format) changes; a build
# happens in oci/<name>.tmp and is renamed into place only when complete, so
# an interrupted build simply starts over for that image.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=corpus.sh
source "$HERE/corpus.sh"
# For ndt_log, ndt_fail, ndt_unmount_all_under (nothing else is started).
# shellcheck source=../../integration/lib.sh
source "$HERE/../../integration/lib.sh"

# Bump when a change to this script must rebuild every image.
BUILD_FORMAT=1
SUITE=bookworm
VARIANT=minbase

only="" force=0 mode=build
while (($#)); do
  case $1 in
    --only) only=$2; shift 2 ;;
    --only=*) only=${1#*=}; shift ;;
    --cache) NDB_CACHE=$2; shift 2 ;;
    --cache=*) NDB_CACHE=${1#*=}; shift ;;
    --force) force=1; shift ;;
    --manifest) mode=manifest; shift ;;
    --list) mode=list; shift ;;
    -h | --help) sed -n '2,30p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
done
CACHE=$NDB_CACHE

# ---------------------------------------------------------------------------
# helpers

die() { ndt_fail "$*"; }
mb() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1000000 }'; }

# The mirror apt uses here for SUITE/main (and SUITE-security/main), so that
# the images come from where the machine's own packages come from.
apt_mirror() {
  local suite=$1
  apt-cache policy 2>/dev/null | awk -v s="$suite/main" '$3 == s && $2 ~ /^https?:/ { print $2; exit }'
}
MIRROR=${NDB_MIRROR:-$(apt_mirror "$SUITE")}
SECURITY_MIRROR=${NDB_SECURITY_MIRROR:-$(apt_mirror "$SUITE-security")}

recipe_file() { echo "$HERE/recipes/$1.sh"; }

# recipe_var NAME VAR: a top-level variable of a recipe.
recipe_var() {
  (
    set +u
    # shellcheck disable=SC1090
    source "$(recipe_file "$1")"
    eval "printf '%s\n' \"\${$2}\""
  )
}

# files_digest NAME: content digest of files/<name>/ (paths, modes, contents).
files_digest() {
  local d=$HERE/files/$1
  if [[ -d "$d" ]]; then
    (cd "$d" && find . -type f -printf '%P %m\n' | LC_ALL=C sort && find . -type f -print0 | LC_ALL=C sort -z | xargs -0r sha256sum)
  fi | sha256sum | cut -d' ' -f1
}

base_hash() {
  {
    echo "base-format=$BUILD_FORMAT suite=$SUITE variant=$VARIANT mirror=$MIRROR security=$SECURITY_MIRROR"
    declare -f base_cleanup
  } | sha256sum | cut -d' ' -f1
}

declare -A HASH_MEMO=()
recipe_hash() {
  local name=$1 from h
  [[ -n "${HASH_MEMO[$name]:-}" ]] && { echo "${HASH_MEMO[$name]}"; return; }
  if [[ $name == _base ]]; then
    h=$(base_hash)
  else
    from=$(recipe_var "$name" FROM)
    h=$({
      echo "format=$BUILD_FORMAT name=$name"
      echo "from=$(recipe_hash "${from/#base/_base}")"
      cat "$(recipe_file "$name")"
      echo "files=$(files_digest "$name")"
    } | sha256sum | cut -d' ' -f1)
  fi
  HASH_MEMO[$name]=$h
  echo "$h"
}

is_cached() {
  local name=$1 dir=$CACHE/oci/$1
  [[ -f "$dir/.recipe-hash" && "$(cat "$dir/.recipe-hash")" == "$(recipe_hash "$name")" ]]
}

# ---------------------------------------------------------------------------
# chroot steps

B_NAME="" B_IMG="" B_BUNDLE="" B_ROOTFS="" B_LOG=""
B_ENV=()     # environment of RUN steps (the image's ENV plus build defaults)
B_CONFIG=()  # pending `umoci config` calls: "created_by<TAB>arg<TAB>arg..."
B_MOUNTS=()
B_CREATED=() # files created for a RUN and removed after it
B_LAYERS=0

b_mount() { mount "$@" && B_MOUNTS+=("${!#}"); }

b_chroot_enter() {
  local r=$B_ROOTFS
  B_MOUNTS=() B_CREATED=()
  b_mount -t proc proc "$r/proc"
  b_mount -t sysfs -o ro sysfs "$r/sys"
  b_mount -t tmpfs -o mode=0755,size=16m,nosuid devtmp "$r/dev"
  mknod -m 666 "$r/dev/null" c 1 3
  mknod -m 666 "$r/dev/zero" c 1 5
  mknod -m 666 "$r/dev/full" c 1 7
  mknod -m 666 "$r/dev/random" c 1 8
  mknod -m 666 "$r/dev/urandom" c 1 9
  mknod -m 666 "$r/dev/tty" c 5 0
  ln -s /proc/self/fd "$r/dev/fd"
  ln -s /proc/self/fd/0 "$r/dev/stdin"
  ln -s /proc/self/fd/1 "$r/dev/stdout"
  ln -s /proc/self/fd/2 "$r/dev/stderr"
  mkdir -m 1777 "$r/dev/shm"
  if [[ -d "$r/var/cache/apt/archives" ]]; then
    mkdir -p "$CACHE/apt-archives/partial"
    b_mount --bind "$CACHE/apt-archives" "$r/var/cache/apt/archives"
  fi
  if [[ ! -e "$r/etc/resolv.conf" && ! -L "$r/etc/resolv.conf" ]]; then
    cp /etc/resolv.conf "$r/etc/resolv.conf"
    B_CREATED+=("$r/etc/resolv.conf")
  fi
  if [[ -d "$r/usr/sbin" && ! -e "$r/usr/sbin/policy-rc.d" ]]; then
    printf '#!/bin/sh\n# build time only: services must not start in the chroot\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
    chmod 0755 "$r/usr/sbin/policy-rc.d"
    B_CREATED+=("$r/usr/sbin/policy-rc.d")
  fi
}

b_chroot_leave() {
  local i f
  for f in "${B_CREATED[@]}"; do rm -f "$f"; done
  for ((i = ${#B_MOUNTS[@]} - 1; i >= 0; i--)); do
    umount "${B_MOUNTS[i]}" 2>/dev/null || umount -l "${B_MOUNTS[i]}"
  done
  B_MOUNTS=() B_CREATED=()
  # nothing may stay mounted below the rootfs when umoci walks it
  [[ -z "$(ndt__mounts_under "$B_ROOTFS")" ]] || die "mounts left below $B_ROOTFS"
}

b_repack() {
  local created_by=$1
  umoci repack --refresh-bundle --history.created_by "$created_by" --image "$B_IMG" "$B_BUNDLE" >>"$B_LOG" 2>&1 ||
    die "umoci repack failed for $B_NAME ($created_by); see $B_LOG"
  B_LAYERS=$((B_LAYERS + 1))
  ndt_log "  $B_NAME layer: ${created_by:0:110}"
}

# RUN CMD: run CMD with /bin/sh -ec in the chroot; one layer.
RUN() {
  local cmd=$*
  printf '\n### RUN %s\n' "$cmd" >>"$B_LOG"
  b_chroot_enter
  local rc=0
  env -i "${B_ENV[@]}" chroot "$B_ROOTFS" /bin/sh -ec "$cmd" >>"$B_LOG" 2>&1 </dev/null || rc=$?
  b_chroot_leave
  ((rc == 0)) || { tail -n 30 "$B_LOG" >&2; die "RUN failed (exit $rc) in $B_NAME: $cmd; see $B_LOG"; }
  b_repack "RUN /bin/sh -c $cmd # buildkit"
}

# APT PKG...: the usual apt-get update && install --no-install-recommends &&
# rm -rf /var/lib/apt/lists/* in one RUN.
APT() {
  RUN "apt-get update && apt-get install -y --no-install-recommends $* && rm -rf /var/lib/apt/lists/*"
}

# b_copy SRC DST: copy a file or a directory's contents (root-owned, modes kept).
b_copy() {
  local src=$1 dst=$B_ROOTFS$2
  if [[ -d "$src" ]]; then
    mkdir -p "$dst"
    cp -a --no-preserve=ownership "$src/." "$dst/"
  else
    mkdir -p "$(dirname "$dst")"
    cp -a --no-preserve=ownership "$src" "$dst"
  fi
  chown -R 0:0 "$dst"
}

# COPY SRC DST: SRC relative to files/ (a file or a directory); one layer.
COPY() {
  [[ -e "$HERE/files/$1" ]] || die "COPY: files/$1 does not exist"
  b_copy "$HERE/files/$1" "$2"
  b_repack "COPY $1 $2 # buildkit"
}

# COPY_BUILT FUNC DST CREATED_BY: FUNC OUTDIR (a recipe function) builds
# something on the host into OUTDIR (cached by the recipe hash); its contents
# are copied to DST; one layer. Like a multi-stage build's COPY --from.
COPY_BUILT() {
  local fn=$1 dst=$2 created_by=$3
  local h out
  h=$(recipe_hash "$B_NAME")
  out=$CACHE/hostbuild/$B_NAME-$fn-${h:0:16}
  if [[ ! -f "$out/.done" ]]; then
    rm -rf "$out"
    mkdir -p "$out"
    printf '\n### host build %s\n' "$fn" >>"$B_LOG"
    (cd "$out" && "$fn" "$out") >>"$B_LOG" 2>&1 || { tail -n 30 "$B_LOG" >&2; die "host build $fn of $B_NAME failed; see $B_LOG"; }
    touch "$out/.done"
  fi
  b_copy "$out" "$dst"
  rm -f "$B_ROOTFS$dst/.done"
  b_repack "$created_by"
}

# Config instructions: history entries without a layer, applied in order
# once all layers are in (umoci repack starts from the bundle's manifest, so
# a config change in between would be lost).
b_config() { local IFS=$'\x1f'; B_CONFIG+=("$*"); }
ENV() {
  local kv
  for kv in "$@"; do
    b_config "ENV $kv" "--config.env=$kv"
    B_ENV+=("$kv")
  done
}
# b_json_argv ARG...: a JSON array of strings (jq's --args would take "-x" for an option)
b_json_argv() {
  local a
  for a; do jq -n --arg a "$a" '$a'; done | jq -sc .
}
CMD() {
  local a=(--clear=config.cmd) x
  for x; do a+=("--config.cmd=$x"); done
  b_config "CMD $(b_json_argv "$@")" "${a[@]}"
}
ENTRYPOINT() {
  local a=(--clear=config.entrypoint) x
  for x; do a+=("--config.entrypoint=$x"); done
  b_config "ENTRYPOINT $(b_json_argv "$@")" "${a[@]}"
}
WORKDIR() { b_config "WORKDIR $1" "--config.workingdir=$1"; }
USER() { b_config "USER $1" "--config.user=$1"; }
EXPOSE() { b_config "EXPOSE $1" "--config.exposedports=$1"; }
LABEL() { b_config "LABEL $1" --config.label="$1"; }

b_apply_config() {
  local entry
  local -a f
  for entry in "${B_CONFIG[@]}"; do
    IFS=$'\x1f' read -r -a f <<<"$entry"
    umoci config --image "$B_IMG" --history.created_by "${f[0]}" "${f[@]:1}" >>"$B_LOG" 2>&1 ||
      die "umoci config failed for $B_NAME (${f[0]}); see $B_LOG"
  done
}

# ---------------------------------------------------------------------------
# the base: debootstrap --variant=minbase, made to look like Docker's debian

base_cleanup() {
  local r=$1
  rm -rf "$r"/var/lib/apt/lists/*
  mkdir -p "$r/var/lib/apt/lists/partial"
  rm -f "$r"/var/cache/apt/*.bin "$r"/var/cache/apt/archives/*.deb
  find "$r/dev" "$r/proc" "$r/sys" "$r/tmp" "$r/var/tmp" "$r/run" -mindepth 1 -delete 2>/dev/null || true
  rm -f "$r/etc/resolv.conf" "$r/etc/hostname"
  find "$r/var/log" -type f -exec truncate -s 0 {} +
  rm -f "$r/etc/apt/sources.list"
  {
    printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$MIRROR" "$SUITE" "$SUITE"
    if [[ -n "$SECURITY_MIRROR" ]]; then
      printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        "$SECURITY_MIRROR" "$SUITE"
    fi
  } >"$r/etc/apt/sources.list.d/debian.sources"
  # what Docker's debian images carry (without the post-invoke that deletes
  # downloaded .debs: the build bind-mounts a shared download cache)
  printf 'Dir::Cache::pkgcache "";\nDir::Cache::srcpkgcache "";\n' >"$r/etc/apt/apt.conf.d/docker-clean"
  printf 'Acquire::GzipIndexes "true";\nAcquire::CompressionTypes::Order:: "gz";\n' >"$r/etc/apt/apt.conf.d/docker-gzip-indexes"
  printf 'Acquire::Languages "none";\n' >"$r/etc/apt/apt.conf.d/docker-no-languages"
  printf 'Apt::AutoRemove::SuggestsImportant "false";\n' >"$r/etc/apt/apt.conf.d/docker-autoremove-suggests"
}

base_tarball() {
  local h=$1 tb=$CACHE/base/$VARIANT-$SUITE-${1:0:16}.tar
  if [[ ! -f "$tb" ]]; then
    [[ -n "$MIRROR" ]] || die "no apt mirror for $SUITE/main found in apt-cache policy; set NDB_MIRROR"
    local d=$CACHE/work/debootstrap
    rm -rf "$d"
    ndt_log "debootstrap --variant=$VARIANT $SUITE from $MIRROR (log: $CACHE/logs/debootstrap.log)"
    debootstrap --variant="$VARIANT" "$SUITE" "$d" "$MIRROR" >"$CACHE/logs/debootstrap.log" 2>&1 ||
      { tail -n 20 "$CACHE/logs/debootstrap.log" >&2; die "debootstrap failed"; }
    base_cleanup "$d"
    tar --numeric-owner --xattrs --xattrs-include='*' -C "$d" -cf "$tb.tmp" .
    mv "$tb.tmp" "$tb"
    rm -rf "$d"
  fi
  echo "$tb"
}

build_base() {
  local h dir tmp tb
  h=$(recipe_hash _base)
  dir=$CACHE/oci/_base
  # (--force does not rebuild the base: remove $CACHE/base/*.tar and oci/_base for that)
  if is_cached _base; then return 0; fi
  tb=$(base_tarball "$h")
  tmp=$dir.tmp
  rm -rf "$tmp" "$CACHE/work/_base"
  B_NAME=_base B_IMG=$tmp:$NDB_TAG B_BUNDLE=$CACHE/work/_base/bundle B_ROOTFS=$CACHE/work/_base/bundle/rootfs
  B_LOG=$CACHE/logs/_base.log B_LAYERS=0 B_CONFIG=()
  : >"$B_LOG"
  umoci init --layout "$tmp"
  umoci new --image "$B_IMG"
  umoci unpack --image "$B_IMG" "$B_BUNDLE" >>"$B_LOG"
  tar --numeric-owner --xattrs --xattrs-include='*' -C "$B_ROOTFS" -xpf "$tb"
  b_repack "ADD rootfs.tar / # debootstrap --variant=$VARIANT $SUITE $MIRROR"
  ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  CMD bash
  b_apply_config
  echo "$h" >"$tmp/.recipe-hash"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  rm -rf "$CACHE/work/_base"
  ndt_log "base image ready: $dir"
}

# ---------------------------------------------------------------------------
# images

manifest_of() { # LAYOUT: the manifest JSON of tag v1
  local l=$1 d
  d=$(jq -r --arg t "$NDB_TAG" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$l/index.json")
  cat "$l/blobs/sha256/${d#sha256:}"
}
config_of() {
  local d
  d=$(manifest_of "$1" | jq -r .config.digest)
  cat "$1/blobs/sha256/${d#sha256:}"
}

# write_info NAME LAYOUT ROOTFS SECONDS: LAYOUT/info.json with the sizes.
write_info() {
  local name=$1 l=$2 rootfs=$3 secs=$4 m c layers comp tars=0 unpacked d hist
  m=$(manifest_of "$l")
  c=$(config_of "$l")
  layers=$(jq '.layers | length' <<<"$m")
  comp=$(jq '[.layers[].size] | add' <<<"$m")
  for d in $(jq -r '.layers[].digest' <<<"$m"); do
    tars=$((tars + $(gzip -dc "$l/blobs/sha256/${d#sha256:}" | wc -c)))
  done
  unpacked=$(du -sb "$rootfs" | cut -f1)
  hist=$(jq '[.history[] | select(.empty_layer != true and (.created_by // "") != "")] | length' <<<"$c")
  ((hist == layers)) || die "$name: $hist history entries with a layer and created_by, but $layers layers"
  jq -n --arg name "$name" --argjson layers "$layers" --argjson comp "$comp" --argjson tars "$tars" \
    --argjson unpacked "$unpacked" --argjson secs "$secs" --arg digest "$(jq -r --arg t "$NDB_TAG" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$l/index.json")" \
    --argjson config "$c" --arg hash "$(recipe_hash "$name")" \
    '{name: $name, manifest_digest: $digest, recipe_hash: $hash, layers: $layers,
      compressed_bytes: $comp, layer_tar_bytes: $tars, unpacked_bytes: $unpacked, build_seconds: $secs,
      entrypoint: ($config.config.Entrypoint // []), cmd: ($config.config.Cmd // []),
      env: ($config.config.Env // []), user: ($config.config.User // ""),
      workdir: ($config.config.WorkingDir // ""),
      history: [$config.history[] | {created_by, empty_layer: (.empty_layer // false)}]}' >"$l/info.json"
}

build_image() {
  local name=$1 from dir tmp parent h start
  h=$(recipe_hash "$name")
  dir=$CACHE/oci/$name
  tmp=$dir.tmp
  from=$(recipe_var "$name" FROM)
  parent=$CACHE/oci/${from/#base/_base}
  [[ -f "$parent/.recipe-hash" ]] || die "$name: parent $from is not built"
  start=$SECONDS
  rm -rf "$tmp" "$CACHE/work/$name"
  mkdir -p "$tmp" "$CACHE/work/$name"
  # start from a copy of the parent's layout: blobs are immutable, so hard links
  cp -al "$parent/blobs" "$tmp/blobs"
  cp "$parent/index.json" "$parent/oci-layout" "$tmp/"
  B_NAME=$name B_IMG=$tmp:$NDB_TAG B_BUNDLE=$CACHE/work/$name/bundle B_ROOTFS=$CACHE/work/$name/bundle/rootfs
  B_LOG=$CACHE/logs/$name.log B_LAYERS=0 B_CONFIG=()
  : >"$B_LOG"
  umoci unpack --image "$B_IMG" "$B_BUNDLE" >>"$B_LOG" 2>&1 || die "umoci unpack of $from failed; see $B_LOG"
  mapfile -t B_ENV < <(config_of "$tmp" | jq -r '.config.Env // [] | .[]')
  B_ENV+=(HOME=/root DEBIAN_FRONTEND=noninteractive LANG=C.UTF-8)
  (
    set +u
    # shellcheck disable=SC1090
    source "$(recipe_file "$name")"
    set -u
    build
    b_apply_config
  )
  umoci gc --layout "$tmp" >>"$B_LOG" 2>&1
  write_info "$name" "$tmp" "$B_ROOTFS" $((SECONDS - start))
  echo "$h" >"$tmp/.recipe-hash"
  rm -rf "$dir"
  mv "$tmp" "$dir"
  rm -rf "$CACHE/work/$name"
}

# ---------------------------------------------------------------------------
# manifest (corpus.json) from the recipes: the DSL only records

recipe_meta() {
  local name=$1
  (
    set +u
    layers=0 cmd=() entrypoint=() env=() user="" workdir="" ports=()
    RUN() { layers=$((layers + 1)); }
    APT() { layers=$((layers + 1)); }
    COPY() { layers=$((layers + 1)); }
    COPY_BUILT() { layers=$((layers + 1)); }
    ENV() { env+=("$@"); }
    CMD() { cmd=("$@"); }
    ENTRYPOINT() { entrypoint=("$@"); cmd=(); }
    WORKDIR() { workdir=$1; }
    USER() { user=$1; }
    EXPOSE() { ports+=("$1"); }
    LABEL() { :; }
    # shellcheck disable=SC1090
    source "$(recipe_file "$name")"
    build
    jq -n --arg name "$name" --arg category "$CATEGORY" --arg from "$FROM" --arg probe "$PROBE" \
      --argjson budget "$BUDGET" --arg description "$DESCRIPTION" --argjson own "$layers" \
      --arg user "$user" --arg workdir "$workdir" \
      --argjson cmd "$(b_json_argv "${cmd[@]}")" \
      --argjson entrypoint "$(b_json_argv "${entrypoint[@]}")" \
      --argjson env "$(b_json_argv "${env[@]}")" \
      --argjson ports "$(b_json_argv "${ports[@]}")" \
      '{name: $name, category: $category, from: $from, description: $description,
        own_layers: $own, probe: $probe, budget_s: $budget, entrypoint: $entrypoint, cmd: $cmd,
        env: $env, user: $user, workdir: $workdir, ports: $ports}'
  )
}

write_manifest() {
  local out=$1 name tmp
  tmp=$(mktemp)
  {
    for name in "${NDB_CORPUS[@]}"; do
      local meta info=$CACHE/oci/$name/info.json
      meta=$(recipe_meta "$name")
      if [[ -f "$info" ]]; then
        meta=$(jq --slurpfile i "$info" '. + {layers: $i[0].layers,
          compressed_mb: (($i[0].compressed_bytes / 1e5 | round) / 10),
          unpacked_mb: (($i[0].unpacked_bytes / 1e5 | round) / 10),
          entrypoint: $i[0].entrypoint, cmd: $i[0].cmd, env: $i[0].env, user: $i[0].user,
          workdir: $i[0].workdir}' <<<"$meta")
      fi
      echo "$meta"
    done
  } | jq -s --arg prefix "$NDB_REPO_PREFIX" --arg tag "$NDB_TAG" \
    '{about: "Benchmark image corpus (test/bench/images). Reference: <registry>/\($prefix)/<name>:\($tag). Probe stdout:<ERE> = a line of the task output (stdout or stderr); tcp:<port> = 127.0.0.1:<port> accepts, in the container network namespace (run with ctr run --net-host: containerd netns). Sizes: as built here (they vary a little with the Debian mirror state).",
      repo_prefix: $prefix, tag: $tag, images: [.[] | {name, tag: $tag, repo: "\($prefix)/\(.name)"} + .]}' >"$tmp"
  for name in "${NDB_CORPUS[@]}"; do # layers from the recipe chain when not built
    if ! jq -e --arg n "$name" '.images[] | select(.name == $n) | has("layers")' "$tmp" >/dev/null; then
      local n=0 x=$name
      while [[ $x != base ]]; do
        n=$((n + $(jq -r --arg n "$x" '.images[] | select(.name == $n) | .own_layers' "$tmp")))
        x=$(jq -r --arg n "$x" '.images[] | select(.name == $n) | .from' "$tmp")
      done
      jq --arg n "$name" --argjson l $((n + 1)) '(.images[] | select(.name == $n)) += {layers: $l}' "$tmp" >"$tmp.2" && mv "$tmp.2" "$tmp"
    fi
  done
  mv "$tmp" "$out"
  chmod 0644 "$out"
}

print_table() {
  local name info
  printf '%-11s %-13s %6s %9s %9s %9s  %-7s %s\n' image category layers comp_MB tars_MB unpack_MB status probe
  for name in "$@"; do
    info=$CACHE/oci/$name/info.json
    if [[ -f "$info" ]] && ! is_cached "$name"; then
      STATUS[$name]=${STATUS[$name]:-stale}
    fi
    if [[ -f "$info" ]]; then
      printf '%-11s %-13s %6s %9s %9s %9s  %-7s %s\n' "$name" "$(recipe_var "$name" CATEGORY)" \
        "$(jq .layers "$info")" "$(mb "$(jq .compressed_bytes "$info")")" "$(mb "$(jq .layer_tar_bytes "$info")")" \
        "$(mb "$(jq .unpacked_bytes "$info")")" "${STATUS[$name]:-cached}" "$(recipe_var "$name" PROBE)"
    else
      printf '%-11s %-13s %6s %9s %9s %9s  %-7s %s\n' "$name" "$(recipe_var "$name" CATEGORY)" - - - - "${STATUS[$name]:-missing}" "$(recipe_var "$name" PROBE)"
    fi
  done
}

# ---------------------------------------------------------------------------
# main

declare -A STATUS=()
declare -a only_set=()
if [[ -n "$only" ]]; then
  IFS=, read -r -a only_set <<<"$only"
  for n in "${only_set[@]}"; do [[ -f "$(recipe_file "$n")" ]] || die "no recipe for '$n' (recipes/$n.sh)"; done
fi

case $mode in
  manifest)
    write_manifest "$HERE/corpus.json"
    echo "wrote $HERE/corpus.json"
    exit 0
    ;;
  list)
    print_table "${NDB_CORPUS[@]}"
    exit 0
    ;;
esac

[[ $(id -u) -eq 0 ]] || die "build.sh must run as root (chroot, mounts)"
ndt_require_cmds debootstrap umoci jq tar gzip sha256sum chroot mount umount mknod du cp
mkdir -p "$CACHE"/{base,oci,work,logs,apt-archives/partial,hostbuild}
exec 9>"$CACHE/.build.lock"
flock -n 9 || die "another build.sh (or a step still running from a killed one) holds $CACHE/.build.lock"
# an earlier run killed hard may have left mounts and scratch behind
# (--one-file-system: never into a bind mount that survived, e.g. the apt cache)
ndt_unmount_all_under "$CACHE/work"
rm -rf --one-file-system "${CACHE:?}"/work/* "$CACHE"/oci/*.tmp
trap 'ndt_unmount_all_under "$CACHE/work"; rm -rf --one-file-system "${CACHE:?}"/work/*' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# what to build: the requested images and their FROM chain, in corpus order
declare -A want=()
if ((${#only_set[@]})); then
  for n in "${only_set[@]}"; do
    while [[ $n != base ]]; do
      want[$n]=1
      n=$(recipe_var "$n" FROM)
    done
  done
else
  for n in "${NDB_CORPUS[@]}"; do want[$n]=1; done
fi

ndt_log "cache $CACHE, mirror $MIRROR${SECURITY_MIRROR:+ (security: $SECURITY_MIRROR)}"
build_base
declare -a todo=()
for n in "${NDB_CORPUS[@]}"; do [[ -n "${want[$n]:-}" ]] && todo+=("$n"); done
for n in "${todo[@]}"; do
  requested=0
  if ((${#only_set[@]} == 0)) || [[ " ${only_set[*]} " == *" $n "* ]]; then requested=1; fi
  if is_cached "$n" && ! ((force && requested)); then
    STATUS[$n]=cached
    continue
  fi
  ndt_log "building $n (recipe ${HASH_MEMO[$n]:-$(recipe_hash "$n")})"
  t0=$SECONDS
  build_image "$n"
  STATUS[$n]=built
  ndt_log "built $n in $((SECONDS - t0)) s: $(jq -r '"\(.layers) layers, \(.compressed_bytes / 1e6 | floor) MB compressed, \(.unpacked_bytes / 1e6 | floor) MB unpacked"' "$CACHE/oci/$n/info.json")"
done
write_manifest "$CACHE/corpus.json"
echo
print_table "${todo[@]}"
