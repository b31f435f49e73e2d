// Mounts a containerd-style mount list, as containerd's mount.All does, so the
// snapshotter (layer applier, hot-layer builder) and its tests can use the
// mounts it hands out.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "snapshotter/types.h"

namespace ndocker {

// Mounts `mounts` in order on `target`. An overlay whose options exceed a
// page is mounted from the lowerdirs' common parent with relative lowerdirs
// (containerd's compactLowerdirOption), in a child process so the daemon's
// working directory never changes.
absl::Status MountAll(const std::vector<Mount>& mounts, const std::string& target);

// Unmounts `target` (and lazily detaches it if busy when `lazy`).
absl::Status Unmount(const std::string& target, bool lazy = false);

// The shortened lowerdir option and the directory it is relative to, or an
// empty dir when no compaction is needed or possible. Pure; exposed for tests.
struct CompactedOptions {
  std::string dir;
  std::vector<std::string> options;
};
CompactedOptions CompactLowerdirs(const std::vector<std::string>& options, size_t page_size);

}  // namespace ndocker
