#!/usr/bin/env bash
# The benchmark network: a registry behind a configurable bandwidth limit,
# between two network namespaces this script creates.
#
#   netns.sh up [--rate RATE] [--storage DIR] [--port PORT]
#   netns.sh rate RATE            change the limit of a running setup (0 = none;
#                                 affects whoever uses the setup at the time)
#   netns.sh status
#   netns.sh down [--force]       stop the registry, delete both namespaces
#                                 (the registry storage stays); refuses while
#                                 other processes run in them, unless --force
#   netns.sh exec-client CMD...   run CMD in the client namespace
#   netns.sh exec-registry CMD... run CMD in the registry namespace
#   netns.sh push [NAME...]       push the built corpus (images/push.sh) into the
#                                 registry, over the registry namespace's own
#                                 loopback: unshaped, done once (storage persists)
#   netns.sh env                  shell assignments for a runner (eval them)
#   netns.sh measure [--size MB]  throughput of one blob GET client <- registry
#   netns.sh selftest [--size MB] measure at 100mbit and unshaped, restore the rate
#
# Layout (defaults; NDB_NET_* environment variables override them):
#
#   ndb-host (client)                        ndb-reg (registry)
#   containerd, ctr, ndocker, probes         docker-registry on :5000
#   lo up, ndb-c0 10.213.0.1/30  <== veth ==>  ndb-r0 10.213.0.2/30, lo up
#          tbf RATE on egress                      tbf RATE on egress
#
# Both ends of the veth pair are created directly inside the namespaces; the
# host's namespace never sees them, and the namespaces have no route anywhere
# else: traffic only flows between these two. Shaping is `tc qdisc tbf` on the
# egress of each end (so both directions), which testbed.md found to work
# (netem is not available). RATE is anything tc takes (100mbit, 1gbit, ...);
# 0 or "none" removes the qdiscs, so unshaped runs still cross the same veth.
#
# The client namespace holds whatever fetches: `ctr image pull` fetches in the
# ctr process and CRI pulls fetch in containerd (1.6), so start containerd
# (and ndocker, and ctr) in it. exec-client only switches the network
# namespace (nsenter --net), not the mount namespace, so mounts made by a
# containerd started there are ordinary host mounts. A container run with
# `ctr run --net-host` shares containerd's namespace: tcp probes must run in
# the client namespace too.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
IMAGES=$(cd "$HERE/../images" && pwd)

NS_CLIENT=${NDB_NET_NS_CLIENT:-ndb-host}
NS_REG=${NDB_NET_NS_REGISTRY:-ndb-reg}
DEV_CLIENT=${NDB_NET_DEV_CLIENT:-ndb-c0}
DEV_REG=${NDB_NET_DEV_REGISTRY:-ndb-r0}
IP_CLIENT=${NDB_NET_IP_CLIENT:-10.213.0.1}
IP_REG=${NDB_NET_IP_REGISTRY:-10.213.0.2}
PREFIXLEN=30
STATE=${NDB_NET_STATE:-/run/ndocker-bench/net}
DEFAULT_STORAGE=${NDB_REGISTRY_STORAGE:-/var/tmp/ndocker-bench/registry}
DEFAULT_PORT=5000
DEFAULT_RATE=100mbit
# tbf queue: at most this much delay is queued before drops (TCP adapts).
TBF_LATENCY=${NDB_NET_TBF_LATENCY:-50ms}

log() { printf '[netns] %s\n' "$*" >&2; }
die() {
  printf '[netns] error: %s\n' "$*" >&2
  exit 1
}

ns_exists() { [[ -e "/run/netns/$1" ]]; }
in_client() { nsenter --net="/run/netns/$NS_CLIENT" -- "$@"; }
in_reg() { nsenter --net="/run/netns/$NS_REG" -- "$@"; }

state_get() { cat "$STATE/$1" 2>/dev/null || true; }
registry_port() { local p; p=$(state_get port); echo "${p:-$DEFAULT_PORT}"; }
registry_addr() { echo "$IP_REG:$(registry_port)"; }

