// Turns a failed syscall into an absl::Status that says what failed and why.
// Statuses reach containerd and its users through gRPC: they never carry host
// paths. The path goes to the log (warn) instead.
#pragma once

#include <cerrno>
#include "absl/strings/string_view.h"

#include "absl/status/status.h"

namespace ndocker {

// "<what>: <strerror>". ResourceExhausted for ENOSPC and EDQUOT (the tier is
// full: callers may place the data elsewhere); otherwise Internal: a failed
// syscall on our own directories is our fault, and containerd must not read
// it as "snapshot not found" or "bad argument". A non-empty `path` is logged.
absl::Status ErrnoStatus(int err, absl::string_view what, absl::string_view path = {});

inline absl::Status LastErrnoStatus(absl::string_view what, absl::string_view path = {}) {
  return ErrnoStatus(errno, what, path);
}

// Whether an errno means "no space" (ENOSPC, EDQUOT).
inline bool IsNoSpace(int err) { return err == ENOSPC || err == EDQUOT; }

}  // namespace ndocker
