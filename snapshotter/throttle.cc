#include "snapshotter/throttle.h"

#include <algorithm>
#include <thread>

namespace ndocker {
namespace {

class Steady final : public Clock {
 public:
  Duration Now() override {
    return std::chrono::duration_cast<Duration>(std::chrono::steady_clock::now().time_since_epoch());
  }
  void SleepFor(Duration d) override { std::this_thread::sleep_for(d); }
};

}  // namespace

Clock* SteadyClock() {
  static Steady* clock = new Steady();
  return clock;
}

Throttle::Throttle(double bytes_per_second, Clock* clock)
    : rate_(bytes_per_second > 0 ? bytes_per_second : 0), clock_(clock), last_(clock->Now()) {}

void Throttle::Consume(int64_t bytes) {
  if (rate_ <= 0 || bytes <= 0) return;
  double wait_seconds = 0;
  {
    absl::MutexLock lock(&mu_);
    const Clock::Duration now = clock_->Now();
    const double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    const double burst = rate_ * std::chrono::duration<double>(kBurst).count();
    tokens_ = std::min(burst, tokens_ + std::max(0.0, elapsed) * rate_);
    tokens_ -= static_cast<double>(bytes);
    if (tokens_ < 0) wait_seconds = -tokens_ / rate_;
  }
  if (wait_seconds > 0) {
    clock_->SleepFor(std::chrono::duration_cast<Clock::Duration>(
        std::chrono::duration<double>(wait_seconds)));
  }
}

}  // namespace ndocker
