// The fast tier's committed bytes against its budget, kept in memory so the
// RPC path never scans records (derived from them at Open). Room is reserved
// before a commit or a migration to the fast tier starts its slow part and
// released if it fails, so two of them can never both take the last bytes.
#pragma once

#include <cstdint>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "snapshotter/budget.h"

namespace ndocker {

class FastLedger {
 public:
  explicit FastLedger(FastBudget budget) : budget_(budget) {}

  const FastBudget& budget() const { return budget_; }
  int64_t committed() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return committed_;
  }
  void Reset(int64_t committed) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    committed_ = committed;
  }
  // Counts `bytes` as committed on the fast tier if they fit the budget.
  bool TryReserve(int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    if (!budget_.Fits(committed_, bytes)) return false;
    committed_ += bytes;
    return true;
  }
  // Counts bytes already on the fast tier (found at start), fitting or not.
  void Add(int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    committed_ += bytes;
  }
  void Release(int64_t bytes) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    committed_ -= bytes;
  }

 private:
  const FastBudget budget_;
  mutable absl::Mutex mu_;
  int64_t committed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace ndocker
