#include "hbcsa/promoter/demoter.h"

#include "absl/container/flat_hash_set.h"
#include "snapshotter/labels.h"
#include "snapshotter/log.h"

namespace ndocker::hbcsa {

DemotionPlan PlanDemotion(const HotLayerVersion& version, const std::vector<SnapshotEntry>& entries) {
  absl::flat_hash_set<uint64_t> layers;
  for (const HotLayerSource& s : version.layers) layers.insert(s.snapshot_id);
  DemotionPlan plan;
  for (const SnapshotEntry& e : entries) {
    const SnapshotRecord& r = e.record;
    if (r.kind != Kind::kCommitted || r.tier != Tier::kFast || !layers.contains(r.id)) continue;
    if (r.labels.contains(kTierLabel)) {
      plan.pinned_keys.push_back(e.key);
    } else {
      plan.keys.push_back(e.key);
    }
  }
  return plan;
}

absl::StatusOr<DemotionPlan> DemoteLayers(Snapshotter& core, const HotLayerVersion& version) {
  absl::StatusOr<std::vector<SnapshotEntry>> entries = core.Entries();
  if (!entries.ok()) return entries.status();
  DemotionPlan plan = PlanDemotion(version, *entries);
  for (const std::string& key : plan.keys) {
    absl::StatusOr<std::vector<MigrationOutcome>> queued = core.Migrate(key, Tier::kSlow, /*wait=*/false);
    if (!queued.ok()) return queued.status();
  }
  spdlog::info("msg=\"layers demoted: the hot layer holds their hot files\" hot_layer={} to_slow={} pinned_fast={}",
               version.id, plan.keys.size(), plan.pinned_keys.size());
  return plan;
}

}  // namespace ndocker::hbcsa
