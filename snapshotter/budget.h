// Fast-tier byte budget and the tier choice it constrains. Pure logic.
//
// The budget bounds the bytes of committed snapshots on the fast tier. A new
// snapshot's size is unknown at Prepare, so Prepare only checks that room is
// left; Commit, which knows the size, moves a snapshot that does not fit to
// the slow tier before anything can use it as a lower layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "snapshotter/types.h"

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

struct TierChoice {
  Tier tier;
  std::string reason;  // why, for logs and ndockerctl
};

// Tier for a new snapshot: the label's request, else the default; fast only
// while the fast tier has room.
TierChoice ChooseTier(std::optional<Tier> requested, Tier default_tier, const FastBudget& budget,
                      int64_t fast_used);

// Tier for a snapshot being committed on `current` with `size` bytes: it stays
// unless it is on the fast tier and would overflow the budget.
TierChoice TierAtCommit(Tier current, int64_t size, const FastBudget& budget,
                        int64_t fast_used_by_others);

}  // namespace ndocker
