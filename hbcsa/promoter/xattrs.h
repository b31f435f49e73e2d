// Extended attributes of one directory entry, read and written without
// following a final symlink (the l*xattr calls), so symlinks keep their own.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ndocker::hbcsa {

struct Xattr {
  std::string name;
  std::string value;
  bool operator==(const Xattr&) const = default;
};

// Every xattr of `path` (sorted by name); none when the filesystem has no
// xattr support.
absl::StatusOr<std::vector<Xattr>> ListXattrs(const std::string& path);
// One xattr's value, or nullopt when `path` does not have it.
absl::StatusOr<std::optional<std::string>> GetXattr(const std::string& path,
                                                    const std::string& name);
absl::Status SetXattr(const std::string& path, const std::string& name, absl::string_view value);

// "trusted.overlay.*": overlayfs's own markers (opaque, redirect, metacopy,
// origin...). A merged view never shows them, so they are not part of what
// the view's files "have".
bool IsOverlayPrivateXattr(absl::string_view name);

}  // namespace ndocker::hbcsa
