# shellcheck shell=bash disable=SC2034,SC2153 # globals of lib.sh
# Helpers for the LASS placement tests (test_lass_*.sh); source after lib.sh.
#
# The placement checks are "soft": lass_expect_* prints a PLACEMENT FAIL line
# and the test goes on, so that one run shows every placement the daemon got
# wrong and proves that everything around them (image, registry, throttle,
# pulls, snapshots) works; lass_finish fails the test at the end if any
# placement check failed. Everything else (a pull that fails, a snapshot that
# is missing) fails at once, as in the other tests.
#
# The daemon's contract tested here:
#  - config: [placement] container_tier = "fast|slow" and a [lass] table
#    with enabled, policy ("ldl" | "predict"), containerd_root,
#    max_concurrent_downloads;
#  - `ndockerctl ls --json`: every snapshot also has "rule" and "reason";
#  - `ndockerctl plan [--json] <manifest digest>`: the plan of a pull.

LASS_FAILURES=()

# lass_config_write FILE KEY=VALUE...: an ndocker config. Keys:
#   enabled (true|false|"" = no [lass] table), policy, containerd_root,
#   max_concurrent_downloads (default 3), budget (fast tier budget, e.g. 3MiB:
#   [tiers.fast] budget), container_tier.
lass_config_write() {
  local file=$1 kv k v
  shift
  local enabled=true policy=ldl root="" mcd=3 budget="" ctier=""
  for kv in "$@"; do
    k=${kv%%=*} v=${kv#*=}
    case $k in
      enabled) enabled=$v ;;
      policy) policy=$v ;;
      containerd_root) root=$v ;;
      max_concurrent_downloads) mcd=$v ;;
      budget) budget=$v ;;
      container_tier) ctier=$v ;;
      *) ndt_fail "lass_config_write: unknown key $k" ;;
    esac
  done
  {
    echo "# written by $(basename "$0")"
    [[ -n "$ctier" ]] && printf '\n[placement]\ncontainer_tier = "%s"\n' "$ctier"
    if [[ -n "$budget" ]]; then
      printf '\n[tiers.fast]\nbudget = "%s"\n' "$budget"
    fi
    if [[ -n "$enabled" ]]; then
      printf '\n[lass]\nenabled = %s\npolicy = "%s"\n' "$enabled" "$policy"
      [[ -n "$root" ]] && printf 'containerd_root = "%s"\n' "$root"
      printf 'max_concurrent_downloads = %s\n' "$mcd"
    fi
    # Placement is what these tests check: no hot layer build and demotion
    # after a container's trace may move layers behind their back.
    printf '\n[hbcsa]\npromote = "manual"\n'
  } >"$file"
}

# lass_ndocker_start FILE [NDOCKER_ARGS...]: ndocker_start --config FILE,
# with the config in the log.
lass_ndocker_start() {
  local file=$1
  shift
  ndt_log "ndocker config $file: $(grep -v '^#' "$file" | tr '\n' ' ')"
  ndocker_start --config "$file" "$@"
}

# lass_ls_json: every snapshot the daemon has, as one JSON array.
lass_ls_json() {
  "$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" ls --json | jq -s . ||
    ndt_fail "ndockerctl ls --json failed"
}

# lass_snapshot SNAPS_JSON NAME: the snapshot whose backend key is NAME or
# ends in /NAME (containerd sends <namespace>/<seq>/<name>); fails if none.
lass_snapshot() {
  local j
  j=$(jq -c --arg n "$2" '[.[] | select(.key == $n or (.key | endswith("/" + $n)))] | sort_by(.kind != "committed") | .[0] // empty' <<<"$1")
  [[ -n "$j" ]] || ndt_fail "no snapshot named $2 in ndockerctl ls --json: $(jq -c '[.[].key]' <<<"$1")"
  echo "$j"
}

# lass_fail WHAT: record a placement failure (the test goes on).
lass_fail() {
  printf '[%s] PLACEMENT FAIL: %s\n' "$(ndt_ts)" "$*" >&2
  LASS_FAILURES+=("$*")
}

# lass_expect_placement SNAPS_JSON NAME TIER_REGEX RULE_REGEX WHAT: snapshot
# NAME is on a tier matching ^(TIER_REGEX)$ with a rule matching
# ^(RULE_REGEX)$ and a non-empty reason.
lass_expect_placement() {
  local snaps=$1 name=$2 tier=$3 rule_re=$4 what=$5 s t r why
  s=$(lass_snapshot "$snaps" "$name")
  t=$(jq -r '.tier' <<<"$s")
  r=$(jq -r '.rule // "<no rule field>"' <<<"$s")
  why=$(jq -r '.reason // "<no reason field>"' <<<"$s")
  if [[ "$t" =~ ^($tier)$ && "$r" =~ ^($rule_re)$ && -n "$why" && "$why" != "<no reason field>" ]]; then
    ndt_pass "$what: tier=$t rule=$r ($why)"
  else
    lass_fail "$what: expected tier~/^($tier)\$/ rule~/^($rule_re)\$/ with a reason; got tier=$t rule=$r reason=$why (key $(jq -r .key <<<"$s"))"
  fi
}

