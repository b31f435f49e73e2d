#include "hbcsa/tracer/layer_path.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <memory>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "hbcsa/tracer/fanotify_group.h"
#include "snapshotter/errno_status.h"

namespace ndocker::hbcsa {

namespace {
constexpr size_t kMaxCached = 1 << 16;
}

std::optional<LayerPath> SplitLayerPath(const std::vector<std::string>& tier_roots,
                                        const std::string& file) {
  for (const std::string& root : tier_roots) {
    absl::string_view rest = file;
    if (!absl::ConsumePrefix(&rest, root) || !absl::ConsumePrefix(&rest, "/snapshots/")) continue;
    const size_t slash = rest.find('/');
    if (slash == 0 || slash == absl::string_view::npos) continue;
    absl::string_view after = rest.substr(slash);
    if (!absl::ConsumePrefix(&after, "/fs/") || after.empty()) continue;
    LayerPath out;
    out.layer_dir = file.substr(0, file.size() - after.size() - 1);
    out.path = absl::StrCat("/", after);
    return out;
  }
  return std::nullopt;
}

absl::Status DirResolver::AddFilesystem(const std::string& root) {
  absl::StatusOr<uint64_t> fsid = FilesystemId(root);
  if (!fsid.ok()) return fsid.status();
  if (mount_fds_.count(*fsid)) return absl::OkStatus();
  // open_by_handle_at refuses an O_PATH mount fd (EBADF).
  UniqueFd fd(::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd.valid()) return LastErrnoStatus("open(tier root)", root);
  mount_fds_.emplace(*fsid, std::move(fd));
  return absl::OkStatus();
}

std::optional<std::string> DirResolver::Resolve(uint64_t fsid, const std::string& handle) {
  std::string key(reinterpret_cast<const char*>(&fsid), sizeof fsid);
  key += handle;
  if (auto it = cache_.find(key); it != cache_.end()) {
    ++stats_.cached;
    return it->second;
  }
  auto mount = mount_fds_.find(fsid);
  if (mount == mount_fds_.end() || handle.size() < sizeof(file_handle)) {
    ++stats_.failed;
    return std::nullopt;
  }
  // file_handle has a flexible array member: decode from an aligned copy.
  auto buf = std::make_unique<uint64_t[]>(handle.size() / sizeof(uint64_t) + 1);
  std::memcpy(buf.get(), handle.data(), handle.size());
  UniqueFd dir(::open_by_handle_at(mount->second.get(), reinterpret_cast<file_handle*>(buf.get()),
                                   O_PATH | O_DIRECTORY | O_CLOEXEC));
  if (!dir.valid()) {
    ++stats_.failed;
    return std::nullopt;
  }
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", dir.get());
  char target[4096];
  const ssize_t n = ::readlink(proc, target, sizeof target);
  if (n <= 0 || static_cast<size_t>(n) == sizeof target || target[0] != '/') {
    ++stats_.failed;
    return std::nullopt;
  }
  std::string path(target, static_cast<size_t>(n));
  if (absl::EndsWith(path, " (deleted)")) {
    ++stats_.failed;
    return std::nullopt;
  }
  ++stats_.decoded;
  if (cache_.size() >= kMaxCached) cache_.clear();
  cache_.emplace(std::move(key), path);
  return path;
}

}  // namespace ndocker::hbcsa
