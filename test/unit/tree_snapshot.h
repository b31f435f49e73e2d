// What a directory tree shows, path by path, for comparing two mounts of the
// same image (a plain overlay and the metadata layer over data-only layers):
// type, mode, owner, size, blocks, mtime, content sha256, symlink target,
// device number, xattrs and hard-link group. Test helper, header only.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "hbcsa/promoter/xattrs.h"

namespace ndocker::testing {

struct TreeNode {
  char type = '?';  // d f l c b p s
  mode_t mode = 0;
  uid_t uid = 0;
  gid_t gid = 0;
  off_t size = 0;
  // Regular files only (directories differ by filesystem), taken after the
  // content was read: overlayfs looks a metacopy file's data up lazily, and
  // until then stat(2) guesses st_blocks from the size (a sparse file looks
  // fully allocated).
  blkcnt_t blocks = 0;
  int64_t mtime_ns = 0;
  dev_t rdev = 0;
  std::string sha256;  // regular files
  std::string target;  // symlinks
  std::vector<hbcsa::Xattr> xattrs;
  // Non-directories sharing an inode with another name in the same tree: the
  // group's first path. Not st_nlink: overlayfs reports a lower inode's
  // count, names hidden by a whiteout above included.
  std::string link_group;
  ino_t ino = 0;           // not compared: trees on different mounts differ

  bool operator==(const TreeNode& o) const {
    return type == o.type && mode == o.mode && uid == o.uid && gid == o.gid && size == o.size &&
           blocks == o.blocks && mtime_ns == o.mtime_ns && rdev == o.rdev && sha256 == o.sha256 &&
           target == o.target && xattrs == o.xattrs && link_group == o.link_group;
  }
  std::string Describe() const {
    std::string x;
    for (const auto& a : xattrs) absl::StrAppend(&x, a.name, "=", a.value.size(), "B ");
    return absl::StrFormat("%c %o %d:%d size=%d blocks=%d mtime=%d rdev=%d sha=%s target=%s "
                           "xattrs=[%s] group=%s",
                           type, mode, uid, gid, size, blocks, mtime_ns, rdev, sha256.substr(0, 12),
                           target, x, link_group);
  }
};

using TreeSnapshot = std::map<std::string, TreeNode>;

inline std::string Sha256OfFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) throw std::runtime_error("open " + path);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr);
  std::vector<char> buf(1 << 20);
  for (;;) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      ::close(fd);
      throw std::runtime_error("read " + path);
    }
    if (n == 0) break;
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(n));
  }
  ::close(fd);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), md, &len);
  std::string hex;
  for (unsigned i = 0; i < len; ++i) absl::StrAppend(&hex, absl::Hex(md[i], absl::kZeroPad2));
  return hex;
}

namespace tree_snapshot_internal {
inline void Walk(const std::string& root, const std::string& rel, TreeSnapshot& out,
                 std::map<std::pair<dev_t, ino_t>, std::string>& first_name) {
  const std::string path = rel.empty() ? root : root + rel;
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) throw std::runtime_error("lstat " + path);
  TreeNode n;
  n.mode = st.st_mode & 07777;
  n.uid = st.st_uid;
  n.gid = st.st_gid;
  n.mtime_ns = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  n.ino = st.st_ino;
  absl::StatusOr<std::vector<hbcsa::Xattr>> xattrs = hbcsa::ListXattrs(path);
  if (!xattrs.ok()) throw std::runtime_error("xattrs " + path);
  n.xattrs = *xattrs;
  switch (st.st_mode & S_IFMT) {
    case S_IFDIR: n.type = 'd'; break;
    case S_IFREG:
      n.type = 'f';
      n.size = st.st_size;
      n.sha256 = Sha256OfFile(path);
      if (::lstat(path.c_str(), &st) != 0) throw std::runtime_error("lstat " + path);
      n.blocks = st.st_blocks;
      break;
    case S_IFLNK: {
      n.type = 'l';
      n.size = st.st_size;
      std::string t(static_cast<size_t>(st.st_size) + 1, '\0');
      const ssize_t len = ::readlink(path.c_str(), t.data(), t.size());
      if (len < 0) throw std::runtime_error("readlink " + path);
      t.resize(static_cast<size_t>(len));
      n.target = t;
      break;
    }
    case S_IFCHR: n.type = 'c'; n.rdev = st.st_rdev; break;
    case S_IFBLK: n.type = 'b'; n.rdev = st.st_rdev; break;
    case S_IFIFO: n.type = 'p'; break;
    case S_IFSOCK: n.type = 's'; break;
  }
  const std::string key = rel.empty() ? "/" : rel;
  if (n.type != 'd' && st.st_nlink > 1) {
    auto [it, fresh] = first_name.emplace(std::make_pair(st.st_dev, st.st_ino), key);
    if (!fresh) {
      n.link_group = it->second;
      out[it->second].link_group = it->second;  // the first name is in a group too
    }
  }
  out[key] = n;
  if (n.type != 'd') return;
  std::vector<std::string> names;
  struct DirCloser {
    void operator()(DIR* d) const { ::closedir(d); }
  };
  std::unique_ptr<DIR, DirCloser> d(::opendir(path.c_str()));
  if (!d) throw std::runtime_error("opendir " + path);
  while (const dirent* de = ::readdir(d.get())) {
    const std::string name = de->d_name;
    if (name != "." && name != "..") names.push_back(name);
  }
  std::sort(names.begin(), names.end());
  for (const std::string& name : names) Walk(root, rel + "/" + name, out, first_name);
}
}  // namespace tree_snapshot_internal

// Paths are "/" and "/a/b"; children are visited in name order, so a
// hard-link group is named by its first path in that order in both trees.
inline TreeSnapshot SnapshotTree(const std::string& root) {
  TreeSnapshot out;
  std::map<std::pair<dev_t, ino_t>, std::string> first_name;
  tree_snapshot_internal::Walk(root, "", out, first_name);
  return out;
}

// Up to `max` differences, one line each; empty when the trees are equal.
inline std::string DiffTrees(const TreeSnapshot& a, const TreeSnapshot& b, size_t max = 30) {
  std::string out;
  size_t n = 0;
  auto note = [&](const std::string& line) {
    if (n++ < max) absl::StrAppend(&out, line, "\n");
  };
  for (const auto& [path, node] : a) {
    auto it = b.find(path);
    if (it == b.end()) {
      note(absl::StrCat("only in A: ", path));
    } else if (!(it->second == node)) {
      note(absl::StrCat(path, "\n  A: ", node.Describe(), "\n  B: ", it->second.Describe()));
    }
  }
  for (const auto& [path, node] : b) {
    if (!a.contains(path)) note(absl::StrCat("only in B: ", path));
  }
  if (n > max) absl::StrAppend(&out, n - max, " more\n");
  return out;
}

}  // namespace ndocker::testing