registry_pid() {
  local p
  p=$(state_get registry.pid)
  [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null && [[ "$(tr '\0' ' ' <"/proc/$p/cmdline")" == *docker-registry* ]] && echo "$p"
  return 0
}

# rate_bits RATE: bits per second of a tc rate (bit, kbit, mbit, gbit, bps, kbps, mbps, gbps).
rate_bits() {
  awk -v r="$1" 'BEGIN {
    if (match(r, /^[0-9.]+/) == 0) exit 1
    n = substr(r, 1, RLENGTH); u = tolower(substr(r, RLENGTH + 1))
    m["bit"] = 1; m[""] = 1; m["kbit"] = 1e3; m["mbit"] = 1e6; m["gbit"] = 1e9
    m["bps"] = 8; m["kbps"] = 8e3; m["mbps"] = 8e6; m["gbps"] = 8e9
    if (!(u in m)) exit 1
    printf "%d\n", n * m[u]
  }'
}

is_unshaped() { [[ "$1" == 0 || "$1" == none || "$1" == off ]]; }

# apply_rate RATE: tbf on both ends (or none).
apply_rate() {
  local rate=$1 bits burst
  if is_unshaped "$rate"; then
    tc -n "$NS_CLIENT" qdisc del dev "$DEV_CLIENT" root 2>/dev/null || true
    tc -n "$NS_REG" qdisc del dev "$DEV_REG" root 2>/dev/null || true
    echo 0 >"$STATE/rate"
    log "shaping off (unshaped veth)"
    return 0
  fi
  bits=$(rate_bits "$rate") || die "cannot parse rate '$rate' (e.g. 100mbit, 1gbit, 0)"
  ((bits > 0)) || die "rate must be > 0 (0 means unshaped)"
  # burst: one timer tick (4 ms at HZ=250) worth of bytes, at least 16 KiB
  burst=$((bits / 8 / 250))
  ((burst >= 16384)) || burst=16384
  tc -n "$NS_CLIENT" qdisc replace dev "$DEV_CLIENT" root tbf rate "$rate" burst "$burst" latency "$TBF_LATENCY"
  tc -n "$NS_REG" qdisc replace dev "$DEV_REG" root tbf rate "$rate" burst "$burst" latency "$TBF_LATENCY"
  echo "$rate" >"$STATE/rate"
  log "shaping: tbf rate $rate burst $burst latency $TBF_LATENCY on $NS_CLIENT/$DEV_CLIENT and $NS_REG/$DEV_REG"
}

registry_start() {
  local storage=$1 port=$2 pid
  mkdir -p "$storage"
  cat >"$STATE/registry.yml" <<EOF
version: 0.1
log:
  level: warn
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: $storage
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 0.0.0.0:$port
EOF
  : >>"$STATE/registry.log"
  # its own session, so that it outlives this script; it listens on every
  # address of the registry namespace (its loopback and the veth) only
  setsid nsenter --net="/run/netns/$NS_REG" -- \
    bash -c 'echo $$ >"$1"; exec docker-registry serve "$2"' _ "$STATE/registry.pid" "$STATE/registry.yml" \
    >>"$STATE/registry.log" 2>&1 </dev/null &
  local i
  for i in $(seq 100); do
    if in_client curl -fsS -o /dev/null --max-time 2 "http://$IP_REG:$port/v2/" 2>/dev/null; then
      pid=$(registry_pid)
      log "registry up: http://$IP_REG:$port (pid $pid, storage $storage)"
      return 0
    fi
    sleep 0.1
  done
  tail -n 20 "$STATE/registry.log" >&2
  die "registry did not answer on $IP_REG:$port from $NS_CLIENT"
}

registry_stop() {
  local pid i
  pid=$(registry_pid)
  [[ -n "$pid" ]] || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -KILL "$pid" 2>/dev/null || true
  rm -f "$STATE/registry.pid"
  log "registry (pid $pid) stopped"
}

