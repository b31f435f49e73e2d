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
#include "hbcsa/promoter/hot_layer_store.h"
#include "snapshotter/snapshotter.h"

namespace ndocker::hbcsa {

struct DemotionPlan {
  std::vector<std::string> keys;         // fast-tier layers to move to slow
  std::vector<std::string> pinned_keys;  // fast, but pinned by the label
};

// Pure: which of the version's layers (by snapshot id) to move, from the
// core's entries.
DemotionPlan PlanDemotion(const HotLayerVersion& version, const std::vector<SnapshotEntry>& entries);

// Queues the plan's moves on the core's mover (with `wait`: returns when
// each has switched tiers); returns the plan.
absl::StatusOr<DemotionPlan> DemoteLayers(Snapshotter& core, const HotLayerVersion& version, bool wait = false);

// Fast-tier pressure's last resort (snapshotter/fast_pressure.h): the images
// whose ready hot layers to retire, oldest ready first, until their bytes
// reach `excess`. Pure.
std::vector<std::string> PickHotLayersToRetire(const std::vector<HotLayerRecord>& records, int64_t excess);

// Bytes of retired versions: still on the fast tier until no mount uses
// them (fast-tier pressure counts them as leaving).
int64_t RetiredHotBytes(const std::vector<HotLayerRecord>& records);

// Retires them; returns their bytes (given back once no mount uses them:
// the hot stacks' reaper drops them).
absl::StatusOr<int64_t> RetireOldestHotLayers(HotLayerStore& store, int64_t excess);

}  // namespace ndocker::hbcsa
