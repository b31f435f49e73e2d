// Reads /proc/self/mountinfo to tell whether a directory is in use by a
// mount: never delete or change a directory a live overlay refers to.
#pragma once

#include <string>
#include <vector>

#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"

namespace ndocker {

struct MountInfoEntry {
  std::string mount_point;
  std::string fs_type;
  std::string source;
  std::string super_options;  // e.g. "rw,lowerdir=...,upperdir=...,workdir=..."
  // The directory of the filesystem this mount shows ("/" unless it is a bind
  // mount of a subdirectory) and the filesystem's device, "major:minor".
  std::string root = "/";
  std::string major_minor{};
  // super_options as in the file: a ',' inside a value is still "\054", so
  // splitting this on ',' gives the options (MountUse parses overlays from it).
  std::string super_options_raw{};
};

absl::StatusOr<std::vector<MountInfoEntry>> ReadMountInfo(const std::string& path = "/proc/self/mountinfo");

// mountinfo's \ooo escapes (space, tab, newline, backslash, ...) decoded;
// anything else, a malformed escape included, is kept as is.
std::string UnescapeMountInfo(absl::string_view s);

// True when some mount point lies at or below `dir`, some overlay names a
// path at or below `dir` in its upperdir, workdir or (absolute) lowerdir, or
// some mount (a bind mount) shows `dir` or a directory below it. Overlays that
// name `dir` through a symlink or a relative lowerdir are not seen: use
// MountUse (mount_use.h), which knows the layout's links.
bool DirInUse(const std::vector<MountInfoEntry>& mounts, const std::string& dir);

}  // namespace ndocker
