#include "snapshotter/errno_status.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace ndocker {

absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path) {
  return absl::InternalError(path.empty()
                                 ? absl::StrCat(what, ": ", std::strerror(err))
                                 : absl::StrCat(what, " ", path, ": ", std::strerror(err)));
}

}  // namespace ndocker
