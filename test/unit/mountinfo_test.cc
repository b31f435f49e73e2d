// mountinfo parsing and the "is this directory used by a mount" check that
// guards every delete of snapshot data.
#include "snapshotter/mountinfo.h"

#include <catch2/catch.hpp>
#include <fstream>
#include <string>
#include <vector>

#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;

// Lines in the format of proc(5) /proc/<pid>/mountinfo:
//   id parent maj:min root mount_point mount_opts [optional...] - fstype source super_opts
constexpr char kSample[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw,errors=remount-ro\n"
    "23 22 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw\n"
    // Two optional fields.
    "140 22 0:52 / /run/containerd/io.containerd.runtime.v2.task/default/web/rootfs "
    "rw,relatime shared:70 master:3 - overlay overlay "
    "rw,lowerdir=/var/lib/nd/l/a:/var/lib/nd/l/b,upperdir=/mnt/fast/snapshots/7/fs,"
    "workdir=/mnt/fast/snapshots/7/work,index=off\n"
    // No optional fields, an escaped space in the mount point.
    "141 22 8:17 / /mnt/with\\040space rw,relatime - ext4 /dev/sdb1 rw\n"
    // A bind mount of a subdirectory: root differs from /.
    "142 22 8:33 /exports/bc /a/bc/mnt rw,relatime shared:80 - xfs /dev/sdc1 rw,attr2,noquota\n"
    // A read-only overlay (a view): lowerdirs only, one of them on the slow tier.
    "143 22 0:53 / /tmp/view-target ro,relatime - overlay overlay "
    "ro,lowerdir=/srv/slow/snapshots/12/fs:/srv/slow/snapshots/11/fs\n";

std::string WriteSample(const TempDir& dir, const std::string& text) {
  const std::string path = dir / "mountinfo";
  std::ofstream out(path);
  out << text;
  return path;
}

std::vector<MountInfoEntry> Sample(const TempDir& dir) {
  auto mounts = ReadMountInfo(WriteSample(dir, kSample));
  REQUIRE(mounts.ok());
  return *mounts;
}

}  // namespace

TEST_CASE("ReadMountInfo parses every field it keeps", "[mountinfo]") {
  TempDir dir;
  auto m = Sample(dir);
  REQUIRE(m.size() == 6);

  CHECK(m[0].mount_point == "/");
  CHECK(m[0].fs_type == "ext4");
  CHECK(m[0].source == "/dev/sda1");
  CHECK(m[0].super_options == "rw,errors=remount-ro");

  CHECK(m[1].mount_point == "/proc");
  CHECK(m[1].fs_type == "proc");
  CHECK(m[1].source == "proc");
  CHECK(m[1].super_options == "rw");

  CHECK(m[2].mount_point == "/run/containerd/io.containerd.runtime.v2.task/default/web/rootfs");
  CHECK(m[2].fs_type == "overlay");
  CHECK(m[2].source == "overlay");
  CHECK(m[2].super_options ==
        "rw,lowerdir=/var/lib/nd/l/a:/var/lib/nd/l/b,upperdir=/mnt/fast/snapshots/7/fs,"
        "workdir=/mnt/fast/snapshots/7/work,index=off");

  CHECK(m[3].mount_point == "/mnt/with space");
  CHECK(m[3].fs_type == "ext4");
  CHECK(m[3].source == "/dev/sdb1");
  CHECK(m[3].super_options == "rw");

  CHECK(m[4].mount_point == "/a/bc/mnt");
  CHECK(m[4].fs_type == "xfs");
  CHECK(m[4].source == "/dev/sdc1");
  CHECK(m[4].super_options == "rw,attr2,noquota");

  CHECK(m[5].mount_point == "/tmp/view-target");
  CHECK(m[5].fs_type == "overlay");
  CHECK(m[5].super_options == "ro,lowerdir=/srv/slow/snapshots/12/fs:/srv/slow/snapshots/11/fs");
}

TEST_CASE("ReadMountInfo unescapes octal sequences and skips malformed lines", "[mountinfo]") {
  TempDir dir;
  const std::string text =
      "30 22 8:1 / /mnt/tab\\011and\\134backslash rw - ext4 /dev/my\\040disk rw\n"
      "garbage line without a separator\n"
      "\n"
      "31 22 8:1 / /mnt/x rw shared:1\n"  // no "-": skipped
      "32 22 8:1 / /mnt/not\\09octal rw - tmpfs tmpfs rw,size=10k\n"
      "33 22 8:1 / /mnt/trailing\\040 rw - tmpfs tmpfs rw\n";
  auto m = ReadMountInfo(WriteSample(dir, text));
  REQUIRE(m.ok());
  REQUIRE(m->size() == 3);
  CHECK((*m)[0].mount_point == "/mnt/tab\tand\\backslash");
  CHECK((*m)[0].source == "/dev/my disk");
  CHECK((*m)[1].mount_point == "/mnt/not\\09octal");  // not an escape: kept as is
  CHECK((*m)[1].fs_type == "tmpfs");
  CHECK((*m)[1].super_options == "rw,size=10k");
  CHECK((*m)[2].mount_point == "/mnt/trailing ");
}

