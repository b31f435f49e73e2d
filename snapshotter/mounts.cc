#include "snapshotter/mounts.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace ndocker {

std::vector<Mount> BuildMounts(const MountSpec& spec) {
  const size_t parents = spec.parent_links.size();
  if (parents == 0) {
    // An active or view with no parent is its own fs, bound in place.
    return {Mount{"bind", spec.fs, {spec.kind == Kind::kView ? "ro" : "rw", "rbind"}}};
  }
  if (spec.kind == Kind::kView && parents == 1) {
    // A one-parent view is the parent's fs itself: no overlay needed.
    return {Mount{"bind", spec.parent_fs.front(), {"ro", "rbind"}}};
  }
  std::vector<std::string> options;
  if (spec.index_off) options.push_back("index=off");
  if (spec.kind == Kind::kActive) {
    options.push_back(absl::StrCat("workdir=", spec.work));
    options.push_back(absl::StrCat("upperdir=", spec.fs));
  }
  options.push_back(absl::StrCat("lowerdir=", absl::StrJoin(spec.parent_links, ":")));
  return {Mount{"overlay", "overlay", std::move(options)}};
}

}  // namespace ndocker
