// LASS as the core's advisor, against a scripted session source: which
// Prepares it answers, the fallbacks, pulls sharing layers, and the plan it
// keeps for `ndockerctl plan`.
#include "lass/advisor.h"

#include <catch2/catch.hpp>

#include "snapshotter/labels.h"

namespace ndocker::lass {
namespace {

constexpr int64_t kMiB = 1 << 20;

class ScriptedSource : public SessionSource {
 public:
  std::vector<PullSession> SessionsWithChain(const std::string& chain_id) const override {
    std::vector<PullSession> out;
    for (const PullSession& s : sessions) {
      for (const LayerProgress& l : s.layers) {
        if (l.chain_id == chain_id) {
          out.push_back(s);
          break;
        }
      }
    }
    return out;
  }
  std::optional<PullSession> SessionByManifest(const std::string& digest) const override {
    for (const PullSession& s : sessions) {
      if (s.manifest_digest == digest) return s;
    }
    return std::nullopt;
  }
  std::optional<std::string> ManifestForIndex(const std::string& digest) const override {
    if (digest == index_digest && !sessions.empty()) return sessions.front().manifest_digest;
    return std::nullopt;
  }
  BandwidthEstimate Bandwidth() const override { return bandwidth; }
  WatcherHealth Health() const override { return health; }

