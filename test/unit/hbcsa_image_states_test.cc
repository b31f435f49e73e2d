// `ndockerctl images`: the per-image view of bytes per tier, hot layer and
// state, from profiles, hot layer records, the store and what is under way.
#include <catch2/catch.hpp>
#include <string>
#include <vector>

#include "hbcsa/promoter/image_states.h"
#include "nlohmann/json.hpp"
#include "snapshotter/labels.h"

namespace ndocker::hbcsa {
namespace {

const std::string kA = "sha256:" + std::string(64, 'a');
const std::string kB = "sha256:" + std::string(64, 'b');

SnapshotEntry Layer(const std::string& chain, uint64_t id, Tier tier, int64_t size, const std::string& parent,
                    Labels labels = {}) {
  SnapshotEntry e;
  e.key = "default/" + std::to_string(id) + "/" + chain;
  e.record.id = id;
  e.record.kind = Kind::kCommitted;
  e.record.tier = tier;
  e.record.size = size;
  e.record.parent = parent;
  e.record.labels = std::move(labels);
  return e;
}

Profile ProfileOf(const std::string& image, const std::string& top) {
  Profile p;
  p.image = image;
  p.top_chain = top;
  p.version = 3;
  p.runs = 2;
  return p;
}

HotLayerRecord ReadyHot(const std::string& image, const std::string& top, uint64_t id, int64_t bytes) {
  HotLayerRecord r;
  r.image = image;
  r.top_chain = top;
  HotLayerVersion v;
  v.id = id;
  v.state = HotState::kReady;
  v.bytes = bytes;
  r.versions.push_back(v);
  return r;
}

TEST_CASE("DescribeImages: bytes per tier along the chain, hot layer, state", "[hbcsa][images]") {
  // Image A: c1 (slow) <- c2 (fast) <- c3 (fast, pinned). Image B: c1 <- c4 (slow).
  const std::vector<SnapshotEntry> entries = {
      Layer("sha256:c1", 1, Tier::kSlow, 100, ""),
      Layer("sha256:c2", 2, Tier::kFast, 20, "default/1/sha256:c1"),
      Layer("sha256:c3", 3, Tier::kFast, 3, "default/2/sha256:c2", {{kTierLabel, "fast"}}),
      Layer("sha256:c4", 4, Tier::kSlow, 7, "default/1/sha256:c1"),
  };
  const std::vector<Profile> profiles = {ProfileOf(kA, "sha256:c3"), ProfileOf(kB, "sha256:c4")};
  const std::vector<HotLayerRecord> hot = {ReadyHot(kB, "sha256:c4", 9, 50)};

  std::vector<ImageState> s = DescribeImages(profiles, hot, entries, {});
  REQUIRE(s.size() == 2);
  CHECK(s[0].image == kA);
  CHECK(s[0].layers == 3);
  CHECK(s[0].layers_fast == 2);
  CHECK(s[0].pinned_fast == 1);
  CHECK(s[0].fast_bytes == 23);
  CHECK(s[0].slow_bytes == 100);
  CHECK(s[0].hot_layer == 0);
  CHECK(s[0].state == "profiled");
  CHECK(s[1].image == kB);
  CHECK(s[1].layers == 2);
  CHECK(s[1].fast_bytes == 0);
  CHECK(s[1].slow_bytes == 107);
  CHECK(s[1].hot_layer == 9);
  CHECK(s[1].hot_bytes == 50);
  CHECK(s[1].state == "done");

  SECTION("under way: tracing before demoting before promoting") {
    ImageActivity a;
    a.promoting = {kA};
    CHECK(DescribeImages(profiles, hot, entries, a)[0].state == "promoting");
    a.moving_to_slow = {"default/2/sha256:c2"};
    CHECK(DescribeImages(profiles, hot, entries, a)[0].state == "demoting");
    a.tracing_tops = {"sha256:c3"};
    CHECK(DescribeImages(profiles, hot, entries, a)[0].state == "tracing");
    CHECK(DescribeImages(profiles, hot, entries, a)[1].state == "done");
  }
  SECTION("a hot layer with unpinned layers left on fast: promoted") {
    const std::vector<HotLayerRecord> both = {ReadyHot(kA, "sha256:c3", 8, 10), hot[0]};
    CHECK(DescribeImages(profiles, both, entries, {})[0].state == "promoted");
  }
  SECTION("JSON") {
    nlohmann::json j = nlohmann::json::parse(EncodeImageState(s[1]));
    CHECK(j["state"] == "done");
    CHECK(j["hot_layer"] == 9);
    CHECK(j["slow_bytes"] == 107);
    CHECK(j["top_chain"] == "sha256:c4");
  }
}

}  // namespace
}  // namespace ndocker::hbcsa
