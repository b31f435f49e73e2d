#include "snapshotter/fs_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sys/sysmacros.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/log.h"
#include "snapshotter/unique_fd.h"

namespace ndocker {

absl::Status MakeDir(const std::string& path, mode_t mode) {
  if (::mkdir(path.c_str(), mode) != 0) return LastErrnoStatus("mkdir", path);
  if (::chmod(path.c_str(), mode) != 0) return LastErrnoStatus("chmod", path);
  return absl::OkStatus();
}

absl::Status MakeDirs(const std::string& path, mode_t mode) {
  std::error_code ec;
  std::filesystem::create_directories(path, ec);
  if (ec) return ErrnoStatus(ec.value(), "mkdir -p", path);
  if (::chmod(path.c_str(), mode) != 0) return LastErrnoStatus("chmod", path);
  return absl::OkStatus();
}

namespace {

// One RemoveTree run: what it must not cross, what it could not remove.
struct RemoveRun {
  dev_t dev = 0;
  bool have_mnt_id = false;
  uint64_t mnt_id = 0;
  const std::function<void()>* hook = nullptr;
  bool removed_any = false;
  size_t left = 0;
  std::string first_failure;  // "what: strerror" of the first entry left

  void Removed() {
    if (removed_any) return;
    removed_any = true;
    if (hook != nullptr && *hook) (*hook)();
  }
  // err 0: `what` says it all.
  void Left(const std::string& path, absl::string_view what, int err) {
    ++left;
    const std::string why = err == 0 ? std::string(what) : absl::StrCat(what, ": ", std::strerror(err));
    if (first_failure.empty()) first_failure = why;
    spdlog::warn("msg=\"cannot remove, left in place\" path={} error={}", Q(path), Q(why));
  }
  // Whether the object behind `fd` (or `name` in it) is on our mount.
  bool SameMount(const struct statx& stx) const {
    if (makedev(stx.stx_dev_major, stx.stx_dev_minor) != dev) return false;
    if (have_mnt_id && (stx.stx_mask & STATX_MNT_ID) != 0 && stx.stx_mnt_id != mnt_id) return false;
    return true;
  }
};

int StatxAt(int dirfd, const char* name, int flags, struct statx* stx) {
  return ::statx(dirfd, name, flags | AT_SYMLINK_NOFOLLOW | AT_NO_AUTOMOUNT,
                 STATX_TYPE | STATX_MODE | STATX_MNT_ID, stx);
}

bool RemoveEntry(int parent, const std::string& name, const std::string& path, RemoveRun& run);

// Removes what is inside the directory `fd`; true when all of it went.
bool RemoveContents(int fd, const std::string& path, RemoveRun& run) {
  std::vector<std::string> names;
  {
    int dup_fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 0);
    DIR* d = dup_fd < 0 ? nullptr : ::fdopendir(dup_fd);
    if (d == nullptr) {
      const int err = errno;
      if (dup_fd >= 0) ::close(dup_fd);
      run.Left(path, "opendir", err);
      return false;
    }
    errno = 0;
    while (struct dirent* e = ::readdir(d)) {
      absl::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    const int err = errno;
    ::closedir(d);
    if (err != 0) {
      run.Left(path, "readdir", err);
      return false;
    }
  }
  bool all = true;
  for (const auto& n : names) all &= RemoveEntry(fd, n, absl::StrCat(path, "/", n), run);
  return all;
}

bool RemoveEntry(int parent, const std::string& name, const std::string& path, RemoveRun& run) {
  struct statx stx;
  if (StatxAt(parent, name.c_str(), 0, &stx) != 0) {
    if (errno == ENOENT) return true;
    run.Left(path, "stat", errno);
    return false;
  }
  if (!run.SameMount(stx)) {
    run.Left(path, "another filesystem or mount", 0);
    return false;
  }
  if (S_ISDIR(stx.stx_mode)) {
    UniqueFd fd(::openat(parent, name.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return true;
      if (errno != ENOTDIR && errno != ELOOP) {
        run.Left(path, "open", errno);
        return false;
      }
      // Replaced by a non-directory since the stat: unlink that below.
    } else {
      // Check what was opened, not what was stat'ed: a mount may have
      // appeared on the name in between.
      if (StatxAt(fd.get(), "", AT_EMPTY_PATH, &stx) != 0) {
        run.Left(path, "stat", errno);
        return false;
      }
      if (!run.SameMount(stx)) {
        run.Left(path, "another filesystem or mount", 0);
        return false;
      }
      const bool all = RemoveContents(fd.get(), path, run);
      fd = UniqueFd();
      if (::unlinkat(parent, name.c_str(), AT_REMOVEDIR) == 0) {
        run.Removed();
        return true;
      }
      if (errno == ENOENT) return true;
      // Not empty because of what was left inside: counted there already.
      if (errno == ENOTEMPTY && !all) return false;
      run.Left(path, "rmdir", errno);
      return false;
    }
  }
  if (::unlinkat(parent, name.c_str(), 0) == 0) {
    run.Removed();
    return true;
  }
  if (errno == ENOENT) return true;
  run.Left(path, "unlink", errno);
  return false;
}

}  // namespace

absl::Status RemoveTree(const std::string& path, const std::function<void()>& after_first_entry) {
  RemoveRun run;
  run.hook = &after_first_entry;
  struct statx stx;
  if (StatxAt(AT_FDCWD, path.c_str(), 0, &stx) != 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return LastErrnoStatus("stat", path);
  }
  bool all = true;
  if (S_ISDIR(stx.stx_mode)) {
    UniqueFd fd(::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
    if (!fd.valid()) {
      if (errno == ENOENT) return absl::OkStatus();
      return LastErrnoStatus("open", path);
    }
    if (StatxAt(fd.get(), "", AT_EMPTY_PATH, &stx) != 0) return LastErrnoStatus("stat", path);
    run.dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
    run.have_mnt_id = (stx.stx_mask & STATX_MNT_ID) != 0;
    run.mnt_id = stx.stx_mnt_id;
    // `path` itself a mount point: its contents belong to another filesystem.
    struct statx parent;
    std::string trimmed = path;
    while (trimmed.size() > 1 && trimmed.back() == '/') trimmed.pop_back();
    const size_t slash = trimmed.rfind('/');
    const std::string up = slash == std::string::npos ? std::string(".")
                           : slash == 0               ? std::string("/")
                                                      : trimmed.substr(0, slash);
    if (trimmed != "/" && StatxAt(AT_FDCWD, up.c_str(), 0, &parent) == 0 && !run.SameMount(parent)) {
      run.Left(path, "a mount point", 0);
      return absl::InternalError(absl::StrCat("remove tree: 1 left (first: ", run.first_failure, ")"));
    }
    all = RemoveContents(fd.get(), path, run);
    fd = UniqueFd();
    if (::rmdir(path.c_str()) == 0) {
      run.Removed();
    } else if (errno != ENOENT && !(errno == ENOTEMPTY && !all)) {
      run.Left(path, "rmdir", errno);
    }
  } else if (::unlink(path.c_str()) == 0) {
    run.Removed();
  } else if (errno != ENOENT) {
    run.Left(path, "unlink", errno);
  }
  if (run.left == 0) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat("remove tree: ", run.left, " left (first: ", run.first_failure, ")"));
}

absl::Status RemoveAll(const std::string& path) { return RemoveTree(path); }

absl::Status ReplaceSymlink(const std::string& target, const std::string& link) {
  // Unique per call: two threads may replace the same link at once. Cleanup
  // reads the id before the '.' and leaves it while the id is in flight.
  static std::atomic<uint64_t> counter{0};
  std::string tmp = absl::StrCat(link, ".tmp", ::getpid(), "-", counter.fetch_add(1));
  ::unlink(tmp.c_str());
  if (::symlink(target.c_str(), tmp.c_str()) != 0) return LastErrnoStatus("symlink", tmp);
  if (::rename(tmp.c_str(), link.c_str()) != 0) {
    absl::Status st = LastErrnoStatus("rename", link);
    ::unlink(tmp.c_str());
    return st;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> MakeTempDir(const std::string& dir, const std::string& prefix) {
  std::string tmpl = absl::StrCat(dir, "/", prefix, "XXXXXX");
  if (::mkdtemp(tmpl.data()) == nullptr) return LastErrnoStatus("mkdtemp", tmpl);
  return tmpl;
}

absl::StatusOr<std::vector<std::string>> ListDir(const std::string& dir) {
  std::vector<std::string> names;
  DIR* d = ::opendir(dir.c_str());
  if (d == nullptr) {
    if (errno == ENOENT) return names;
    return LastErrnoStatus("opendir", dir);
  }
  errno = 0;
  while (struct dirent* e = ::readdir(d)) {
    absl::string_view name = e->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  int err = errno;
  ::closedir(d);
  if (err != 0) return ErrnoStatus(err, "readdir", dir);
  return names;
}

absl::Status SyncPath(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW));
  if (!fd.valid()) return LastErrnoStatus("open", path);
  if (::fsync(fd.get()) != 0) return LastErrnoStatus("fsync", path);
  return absl::OkStatus();
}

absl::Status SyncFilesystem(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_DIRECTORY));
  if (!fd.valid()) return LastErrnoStatus("open", path);
  if (::syncfs(fd.get()) != 0) return LastErrnoStatus("syncfs", path);
  return absl::OkStatus();
}

absl::StatusOr<bool> SameFilesystem(const std::string& a, const std::string& b) {
  struct stat sa, sb;
  if (::stat(a.c_str(), &sa) != 0) return LastErrnoStatus("stat", a);
  if (::stat(b.c_str(), &sb) != 0) return LastErrnoStatus("stat", b);
  return sa.st_dev == sb.st_dev;
}

}  // namespace ndocker
