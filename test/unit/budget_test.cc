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

TEST_CASE("FitToBudget keeps any placement while the fast tier has room", "[budget]") {
  const Placement fast{Tier::kFast, rule::kDefault, "default tier fast"};
  const Placement slow{Tier::kSlow, rule::kLdlBelow, "below the LDL"};
  for (const Placement& want : {fast, slow}) {
    const Placement got = FitToBudget(want, FastBudget(100), 99);  // one byte left
    CHECK(got.tier == want.tier);
    CHECK(got.rule == want.rule);
    CHECK(got.reason == want.reason);
  }
  // A full budget never matters for the slow tier.
  const Placement got = FitToBudget(slow, FastBudget(100), 100);
  CHECK(got.tier == Tier::kSlow);
  CHECK(got.rule == rule::kLdlBelow);
  // Unlimited: never full.
  CHECK(FitToBudget(fast, FastBudget(0), int64_t{1} << 60).tier == Tier::kFast);
}

TEST_CASE("FitToBudget sends a fast placement to slow when the budget is used up", "[budget]") {
  const Placement full = FitToBudget({Tier::kFast, rule::kDefault, "default tier fast"}, FastBudget(100), 100);
  CHECK(full.tier == Tier::kSlow);
  CHECK(full.rule == rule::kBudgetFull);
  CHECK(full.reason.find("default tier fast") != std::string::npos);
  CHECK(full.reason.find("100 of 100 bytes") != std::string::npos);

  // Even a label cannot overrun the budget.
  const Placement labelled =
      FitToBudget({Tier::kFast, rule::kLabel, "label ndocker.tier=fast"}, FastBudget(100), 150);
  CHECK(labelled.tier == Tier::kSlow);
  CHECK(labelled.rule == rule::kBudgetFull);
  CHECK(labelled.reason.find("label ndocker.tier=fast") != std::string::npos);
  CHECK(labelled.reason.find("150 of 100 bytes") != std::string::npos);
}

TEST_CASE("MoveAtCommit keeps a snapshot that fits and moves one that does not", "[budget]") {
  FastBudget b(1000);
  CHECK_FALSE(MoveAtCommit(Tier::kFast, 600, b, 400).has_value());  // exactly full afterwards
  CHECK_FALSE(MoveAtCommit(Tier::kFast, 0, b, 1000).has_value());   // empty on a full budget

  auto over = MoveAtCommit(Tier::kFast, 601, b, 400);
  REQUIRE(over.has_value());
  CHECK(over->tier == Tier::kSlow);
  CHECK(over->rule == rule::kBudgetCommit);
  CHECK(over->reason.find("601 bytes") != std::string::npos);
  CHECK(over->reason.find("400 of 1000 bytes") != std::string::npos);

  auto too_big_alone = MoveAtCommit(Tier::kFast, 1001, b, 0);
  REQUIRE(too_big_alone.has_value());
  CHECK(too_big_alone->tier == Tier::kSlow);

  // A slow snapshot stays slow, whatever the budget says.
  CHECK_FALSE(MoveAtCommit(Tier::kSlow, 5000, b, 1000).has_value());
  // Unlimited: everything stays.
  CHECK_FALSE(MoveAtCommit(Tier::kFast, int64_t{1} << 40, FastBudget(0), int64_t{1} << 40).has_value());
}

}  // namespace ndocker