# lass_show_snapshots SNAPS_JSON: log kind, tier, size, rule, key of each.
lass_show_snapshots() {
  jq -r '.[] | "  \(.kind) \(.tier) \(.size) rule=\(.rule // "-") \(.key)"' <<<"$1" >&2
}

# lass_plan_json DIGEST: sets LASS_PLAN to `ndockerctl plan --json DIGEST`
# (empty, and a placement failure, if the command fails or prints no JSON).
lass_plan_json() {
  local out
  LASS_PLAN=""
  if out=$("$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" plan --json "$1" 2>&1) && jq -e . >/dev/null 2>&1 <<<"$out"; then
    LASS_PLAN=$out
  else
    lass_fail "ndockerctl plan --json $1: $out"
  fi
}

# lass_log_plan DIGEST: the human plan into the log.
lass_log_plan() {
  local out
  if out=$("$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" plan "$1" 2>&1); then
    printf '%s\n' "----- ndockerctl plan $1" "$out" "-----" >&2
  else
    lass_fail "ndockerctl plan $1: $out"
  fi
}

# lass_finish: fail the test if any placement check failed.
lass_finish() {
  if ((${#LASS_FAILURES[@]} > 0)); then
    printf '[%s] %d placement check(s) failed:\n' "$(ndt_ts)" "${#LASS_FAILURES[@]}" >&2
    printf '  - %s\n' "${LASS_FAILURES[@]}" >&2
    ndt_fail "LASS placement checks failed (everything else passed)"
  fi
  ndt_pass "all placement checks"
}

# lass_fresh_daemons TAG CONFIG [--cri|--cri-no-annotations]: stop containerd
# and ndocker if they run, then start both on fresh roots named after TAG
# (empty content store, no snapshots): ndocker with CONFIG (written by the
# caller with containerd_root=$(lass_ctrd_root TAG)), then containerd.
lass_ctrd_root() { echo "$NDT_WORKDIR/containerd-$1/root"; }
lass_fresh_daemons() {
  local tag=$1 config=$2
  shift 2
  if [[ -n "${NDT_CTRD_PID:-}" ]]; then containerd_stop; fi
  if [[ -n "${NDOCKER_PID:-}" ]]; then ndocker_stop; fi
  NDT_CTRD_ROOT_DIR=$(lass_ctrd_root "$tag")
  NDOCKER_ROOT=$NDT_WORKDIR/ndocker-$tag
  # Fresh means empty: a second pull must download again.
  local d
  for d in "$NDT_CTRD_ROOT_DIR" "$NDOCKER_ROOT"; do
    ndt_unmount_all_under "$d"
    rm -rf "$d"
  done
  lass_ndocker_start "$config"
  containerd_start "$@"
}

# lass_ctr_pull_phase TAG LAYERS KEY=VALUE...: fresh daemons with the config
# lass_config_write KEY=VALUE... makes, `ctr pull` of $REF through $SN; sets
# CHAINS (the image's chainIDs, LAYERS of them) and SNAPS (ndockerctl ls
# --json), and checks that every layer was committed.
lass_ctr_pull_phase() {
  local tag=$1 layers=$2
  shift 2
  local config=$NDT_WORKDIR/ndocker-$tag.toml t0 i
  lass_config_write "$config" "$@"
  lass_fresh_daemons "$tag" "$config"
  t0=$(ndt_now)
  ctr_pull "$SN" "$REF"
  ndt_pass "ctr pull of $REF through $SN in $(ndt_elapsed "$t0")s"
  mapfile -t CHAINS < <(image_chain_ids "$REF")
  ((${#CHAINS[@]} == layers)) || ndt_fail "expected $layers chainIDs, got ${#CHAINS[@]}"
  SNAPS=$(lass_ls_json)
  ndt_log "ndockerctl ls --json:"
  lass_show_snapshots "$SNAPS"
  for ((i = 0; i < layers; i++)); do
    [[ "$(lass_snapshot "$SNAPS" "${CHAINS[i]}" | jq -r .kind)" == committed ]] ||
      ndt_fail "snapshot of L$i (${CHAINS[i]}) is not committed"
  done
  ndt_pass "$layers committed layer snapshots named by chainID"
}
