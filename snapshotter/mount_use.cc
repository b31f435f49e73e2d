#include "snapshotter/mount_use.h"

#include <stdlib.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace ndocker {
namespace {

// Lexically clean: no empty or "." components, no trailing '/'. ".." is kept
// (resolving it needs the filesystem). "" stays "".
std::string Clean(absl::string_view p) {
  if (p.empty()) return {};
  const bool absolute = p[0] == '/';
  std::string out;
  for (absl::string_view c : absl::StrSplit(p, '/')) {
    if (c.empty() || c == ".") continue;
    if (!out.empty() || absolute) out.push_back('/');
    out.append(c.data(), c.size());
  }
  if (out.empty()) return absolute ? "/" : ".";
  return out;
}

// Both cleaned; true when `path` is `dir` or lies below it.
bool AtOrBelow(absl::string_view path, absl::string_view dir) {
  if (dir.empty() || path.empty()) return false;
  if (dir == "/") return path[0] == '/';
  if (!absl::StartsWith(path, dir)) return false;
  return path.size() == dir.size() || path[dir.size()] == '/';
}

std::optional<std::string> RealPath(const std::string& p) {
  if (p.empty()) return std::nullopt;
  char* r = ::realpath(p.c_str(), nullptr);
  if (r == nullptr) return std::nullopt;
  std::string out(r);
  ::free(r);
  return out;
}

void AddUnique(std::vector<std::string>& v, std::string s) {
  if (s.empty()) return;
  for (const auto& x : v) {
    if (x == s) return;
  }
  v.push_back(std::move(s));
}

// The path as given and as resolved now, both cleaned.
std::vector<std::string> Spellings(const std::string& p) {
  std::vector<std::string> out;
  AddUnique(out, Clean(p));
  if (auto r = RealPath(p)) AddUnique(out, Clean(*r));
  return out;
}

// Drops the backslashes overlay's option parser treats as escapes ("\:" is
// a ':' inside a path, "\\" a backslash).
std::string DropBackslashEscapes(absl::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && i + 1 < s.size()) ++i;
    out.push_back(s[i]);
  }
  return out;
}

// upperdir/workdir value as in the file: octal escapes decoded; when it holds
// a backslash, the reading with overlay's escapes dropped too.
std::vector<std::string> DirCandidates(absl::string_view raw) {
  std::vector<std::string> out;
  const std::string decoded = UnescapeMountInfo(raw);
  AddUnique(out, Clean(decoded));
  if (decoded.find('\\') != std::string::npos) AddUnique(out, Clean(DropBackslashEscapes(decoded)));
  return out;
}

// A lowerdir value as in the file, into its layers. Separators are ':' (and
// "::" before data-only layers, which leaves an empty component); a ':' that
// the kernel escaped as \072, or one after a backslash, is part of a path.
// When backslashes make the reading ambiguous, the naive split is added too.
void AddLowerCandidates(absl::string_view raw, std::vector<std::string>& out) {
  // Decode \ooo, remembering which characters came from an escape.
  std::vector<std::pair<char, bool>> chars;
  for (size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 3 < raw.size()) {
      const std::string decoded = UnescapeMountInfo(raw.substr(i, 4));
      if (decoded.size() == 1) {
        chars.emplace_back(decoded[0], true);
        i += 3;
        continue;
      }
    }
    chars.emplace_back(raw[i], false);
  }
  bool ambiguous = false;
  std::string cur;
  auto flush = [&] {
    AddUnique(out, Clean(cur));
    cur.clear();
  };
  for (size_t i = 0; i < chars.size(); ++i) {
    const auto [c, escaped] = chars[i];
    if (c == '\\' && i + 1 < chars.size()) {
      ambiguous = true;
      cur.push_back(chars[++i].first);
    } else if (c == ':' && !escaped) {
      flush();
    } else {
      if (c == ':' || c == '\\') ambiguous = true;
      cur.push_back(c);
    }
  }
  flush();
  if (ambiguous) {
    const std::string decoded = UnescapeMountInfo(raw);
    for (absl::string_view piece : absl::StrSplit(decoded, ':')) AddUnique(out, Clean(piece));
  }
}

MountUse::Overlay ParseOverlay(const MountInfoEntry& m) {
  MountUse::Overlay o;
  o.mount_point = Clean(m.mount_point);
  // Entries made by hand (tests) may carry only the decoded options; the
  // decoder leaves text without escapes alone, so either works here.
  const std::string& raw = m.super_options_raw.empty() ? m.super_options : m.super_options_raw;
  // The kernel escapes ',' inside values (\054), so a raw ',' separates options.
  for (absl::string_view opt : absl::StrSplit(raw, ',')) {
    const size_t eq = opt.find('=');
    if (eq == absl::string_view::npos) continue;
    const absl::string_view key = opt.substr(0, eq), value = opt.substr(eq + 1);
    if (key == "upperdir") {
      for (auto& c : DirCandidates(value)) AddUnique(o.upper, std::move(c));
    } else if (key == "workdir") {
      for (auto& c : DirCandidates(value)) AddUnique(o.work, std::move(c));
    } else if (key == "lowerdir" || key == "lowerdir+" || key == "datadir+") {
      AddLowerCandidates(value, o.lowers);
    }
  }
  return o;
}

}  // namespace

