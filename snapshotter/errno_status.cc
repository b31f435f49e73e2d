#include "snapshotter/errno_status.h"

#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "snapshotter/log.h"

namespace ndocker {

absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path) {
  const std::string msg = absl::StrCat(what, ": ", std::strerror(err));
  if (!path.empty()) {
    spdlog::warn("msg={} path={} error={}", Q(absl::StrCat(what, " failed")), Q(path),
                 Q(std::strerror(err)));
  }
  return IsNoSpace(err) ? absl::ResourceExhaustedError(msg) : absl::InternalError(msg);
}

}  // namespace ndocker
