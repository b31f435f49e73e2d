// Where things live on disk. Directories are named by numeric snapshot id,
// never by key (keys contain '/', ' ' and ':').
//
//   <root>/metadata/                 LMDB environment
//   <root>/l/<short id>              symlink to a snapshot's fs dir on its tier
//   <tier>/snapshots/<id>/{fs,work}  snapshot data, generation 0 (work only for actives)
//   <tier>/snapshots/<id>-<gen>/     generation gen > 0 (a copy made by the mover)
//   <tier>/staging/<id>-<gen>-XXXXXX copies being built (migration); never live
//   <fast>/hot/<id>                  HBCSA hot layers (hbcsa/promoter/hot_layer_store.h
//                                    owns them; the core never looks inside)
//   <root>/hot-mounts/<id>           mount points of hot layers in use as shared lowers
//                                    (hbcsa/promoter/hot_stacks.h; the core records only
//                                    the id, snapshotter/shared_lower.h)
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
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
  // Generation 0 of snapshot `id` is <tier>/snapshots/<id>; generation g > 0
  // (each migration makes the next one) is <tier>/snapshots/<id>-<g>.
  std::string SnapshotDir(Tier t, uint64_t id, uint64_t gen = 0) const;
  std::string FsDir(Tier t, uint64_t id, uint64_t gen = 0) const {
    return SnapshotDir(t, id, gen) + "/fs";
  }
  std::string WorkDir(Tier t, uint64_t id, uint64_t gen = 0) const {
    return SnapshotDir(t, id, gen) + "/work";
  }
  // A short name keeps overlay's lowerdir option within one page for deep
  // images even though the two tier roots share no path prefix.
  std::string LinkPath(uint64_t id) const { return LinksDir() + "/" + ShortId(id); }

  static std::string ShortId(uint64_t id);                      // base 36
  static std::optional<uint64_t> ParseShortId(absl::string_view s);
  static std::optional<uint64_t> ParseId(absl::string_view dir_name);  // decimal

  // "<id>" for generation 0, "<id>-<gen>" otherwise.
  static std::string SnapshotDirName(uint64_t id, uint64_t gen);
  // (id, gen) of a name SnapshotDirName makes, nothing for any other name:
  // canonical decimal only (no sign, no leading zeros, no overflow), id >= 1,
  // and "<id>-0" is not a name (generation 0 has no suffix).
  static std::optional<std::pair<uint64_t, uint64_t>> ParseSnapshotDirName(absl::string_view name);
  // mkdtemp prefix of a staging copy of generation `gen`: "<id>-<gen>-".
  static std::string StagingName(uint64_t id, uint64_t gen);
  // (id, gen) of a staging dir name: the prefix above followed by mkdtemp's
  // six letters or digits. gen may be 0 here.
  static std::optional<std::pair<uint64_t, uint64_t>> ParseStagingName(absl::string_view name);

 private:
  std::string root_, fast_, slow_;
};

}  // namespace ndocker
