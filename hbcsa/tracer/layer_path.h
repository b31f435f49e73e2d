// From a fanotify event's directory handle to the layer that served the
// open: decode the handle against the tier filesystem it belongs to, then
// split "<tier>/snapshots/<dir>/fs/<rel>" into the layer's fs dir and the
// file's rootfs-relative path.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {

struct LayerPath {
  std::string layer_dir;  // "<tier>/snapshots/<dir>/fs"
  std::string path;       // "/usr/bin/env"
};

// `file` is an absolute path; `tier_roots` canonical. nullopt unless the
// file is beneath some "<root>/snapshots/<dir>/fs/".
std::optional<LayerPath> SplitLayerPath(const std::vector<std::string>& tier_roots,
                                        const std::string& file);

struct DirResolverStats {
  uint64_t decoded = 0;  // open_by_handle_at + readlink
  uint64_t cached = 0;   // answered from the cache
  uint64_t failed = 0;   // stale handle, unknown filesystem, deleted dir
};

// Directory handle -> its absolute path, cached (directories of layers do
// not move while their snapshot exists; a stale entry can only name a path
// that no chain holds any more).
class DirResolver {
 public:
  // `root` is a directory on a filesystem whose handles are to be decoded.
  absl::Status AddFilesystem(const std::string& root);
  std::optional<std::string> Resolve(uint64_t fsid, const std::string& handle);
  void Clear() { cache_.clear(); }
  const DirResolverStats& stats() const { return stats_; }

 private:
  std::unordered_map<uint64_t, UniqueFd> mount_fds_;  // fsid -> a dir on it
  std::unordered_map<std::string, std::string> cache_;
  DirResolverStats stats_;
};

}  // namespace ndocker::hbcsa
