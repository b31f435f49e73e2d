// Copies a snapshot's directory tree to another filesystem with everything
// overlayfs cares about: owners, modes (setuid), times, xattrs (trusted.*
// overlay markers included), hardlinks, symlinks and device nodes (whiteouts).
// Used to move snapshots between tiers. libarchive does the reading and
// writing (read_disk -> write_disk), so no hand-written attribute copying.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"

namespace ndocker {

struct CopyOptions {
  // Make the copy durable before returning: syncfs of the target filesystem,
  // then fsync of `dst` and of its parent directory (see CopyTree).
  bool sync = true;
  // Called after each block of file data is written, with its size, from the
  // copying thread: the caller throttles by sleeping in it (see Throttle).
  std::function<void(int64_t bytes)> on_bytes;
  // Polled between entries and data blocks; true stops the copy with
  // Cancelled (dst is left half-written: the caller removes it).
  std::function<bool()> cancelled;
};

// Copies the contents of `src` into `dst`, which must exist; `dst` itself
// takes the mode, owner, xattrs and times of `src`. Errors name the step and
// errno, never a path (those are logged); ENOSPC/EDQUOT on the target give
// ResourceExhausted.
absl::Status CopyTree(const std::string& src, const std::string& dst, const CopyOptions& options);
// The same with only `sync` set.
absl::Status CopyTree(const std::string& src, const std::string& dst, bool sync);

}  // namespace ndocker
