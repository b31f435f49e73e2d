// Demotion by pressure: which layers leave the fast tier (least recently
// used first, pinned ones never, down to the low watermark) and a check on a
// real store, whose shed hook is asked only for what layers could not free.
#include "snapshotter/fast_pressure.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "snapshotter/labels.h"
#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;

const absl::Time kT0 = absl::FromUnixSeconds(1'000'000);

SnapshotEntry Layer(std::string key, uint64_t id, Tier tier, int64_t size, absl::Time created, Labels labels = {}) {
  SnapshotEntry e;
  e.key = std::move(key);
  e.record.id = id;
  e.record.kind = Kind::kCommitted;
  e.record.tier = tier;
  e.record.size = size;
  e.record.created = created;
  e.record.labels = std::move(labels);
  return e;
}

TEST_CASE("PlanPressure: least recently used fast layers, those under containers last", "[pressure]") {
  SnapshotEntry upper = Layer("c/container", 9, Tier::kFast, 500, kT0);
  upper.record.kind = Kind::kActive;
  upper.record.parent = "l/f";  // a running container stands on l/f
  const std::vector<SnapshotEntry> entries = {
      Layer("l/a", 1, Tier::kFast, 300, kT0),                          // used at t0+50
      Layer("l/b", 2, Tier::kFast, 300, kT0 + absl::Seconds(10)),      // never used
      Layer("l/c", 3, Tier::kFast, 300, kT0, {{kTierLabel, "fast"}}),  // pinned
      Layer("l/d", 4, Tier::kSlow, 300, kT0),                          // already slow
      Layer("l/e", 5, Tier::kFast, 100, kT0 + absl::Seconds(20)),      // never used, newer
      Layer("l/f", 6, Tier::kFast, 50, kT0),                           // oldest, but under a container
      upper,                                                           // not a layer
  };
  const absl::flat_hash_map<uint64_t, absl::Time> used = {{1, kT0 + absl::Seconds(50)}};
  const Watermarks marks;  // 0.90, 0.75
  auto keys = [](const PressurePlan& p) {
    std::vector<std::string> k;
    for (const PressureCandidate& c : p.candidates) k.push_back(c.key);
    return k;
  };

  SECTION("under the high watermark, or no budget: nothing") {
    PressurePlan p = PlanPressure(entries, used, {}, 900, 0, 1000, marks);
    CHECK(p.to_free == 0);
    CHECK(p.candidates.empty());
    CHECK(PlanPressure(entries, used, {}, 5000, 0, 0, marks).candidates.empty());
  }
  SECTION("over it: down to the low watermark, oldest use first, layers under containers last") {
    PressurePlan p = PlanPressure(entries, used, {}, 950, 0, 1000, marks);
    CHECK(p.effective == 950);
    CHECK(p.to_free == 200);
    CHECK(keys(p) == std::vector<std::string>{"l/b", "l/e", "l/a", "l/f"});
    CHECK(p.candidates[0].bytes == 300);
  }
  SECTION("bytes already leaving are not freed twice") {
    // l/a moving to slow (300) and a retired hot layer (100) leave 950 - 400.
    PressurePlan p = PlanPressure(entries, used, {"l/a"}, 950, 100, 1000, marks);
    CHECK(p.effective == 550);
    CHECK(p.to_free == 0);
    p = PlanPressure(entries, used, {"l/a"}, 1400, 100, 1000, marks);
    CHECK(p.to_free == 1000 - 750);
    CHECK(keys(p) == std::vector<std::string>{"l/b", "l/e", "l/f"});
  }
}

TEST_CASE("FastPressure: demotes the unused layers of a store over its high watermark, then sheds", "[pressure]") {
  TempDir dir;
  SnapshotterOptions o;
  o.root = dir / "root";
  o.fast_path = dir / "fast";
  o.slow_path = dir / "slow";
  o.default_tier = Tier::kFast;
  o.container_tier = Tier::kFast;  // the layers below are made as plain Prepare + Commit
  o.fast_budget_bytes = 1 << 20;
  auto opened = Snapshotter::Open(std::move(o));
  REQUIRE(opened.ok());
  Snapshotter& s = **opened;
  for (const auto& [name, parent] : std::vector<std::pair<std::string, std::string>>{
           {"l1", ""}, {"l2", "l1"}, {"other", ""}}) {
    absl::StatusOr<std::vector<Mount>> m = s.Prepare("tmp-" + name, parent, {});
    REQUIRE(m.ok());
    for (const std::string& opt : (*m)[0].options) {
      if (opt.rfind("upperdir=", 0) == 0) std::ofstream(opt.substr(9) + "/f") << std::string(5000, 'x');
    }
    if ((*m)[0].type == "bind") std::ofstream((*m)[0].source + "/f") << std::string(5000, 'x');
    REQUIRE(s.Commit(name, "tmp-" + name, {}).ok());
  }
  // A view over l2 uses l1 and l2; `other` was never used.
  REQUIRE(s.View("v", "l2", {}).ok());
  CHECK(s.LastUsed().size() == 2);

  std::vector<int64_t> shed_asked;
  FastPressure::Wiring w;
  w.core = &s;
  int64_t retired = 0;  // what the shed hook set going, still counted until dropped
  w.shed = [&](int64_t excess) {
    shed_asked.push_back(excess);
    retired += excess;
    return excess;
  };
  w.leaving = [&] { return retired; };
  FastPressure pressure(w);

  absl::StatusOr<PressureReport> quiet = pressure.RunOnce();
  REQUIRE(quiet.ok());
  CHECK_FALSE(quiet->over_high);
  CHECK(quiet->demoted.empty());
  CHECK(shed_asked.empty());

  // Hot layers (counted by HBCSA) push it over: 95% of the budget.
  const int64_t layers = s.FastBytesCounted();
  REQUIRE(layers > 0);
  s.AddFastBytes((1 << 20) * 95 / 100 - layers);
  absl::StatusOr<PressureReport> r = pressure.RunOnce();
  REQUIRE(r.ok());
  CHECK(r->over_high);
  CHECK(r->demoted == std::vector<std::string>{"other", "l1", "l2"});
  absl::StatusOr<std::vector<SnapshotEntry>> after = s.Entries();
  REQUIRE(after.ok());
  for (const SnapshotEntry& e : *after) {
    if (e.record.kind == Kind::kCommitted) CHECK(e.record.tier == Tier::kSlow);
  }
  CHECK(r->counted_after == r->counted_before - layers);
  // The layers were not enough: the shed hook gets the rest above 75%.
  REQUIRE(shed_asked.size() == 1);
  CHECK(shed_asked[0] == r->counted_after - (1 << 20) * 3 / 4);

  // Next check: the retired hot layers are still counted (a container uses
  // them), but already leaving: nothing more is retired.
  absl::StatusOr<PressureReport> again = pressure.RunOnce();
  REQUIRE(again.ok());
  CHECK_FALSE(again->over_high);
  CHECK(shed_asked.size() == 1);
}

}  // namespace
}  // namespace ndocker
