// Demotion (HBCSA): once an image's hot layer is ready, its layers' bytes
// are read at a cold start only for files outside the profile, so the layers
// go to the slow tier; the fast tier keeps the hot layer (metadata and hot
// data). A layer pinned with the ndocker.tier label stays where it was put.
// The moves are queued on the core's mover (throttled, idle I/O, safe under
// live mounts); a layer shared with an image that has no hot layer yet moves
// too, as in the paper (that image's next trace promotes it).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hbcsa/promoter/hot_layer_record.h"
#include "snapshotter/snapshotter.h"

namespace ndocker::hbcsa {

struct DemotionPlan {
  std::vector<std::string> keys;         // fast-tier layers to move to slow
  std::vector<std::string> pinned_keys;  // fast, but pinned by the label
};

// Pure: which of the version's layers (by snapshot id) to move, from the
// core's entries.
DemotionPlan PlanDemotion(const HotLayerVersion& version, const std::vector<SnapshotEntry>& entries);

// Queues the plan's moves on the core's mover; returns the plan.
absl::StatusOr<DemotionPlan> DemoteLayers(Snapshotter& core, const HotLayerVersion& version);

}  // namespace ndocker::hbcsa
