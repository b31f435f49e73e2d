#include "hbcsa/promoter/metadata_layer.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "hbcsa/promoter/merged_view.h"
#include "hbcsa/promoter/metadata_layer_writer.h"
#include "hbcsa/promoter/scoped_temp_dir.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/status_macros.h"

namespace ndocker::hbcsa {

absl::StatusOr<BuildReport> BuildMetadataLayer(const std::vector<std::string>& layer_dirs,
                                               const HotSet& hot, const std::string& out_dir,
                                               const BuildOptions& options) {
  const std::filesystem::path out = std::filesystem::path(out_dir).lexically_normal();
  if (!out.has_filename() || !out.has_parent_path()) {
    return absl::InvalidArgumentError("the metadata layer needs a path with a parent directory");
  }
  struct stat st;
  if (::lstat(out.c_str(), &st) == 0) {
    return absl::AlreadyExistsError("the metadata layer's directory exists already");
  }
  if (errno != ENOENT) return LastErrnoStatus("lstat", out_dir);

  // A sibling, so the final rename stays on one filesystem; its name says
  // what it is if a crash leaves it behind.
  absl::StatusOr<ScopedTempDir> tmp =
      ScopedTempDir::Make(out.parent_path(), absl::StrCat(".", out.filename().string(), ".building-"));
  if (!tmp.ok()) return tmp.status();

  MetadataLayerWriter writer(tmp->path(), hot);
  NDOCKER_RETURN_IF_ERROR(WalkMergedView(layer_dirs, writer));
  writer.Finish();

  if (options.sync) {
    // One syncfs instead of an fsync per entry: thousands of stubs would
    // each force a journal commit on ext4. Hot file data is durable already
    // (pmem2 persist).
    NDOCKER_RETURN_IF_ERROR(SyncFilesystem(tmp->path()));
  }
  // NOREPLACE: a layer that appeared meanwhile under the name is never
  // overwritten (ours is removed with the temp dir).
  if (::renameat2(AT_FDCWD, tmp->path().c_str(), AT_FDCWD, out.c_str(), RENAME_NOREPLACE) != 0) {
    if (errno == EEXIST) {
      return absl::AlreadyExistsError("the metadata layer's directory appeared during the build");
    }
    return LastErrnoStatus("rename metadata layer into place", out_dir);
  }
  tmp->Release();
  if (options.sync) NDOCKER_RETURN_IF_ERROR(SyncPath(out.parent_path()));
  return writer.report();
}

}  // namespace ndocker::hbcsa