cmd_up() {
  local rate=$DEFAULT_RATE storage=$DEFAULT_STORAGE port=$DEFAULT_PORT
  while (($#)); do
    case $1 in
      --rate) rate=$2; shift 2 ;;
      --rate=*) rate=${1#*=}; shift ;;
      --storage) storage=$2; shift 2 ;;
      --storage=*) storage=${1#*=}; shift ;;
      --port) port=$2; shift 2 ;;
      --port=*) port=${1#*=}; shift ;;
      *) die "up: unknown argument $1" ;;
    esac
  done
  [[ $(id -u) -eq 0 ]] || die "must run as root"
  local c
  for c in ip tc nsenter curl docker-registry setsid; do
    command -v "$c" >/dev/null || die "missing $c (test/bench/install-bench-deps.sh)"
  done
  mkdir -p "$STATE"
  if ns_exists "$NS_CLIENT" || ns_exists "$NS_REG"; then
    if ns_exists "$NS_CLIENT" && ns_exists "$NS_REG" && [[ -n "$(registry_pid)" ]] &&
      [[ "$(state_get storage)" == "$storage" && "$(state_get port)" == "$port" ]]; then
      log "already up; setting the rate only"
      apply_rate "$rate"
      return 0
    fi
    log "a partial or different setup exists: taking it down first"
    cmd_down --force
    mkdir -p "$STATE"
  fi
  ip netns add "$NS_CLIENT"
  ip netns add "$NS_REG"
  ip link add "$DEV_CLIENT" netns "$NS_CLIENT" type veth peer name "$DEV_REG" netns "$NS_REG"
  ip -n "$NS_CLIENT" link set lo up
  ip -n "$NS_REG" link set lo up
  ip -n "$NS_CLIENT" addr add "$IP_CLIENT/$PREFIXLEN" dev "$DEV_CLIENT"
  ip -n "$NS_REG" addr add "$IP_REG/$PREFIXLEN" dev "$DEV_REG"
  ip -n "$NS_CLIENT" link set "$DEV_CLIENT" up
  ip -n "$NS_REG" link set "$DEV_REG" up
  echo "$storage" >"$STATE/storage"
  echo "$port" >"$STATE/port"
  log "namespaces $NS_CLIENT ($IP_CLIENT) and $NS_REG ($IP_REG) joined by $DEV_CLIENT/$DEV_REG"
  apply_rate "$rate"
  registry_start "$storage" "$port"
}

# users_of NS: pids in the namespace other than our registry.
users_of() {
  local reg p
  reg=$(registry_pid)
  for p in $(ip netns pids "$1" 2>/dev/null); do [[ "$p" == "$reg" ]] || printf '%s ' "$p"; done
}

cmd_down() {
  local force=0 ns left
  [[ "${1:-}" == --force ]] && force=1
  # a runner (containerd, ctr, ...) may be using the setup: do not pull it
  # away under its feet unless told to
  for ns in "$NS_CLIENT" "$NS_REG"; do
    ns_exists "$ns" || continue
    left=$(users_of "$ns")
    if [[ -n "$left" ]] && ((force == 0)); then
      for p in $left; do printf '  %s: %s\n' "$p" "$(tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | cut -c1-120)" >&2; done
      die "processes still run in $ns (above); stop them first, or: netns.sh down --force"
    fi
  done
  registry_stop
  for ns in "$NS_CLIENT" "$NS_REG"; do
    if ns_exists "$ns"; then
      left=$(users_of "$ns")
      [[ -z "$left" ]] || log "warning: processes still in $ns: $left(the namespace goes once they exit)"
      ip netns del "$ns"
      log "deleted namespace $ns"
    fi
  done
  rm -rf "$STATE"
}

cmd_status() {
  local up=1 ns
  for ns in "$NS_CLIENT" "$NS_REG"; do
    if ns_exists "$ns"; then echo "namespace $ns: present"; else
      echo "namespace $ns: absent"
      up=0
    fi
  done
  ((up)) || return 1
  echo "client:   $NS_CLIENT $(ip -n "$NS_CLIENT" -br addr show dev "$DEV_CLIENT" | awk '{ print $1, $2, $3 }')"
  echo "registry: $NS_REG $(ip -n "$NS_REG" -br addr show dev "$DEV_REG" | awk '{ print $1, $2, $3 }')"
  echo "rate:     $(state_get rate)"
  tc -n "$NS_CLIENT" qdisc show dev "$DEV_CLIENT" | sed "s/^/  $NS_CLIENT: /"
  tc -n "$NS_REG" qdisc show dev "$DEV_REG" | sed "s/^/  $NS_REG: /"
  local pid
  pid=$(registry_pid)
  if [[ -n "$pid" ]]; then
    echo "registry: http://$(registry_addr) pid $pid storage $(state_get storage)"
    echo "catalog:  $(in_client curl -fsS --max-time 5 "http://$(registry_addr)/v2/_catalog?n=1000" | jq -c '.repositories')"
  else
    echo "registry: not running"
    return 1
  fi
}

