// Builds hot layers in the background after traces ([hbcsa] promote =
// "after-trace"): the recorder asks after each recorded trace; one build runs
// at a time, in the idle I/O class, and an image asked for again while it
// waits is built once (the promoter reads its newest profile then).
#pragma once

#include <deque>
#include <functional>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"

namespace ndocker::hbcsa {

class AutoPromoter {
 public:
  using PromoteFn = std::function<absl::Status(const std::string& image)>;
  explicit AutoPromoter(PromoteFn promote, bool idle_io = true);
  ~AutoPromoter();  // Stop()
  AutoPromoter(const AutoPromoter&) = delete;
  AutoPromoter& operator=(const AutoPromoter&) = delete;

  // Never blocks on a build.
  void Request(const std::string& image);
  // Lets a build under way finish, drops the rest; idempotent.
  void Stop();
  // Blocks until nothing is queued or building (tests).
  void WaitIdle();
  size_t queued();
  // Queued or being built.
  bool Pending(const std::string& image);

 private:
  void Loop();

  const PromoteFn promote_;
  const bool idle_io_;
  absl::Mutex mu_;
  std::deque<std::string> queue_ ABSL_GUARDED_BY(mu_);
  bool building_ ABSL_GUARDED_BY(mu_) = false;
  std::string building_image_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread worker_;
};

}  // namespace ndocker::hbcsa
