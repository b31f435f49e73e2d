# shellcheck shell=bash
# Benchmark image corpus: the shared part of build.sh, push.sh and verify.sh,
# and a small library for benchmark runners. Source it:
#
#   source test/bench/images/corpus.sh
#   corpus_names                     # every image, in build order
#   corpus_ref python3 10.77.0.2:5000   # -> 10.77.0.2:5000/bench/python3:v1
#   corpus_probe python3             # -> stdout:^python app ready
#   corpus_budget python3            # -> seconds the probe may take
#   bench_probe_wait "$(corpus_probe nginx)" "$log" 20 "$ctr_pid"
#
# Everything comes from corpus.json next to this file (regenerate it with
# `build.sh --manifest`), so a runner needs neither the recipes nor the cache.

if [[ -n "${NDB_CORPUS_LOADED:-}" ]]; then return 0; fi
NDB_CORPUS_LOADED=1

NDB_IMAGES_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# Where build.sh keeps the debootstrap tarball, the OCI layouts, the apt
# download cache and its logs (--cache DIR or NDB_CACHE overrides).
: "${NDB_CACHE:=/var/tmp/ndocker-bench/cache}"
# Repository prefix and tag of every image in a registry.
NDB_REPO_PREFIX=bench
NDB_TAG=v1

# Build order: an image comes after the one it is built FROM.
NDB_CORPUS=(debian python3 nodejs openjdk ruby nginx apache2 redis postgres mariadb flask express prometheus)

corpus_names() { printf '%s\n' "${NDB_CORPUS[@]}"; }

# corpus_json: the manifest (corpus.json).
corpus_json() { cat "$NDB_IMAGES_DIR/corpus.json"; }

# corpus_field NAME FIELD: one field of an image's manifest entry (jq syntax
# after the dot, e.g. probe, category, budget_s, cmd).
corpus_field() {
  jq -er --arg n "$1" ".images[] | select(.name == \$n) | .$2" "$NDB_IMAGES_DIR/corpus.json"
}
corpus_probe() { corpus_field "$1" probe; }
corpus_budget() { corpus_field "$1" budget_s; }

# corpus_ref NAME REGISTRY: the image reference in REGISTRY (host:port).
corpus_ref() { printf '%s/%s/%s:%s\n' "$2" "$NDB_REPO_PREFIX" "$1" "$NDB_TAG"; }

# corpus_layout NAME: the OCI layout build.sh made ("oci:" + this + ":v1" for skopeo).
corpus_layout() { printf '%s/oci/%s\n' "$NDB_CACHE" "$1"; }

# ndb_now_ns: nanoseconds since the epoch.
ndb_now_ns() { date +%s%N; }

# bench_probe_check PROBE LOG: does the readiness probe fire now?
#   stdout:REGEX  an extended regex matches a line of LOG (the task's stdout
#                 and stderr, e.g. `ctr run ... >LOG 2>&1`)
#   tcp:PORT      a TCP connect to 127.0.0.1:PORT succeeds, in the caller's
#                 network namespace (the container's with `ctr run --net-host`:
#                 that of containerd, which starts the shims)
bench_probe_check() {
  local probe=$1 log=$2
  case $probe in
    stdout:*) grep -Eq -- "${probe#stdout:}" "$log" 2>/dev/null ;;
    tcp:*) (exec 3<>"/dev/tcp/127.0.0.1/${probe#tcp:}") 2>/dev/null ;;
    *)
      echo "bench_probe_check: unknown probe '$probe'" >&2
      return 3
      ;;
  esac
}

# bench_probe_wait PROBE LOG TIMEOUT_S [PID]: poll the probe every 10 ms.
# Returns 0 once it fires, 1 after TIMEOUT_S, 2 if PID (e.g. the `ctr run`
# process) exits first without the probe having fired.
bench_probe_wait() {
  local probe=$1 log=$2 timeout=$3 pid=${4:-}
  local deadline=$(($(ndb_now_ns) + timeout * 1000000000))
  while :; do
    bench_probe_check "$probe" "$log" && return 0
    if [[ -n "$pid" ]] && ! kill -0 "$pid" 2>/dev/null; then
      bench_probe_check "$probe" "$log" && return 0
      return 2
    fi
    (($(ndb_now_ns) < deadline)) || return 1
    sleep 0.01
  done
}