absl::StatusOr<MountUse> MountUse::Read(const Layout& layout, const std::string& mountinfo) {
  auto mounts = ReadMountInfo(mountinfo);
  if (!mounts.ok()) return mounts.status();
  return FromEntries(layout, *std::move(mounts));
}

MountUse MountUse::FromEntries(const Layout& layout, std::vector<MountInfoEntry> mounts) {
  MountUse u;
  for (const auto& m : mounts) {
    if (m.fs_type == "overlay") u.overlays_.push_back(ParseOverlay(m));
  }
  u.mounts_ = std::move(mounts);
  if (!layout.root().empty()) u.links_dirs_ = Spellings(layout.LinksDir());
  for (Tier t : {Tier::kFast, Tier::kSlow}) {
    if (layout.TierRoot(t).empty()) continue;
    for (auto& s : Spellings(layout.SnapshotsDir(t))) AddUnique(u.snapshot_dirs_, std::move(s));
  }
  return u;
}

std::vector<MountUse::DirPlace> MountUse::PlacesOf(const std::vector<std::string>& paths) const {
  std::vector<DirPlace> out;
  for (const auto& p : paths) {
    const MountInfoEntry* best = nullptr;
    std::string best_mp;
    for (const auto& m : mounts_) {
      std::string mp = Clean(m.mount_point);
      // Ties go to the later entry: it is mounted on top of the earlier one.
      if (AtOrBelow(p, mp) && (best == nullptr || mp.size() >= best_mp.size())) {
        best = &m;
        best_mp = std::move(mp);
      }
    }
    if (best == nullptr || best->major_minor.empty()) continue;
    const absl::string_view rest =
        best_mp == "/" ? absl::string_view(p) : absl::string_view(p).substr(best_mp.size());
    out.push_back({best->major_minor, Clean(absl::StrCat(best->root, "/", rest))});
  }
  return out;
}

bool MountUse::PathInUse(const std::string& dir) const {
  const std::vector<std::string> spellings = Spellings(dir);
  if (spellings.empty()) return true;  // "": not a directory we can reason about
  for (const auto& s : spellings) {
    // A relative path we cannot resolve: we cannot tell, so it is in use.
    if (s[0] != '/') return true;
  }
  for (const auto& m : mounts_) {
    const std::string mp = Clean(m.mount_point);
    for (const auto& s : spellings) {
      if (AtOrBelow(mp, s)) return true;
    }
  }
  for (const DirPlace& place : PlacesOf(spellings)) {
    for (const auto& m : mounts_) {
      if (m.major_minor == place.major_minor && AtOrBelow(Clean(m.root), place.fs_path)) return true;
    }
  }
  for (const Overlay& o : overlays_) {
    for (const auto* list : {&o.upper, &o.work, &o.lowers}) {
      for (const auto& p : *list) {
        for (const auto& s : spellings) {
          if (AtOrBelow(p, s)) return true;
        }
      }
    }
  }
  return false;
}

std::optional<uint64_t> MountUse::UpperSnapshotId(const Overlay& o) const {
  for (const auto& u : o.upper) {
    for (const auto& sd : snapshot_dirs_) {
      if (!AtOrBelow(u, sd) || u.size() == sd.size()) continue;
      const std::vector<absl::string_view> parts = absl::StrSplit(absl::string_view(u).substr(sd.size() + 1), '/');
      if (parts.size() != 2 || parts[1] != "fs") continue;
      if (auto name = Layout::ParseSnapshotDirName(parts[0])) return name->first;
    }
  }
  return std::nullopt;
}

std::vector<std::optional<uint64_t>> MountUse::LinkUsers(uint64_t id) const {
  const std::string short_id = Layout::ShortId(id);
  std::vector<std::string> links;
  for (const auto& d : links_dirs_) links.push_back(absl::StrCat(d == "/" ? "" : d, "/", short_id));
  std::vector<std::optional<uint64_t>> out;
  for (const Overlay& o : overlays_) {
    bool named = false;
    for (const auto& l : o.lowers) {
      if (l[0] == '/') {
        for (const auto& link : links) named |= AtOrBelow(l, link);
      } else {
        // Relative to the directory containerd chdir()ed into, which we do not
        // know: the last component naming the short id is enough.
        const size_t slash = l.rfind('/');
        named |= (slash == std::string::npos ? l : l.substr(slash + 1)) == short_id;
      }
    }
    if (named) out.push_back(UpperSnapshotId(o));
  }
  return out;
}

}  // namespace ndocker
