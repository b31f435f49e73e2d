#include "snapshotter/fs_ops.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "snapshotter/errno_status.h"
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

absl::Status RemoveAll(const std::string& path) {
  std::error_code ec;
  // std::filesystem::remove_all does not follow symlinks (it removes the link).
  std::filesystem::remove_all(path, ec);
  if (ec && ec.value() != ENOENT) return ErrnoStatus(ec.value(), "remove", path);
  return absl::OkStatus();
}

absl::Status ReplaceSymlink(const std::string& target, const std::string& link) {
  std::string tmp = absl::StrCat(link, ".tmp", ::getpid());
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
