#include "hbcsa/promoter/scoped_temp_dir.h"

#include <utility>

#include "snapshotter/fs_ops.h"
#include "snapshotter/log.h"

namespace ndocker::hbcsa {

absl::StatusOr<ScopedTempDir> ScopedTempDir::Make(const std::string& parent,
                                                  const std::string& prefix) {
  absl::StatusOr<std::string> dir = MakeTempDir(parent, prefix);
  if (!dir.ok()) return dir.status();
  return ScopedTempDir(std::move(*dir));
}

ScopedTempDir::ScopedTempDir(ScopedTempDir&& other) noexcept
    : path_(std::exchange(other.path_, std::string())) {}

ScopedTempDir::~ScopedTempDir() {
  if (path_.empty()) return;
  // RemoveTree never crosses into a mount left inside, and logs what it
  // could not remove: a destructor has nobody to return the error to.
  if (absl::Status st = RemoveTree(path_); !st.ok()) {
    spdlog::warn("msg={} path={} error={}", Q("temp dir left behind"), Q(path_),
                 Q(st.ToString()));
  }
}

}  // namespace ndocker::hbcsa
