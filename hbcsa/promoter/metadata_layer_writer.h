// Writes the metadata layer's entries as the merged-view walk hands them
// over (see metadata_layer.h for what goes in): one MergedViewVisitor that
// mirrors the view's directories under a root it does not own.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "hbcsa/promoter/hot_set.h"
#include "hbcsa/promoter/merged_view.h"
#include "hbcsa/promoter/metadata_layer.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {

class MetadataLayerWriter : public MergedViewVisitor {
 public:
  // `root` is an existing empty directory; it takes the view root's attributes.
  MetadataLayerWriter(std::string root, const HotSet& hot) : root_(std::move(root)), hot_(hot) {}

  absl::Status EnterDirectory(const MergedEntry& dir) override;
  absl::Status VisitLeaf(const MergedEntry& entry) override;
  absl::Status LeaveDirectory(const MergedEntry& dir) override;

  // The counts; hot_not_found is filled in by Finish().
  const BuildReport& report() const { return report_; }
  // Call after the walk: counts the hot paths that named no regular file.
  void Finish();

 private:
  // An inode already written for a name with st_nlink > 1, keyed by the
  // source's (st_dev, st_ino): what overlayfs reports as one inode is one.
  struct Written {
    std::string rel;  // path of its first name below root_
    bool hot = false;
    int64_t blocks = 0;  // st_blocks counted for it
  };

  int out() const { return dirs_.back().get(); }
  absl::Status WriteRegular(const MergedEntry& e, bool hot, int64_t& blocks);
  absl::Status WriteSymlink(const MergedEntry& e, int64_t& blocks);
  absl::Status WriteSpecial(const MergedEntry& e, int64_t& blocks);
  // The xattrs and times of a symlink or special file just made, and its blocks.
  absl::Status FinishNonRegular(const MergedEntry& e, int64_t& blocks);
  absl::Status Link(const MergedEntry& e, Written& first);
  // A stub whose inode turned out hot through a later name gets its data.
  absl::Status MakeHot(const MergedEntry& e, Written& first);
  void Count(const struct stat& st);

  std::string root_;
  const HotSet& hot_;
  std::vector<UniqueFd> dirs_;  // the output directories entered and not left
  absl::flat_hash_map<std::pair<dev_t, ino_t>, Written> links_;
  absl::flat_hash_set<std::string> hot_seen_;
  BuildReport report_;
};

}  // namespace ndocker::hbcsa
