#include "hbcsa/promoter/auto_promoter.h"

#include <algorithm>
#include <utility>

#include "snapshotter/idle_io.h"
#include "snapshotter/log.h"

namespace ndocker::hbcsa {

AutoPromoter::AutoPromoter(PromoteFn promote, bool idle_io)
    : promote_(std::move(promote)), idle_io_(idle_io), worker_([this] { Loop(); }) {}

AutoPromoter::~AutoPromoter() { Stop(); }

void AutoPromoter::Request(const std::string& image) {
  absl::MutexLock lock(&mu_);
  if (stopping_ || std::find(queue_.begin(), queue_.end(), image) != queue_.end()) return;
  queue_.push_back(image);
}

void AutoPromoter::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    queue_.clear();
  }
  if (worker_.joinable()) worker_.join();
}

void AutoPromoter::WaitIdle() {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return queue_.empty() && !building_; };
  mu_.Await(absl::Condition(&idle));
}

size_t AutoPromoter::queued() {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void AutoPromoter::Loop() {
  const ScopedIdleIo idle(idle_io_);
  for (;;) {
    std::string image;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.Await(absl::Condition(&ready));
      if (stopping_) return;
      image = std::move(queue_.front());
      queue_.pop_front();
      building_ = true;
      building_image_ = image;
    }
    const absl::Status s = promote_(image);
    if (s.ok()) {
      spdlog::info("msg=\"hot layer promoted after a trace\" image={}", image);
    } else {
      // Not fatal: containers keep using their layer chain; the next trace asks again.
      spdlog::warn("msg=\"hot layer not promoted after a trace\" image={} error={}", image, Q(s.message()));
    }
    absl::MutexLock lock(&mu_);
    building_ = false;
    building_image_.clear();
  }
}

bool AutoPromoter::Pending(const std::string& image) {
  absl::MutexLock lock(&mu_);
  return (building_ && building_image_ == image) || std::find(queue_.begin(), queue_.end(), image) != queue_.end();
}

}  // namespace ndocker::hbcsa
