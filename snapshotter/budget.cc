#include "snapshotter/budget.h"

#include "absl/strings/str_cat.h"

namespace ndocker {

TierChoice ChooseTier(std::optional<Tier> requested, Tier default_tier, const FastBudget& budget,
                      int64_t fast_used) {
  const Tier want = requested.value_or(default_tier);
  const std::string why = requested ? absl::StrCat("label ndocker.tier=", TierName(want))
                                    : absl::StrCat("default tier ", TierName(want));
  if (want == Tier::kFast && !budget.HasRoom(fast_used)) {
    return {Tier::kSlow, absl::StrCat(why, ", but the fast tier is full (", fast_used, " of ",
                                      budget.limit(), " bytes)")};
  }
  return {want, why};
}

TierChoice TierAtCommit(Tier current, int64_t size, const FastBudget& budget,
                        int64_t fast_used_by_others) {
  if (current == Tier::kFast && !budget.Fits(fast_used_by_others, size)) {
    return {Tier::kSlow, absl::StrCat("moved to slow at commit: ", size, " bytes do not fit in the ",
                                      "fast budget (", fast_used_by_others, " of ", budget.limit(),
                                      " bytes used)")};
  }
  return {current, "stays"};
}

}  // namespace ndocker
