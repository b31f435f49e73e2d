// An image's layer snapshots as the snapshotter holds them now: from the top
// layer's chainID down through the parents, with each one's current copy.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hbcsa/promoter/promoter.h"
#include "snapshotter/layout.h"
#include "snapshotter/snapshotter.h"

namespace ndocker::hbcsa {

// The committed snapshot named `top_chain` (a key equal to it or ending in
// "/<chainID>", as containerd names unpacked layers per namespace) and its
// parents, top first. NotFound when the top is not held.
absl::StatusOr<std::vector<ChainLayer>> ChainFromEntries(const std::vector<SnapshotEntry>& entries,
                                                         const Layout& layout, const std::string& top_chain);

// The same, read from the core.
absl::StatusOr<std::vector<ChainLayer>> ReadImageChain(Snapshotter& core, const std::string& top_chain);

}  // namespace ndocker::hbcsa