cmd_env() {
  cat <<EOF
NDB_NET_NS_CLIENT=$NS_CLIENT
NDB_NET_NS_REGISTRY=$NS_REG
NDB_NET_IP_CLIENT=$IP_CLIENT
NDB_NET_IP_REGISTRY=$IP_REG
NDB_REGISTRY=$(registry_addr)
NDB_NET_RATE=$(state_get rate)
EOF
}

cmd_push() {
  [[ -n "$(registry_pid)" ]] || die "the registry is not running (netns.sh up)"
  in_reg bash "$IMAGES/push.sh" "127.0.0.1:$(registry_port)" "$@"
}

# ensure_blob MB: a random (incompressible) blob of MB MiB in the registry,
# uploaded over the registry's loopback; prints its digest.
ensure_blob() {
  local mb=$1 f=$STATE/blob-$1 d loc repo=ndb-net/throughput
  if [[ -f "$f.digest" ]] && in_reg curl -fsS -o /dev/null -I "http://127.0.0.1:$(registry_port)/v2/$repo/blobs/$(cat "$f.digest")"; then
    cat "$f.digest"
    return 0
  fi
  head -c "$((mb * 1048576))" /dev/urandom >"$f"
  d=sha256:$(sha256sum "$f" | cut -d' ' -f1)
  loc=$(in_reg curl -fsS -X POST -D - -o /dev/null "http://127.0.0.1:$(registry_port)/v2/$repo/blobs/uploads/" |
    tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')
  [[ -n "$loc" ]] || die "blob upload: no Location from the registry"
  [[ "$loc" == http* ]] || loc="http://127.0.0.1:$(registry_port)$loc"
  if [[ "$loc" == *\?* ]]; then loc="$loc&digest=$d"; else loc="$loc?digest=$d"; fi
  in_reg curl -fsS -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$f" -o /dev/null "$loc" ||
    die "blob upload failed"
  rm -f "$f"
  echo "$d" >"$f.digest"
  echo "$d"
}

# measure_once DIGEST: "<bytes> <seconds>" of one GET from the client namespace.
measure_once() {
  in_client curl -fsS -o /dev/null -w '%{size_download} %{time_total}\n' \
    "http://$(registry_addr)/v2/ndb-net/throughput/blobs/$1"
}

cmd_measure() {
  local mb=100 repeat=1
  while (($#)); do
    case $1 in
      --size) mb=$2; shift 2 ;;
      --repeat) repeat=$2; shift 2 ;;
      *) die "measure: unknown argument $1" ;;
    esac
  done
  [[ -n "$(registry_pid)" ]] || die "the registry is not running (netns.sh up)"
  local d i out
  d=$(ensure_blob "$mb")
  for ((i = 0; i < repeat; i++)); do
    out=$(measure_once "$d")
    awk -v o="$out" -v r="$(state_get rate)" 'BEGIN { split(o, a, " ");
      printf "rate %-8s GET %.1f MB in %.2f s: %.2f MB/s (%.1f Mbit/s)\n", r, a[1] / 1e6, a[2], a[1] / 1e6 / a[2], a[1] * 8 / 1e6 / a[2] }'
  done
}

cmd_selftest() {
  local mb=100 old
  [[ "${1:-}" == --size ]] && mb=$2
  old=$(state_get rate)
  apply_rate 100mbit
  cmd_measure --size "$mb" --repeat 2
  apply_rate 0
  cmd_measure --size "$mb" --repeat 2
  apply_rate "${old:-$DEFAULT_RATE}"
}

cmd=${1:-}
[[ -n "$cmd" ]] || { sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }
shift
case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  status) cmd_status ;;
  rate)
    (($# == 1)) || die "usage: netns.sh rate RATE"
    ns_exists "$NS_CLIENT" && ns_exists "$NS_REG" || die "not up"
    apply_rate "$1"
    ;;
  exec-client)
    ns_exists "$NS_CLIENT" || die "not up"
    exec nsenter --net="/run/netns/$NS_CLIENT" -- "$@"
    ;;
  exec-registry)
    ns_exists "$NS_REG" || die "not up"
    exec nsenter --net="/run/netns/$NS_REG" -- "$@"
    ;;
  push) cmd_push "$@" ;;
  env) cmd_env ;;
  measure) cmd_measure "$@" ;;
  selftest) cmd_selftest "$@" ;;
  -h | --help | help) sed -n '2,45p' "$0" | sed 's/^# \{0,1\}//' ;;
  *) die "unknown command $cmd (see --help)" ;;
esac
