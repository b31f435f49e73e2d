#include "snapshotter/tier_flusher.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <utility>

#include "absl/time/clock.h"
#include "snapshotter/log.h"
#include "snapshotter/unique_fd.h"

namespace ndocker {
namespace {

// Flushes shorter than this time mostly the call itself, not the device.
constexpr absl::Duration kMinTimedFlush = absl::Milliseconds(5);
constexpr int64_t kMinTimedBytes = 1 << 20;
constexpr double kEwmaWeight = 0.3;

}  // namespace

TierFlusher::TierFlusher(std::string path) : path_(std::move(path)), thread_([this] { Run(); }) {}

TierFlusher::~TierFlusher() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

void TierFlusher::Request(int64_t bytes) {
  absl::MutexLock lock(&mu_);
  pending_bytes_ += bytes;
  ++requested_;
}

double TierFlusher::BytesPerSecond() const {
  absl::MutexLock lock(&mu_);
  return rate_;
}

int64_t TierFlusher::PendingBytes() const {
  absl::MutexLock lock(&mu_);
  return pending_bytes_ + in_flight_bytes_;
}

void TierFlusher::WaitIdle() {
  absl::MutexLock lock(&mu_);
  const uint64_t target = requested_;
  auto idle = [this, target]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return done_ >= target || stop_; };
  mu_.Await(absl::Condition(&idle));
}

void TierFlusher::Run() {
  for (;;) {
    int64_t bytes;
    uint64_t upto;
    {
      absl::MutexLock lock(&mu_);
      auto work = [this]() ABSL_NO_THREAD_SAFETY_ANALYSIS { return stop_ || requested_ > done_; };
      mu_.Await(absl::Condition(&work));
      if (stop_) return;
      bytes = std::exchange(pending_bytes_, 0);
      in_flight_bytes_ = bytes;
      upto = requested_;
    }
    const absl::Time start = absl::Now();
    UniqueFd fd(::open(path_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid() || ::syncfs(fd.get()) != 0) {
      spdlog::warn("msg=\"background flush failed\" path={} error={}", Q(path_), Q(std::strerror(errno)));
    }
    const absl::Duration took = absl::Now() - start;
    absl::MutexLock lock(&mu_);
    done_ = upto;
    in_flight_bytes_ = 0;
    if (took >= kMinTimedFlush && bytes >= kMinTimedBytes) {
      const double sample = static_cast<double>(bytes) / absl::ToDoubleSeconds(took);
      rate_ = rate_ == 0 ? sample : (1 - kEwmaWeight) * rate_ + kEwmaWeight * sample;
    }
  }
}

}  // namespace ndocker
