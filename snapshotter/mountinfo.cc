#include "snapshotter/mountinfo.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "snapshotter/layout.h"
#include "snapshotter/mount_use.h"
#include "snapshotter/errno_status.h"

namespace ndocker {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string UnescapeMountInfo(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 3 < s.size()) {
      int v = 0;
      bool ok = true;
      for (size_t j = 1; j <= 3; ++j) {
        char c = s[i + j];
        if (c < '0' || c > '7') ok = false;
        v = v * 8 + (c - '0');
      }
      if (ok && v <= 0377) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

absl::StatusOr<std::vector<MountInfoEntry>> ReadMountInfo(const std::string& path) {
  std::ifstream in(path);
  if (!in) return LastErrnoStatus("open", path);
  std::vector<MountInfoEntry> out;
  std::string line;
  while (std::getline(in, line)) {
    // id parent maj:min root mount_point opts [optional...] - fstype source super_opts
    std::vector<absl::string_view> f = absl::StrSplit(line, ' ');
    size_t dash = 0;
    for (size_t i = 6; i < f.size(); ++i) {
      if (f[i] == "-") {
        dash = i;
        break;
      }
    }
    if (f.size() < 5 || dash == 0 || dash + 2 >= f.size()) continue;
    MountInfoEntry e;
    e.major_minor = std::string(f[2]);
    e.root = UnescapeMountInfo(f[3]);
    e.mount_point = UnescapeMountInfo(f[4]);
    e.fs_type = std::string(f[dash + 1]);
    e.source = UnescapeMountInfo(f[dash + 2]);
    if (dash + 3 < f.size()) {
      e.super_options_raw = std::string(f[dash + 3]);
      e.super_options = UnescapeMountInfo(f[dash + 3]);
    }
    out.push_back(std::move(e));
  }
  return out;
}

bool DirInUse(const std::vector<MountInfoEntry>& mounts, const std::string& dir) {
  return MountUse::FromEntries(Layout("", "", ""), mounts).PathInUse(dir);
}

}  // namespace ndocker
