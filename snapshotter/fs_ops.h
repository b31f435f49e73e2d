// Small filesystem operations with checked results.
#pragma once

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ndocker {

// mkdir -p; the last component gets `mode` exactly (umask does not apply).
absl::Status MakeDirs(const std::string& path, mode_t mode);
// mkdir with exactly `mode`; fails if it exists.
absl::Status MakeDir(const std::string& path, mode_t mode);
// rm -rf that never follows symlinks or crosses into other mounts' contents
// by path tricks; a missing path is not an error.
absl::Status RemoveAll(const std::string& path);
// Atomically points `link` at `target` (symlink to a temp name, then rename).
absl::Status ReplaceSymlink(const std::string& target, const std::string& link);
// mkdtemp under `dir` with the given name prefix; returns the new dir.
absl::StatusOr<std::string> MakeTempDir(const std::string& dir, const std::string& prefix);
// Names in a directory (no "." or ".."); a missing dir gives an empty list.
absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir);
// fsync of a file or directory by path.
absl::Status SyncPath(const std::string& path);
// syncfs(2) of the filesystem holding `path`: one call for a whole tree.
absl::Status SyncFilesystem(const std::string& path);
// Whether two paths are on the same filesystem (so rename works between them).
absl::StatusOr<bool> SameFilesystem(const std::string& a, const std::string& b);

}  // namespace ndocker
