#!/usr/bin/env bash
# LASS placement of a `ctr image pull`: ctr fetches every layer before it
# unpacks (no labels at all on Prepare/Commit), so when a layer is prepared
# nothing downloads any more.
#  1. fast budget unlimited: every layer is fast with rule no-downloads;
#  2. fast budget 3 MiB for an image of 6 MiB (layers 1, 1, 2, 2 MiB of random
#     data): the pull succeeds; a layer on the fast tier has rule
#     no-downloads, one on the slow tier budget-full or budget-commit; L0
#     (1 MiB) is fast, at least one layer is slow, and the fast committed
#     bytes (ndockerctl ls --json sizes) stay within the budget.
# Each phase on fresh containerd and ndocker roots.
# shellcheck disable=SC2119 # lib functions take optional arguments
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/lass_lib.sh"

ndt_setup lass_ctr
ndt_require_cmds numfmt
SN=$NDOCKER_SNAPSHOTTER_NAME

ndt_step "registry and an image of random layers"
registry_start
image_build_random "$NDT_WORKDIR/oci" v1 1M 1M 2M 2M
image_push "$NDT_WORKDIR/oci" v1 ndt/lass-ctr
REF=$NDT_IMAGE_REF


ndt_step "1. ctr pull, no budget: everything fast, no-downloads"
lass_ctr_pull_phase nobudget 4 enabled=true policy=ldl containerd_root="$(lass_ctrd_root nobudget)"
for i in 0 1 2 3; do
  lass_expect_placement "$SNAPS" "${CHAINS[i]}" fast no-downloads "ctr pull: L$i (all blobs fetched before the unpack)"
done

ndt_step "2. ctr pull, fast budget 3 MiB < image (6 MiB)"
BUDGET=3MiB
lass_ctr_pull_phase budget 4 enabled=true policy=ldl containerd_root="$(lass_ctrd_root budget)" budget="$BUDGET"
budget_bytes=$(numfmt --from=iec "${BUDGET%iB}")
slow=0
for i in 0 1 2 3; do
  s=$(lass_snapshot "$SNAPS" "${CHAINS[i]}")
  case $(jq -r .tier <<<"$s") in
    fast) lass_expect_placement "$SNAPS" "${CHAINS[i]}" fast no-downloads "budget: L$i fits the fast budget" ;;
    slow)
      slow=$((slow + 1))
      lass_expect_placement "$SNAPS" "${CHAINS[i]}" slow 'budget-full|budget-commit' "budget: L$i does not fit the fast budget"
      ;;
    *) ndt_fail "L$i has tier $(jq -r .tier <<<"$s")" ;;
  esac
done
[[ "$(lass_snapshot "$SNAPS" "${CHAINS[0]}" | jq -r .tier)" == fast ]] || lass_fail "budget: L0 (1 MiB) is not fast though it fits $BUDGET"
if ((slow > 0)); then ndt_pass "budget: $slow of 4 layers on the slow tier"; else lass_fail "budget: all 4 layers (6 MiB) fast with a $BUDGET budget"; fi
fast_bytes=$(jq '[.[] | select(.kind == "committed" and .tier == "fast") | .size] | add // 0' <<<"$SNAPS")
if ((fast_bytes <= budget_bytes)); then
  ndt_pass "budget: fast committed bytes $fast_bytes <= $budget_bytes"
else
  lass_fail "budget: fast committed bytes $fast_bytes > budget $budget_bytes"
fi
"$NDOCKERCTL_BIN" --address "$NDOCKER_SOCK" status >&2 || ndt_fail "ndockerctl status failed"

lass_finish
