// Reads /proc/self/mountinfo to tell whether a directory is in use by a
// mount: never delete or change a directory a live overlay refers to.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ndocker {

struct MountInfoEntry {
  std::string mount_point;
  std::string fs_type;
  std::string source;
  std::string super_options;  // e.g. "rw,lowerdir=...,upperdir=...,workdir=..."
};

absl::StatusOr<std::vector<MountInfoEntry>> ReadMountInfo(const std::string& path = "/proc/self/mountinfo");

// True when some mount point lies at or below `dir`, or some overlay names a
// path at or below `dir` in its upperdir, workdir or (absolute) lowerdir.
bool DirInUse(const std::vector<MountInfoEntry>& mounts, const std::string& dir);

}  // namespace ndocker
