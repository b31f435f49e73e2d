// Throttle: a token bucket over an injected clock; the tests check the
// sleeps it asks for, never real elapsed time.
#include "snapshotter/throttle.h"

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <vector>

namespace ndocker {
namespace {

class FakeClock final : public Clock {
 public:
  Duration Now() override { return now; }
  void SleepFor(Duration d) override {
    now += d;
    slept += d;
    sleeps.push_back(d);
  }
  double SleptSeconds() const { return std::chrono::duration<double>(slept).count(); }

  Duration now{std::chrono::hours(5)};
  Duration slept{0};
  std::vector<Duration> sleeps;
};

constexpr int64_t kMB = 1 << 20;

}  // namespace

TEST_CASE("10 MB at 5 MB/s asks for about 2 s of sleep", "[throttle]") {
  FakeClock clock;
  Throttle t(5.0 * kMB, &clock);
  for (int64_t done = 0; done < 10 * kMB; done += 64 * 1024) t.Consume(64 * 1024);
  CHECK(clock.SleptSeconds() == Approx(2.0).epsilon(0.01));
  CHECK(clock.sleeps.size() > 1);  // spread over the stream, not one sleep at the end
  for (auto d : clock.sleeps) CHECK(d.count() > 0);
}

TEST_CASE("one large Consume sleeps once for all of it", "[throttle]") {
  FakeClock clock;
  Throttle t(5.0 * kMB, &clock);
  t.Consume(10 * kMB);
  REQUIRE(clock.sleeps.size() == 1);
  CHECK(clock.SleptSeconds() == Approx(2.0).epsilon(0.001));
}

TEST_CASE("time spent elsewhere counts, but an idle spell allows only a short burst", "[throttle]") {
  FakeClock clock;
  Throttle t(5.0 * kMB, &clock);
  // The caller's own work took as long as the rate needs: no sleep.
  for (int i = 0; i < 10; ++i) {
    clock.now += std::chrono::milliseconds(200);
    t.Consume(kMB);
  }
  CHECK(clock.slept.count() == 0);
  // Ten idle seconds bank only Throttle::kBurst (1 s) of rate: 5 MB.
  static_assert(Throttle::kBurst == std::chrono::seconds(1));
  clock.now += std::chrono::seconds(10);
  t.Consume(10 * kMB);
  CHECK(clock.SleptSeconds() == Approx(1.0).epsilon(0.01));
}

TEST_CASE("a rate of 0 (or less) is unlimited", "[throttle]") {
  FakeClock clock;
  Throttle zero(0, &clock), negative(-3, &clock);
  for (int i = 0; i < 1000; ++i) {
    zero.Consume(kMB * 1024);
    negative.Consume(kMB * 1024);
  }
  CHECK(clock.sleeps.empty());
  CHECK(zero.bytes_per_second() == 0);
  // Zero and negative byte counts never sleep either.
  Throttle slow(1, &clock);
  slow.Consume(0);
  slow.Consume(-5);
  CHECK(clock.sleeps.empty());
}

TEST_CASE("callers share one rate", "[throttle]") {
  FakeClock clock;
  Throttle t(kMB, &clock);
  // Two streams interleaved: 3 MB together at 1 MB/s is 3 s.
  for (int i = 0; i < 3; ++i) {
    t.Consume(kMB / 2);
    t.Consume(kMB / 2);
  }
  CHECK(clock.SleptSeconds() == Approx(3.0).epsilon(0.01));
}

TEST_CASE("the steady clock moves forward", "[throttle]") {
  Clock* c = SteadyClock();
  const auto a = c->Now();
  c->SleepFor(std::chrono::microseconds(1));
  CHECK(c->Now() >= a);
}

}  // namespace ndocker
