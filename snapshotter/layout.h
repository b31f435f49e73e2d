// Where things live on disk. Directories are named by numeric snapshot id,
// never by key (keys contain '/', ' ' and ':').
//
//   <root>/metadata/                 LMDB environment
//   <root>/l/<short id>              symlink to a snapshot's fs dir on its tier
//   <tier>/snapshots/<id>/{fs,work}  snapshot data (work only for actives)
//   <tier>/staging/                  copies being built (migration); never live
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"

#include "snapshotter/types.h"

namespace ndocker {

class Layout {
 public:
  Layout(std::string root, std::string fast, std::string slow)
      : root_(std::move(root)), fast_(std::move(fast)), slow_(std::move(slow)) {}

  const std::string& root() const { return root_; }
  const std::string& TierRoot(Tier t) const { return t == Tier::kFast ? fast_ : slow_; }
  std::string MetadataDir() const { return root_ + "/metadata"; }
  std::string LinksDir() const { return root_ + "/l"; }
  std::string SnapshotsDir(Tier t) const { return TierRoot(t) + "/snapshots"; }
  std::string StagingDir(Tier t) const { return TierRoot(t) + "/staging"; }
  std::string SnapshotDir(Tier t, uint64_t id) const;
  std::string FsDir(Tier t, uint64_t id) const { return SnapshotDir(t, id) + "/fs"; }
  std::string WorkDir(Tier t, uint64_t id) const { return SnapshotDir(t, id) + "/work"; }
  // A short name keeps overlay's lowerdir option within one page for deep
  // images even though the two tier roots share no path prefix.
  std::string LinkPath(uint64_t id) const { return LinksDir() + "/" + ShortId(id); }

  static std::string ShortId(uint64_t id);                      // base 36
  static std::optional<uint64_t> ParseShortId(absl::string_view s);
  static std::optional<uint64_t> ParseId(absl::string_view dir_name);  // decimal

 private:
  std::string root_, fast_, slow_;
};

}  // namespace ndocker
