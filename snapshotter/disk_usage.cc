#include "snapshotter/disk_usage.h"

#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>

#include <filesystem>
#include <set>
#include <utility>

#include "snapshotter/errno_status.h"

namespace ndocker {

absl::StatusOr<Usage> DiskUsage(const std::string& dir) {
  namespace fs = std::filesystem;
  std::set<std::pair<dev_t, ino_t>> seen;
  Usage usage;
  auto count = [&](const std::string& path) -> absl::Status {
    struct stat st;
    if (::lstat(path.c_str(), &st) != 0) {
      if (errno == ENOENT) return absl::OkStatus();  // removed while walking
      return LastErrnoStatus("lstat", path);
    }
    if (seen.emplace(st.st_dev, st.st_ino).second) {
      usage.size += static_cast<int64_t>(st.st_blocks) * 512;
      usage.inodes += 1;
    }
    return absl::OkStatus();
  };
  if (absl::Status st = count(dir); !st.ok()) return st;
  std::error_code ec;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  if (ec) return ErrnoStatus(ec.value(), "walk", dir);
  for (; it != end; it.increment(ec)) {
    if (ec) return ErrnoStatus(ec.value(), "walk", dir);
    if (absl::Status st = count(it->path().string()); !st.ok()) return st;
  }
  if (ec) return ErrnoStatus(ec.value(), "walk", dir);
  return usage;
}

}  // namespace ndocker
