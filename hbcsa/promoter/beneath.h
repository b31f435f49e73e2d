// Opening entries inside a layer directory without ever leaving it: layer
// contents come from image tarballs, so a symlink or ".." in them must never
// make the promoter read or write outside the layer.
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {

// openat2(root_fd, rel, flags) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
// RESOLVE_NO_XDEV: no component of `rel` may be a symlink (the last one
// neither) or another mount, and nothing resolves above `root_fd`. An empty
// `rel` or "." opens root_fd itself. O_CLOEXEC is always added.
absl::StatusOr<UniqueFd> OpenBeneath(int root_fd, const std::string& rel, int flags);

// "/proc/self/fd/<dir_fd>/<name>": a path for the l*xattr calls that names
// `name` inside an already opened directory without following `name` if it
// is a symlink (fgetxattr does not work on O_PATH descriptors, and symlinks,
// devices and fifos cannot be opened for reading safely).
std::string FdRelativePath(int dir_fd, const std::string& name);

}  // namespace ndocker::hbcsa
