#include "hbcsa/layer_files.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <sys/stat.h>

#include <cerrno>
#include <memory>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "lass/digest.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {
namespace {

constexpr absl::string_view kWhiteoutPrefix = ".wh.";
constexpr absl::string_view kOpaqueName = ".wh..wh..opq";
constexpr size_t kReadBlock = 1 << 16;
constexpr int64_t kFsBlock = 4096;
constexpr size_t kFastSymlink = 60;  // ext4 keeps shorter targets in the inode

struct ArchiveReadFree {
  void operator()(archive* a) const { archive_read_free(a); }
};

absl::Status ArchiveError(archive* a, const std::string& path, absl::string_view what) {
  const char* msg = archive_error_string(a);
  return absl::DataLossError(
      absl::StrCat(path, ": ", what, ": ", msg != nullptr ? msg : "unreadable archive"));
}

const char* EntryName(archive_entry* e) {
  const char* name = archive_entry_pathname(e);
  return name != nullptr ? name : archive_entry_pathname_utf8(e);
}

const char* SymlinkTarget(archive_entry* e) {
  const char* t = archive_entry_symlink(e);
  return t != nullptr ? t : archive_entry_symlink_utf8(e);
}

const char* HardlinkTarget(archive_entry* e) {
  const char* t = archive_entry_hardlink(e);
  return t != nullptr ? t : archive_entry_hardlink_utf8(e);
}

// Splits "a/b/c" into ("a/b", "c"); ("", "c") for a top-level name.
std::pair<absl::string_view, absl::string_view> SplitBase(absl::string_view path) {
  const size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return {absl::string_view(), path};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

}  // namespace

const char* FileTypeName(FileType type) {
  switch (type) {
    case FileType::kRegular: return "file";
    case FileType::kDirectory: return "dir";
    case FileType::kSymlink: return "symlink";
    case FileType::kHardlink: return "hardlink";
    case FileType::kOther: return "other";
    case FileType::kWhiteout: return "whiteout";
    case FileType::kOpaqueDir: return "opaque";
  }
  return "other";
}

std::string NormalizePath(absl::string_view name) {
  std::vector<absl::string_view> parts;
  for (absl::string_view part : absl::StrSplit(name, '/', absl::SkipEmpty())) {
    if (part == ".") continue;
    if (part == "..") {
      if (!parts.empty()) parts.pop_back();  // at the root, ".." stays there
      continue;
    }
    parts.push_back(part);
  }
  return absl::StrJoin(parts, "/");
}

absl::StatusOr<LayerFileList> ReadLayerFiles(const std::string& path, const LayerReadLimits& limits) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) {
    if (errno == ENOENT) return absl::NotFoundError(absl::StrCat(path, " not found"));
    if (errno == ELOOP) return absl::FailedPreconditionError(absl::StrCat(path, " is a symlink"));
    return LastErrnoStatus("open", path);
  }
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus("fstat", path);
  if (!S_ISREG(st.st_mode)) {
    return absl::FailedPreconditionError(absl::StrCat(path, " is not a regular file"));
  }

  std::unique_ptr<archive, ArchiveReadFree> a(archive_read_new());
  if (!a) return absl::ResourceExhaustedError("archive_read_new failed");
  // Layers are tar streams, compressed with anything containerd can apply
  // (gzip, zstd; plain tar for uncompressed media types).
  archive_read_support_filter_all(a.get());
  archive_read_support_format_tar(a.get());
  if (archive_read_open_fd(a.get(), fd.get(), kReadBlock) != ARCHIVE_OK) {
    return ArchiveError(a.get(), path, "open");
  }

  LayerFileList out;
  while (true) {
    archive_entry* e = nullptr;
    const int r = archive_read_next_header(a.get(), &e);
    if (r == ARCHIVE_EOF) break;
    // ARCHIVE_WARN still hands over a usable header (e.g. a name that does
    // not convert to the locale); RETRY, FAILED and FATAL do not.
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(a.get(), path, "read");
    if (out.entries.size() >= limits.max_entries) {
      return absl::ResourceExhaustedError(
          absl::StrCat(path, ": more than ", limits.max_entries, " entries"));
    }
    const char* raw_name = EntryName(e);
    if (raw_name == nullptr || std::char_traits<char>::length(raw_name) > limits.max_path_length) {
      ++out.skipped;
      continue;
    }
    FileEntry f;
    f.path = NormalizePath(raw_name);
    if (f.path.empty()) continue;  // "./": the layer's root directory
    f.mode = static_cast<uint32_t>(archive_entry_perm(e)) & 07777;

    const auto [dir, base] = SplitBase(f.path);
    if (absl::StartsWith(base, kWhiteoutPrefix)) {
      if (base == kOpaqueName) {
        f.type = FileType::kOpaqueDir;
        f.path = std::string(dir);
      } else if (absl::StartsWith(base, ".wh..wh.")) {
        continue;  // aufs metadata (.wh..wh.plnk, .wh..wh.aufs): not a file of the image
      } else {
        if (base.size() == kWhiteoutPrefix.size()) continue;  // ".wh." names nothing
        f.type = FileType::kWhiteout;
        f.path = dir.empty() ? std::string(base.substr(kWhiteoutPrefix.size()))
                             : absl::StrCat(dir, "/", base.substr(kWhiteoutPrefix.size()));
      }
      out.entries.push_back(std::move(f));
      continue;
    }

    if (const char* hard = HardlinkTarget(e); hard != nullptr) {
      if (std::char_traits<char>::length(hard) > limits.max_path_length) {
        ++out.skipped;
        continue;
      }
      f.type = FileType::kHardlink;
      f.link_target = NormalizePath(hard);
      // Some writers also give a hard link the size of its data.
      f.size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
    } else {
      switch (archive_entry_filetype(e)) {
        case AE_IFREG:
          f.type = FileType::kRegular;
          f.size = archive_entry_size_is_set(e) ? archive_entry_size(e) : 0;
          if (f.size < 0) f.size = 0;
          out.regular_bytes += f.size;
          out.disk_bytes += (f.size + kFsBlock - 1) / kFsBlock * kFsBlock;
          break;
        case AE_IFDIR:
          f.type = FileType::kDirectory;
          out.disk_bytes += kFsBlock;
          break;
        case AE_IFLNK: {
          const char* target = SymlinkTarget(e);
          if (target == nullptr || std::char_traits<char>::length(target) > limits.max_path_length) {
            ++out.skipped;
            continue;
          }
          f.type = FileType::kSymlink;
          f.link_target = target;
          if (f.link_target.size() >= kFastSymlink) out.disk_bytes += kFsBlock;
          break;
        }
        default:
          f.type = FileType::kOther;
          break;
      }
    }
    out.entries.push_back(std::move(f));
  }
  return out;
}

absl::StatusOr<LayerFileList> ReadLayerBlob(const std::string& content_root, const std::string& digest,
                                            const LayerReadLimits& limits) {
  if (!lass::IsSha256Digest(digest)) {
    return absl::InvalidArgumentError(absl::StrCat("\"", digest, "\" is not sha256:<64 lowercase hex>"));
  }
  return ReadLayerFiles(absl::StrCat(content_root, "/blobs/sha256/", digest.substr(7)), limits);
}

}  // namespace ndocker::hbcsa
