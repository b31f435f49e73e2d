// Copies a snapshot's directory tree to another filesystem with everything
// overlayfs cares about: owners, modes (setuid), times, xattrs (trusted.*
// overlay markers included), hardlinks, symlinks and device nodes (whiteouts).
// Used to move snapshots between tiers. libarchive does the reading and
// writing (read_disk -> write_disk), so no hand-written attribute copying.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace ndocker {

// Copies the contents of `src` into `dst`, which must exist; `dst` itself
// takes the mode, owner, xattrs and times of `src`. With `sync` the target
// filesystem is synced before return, so a crash after it cannot lose data.
absl::Status CopyTree(const std::string& src, const std::string& dst, bool sync);

}  // namespace ndocker
