#include "snapshotter/tree_copy.h"

#include <archive.h>
#include <archive_entry.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include "absl/strings/string_view.h"

#include "absl/strings/str_cat.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/log.h"
#include "snapshotter/status_macros.h"

namespace ndocker {
namespace {

struct ReadDiskDeleter {
  void operator()(archive* a) const { archive_read_free(a); }
};
struct WriteDiskDeleter {
  void operator()(archive* a) const { archive_write_free(a); }
};
struct ResolverDeleter {
  void operator()(archive_entry_linkresolver* r) const { archive_entry_linkresolver_free(r); }
};
struct EntryDeleter {
  void operator()(archive_entry* e) const { archive_entry_free(e); }
};

// libarchive's message usually names the file: it goes to the log with the
// path; the status says which step failed and, when there is one, the errno
// (ENOSPC/EDQUOT become ResourceExhausted through ErrnoStatus).
absl::Status ArchiveError(archive* a, absl::string_view what, absl::string_view path = {}) {
  const char* msg = archive_error_string(a);
  const int err = archive_errno(a);
  spdlog::warn("msg={} path={} error={}", Q(absl::StrCat("copy: ", what, " failed")), Q(path),
               Q(msg != nullptr ? msg : "unknown error"));
  if (err > 0) return ErrnoStatus(err, absl::StrCat("copy: ", what));
  return absl::InternalError(absl::StrCat("copy: ", what, " failed"));
}

constexpr unsigned long kPortableFlags =
    FS_APPEND_FL | FS_IMMUTABLE_FL | FS_NODUMP_FL | FS_NOATIME_FL | FS_SYNC_FL | FS_DIRSYNC_FL;

absl::string_view PathOf(archive_entry* e) {
  const char* p = archive_entry_pathname(e);
  return p != nullptr ? p : "";
}

// Maps a path that read_disk reports under `src` to the same place under `dst`.
std::string Rebase(absl::string_view path, absl::string_view src, absl::string_view dst) {
  if (path.substr(0, src.size()) == src) path.remove_prefix(src.size());
  return absl::StrCat(dst, path);
}

absl::Status Cancelled() { return absl::CancelledError("copy cancelled"); }

absl::Status CopyData(archive* in, archive* out, archive_entry* entry, const CopyOptions& options) {
  const void* buf;
  size_t size;
  la_int64_t offset;
  for (;;) {
    if (options.cancelled && options.cancelled()) return Cancelled();
    int r = archive_read_data_block(in, &buf, &size, &offset);
    if (r == ARCHIVE_EOF) return absl::OkStatus();
    if (r != ARCHIVE_OK) return ArchiveError(in, "read data", PathOf(entry));
    if (archive_write_data_block(out, buf, size, offset) != ARCHIVE_OK) {
      return ArchiveError(out, "write data", PathOf(entry));
    }
    if (options.on_bytes && size > 0) options.on_bytes(static_cast<int64_t>(size));
  }
}

absl::Status WriteEntry(archive* in, archive* out, archive_entry* entry, absl::string_view src,
                        absl::string_view dst, const CopyOptions& options) {
  const std::string dest = Rebase(archive_entry_pathname(entry), src, dst);
  archive_entry_copy_pathname(entry, dest.c_str());
  if (const char* hl = archive_entry_hardlink(entry)) {
    const std::string target = Rebase(hl, src, dst);
    archive_entry_copy_hardlink(entry, target.c_str());
    archive_entry_set_size(entry, 0);
  }
  // Only the inode flags with a meaning on every filesystem travel: ext4
  // marks every inode "extents" (and big dirs "indexed"), which tmpfs and xfs
  // refuse to set (EOPNOTSUPP), so a copy between tiers on different
  // filesystems would fail.
  unsigned long set = 0, clear = 0;
  archive_entry_fflags(entry, &set, &clear);
  if ((set & ~kPortableFlags) != 0 || clear != 0) archive_entry_set_fflags(entry, set & kPortableFlags, 0);
  if (archive_write_header(out, entry) != ARCHIVE_OK) return ArchiveError(out, "create", dest);
  if (in != nullptr && archive_entry_filetype(entry) == AE_IFREG && archive_entry_size(entry) > 0 &&
      archive_entry_hardlink(entry) == nullptr) {
    if (absl::Status st = CopyData(in, out, entry, options); !st.ok()) return st;
  }
  if (archive_write_finish_entry(out) != ARCHIVE_OK) return ArchiveError(out, "finish entry", dest);
  return absl::OkStatus();
}

}  // namespace

absl::Status CopyTree(const std::string& src, const std::string& dst, bool sync) {
  CopyOptions options;
  options.sync = sync;
  return CopyTree(src, dst, options);
}

absl::Status CopyTree(const std::string& src, const std::string& dst_path, const CopyOptions& options) {
  // SECURE_SYMLINKS refuses to write through a symlink anywhere in an entry's
  // path, dst's own ancestors included (a tier root reached through a link).
  char* real = ::realpath(dst_path.c_str(), nullptr);
  if (real == nullptr) return LastErrnoStatus("realpath", dst_path);
  const std::string dst(real);
  ::free(real);
  struct stat src_root;
  if (::lstat(src.c_str(), &src_root) != 0) return LastErrnoStatus("stat", src);

  std::unique_ptr<archive, ReadDiskDeleter> in(archive_read_disk_new());
  std::unique_ptr<archive, WriteDiskDeleter> out(archive_write_disk_new());
  std::unique_ptr<archive_entry_linkresolver, ResolverDeleter> links(
      archive_entry_linkresolver_new());
  if (!in || !out || !links) return absl::ResourceExhaustedError("copy: out of memory");

  // Never follow symlinks, never descend into other mounts, keep atimes alone.
  archive_read_disk_set_symlink_physical(in.get());
  if (archive_read_disk_set_behavior(in.get(), ARCHIVE_READDISK_NO_TRAVERSE_MOUNTS) != ARCHIVE_OK) {
    return ArchiveError(in.get(), "set behavior");
  }
  archive_write_disk_set_options(
      out.get(), ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_PERM | ARCHIVE_EXTRACT_TIME |
                     ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_ACL | ARCHIVE_EXTRACT_FFLAGS |
                     ARCHIVE_EXTRACT_SPARSE | ARCHIVE_EXTRACT_SECURE_SYMLINKS |
                     ARCHIVE_EXTRACT_SECURE_NODOTDOT);
  // Numeric ids only: a snapshot's owners are container uids, not host names.
  archive_entry_linkresolver_set_strategy(links.get(), ARCHIVE_FORMAT_TAR_PAX_RESTRICTED);

  if (archive_read_disk_open(in.get(), src.c_str()) != ARCHIVE_OK) {
    return ArchiveError(in.get(), "open source", src);
  }
  for (;;) {
    if (options.cancelled && options.cancelled()) return Cancelled();
    std::unique_ptr<archive_entry, EntryDeleter> entry(archive_entry_new());
    int r = archive_read_next_header2(in.get(), entry.get());
    if (r == ARCHIVE_EOF) break;
    if (r != ARCHIVE_OK && r != ARCHIVE_WARN) return ArchiveError(in.get(), "read", src);
    if (archive_read_disk_can_descend(in.get()) &&
        archive_read_disk_descend(in.get()) != ARCHIVE_OK) {
      return ArchiveError(in.get(), "descend", PathOf(entry.get()));
    }
    archive_entry_set_uname(entry.get(), nullptr);
    archive_entry_set_gname(entry.get(), nullptr);
    // The linkresolver turns the second sighting of an inode into a hardlink
    // to the first; with this strategy it never defers entries.
    archive_entry* e = entry.release();
    archive_entry* spare = nullptr;
    archive_entry_linkify(links.get(), &e, &spare);
    std::unique_ptr<archive_entry, EntryDeleter> owned(e), owned_spare(spare);
    if (e != nullptr) {
      if (absl::Status st = WriteEntry(in.get(), out.get(), e, src, dst, options); !st.ok()) return st;
    }
  }
  if (archive_read_close(in.get()) != ARCHIVE_OK) return ArchiveError(in.get(), "close", src);
  // Directory modes and times are applied at close, after their contents.
  if (archive_write_close(out.get()) != ARCHIVE_OK) return ArchiveError(out.get(), "finish", dst);
  // dst existed, so libarchive set its times at once, before its contents
  // were written (which changed its mtime): set them again.
  const struct timespec times[2] = {src_root.st_atim, src_root.st_mtim};
  if (::utimensat(AT_FDCWD, dst.c_str(), times, AT_SYMLINK_NOFOLLOW) != 0) {
    return LastErrnoStatus("utimensat", dst);
  }
  if (!options.sync) return absl::OkStatus();
  // One syncfs writes back every file and directory of the copy (and commits
  // the journal on ext4/xfs), far cheaper than an fsync per file on a slow
  // disk. Before Linux 5.8 syncfs did not report writeback errors, and the
  // caller's next step is to rename dst into place and fsync the target
  // parent: so also fsync dst itself and its parent (the staging dir), which
  // reports errors on those inodes and makes dst's own inode and directory
  // entry durable before the rename can be.
  NDOCKER_RETURN_IF_ERROR(SyncFilesystem(dst));
  NDOCKER_RETURN_IF_ERROR(SyncPath(dst));
  const size_t slash = dst.rfind('/');
  return SyncPath(slash == 0 ? std::string("/") : dst.substr(0, slash));
}

}  // namespace ndocker
