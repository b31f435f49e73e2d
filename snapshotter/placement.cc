#include "snapshotter/placement.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/labels.h"

namespace ndocker {

std::string UnpackChainId(const std::string& key, const Labels& labels) {
  if (auto it = labels.find(kSnapshotRefLabel); it != labels.end() && !it->second.empty()) {
    return it->second;
  }
  // containerd's snapshots.UnpackKeyFormat: "extract-<unique> <chainID>".
  if (!absl::StartsWith(key, "extract-")) return "";
  const size_t space = key.rfind(' ');
  if (space == std::string::npos || space + 1 == key.size()) return "";
  return key.substr(space + 1);
}

Placement DefaultPlacement(const PlacementRequest& request, Tier default_tier, Tier container_tier) {
  if (request.kind == Kind::kActive && request.unpack_chain_id.empty()) {
    return {container_tier, rule::kContainerRootfs,
            absl::StrCat("container rootfs: container tier ", TierName(container_tier))};
  }
  return {default_tier, rule::kDefault, absl::StrCat("default tier ", TierName(default_tier))};
}

}  // namespace ndocker
