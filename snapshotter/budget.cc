#include "snapshotter/budget.h"

#include "absl/strings/str_cat.h"

namespace ndocker {

Placement FitToBudget(Placement want, const FastBudget& budget, int64_t fast_used) {
  if (want.tier != Tier::kFast || budget.HasRoom(fast_used)) return want;
  return {Tier::kSlow, rule::kBudgetFull,
          absl::StrCat(want.reason, ", but the fast tier is full (", fast_used, " of ",
                       budget.limit(), " bytes)")};
}

std::optional<Placement> MoveAtCommit(Tier current, int64_t size, const FastBudget& budget,
                                      int64_t fast_used_by_others) {
  if (current != Tier::kFast || budget.Fits(fast_used_by_others, size)) return std::nullopt;
  return Placement{Tier::kSlow, rule::kBudgetCommit,
                   absl::StrCat("moved to slow at commit: ", size, " bytes do not fit in the ",
                                "fast budget (", fast_used_by_others, " of ", budget.limit(),
                                " bytes used)")};
}

}  // namespace ndocker
