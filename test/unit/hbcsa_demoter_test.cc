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

}  // namespace
}  // namespace ndocker::hbcsa
