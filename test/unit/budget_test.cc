// Fast-tier budget and tier choice (DESIGN §5: the budget is never exceeded).
#include "snapshotter/budget.h"

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <optional>

namespace ndocker {

TEST_CASE("a limit of zero or less means unlimited", "[budget]") {
  for (int64_t limit : {int64_t{0}, int64_t{-1}, std::numeric_limits<int64_t>::min()}) {
    FastBudget b(limit);
    INFO("limit " << limit);
    CHECK(b.unlimited());
    CHECK(b.limit() == 0);
    CHECK(b.HasRoom(0));
    CHECK(b.HasRoom(std::numeric_limits<int64_t>::max()));
    CHECK(b.Fits(0, 0));
    CHECK(b.Fits(int64_t{1} << 50, int64_t{1} << 50));
    CHECK(b.Fits(std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::max()));
  }
  FastBudget one(1);
  CHECK_FALSE(one.unlimited());
  CHECK(one.limit() == 1);
}

TEST_CASE("HasRoom and Fits at the boundaries", "[budget]") {
  FastBudget b(1000);
  CHECK_FALSE(b.unlimited());
  CHECK(b.limit() == 1000);

  // HasRoom: room for at least one more byte.
  CHECK(b.HasRoom(0));
  CHECK(b.HasRoom(999));
  CHECK_FALSE(b.HasRoom(1000));  // exactly full
  CHECK_FALSE(b.HasRoom(1001));  // over (e.g. after a budget was lowered)

  // Fits: used + add <= limit.
  CHECK(b.Fits(0, 0));
  CHECK(b.Fits(0, 1000));    // fills it exactly
  CHECK(b.Fits(999, 1));     // fills it exactly
  CHECK(b.Fits(1000, 0));    // an empty snapshot on a full budget
  CHECK(b.Fits(400, 600));
  CHECK_FALSE(b.Fits(0, 1001));
  CHECK_FALSE(b.Fits(1000, 1));
  CHECK_FALSE(b.Fits(401, 600));
  CHECK_FALSE(b.Fits(1001, 0));

  FastBudget one(1);
  CHECK(one.HasRoom(0));
  CHECK_FALSE(one.HasRoom(1));
  CHECK(one.Fits(0, 1));
  CHECK_FALSE(one.Fits(1, 1));
  CHECK_FALSE(one.Fits(0, 2));
}

TEST_CASE("ChooseTier without a label uses the default tier", "[budget]") {
  FastBudget unlimited(0);
  TierChoice fast = ChooseTier(std::nullopt, Tier::kFast, unlimited, 123);
  CHECK(fast.tier == Tier::kFast);
  CHECK(fast.reason == "default tier fast");

  TierChoice slow = ChooseTier(std::nullopt, Tier::kSlow, unlimited, 0);
  CHECK(slow.tier == Tier::kSlow);
  CHECK(slow.reason == "default tier slow");

  // A full budget never matters for the slow tier.
  FastBudget b(100);
  TierChoice slow_full = ChooseTier(std::nullopt, Tier::kSlow, b, 100);
  CHECK(slow_full.tier == Tier::kSlow);
  CHECK(slow_full.reason == "default tier slow");
}

TEST_CASE("ChooseTier with a label follows the label", "[budget]") {
  FastBudget b(100);
  TierChoice want_slow = ChooseTier(Tier::kSlow, Tier::kFast, b, 0);
  CHECK(want_slow.tier == Tier::kSlow);
  CHECK(want_slow.reason == "label ndocker.tier=slow");

  TierChoice want_fast = ChooseTier(Tier::kFast, Tier::kSlow, b, 99);
  CHECK(want_fast.tier == Tier::kFast);
  CHECK(want_fast.reason == "label ndocker.tier=fast");
}

TEST_CASE("ChooseTier goes slow when the fast tier is full", "[budget]") {
  FastBudget b(100);
  // One byte of room left: still fast.
  CHECK(ChooseTier(std::nullopt, Tier::kFast, b, 99).tier == Tier::kFast);

  TierChoice full = ChooseTier(std::nullopt, Tier::kFast, b, 100);
  CHECK(full.tier == Tier::kSlow);
  CHECK(full.reason.find("default tier fast") != std::string::npos);
  CHECK(full.reason.find("full") != std::string::npos);
  CHECK(full.reason.find("100 of 100 bytes") != std::string::npos);

  // Even a label cannot overrun the budget.
  TierChoice labelled = ChooseTier(Tier::kFast, Tier::kFast, b, 150);
  CHECK(labelled.tier == Tier::kSlow);
  CHECK(labelled.reason.find("label ndocker.tier=fast") != std::string::npos);
  CHECK(labelled.reason.find("full") != std::string::npos);
  CHECK(labelled.reason.find("150 of 100 bytes") != std::string::npos);

  // Unlimited: never full.
  CHECK(ChooseTier(std::nullopt, Tier::kFast, FastBudget(0), int64_t{1} << 60).tier == Tier::kFast);
}

TEST_CASE("TierAtCommit keeps a snapshot that fits and moves one that does not", "[budget]") {
  FastBudget b(1000);

  TierChoice fits = TierAtCommit(Tier::kFast, 600, b, 400);  // exactly full afterwards
  CHECK(fits.tier == Tier::kFast);
  CHECK(fits.reason == "stays");

  TierChoice empty_on_full = TierAtCommit(Tier::kFast, 0, b, 1000);
  CHECK(empty_on_full.tier == Tier::kFast);
  CHECK(empty_on_full.reason == "stays");

  TierChoice over = TierAtCommit(Tier::kFast, 601, b, 400);
  CHECK(over.tier == Tier::kSlow);
  CHECK(over.reason.find("moved to slow") != std::string::npos);
  CHECK(over.reason.find("601 bytes") != std::string::npos);
  CHECK(over.reason.find("400 of 1000 bytes") != std::string::npos);

  TierChoice too_big_alone = TierAtCommit(Tier::kFast, 1001, b, 0);
  CHECK(too_big_alone.tier == Tier::kSlow);
  CHECK(too_big_alone.reason.find("moved to slow") != std::string::npos);

  // A slow snapshot stays slow, whatever the budget says.
  TierChoice slow = TierAtCommit(Tier::kSlow, 5000, b, 1000);
  CHECK(slow.tier == Tier::kSlow);
  CHECK(slow.reason == "stays");
  CHECK(TierAtCommit(Tier::kSlow, 1, b, 0).tier == Tier::kSlow);

  // Unlimited: everything stays.
  TierChoice unlimited =
      TierAtCommit(Tier::kFast, int64_t{1} << 40, FastBudget(0), int64_t{1} << 40);
  CHECK(unlimited.tier == Tier::kFast);
  CHECK(unlimited.reason == "stays");
}

}  // namespace ndocker
