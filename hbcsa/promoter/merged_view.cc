#include "hbcsa/promoter/merged_view.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <map>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"
#include "hbcsa/promoter/beneath.h"
#include "hbcsa/promoter/xattrs.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/status_macros.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {

bool IsWhiteout(const struct stat& st) {
  return S_ISCHR(st.st_mode) && major(st.st_rdev) == 0 && minor(st.st_rdev) == 0;
}

namespace {

struct DirCloser {
  void operator()(DIR* d) const { ::closedir(d); }
};
using UniqueDir = std::unique_ptr<DIR, DirCloser>;

// Names in the directory open as `fd` (without "." and "..").
absl::StatusOr<std::vector<std::string>> ReadNames(int fd, const std::string& path) {
  // fdopendir takes the descriptor it is given: hand it a duplicate.
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 0));
  if (!dup.valid()) return LastErrnoStatus("dup", path);
  UniqueDir dir(::fdopendir(dup.get()));
  if (dir == nullptr) return LastErrnoStatus("fdopendir", path);
  dup.Release();
  std::vector<std::string> names;
  for (;;) {
    errno = 0;
    const dirent* de = ::readdir(dir.get());
    if (de == nullptr) {
      if (errno != 0) return LastErrnoStatus("readdir", path);
      return names;
    }
    const std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    names.emplace_back(name);
  }
}

absl::StatusOr<bool> IsOpaque(const std::string& attr_path) {
  absl::StatusOr<std::optional<std::string>> v = GetXattr(attr_path, "trusted.overlay.opaque");
  if (!v.ok()) return v.status();
  return v->has_value() && **v == "y";
}

// What the merged view shows for one name in a directory, as the layers
// are read from the top down.
struct Child {
  enum class Kind { kHidden, kLeaf, kDir } kind = Kind::kHidden;
  size_t layer = 0;            // the layer that shows it (kLeaf, kDir)
  struct stat st {};
  std::vector<size_t> layers;  // kDir: the layers whose directories merge, top first
  bool closed = false;         // kDir: a lower layer can add nothing more
};

class Walker {
 public:
  Walker(std::vector<UniqueFd> roots, MergedViewVisitor& visitor)
      : roots_(std::move(roots)), visitor_(visitor) {}

  // The directory at `rel` (relative to the layer roots, "" for the root),
  // merged from `layers` (top first; layers[0] shows it, `st` is its lstat).
  absl::Status Walk(const std::string& rel, const std::string& path, const std::string& name,
                    const std::vector<size_t>& layers, const struct stat& st) {
    std::vector<UniqueFd> fds;
    for (size_t layer : layers) {
      absl::StatusOr<UniqueFd> fd =
          OpenBeneath(roots_[layer].get(), rel, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      if (!fd.ok()) return fd.status();
      fds.push_back(std::move(*fd));
    }
    MergedEntry self{path, name, layers[0], st, -1, fds[0].get(), FdRelativePath(fds[0].get(), ".")};
    NDOCKER_RETURN_IF_ERROR(visitor_.EnterDirectory(self));

    std::map<std::string, Child> children;
    for (size_t i = 0; i < layers.size(); ++i) {
      NDOCKER_RETURN_IF_ERROR(Merge(layers[i], fds[i].get(), path, children));
    }
    std::map<size_t, int> fd_of_layer;
    for (size_t i = 0; i < layers.size(); ++i) fd_of_layer[layers[i]] = fds[i].get();
    for (const auto& [child_name, child] : children) {
      if (child.kind != Child::Kind::kLeaf) continue;
      const int parent = fd_of_layer.at(child.layer);
      MergedEntry leaf{Join(path, child_name), child_name, child.layer, child.st, parent, -1,
                       FdRelativePath(parent, child_name)};
      NDOCKER_RETURN_IF_ERROR(visitor_.VisitLeaf(leaf));
    }
    // Subdirectories reopen their layers by path from the roots, so only
    // this level's descriptors need closing to keep the count bounded.
    fds.clear();
    for (const auto& [child_name, child] : children) {
      if (child.kind != Child::Kind::kDir) continue;
      NDOCKER_RETURN_IF_ERROR(Walk(rel.empty() ? child_name : absl::StrCat(rel, "/", child_name),
                                   Join(path, child_name), child_name, child.layers, child.st));
    }
    self.fd = -1;
    self.attr_path.clear();
    return visitor_.LeaveDirectory(self);
  }

 private:
  static std::string Join(const std::string& dir, const std::string& name) {
    return dir == "/" ? absl::StrCat("/", name) : absl::StrCat(dir, "/", name);
  }

  // Folds one layer's directory (lower than every layer merged so far) into
  // `children`: a name the layers above decided keeps their decision, except
  // that a directory above merges this layer's directory of the same name
  // until something closes it (opaque, a whiteout or a non-directory here).
  absl::Status Merge(size_t layer, int dir_fd, const std::string& path,
                     std::map<std::string, Child>& children) {
    absl::StatusOr<std::vector<std::string>> names = ReadNames(dir_fd, path);
    if (!names.ok()) return names.status();
    for (std::string& n : *names) {
      struct stat st;
      if (::fstatat(dir_fd, n.c_str(), &st, AT_SYMLINK_NOFOLLOW) != 0) {
        return LastErrnoStatus("fstatat in a layer", Join(path, n));
      }
      auto it = children.find(n);
      if (it != children.end()) {
        Child& above = it->second;
        if (above.kind != Child::Kind::kDir || above.closed) continue;
        if (!S_ISDIR(st.st_mode)) {
          above.closed = true;  // a whiteout or a non-directory ends the merge
          continue;
        }
        above.layers.push_back(layer);
        absl::StatusOr<bool> opaque = IsOpaque(FdRelativePath(dir_fd, n));
        if (!opaque.ok()) return opaque.status();
        above.closed = *opaque;
        continue;
      }
      Child child;
      child.layer = layer;
      child.st = st;
      if (IsWhiteout(st)) {
        child.kind = Child::Kind::kHidden;
      } else if (S_ISDIR(st.st_mode)) {
        child.kind = Child::Kind::kDir;
        child.layers.push_back(layer);
        absl::StatusOr<bool> opaque = IsOpaque(FdRelativePath(dir_fd, n));
        if (!opaque.ok()) return opaque.status();
        child.closed = *opaque;
      } else {
        child.kind = Child::Kind::kLeaf;
      }
      children.emplace(std::move(n), std::move(child));
    }
    return absl::OkStatus();
  }

  std::vector<UniqueFd> roots_;
  MergedViewVisitor& visitor_;
};

}  // namespace

absl::Status WalkMergedView(const std::vector<std::string>& layer_dirs, MergedViewVisitor& visitor) {
  if (layer_dirs.empty()) return absl::InvalidArgumentError("no layers to merge");
  std::vector<UniqueFd> roots;
  std::vector<size_t> all;
  for (const std::string& dir : layer_dirs) {
    UniqueFd fd(::open(dir.c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
    if (!fd.valid()) return LastErrnoStatus("open layer", dir);
    all.push_back(roots.size());
    roots.push_back(std::move(fd));
  }
  // overlayfs merges the layer roots unconditionally (an opaque marker on a
  // root is not looked at), and the top root's attributes are the view's.
  struct stat st;
  if (::fstat(roots[0].get(), &st) != 0) return LastErrnoStatus("fstat layer", layer_dirs[0]);
  Walker walker(std::move(roots), visitor);
  return walker.Walk("", "/", "", all, st);
}

}  // namespace ndocker::hbcsa