  std::vector<PullSession> sessions;
  BandwidthEstimate bandwidth;
  WatcherHealth health{true, true, "watching"};
  std::string index_digest = "sha256:index";
};

std::string Chain(const std::string& image, size_t i) { return "sha256:chain-" + image + "-" + std::to_string(i); }

// An image whose layers' chainIDs are chain-<name>-<i>, except shared bases.
PullSession Image(const std::string& name, const std::vector<int64_t>& sizes,
                  const std::vector<std::string>& chains = {}) {
  PullSession s;
  s.manifest_digest = "sha256:manifest-" + name;
  s.config_digest = "sha256:config-" + name;
  s.config_read = true;
  for (size_t i = 0; i < sizes.size(); ++i) {
    LayerProgress l;
    l.digest = "sha256:blob-" + name + "-" + std::to_string(i);
    l.size = sizes[i];
    l.chain_id = i < chains.size() ? chains[i] : Chain(name, i);
    s.layers.push_back(l);
  }
  return s;
}

PlacementRequest Unpack(const std::string& chain, const Labels* labels) {
  PlacementRequest r;
  r.key = "extract-1-abcd " + chain;
  r.labels = labels;
  r.kind = Kind::kActive;
  r.unpack_chain_id = chain;
  r.now = absl::FromUnixSeconds(1000);
  return r;
}

}  // namespace

TEST_CASE("advisor: only unpacks, and with the watcher off and unreadable store fall back to the default tier",
          "[lass][advisor]") {
  Labels none;
  PlacementRequest rootfs = Unpack("", &none);
  rootfs.key = "default/1/web";

  AdvisorOptions o;
  o.default_tier = Tier::kSlow;
  Advisor off(o, nullptr);
  CHECK_FALSE(off.Advise(rootfs).has_value());
  auto p = off.Advise(Unpack(Chain("a", 0), &none));
  REQUIRE(p.has_value());
  CHECK(p->tier == Tier::kSlow);
  CHECK(p->rule == rule::kWatcherOff);
  CHECK(p->reason.find("lass.enabled = false") != std::string::npos);

  auto source = std::make_shared<ScriptedSource>();
  source->health = {true, false, "content store /x not found (waiting for containerd)"};
  source->sessions.push_back(Image("a", {kMiB, 8 * kMiB}));
  Advisor blind(o, source);
  p = blind.Advise(Unpack(Chain("a", 0), &none));
  REQUIRE(p.has_value());
  CHECK(p->tier == Tier::kSlow);
  CHECK(p->rule == rule::kStoreUnreadable);
  CHECK(p->reason.find("/x not found") != std::string::npos);
}

TEST_CASE("advisor: no session for the layer means fast", "[lass][advisor]") {
  Labels none;
  auto source = std::make_shared<ScriptedSource>();
  source->sessions.push_back(Image("a", {kMiB, 8 * kMiB}));
  AdvisorOptions o;
  o.default_tier = Tier::kSlow;
  Advisor advisor(o, source);
  auto p = advisor.Advise(Unpack("sha256:unknown", &none));
  REQUIRE(p.has_value());
  CHECK(p->tier == Tier::kFast);
  CHECK(p->rule == rule::kNoSession);
}

TEST_CASE("advisor: ldl across a pull, and the plan it records", "[lass][advisor]") {
  Labels none;
  auto source = std::make_shared<ScriptedSource>();
  source->sessions.push_back(Image("a", {kMiB, kMiB, 8 * kMiB, kMiB / 4}));
  Advisor advisor(AdvisorOptions{}, source);

  auto p0 = advisor.Advise(Unpack(Chain("a", 0), &none));
  REQUIRE(p0.has_value());
  CHECK(p0->tier == Tier::kSlow);
  CHECK(p0->rule == rule::kLdlBelow);
  CommitReport c0;
  c0.key = "extract-1-abcd " + Chain("a", 0);
  c0.name = Chain("a", 0);
  c0.tier = Tier::kSlow;
  c0.rule = p0->rule;
  c0.reason = p0->reason;
  c0.size = 2 * kMiB;
  c0.prepared = absl::FromUnixSeconds(1000);
  c0.committed = absl::FromUnixSeconds(1001);
  advisor.Committed(c0);

  auto plan = advisor.Plan("sha256:manifest-a");
  REQUIRE(plan.ok());
  CHECK(plan->manifest() == "sha256:manifest-a");
  CHECK(plan->config() == "sha256:config-a");
  CHECK(plan->policy() == "ldl");
  CHECK(plan->live());
  REQUIRE(plan->layers_size() == 4);
  CHECK(plan->layers(0).tier() == "slow");
  CHECK(plan->layers(0).rule() == "ldl-below");
  CHECK(plan->layers(0).unpacked_size() == 2 * kMiB);
  CHECK(plan->layers(0).unpack_start_unix_nano() == absl::ToUnixNanos(absl::FromUnixSeconds(1000)));
  CHECK(plan->layers(0).unpack_end_unix_nano() == absl::ToUnixNanos(absl::FromUnixSeconds(1001)));
  CHECK(plan->layers(0).compressed_size() == kMiB);
  CHECK(plan->layers(1).tier().empty());  // not prepared yet
  CHECK(plan->layers(1).state() == "waiting");
  // The index names the same plan; unknown digests are NotFound.
  auto by_index = advisor.Plan("sha256:index");
  REQUIRE(by_index.ok());
  CHECK(by_index->manifest() == "sha256:manifest-a");
  CHECK(advisor.Plan("sha256:nope").status().code() == absl::StatusCode::kNotFound);

  // The plan outlives the watcher's session.
  source->sessions.clear();
  plan = advisor.Plan("sha256:manifest-a");
  REQUIRE(plan.ok());
  CHECK_FALSE(plan->live());
  CHECK(plan->layers(0).rule() == "ldl-below");
  CHECK(plan->layers(0).digest() == "sha256:blob-a-0");
}

TEST_CASE("advisor: a layer another input placed is in the plan and teaches the commit",
          "[lass][advisor]") {
  Labels none;
  auto source = std::make_shared<ScriptedSource>();
  source->sessions.push_back(Image("a", {kMiB, 4 * kMiB}));
  Advisor advisor(AdvisorOptions{}, source);
  const Placement by_static{Tier::kFast, "static-app", "static analysis: the application"};
  advisor.DecidedElsewhere(Unpack(Chain("a", 1), &none), by_static);
  CommitReport c;
  c.key = "extract-1-abcd " + Chain("a", 1);
  c.name = Chain("a", 1);
  c.tier = Tier::kFast;
  c.rule = by_static.rule;
  c.reason = by_static.reason;
  c.size = 8 * kMiB;
  c.prepared = absl::FromUnixSeconds(1000);
  c.committed = absl::FromUnixSeconds(1002);
  advisor.Committed(c);
  auto plan = advisor.Plan("sha256:manifest-a");
  REQUIRE(plan.ok());
  REQUIRE(plan->layers_size() == 2);
  CHECK(plan->layers(1).tier() == "fast");
  CHECK(plan->layers(1).rule() == "static-app");
  CHECK(plan->layers(1).reason() == by_static.reason);
  CHECK(plan->layers(1).unpacked_size() == 8 * kMiB);
  CHECK(plan->layers(0).rule().empty());
  // Not an unpack: nothing to record.
  PlacementRequest rootfs;
  rootfs.key = "default/9/container";
  advisor.DecidedElsewhere(rootfs, by_static);
}

TEST_CASE("advisor: two pulls at once sharing a base layer", "[lass][advisor]") {
  Labels none;
  auto source = std::make_shared<ScriptedSource>();
  const std::string base = "sha256:chain-shared-base";
  // For image a the base is below a big layer (slow); for b it is the big one.
  source->sessions.push_back(Image("a", {kMiB, 30 * kMiB}, {base}));
  source->sessions.push_back(Image("b", {kMiB, kMiB / 8}, {base}));
  Advisor advisor(AdvisorOptions{}, source);
  auto p = advisor.Advise(Unpack(base, &none));
  REQUIRE(p.has_value());
  // On b's critical path: fast, and the reason says it is shared.
  CHECK(p->tier == Tier::kFast);
  CHECK(p->rule == rule::kLdlLast);
  CHECK(p->reason.find("shared by 2 pulls") != std::string::npos);
  // Both plans record the decision.
  CHECK(advisor.Plan("sha256:manifest-a")->layers(0).rule() == "ldl-last");
  CHECK(advisor.Plan("sha256:manifest-b")->layers(0).rule() == "ldl-last");

  // When both say slow, slow.
  source->sessions[1] = Image("b", {kMiB, 30 * kMiB}, {base});
  p = advisor.Advise(Unpack(base, &none));
  REQUIRE(p.has_value());
  CHECK(p->tier == Tier::kSlow);
}

TEST_CASE("advisor: the CRI manifest label picks the session", "[lass][advisor]") {
  auto source = std::make_shared<ScriptedSource>();
  const std::string base = "sha256:chain-shared-base";
  source->sessions.push_back(Image("a", {kMiB, 30 * kMiB}, {base}));
  source->sessions.push_back(Image("b", {kMiB, kMiB / 8}, {base}));
  Advisor advisor(AdvisorOptions{}, source);
  Labels cri{{std::string(kCriManifestDigestLabel), "sha256:manifest-a"},
             {std::string(kSnapshotRefLabel), base}};
  auto p = advisor.Advise(Unpack(base, &cri));
  REQUIRE(p.has_value());
  CHECK(p->tier == Tier::kSlow);  // only a's view counts
  CHECK(p->rule == rule::kLdlBelow);
}

TEST_CASE("advisor: learns unpack ratio and apply rate from commits", "[lass][advisor]") {
  Labels none;
  auto source = std::make_shared<ScriptedSource>();
  source->sessions.push_back(Image("a", {10 * kMiB, 10 * kMiB}));
  source->sessions[0].layers[0].state = BlobState::kDone;
  source->sessions[0].layers[0].download_end = absl::FromUnixSeconds(1000);
  AdvisorOptions o;
  o.policy = Policy::kPredict;
  o.measured_slow_rate = [] { return 42e6; };
  Advisor advisor(o, source);
  const PlannerInputs before = advisor.CurrentInputs();
  CHECK(before.slow_store_rate == 42e6);
  CHECK(before.policy == Policy::kPredict);
  REQUIRE(advisor.Advise(Unpack(Chain("a", 0), &none)).has_value());
  CommitReport c;
  c.key = "extract-1-abcd " + Chain("a", 0);
  c.name = Chain("a", 0);
  c.size = 40 * kMiB;  // ratio 4
  c.prepared = absl::FromUnixSeconds(999);
  c.committed = absl::FromUnixSeconds(1000) + absl::Milliseconds(500);  // 80 MiB/s
  advisor.Committed(c);
  const PlannerInputs after = advisor.CurrentInputs();
  CHECK(after.unpack_ratio > before.unpack_ratio);
  CHECK(after.unpack_ratio < 4.0);
  CHECK(after.apply_rate < before.apply_rate);
  // A commit LASS did not place teaches nothing.
  CommitReport other = c;
  other.key = "default/1/web";
  advisor.Committed(other);
  CHECK(advisor.CurrentInputs().unpack_ratio == after.unpack_ratio);
}

}  // namespace ndocker::lass
