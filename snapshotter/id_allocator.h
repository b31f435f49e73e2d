// Hands out snapshot ids. An id is never given twice, not even after a
// failed Prepare or a crash: ids come from memory, the store's next_id is
// raised with every record that uses one, and at start the allocator begins
// above every id the store or any directory on the tiers has ever shown.
//
// Its mutex also orders migrations against new snapshots (mover.h): an id
// handed out after a copy's switch belongs to a snapshot that can only be
// mounted on the new copy.
#pragma once

#include <algorithm>
#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace ndocker {

class IdAllocator {
 public:
  explicit IdAllocator(uint64_t first) : next_(std::max<uint64_t>(first, 1)) {}

  uint64_t Allocate() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return next_++;
  }
  uint64_t Peek() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return next_;
  }
  // Runs fn(next id) with allocation held back: no id is handed out while it
  // runs, so fn sees a watermark that no new snapshot can slip under.
  template <typename Fn>
  auto WithAllocationHeld(Fn&& fn) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return fn(next_);
  }

 private:
  absl::Mutex mu_;
  uint64_t next_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ndocker
