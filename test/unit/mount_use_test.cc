// MountUse: which mounts may still use a snapshot copy, through the ways
// mountinfo hides it (short links, containerd's relative lowerdirs, bind
// mounts that show only their root within the filesystem).
#include "snapshotter/mount_use.h"

#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "test/unit/temp_dir.h"

namespace ndocker {
namespace {

using testing::TempDir;
using Users = std::vector<std::optional<uint64_t>>;
namespace fs = std::filesystem;

// Short ids: 1 -> "1", 10 -> "a", 11 -> "b", 12 -> "c", 13 -> "d", 14 -> "e",
// 15 -> "f", 35 -> "z", 36 -> "10".
const Layout kLayout("/var/lib/nd", "/mnt/fast/nd", "/srv/slow/nd");

constexpr char kSample[] =
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw\n"
    // The fast tier's filesystem; the slow tier is a bind of a subdirectory.
    "30 22 8:17 / /mnt/fast rw,relatime shared:2 - ext4 /dev/sdb1 rw\n"
    "31 22 8:33 /nd-slow-data /srv/slow/nd rw - xfs /dev/sdc1 rw\n"
    // containerd compacted the lowerdirs: relative names in <root>/l.
    "140 22 0:52 / /run/ctr/c1/rootfs rw,relatime - overlay overlay "
    "rw,lowerdir=a:b:1,upperdir=/mnt/fast/nd/snapshots/12-2/fs,"
    "workdir=/mnt/fast/nd/snapshots/12-2/work,index=off\n"
    // Absolute link lowerdirs, upper on the slow tier (generation 0).
    "141 22 0:53 / /run/ctr/c2/rootfs rw - overlay overlay "
    "rw,lowerdir=/var/lib/nd/l/a:/var/lib/nd/l/z,upperdir=/srv/slow/nd/snapshots/13/fs,"
    "workdir=/srv/slow/nd/snapshots/13/work\n"
    // A foreign upper.
    "142 22 0:54 / /var/lib/docker/x/merged rw - overlay overlay "
    "rw,lowerdir=/var/lib/nd/l/a,upperdir=/var/lib/docker/x/diff,workdir=/var/lib/docker/x/work\n"
    // A view of two parents: no upper.
    "143 22 0:55 / /run/ctr/view2 ro - overlay overlay ro,lowerdir=/var/lib/nd/l/a:/var/lib/nd/l/10\n"
    // One-parent views: bind mounts of fs dirs, seen only by device and root.
    "150 22 8:17 /nd/snapshots/10/fs /run/ctr/view10 ro,relatime - ext4 /dev/sdb1 rw\n"
    "151 22 8:33 /nd-slow-data/snapshots/20-1/fs /run/ctr/view20 ro - xfs /dev/sdc1 rw\n"
    // Data-only lower layers after "::" (metacopy).
    "160 22 0:56 / /run/ctr/meta ro - overlay overlay ro,lowerdir=/var/lib/nd/l/c::/var/lib/nd/l/d,"
    "metacopy=on\n"
    // Escapes: a comma inside a path (\054), a colon escaped by overlay's
    // backslash (shown as \134:), upperdir with a space (\040).
    "161 22 0:57 / /run/ctr/odd rw - overlay overlay "
    "rw,lowerdir=/data/we\\054ird:/data/a\\134:b:f,upperdir=/mnt/fast/nd/snapshots/40/fs,"
    "workdir=/mnt/fast/nd/snapshots/40/work,upperdir=/tmp/with\\040space\n"
    // Something mounted inside a snapshot's fs dir.
    "170 22 0:60 / /mnt/fast/nd/snapshots/30/fs/proc rw - proc proc rw\n";

std::string WriteFile(const TempDir& dir, const std::string& text) {
  const std::string path = dir / "mountinfo";
  std::ofstream out(path);
  out << text;
  return path;
}

MountUse Sample(const TempDir& dir, const Layout& layout = kLayout) {
  auto u = MountUse::Read(layout, WriteFile(dir, kSample));
  REQUIRE(u.ok());
  return *std::move(u);
}

}  // namespace

TEST_CASE("ReadMountInfo keeps the root and device fields", "[mount_use]") {
  TempDir dir;
  auto m = ReadMountInfo(WriteFile(dir, kSample));
  REQUIRE(m.ok());
  REQUIRE(m->size() == 12);
  CHECK((*m)[0].major_minor == "8:1");
  CHECK((*m)[0].root == "/");
  CHECK((*m)[2].major_minor == "8:33");
  CHECK((*m)[2].root == "/nd-slow-data");
  CHECK((*m)[7].root == "/nd/snapshots/10/fs");
  // The raw options keep escapes; the decoded ones do not.
  CHECK((*m)[10].super_options_raw.find("/data/we\\054ird") != std::string::npos);
  CHECK((*m)[10].super_options.find("/data/we,ird") != std::string::npos);
}

TEST_CASE("MountUse parses overlay options, escapes and data-only layers", "[mount_use]") {
  TempDir dir;
  MountUse u = Sample(dir);
  const auto& o = u.overlays();
  REQUIRE(o.size() == 6);
  CHECK(o[0].mount_point == "/run/ctr/c1/rootfs");
  CHECK(o[0].lowers == std::vector<std::string>{"a", "b", "1"});
  CHECK(o[0].upper == std::vector<std::string>{"/mnt/fast/nd/snapshots/12-2/fs"});
  CHECK(o[0].work == std::vector<std::string>{"/mnt/fast/nd/snapshots/12-2/work"});
  CHECK(o[3].upper.empty());
  CHECK(o[3].lowers == std::vector<std::string>{"/var/lib/nd/l/a", "/var/lib/nd/l/10"});
  // "::" leaves no empty layer.
  CHECK(o[4].lowers == std::vector<std::string>{"/var/lib/nd/l/c", "/var/lib/nd/l/d"});
  // The comma stays inside its path; the escaped colon joins "/data/a:b",
  // and the naive readings are kept as well (conservative).
  const auto& odd = o[5].lowers;
  auto has = [&](const std::string& p) {
    return std::find(odd.begin(), odd.end(), p) != odd.end();
  };
  CHECK(has("/data/we,ird"));
  CHECK(has("/data/a:b"));
  CHECK(has("f"));
  CHECK(has("/data/a\\"));
  CHECK(o[5].upper == std::vector<std::string>{"/mnt/fast/nd/snapshots/40/fs", "/tmp/with space"});
}

TEST_CASE("LinkUsers: compacted relative lowerdirs", "[mount_use]") {
  TempDir dir;
  MountUse u = Sample(dir);
  // "b" (11) is named by c1, relatively; c1's upper is 12 generation 2. The
  // odd overlay's "/data/a\:b" also reads as the layers "/data/a\" and "b"
  // when the backslash is not taken as an escape: counted, to be safe.
  CHECK(u.LinkUsers(11) == Users{12, 40});
  CHECK(u.LinkUsers(1) == Users{12});
  // Nobody names 2, 9 or 37 ("11").
  CHECK(u.LinkUsers(2).empty());
  CHECK(u.LinkUsers(9).empty());
  CHECK(u.LinkUsers(37).empty());
}

TEST_CASE("LinkUsers: absolute link lowerdirs, foreign and missing uppers", "[mount_use]") {
  TempDir dir;
  MountUse u = Sample(dir);
  // "a" (10): c1 relative (upper 12), c2 absolute (upper 13 on slow), the
  // foreign overlay (docker's upper) and the two-parent view (no upper).
  CHECK(u.LinkUsers(10) == Users{12, 13, std::nullopt, std::nullopt});
  CHECK(u.LinkUsers(35) == Users{13});
  CHECK(u.LinkUsers(36) == Users{std::nullopt});
  // Data-only layers count like any other.
  CHECK(u.LinkUsers(12) == Users{std::nullopt});
  CHECK(u.LinkUsers(13) == Users{std::nullopt});
  // After a backslash-escaped colon: "f" (15), upper 40.
  CHECK(u.LinkUsers(15) == Users{40});
}

TEST_CASE("LinkUsers reads the upper snapshot id only from our tiers' fs dirs", "[mount_use]") {
  TempDir dir;
  auto upper_of = [&](const std::string& upper) {
    const std::string text = absl::StrCat(
        "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
        "140 22 0:52 / /run/x rw - overlay overlay rw,lowerdir=/var/lib/nd/l/a,upperdir=",
        upper, ",workdir=/w\n");
    auto u = MountUse::Read(kLayout, WriteFile(dir, text));
    REQUIRE(u.ok());
    const Users users = u->LinkUsers(10);
    REQUIRE(users.size() == 1);
    return users[0];
  };
  CHECK(upper_of("/mnt/fast/nd/snapshots/12/fs") == std::optional<uint64_t>(12));
  CHECK(upper_of("/mnt/fast/nd/snapshots/12-1/fs") == std::optional<uint64_t>(12));
  CHECK(upper_of("/srv/slow/nd/snapshots/99-7/fs/") == std::optional<uint64_t>(99));
  CHECK(upper_of("/srv/slow/nd/snapshots/99-7//fs") == std::optional<uint64_t>(99));
  CHECK(upper_of("/mnt/fast/nd/snapshots/12-0/fs") == std::nullopt);
  CHECK(upper_of("/mnt/fast/nd/snapshots/012/fs") == std::nullopt);
  CHECK(upper_of("/mnt/fast/nd/snapshots/12/work") == std::nullopt);
  CHECK(upper_of("/mnt/fast/nd/snapshots/12/fs/sub") == std::nullopt);
  CHECK(upper_of("/mnt/fast/nd/snapshots/12") == std::nullopt);
  CHECK(upper_of("/mnt/fast/nd/staging/12-1-abcdef/fs") == std::nullopt);
  CHECK(upper_of("/mnt/fast/other/snapshots/12/fs") == std::nullopt);
  CHECK(upper_of("/mnt/fast/nd/snapshotsX/12/fs") == std::nullopt);
}

TEST_CASE("PathInUse: bind mounts seen only by device and root", "[mount_use]") {
  TempDir dir;
  MountUse u = Sample(dir);
  // /run/ctr/view10 is sdb1's /nd/snapshots/10/fs; /mnt/fast is sdb1's /.
  CHECK(u.PathInUse("/mnt/fast/nd/snapshots/10"));
  CHECK(u.PathInUse("/mnt/fast/nd/snapshots/10/fs"));
  CHECK(u.PathInUse("/mnt/fast/nd/snapshots/10/"));
  CHECK_FALSE(u.PathInUse("/mnt/fast/nd/snapshots/10/fs/etc"));  // the bind is above it
  // A sibling sharing a name prefix.
  CHECK_FALSE(u.PathInUse("/mnt/fast/nd/snapshots/1"));
  CHECK_FALSE(u.PathInUse("/mnt/fast/nd/snapshots/100"));
  CHECK_FALSE(u.PathInUse("/mnt/fast/nd/snapshots/10-1"));
  // The slow tier is itself a bind of sdc1's /nd-slow-data.
  CHECK(u.PathInUse("/srv/slow/nd/snapshots/20-1"));
  CHECK(u.PathInUse("/srv/slow/nd/snapshots/20-1/fs"));
  CHECK_FALSE(u.PathInUse("/srv/slow/nd/snapshots/20"));
  CHECK_FALSE(u.PathInUse("/srv/slow/nd/snapshots/2"));
  CHECK_FALSE(u.PathInUse("/srv/slow/nd/snapshots/20-10"));
  // The same names on another device are not that bind.
  CHECK_FALSE(u.PathInUse("/elsewhere/nd/snapshots/10"));
  CHECK_FALSE(u.PathInUse("/nd/snapshots/10"));  // sda1's /nd/..., not sdb1's
}

TEST_CASE("PathInUse: mount points, upperdirs, workdirs and absolute lowerdirs", "[mount_use]") {
  TempDir dir;
  MountUse u = Sample(dir);
  CHECK(u.PathInUse("/mnt/fast/nd/snapshots/30"));  // a mount inside its fs dir
  CHECK(u.PathInUse("/mnt/fast/nd/snapshots/12-2"));
  CHECK(u.PathInUse("/mnt/fast/nd/snapshots/12-2/work"));
  CHECK_FALSE(u.PathInUse("/mnt/fast/nd/snapshots/12"));    // another generation
  CHECK_FALSE(u.PathInUse("/mnt/fast/nd/snapshots/12-20"));
  CHECK(u.PathInUse("/srv/slow/nd/snapshots/13"));
  CHECK_FALSE(u.PathInUse("/srv/slow/nd/snapshots/1"));
  CHECK(u.PathInUse("/data/we,ird"));
  CHECK(u.PathInUse("/data/a:b"));
  CHECK(u.PathInUse("/tmp/with space"));
  CHECK_FALSE(u.PathInUse("/data/we"));
  CHECK_FALSE(u.PathInUse("/mnt/fast/nd/snapshots/41"));
  // The links dir holds the lowerdirs named through it.
  CHECK(u.PathInUse("/var/lib/nd/l/z"));
  CHECK_FALSE(u.PathInUse("/var/lib/nd/l/y"));
  // Paths we cannot place are in use: never delete on a guess.
  CHECK(u.PathInUse(""));
  CHECK(u.PathInUse("relative/that/does/not/exist"));
  CHECK(u.PathInUse("/"));
}

TEST_CASE("MountUse resolves the links dir and tier roots through symlinks", "[mount_use]") {
  TempDir dir;
  const std::string real_root = dir / "real-root", real_fast = dir / "real-fast";
  fs::create_directories(real_root + "/l");
  fs::create_directories(real_fast + "/snapshots/5/fs");
  fs::create_symlink(real_root, dir / "root");
  fs::create_symlink(real_fast, dir / "fast");
  const Layout layout(dir / "root", dir / "fast", dir / "slow");
  // The overlay names the real paths; the layout the symlinked ones.
  const std::string text = absl::StrCat(
      "22 1 8:1 / / rw - ext4 /dev/sda1 rw\n"
      "140 22 0:52 / /run/x rw - overlay overlay rw,lowerdir=",
      real_root, "/l/a,upperdir=", real_fast, "/snapshots/5/fs,workdir=", real_fast,
      "/snapshots/5/work\n");
  auto u = MountUse::Read(layout, WriteFile(dir, text));
  REQUIRE(u.ok());
  CHECK(u->LinkUsers(10) == Users{5});
  CHECK(u->PathInUse(dir / "fast/snapshots/5"));
  CHECK_FALSE(u->PathInUse(dir / "fast/snapshots/6"));
}

TEST_CASE("DirInUse keeps working on top of MountUse", "[mount_use]") {
  TempDir dir;
  auto m = ReadMountInfo(WriteFile(dir, kSample));
  REQUIRE(m.ok());
  CHECK(DirInUse(*m, "/mnt/fast/nd/snapshots/10"));  // the bind
  CHECK_FALSE(DirInUse(*m, "/mnt/fast/nd/snapshots/1"));
  CHECK(DirInUse(*m, "/srv/slow/nd/snapshots/13/fs"));
}

TEST_CASE("MountUse on real mounts: symlinked relative lowerdirs and a bind mount",
          "[mount_use][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting needs root");
    return;
  }
  TempDir dir;
  const Layout layout(dir / "root", dir / "fast", dir / "slow");
  for (uint64_t id : {10, 11, 12}) {
    fs::create_directories(layout.FsDir(Tier::kSlow, id, 1));
    std::ofstream(layout.FsDir(Tier::kSlow, id, 1) + "/f" + std::to_string(id)) << id;
  }
  fs::create_directories(layout.FsDir(Tier::kFast, 13, 2));
  fs::create_directories(layout.WorkDir(Tier::kFast, 13, 2));
  fs::create_directories(layout.LinksDir());
  for (uint64_t id : {10, 11}) {
    fs::create_symlink(layout.FsDir(Tier::kSlow, id, 1), layout.LinkPath(id));
  }
  const std::string rootfs = dir / "rootfs", view = dir / "view";
  fs::create_directories(rootfs);
  fs::create_directories(view);

  // As containerd does for long lowerdir lists: chdir into the links dir and
  // mount with relative lowerdirs.
  const std::string opts =
      absl::StrCat("lowerdir=", Layout::ShortId(10), ":", Layout::ShortId(11),
                   ",upperdir=", layout.FsDir(Tier::kFast, 13, 2),
                   ",workdir=", layout.WorkDir(Tier::kFast, 13, 2));
  char cwd[4096];
  REQUIRE(::getcwd(cwd, sizeof cwd) != nullptr);
  REQUIRE(::chdir(layout.LinksDir().c_str()) == 0);
  const int mounted = ::mount("overlay", rootfs.c_str(), "overlay", 0, opts.c_str());
  const int mount_errno = errno;
  REQUIRE(::chdir(cwd) == 0);
  INFO("mount: " << std::strerror(mount_errno));
  REQUIRE(mounted == 0);
  struct Unmounter {
    std::string target;
    ~Unmounter() { ::umount2(target.c_str(), MNT_DETACH); }
  } unmount_overlay{rootfs};
  CHECK(fs::exists(rootfs + "/f10"));
  CHECK(fs::exists(rootfs + "/f11"));

  // A one-parent view: a bind mount of 12's fs dir.
  REQUIRE(::mount(layout.FsDir(Tier::kSlow, 12, 1).c_str(), view.c_str(), nullptr, MS_BIND,
                  nullptr) == 0);
  Unmounter unmount_view{view};

  auto u = MountUse::Read(layout);
  REQUIRE(u.ok());
  CHECK(u->LinkUsers(10) == Users{13});
  CHECK(u->LinkUsers(11) == Users{13});
  CHECK(u->LinkUsers(12).empty());  // the view is a bind, not an overlay
  // The link targets: only found through LinkUsers, not by path.
  CHECK(u->PathInUse(layout.SnapshotDir(Tier::kFast, 13, 2)));
  CHECK(u->PathInUse(layout.SnapshotDir(Tier::kSlow, 12, 1)));  // the bind
  CHECK(u->PathInUse(layout.FsDir(Tier::kSlow, 12, 1)));
  CHECK_FALSE(u->PathInUse(layout.SnapshotDir(Tier::kSlow, 1, 1)));
  CHECK_FALSE(u->PathInUse(layout.SnapshotDir(Tier::kFast, 13)));
  CHECK_FALSE(u->PathInUse(layout.SnapshotDir(Tier::kFast, 13, 20)));

  // Once unmounted, nothing uses anything.
  REQUIRE(::umount2(view.c_str(), 0) == 0);
  REQUIRE(::umount2(rootfs.c_str(), 0) == 0);
  auto after = MountUse::Read(layout);
  REQUIRE(after.ok());
  CHECK(after->LinkUsers(10).empty());
  CHECK_FALSE(after->PathInUse(layout.SnapshotDir(Tier::kSlow, 12, 1)));
  CHECK_FALSE(after->PathInUse(layout.SnapshotDir(Tier::kFast, 13, 2)));
}

}  // namespace ndocker
