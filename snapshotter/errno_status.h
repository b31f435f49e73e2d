// Turns a failed syscall into an absl::Status that names the call and path.
#pragma once

#include <cerrno>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace ndocker {

// Always Internal: a failed syscall on our own directories is our fault, and
// containerd must not read it as "snapshot not found" or "bad argument".
absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path = {});

inline absl::Status LastErrnoStatus(absl::string_view what, absl::string_view path = {}) {
  return ErrnoStatus(errno, what, path);
}

}  // namespace ndocker
