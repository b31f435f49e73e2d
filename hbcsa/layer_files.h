// The file list of one image layer, read from its blob (gzip, zstd or plain
// tar; any filter libarchive knows) in containerd's content store. The blob
// is streamed: nothing is extracted and file data is skipped, so memory is
// bounded by the number of entries, not the layer's size.
//
// A truncated or corrupt blob is an ordinary input: it yields an error status
// (the analysis records the layer as "unknown"), never a crash or a partial
// list that looks complete.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace ndocker::hbcsa {

enum class FileType : uint8_t {
  kRegular,
  kDirectory,
  kSymlink,
  kHardlink,   // link_target: the (normalised) path of the file it links to
  kOther,      // device, fifo, socket
  kWhiteout,   // ".wh.<name>": `path` is the path it deletes from lower layers
  kOpaqueDir,  // ".wh..wh..opq": `path` is the directory whose lower contents are hidden
};
const char* FileTypeName(FileType type);

struct FileEntry {
  std::string path;         // normalised: relative, no "./", no "..", no trailing '/'
  std::string link_target;  // symlink: as stored; hardlink: normalised path
  int64_t size = 0;         // regular files only
  uint32_t mode = 0;        // permission bits (07777)
  FileType type = FileType::kRegular;

  bool executable() const { return (mode & 0111) != 0; }
};

struct LayerFileList {
  std::vector<FileEntry> entries;  // archive order
  int64_t regular_bytes = 0;       // sum of regular file sizes
  // What unpacking it takes on a 4 KiB-block filesystem: each regular file
  // rounded up to a block, a block per directory and per long symlink.
  int64_t disk_bytes = 0;
  size_t skipped = 0;              // entries dropped (path or link target too long, no name)
};

struct LayerReadLimits {
  // More entries than this fails the read (ResourceExhausted): the list is
  // kept in memory while an image is analysed.
  size_t max_entries = 1 << 20;
  // Longer paths (and link targets) are skipped and counted, like a path
  // the kernel would refuse.
  size_t max_path_length = 4096;
};

// Normalises a tar entry name the way containerd's applier does (a rooted
// lexical clean): "./usr//bin/" -> "usr/bin", "../../etc" -> "etc", "./" -> "".
std::string NormalizePath(absl::string_view name);

// The file list of the tar stream in `path` (any compression libarchive
// reads). The file is opened with O_NOFOLLOW and must be a regular file.
// DataLoss for a truncated or corrupt stream, NotFound when the file is
// missing, ResourceExhausted past `limits.max_entries`.
absl::StatusOr<LayerFileList> ReadLayerFiles(const std::string& path, const LayerReadLimits& limits = {});

// The same for the blob `digest` ("sha256:<64 hex>") in a content store laid
// out as <content_root>/blobs/sha256/<hex> (containerd's, or an OCI layout).
absl::StatusOr<LayerFileList> ReadLayerBlob(const std::string& content_root, const std::string& digest,
                                            const LayerReadLimits& limits = {});

}  // namespace ndocker::hbcsa
