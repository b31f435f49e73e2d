#include "hbcsa/promoter/demoter.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/time/clock.h"
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

absl::StatusOr<DemotionPlan> DemoteLayers(Snapshotter& core, const HotLayerVersion& version, bool wait) {
  absl::StatusOr<std::vector<SnapshotEntry>> entries = core.Entries();
  if (!entries.ok()) return entries.status();
  DemotionPlan plan = PlanDemotion(version, *entries);
  for (const std::string& key : plan.keys) {
    // Already moving (an earlier demotion of a shared layer): with `wait`,
    // wait for it; the mover refuses a second move of the same layer.
    auto in_flight = [&core, &key] {
      for (const MigrationProgress& m : core.Health().migrations) {
        if (m.key == key) return true;
      }
      return false;
    };
    if (in_flight()) {
      if (!wait) continue;
      while (in_flight()) absl::SleepFor(absl::Milliseconds(50));
    }
    absl::StatusOr<std::vector<MigrationOutcome>> queued = core.Migrate(key, Tier::kSlow, wait);
    if (!queued.ok()) return queued.status();
  }
  spdlog::info("msg=\"layers demoted: the hot layer holds their hot files\" hot_layer={} to_slow={} pinned_fast={}",
               version.id, plan.keys.size(), plan.pinned_keys.size());
  return plan;
}

std::vector<std::string> PickHotLayersToRetire(const std::vector<HotLayerRecord>& records, int64_t excess) {
  std::vector<std::pair<const HotLayerRecord*, const HotLayerVersion*>> ready;
  for (const HotLayerRecord& r : records) {
    if (const HotLayerVersion* v = r.Current()) ready.emplace_back(&r, v);
  }
  std::sort(ready.begin(), ready.end(), [](const auto& a, const auto& b) {
    return a.second->finished != b.second->finished ? a.second->finished < b.second->finished
                                                    : a.second->id < b.second->id;
  });
  std::vector<std::string> images;
  int64_t picked = 0;
  for (const auto& [record, version] : ready) {
    if (picked >= excess) break;
    images.push_back(record->image);
    picked += version->bytes;
  }
  return images;
}

int64_t RetiredHotBytes(const std::vector<HotLayerRecord>& records) {
  int64_t bytes = 0;
  for (const HotLayerRecord& r : records) {
    for (const HotLayerVersion& v : r.versions) {
      if (v.state == HotState::kRetired) bytes += v.bytes;
    }
  }
  return bytes;
}

absl::StatusOr<int64_t> RetireOldestHotLayers(HotLayerStore& store, int64_t excess) {
  absl::StatusOr<std::vector<HotLayerRecord>> all = store.List();
  if (!all.ok()) return all.status();
  int64_t bytes = 0;
  for (const std::string& image : PickHotLayersToRetire(*all, excess)) {
    for (const HotLayerRecord& r : *all) {
      if (r.image == image && r.Current() != nullptr) bytes += r.Current()->bytes;
    }
    absl::StatusOr<std::vector<uint64_t>> retired = store.RetireImage(image);
    if (!retired.ok()) return retired.status();
    spdlog::info("msg=\"hot layer retired by fast-tier pressure\" image={} versions={}", image, retired->size());
  }
  return bytes;
}

}  // namespace ndocker::hbcsa
