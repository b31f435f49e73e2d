// Small filesystem operations with checked results.
#pragma once

#include <sys/types.h>

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ndocker {

// mkdir -p; the last component gets `mode` exactly (umask does not apply).
absl::Status MakeDirs(const std::string& path, mode_t mode);
// mkdir with exactly `mode`; fails if it exists.
absl::Status MakeDir(const std::string& path, mode_t mode);
// rm -rf: RemoveTree without a hook.
absl::Status RemoveAll(const std::string& path);
// Removes `path` and everything below it with openat/unlinkat: symlinks are
// removed, never followed, and nothing on another filesystem or another mount
// (a mount point, a bind mount) is entered or removed. Entries that cannot be
// removed (chattr +i, EBUSY, another mount) are logged with their path and
// left, the rest of the tree is still removed; the error then says how many
// were left (and why the first one was), without paths. A missing path is OK.
// `after_first_entry` runs once, right after the first entry (possibly
// `path` itself) is removed: a fault point for crash tests.
absl::Status RemoveTree(const std::string& path,
                        const std::function<void()>& after_first_entry = nullptr);
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
