// The LASS planner on pull timelines (DESIGN §5; paper's strategy 3 and the
// predict policy): LDL at the bottom, in the middle and at the top, one-layer
// images, base layers already present, ctr pulls with everything downloaded.
#include "lass/planner.h"

#include <catch2/catch.hpp>
#include <string>
#include <vector>

namespace ndocker::lass {
namespace {

constexpr int64_t kMiB = 1 << 20;

PullSession Image(const std::vector<int64_t>& sizes) {
  PullSession s;
  s.manifest_digest = "sha256:feedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedfacefeedface";
  for (size_t i = 0; i < sizes.size(); ++i) {
    LayerProgress l;
    l.digest = "sha256:" + std::string(63, 'a') + std::to_string(i % 10);
    l.size = sizes[i];
    s.layers.push_back(l);
  }
  s.config_read = true;
  return s;
}

void Downloading(PullSession& s, size_t i, int64_t offset) {
  s.layers[i].state = BlobState::kDownloading;
  s.layers[i].offset = offset;
}
void Done(PullSession& s, size_t i) { s.layers[i].state = BlobState::kDone; }

// Decides every layer in unpack order, as containerd would prepare them, with
// the download state frozen as given (what the planner sees at each Prepare
// when the store is slow compared with the network).
std::vector<std::string> Rules(const PullSession& s, const PlannerInputs& in) {
  std::vector<std::string> rules;
  for (size_t i = 0; i < s.layers.size(); ++i) rules.push_back(Decide(s, i, in).placement.rule);
  return rules;
}

}  // namespace

TEST_CASE("downloads share the bandwidth, queued ones start in manifest order", "[lass][planner]") {
  // 3 at a time at 3 MiB/s: 0, 1 and 2 start at 1 MiB/s each. 0 and 1 (1 MiB)
  // end at 1 s; then 2 (8 MiB, 7 left) shares with 3 and 4 (1 MiB each):
  // 3 and 4 end at 1 + 1 = 2 s; 2 has 6 MiB left, alone at 3 MiB/s: 2 + 2 = 4 s.
  PullSession s = Image({kMiB, kMiB, 8 * kMiB, kMiB, kMiB});
  const auto ends = PredictDownloadEnds(s, 0, 3.0 * kMiB, 3);
  REQUIRE(ends.size() == 5);
  CHECK(ends[0] == Approx(1.0));
  CHECK(ends[1] == Approx(1.0));
  CHECK(ends[2] == Approx(4.0));
  CHECK(ends[3] == Approx(2.0));
  CHECK(ends[4] == Approx(2.0));

  // Progress counts; done layers and layers below `from` get -1.
  Done(s, 0);
  Downloading(s, 1, kMiB / 2);
  Downloading(s, 2, 7 * kMiB);
  const auto later = PredictDownloadEnds(s, 1, 3.0 * kMiB, 3);
  CHECK(later[0] == -1);
  // 1, 2 and 3 run at 1 MiB/s: 1 ends at 0.5 s; 2 and 3 then get 1.5 MiB/s
  // while 4 joins... all three at 1 MiB/s: 2 (0.5 MiB left) ends at 1 s.
  CHECK(later[1] == Approx(0.5));
  CHECK(later[2] == Approx(1.0));
  CHECK(later[3] < later[4] + 1e-9);
  CHECK(PredictDownloadEnds(s, 3, 3.0 * kMiB, 3)[1] == -1);

  // More downloads running than the configured limit: all of them run.
  PullSession wide = Image({kMiB, kMiB, kMiB, kMiB});
  for (size_t i = 0; i < 4; ++i) Downloading(wide, i, 0);
  const auto all = PredictDownloadEnds(wide, 0, 4.0 * kMiB, 2);
  for (double e : all) CHECK(e == Approx(1.0));
}

TEST_CASE("ldl: LDL in the middle — below it slow, it and above fast", "[lass][planner]") {
  PullSession s = Image({kMiB, kMiB, 8 * kMiB, kMiB / 4, kMiB / 4});
  PlannerInputs in;
  // At the first Prepare nothing has started yet, and no bandwidth is known:
  // the order alone decides. (Frozen state: seen from layer 3, layers 3 and 4
  // are all that is left, so 3 counts as the last one.)
  CHECK(Rules(s, in) ==
        std::vector<std::string>{"ldl-below", "ldl-below", "ldl-last", "ldl-last", "ldl-last"});
  // The same image mid-download, as containerd prepares each layer.
  Downloading(s, 0, kMiB / 2);
  Downloading(s, 1, kMiB / 2);
  Downloading(s, 2, kMiB / 2);
  in.bandwidth = 4.0 * kMiB;
  LayerDecision d0 = Decide(s, 0, in);
  CHECK(d0.placement.tier == Tier::kSlow);
  CHECK(d0.placement.rule == rule::kLdlBelow);
  CHECK(d0.last_index == 2);
  CHECK(d0.times_known);
  CHECK(d0.placement.reason.find("below the last-downloading layer") != std::string::npos);
  Done(s, 0);
  Done(s, 1);
  Downloading(s, 3, 0);
  Downloading(s, 4, 0);
  CHECK(Decide(s, 1, in).placement.rule == rule::kLdlBelow);
  // Layer 2 is prepared while it still downloads: the LDL itself.
  LayerDecision d2 = Decide(s, 2, in);
  CHECK(d2.placement.tier == Tier::kFast);
  CHECK(d2.placement.rule == rule::kLdlLast);
  // Above the LDL: by their Prepare the LDL has been committed, so nothing
  // is left to download.
  Done(s, 2);
  Done(s, 3);
  Done(s, 4);
  CHECK(Decide(s, 3, in).placement.rule == rule::kNoDownloads);
  CHECK(Decide(s, 4, in).placement.tier == Tier::kFast);
}

TEST_CASE("ldl: LDL at the bottom — everything fast", "[lass][planner]") {
  PullSession s = Image({20 * kMiB, kMiB, kMiB, kMiB});
  PlannerInputs in;
  CHECK(Decide(s, 0, in).placement.rule == rule::kLdlLast);
  // By the next Prepare layer 0 is committed, so its download is over.
  Done(s, 0);
  Done(s, 1);
  Done(s, 2);
  Done(s, 3);
  CHECK(Rules(s, in) == std::vector<std::string>{"no-downloads", "no-downloads", "no-downloads",
                                                 "no-downloads"});
}

TEST_CASE("ldl: LDL at the top — every layer below it slow", "[lass][planner]") {
  PullSession s = Image({kMiB, kMiB, kMiB, 20 * kMiB});
  PlannerInputs in;
  CHECK(Rules(s, in) == std::vector<std::string>{"ldl-below", "ldl-below", "ldl-below", "ldl-last"});
}

TEST_CASE("a one-layer image goes fast", "[lass][planner]") {
  PullSession s = Image({50 * kMiB});
  for (Policy p : {Policy::kLdl, Policy::kPredict}) {
    PlannerInputs in;
    in.policy = p;
    in.bandwidth = 10.0 * kMiB;
    LayerDecision d = Decide(s, 0, in);
    CHECK(d.placement.tier == Tier::kFast);
    Done(s, 0);
    CHECK(Decide(s, 0, in).placement.rule == rule::kNoDownloads);
    s.layers[0].state = BlobState::kWaiting;
  }
}

TEST_CASE("base layers already present are not in the way", "[lass][planner]") {
  // Layers 0 and 1 exist (blobs done, snapshots committed earlier): the pull
  // starts at 2. Only layers at or above the prepared one count.
  PullSession s = Image({100 * kMiB, 100 * kMiB, kMiB, 6 * kMiB, kMiB});
  Done(s, 0);
  Done(s, 1);
  PlannerInputs in;
  CHECK(Decide(s, 2, in).placement.rule == rule::kLdlBelow);
  CHECK(Decide(s, 3, in).placement.rule == rule::kLdlLast);
  // Even a base layer whose blob content GC removed (waiting forever) does
  // not count once the layer above it is being prepared.
  s.layers[0].state = BlobState::kWaiting;
  CHECK(Decide(s, 3, in).placement.rule == rule::kLdlLast);
}

TEST_CASE("ctr pulls: everything downloaded before unpack, all layers fast", "[lass][planner]") {
  PullSession s = Image({kMiB, 30 * kMiB, kMiB});
  for (size_t i = 0; i < 3; ++i) Done(s, i);
  for (Policy p : {Policy::kLdl, Policy::kPredict}) {
    PlannerInputs in;
    in.policy = p;
    CHECK(Rules(s, in) == std::vector<std::string>{"no-downloads", "no-downloads", "no-downloads"});
  }
}

TEST_CASE("predict: slow only where the store ends before the last download", "[lass][planner]") {
  // 10 MiB/s link, three at a time. Layer 3 (40 MiB) ends last, near 4.6 s.
  PullSession s = Image({kMiB, 8 * kMiB, kMiB, 40 * kMiB, kMiB});
  PlannerInputs in;
  in.policy = Policy::kPredict;
  in.bandwidth = 10.0 * kMiB;
  in.unpack_ratio = 2.0;
  in.apply_rate = 100e6;
  in.slow_store_rate = 20e6;  // a slow disk: 8 MiB -> 16 MiB unpacked -> ~0.8 s write-back
  LayerDecision d0 = Decide(s, 0, in);
  CHECK(d0.placement.tier == Tier::kSlow);
  CHECK(d0.placement.rule == rule::kPredictOverlaps);
  CHECK(d0.last_index == 3);
  CHECK(d0.placement.reason.find("durable at") != std::string::npos);
  CHECK(d0.slow_durable_s + in.margin_s <= d0.pull_end_s);
  CHECK(Decide(s, 1, in).placement.rule == rule::kPredictOverlaps);
  CHECK(Decide(s, 3, in).placement.rule == rule::kPredictCritical);
  CHECK(Decide(s, 4, in).placement.tier == Tier::kFast);

  // Where ldl would put a layer below the LDL on slow, predict keeps it fast
  // when the slow store cannot finish in time: 30 MiB at the same disk ends
  // after the 31 MiB layer above it, downloaded at the same time, is applied.
  PullSession close = Image({30 * kMiB, 31 * kMiB});
  CHECK(Decide(close, 0, PlannerInputs{}).placement.rule == rule::kLdlBelow);
  LayerDecision c0 = Decide(close, 0, in);
  CHECK(c0.placement.tier == Tier::kFast);
  CHECK(c0.placement.rule == rule::kPredictCritical);

  // A write-back queue ahead of it pushes a layer's durability later: with
  // 200 MB already queued on the 20 MB/s disk, layer 1 would be durable too late.
  PlannerInputs busy = in;
  busy.slow_backlog_bytes = 200e6;
  LayerDecision queued = Decide(s, 1, busy);
  CHECK(queued.placement.rule == rule::kPredictCritical);
  CHECK(queued.slow_durable_s > queued.pull_end_s);

  // Without a measured bandwidth, predict falls back to the ldl order and says so.
  in.bandwidth = 0;
  LayerDecision blind = Decide(s, 0, in);
  CHECK(blind.placement.rule == rule::kPredictOverlaps);
  CHECK_FALSE(blind.times_known);
  CHECK(blind.placement.reason.find("no bandwidth measured yet") != std::string::npos);
}

TEST_CASE("predict: even the LDL goes slow when the applies above it outlast its write-back",
          "[lass][planner]") {
  // The base layer (10 MiB) is the LDL; the 9 MiB layer above it ends just
  // before and is applied after it. A fast disk behind a slow applier: the
  // base is durable on slow before the layer above is applied.
  PullSession s = Image({10 * kMiB, 9 * kMiB, kMiB / 8});
  PlannerInputs in;
  in.policy = Policy::kPredict;
  in.bandwidth = 10.0 * kMiB;
  in.unpack_ratio = 2.0;
  in.apply_rate = 20e6;        // ~0.94 s to apply the 9 MiB layer
  in.slow_store_rate = 200e6;  // ~0.1 s to write back the base
  LayerDecision d = Decide(s, 0, in);
  CHECK(d.last_index == 0);
  CHECK(d.placement.tier == Tier::kSlow);
  CHECK(d.placement.rule == rule::kPredictOverlaps);
  // ldl keeps it fast: it is the last-downloading layer.
  in.policy = Policy::kLdl;
  CHECK(Decide(s, 0, in).placement.rule == rule::kLdlLast);
  // With an HDD-like write-back it would be durable only after the pull: fast.
  in.policy = Policy::kPredict;
  in.slow_store_rate = 20e6;
  CHECK(Decide(s, 0, in).placement.rule == rule::kPredictCritical);
}

}  // namespace ndocker::lass
