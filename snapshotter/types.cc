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

std::string ClientNameOfKey(const std::string& key) {
  const size_t slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

}  // namespace ndocker
