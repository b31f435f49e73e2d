# shellcheck shell=bash disable=SC2119
# Integration-test library for ndocker-snapshotter.
#
# Source it from a bash script that runs as root:
#
#   source "$(dirname "$0")/lib.sh"
#   ndt_setup                       # workdir + cleanup traps
#   registry_start                  # docker-registry on 127.0.0.1:<free port>
#   image_build_and_push            # sets NDT_IMAGE_REF
#   ndocker_start                   # "$NDOCKER_BIN" --root ... --address ...
#   containerd_start                # containerd 1.6 with [proxy_plugins.ndocker]
#   ctrw image pull --plain-http --snapshotter ndocker "$NDT_IMAGE_REF"
#
# Everything lives in one workdir (NDT_WORKDIR, under $NDT_TMPDIR, $TMPDIR or
# /var/tmp; ext4 and tmpfs both work: overlayfs, user.* and trusted.* xattrs).
# The daemon's tiers are two real filesystems of their own, mounted at its
# default tier paths <root>/fast and <root>/slow by ndocker_start: the fast
# tier a tmpfs of a fixed size (RAM/PMEM-like), the slow tier an ext4 image
# (a sparse file in <workdir>/tier-images, mounted -o loop; disk-like), so
# that moves between the tiers cross filesystems (ndt_tiers_mount).
# containerd, registry and daemon get their own root, state, sockets and port,
# and the containers a containerd namespace of their own (ndt<pid>). The EXIT
# trap (also reached on SIGINT, SIGTERM, SIGHUP and the NDT_TEST_TIMEOUT
# watchdog) kills every task, shim and daemon started through this library,
# unmounts every mount below the workdir (newest first, lazily as a last
# resort), removes the workdir, and then fails the run if anything leaked.
# It never touches the system's /var/lib/containerd or /run/containerd, except
# for the socket files of its own shims, which containerd 1.6 hard-codes under
# /run/containerd/s (see ndt__cleanup_steps).
#
# Environment:
#   NDOCKER_BIN        daemon binary (default <source>/build/cmd/ndocker-snapshotter)
#   NDOCKERCTL_BIN     admin CLI (default <source>/build/cmd/ndockerctl)
#   NDOCKER_TEST_CRI_BIN       CRI client: images, pods, containers (default <source>/build/test/cri/ndocker-test-cri)
#   NDOCKER_TEST_THROTTLE_BIN  bandwidth-limiting TCP proxy (default <source>/build/test/tools/ndocker-test-throttle)
#   NDT_TMPDIR         parent of the workdir (default $TMPDIR, else /var/tmp)
#   NDT_TEST_TIMEOUT   seconds before the watchdog stops the test (default 300, 0 = never)
#   NDT_NDOCKER_LOG_LEVEL  daemon --log-level unless given to ndocker_start (default debug)
#   NDT_FAST_TIER_SIZE size of the fast tier's tmpfs (default 256M; any size mount -t tmpfs takes)
#   NDT_SLOW_TIER_SIZE size of the slow tier's ext4 image (default 768M; truncate -s syntax)
#   NDT_SAME_FS_TIERS=1  no tier filesystems: both tiers are plain dirs on the workdir's filesystem
#   NDT_KEEP=1         keep the workdir (processes are still killed, mounts removed;
#                      the fast tier's tmpfs content is lost, the slow tier's image is kept)
#   NDT_VERBOSE=1      echo every ctr call
# A run killed with SIGKILL cannot clean up: test/integration/reap.sh WORKDIR.
#
# Functions whose name starts with ndt__ are internal.

if [[ -n "${NDT_LIB_LOADED:-}" ]]; then return 0; fi
NDT_LIB_LOADED=1

NDT_LIB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
NDT_SRC_DIR=$(cd "$NDT_LIB_DIR/../.." && pwd)
: "${NDOCKER_BIN:=$NDT_SRC_DIR/build/cmd/ndocker-snapshotter}"
: "${NDOCKERCTL_BIN:=$NDT_SRC_DIR/build/cmd/ndockerctl}"
: "${NDOCKER_TEST_CRI_BIN:=$NDT_SRC_DIR/build/test/cri/ndocker-test-cri}"
: "${NDOCKER_TEST_THROTTLE_BIN:=$NDT_SRC_DIR/build/test/tools/ndocker-test-throttle}"
NDOCKER_SNAPSHOTTER_NAME=ndocker

NDT_WORKDIR=""
NDT_NS=""
NDT_CLEANED=0
NDT_PIDS=()                   # every daemon started here, in start order
declare -A NDT_PID_NAME=()    # pid -> name (containerd, ndocker, registry)
NDT_CLEANUP_HOOKS=()          # extra commands run first by the cleanup
NDT_RUN_CONTAINERD_EXISTED=1  # whether /run/containerd existed before us

# ---------------------------------------------------------------------------
# messages and assertions

ndt_ts() { date +%H:%M:%S.%3N; }
ndt_log() { printf '[%s] %s\n' "$(ndt_ts)" "$*" >&2; }
ndt_step() { printf '\n[%s] === %s\n' "$(ndt_ts)" "$*" >&2; }
ndt_pass() { printf '[%s] ok: %s\n' "$(ndt_ts)" "$*" >&2; }

# ndt_fail MESSAGE...: print the message and exit 1 (the EXIT trap cleans up).
ndt_fail() {
  printf '[%s] FAIL: %s\n' "$(ndt_ts)" "$*" >&2
  exit 1
}

# assert_eq EXPECTED ACTUAL WHAT
assert_eq() {
  if [[ "$1" != "$2" ]]; then
    if [[ "$1$2" == *$'\n'* ]]; then
      diff -u --label expected --label actual <(printf '%s\n' "$1") <(printf '%s\n' "$2") >&2 || true
      ndt_fail "$3: differs from the expected value (diff above)"
    fi
    ndt_fail "$3: expected [$1], got [$2]"
  fi
  if [[ "$1" == *$'\n'* ]]; then
    ndt_pass "$3 ($(wc -l <<<"$1") lines as expected)"
  else
    ndt_pass "$3 = [$1]"
  fi
}

# assert_file_eq EXPECTED_FILE ACTUAL_FILE WHAT: identical files, diff shown otherwise.
assert_file_eq() {
  if ! diff -u --label "expected($1)" --label "actual($2)" "$1" "$2" >&2; then
    ndt_fail "$3: files differ (diff above)"
  fi
  ndt_pass "$3"
}

# assert_grep REGEX FILE WHAT: FILE has a line matching the extended REGEX.
assert_grep() {
  if ! grep -Eq -- "$1" "$2"; then
    ndt_fail "$3: no line of $2 matches /$1/"
  fi
  ndt_pass "$3"
}

# assert_no_grep REGEX FILE WHAT
assert_no_grep() {
  if grep -Eq -- "$1" "$2"; then
    ndt_fail "$3: unexpected line(s) in $2: $(grep -E -- "$1" "$2" | head -5 | tr '\n' '|')"
  fi
  ndt_pass "$3"
}

# ndt_wait_until TIMEOUT_S DESCRIPTION CMD...: run CMD every 0.1 s until it
# succeeds; fail after TIMEOUT_S seconds.
ndt_wait_until() {
  local timeout=$1 what=$2
  shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      ndt_fail "timed out after ${timeout}s waiting for: $what"
    fi
    sleep 0.1
  done
}

# ndt_wait_until_quiet TIMEOUT_S CMD...: like ndt_wait_until, but returns 1
# on timeout instead of failing.
ndt_wait_until_quiet() {
  local timeout=$1
  shift
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.1
  done
}

# ndt_dir_empty DIR: DIR has no entries (a missing DIR counts as empty).
ndt_dir_empty() { [[ -z "$(find "$1" -mindepth 1 -maxdepth 1 2>/dev/null)" ]]; }

# ndt_now: seconds since the epoch with nanoseconds, for timing.
ndt_now() { date +%s.%N; }
# ndt_elapsed START [END]: seconds between two ndt_now values, 3 decimals.
ndt_elapsed() { awk -v a="$1" -v b="${2:-$(ndt_now)}" 'BEGIN { printf "%.3f", b - a }'; }

# Exit status for "skipped" (ctest SKIP_RETURN_CODE).
NDT_SKIP=77

ndt_require_root() {
  if [[ $(id -u) -ne 0 ]]; then
    echo "SKIP: integration tests must run as root" >&2
    exit "$NDT_SKIP"
  fi
}

