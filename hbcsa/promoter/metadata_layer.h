// The promoter's core (DESIGN.md §6, issue 10): from an image's layer
// directories and its hot files, a *metadata layer* in the style of
// composefs. It holds the merged view's every directory, symlink and special
// file with their attributes, the hot files with their data (written through
// libpmem2), and every other regular file as an overlay metacopy stub: the
// right size but no data blocks, trusted.overlay.metacopy and an absolute
// trusted.overlay.redirect to the file's own path. Mounted as
//   lowerdir=META::L_top::...::L_bottom,metacopy=on,redirect_dir=on
// (data-only lower layers, Linux >= 6.5; see data_only_layers.h), the view is
// the same as the plain overlay of the layers, but every lookup is answered
// by META alone: the layers are only read for the data of non-hot files.
//
// META is the only layer overlayfs merges, so it needs no whiteouts and no
// opaque directories: it simply does not contain what the view hides.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hbcsa/promoter/hot_set.h"

namespace ndocker::hbcsa {

struct BuildOptions {
  // Make the layer durable before it appears under its final name (syncfs
  // of the target filesystem, then the rename, then fsync of its parent).
  bool sync = true;
};

struct BuildReport {
  // Names in the merged view, by type (a hard link counts once per name).
  int64_t directories = 0;
  int64_t regular_files = 0;
  int64_t symlinks = 0;
  int64_t devices = 0;  // character and block
  int64_t fifos = 0;
  int64_t sockets = 0;
  int64_t hard_links = 0;      // names linked to an inode written before
  int64_t stubs = 0;           // regular inodes written as metacopy stubs
  int64_t hot_files = 0;       // regular inodes written with their data
  int64_t hot_bytes = 0;       // data bytes written (holes not counted)
  int64_t hot_not_found = 0;   // hot paths that are no regular file in the view
  int64_t bytes_on_disk = 0;   // sum of st_blocks*512 over META's inodes, each once

  int64_t entries() const {
    return directories + regular_files + symlinks + devices + fifos + sockets;
  }
  double bytes_per_entry() const {
    return entries() == 0 ? 0.0 : static_cast<double>(bytes_on_disk) / static_cast<double>(entries());
  }
};

// Builds the metadata layer of `layer_dirs` (top first) at `out_dir`, which
// must not exist (AlreadyExists otherwise). The layer is built in a temp
// sibling directory and renamed into place only when complete, so a crash
// or an error never leaves a half layer under the final name (the temp dir
// is removed on error; after a crash it is a ".<name>.building-*" sibling).
// Hard links of the view stay hard links; sparse hot files stay sparse.
absl::StatusOr<BuildReport> BuildMetadataLayer(const std::vector<std::string>& layer_dirs,
                                               const HotSet& hot, const std::string& out_dir,
                                               const BuildOptions& options);

}  // namespace ndocker::hbcsa
