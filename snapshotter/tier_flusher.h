// Writes one tier's dirty data back in the background (syncfs), coalescing
// requests, and measures the rate it achieves. A slow-tier layer committed
// while later layers still download is then durable before the pull ends,
// instead of adding to the `sync` after it.
#pragma once

#include <cstdint>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ndocker {

class TierFlusher {
 public:
  explicit TierFlusher(std::string path);
  ~TierFlusher();  // finishes a flush in progress, drops pending requests
  TierFlusher(const TierFlusher&) = delete;
  TierFlusher& operator=(const TierFlusher&) = delete;

  // Asks for a flush of the tier after `bytes` more were written to it.
  void Request(int64_t bytes);
  // Bytes per second of recent flushes (EWMA); 0 until one has been timed.
  double BytesPerSecond() const;
  // Bytes asked for and not yet flushed (including a flush in progress).
  int64_t PendingBytes() const;
  // Blocks until every request made before the call has been flushed (tests).
  void WaitIdle();

 private:
  void Run();

  const std::string path_;
  mutable absl::Mutex mu_;
  int64_t pending_bytes_ ABSL_GUARDED_BY(mu_) = 0;    // not yet picked up
  int64_t in_flight_bytes_ ABSL_GUARDED_BY(mu_) = 0;  // being flushed now
  uint64_t requested_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t done_ ABSL_GUARDED_BY(mu_) = 0;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  double rate_ ABSL_GUARDED_BY(mu_) = 0;
  std::thread thread_;
};

}  // namespace ndocker
