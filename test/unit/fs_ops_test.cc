// fs_ops: RemoveTree, the delete behind every snapshot, staging and retired
// copy removal: no symlink following, no crossing into other mounts, and
// one undeletable entry does not stop the rest (DESIGN §7).
#include "snapshotter/fs_ops.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>

#include "snapshotter/unique_fd.h"
#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;
namespace fs = std::filesystem;

void Write(const std::string& path, const std::string& text = "x") {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream out(path);
  out << text;
  REQUIRE(out.good());
}

// chattr +i / -i; false when the filesystem does not support the flag.
bool SetImmutable(const std::string& path, bool on) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
  REQUIRE(fd.valid());
  int flags = 0;
  if (::ioctl(fd.get(), FS_IOC_GETFLAGS, &flags) != 0) return false;
  flags = on ? (flags | FS_IMMUTABLE_FL) : (flags & ~FS_IMMUTABLE_FL);
  return ::ioctl(fd.get(), FS_IOC_SETFLAGS, &flags) == 0;
}

struct Unmounter {
  std::string target;
  ~Unmounter() {
    if (!target.empty()) ::umount2(target.c_str(), MNT_DETACH);
  }
};

}  // namespace

TEST_CASE("RemoveTree removes a tree and never follows symlinks", "[fs_ops]") {
  TempDir dir;
  const std::string outside = dir / "outside", tree = dir / "tree";
  Write(outside + "/keep");
  Write(outside + "/linked");
  Write(tree + "/a/b/c/file");
  Write(tree + "/a/empty-file", "");
  fs::create_directories(tree + "/a/empty-dir");
  fs::create_directories(tree + "/locked/inner");
  Write(tree + "/locked/inner/f");
  fs::create_symlink(outside, tree + "/a/link-to-dir");
  fs::create_symlink(outside + "/keep", tree + "/a/b/link-to-file");
  fs::create_symlink("/nonexistent/target", tree + "/dangling");
  fs::create_hard_link(outside + "/linked", tree + "/hardlink");
  REQUIRE(::mkfifo((tree + "/fifo").c_str(), 0600) == 0);
  // A directory without permissions (root removes it anyway; others cannot
  // look inside, so only check it as root).
  const bool root = ::geteuid() == 0;
  if (root) REQUIRE(::chmod((tree + "/locked").c_str(), 0) == 0);

  REQUIRE(RemoveTree(tree).ok());
  CHECK_FALSE(fs::exists(fs::symlink_status(tree)));
  CHECK(fs::exists(outside + "/keep"));
  CHECK(fs::exists(outside + "/linked"));
  CHECK(fs::hard_link_count(outside + "/linked") == 1);
}

TEST_CASE("RemoveTree: a missing path is fine, a file or symlink is removed itself", "[fs_ops]") {
  TempDir dir;
  CHECK(RemoveTree(dir / "missing").ok());
  CHECK(RemoveTree(dir / "missing/below").ok());
  CHECK(RemoveAll(dir / "missing").ok());

  Write(dir / "file");
  REQUIRE(RemoveTree(dir / "file").ok());
  CHECK_FALSE(fs::exists(dir / "file"));

  Write(dir / "target/keep");
  fs::create_directory_symlink(dir / "target", dir / "link");
  REQUIRE(RemoveTree(dir / "link").ok());
  CHECK_FALSE(fs::exists(fs::symlink_status(dir / "link")));
  CHECK(fs::exists(dir / "target/keep"));

  // A trailing slash names the same directory.
  Write(dir / "slash/x");
  REQUIRE(RemoveTree(dir / "slash/").ok());
  CHECK_FALSE(fs::exists(dir / "slash"));
}

TEST_CASE("RemoveTree runs after_first_entry once, after the first removal", "[fs_ops]") {
  TempDir dir;
  const std::string tree = dir / "tree";
  for (int i = 0; i < 5; ++i) Write(tree + "/d" + std::to_string(i) + "/f");
  int calls = 0;
  bool tree_still_there = false;
  REQUIRE(RemoveTree(tree, [&] {
            ++calls;
            tree_still_there = fs::exists(tree);
          }).ok());
  CHECK(calls == 1);
  CHECK(tree_still_there);  // mid-delete: the hook is a crash point
  CHECK_FALSE(fs::exists(tree));

  // An empty directory: its own removal is the first entry.
  fs::create_directories(dir / "empty");
  calls = 0;
  REQUIRE(RemoveTree(dir / "empty", [&] { ++calls; }).ok());
  CHECK(calls == 1);
  // Nothing removed, no call.
  calls = 0;
  REQUIRE(RemoveTree(dir / "empty", [&] { ++calls; }).ok());
  CHECK(calls == 0);
}

