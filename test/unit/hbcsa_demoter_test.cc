// Demotion plan: the hot layer's fast-tier layers go to slow, pinned ones
// stay, nothing outside the image moves.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "hbcsa/promoter/demoter.h"
#include "snapshotter/labels.h"

namespace ndocker::hbcsa {
namespace {

SnapshotEntry Committed(std::string key, uint64_t id, Tier tier, Labels labels = {}) {
  SnapshotEntry e;
  e.key = std::move(key);
  e.record.id = id;
  e.record.kind = Kind::kCommitted;
  e.record.tier = tier;
  e.record.labels = std::move(labels);
  return e;
}

TEST_CASE("PlanDemotion: the image's fast layers move, pinned and foreign ones stay", "[hbcsa][hot]") {
  HotLayerVersion v;
  v.id = 5;
  for (uint64_t id : {4, 3, 2, 1}) v.layers.push_back(HotLayerSource{"sha256:c" + std::to_string(id), id, 0, Tier::kFast});
  SnapshotEntry active = Committed("default/9/container", 9, Tier::kFast);
  active.record.kind = Kind::kActive;
  active.record.parent = "default/4/sha256:c4";
  const std::vector<SnapshotEntry> entries = {
      Committed("default/1/sha256:c1", 1, Tier::kSlow),                          // already slow
      Committed("default/2/sha256:c2", 2, Tier::kFast),                          // moves
      Committed("default/3/sha256:c3", 3, Tier::kFast, {{kTierLabel, "fast"}}),  // pinned
      Committed("default/4/sha256:c4", 4, Tier::kFast),                          // moves
      Committed("default/8/sha256:other", 8, Tier::kFast),                       // another image's
      active,                                                                    // a container's upper
  };
  const DemotionPlan plan = PlanDemotion(v, entries);
  CHECK(plan.keys == std::vector<std::string>{"default/2/sha256:c2", "default/4/sha256:c4"});
  CHECK(plan.pinned_keys == std::vector<std::string>{"default/3/sha256:c3"});
}

HotLayerRecord ImageWithReady(std::string image, uint64_t id, int64_t bytes, absl::Time ready) {
  HotLayerRecord r;
  r.image = std::move(image);
  HotLayerVersion v;
  v.id = id;
  v.state = HotState::kReady;
  v.bytes = bytes;
  v.finished = ready;
  r.versions.push_back(v);
  return r;
}

TEST_CASE("PickHotLayersToRetire: the oldest ready hot layers until the excess is covered", "[hbcsa][hot]") {
  const absl::Time t0 = absl::FromUnixSeconds(1'000'000);
  HotLayerRecord retired_only = ImageWithReady("sha256:r", 1, 500, t0);
  retired_only.versions[0].state = HotState::kRetired;
  const std::vector<HotLayerRecord> records = {
      ImageWithReady("sha256:new", 4, 100, t0 + absl::Seconds(30)),
      ImageWithReady("sha256:old", 2, 100, t0),
      ImageWithReady("sha256:mid", 3, 100, t0 + absl::Seconds(10)),
      retired_only,  // already going
  };
  CHECK(PickHotLayersToRetire(records, 0).empty());
  CHECK(PickHotLayersToRetire(records, 1) == std::vector<std::string>{"sha256:old"});
  CHECK(PickHotLayersToRetire(records, 150) == std::vector<std::string>{"sha256:old", "sha256:mid"});
  CHECK(PickHotLayersToRetire(records, 10000) == std::vector<std::string>{"sha256:old", "sha256:mid", "sha256:new"});
}

}  // namespace
}  // namespace ndocker::hbcsa
