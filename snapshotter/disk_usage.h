// Disk usage of a directory tree as containerd's overlay snapshotter counts
// it: st_blocks * 512 summed over unique inodes, and the inode count.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "snapshotter/types.h"

namespace ndocker {

absl::StatusOr<Usage> DiskUsage(const std::string& dir);

}  // namespace ndocker