# ndt_require_cmds CMD...: fail with a clear message when a tool is missing.
ndt_require_cmds() {
  local c missing=()
  for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing+=("$c"); done
  ((${#missing[@]} == 0)) || ndt_fail "missing tools: ${missing[*]} (see deploy/install-deps.sh)"
}

# ---------------------------------------------------------------------------
# workdir, traps and cleanup

# ndt_setup [NAME]: create the workdir, choose a private containerd namespace
# and install the cleanup traps. Sets NDT_WORKDIR, NDT_NS.
ndt_setup() {
  local name=${1:-$(basename "${0%.sh}")}
  ndt_require_root
  ndt_require_cmds containerd ctr runc containerd-shim-runc-v2 docker-registry umoci skopeo \
    jq curl getfattr setfattr sha256sum find mount umount ss tar mkfs.ext4 losetup chattr
  local base=${NDT_TMPDIR:-${TMPDIR:-/var/tmp}}
  mkdir -p "$base"
  NDT_WORKDIR=$(mktemp -d "$base/ndt-$name.XXXXXX")
  chmod 0711 "$NDT_WORKDIR"
  mkdir -p "$NDT_WORKDIR"/{tmp,logs,mnt,fifo,runc}
  # A namespace of our own: cgroups (/sys/fs/cgroup/*/<ns>/<id>) and shims are
  # then clearly ours, even when several tests run at once.
  NDT_NS="ndt$$"
  printf 'NDT_NS=%q\n' "$NDT_NS" >"$NDT_WORKDIR/ndt.env"
  [[ -d /run/containerd ]] || NDT_RUN_CONTAINERD_EXISTED=0
  trap 'ndt__on_exit' EXIT
  trap 'ndt__on_signal INT 130' INT
  trap 'ndt__on_signal TERM 143' TERM
  trap 'ndt__on_signal HUP 129' HUP
  ndt__start_watchdog "${NDT_TEST_TIMEOUT:-300}"
  ndt_log "workdir $NDT_WORKDIR ($(stat -f -c %T "$NDT_WORKDIR")), containerd namespace $NDT_NS"
}

# ndt__start_watchdog SECONDS: after SECONDS, SIGTERM the test script and the
# commands it waits for (bash runs a trap only once its foreground command has
# ended), so that the cleanup runs before an outer timeout (ctest's) SIGKILLs us.
ndt__start_watchdog() {
  local limit=$1 main=$$
  ((limit > 0)) || return 0 # NDT_TEST_TIMEOUT=0: no watchdog (e.g. a quickstart)
  (
    trap - EXIT INT TERM HUP
    local i
    for ((i = 0; i < limit; i++)); do
      sleep 1
      kill -0 "$main" 2>/dev/null || exit 0
    done
    printf '\n[%s] TIMEOUT: test ran longer than %ss (NDT_TEST_TIMEOUT)\n' "$(ndt_ts)" "$limit" >&2
    kill -TERM "$main" 2>/dev/null
    local me=$BASHPID sid d pid
    sid=$(awk '{ print $6 }' "/proc/$main/stat" 2>/dev/null)
    for d in /proc/[0-9]*; do
      pid=${d#/proc/}
      [[ $pid == "$me" ]] && continue
      # direct children of the script in its session (not the setsid daemons)
      read -r -a fields 2>/dev/null <"$d/stat" || continue
      [[ "${fields[3]}" == "$main" && "${fields[5]}" == "$sid" ]] && kill -TERM "$pid" 2>/dev/null
    done
  ) &
  NDT_WATCHDOG_PID=$!
}

ndt__on_signal() {
  printf '\n[%s] caught SIG%s, cleaning up\n' "$(ndt_ts)" "$1" >&2
  exit "$2" # runs the EXIT trap
}

ndt__on_exit() {
  local rc=$?
  set +e +u
  trap '' INT TERM HUP # a second Ctrl-C must not interrupt the cleanup
  if ((rc != 0)); then
    ndt__dump_logs
    printf '[%s] %s FAILED (exit %d)\n' "$(ndt_ts)" "$(basename "$0")" "$rc" >&2
  fi
  ndt_cleanup
  if ! ndt__leak_check && ((rc == 0)); then rc=1; fi
  if ((rc == 0)); then
    printf '[%s] %s PASSED\n' "$(ndt_ts)" "$(basename "$0")" >&2
  fi
  exit "$rc"
}

# ndt__leak_check: after the cleanup, nothing of this run may remain: no mount
# below the workdir, no process naming it, no cgroup of our namespace, no
# workdir (unless NDT_KEEP=1). Prints what leaked; returns 1 then.
ndt__leak_check() {
  [[ -n "$NDT_WORKDIR" ]] || return 0
  local leaks=() i left
  for i in $(seq 20); do # killed processes take a moment to go
    left=$(ndt__pids_mentioning "$NDT_WORKDIR")
    [[ -z "$left" ]] && break
    sleep 0.1
  done
  [[ -n "$left" ]] && leaks+=("processes: $(for p in $left; do tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline"; echo "(pid $p);"; done)")
  left=$(ndt__mounts_under "$NDT_WORKDIR")
  [[ -n "$left" ]] && leaks+=("mounts: $(tr '\n' ' ' <<<"$left")")
  left=$(ndt__loops_under "$NDT_WORKDIR")
  [[ -n "$left" ]] && leaks+=("loop devices: $(tr '\n' ' ' <<<"$left")")
  if [[ -n "$NDT_NS" ]]; then
    left=$(ls -d /sys/fs/cgroup/*/"$NDT_NS" /sys/fs/cgroup/"$NDT_NS" 2>/dev/null)
    [[ -n "$left" ]] && leaks+=("cgroups: $(tr '\n' ' ' <<<"$left")")
  fi
  if [[ "${NDT_KEEP:-0}" != 1 && -e "$NDT_WORKDIR" ]]; then leaks+=("workdir: $NDT_WORKDIR"); fi
  ((${#leaks[@]} == 0)) && return 0
  printf '[%s] LEAK after cleanup: %s\n' "$(ndt_ts)" "${leaks[@]}" >&2
  return 1
}

# Show the end of every daemon log, for a failed run.
ndt__dump_logs() {
  [[ -n "$NDT_WORKDIR" && -d "$NDT_WORKDIR/logs" ]] || return 0
  local f
  for f in "$NDT_WORKDIR"/logs/*.log; do
    [[ -s "$f" ]] || continue
    local n=40
    printf '\n----- last %d lines of %s -----\n' "$n" "$f" >&2
    # skopeo probes for every blob before the upload: expected 404s
    grep -v 'blob unknown to registry' "$f" | tail -n "$n" >&2
  done
  printf -- '-----\n' >&2
}

# ndt_on_cleanup CMD...: register a command (a string, eval'd) run at the
# start of the cleanup.
ndt_on_cleanup() { NDT_CLEANUP_HOOKS+=("$*"); }

# ndt_cleanup: idempotent; safe to call by hand (errexit is restored). Order:
# hooks, tasks and containers (through our containerd), containerd, shims,
# container processes (by our namespace's cgroups), the other daemons, stale
# shim sockets of our containers, mounts, workdir.
ndt_cleanup() {
  [[ "$NDT_CLEANED" == 1 ]] && return 0
  NDT_CLEANED=1
  local opts=$-
  set +e
  ndt__cleanup_steps
  [[ $opts == *e* ]] && set -e
  return 0
}

ndt__cleanup_steps() {
  if [[ -n "${NDT_WATCHDOG_PID:-}" ]]; then
    kill "$NDT_WATCHDOG_PID" 2>/dev/null
    wait "$NDT_WATCHDOG_PID" 2>/dev/null
  fi
  [[ -n "$NDT_WORKDIR" && -d "$NDT_WORKDIR" ]] || return 0
  local h p t c i
  for h in "${NDT_CLEANUP_HOOKS[@]}"; do eval "$h"; done

  # CRI pod sandboxes (namespace k8s.io) first: stopping a sandbox through
  # CRI also stops and removes its containers, shim and mounts.
  if [[ -n "${NDT_CTRD_SOCK:-}" && -S "$NDT_CTRD_SOCK" ]]; then ndt__cri_cleanup; fi

  # Our containers, "<namespace>/<id>", for their shim sockets (see below):
  # ctr's in $NDT_NS, CRI's in k8s.io (this containerd is ours alone).
  local -a ids=() nss=("$NDT_NS")
  [[ "${NDT_CTRD_CRI:-0}" == 1 ]] && nss+=(k8s.io)
  local ns
  for ns in "$NDT_NS" k8s.io; do
    if [[ -n "${NDT_CTRD_STATE:-}" && -n "$ns" && -d "$NDT_CTRD_STATE/io.containerd.runtime.v2.task/$ns" ]]; then
      for c in "$NDT_CTRD_STATE/io.containerd.runtime.v2.task/$ns"/*; do [[ -d "$c" ]] && ids+=("$ns/${c##*/}"); done
    fi
  done

  # 1. Tasks and containers, while containerd still runs.
  if [[ -n "${NDT_CTRD_SOCK:-}" && -S "$NDT_CTRD_SOCK" ]] && ctrw_timeout 5 version >/dev/null 2>&1; then
    for ns in "${nss[@]}"; do
      for t in $(NDT_NS=$ns ctrw_timeout 10 task ls -q 2>/dev/null); do
        ids+=("$ns/$t")
        NDT_NS=$ns ctrw_timeout 10 task kill -a -s SIGKILL "$t" >/dev/null 2>&1
      done
      for i in $(seq 50); do # up to 5 s for the tasks to stop
        [[ -z "$(NDT_NS=$ns ctrw_timeout 10 task ls 2>/dev/null | awk 'NR > 1 && $3 != "STOPPED"')" ]] && break
        sleep 0.1
      done
      for t in $(NDT_NS=$ns ctrw_timeout 10 task ls -q 2>/dev/null); do
        NDT_NS=$ns ctrw_timeout 20 task rm -f "$t" >/dev/null 2>&1
      done
      for c in $(NDT_NS=$ns ctrw_timeout 10 container ls -q 2>/dev/null); do
        NDT_NS=$ns ctrw_timeout 20 container rm "$c" >/dev/null 2>&1
      done
    done
  fi

  # 2. containerd first (so it stops talking to the snapshotter), then the others.
  if [[ -n "${NDT_CTRD_PID:-}" ]]; then ndt__stop_pid "$NDT_CTRD_PID"; fi
  # 3. Shims and anything else whose command line names our workdir, except
  #    the daemons we started ourselves (they get a SIGTERM below).
  for p in $(ndt__pids_mentioning "$NDT_WORKDIR"); do
    if [[ -n "${NDT_PID_NAME[$p]:-}" && "$(ndt__ppid "$p")" == "$$" ]]; then continue; fi
    kill -KILL "$p" 2>/dev/null
  done
  # 4. Container processes left behind, found through our namespace's cgroups.
  ndt__kill_cgroup_procs
  # 5. Remaining daemons, newest first.
  for ((i = ${#NDT_PIDS[@]} - 1; i >= 0; i--)); do ndt__stop_pid "${NDT_PIDS[i]}"; done
  for p in $(ndt__pids_mentioning "$NDT_WORKDIR"); do kill -KILL "$p" 2>/dev/null; done
  ndt__remove_cgroups

  # 6. containerd 1.6's runc v2 shim always puts its socket in /run/containerd/s
  #    (hard-coded), named sha256(<containerd address>/<namespace>/<id>); a
  #    killed shim leaves it behind. Remove exactly those of our containers,
  #    then the folders only if they are empty and did not exist before us.
  if [[ -n "${NDT_CTRD_SOCK:-}" && -n "$NDT_NS" ]]; then
    for c in $(printf '%s\n' "${ids[@]}" | sort -u); do
      p=/run/containerd/s/$(printf '%s' "$NDT_CTRD_SOCK/$c" | sha256sum | cut -d' ' -f1)
      [[ -S "$p" ]] && rm -f "$p"
    done
  fi
  if ((NDT_RUN_CONTAINERD_EXISTED == 0)); then
    rmdir /run/containerd/s /run/containerd 2>/dev/null
  fi

  # 7. Mounts below the workdir (the tier filesystems last: they are the
  #    oldest), loop devices of the tier images, then the workdir itself.
  ndt_unmount_all_under "$NDT_WORKDIR"
  ndt__detach_loops_under "$NDT_WORKDIR"
  if [[ "${NDT_KEEP:-0}" == 1 ]]; then
    printf '[%s] NDT_KEEP=1: keeping %s\n' "$(ndt_ts)" "$NDT_WORKDIR" >&2
  elif [[ -n "$(ndt__mounts_under "$NDT_WORKDIR")" ]]; then
    printf '[%s] WARNING: mounts remain below %s; not removing it\n' "$(ndt_ts)" "$NDT_WORKDIR" >&2
  else
    if ! rm -rf --one-file-system "$NDT_WORKDIR" 2>/dev/null; then
      # a test's `chattr +i` file outside a tier image
      chattr -R -f -i -a "$NDT_WORKDIR" 2>/dev/null
      rm -rf --one-file-system "$NDT_WORKDIR"
    fi
  fi
}

# ndt__loops_under DIR: "<device> <backing file>" of every loop device whose
# backing file is below DIR (also when that file was deleted).
ndt__loops_under() {
  local dir=$1 dev back
  losetup -n -l -O NAME,BACK-FILE 2>/dev/null | while read -r dev back; do
    back=${back% (deleted)}
    if [[ "$back" == "$dir"/* ]]; then echo "$dev $back"; fi
  done
}

# ndt__detach_loops_under DIR: detach them (a mount -o loop releases its
# device at umount by itself; this catches a failed or lazy one).
ndt__detach_loops_under() {
  local dev _
  while read -r dev _; do
    [[ -n "$dev" ]] || continue
    losetup -d "$dev" 2>/dev/null || printf '[%s] WARNING: cannot detach %s\n' "$(ndt_ts)" "$dev" >&2
  done < <(ndt__loops_under "$1")
}

# ndt_reap_workdir DIR: clean up after a run that could not (SIGKILL, power
# loss): kill what still runs for DIR, unmount, remove DIR. Needs DIR/ndt.env.
ndt_reap_workdir() {
  local dir
  dir=$(realpath "$1") || return 1
  [[ -f "$dir/ndt.env" ]] || { echo "$dir/ndt.env missing: not a workdir of lib.sh" >&2; return 1; }
  # shellcheck disable=SC1091
  source "$dir/ndt.env"
  NDT_WORKDIR=$dir
  NDT_CTRD_SOCK=$dir/containerd/containerd.sock
  NDT_CTRD_STATE=$dir/containerd/state
  NDT_CLEANED=0
  NDT_RUN_CONTAINERD_EXISTED=1
  ndt_cleanup
}

# ndt__stop_pid PID: SIGTERM, wait up to 10 s, then SIGKILL.
ndt__stop_pid() {
  local pid=$1 i
  kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    printf '[%s] %s (pid %s) ignored SIGTERM for 10 s; SIGKILL\n' "$(ndt_ts)" "${NDT_PID_NAME[$pid]:-process}" "$pid" >&2
    kill -KILL "$pid" 2>/dev/null
  fi
  wait "$pid" 2>/dev/null
  return 0
}

ndt__ppid() { awk '{ print $4 }' "/proc/$1/stat" 2>/dev/null; }

# ndt__pids_mentioning STRING: pids whose command line contains STRING, except
# this shell and its ancestors.
ndt__pids_mentioning() {
  local needle=$1 d pid cmd a
  local -A self=()
  a=$BASHPID
  while [[ -n "$a" && "$a" != 0 ]]; do
    self[$a]=1
    a=$(ndt__ppid "$a")
  done
  for d in /proc/[0-9]*; do
    pid=${d#/proc/}
    [[ -n "${self[$pid]:-}" ]] && continue
    cmd=$(tr '\0' ' ' 2>/dev/null <"$d/cmdline") || continue
    if [[ "$cmd" == *"$needle"* ]]; then echo "$pid"; fi
  done
}

ndt__kill_cgroup_procs() {
  [[ -n "$NDT_NS" ]] || return 0
  local f p
  for f in /sys/fs/cgroup/*/"$NDT_NS"/*/cgroup.procs /sys/fs/cgroup/"$NDT_NS"/*/cgroup.procs; do
    [[ -f "$f" ]] || continue
    while read -r p; do kill -KILL "$p" 2>/dev/null; done 2>/dev/null <"$f"
  done
}

ndt__remove_cgroups() {
  [[ -n "$NDT_NS" ]] || return 0
  local d
  for d in /sys/fs/cgroup/*/"$NDT_NS" /sys/fs/cgroup/"$NDT_NS"; do
    [[ -d "$d" ]] || continue
    # cgroup folders go with rmdir, deepest first.
    find "$d" -depth -type d -exec rmdir {} \; 2>/dev/null
  done
}

# ndt__mounts_under DIR: mount points at or below DIR, in mount order.
ndt__mounts_under() {
  local dir=$1 mp
  while read -r _ _ _ _ mp _; do
    mp=$(printf '%b' "${mp//\\/\\0}") # mountinfo escapes space, tab, \n and \ in octal
    if [[ "$mp" == "$dir" || "$mp" == "$dir"/* ]]; then echo "$mp"; fi
  done </proc/self/mountinfo
}

# ndt_unmount_all_under DIR: unmount everything at or below DIR, newest first;
# lazily as a last resort.
ndt_unmount_all_under() {
  local dir=$1 mp left _
  for _ in 1 2 3 4 5; do
    left=$(ndt__mounts_under "$dir")
    [[ -z "$left" ]] && return 0
    while read -r mp; do umount "$mp" 2>/dev/null; done < <(tac <<<"$left")
    [[ -z "$(ndt__mounts_under "$dir")" ]] && return 0
    sleep 0.2
  done
  while read -r mp; do
    printf '[%s] lazy unmount of busy %s\n' "$(ndt_ts)" "$mp" >&2
    umount -l "$mp" 2>/dev/null
  done < <(ndt__mounts_under "$dir" | tac)
}

# ndt_spawn NAME LOGFILE CMD...: start a daemon in its own session (so that
# Ctrl-C reaches only the test script, whose trap then stops it in order).
# Sets NDT_LAST_PID.
ndt_spawn() {
  local name=$1 log=$2
  shift 2
  setsid "$@" >>"$log" 2>&1 </dev/null &
  NDT_LAST_PID=$!
  NDT_PIDS+=("$NDT_LAST_PID")
  NDT_PID_NAME[$NDT_LAST_PID]=$name
}

# ndt_free_port: a TCP port on 127.0.0.1 that nothing listens on.
ndt_free_port() {
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((20000 + (RANDOM * 32768 + RANDOM) % 40000))
    if [[ -z "$(ss -Htan "sport = :$p" 2>/dev/null)" ]]; then
      echo "$p"
      return 0
    fi
  done
  ndt_fail "no free TCP port found"
}

# ---------------------------------------------------------------------------
# registry

# registry_start: docker-registry on 127.0.0.1:<free port>, storage in the
# workdir. Sets NDT_REGISTRY (host:port) and NDT_REGISTRY_PID.
registry_start() {
  local dir=$NDT_WORKDIR/registry attempt port
  mkdir -p "$dir/data"
  for attempt in 1 2 3; do
    port=$(ndt_free_port)
    cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $dir/data
  delete:
    enabled: true
http:
  addr: 127.0.0.1:$port
EOF
    ndt_spawn registry "$NDT_WORKDIR/logs/registry.log" docker-registry serve "$dir/config.yml"
    NDT_REGISTRY_PID=$NDT_LAST_PID
    local deadline=$((SECONDS + 20))
    while kill -0 "$NDT_REGISTRY_PID" 2>/dev/null && ((SECONDS < deadline)); do
      if curl -fsS -o /dev/null "http://127.0.0.1:$port/v2/" 2>/dev/null; then
        NDT_REGISTRY=127.0.0.1:$port
        ndt_log "registry up at http://$NDT_REGISTRY (pid $NDT_REGISTRY_PID)"
        return 0
      fi
      sleep 0.1
    done
    ndt__stop_pid "$NDT_REGISTRY_PID"
    ndt_log "registry did not come up on port $port (attempt $attempt)"
  done
  ndt_fail "docker-registry did not start; see $NDT_WORKDIR/logs/registry.log"
}

# ---------------------------------------------------------------------------
# ndocker-snapshotter daemon

# ndocker_start [EXTRA_ARGS...]: start "$NDOCKER_BIN" --root <workdir>/ndocker
# --address <workdir>/run/ndocker.sock EXTRA_ARGS... and wait for its socket.
# The extra args are remembered for ndocker_restart. Sets NDOCKER_ROOT,
# NDOCKER_SOCK, NDOCKER_PID, NDOCKER_LOG.
ndocker_start() {
  [[ -x "$NDOCKER_BIN" ]] || ndt_fail "NDOCKER_BIN=$NDOCKER_BIN is not an executable; build it first"
  NDOCKER_ROOT=${NDOCKER_ROOT:-$NDT_WORKDIR/ndocker}
  NDOCKER_SOCK=${NDOCKER_SOCK:-$NDT_WORKDIR/run/ndocker.sock}
  NDOCKER_LOG=$NDT_WORKDIR/logs/ndocker.log
  NDOCKER_ARGS=("$@")
  # Never pick up a host config (/etc/ndocker-snapshotter/config.toml) or
  # follow the host's containerd: unless the caller passes --config, LASS
  # follows this test's containerd and everything else is default, except
  # that hot layers are built only on request: a build and demotion after a
  # container's trace run in the background and would move layers and change
  # mounts behind a test's back (the tests of hot layers choose themselves).
  # Debug logs help bug reports.
  if [[ " $* " != *" --config "* && " $* " != *" --config="* ]]; then
    printf '[lass]\ncontainerd_root = "%s"\n[hbcsa]\npromote = "manual"\n' "$(containerd_root_dir)" \
      >"$NDT_WORKDIR/ndocker-config.toml"
    NDOCKER_ARGS+=(--config "$NDT_WORKDIR/ndocker-config.toml")
  fi
  if [[ " $* " != *" --log-level"* ]]; then NDOCKER_ARGS+=(--log-level "${NDT_NDOCKER_LOG_LEVEL:-debug}"); fi
  mkdir -p "$(dirname "$NDOCKER_SOCK")"
  chmod 0700 "$(dirname "$NDOCKER_SOCK")"
  ndt_tiers_mount
  ndocker__launch
}

# ndt_tiers_mount: give each tier that ndocker_start's arguments leave at its
# default path (<root>/fast, <root>/slow: no --fast-path/--slow-path) a
# filesystem of its own, unless NDT_SAME_FS_TIERS=1:
#   fast: tmpfs, size NDT_FAST_TIER_SIZE (default 256M), mode 0700;
#   slow: ext4 (mkfs.ext4 -m 0: free space is what the root daemon can use)
#         on a sparse image <workdir>/tier-images/<root name>-slow.img of
#         NDT_SLOW_TIER_SIZE (default 768M), mounted -o loop (autoclear).
# A tier already mounted there (a second ndocker_start on the same root) is
# kept. The cleanup unmounts them and detaches the loop devices; so do
# reap.sh and `ndt_unmount_all_under <root>`.
ndt_tiers_mount() {
  if [[ "${NDT_SAME_FS_TIERS:-0}" == 1 ]]; then
    ndt_log "NDT_SAME_FS_TIERS=1: both tiers are plain dirs on the workdir's filesystem ($(findmnt -n -o FSTYPE --target "$NDT_WORKDIR"))"
    return 0
  fi
  mkdir -p "$NDOCKER_ROOT"
  chmod 0700 "$NDOCKER_ROOT"
  local t dir
  for t in fast slow; do
    dir=$(ndocker_tier_dir "$t")
    [[ "$dir" == "$NDOCKER_ROOT/$t" ]] || continue # the caller chose the path
    if mountpoint -q "$dir"; then
      ndt_log "$t tier: $(findmnt -n -o FSTYPE,SIZE,SOURCE --target "$dir" | tr -s ' ') already mounted at $dir"
      continue
    fi
    mkdir -p "$dir"
    case $t in
      fast)
        mount -t tmpfs -o "size=${NDT_FAST_TIER_SIZE:-256M},mode=0700,nosuid,nodev" tmpfs "$dir" ||
          ndt_fail "cannot mount the fast tier's tmpfs on $dir"
        ;;
      slow)
        local img
        img=$NDT_WORKDIR/tier-images/$(basename "$NDOCKER_ROOT")-slow.img
        mkdir -p "$NDT_WORKDIR/tier-images"
        [[ -z "$(losetup -n -O NAME -j "$img" 2>/dev/null)" ]] ||
          ndt_fail "ndt_tiers_mount: $img is still attached to a loop device: $(losetup -j "$img")"
        rm -f "$img"
        truncate -s "${NDT_SLOW_TIER_SIZE:-768M}" "$img" || ndt_fail "bad NDT_SLOW_TIER_SIZE=${NDT_SLOW_TIER_SIZE:-}"
        mkfs.ext4 -q -F -m 0 -L ndt-slow "$img" >"$NDT_WORKDIR/logs/mkfs-slow.out" 2>&1 ||
          { cat "$NDT_WORKDIR/logs/mkfs-slow.out" >&2; ndt_fail "mkfs.ext4 of the slow tier's image $img failed"; }
        mount -t ext4 -o loop "$img" "$dir" || ndt_fail "cannot mount the slow tier's image $img on $dir"
        chmod 0700 "$dir"
        ;;
    esac
    ndt_log "$t tier: $(findmnt -n -o FSTYPE,SIZE,SOURCE --target "$dir" | tr -s ' ') at $dir"
  done
}

# ndt_tier_fstype fast|slow: the filesystem type of a tier (tmpfs, ext4, ...).
ndt_tier_fstype() { findmnt -n -o FSTYPE --target "$(ndocker_tier_dir "$1")"; }

ndocker__launch() {
  printf '\n===== %s start: %s --root %s --address %s %s\n' "$(date -Is)" "$NDOCKER_BIN" \
    "$NDOCKER_ROOT" "$NDOCKER_SOCK" "${NDOCKER_ARGS[*]}" >>"$NDOCKER_LOG"
  ndt_spawn ndocker "$NDOCKER_LOG" "$NDOCKER_BIN" --root "$NDOCKER_ROOT" --address "$NDOCKER_SOCK" "${NDOCKER_ARGS[@]}"
  NDOCKER_PID=$NDT_LAST_PID
  # Wait for a listener, not just the socket file (a killed daemon leaves one).
  local deadline=$((SECONDS + 30))
  until ndt__socket_accepts "$NDOCKER_SOCK"; do
    if ! kill -0 "$NDOCKER_PID" 2>/dev/null; then
      local st=0
      wait "$NDOCKER_PID" || st=$?
      ndt_fail "ndocker-snapshotter exited (status $st) before listening on $NDOCKER_SOCK; see $NDOCKER_LOG"
    fi
    ((SECONDS < deadline)) || ndt_fail "ndocker-snapshotter does not accept connections on $NDOCKER_SOCK after 30s"
    sleep 0.05
  done
  ndt_log "ndocker-snapshotter up (pid $NDOCKER_PID, root $NDOCKER_ROOT, socket $NDOCKER_SOCK)"
}

# ndocker_kill9: SIGKILL the daemon and wait for it to be gone.
ndocker_kill9() {
  kill -KILL "$NDOCKER_PID" 2>/dev/null || ndt_fail "ndocker-snapshotter (pid $NDOCKER_PID) was not running"
  wait "$NDOCKER_PID" 2>/dev/null || true
  ndt_log "ndocker-snapshotter (pid $NDOCKER_PID) killed with SIGKILL"
}

# ndocker_stop: SIGTERM (SIGKILL after 10 s).
ndocker_stop() { ndt__stop_pid "$NDOCKER_PID"; }

# ndocker_restart: start again on the same root, socket and extra args (stops
# it first if it still runs). A socket file left by a killed daemon is the
# daemon's to deal with.
ndocker_restart() {
  if kill -0 "$NDOCKER_PID" 2>/dev/null; then ndocker_stop; fi
  ndocker__launch
  # A running containerd reconnects by itself, after a backoff (capped at
  # 3 s); until then its calls to the snapshotter fail with "connection
  # refused". Wait, so that the caller's next ctr command does not.
  if [[ -n "${NDT_CTRD_PID:-}" ]] && kill -0 "$NDT_CTRD_PID" 2>/dev/null; then
    ndt_wait_until 20 "containerd to reach the restarted snapshotter" ndocker__reachable_from_containerd
  fi
}

# ndocker_die_at POINT CMD...: restart the daemon armed to die (kill -9
# itself) at fault point POINT, run CMD (which must fail: the daemon died
# under it), check the log says so, and start the daemon again unarmed.
# Needs a build with -DNDOCKER_FAULT_POINTS=ON (NDT_FAULT_POINTS).
ndocker_die_at() {
  local point=$1
  shift
  export NDOCKER_FAULT_POINT=$point
  ndocker_restart
  unset NDOCKER_FAULT_POINT
  if "$@" >/dev/null 2>&1; then ndt_fail "'$*' returned although the daemon was to die at $point"; fi
  wait "$NDOCKER_PID" 2>/dev/null || true
  assert_grep "fault point reached\" point=$point" "$NDOCKER_LOG" "the daemon died at $point"
  ndocker_restart
}

ndocker__reachable_from_containerd() {
  ctrw snapshots --snapshotter "$NDOCKER_SNAPSHOTTER_NAME" ls >/dev/null 2>&1
}

# ndt__socket_accepts SOCK: a unix stream connect succeeds.
ndt__socket_accepts() {
  curl -s -o /dev/null --max-time 1 --unix-socket "$1" http://x/ 2>/dev/null
  local rc=$?
  # 7 = could not connect; anything else means something accepted the connection.
  ((rc != 7))
}

# ndocker_tier_dir fast|slow: the tier's directory (--fast-path/--slow-path
# when given to ndocker_start, else <root>/fast and <root>/slow).
ndocker_tier_dir() {
  local flag=--$1-path i
  for ((i = 0; i < ${#NDOCKER_ARGS[@]}; i++)); do
    case ${NDOCKER_ARGS[i]} in
      "$flag") echo "${NDOCKER_ARGS[i + 1]}"; return 0 ;;
      "$flag"=*) echo "${NDOCKER_ARGS[i]#*=}"; return 0 ;;
    esac
  done
  echo "$NDOCKER_ROOT/$1"
}

# ndocker_tiers_empty: no snapshot folder on either tier.
ndocker_tiers_empty() { [[ -z "$(ndocker_snapshot_dirs)" ]]; }

# ndocker_assert_gc_clean [TIMEOUT_S]: after every image and container is gone,
# containerd's GC (List, Remove, Cleanup) must leave no snapshot known to
# containerd, no snapshot folder on either tier, no short link in <root>/l and
# nothing in either tier's staging folder.
ndocker_assert_gc_clean() {
  local timeout=${1:-30} t
  ndt_wait_until "$timeout" "ctr snapshots --snapshotter $NDOCKER_SNAPSHOTTER_NAME ls to be empty" \
    ctr_snapshots_empty "$NDOCKER_SNAPSHOTTER_NAME"
  ndt_pass "ctr snapshots --snapshotter $NDOCKER_SNAPSHOTTER_NAME ls is empty"
  if ! ndt_wait_until_quiet "$timeout" ndocker_tiers_empty; then
    ndt_fail "snapshot folders left on the tiers ${timeout}s after GC (List/Remove/Cleanup): $(ndocker_snapshot_dirs | tr '\n' ' ')"
  fi
  ndt_pass "no snapshot folder in $(ndocker_tier_dir fast)/snapshots or $(ndocker_tier_dir slow)/snapshots"
  assert_eq "" "$(find "$NDOCKER_ROOT/l" -mindepth 1 -maxdepth 1 2>/dev/null)" "no short link left in $NDOCKER_ROOT/l"
  for t in fast slow; do
    t=$(ndocker_tier_dir "$t")
    assert_eq "" "$(find "$t/staging" -mindepth 1 -maxdepth 1 2>/dev/null)" "nothing left in $t/staging"
  done
  t=$(ndocker_tier_dir fast)/hot
  if [[ -n "$(find "$t" -mindepth 1 -maxdepth 1 2>/dev/null)" ]]; then
    ndt_log "note: $t is not empty: $(find "$t" -mindepth 1 -maxdepth 1 -printf '%P ')"
  fi
}

# ctr_snapshots_empty SNAPSHOTTER: containerd lists no snapshot for it.
ctr_snapshots_empty() { [[ -z "$(ctrw snapshots --snapshotter "$1" ls | awk 'NR > 1')" ]]; }

# ndocker_snapshot_dirs: "<tier>/<id>" for every snapshot folder on either
# tier (the folder is "$(ndocker_tier_dir <tier>)/snapshots/<id>").
ndocker_snapshot_dirs() {
  local t d
  for t in fast slow; do
    d=$(ndocker_tier_dir "$t")/snapshots
    [[ -d "$d" ]] || continue
    find "$d" -mindepth 1 -maxdepth 1 -printf "$t/%P\n"
  done | LC_ALL=C sort
}

# ---------------------------------------------------------------------------
# ndockerctl and the mover (issue 8)

# ndockerctlw ARGS...: ndockerctl against the test daemon.
ndockerctlw() {
  [[ -x "$NDOCKERCTL_BIN" ]] || ndt_fail "NDOCKERCTL_BIN=$NDOCKERCTL_BIN is not an executable; build it first"
  "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" "$@"
}

# ndocker_ls_json: `ndockerctl ls --json` as one JSON array.
ndocker_ls_json() {
  local out
  out=$(ndockerctlw ls --json) || ndt_fail "ndockerctl ls --json failed: $out"
  jq -s . <<<"$out" || ndt_fail "ndockerctl ls --json printed no JSON lines: $out"
}

# ndocker_snapshot_json LS_JSON CHAINID_OR_KEY: the committed snapshot whose
# key is it or ends with /it (as Migrate matches a chainID).
ndocker_snapshot_json() {
  jq -c --arg c "$2" '[.[] | select(.kind == "committed" and (.key == $c or (.key | endswith("/" + $c))))][0] // empty' <<<"$1"
}

# ndt_base36 N: N in base 36 (lower case), as <root>/l/<short id> names it.
ndt_base36() {
  local n=$1 digits=0123456789abcdefghijklmnopqrstuvwxyz out=""
  ((n == 0)) && { echo 0; return; }
  while ((n > 0)); do
    out=${digits:n % 36:1}$out
    n=$((n / 36))
  done
  echo "$out"
}

# ndocker_current_fs ID: the fs dir a new mount of snapshot ID uses (its
# <root>/l/<base36 id> link, resolved).
ndocker_current_fs() {
  readlink -e "$NDOCKER_ROOT/l/$(ndt_base36 "$1")" || ndt_fail "link $NDOCKER_ROOT/l/$(ndt_base36 "$1") of snapshot $1 does not resolve"
}

# ---------------------------------------------------------------------------
# containerd

# containerd_start [--cri | --cri-no-annotations] [--no-ndocker]: containerd
# with its own root, state, socket and namespace-independent config. The cri
# plugin is disabled unless --cri (snapshot annotations on:
# disable_snapshot_annotations = false) or --cri-no-annotations (containerd's
# default, true: only containerd.io/snapshot.ref reaches the snapshotter).
# CRI downloads max_concurrent_downloads = 3 layers at a time per pull
# (written out, so the tests do not depend on the default). Registries the CRI
# plugin reaches over plain http: NDT_REGISTRY and, when set before this call,
# NDT_THROTTLED_REGISTRY (throttle_start).
# The cri plugin unpacks with $NDT_CRI_SNAPSHOTTER (default: ndocker's name).
# Pod sandboxes (cri_runp) run $NDT_REGISTRY/pause:3.6 (cri_pause_image_push)
# and get no CNI network: the CNI dirs are empty dirs of the workdir, pods use
# the host network (cri_pod_config_write).
# Sets NDT_CTRD_SOCK, NDT_CTRD_ROOT, NDT_CTRD_STATE, NDT_CTRD_PID, NDT_CTRD_CRI.
containerd_start() {
  local cri=0 ndocker=1 annotations=true a
  for a in "$@"; do
    case $a in
      --cri) cri=1 ;;
      --cri-no-annotations) cri=1 annotations=false ;;
      --no-ndocker) ndocker=0 ;;
      *) ndt_fail "containerd_start: unknown option $a" ;;
    esac
  done
  NDT_CTRD_CRI=$cri
  local dir=$NDT_WORKDIR/containerd
  # NDT_CTRD_ROOT_DIR puts containerd's root (content store, overlayfs
  # snapshots) elsewhere, e.g. on a benchmark tier; state stays in the workdir.
  NDT_CTRD_ROOT=$(containerd_root_dir)
  NDT_CTRD_STATE=$dir/state
  NDT_CTRD_SOCK=$dir/containerd.sock
  NDT_CTRD_CONFIG=$dir/config.toml
  mkdir -p "$NDT_CTRD_ROOT" "$NDT_CTRD_STATE" "$dir/opt"
  local disabled='"io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"'
  ((cri)) || disabled+=', "io.containerd.grpc.v1.cri"'
  {
    cat <<EOF
version = 2
root = "$NDT_CTRD_ROOT"
state = "$NDT_CTRD_STATE"
disabled_plugins = [$disabled]

[grpc]
  address = "$NDT_CTRD_SOCK"

[ttrpc]
  address = ""

[debug]
  address = ""
  level = "info"

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "$dir/opt"
EOF
    if ((ndocker)); then
      cat <<EOF

[proxy_plugins.$NDOCKER_SNAPSHOTTER_NAME]
  type = "snapshot"
  address = "${NDOCKER_SOCK:-$NDT_WORKDIR/run/ndocker.sock}"
EOF
    fi
    if ((cri)); then
      cat <<EOF

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$NDT_REGISTRY/pause:3.6"
  max_concurrent_downloads = 3
  # CRI gives pause containers oom_score_adj -998, which needs
  # CAP_SYS_RESOURCE (runc: "failed to update /proc/self/oom_score_adj:
  # Permission denied" where root lacks it, e.g. in a container): never
  # below containerd's own score instead.
  restrict_oom_score_adj = true
[plugins."io.containerd.grpc.v1.cri".cni]
  # the defaults (/etc/cni/net.d, created at startup, and /opt/cni/bin) are the host's
  bin_dir = "$dir/cni/bin"
  conf_dir = "$dir/cni/net.d"
[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "${NDT_CRI_SNAPSHOTTER:-$NDOCKER_SNAPSHOTTER_NAME}"
  disable_snapshot_annotations = $([[ $annotations == true ]] && echo false || echo true)
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"
[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  # runc's state in the workdir (as ctr_run's --runc-root), not /run/containerd/runc
  Root = "$NDT_WORKDIR/runc"
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."$NDT_REGISTRY"]
  endpoint = ["http://$NDT_REGISTRY"]
EOF
      if [[ -n "${NDT_THROTTLED_REGISTRY:-}" ]]; then
        cat <<EOF
[plugins."io.containerd.grpc.v1.cri".registry.mirrors."$NDT_THROTTLED_REGISTRY"]
  endpoint = ["http://$NDT_THROTTLED_REGISTRY"]
EOF
      fi
    fi
  } >"$NDT_CTRD_CONFIG"
  ndt_spawn containerd "$NDT_WORKDIR/logs/containerd.log" containerd --config "$NDT_CTRD_CONFIG"
  NDT_CTRD_PID=$NDT_LAST_PID
  local deadline=$((SECONDS + 30))
  until ctrw version >/dev/null 2>&1; do
    if ! kill -0 "$NDT_CTRD_PID" 2>/dev/null; then
      wait "$NDT_CTRD_PID"
      ndt_fail "containerd exited (status $?) during startup; see $NDT_WORKDIR/logs/containerd.log"
    fi
    ((SECONDS < deadline)) || ndt_fail "containerd did not answer 'ctr version' within 30s"
    sleep 0.1
  done
  ndt_log "containerd up (pid $NDT_CTRD_PID, socket $NDT_CTRD_SOCK)"
}

# ndt_start_and_pull [NDOCKER_ARGS...]: the common start of a test: registry,
# test image, ndocker (with NDOCKER_ARGS), containerd, and a pull of the image
# through ndocker. Sets REF.
ndt_start_and_pull() {
  ndt_step "registry, test image, daemons"
  registry_start
  image_build_and_push
  REF=$NDT_IMAGE_REF
  ndocker_start "$@"
  containerd_start
  ctr_pull "$NDOCKER_SNAPSHOTTER_NAME" "$REF"
}

# containerd_root_dir: containerd's root as containerd_start sets it (known
# before containerd runs, e.g. for the snapshotter's config):
# NDT_CTRD_ROOT_DIR, else <workdir>/containerd/root.
containerd_root_dir() { echo "${NDT_CTRD_ROOT_DIR:-$NDT_WORKDIR/containerd/root}"; }

# containerd_stop: SIGTERM containerd (SIGKILL after 10 s); running shims
# and containers are left alone, as on a real node.
containerd_stop() { ndt__stop_pid "$NDT_CTRD_PID"; }

# ctrw ARGS...: ctr against the test containerd and the test namespace.
ctrw() {
  [[ "${NDT_VERBOSE:-0}" == 1 ]] && printf '+ ctr %s\n' "$*" >&2
  ctr --address "$NDT_CTRD_SOCK" --namespace "$NDT_NS" "$@"
}

# ctrw_timeout SECONDS ARGS...: ctrw, killed after SECONDS (for the cleanup).
ctrw_timeout() {
  local t=$1
  shift
  timeout "$t" ctr --address "$NDT_CTRD_SOCK" --namespace "$NDT_NS" "$@"
}

# ctr_run ARGS...: `ctr run` with FIFOs and the runc root inside the workdir
# (ctr's defaults are below /run/containerd).
ctr_run() {
  ctrw run --fifo-dir "$NDT_WORKDIR/fifo" --runc-root "$NDT_WORKDIR/runc" "$@"
}

# ctr_exec ARGS...: `ctr task exec` with FIFOs inside the workdir.
ctr_exec() {
  ctrw task exec --fifo-dir "$NDT_WORKDIR/fifo" "$@"
}

# ctr_pull SNAPSHOTTER REF: plain-HTTP pull and unpack; output in a log file.
ctr_pull() {
  local sn=$1 ref=$2 log=$NDT_WORKDIR/logs/pull-$1.out
  if ! ctrw image pull --plain-http --snapshotter "$sn" "$ref" >"$log" 2>&1; then
    cat "$log" >&2
    ndt_fail "ctr image pull --snapshotter $sn $ref failed"
  fi
}

# ctr_task_status ID: the STATUS column of `ctr task ls` for ID (empty if none).
ctr_task_status() {
  ctrw task ls | awk -v id="$1" 'NR > 1 && $1 == id { print $3 }'
}
ctr_task_stopped() { [[ "$(ctr_task_status "$1")" == STOPPED ]]; }

# ctr_remove_container ID: task kill, its stop awaited, task delete, container rm.
ctr_remove_container() {
  ctrw task kill -s SIGKILL "$1"
  ndt_wait_until 20 "task $1 to stop" ctr_task_stopped "$1"
  ctrw task delete "$1" >/dev/null
  ctrw container rm "$1"
}

# ---------------------------------------------------------------------------
# test image

# What the test image holds, for the tests to check against.
NDT_GREETING_L1="hello from layer 1"
NDT_GREETING="hello from layer 3 (replaces layer 1)"
NDT_DATA_A="data a from layer 2"
NDT_DATA_B="data b from layer 2"
NDT_DATA_C="data c from layer 4 (opaque /data)"
NDT_DATA_D="data d from layer 4"
NDT_DEEP="deep file from layer 2"
NDT_HL="hardlinked content"
NDT_GONE="deleted again in layer 3"
NDT_XATTR_USER_NAME=user.ndocker NDT_XATTR_USER_VALUE=hello
NDT_XATTR_TRUSTED_NAME=trusted.ndocker NDT_XATTR_TRUSTED_VALUE=tval
NDT_APP="app layer 5"

# image_build LAYOUT TAG: build the test image with umoci into the OCI layout
# LAYOUT (created). Layers, each with a history entry:
#  1 busybox-static as /bin/busybox, applet symlinks, /etc/{greeting,passwd,group}, /tmp
#  2 /data/{a,b,sub/x}, /etc/gone, nested /opt/nest/deeper/file with user.* and
#    trusted.* xattrs, relative and absolute symlinks, a hardlink pair, a setuid
#    busybox copy, files owned by 1000:1000 and 123:456
#  3 /etc/gone deleted (whiteout .wh.gone), /etc/greeting replaced
#  4 /data made opaque (.wh..wh..opq) with new content: layer tar written with
#    GNU tar and added by `umoci raw add-layer` (umoci repack never emits opaque
#    markers: it writes one .wh.<name> per deleted entry)
#  5 /app/run.sh and /etc/motd, repacked from a fresh unpack
# The layer tars are checked for the whiteouts, the opaque marker and the xattrs.
image_build() {
  local layout=$1 tag=$2
  local work=$NDT_WORKDIR/imagebuild
  local img="$layout:$tag" b=$work/bundle r
  rm -rf "$work"
  mkdir -p "$work"
  umoci init --layout "$layout"
  umoci new --image "$img"
  umoci unpack --image "$img" "$b" >/dev/null
  r=$b/rootfs

  # layer 1
  mkdir -p "$r"/{bin,etc,tmp,root,proc,sys,dev}
  chmod 1777 "$r/tmp"
  chmod 0700 "$r/root"
  cp /bin/busybox "$r/bin/busybox"
  chmod 0755 "$r/bin/busybox"
  local applet
  for applet in $(/bin/busybox --list); do
    [[ "$applet" == busybox || -e "$r/bin/$applet" ]] || ln -s busybox "$r/bin/$applet"
  done
  printf '%s\n' "$NDT_GREETING_L1" >"$r/etc/greeting"
  printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n' >"$r/etc/passwd"
  printf 'root:x:0:\nuser:x:1000:\n' >"$r/etc/group"
  umoci repack --refresh-bundle --history.created_by "ndt layer 1: busybox-static base" --image "$img" "$b" >/dev/null

  # layer 2
  mkdir -p "$r/data/sub" "$r/opt/nest/deeper" "$r/opt/hl" "$r/opt/owned" "$r/home/user"
  printf '%s\n' "$NDT_DATA_A" >"$r/data/a"
  printf '%s\n' "$NDT_DATA_B" >"$r/data/b"
  printf 'x\n' >"$r/data/sub/x"
  printf '%s\n' "$NDT_GONE" >"$r/etc/gone"
  printf '%s\n' "$NDT_DEEP" >"$r/opt/nest/deeper/file"
  setfattr -n "$NDT_XATTR_USER_NAME" -v "$NDT_XATTR_USER_VALUE" "$r/opt/nest/deeper/file"
  setfattr -n "$NDT_XATTR_TRUSTED_NAME" -v "$NDT_XATTR_TRUSTED_VALUE" "$r/opt/nest/deeper/file"
  ln -s greeting "$r/etc/greeting.rel"
  ln -s /etc/greeting "$r/etc/greeting.abs"
  ln -s ../../etc "$r/opt/nest/etc-link"
  printf '%s\n' "$NDT_HL" >"$r/opt/hl/one"
  ln "$r/opt/hl/one" "$r/opt/hl/two"
  cp /bin/busybox "$r/bin/suid-busybox"
  chmod 4755 "$r/bin/suid-busybox"
  printf 'owned by 1000\n' >"$r/home/user/profile"
  chown -R 1000:1000 "$r/home/user"
  chmod 0750 "$r/home/user"
  printf 'owned by 123:456\n' >"$r/opt/owned/f123"
  chown 123:456 "$r/opt/owned/f123"
  chmod 0640 "$r/opt/owned/f123"
  mkdir "$r/opt/owned/sgid-dir"
  chown 1000:1000 "$r/opt/owned/sgid-dir"
  chmod 2775 "$r/opt/owned/sgid-dir"
  umoci repack --refresh-bundle --history.created_by "ndt layer 2: data, xattrs, links, owners, setuid" --image "$img" "$b" >/dev/null

  # layer 3
  rm "$r/etc/gone"
  printf '%s\n' "$NDT_GREETING" >"$r/etc/greeting"
  umoci repack --refresh-bundle --history.created_by "ndt layer 3: whiteout /etc/gone, replace /etc/greeting" --image "$img" "$b" >/dev/null

  # layer 4: opaque /data, written by hand
  local l4=$work/layer4
  mkdir -p "$l4/data/newsub"
  : >"$l4/data/.wh..wh..opq"
  printf '%s\n' "$NDT_DATA_C" >"$l4/data/c"
  printf '%s\n' "$NDT_DATA_D" >"$l4/data/newsub/d"
  chmod 0755 "$l4/data" "$l4/data/newsub"
  chmod 0644 "$l4/data/c" "$l4/data/newsub/d" "$l4/data/.wh..wh..opq"
  tar --format=pax --sort=name --numeric-owner --owner=0 --group=0 -C "$l4" -cf "$work/layer4.tar" data
  umoci raw add-layer --history.created_by "ndt layer 4: /data replaced (opaque)" --image "$img" "$work/layer4.tar"

  # layer 5, from a fresh unpack (exercises umoci's own opaque handling too)
  rm -rf "$b"
  umoci unpack --image "$img" "$b" >/dev/null
  [[ ! -e "$r/data/a" && -f "$r/data/c" ]] || ndt_fail "image build: umoci unpack did not apply the opaque /data of layer 4"
  mkdir -p "$r/app"
  printf '#!/bin/sh\necho "%s"\n' "$NDT_APP" >"$r/app/run.sh"
  chmod 0755 "$r/app/run.sh"
  printf 'motd\n' >"$r/etc/motd"
  umoci repack --refresh-bundle --history.created_by "ndt layer 5: app" --image "$img" "$b" >/dev/null
  umoci config --image "$img" --config.env PATH=/bin --config.workingdir / \
    --config.cmd /bin/sh --config.cmd -c --config.cmd 'cat /etc/greeting'
  image__verify_layers "$layout" "$tag"
  rm -rf "$work"
}

# image__layer_blobs LAYOUT TAG: "<mediaType> <path>" per layer, in order.
image__layer_blobs() {
  local layout=$1 tag=$2 m
  m=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$layout/index.json")
  [[ -n "$m" ]] || ndt_fail "tag $tag not found in $layout/index.json"
  jq -r '.layers[] | .mediaType + " " + .digest' "$layout/blobs/sha256/${m#sha256:}" |
    while read -r mt d; do echo "$mt $layout/blobs/sha256/${d#sha256:}"; done
}

# image__tar_list MEDIATYPE BLOB [tar args]: verbose listing, xattrs marked.
image__tar() {
  local mt=$1 blob=$2
  shift 2
  case $mt in
    *+gzip) tar --xattrs --xattrs-include='*' -z "$@" -f "$blob" ;;
    *.tar) tar --xattrs --xattrs-include='*' "$@" -f "$blob" ;;
    *) ndt_fail "unexpected layer media type $mt" ;;
  esac
}

# Check that the layer tars really hold what the tests rely on.
image__verify_layers() {
  local layout=$1 tag=$2 n=0 mt blob
  local -a listing=()
  while read -r mt blob; do
    n=$((n + 1))
    listing[n]=$(image__tar "$mt" "$blob" -tv)
    case $n in
      2)
        # xattrs are PAX records SCHILY.xattr.<name>=<value>
        local raw
        raw=$(if [[ $mt == *+gzip ]]; then zcat "$blob"; else cat "$blob"; fi | tr -c '[:print:]\n' '\n')
        grep -qF "SCHILY.xattr.$NDT_XATTR_USER_NAME=$NDT_XATTR_USER_VALUE" <<<"$raw" ||
          ndt_fail "image build: layer 2 tar lacks the xattr $NDT_XATTR_USER_NAME"
        grep -qF "SCHILY.xattr.$NDT_XATTR_TRUSTED_NAME=$NDT_XATTR_TRUSTED_VALUE" <<<"$raw" ||
          ndt_fail "image build: layer 2 tar lacks the xattr $NDT_XATTR_TRUSTED_NAME"
        grep -Eq '^-rwsr-xr-x .* bin/suid-busybox$' <<<"${listing[n]}" ||
          ndt_fail "image build: layer 2 tar lacks the setuid bin/suid-busybox"
        grep -Eq '^h.* opt/hl/(one|two) link to opt/hl/(one|two)$' <<<"${listing[n]}" ||
          ndt_fail "image build: layer 2 tar has no hardlink entry for opt/hl"
        grep -Eq ' 123/456 .* opt/owned/f123$' <<<"${listing[n]}" ||
          ndt_fail "image build: layer 2 tar: opt/owned/f123 not owned by 123/456"
        ;;
      3)
        grep -Eq ' etc/\.wh\.gone$' <<<"${listing[n]}" || ndt_fail "image build: layer 3 tar has no etc/.wh.gone whiteout"
        ;;
      4)
        grep -Eq ' data/\.wh\.\.wh\.\.opq$' <<<"${listing[n]}" || ndt_fail "image build: layer 4 tar has no data/.wh..wh..opq opaque marker"
        ;;
    esac
  done < <(image__layer_blobs "$layout" "$tag")
  ((n >= 5)) || ndt_fail "image build: expected 5 layers, got $n"
  local m cfg hist
  m=$(jq -r --arg t "$tag" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$layout/index.json")
  cfg=$(jq -r .config.digest "$layout/blobs/sha256/${m#sha256:}")
  hist=$(jq '[.history[] | select(.empty_layer != true and (.created_by // "") != "")] | length' "$layout/blobs/sha256/${cfg#sha256:}")
  ((hist == n)) || ndt_fail "image build: $hist non-empty history entries with created_by for $n layers"
  # shellcheck disable=SC2034 # used by the tests
  NDT_IMAGE_LAYERS=$n
  ndt_log "image $layout:$tag: $n layers with history; verified xattrs, setuid, hardlink, owners (layer 2), whiteout (3), opaque marker (4)"
}

# image_push LAYOUT TAG NAME: push to the test registry; sets NDT_IMAGE_REF.
image_push() {
  local layout=$1 tag=$2 name=$3
  NDT_IMAGE_REF=$NDT_REGISTRY/$name:$tag
  TMPDIR=$NDT_WORKDIR/tmp skopeo --insecure-policy copy -q --dest-tls-verify=false \
    "oci:$layout:$tag" "docker://$NDT_IMAGE_REF" >"$NDT_WORKDIR/logs/skopeo.out" 2>&1 ||
    { cat "$NDT_WORKDIR/logs/skopeo.out" >&2; ndt_fail "skopeo copy to $NDT_IMAGE_REF failed"; }
  curl -fsS -o /dev/null -H 'Accept: application/vnd.oci.image.manifest.v1+json' \
    "http://$NDT_REGISTRY/v2/$name/manifests/$tag" || ndt_fail "registry does not serve $name:$tag after push"
  ndt_log "pushed $NDT_IMAGE_REF"
}

# image_build_and_push [NAME] [TAG]: the usual combination. Sets NDT_IMAGE_REF.
image_build_and_push() {
  local name=${1:-ndt/layers} tag=${2:-v1}
  image_build "$NDT_WORKDIR/oci" "$tag"
  image_push "$NDT_WORKDIR/oci" "$tag" "$name"
}

# ---------------------------------------------------------------------------
# inspecting images and snapshots

# image_config_json REF: the image config (linux/amd64 manifest for an index).
image_config_json() {
  local ref=$1 dig mt m
  dig=$(ctrw images ls | awk -v r="$ref" 'NR > 1 && $1 == r { print $3 }')
  [[ -n "$dig" ]] || ndt_fail "image $ref not known to containerd"
  m=$(ctrw content get "$dig")
  mt=$(jq -r '.mediaType // empty' <<<"$m")
  if [[ "$mt" == *index* || "$mt" == *manifest.list* ]] || jq -e '.manifests' <<<"$m" >/dev/null 2>&1; then
    dig=$(jq -r '[.manifests[] | select(.platform.os == "linux" and .platform.architecture == "amd64")][0].digest' <<<"$m")
    m=$(ctrw content get "$dig")
  fi
  ctrw content get "$(jq -r .config.digest <<<"$m")"
}

# image_chain_ids REF: the chainID of every layer, bottom first.
# chainID(1) = diffID(1); chainID(n) = sha256(chainID(n-1) + " " + diffID(n)).
image_chain_ids() {
  local chain="" d
  for d in $(image_config_json "$1" | jq -r '.rootfs.diff_ids[]'); do
    if [[ -z "$chain" ]]; then
      chain=$d
    else
      chain="sha256:$(printf '%s %s' "$chain" "$d" | sha256sum | cut -d' ' -f1)"
    fi
    echo "$chain"
  done
}

# image_top_chain_id REF
image_top_chain_id() { image_chain_ids "$1" | tail -n 1; }

# image_layer_usage SNAPSHOTTER REF: "<layer#> <bytes> <inodes>" per layer, from
# the Usage RPC of each committed layer snapshot (chainID), bottom first.
image_layer_usage() {
  local sn=$1 ref=$2 n=0 c
  for c in $(image_chain_ids "$ref"); do
    n=$((n + 1))
    ctrw snapshots --snapshotter "$sn" usage -b "$c" | awk -v n="$n" 'NR == 2 { print n, $2, $3 }'
  done
}

# ndt_mount_json MOUNTS_JSON TARGET: perform containerd-style mounts (a JSON
# array of {type, source, options}) on TARGET.
ndt_mount_json() {
  local json=$1 target=$2 n i type src opts
  n=$(jq 'length' <<<"$json")
  ((n == 1)) || ndt_fail "expected exactly one mount, got $n: $json"
  for ((i = 0; i < n; i++)); do
    # ctr prints Go's mount.Mount, which has no json tags: Type, Source, Options.
    type=$(jq -r ".[$i] | .Type // .type" <<<"$json")
    src=$(jq -r ".[$i] | .Source // .source" <<<"$json")
    opts=$(jq -r ".[$i] | .Options // .options // [] | join(\",\")" <<<"$json")
    case $type in
      bind | rbind)
        local bflag=--bind
        [[ ",$opts," == *,rbind,* ]] && bflag=--rbind
        mount "$bflag" "$src" "$target" || ndt_fail "bind mount of $src failed ($json)"
        if [[ ",$opts," == *,ro,* ]]; then
          mount -o remount,bind,ro "$target" || ndt_fail "read-only remount of $target failed"
        fi
        ;;
      *)
        mount -t "$type" -o "$opts" "$src" "$target" || ndt_fail "mount -t $type -o $opts $src $target failed"
        ;;
    esac
  done
}

# snapshot_tree SNAPSHOTTER REF: tree_dump of the image REF as SNAPSHOTTER
# serves it: a view of the top chainID, mounted under the workdir, dumped,
# unmounted and removed.
snapshot_tree() {
  local sn=$1 ref=$2 top key target json
  top=$(image_top_chain_id "$ref")
  [[ -n "$top" ]] || ndt_fail "no chainID for $ref"
  # A view that nothing references is garbage: containerd's GC (which runs
  # e.g. right after a `ctr run --rm`) may delete it at any moment. ctr cannot
  # create it under a lease, so it gets a gc.root label at once; if the GC
  # was faster, the label fails (not found) and we try again.
  local attempt
  for attempt in 1 2 3 4 5; do
    key="ndt-view-$sn-$RANDOM$RANDOM"
    json=$(ctrw snapshots --snapshotter "$sn" view --mounts "$key" "$top") ||
      ndt_fail "ctr snapshots --snapshotter $sn view $key $top failed"
    if ctrw snapshots --snapshotter "$sn" label "$key" "containerd.io/gc.root=ndt" >/dev/null 2>&1; then
      break
    fi
    ndt_log "view $key was garbage-collected before it could be labelled (attempt $attempt); again"
    json=""
  done
  [[ -n "$json" ]] || ndt_fail "could not keep a view of $top through $sn from containerd's GC"
  target=$NDT_WORKDIR/mnt/$key
  mkdir -p "$target"
  # Cross-check the computed chainID with the label containerd put on the config blob.
  local content
  content=$(ctrw content ls)
  grep -qF "containerd.io/gc.ref.snapshot.$sn=$top" <<<"$content" ||
    ndt_fail "computed top chainID $top of $ref is not the gc.ref.snapshot.$sn label of its config blob"
  ndt_log "view of $top through $sn: $(jq -c '[.[] | {t: (.Type // .type), s: (.Source // .source), o: (.Options // .options)}]' <<<"$json")"
  ndt_mount_json "$json" "$target"
  local rc=0
  tree_dump "$target" || rc=$?
  umount "$target" || umount -l "$target"
  rmdir "$target"
  ctrw snapshots --snapshotter "$sn" rm "$key" || ndt_fail "ctr snapshots --snapshotter $sn rm $key failed"
  return "$rc"
}

# tree_dump DIR: one sorted line per path below DIR:
#   <path> type=<f|d|l|c|b|p|s> mode=<octal, incl. setuid/setgid/sticky>
#     owner=<uid:gid> [size=<bytes> sha256=<hex>] [target=<symlink target>]
#     [nlink=<n> (non-directories)] [linkgroup=<first path of the hardlink group>]
#     [xattrs={name="value";...} (all namespaces but trusted.overlay.*, unless
#     NDT_TREE_DUMP_OVERLAY_XATTRS=1: for raw layer dirs, where the opaque
#     and redirect markers are content)]
# No timestamps, no directory sizes or link counts (they differ between
# filesystems and say nothing about the content).
tree_dump() {
  local root=$1 tmp
  [[ -d "$root" ]] || ndt_fail "tree_dump: $root is not a directory"
  tmp=$(mktemp -d "$NDT_WORKDIR/tmp/dump.XXXXXX")
  (cd "$root" && find . -mindepth 1 -printf '%P\t%y\t%m\t%U:%G\t%s\t%n\t%D:%i\t%l\n') >"$tmp/stat"
  (cd "$root" && find . -mindepth 1 -type f -print0 | xargs -0r sha256sum) >"$tmp/sha"
  (cd "$root" && getfattr -R -P -h -d -m - . 2>/dev/null) >"$tmp/xattr" || true
  LC_ALL=C awk -F'\t' -v shaf="$tmp/sha" -v xf="$tmp/xattr" -v keepovl="${NDT_TREE_DUMP_OVERLAY_XATTRS:-0}" '
    function rel(p) { sub(/^\.\//, "", p); return p }
    BEGIN {
      while ((getline l < shaf) > 0) sha[rel(substr(l, 67))] = substr(l, 1, 64)
      cur = ""
      while ((getline l < xf) > 0) {
        if (l ~ /^# file: /) { cur = rel(substr(l, 9)); continue }
        if (l == "" || cur == "") continue
        if (l ~ /^trusted\.overlay\./ && keepovl != 1) continue
        if (cur in xa) xa[cur] = xa[cur] ";" l; else xa[cur] = l
      }
    }
    {
      n++; path[n] = $1; type[n] = $2; mode[n] = $3; own[n] = $4; size[n] = $5
      nl[n] = $6; ino[n] = $7; tgt[n] = $8
      if ($2 != "d") { cnt[$7]++; if (!($7 in first) || $1 < first[$7]) first[$7] = $1 }
    }
    END {
      for (i = 1; i <= n; i++) {
        m = mode[i]; while (length(m) < 4) m = "0" m
        line = path[i] " type=" type[i] " mode=" m " owner=" own[i]
        if (type[i] == "f") line = line " size=" size[i] " sha256=" sha[path[i]]
        if (type[i] == "l") line = line " target=" tgt[i]
        if (type[i] != "d") line = line " nlink=" nl[i]
        if (type[i] != "d" && cnt[ino[i]] > 1) line = line " linkgroup=" first[ino[i]]
        if (path[i] in xa) {
          # sort the xattrs of one path
          k = split(xa[path[i]], xs, ";"); s = ""
          for (a = 1; a <= k; a++) for (b = a + 1; b <= k; b++) if (xs[b] < xs[a]) { t = xs[a]; xs[a] = xs[b]; xs[b] = t }
          for (a = 1; a <= k; a++) s = s (a > 1 ? ";" : "") xs[a]
          line = line " xattrs={" s "}"
        }
        print line
      }
    }' "$tmp/stat" | LC_ALL=C sort
  rm -rf "$tmp"
}

# tree_dump_assert_line DUMP PATH REGEX WHAT: the dump line of PATH matches REGEX.
tree_line() { awk -v p="$2" '$1 == p' "$1"; }
assert_tree_line() {
  local dump=$1 p=$2 re=$3 what=$4 line
  line=$(tree_line "$dump" "$p")
  [[ -n "$line" ]] || ndt_fail "$what: $p missing from the tree dump"
  [[ "$line" =~ $re ]] || ndt_fail "$what: line [$line] does not match /$re/"
  ndt_pass "$what ($line)"
}
assert_tree_absent() {
  local dump=$1 p=$2 what=$3
  [[ -z "$(tree_line "$dump" "$p")" ]] || ndt_fail "$what: $p present: $(tree_line "$dump" "$p")"
  ndt_pass "$what"
}

# sha256 of a string followed by a newline (as the image files are written).
ndt_sha_line() { printf '%s\n' "$1" | sha256sum | cut -d' ' -f1; }

# ndt_assert_host_clean: nothing of this run remains (call after ndt_cleanup).
ndt_assert_host_clean() {
  local left
  left=$(ndt__mounts_under "$NDT_WORKDIR")
  [[ -z "$left" ]] || ndt_fail "mounts left below $NDT_WORKDIR: $left"
  left=$(ndt__pids_mentioning "$NDT_WORKDIR")
  [[ -z "$left" ]] || ndt_fail "processes left: $left"
}

# ---------------------------------------------------------------------------
# bandwidth throttle and CRI

# throttle_start RATE [EXTRA_ARGS...]: ndocker-test-throttle on 127.0.0.1:<free
# port> in front of the registry: ONE token bucket of RATE bytes/s (a number,
# or a size like 4MiB) shared by all connections, registry->client only, like
# a slow link. Call it before containerd_start, so that the CRI plugin gets a
# plain-http mirror entry for it too; ctr pulls through it need --plain-http
# (ctr_pull passes it). Sets NDT_THROTTLED_REGISTRY (host:port) and
# NDT_THROTTLE_PID. ndt_throttled_ref REF turns a registry ref into one
# through the throttle.
throttle_start() {
  local rate=$1
  shift
  [[ -x "$NDOCKER_TEST_THROTTLE_BIN" ]] ||
    ndt_fail "NDOCKER_TEST_THROTTLE_BIN=$NDOCKER_TEST_THROTTLE_BIN is not an executable; build it first"
  [[ -n "${NDT_REGISTRY:-}" ]] || ndt_fail "throttle_start: start the registry first"
  if [[ -n "${NDT_CTRD_PID:-}" ]] && kill -0 "$NDT_CTRD_PID" 2>/dev/null; then
    ndt_log "warning: throttle_start after containerd_start: the CRI plugin has no mirror entry for the throttle"
  fi
  # 4194304, 4M and 4MiB all mean 4 MiB/s
  rate=$(numfmt --from=iec "${rate%iB}") || ndt_fail "throttle_start: bad rate $1"
  local pf=$NDT_WORKDIR/run/throttle.port
  mkdir -p "$NDT_WORKDIR/run"
  rm -f "$pf"
  ndt_spawn throttle "$NDT_WORKDIR/logs/throttle.log" "$NDOCKER_TEST_THROTTLE_BIN" \
    --listen 127.0.0.1:0 --to "$NDT_REGISTRY" --rate "$rate" --port-file "$pf" "$@"
  NDT_THROTTLE_PID=$NDT_LAST_PID
  local deadline=$((SECONDS + 10))
  until [[ -s "$pf" ]]; do
    kill -0 "$NDT_THROTTLE_PID" 2>/dev/null || ndt_fail "ndocker-test-throttle exited; see $NDT_WORKDIR/logs/throttle.log"
    ((SECONDS < deadline)) || ndt_fail "ndocker-test-throttle wrote no port file within 10s"
    sleep 0.05
  done
  NDT_THROTTLED_REGISTRY=127.0.0.1:$(cat "$pf")
  curl -fsS -o /dev/null --max-time 10 "http://$NDT_THROTTLED_REGISTRY/v2/" ||
    ndt_fail "the registry does not answer through the throttle at $NDT_THROTTLED_REGISTRY"
  ndt_log "throttle up at $NDT_THROTTLED_REGISTRY -> $NDT_REGISTRY, $rate B/s shared (pid $NDT_THROTTLE_PID)"
}

# ndt_throttled_ref REF: REF (on $NDT_REGISTRY) through the throttle.
ndt_throttled_ref() {
  [[ -n "${NDT_THROTTLED_REGISTRY:-}" ]] || ndt_fail "ndt_throttled_ref: no throttle (throttle_start)"
  [[ "$1" == "$NDT_REGISTRY/"* ]] || ndt_fail "ndt_throttled_ref: $1 is not on $NDT_REGISTRY"
  echo "$NDT_THROTTLED_REGISTRY/${1#"$NDT_REGISTRY"/}"
}

# cri ARGS...: ndocker-test-cri against the test containerd (CRI ImageService
# on containerd's socket; CRI images live in containerd namespace k8s.io).
cri() {
  [[ -x "$NDOCKER_TEST_CRI_BIN" ]] || ndt_fail "NDOCKER_TEST_CRI_BIN=$NDOCKER_TEST_CRI_BIN is not an executable; build it first"
  "$NDOCKER_TEST_CRI_BIN" --address "$NDT_CTRD_SOCK" "$@"
}

# cri_pull REF: CRI PullImage (fetch and unpack in containerd, streamed, 3
# downloads at a time, into the CRI snapshotter). Sets CRI_IMAGE_ID (the
# image_ref returned: the config digest) and CRI_PULL_SECONDS.
cri_pull() {
  local ref=$1 out=$NDT_WORKDIR/logs/cri-pull.out
  if ! cri pull "$ref" >"$out" 2>&1; then
    cat "$out" >&2
    ndt_fail "CRI PullImage $ref failed"
  fi
  CRI_IMAGE_ID=$(sed -n 's/^image_ref=//p' "$out")
  CRI_PULL_SECONDS=$(sed -n 's/^elapsed_s=//p' "$out")
  [[ -n "$CRI_IMAGE_ID" ]] || ndt_fail "CRI PullImage $ref returned no image_ref: $(cat "$out")"
  ndt_log "CRI pulled $ref: image $CRI_IMAGE_ID in ${CRI_PULL_SECONDS}s"
}

# cri_rmi REF: CRI RemoveImage.
cri_rmi() {
  local out
  out=$(cri rmi "$1" 2>&1) || ndt_fail "CRI RemoveImage $1 failed: $out"
}

# cri_manifest_digest REF: the manifest digest (sha256:...) of a CRI-pulled
# image, from its repo digest <name>@sha256:...
cri_manifest_digest() {
  local out d
  out=$(cri status "$1") || ndt_fail "CRI ImageStatus $1: image absent or error"
  d=$(sed -n 's/^repo_digest=.*@//p' <<<"$out" | head -n 1)
  [[ "$d" == sha256:* ]] || ndt_fail "CRI ImageStatus $1 has no repo digest: $out"
  echo "$d"
}

# ---------------------------------------------------------------------------
# CRI pod sandboxes and containers (RuntimeService)
#
# containerd_start --cri points the CRI plugin's sandbox_image at
# $NDT_REGISTRY/pause:3.6 (no internet: cri_pause_image_push builds and
# pushes it) and its CNI bin_dir/conf_dir at empty dirs in the workdir: pods
# use the host network (cri_pod_config_write), for which containerd skips
# CNI. The pods' cgroup parent is /$NDT_NS, so their cgroups are
# /sys/fs/cgroup/$NDT_NS/<id> like those of ctr's containers (the cleanup
# and the leak check cover them). CRI objects live in containerd namespace
# k8s.io; the cleanup stops and removes every pod sandbox left (see
# ndt__cri_cleanup) before it kills tasks.

# The pause image: one layer holding only busybox-static as /pause/busybox
# (paths no app image here uses), entrypoint `sleep` for ~68 years; CRI stops
# a sandbox with SIGKILL.
NDT_PAUSE_ENTRYPOINT=/pause/busybox

# cri_pause_image_push: build it with umoci and push it as the configured
# sandbox_image, $NDT_REGISTRY/pause:3.6. Sets NDT_PAUSE_REF.
cri_pause_image_push() {
  local layout=$NDT_WORKDIR/oci-pause img b=$NDT_WORKDIR/imagebuild-pause
  img=$layout:3.6
  rm -rf "$b"
  umoci init --layout "$layout"
  umoci new --image "$img"
  umoci unpack --image "$img" "$b" >/dev/null
  mkdir -p "$b/rootfs/pause"
  cp /bin/busybox "$b/rootfs$NDT_PAUSE_ENTRYPOINT"
  chmod 0755 "$b/rootfs$NDT_PAUSE_ENTRYPOINT"
  umoci repack --refresh-bundle --history.created_by "ndt pause: busybox-static as $NDT_PAUSE_ENTRYPOINT" \
    --image "$img" "$b" >/dev/null
  umoci config --image "$img" --config.entrypoint "$NDT_PAUSE_ENTRYPOINT" --config.entrypoint sleep \
    --config.cmd 2147483647 --config.workingdir /
  rm -rf "$b"
  image_push "$layout" 3.6 pause
  # shellcheck disable=SC2034 # used by the tests
  NDT_PAUSE_REF=$NDT_IMAGE_REF
}

# cri_pod_config_write FILE NAME: a PodSandboxConfig (JSON, crictl's format)
# for a pod NAME in Kubernetes namespace ndt: host network (no CNI), cgroup
# parent /$NDT_NS, logs in <workdir>/cri-logs/NAME.
cri_pod_config_write() {
  local file=$1 name=$2
  mkdir -p "$NDT_WORKDIR/cri-logs/$name"
  jq -n --arg name "$name" --arg uid "$name-$$-$RANDOM" --arg logs "$NDT_WORKDIR/cri-logs/$name" \
    --arg cg "/$NDT_NS" '{
      metadata: {name: $name, uid: $uid, namespace: "ndt", attempt: 0},
      log_directory: $logs,
      labels: {"ndt.test": "1"},
      linux: {
        cgroup_parent: $cg,
        security_context: {namespace_options: {network: "NODE"}}
      }
    }' >"$file"
}

# cri_container_config_write FILE NAME IMAGE [COMMAND...]: a ContainerConfig
# running IMAGE (its entrypoint and cmd unless COMMAND is given), output
# logged to <pod log dir>/NAME.log.
cri_container_config_write() {
  local file=$1 name=$2 image=$3
  shift 3
  jq -n --arg name "$name" --arg image "$image" '{
      metadata: {name: $name, attempt: 0},
      image: {image: $image},
      log_path: ($name + ".log"),
      labels: {"ndt.test": "1"}
    } + (if $ARGS.positional | length > 0 then {command: $ARGS.positional} else {} end)' \
    --args "$@" >"$file"
}

# cri_runp POD_CONFIG: RunPodSandbox. Sets CRI_POD_ID.
cri_runp() {
  local out
  out=$(cri runp "$1" 2>&1) || ndt_fail "CRI RunPodSandbox ($1) failed: $out"
  CRI_POD_ID=$(sed -n 's/^pod_id=//p' <<<"$out")
  [[ -n "$CRI_POD_ID" ]] || ndt_fail "CRI RunPodSandbox returned no pod id: $out"
  ndt_log "CRI pod sandbox $CRI_POD_ID running"
}

# cri_create POD_ID CONTAINER_CONFIG POD_CONFIG: CreateContainer. Sets CRI_CONTAINER_ID.
cri_create() {
  local out
  out=$(cri create "$1" "$2" "$3" 2>&1) || ndt_fail "CRI CreateContainer ($2) in pod $1 failed: $out"
  CRI_CONTAINER_ID=$(sed -n 's/^container_id=//p' <<<"$out")
  [[ -n "$CRI_CONTAINER_ID" ]] || ndt_fail "CRI CreateContainer returned no container id: $out"
  ndt_log "CRI container $CRI_CONTAINER_ID created in pod $1"
}

# cri_start ID: StartContainer.
cri_start() {
  local out
  out=$(cri start "$1" 2>&1) || ndt_fail "CRI StartContainer $1 failed: $out"
}

# cri_inspect_field ID FIELD: one field of `ndocker-test-cri inspect` (state,
# exit_code, reason, ...); empty when the container is absent.
cri_inspect_field() {
  cri inspect "$1" 2>/dev/null | sed -n "s/^$2=//p"
}

# cri_wait_exited ID TIMEOUT_S: wait for CONTAINER_EXITED. Sets CRI_EXIT_CODE.
cri_wait_exited() {
  local id=$1 timeout=$2 deadline state
  deadline=$((SECONDS + timeout))
  while :; do
    state=$(cri_inspect_field "$id" state)
    [[ "$state" == CONTAINER_EXITED ]] && break
    ((SECONDS < deadline)) || ndt_fail "CRI container $id not exited after ${timeout}s (state ${state:-absent}): $(cri inspect "$id" 2>&1 | tr '\n' ' ')"
    sleep 0.1
  done
  CRI_EXIT_CODE=$(cri_inspect_field "$id" exit_code)
  ndt_log "CRI container $id exited with code $CRI_EXIT_CODE ($(cri_inspect_field "$id" reason))"
}

# cri_rm_pod POD_ID: StopPodSandbox, RemovePodSandbox (its containers go too).
cri_rm_pod() {
  local out
  out=$(cri stopp "$1" 2>&1) || ndt_fail "CRI StopPodSandbox $1 failed: $out"
  out=$(cri rmp "$1" 2>&1) || ndt_fail "CRI RemovePodSandbox $1 failed: $out"
  ndt_log "CRI pod sandbox $1 stopped and removed"
}

# ndt__cri_cleanup: stop and remove every pod sandbox the test containerd's
# CRI plugin still has (a failed test). Quiet; bounded by --timeout.
ndt__cri_cleanup() {
  [[ "${NDT_CTRD_CRI:-0}" == 1 && -x "$NDOCKER_TEST_CRI_BIN" ]] || return 0
  local p _
  while read -r p _; do
    [[ -n "$p" ]] || continue
    "$NDOCKER_TEST_CRI_BIN" --address "$NDT_CTRD_SOCK" --timeout 20 stopp "$p" >/dev/null 2>&1
    "$NDOCKER_TEST_CRI_BIN" --address "$NDT_CTRD_SOCK" --timeout 20 rmp "$p" >/dev/null 2>&1
  done < <("$NDOCKER_TEST_CRI_BIN" --address "$NDT_CTRD_SOCK" --timeout 10 pods 2>/dev/null)
}

# ---------------------------------------------------------------------------
# images of random data (sizes that make downloads take a known time)

# image_build_random LAYOUT TAG [--busybox] SIZE...: an image with one layer
# per SIZE (1M, 256K, 8M, ... as numfmt --from=iec reads them), layer i
# holding /data/layer<i>.bin of that many bytes from /dev/urandom, so that
# the gzip blob is about as big as the data (incompressible). --busybox puts
# busybox-static and its applets into layer 0 as well (for `ctr run`; ~1 MB
# more in layer 0's blob). Every layer gets a history entry.
image_build_random() {
  local layout=$1 tag=$2 busybox=0
  shift 2
  if [[ "${1:-}" == --busybox ]]; then busybox=1; shift; fi
  (($# > 0)) || ndt_fail "image_build_random: no layer sizes"
  local work=$NDT_WORKDIR/imagebuild-random
  local img="$layout:$tag" b=$work/bundle r i=0 size bytes applet
  rm -rf "$work"
  mkdir -p "$work"
  [[ -d "$layout" ]] || umoci init --layout "$layout"
  umoci new --image "$img"
  umoci unpack --image "$img" "$b" >/dev/null
  r=$b/rootfs
  mkdir -p "$r/data"
  for size in "$@"; do
    bytes=$(numfmt --from=iec "$size") || ndt_fail "image_build_random: bad size $size"
    if ((i == 0 && busybox)); then
      mkdir -p "$r"/{bin,etc,tmp,proc,sys,dev}
      chmod 1777 "$r/tmp"
      cp /bin/busybox "$r/bin/busybox"
      for applet in $(/bin/busybox --list); do
        [[ "$applet" == busybox || -e "$r/bin/$applet" ]] || ln -s busybox "$r/bin/$applet"
      done
      printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"
    fi
    head -c "$bytes" /dev/urandom >"$r/data/layer$i.bin"
    umoci repack --refresh-bundle --history.created_by "ndt random layer $i: $size" --image "$img" "$b" >/dev/null
    i=$((i + 1))
  done
  if ((busybox)); then
    umoci config --image "$img" --config.env PATH=/bin --config.workingdir / --config.cmd /bin/sh
  fi
  rm -rf "$work"
  ndt_log "image $img: $i random layers ($*), blobs: $(image_layer_blob_sizes "$layout" "$tag" | tr '\n' ' ')"
}

# image_layer_blob_sizes LAYOUT TAG: the compressed size of each layer blob, bottom first.
image_layer_blob_sizes() {
  local m
  m=$(jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json")
  jq -r '.layers[].size' "$1/blobs/sha256/${m#sha256:}"
}
