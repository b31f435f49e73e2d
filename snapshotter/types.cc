#include "snapshotter/types.h"

namespace ndocker {

const char* KindName(Kind kind) {
  switch (kind) {
    case Kind::kView: return "view";
    case Kind::kActive: return "active";
    case Kind::kCommitted: return "committed";
    case Kind::kUnknown: break;
  }
  return "unknown";
}

const char* TierName(Tier tier) { return tier == Tier::kFast ? "fast" : "slow"; }

}  // namespace ndocker
