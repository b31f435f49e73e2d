// The files whose data a metadata layer carries: paths absolute inside the
// image's rootfs ("/usr/bin/python3"), as a cold-start profile records them.
#pragma once

#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace ndocker::hbcsa {

class HotSet {
 public:
  HotSet() = default;
  explicit HotSet(const std::vector<std::string>& paths) {
    for (const std::string& p : paths) Add(p);
  }
  // A relative path ("usr/bin/x") is taken as rootfs-relative.
  void Add(absl::string_view path) {
    // StrCat, not "/" + std::string: GCC 12 at -O3 warns (-Wrestrict) on
    // the inlined operator+.
    paths_.insert(!path.empty() && path[0] == '/' ? std::string(path) : absl::StrCat("/", path));
  }
  bool Contains(const std::string& path) const { return paths_.contains(path); }
  size_t size() const { return paths_.size(); }
  const absl::flat_hash_set<std::string>& paths() const { return paths_; }

 private:
  absl::flat_hash_set<std::string> paths_;
};

}  // namespace ndocker::hbcsa
