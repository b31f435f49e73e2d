// The merged view of a stack of overlay layer directories, computed the way
// overlayfs computes it, without mounting anything: per path the topmost
// layer wins; a whiteout (0/0 character device) hides the entries below it;
// a directory with trusted.overlay.opaque=y hides the contents of the layers
// below; a non-directory above a directory hides that directory (and a
// directory above a non-directory stops the merge there). Symlinks are never
// followed and nothing outside a layer root is ever opened (see beneath.h).
#pragma once

#include <sys/stat.h>

#include <cstddef>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace ndocker::hbcsa {

// One entry of the merged view as its source layer holds it. The
// descriptors and attr_path are valid only during the visitor call.
struct MergedEntry {
  std::string path;       // absolute in the merged view: "/" (the root), "/usr/bin/ls"
  std::string name;       // last component; "" for the root
  size_t layer = 0;       // the layer that shows it (index into layer_dirs, 0 = top)
  struct stat st {};      // lstat in that layer
  int parent_fd = -1;     // that layer's directory holding the entry (-1 for the root)
  int fd = -1;            // directories: the directory itself in that layer
  std::string attr_path;  // for l*xattr calls: names the entry, never follows it
};

class MergedViewVisitor {
 public:
  virtual ~MergedViewVisitor() = default;
  // A directory, before anything inside it; the root comes first of all.
  virtual absl::Status EnterDirectory(const MergedEntry& dir) = 0;
  // A non-directory inside the directory entered last and not yet left:
  // regular file, symlink, device, fifo or socket (whiteouts are not shown).
  virtual absl::Status VisitLeaf(const MergedEntry& entry) = 0;
  // A directory after everything inside it (fd and attr_path are unset).
  virtual absl::Status LeaveDirectory(const MergedEntry& dir) = 0;
};

// Walks the merged view of `layer_dirs` (top first) depth-first: in each
// directory its non-directories in name order, then its subdirectories in
// name order. At most one directory per layer is open at a time (plus the
// layer roots), so deep trees and 128-layer images stay within fd limits.
absl::Status WalkMergedView(const std::vector<std::string>& layer_dirs, MergedViewVisitor& visitor);

// overlayfs's whiteout: a character device with device number 0/0.
bool IsWhiteout(const struct stat& st);

}  // namespace ndocker::hbcsa
