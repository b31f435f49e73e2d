#include "hbcsa/promoter/beneath.h"

#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>

#include "absl/strings/str_cat.h"
#include "snapshotter/errno_status.h"

namespace ndocker::hbcsa {

absl::StatusOr<UniqueFd> OpenBeneath(int root_fd, const std::string& rel, int flags) {
  open_how how{};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_XDEV;
  const std::string path = rel.empty() ? "." : rel;
  // EAGAIN: a rename or mount somewhere raced the resolution; the kernel
  // asks for a retry. A few are plenty, a loop without end is not.
  long r = -1;
  for (int attempt = 0; attempt < 8; ++attempt) {
    r = ::syscall(SYS_openat2, root_fd, path.c_str(), &how, sizeof how);
    if (r >= 0 || errno != EAGAIN) break;
  }
  if (r < 0) return LastErrnoStatus("openat2 beneath a layer", rel);
  return UniqueFd(static_cast<int>(r));
}

std::string FdRelativePath(int dir_fd, const std::string& name) {
  return absl::StrCat("/proc/self/fd/", dir_fd, "/", name);
}

}  // namespace ndocker::hbcsa
