#include "hbcsa/promoter/xattrs.h"

#include <sys/xattr.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/match.h"
#include "snapshotter/errno_status.h"

namespace ndocker::hbcsa {

absl::StatusOr<std::vector<Xattr>> ListXattrs(const std::string& path) {
  std::string names;
  for (;;) {
    // Ask for the size first, then read; retry if it grew in between.
    const ssize_t want = ::llistxattr(path.c_str(), nullptr, 0);
    if (want < 0) {
      if (errno == ENOTSUP) return std::vector<Xattr>{};
      return LastErrnoStatus("llistxattr", path);
    }
    names.resize(static_cast<size_t>(want));
    const ssize_t got = ::llistxattr(path.c_str(), names.data(), names.size());
    if (got >= 0) {
      names.resize(static_cast<size_t>(got));
      break;
    }
    if (errno != ERANGE) return LastErrnoStatus("llistxattr", path);
  }
  std::vector<Xattr> out;
  for (size_t pos = 0; pos < names.size();) {
    const size_t end = names.find('\0', pos);
    std::string name = names.substr(pos, end == std::string::npos ? end : end - pos);
    pos = end == std::string::npos ? names.size() : end + 1;
    if (name.empty()) continue;
    absl::StatusOr<std::optional<std::string>> value = GetXattr(path, name);
    if (!value.ok()) return value.status();
    // Removed between the list and the read: it is not there any more.
    if (!value->has_value()) continue;
    out.push_back(Xattr{std::move(name), std::move(**value)});
  }
  std::sort(out.begin(), out.end(), [](const Xattr& a, const Xattr& b) { return a.name < b.name; });
  return out;
}

absl::StatusOr<std::optional<std::string>> GetXattr(const std::string& path,
                                                    const std::string& name) {
  std::string value;
  for (;;) {
    const ssize_t want = ::lgetxattr(path.c_str(), name.c_str(), nullptr, 0);
    if (want < 0) {
      if (errno == ENODATA || errno == ENOTSUP) return std::optional<std::string>();
      return LastErrnoStatus("lgetxattr", path);
    }
    value.resize(static_cast<size_t>(want));
    const ssize_t got = ::lgetxattr(path.c_str(), name.c_str(), value.data(), value.size());
    if (got >= 0) {
      value.resize(static_cast<size_t>(got));
      return std::optional<std::string>(std::move(value));
    }
    if (errno == ENODATA) return std::optional<std::string>();
    if (errno != ERANGE) return LastErrnoStatus("lgetxattr", path);
  }
}

absl::Status SetXattr(const std::string& path, const std::string& name, absl::string_view value) {
  if (::lsetxattr(path.c_str(), name.c_str(), value.data(), value.size(), 0) != 0) {
    return LastErrnoStatus("lsetxattr " + name, path);
  }
  return absl::OkStatus();
}

bool IsOverlayPrivateXattr(absl::string_view name) {
  return absl::StartsWith(name, "trusted.overlay.");
}

}  // namespace ndocker::hbcsa