TEST_CASE("ReadMountInfo fails on a missing file and reads the live table", "[mountinfo]") {
  TempDir dir;
  auto missing = ReadMountInfo(dir / "no-such-file");
  CHECK_FALSE(missing.ok());

  auto live = ReadMountInfo();
  REQUIRE(live.ok());
  bool has_root = false;
  for (const auto& e : *live) has_root |= e.mount_point == "/";
  CHECK(has_root);
}

TEST_CASE("DirInUse: mount points at or below the dir", "[mountinfo]") {
  TempDir dir;
  auto m = Sample(dir);
  CHECK(DirInUse(m, "/proc"));
  CHECK(DirInUse(m, "/run/containerd"));
  CHECK(DirInUse(m, "/run/containerd/io.containerd.runtime.v2.task/default/web/rootfs"));
  CHECK(DirInUse(m, "/run"));
  CHECK(DirInUse(m, "/mnt/with space"));
  CHECK(DirInUse(m, "/a/bc"));
  CHECK(DirInUse(m, "/a/bc/mnt"));
  CHECK(DirInUse(m, "/a"));
  // A mount above the dir does not use it: "/" is above everything.
  CHECK_FALSE(DirInUse(m, "/run/containerd/io.containerd.runtime.v2.task/default/web/rootfs/etc"));
  CHECK_FALSE(DirInUse(m, "/home"));
}

TEST_CASE("DirInUse: a sibling sharing a string prefix is not in use", "[mountinfo]") {
  TempDir dir;
  auto m = Sample(dir);
  CHECK_FALSE(DirInUse(m, "/a/b"));             // vs /a/bc/mnt
  CHECK_FALSE(DirInUse(m, "/a/bc/mn"));         // vs /a/bc/mnt
  CHECK_FALSE(DirInUse(m, "/mnt/with"));        // vs "/mnt/with space"
  CHECK_FALSE(DirInUse(m, "/pro"));             // vs /proc
  CHECK_FALSE(DirInUse(m, "/mnt/fast/snapshots/70"));
  CHECK_FALSE(DirInUse(m, "/mnt/fast/snapshots/7/f"));
  CHECK_FALSE(DirInUse(m, "/var/lib/nd/l/ab"));
  CHECK_FALSE(DirInUse(m, "/srv/slow/snapshots/1"));
  CHECK_FALSE(DirInUse(m, "/srv/slow/snapshots/120"));
}

TEST_CASE("DirInUse: overlay upperdir, workdir and lowerdir entries", "[mountinfo]") {
  TempDir dir;
  auto m = Sample(dir);
  // upperdir and workdir, at and below the dir.
  CHECK(DirInUse(m, "/mnt/fast/snapshots/7/fs"));
  CHECK(DirInUse(m, "/mnt/fast/snapshots/7/work"));
  CHECK(DirInUse(m, "/mnt/fast/snapshots/7"));
  CHECK(DirInUse(m, "/mnt/fast/snapshots"));
  CHECK(DirInUse(m, "/mnt/fast"));
  // Each lowerdir, first and later ones.
  CHECK(DirInUse(m, "/var/lib/nd/l/a"));
  CHECK(DirInUse(m, "/var/lib/nd/l/b"));
  CHECK(DirInUse(m, "/var/lib/nd/l"));
  CHECK(DirInUse(m, "/srv/slow/snapshots/12/fs"));
  CHECK(DirInUse(m, "/srv/slow/snapshots/11"));
  // Unrelated snapshot dirs.
  CHECK_FALSE(DirInUse(m, "/mnt/fast/snapshots/8"));
  CHECK_FALSE(DirInUse(m, "/var/lib/nd/l/c"));
  CHECK_FALSE(DirInUse(m, "/srv/slow/snapshots/10"));
  CHECK_FALSE(DirInUse(m, "/mnt/slow"));
  // Only overlays' options name directories.
  std::vector<MountInfoEntry> not_overlay = {
      {.mount_point = "/x",
       .fs_type = "fuse.something",
       .source = "src",
       .super_options = "rw,upperdir=/data/u,workdir=/data/w,lowerdir=/data/l"}};
  CHECK_FALSE(DirInUse(not_overlay, "/data"));
  CHECK(DirInUse(not_overlay, "/x"));
  CHECK_FALSE(DirInUse({}, "/anything"));
}

}  // namespace ndocker
