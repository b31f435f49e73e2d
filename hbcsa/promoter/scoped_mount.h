// A mount that is undone when its owner goes, so an error path or a failed
// test assertion never leaves a mount behind.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ndocker::hbcsa {

class ScopedMount {
 public:
  // mount(2) of `source` on `target`. EINVAL (the kernel does not take
  // these options, e.g. an overlay feature it lacks) is InvalidArgument, so
  // feature probes can tell it from other failures.
  static absl::StatusOr<ScopedMount> Mount(const std::string& source, const std::string& target,
                                           const std::string& fstype, unsigned long flags,
                                           const std::string& options);
  ScopedMount(ScopedMount&& other) noexcept;
  ScopedMount& operator=(ScopedMount&& other) noexcept;
  ScopedMount(const ScopedMount&) = delete;
  ScopedMount& operator=(const ScopedMount&) = delete;
  // Unmounts; a busy mount is detached lazily (nothing else can be done
  // from a destructor, and a leftover mount would pin the layers).
  ~ScopedMount();

  // Unmounts now and says whether that worked (a busy mount is an error).
  absl::Status Unmount();
  const std::string& target() const { return target_; }

 private:
  explicit ScopedMount(std::string target) : target_(std::move(target)) {}
  std::string target_;  // empty once unmounted or moved from
};

}  // namespace ndocker::hbcsa