TEST_CASE("RemoveTree goes past an immutable file and says how many were left",
          "[fs_ops][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: chattr +i needs root");
    return;
  }
  TempDir dir;
  const std::string tree = dir / "tree";
  Write(tree + "/a/b/immutable");
  Write(tree + "/a/b/sibling");
  Write(tree + "/a/c/file");
  Write(tree + "/z/deep/er/file");
  Write(tree + "/top");
  if (!SetImmutable(tree + "/a/b/immutable", true)) {
    WARN("skipped: the temp dir's filesystem has no immutable flag");
    return;
  }
  absl::Status st = RemoveTree(tree);
  const bool cleared = SetImmutable(tree + "/a/b/immutable", false);
  REQUIRE(cleared);
  INFO(st.ToString());
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("1 left") != absl::string_view::npos);
  CHECK(st.message().find(std::strerror(EPERM)) != absl::string_view::npos);
  CHECK(st.message().find(dir.path()) == absl::string_view::npos);  // no host paths
  // Only the immutable file and the directories holding it are left.
  CHECK(fs::exists(tree + "/a/b/immutable"));
  CHECK_FALSE(fs::exists(tree + "/a/b/sibling"));
  CHECK_FALSE(fs::exists(tree + "/a/c"));
  CHECK_FALSE(fs::exists(tree + "/z"));
  CHECK_FALSE(fs::exists(tree + "/top"));
  size_t entries = 0;
  for (auto it = fs::recursive_directory_iterator(tree); it != fs::recursive_directory_iterator();
       ++it) {
    ++entries;
  }
  CHECK(entries == 3);  // a, a/b, a/b/immutable
  // Once the flag is off, the rest goes.
  REQUIRE(RemoveTree(tree).ok());
  CHECK_FALSE(fs::exists(tree));
}

TEST_CASE("RemoveTree never enters another mount inside the tree", "[fs_ops][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting needs root");
    return;
  }
  TempDir dir;
  const std::string tree = dir / "tree", outside = dir / "outside";
  Write(outside + "/keep");
  Write(tree + "/plain/file");
  fs::create_directories(tree + "/sub/tmpfs");
  fs::create_directories(tree + "/sub/bind");
  REQUIRE(::mount("tmpfs", (tree + "/sub/tmpfs").c_str(), "tmpfs", 0, "size=1m") == 0);
  Unmounter u1{tree + "/sub/tmpfs"};
  Write(tree + "/sub/tmpfs/on-tmpfs");
  // A bind mount of a directory of the same filesystem: same st_dev, another mount.
  REQUIRE(::mount(outside.c_str(), (tree + "/sub/bind").c_str(), nullptr, MS_BIND, nullptr) == 0);
  Unmounter u2{tree + "/sub/bind"};

  absl::Status st = RemoveTree(tree);
  INFO(st.ToString());
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("2 left") != absl::string_view::npos);
  CHECK(fs::exists(tree + "/sub/tmpfs/on-tmpfs"));
  CHECK(fs::exists(outside + "/keep"));
  CHECK_FALSE(fs::exists(tree + "/plain"));

  // The tree's root itself a mount point: left alone entirely.
  const std::string mnt = dir / "mnt";
  fs::create_directories(mnt);
  REQUIRE(::mount("tmpfs", mnt.c_str(), "tmpfs", 0, "size=1m") == 0);
  Unmounter u3{mnt};
  Write(mnt + "/f");
  st = RemoveTree(mnt);
  CHECK_FALSE(st.ok());
  CHECK(st.message().find("1 left") != absl::string_view::npos);
  CHECK(fs::exists(mnt + "/f"));

  REQUIRE(::umount2(mnt.c_str(), 0) == 0);
  REQUIRE(::umount2((tree + "/sub/tmpfs").c_str(), 0) == 0);
  REQUIRE(::umount2((tree + "/sub/bind").c_str(), 0) == 0);
  REQUIRE(RemoveTree(tree).ok());
  REQUIRE(RemoveTree(mnt).ok());
  CHECK_FALSE(fs::exists(tree));
  CHECK(fs::exists(outside + "/keep"));
}

}  // namespace ndocker
