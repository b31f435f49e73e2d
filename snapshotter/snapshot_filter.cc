#include "snapshotter/snapshot_filter.h"

#include "absl/strings/str_join.h"

namespace ndocker {

FieldLookup SnapshotFieldLookup(const SnapshotInfo& info) {
  return [&info](const std::vector<std::string>& path) -> std::optional<std::string> {
    if (path.empty()) return std::nullopt;
    const std::string& field = path[0];
    if (field == "kind") {
      if (info.kind == Kind::kUnknown) return std::nullopt;
      return std::string(KindName(info.kind));
    }
    if (field == "name") return info.name;
    if (field == "parent") return info.parent;
    if (field == "labels") {
      // containerd joins the rest of an unquoted path: labels.a.b -> "a.b".
      if (path.size() < 2 || info.labels.empty()) return std::nullopt;
      std::vector<std::string> rest(path.begin() + 1, path.end());
      auto it = info.labels.find(absl::StrJoin(rest, "."));
      if (it == info.labels.end()) return std::nullopt;
      return it->second;
    }
    return std::nullopt;
  };
}

}  // namespace ndocker
