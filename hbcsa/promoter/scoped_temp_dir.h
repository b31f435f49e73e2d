// A directory under construction: removed with everything in it unless the
// owner keeps it (Release), so a failed build leaves nothing behind.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace ndocker::hbcsa {

class ScopedTempDir {
 public:
  // mkdtemp of "<parent>/<prefix>XXXXXX" (mode 0700).
  static absl::StatusOr<ScopedTempDir> Make(const std::string& parent, const std::string& prefix);
  ScopedTempDir(ScopedTempDir&& other) noexcept;
  ScopedTempDir& operator=(ScopedTempDir&&) = delete;
  ScopedTempDir(const ScopedTempDir&) = delete;
  ScopedTempDir& operator=(const ScopedTempDir&) = delete;
  ~ScopedTempDir();

  const std::string& path() const { return path_; }
  // Keeps the directory (it was renamed into place or handed on).
  void Release() { path_.clear(); }

 private:
  explicit ScopedTempDir(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

}  // namespace ndocker::hbcsa
