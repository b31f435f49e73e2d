// Fast-tier byte budget and the placement it constrains. Pure logic.
//
// The budget bounds the bytes of committed snapshots on the fast tier. A new
// snapshot's size is unknown at Prepare, so Prepare only checks that room is
// left; Commit, which knows the size, moves a snapshot that does not fit to
// the slow tier before anything can use it as a lower layer.
#pragma once

#include <cstdint>
#include <optional>

#include "snapshotter/placement.h"

namespace ndocker {

class FastBudget {
 public:
  // limit_bytes <= 0 means unlimited.
  explicit FastBudget(int64_t limit_bytes) : limit_(limit_bytes > 0 ? limit_bytes : 0) {}

  bool unlimited() const { return limit_ == 0; }
  int64_t limit() const { return limit_; }
  // Room for at least one more byte.
  bool HasRoom(int64_t used) const { return unlimited() || used < limit_; }
  bool Fits(int64_t used, int64_t add) const { return unlimited() || used + add <= limit_; }

 private:
  int64_t limit_;
};

// `want` as is, unless it asks for the fast tier and no room is left: then
// the slow tier (rule budget-full). The pull goes on either way.
Placement FitToBudget(Placement want, const FastBudget& budget, int64_t fast_used);

// A snapshot being committed on `current` with `size` bytes stays unless it
// is on the fast tier and would overflow the budget: then the slow tier
// (rule budget-commit).
std::optional<Placement> MoveAtCommit(Tier current, int64_t size, const FastBudget& budget,
                                      int64_t fast_used_by_others);

}  // namespace ndocker
