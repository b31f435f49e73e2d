// A token bucket that limits a byte stream (the mover's copies) to a rate by
// sleeping the caller: [mover] throttle_mb_per_second. The clock is
// injectable so tests check the requested sleeps without sleeping.
#pragma once

#include <chrono>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ndocker {

class Clock {
 public:
  using Duration = std::chrono::nanoseconds;
  virtual ~Clock() = default;
  // Monotonic time since an arbitrary start.
  virtual Duration Now() = 0;
  virtual void SleepFor(Duration d) = 0;
};

// std::chrono::steady_clock and a real sleep.
Clock* SteadyClock();

class Throttle {
 public:
  // bytes_per_second <= 0: unlimited. The bucket starts empty and holds at
  // most kBurst of unused rate, so an idle spell allows only a short burst.
  explicit Throttle(double bytes_per_second, Clock* clock = SteadyClock());

  // Accounts for `bytes` and sleeps until the rate allows them. Thread-safe:
  // concurrent callers share the rate (each reserves its share under a lock
  // and sleeps outside it).
  void Consume(int64_t bytes);

  double bytes_per_second() const { return rate_; }

  static constexpr std::chrono::seconds kBurst{1};

 private:
  const double rate_;
  Clock* const clock_;
  absl::Mutex mu_;
  double tokens_ ABSL_GUARDED_BY(mu_) = 0;  // bytes; negative is debt
  Clock::Duration last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ndocker
