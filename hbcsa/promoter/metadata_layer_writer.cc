#include "hbcsa/promoter/metadata_layer_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <array>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "hbcsa/promoter/beneath.h"
#include "hbcsa/promoter/pmem2_file.h"
#include "hbcsa/promoter/xattrs.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/status_macros.h"

namespace ndocker::hbcsa {

namespace {

constexpr char kMetacopy[] = "trusted.overlay.metacopy";
constexpr char kRedirect[] = "trusted.overlay.redirect";

// The xattrs the merged view shows for the entry at `src` (overlayfs hides
// its own trusted.overlay.* markers), set on `dst`. Called after chown and
// after any data write, which both drop security.capability.
absl::Status CopyXattrs(const std::string& src, const std::string& dst, const std::string& path) {
  absl::StatusOr<std::vector<Xattr>> xattrs = ListXattrs(src);
  if (!xattrs.ok()) return xattrs.status();
  for (const Xattr& x : *xattrs) {
    if (IsOverlayPrivateXattr(x.name)) continue;
    if (absl::Status st = SetXattr(dst, x.name, x.value); !st.ok()) {
      return absl::Status(st.code(), absl::StrCat(st.message(), " (", path, ")"));
    }
  }
  return absl::OkStatus();
}

std::array<timespec, 2> Times(const struct stat& st) { return {st.st_atim, st.st_mtim}; }

// View paths are absolute; below the layer's root they are relative.
std::string RelativeToRoot(const std::string& path) { return path.substr(1); }

}  // namespace

void MetadataLayerWriter::Count(const struct stat& st) {
  report_.bytes_on_disk += static_cast<int64_t>(st.st_blocks) * 512;
}

absl::Status MetadataLayerWriter::EnterDirectory(const MergedEntry& dir) {
  UniqueFd fd;
  if (dirs_.empty()) {
    fd.Reset(::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return LastErrnoStatus("open metadata layer root", root_);
  } else {
    if (::mkdirat(out(), dir.name.c_str(), 0700) != 0) return LastErrnoStatus("mkdir", dir.path);
    fd.Reset(::openat(out(), dir.name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) return LastErrnoStatus("open new dir", dir.path);
  }
  // Mode after owner: chown may drop setgid. Times wait for LeaveDirectory,
  // since creating the entries inside changes them.
  if (::fchown(fd.get(), dir.st.st_uid, dir.st.st_gid) != 0) return LastErrnoStatus("fchown", dir.path);
  if (::fchmod(fd.get(), dir.st.st_mode & 07777) != 0) return LastErrnoStatus("fchmod", dir.path);
  NDOCKER_RETURN_IF_ERROR(CopyXattrs(dir.attr_path, FdRelativePath(fd.get(), "."), dir.path));
  dirs_.push_back(std::move(fd));
  ++report_.directories;
  return absl::OkStatus();
}

absl::Status MetadataLayerWriter::LeaveDirectory(const MergedEntry& dir) {
  const std::array<timespec, 2> times = Times(dir.st);
  if (::futimens(out(), times.data()) != 0) return LastErrnoStatus("futimens", dir.path);
  struct stat st;
  if (::fstat(out(), &st) != 0) return LastErrnoStatus("fstat", dir.path);
  Count(st);
  dirs_.pop_back();
  return absl::OkStatus();
}

absl::Status MetadataLayerWriter::VisitLeaf(const MergedEntry& e) {
  const mode_t type = e.st.st_mode & S_IFMT;
  switch (type) {
    case S_IFREG: ++report_.regular_files; break;
    case S_IFLNK: ++report_.symlinks; break;
    case S_IFCHR:
    case S_IFBLK: ++report_.devices; break;
    case S_IFIFO: ++report_.fifos; break;
    case S_IFSOCK: ++report_.sockets; break;
    default: return absl::InternalError(absl::StrCat("unknown file type at ", e.path));
  }
  const bool hot = type == S_IFREG && hot_.Contains(e.path);
  if (hot) hot_seen_.insert(e.path);

  const std::pair<dev_t, ino_t> key{e.st.st_dev, e.st.st_ino};
  if (e.st.st_nlink > 1) {
    if (auto it = links_.find(key); it != links_.end()) {
      NDOCKER_RETURN_IF_ERROR(Link(e, it->second));
      if (hot && !it->second.hot) NDOCKER_RETURN_IF_ERROR(MakeHot(e, it->second));
      return absl::OkStatus();
    }
  }
  int64_t blocks = 0;
  if (type == S_IFREG) {
    NDOCKER_RETURN_IF_ERROR(WriteRegular(e, hot, blocks));
  } else if (type == S_IFLNK) {
    NDOCKER_RETURN_IF_ERROR(WriteSymlink(e, blocks));
  } else {
    NDOCKER_RETURN_IF_ERROR(WriteSpecial(e, blocks));
  }
  report_.bytes_on_disk += blocks * 512;
  if (e.st.st_nlink > 1) {
    links_.emplace(key, Written{RelativeToRoot(e.path), hot, blocks});
  }
  return absl::OkStatus();
}

absl::Status MetadataLayerWriter::WriteRegular(const MergedEntry& e, bool hot, int64_t& blocks) {
  UniqueFd fd(::openat(out(), e.name.c_str(), O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                       0600));
  if (!fd.valid()) return LastErrnoStatus("create", e.path);
  if (hot) {
    UniqueFd src(::openat(e.parent_fd, e.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
    if (!src.valid()) return LastErrnoStatus("open layer file", e.path);
    struct stat now;
    if (::fstat(src.get(), &now) != 0) return LastErrnoStatus("fstat layer file", e.path);
    // Layers are immutable (the overlayfs rule): a different file here means
    // someone broke that rule, and a copy would not match the stat we walked.
    if (now.st_ino != e.st.st_ino || now.st_dev != e.st.st_dev || now.st_size != e.st.st_size) {
      return absl::FailedPreconditionError(absl::StrCat("layer file changed during the build: ", e.path));
    }
    absl::StatusOr<int64_t> written = CopyFileDataPmem2(src.get(), fd.get(), e.st.st_size);
    if (!written.ok()) {
      return absl::Status(written.status().code(),
                          absl::StrCat(written.status().message(), " (", e.path, ")"));
    }
    ++report_.hot_files;
    report_.hot_bytes += *written;
  } else {
    // The stub's size is the file's: overlayfs reports the metadata inode's
    // size. ftruncate allocates no blocks, so the stub costs only its inode.
    if (::ftruncate(fd.get(), e.st.st_size) != 0) return LastErrnoStatus("ftruncate", e.path);
    ++report_.stubs;
  }
  if (::fchown(fd.get(), e.st.st_uid, e.st.st_gid) != 0) return LastErrnoStatus("fchown", e.path);
  if (::fchmod(fd.get(), e.st.st_mode & 07777) != 0) return LastErrnoStatus("fchmod", e.path);
  const std::string dst = FdRelativePath(out(), e.name);
  NDOCKER_RETURN_IF_ERROR(CopyXattrs(e.attr_path, dst, e.path));
  if (!hot) {
    NDOCKER_RETURN_IF_ERROR(SetXattr(dst, kMetacopy, ""));
    // Absolute: looked up from the root of each data-only layer, topmost
    // first, and a visible path is in no layer above the one showing it.
    NDOCKER_RETURN_IF_ERROR(SetXattr(dst, kRedirect, e.path));
  }
  const std::array<timespec, 2> times = Times(e.st);
  if (::futimens(fd.get(), times.data()) != 0) return LastErrnoStatus("futimens", e.path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus("fstat", e.path);
  blocks = st.st_blocks;
  return absl::OkStatus();
}

absl::Status MetadataLayerWriter::FinishNonRegular(const MergedEntry& e, int64_t& blocks) {
  NDOCKER_RETURN_IF_ERROR(CopyXattrs(e.attr_path, FdRelativePath(out(), e.name), e.path));
  const std::array<timespec, 2> times = Times(e.st);
  if (::utimensat(out(), e.name.c_str(), times.data(), AT_SYMLINK_NOFOLLOW) != 0) {
    return LastErrnoStatus("utimensat", e.path);
  }
  struct stat st;
  if (::fstatat(out(), e.name.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) return LastErrnoStatus("lstat", e.path);
  blocks = st.st_blocks;
  return absl::OkStatus();
}

absl::Status MetadataLayerWriter::WriteSymlink(const MergedEntry& e, int64_t& blocks) {
  std::string target(static_cast<size_t>(e.st.st_size) + 1, '\0');
  const ssize_t n = ::readlinkat(e.parent_fd, e.name.c_str(), target.data(), target.size());
  if (n < 0) return LastErrnoStatus("readlink", e.path);
  if (static_cast<size_t>(n) >= target.size()) {
    return absl::FailedPreconditionError(absl::StrCat("symlink changed during the build: ", e.path));
  }
  target.resize(static_cast<size_t>(n));
  if (::symlinkat(target.c_str(), out(), e.name.c_str()) != 0) return LastErrnoStatus("symlink", e.path);
  if (::fchownat(out(), e.name.c_str(), e.st.st_uid, e.st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return LastErrnoStatus("lchown", e.path);
  }
  return FinishNonRegular(e, blocks);
}

absl::Status MetadataLayerWriter::WriteSpecial(const MergedEntry& e, int64_t& blocks) {
  if (::mknodat(out(), e.name.c_str(), e.st.st_mode & (S_IFMT | 0600), e.st.st_rdev) != 0) {
    return LastErrnoStatus("mknod", e.path);
  }
  if (::fchownat(out(), e.name.c_str(), e.st.st_uid, e.st.st_gid, AT_SYMLINK_NOFOLLOW) != 0) {
    return LastErrnoStatus("chown", e.path);
  }
  // mknod's mode went through the umask; the name was just made by us and
  // is no symlink, so fchmodat cannot be led elsewhere.
  if (::fchmodat(out(), e.name.c_str(), e.st.st_mode & 07777, 0) != 0) {
    return LastErrnoStatus("chmod", e.path);
  }
  return FinishNonRegular(e, blocks);
}

absl::Status MetadataLayerWriter::Link(const MergedEntry& e, Written& first) {
  UniqueFd root(::open(root_.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!root.valid()) return LastErrnoStatus("open metadata layer root", root_);
  // No AT_SYMLINK_FOLLOW: a hard-linked symlink stays one.
  if (::linkat(root.get(), first.rel.c_str(), out(), e.name.c_str(), 0) != 0) {
    return LastErrnoStatus("link", e.path);
  }
  ++report_.hard_links;
  return absl::OkStatus();
}

absl::Status MetadataLayerWriter::MakeHot(const MergedEntry& e, Written& first) {
  UniqueFd fd(::openat(out(), e.name.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus("open stub", e.path);
  UniqueFd src(::openat(e.parent_fd, e.name.c_str(), O_RDONLY | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC));
  if (!src.valid()) return LastErrnoStatus("open layer file", e.path);
  // Same size as the stub: the copy only fills in the data; then the stub
  // markers go and the times come back (the write moved mtime).
  absl::StatusOr<int64_t> written = CopyFileDataPmem2(src.get(), fd.get(), e.st.st_size);
  if (!written.ok()) return written.status();
  for (const char* name : {kMetacopy, kRedirect}) {
    if (::fremovexattr(fd.get(), name) != 0) return LastErrnoStatus("fremovexattr", e.path);
  }
  // The data write dropped security.capability: set the view's xattrs again.
  NDOCKER_RETURN_IF_ERROR(CopyXattrs(e.attr_path, FdRelativePath(out(), e.name), e.path));
  const std::array<timespec, 2> times = Times(e.st);
  if (::futimens(fd.get(), times.data()) != 0) return LastErrnoStatus("futimens", e.path);
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) return LastErrnoStatus("fstat", e.path);
  report_.bytes_on_disk += (static_cast<int64_t>(st.st_blocks) - first.blocks) * 512;
  first.blocks = st.st_blocks;
  first.hot = true;
  --report_.stubs;
  ++report_.hot_files;
  report_.hot_bytes += *written;
  return absl::OkStatus();
}

void MetadataLayerWriter::Finish() {
  report_.hot_not_found = 0;
  for (const std::string& p : hot_.paths()) {
    if (!hot_seen_.contains(p)) ++report_.hot_not_found;
  }
}

}  // namespace ndocker::hbcsa
