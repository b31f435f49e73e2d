#include "snapshotter/mountinfo.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_split.h"
#include "snapshotter/errno_status.h"

namespace ndocker {
namespace {

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string Unescape(absl::string_view s) {
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
      if (ok) {
        out.push_back(static_cast<char>(v));
        i += 3;
        continue;
      }
    }
    out.push_back(s[i]);
  }
  return out;
}

bool AtOrBelow(absl::string_view path, absl::string_view dir) {
  if (path.substr(0, dir.size()) != dir) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

}  // namespace

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
    e.mount_point = Unescape(f[4]);
    e.fs_type = std::string(f[dash + 1]);
    e.source = Unescape(f[dash + 2]);
    if (dash + 3 < f.size()) e.super_options = Unescape(f[dash + 3]);
    out.push_back(std::move(e));
  }
  return out;
}

bool DirInUse(const std::vector<MountInfoEntry>& mounts, const std::string& dir) {
  for (const auto& m : mounts) {
    if (AtOrBelow(m.mount_point, dir)) return true;
    if (m.fs_type != "overlay") continue;
    for (absl::string_view opt : absl::StrSplit(m.super_options, ',')) {
      for (absl::string_view key : {"upperdir=", "workdir=", "lowerdir="}) {
        if (opt.substr(0, key.size()) != key) continue;
        for (absl::string_view p : absl::StrSplit(opt.substr(key.size()), ':')) {
          if (AtOrBelow(p, dir)) return true;
        }
      }
    }
  }
  return false;
}

}  // namespace ndocker
