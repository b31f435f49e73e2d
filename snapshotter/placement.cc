#include "snapshotter/placement.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/labels.h"

namespace ndocker {

std::string UnpackChainId(const std::string& key, const Labels& labels) {
  if (auto it = labels.find(kSnapshotRefLabel); it != labels.end() && !it->second.empty()) {
    return it->second;
  }
  // containerd's snapshots.UnpackKeyFormat is "extract-<unique> <chainID>";
  // its metadata layer hands the backend "<namespace>/<seq>/<client key>".
  absl::string_view client_key = key;
  if (!absl::StartsWith(client_key, "extract-")) {
    const size_t ns_end = client_key.find('/');
    const size_t seq_end = ns_end == absl::string_view::npos ? ns_end : client_key.find('/', ns_end + 1);
    if (seq_end == absl::string_view::npos) return "";
    client_key.remove_prefix(seq_end + 1);
    if (!absl::StartsWith(client_key, "extract-")) return "";
  }
  const size_t space = client_key.rfind(' ');
  if (space == absl::string_view::npos || space + 1 == client_key.size()) return "";
  return std::string(client_key.substr(space + 1));
}

Placement DefaultPlacement(const PlacementRequest& request, Tier default_tier, Tier container_tier) {
  if (request.kind == Kind::kActive && request.unpack_chain_id.empty()) {
    return {container_tier, rule::kContainerRootfs,
            absl::StrCat("container rootfs: container tier ", TierName(container_tier))};
  }
  return {default_tier, rule::kDefault, absl::StrCat("default tier ", TierName(default_tier))};
}

}  // namespace ndocker
