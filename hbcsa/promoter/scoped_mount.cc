#include "hbcsa/promoter/scoped_mount.h"

#include <sys/mount.h>

#include <cerrno>
#include <utility>

#include "snapshotter/errno_status.h"

namespace ndocker::hbcsa {

absl::StatusOr<ScopedMount> ScopedMount::Mount(const std::string& source,
                                               const std::string& target,
                                               const std::string& fstype, unsigned long flags,
                                               const std::string& options) {
  if (::mount(source.c_str(), target.c_str(), fstype.c_str(), flags, options.c_str()) != 0) {
    const int err = errno;
    absl::Status st = ErrnoStatus(err, "mount " + fstype, target);
    if (err == EINVAL) return absl::InvalidArgumentError(st.message());
    return st;
  }
  return ScopedMount(target);
}

ScopedMount::ScopedMount(ScopedMount&& other) noexcept
    : target_(std::exchange(other.target_, std::string())) {}

ScopedMount& ScopedMount::operator=(ScopedMount&& other) noexcept {
  if (this != &other) {
    (void)Unmount();
    target_ = std::exchange(other.target_, std::string());
  }
  return *this;
}

ScopedMount::~ScopedMount() {
  if (target_.empty()) return;
  if (::umount2(target_.c_str(), 0) != 0) ::umount2(target_.c_str(), MNT_DETACH);
}

absl::Status ScopedMount::Unmount() {
  if (target_.empty()) return absl::OkStatus();
  if (::umount2(target_.c_str(), 0) != 0) return LastErrnoStatus("umount", target_);
  target_.clear();
  return absl::OkStatus();
}

}  // namespace ndocker::hbcsa
