// The promoter's metadata layer (needs root and Linux >= 6.5 for the mount
// tests; skipped with a warning otherwise). Four layers on a tmpfs with every
// case the merge rules have (replaced file, whiteout, opaque dir, a dir
// replaced by a file, symlinks, hard links, sparse files, fifo, socket,
// device, xattrs, odd modes and owners, an empty file) are mounted twice:
// A, the plain overlay of the layers; B, the metadata layer over the same
// layers as data-only lower layers. The two trees must be identical path by
// path, and META itself must hold data only for the hot files.
#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "hbcsa/promoter/data_only_layers.h"
#include "hbcsa/promoter/metadata_layer.h"
#include "hbcsa/promoter/scoped_mount.h"
#include "hbcsa/promoter/xattrs.h"
#include "test/unit/temp_dir.h"
#include "test/unit/tree_snapshot.h"

namespace ndocker::hbcsa {
namespace {

namespace fs = std::filesystem;
using ndocker::testing::TempDir;

void Write(const std::string& path, const std::string& data, mode_t mode = 0644) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary | std::ios::trunc) << data;
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}
void Mkdir(const std::string& path, mode_t mode = 0755) {
  fs::create_directories(path);
  REQUIRE(::chmod(path.c_str(), mode) == 0);
}
void Chown(const std::string& path, uid_t uid, gid_t gid) {
  REQUIRE(::lchown(path.c_str(), uid, gid) == 0);
}
void SetX(const std::string& path, const std::string& name, const std::string& value) {
  REQUIRE(SetXattr(path, name, value).ok());
}
void Whiteout(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(::mknod(path.c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
}
void Symlink(const std::string& target, const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  REQUIRE(::symlink(target.c_str(), path.c_str()) == 0);
}
void Link(const std::string& from, const std::string& to) {
  REQUIRE(::link(from.c_str(), to.c_str()) == 0);
}
// A file of `size` bytes with data only in the 4 KiB pages at `offsets`.
void Sparse(const std::string& path, off_t size, const std::vector<off_t>& offsets) {
  fs::create_directories(fs::path(path).parent_path());
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  REQUIRE(fd >= 0);
  REQUIRE(::ftruncate(fd, size) == 0);
  for (off_t off : offsets) {
    const std::string page(4096, static_cast<char>('a' + off % 23));
    REQUIRE(::pwrite(fd, page.data(), page.size(), off) == 4096);
  }
  ::close(fd);
}
std::string Random(size_t n, unsigned seed) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) {
    seed = seed * 1103515245 + 12345;
    s[i] = static_cast<char>(seed >> 16);
  }
  return s;
}

// A tmpfs (tmpfs has user.* and trusted.* xattrs, sparse files and
// SEEK_DATA) with the layers, META and two mount points on it.
struct Rig {
  TempDir dir;
  std::string tier = dir / "tier";
  std::string l1 = tier + "/l1", l2 = tier + "/l2", l3 = tier + "/l3", l4 = tier + "/l4";
  std::string meta = tier + "/meta";
  std::string a = dir / "a", b = dir / "b";
  std::optional<ScopedMount> tmpfs;

  Rig() {
    for (const std::string* d : {&tier, &a, &b}) fs::create_directories(*d);
    absl::StatusOr<ScopedMount> m = ScopedMount::Mount("tmpfs", tier, "tmpfs", 0, "size=256m,mode=0755");
    REQUIRE(m.ok());
    tmpfs.emplace(std::move(*m));
    for (const std::string* d : {&l1, &l2, &l3, &l4}) Mkdir(*d);
  }
  std::vector<std::string> Layers() const { return {l4, l3, l2, l1}; }  // top first
};

void BuildLayers(const Rig& r) {
  // L1 (bottom): the base image.
  Mkdir(r.l1 + "/etc");
  SetX(r.l1 + "/etc", "user.layer", "1");
  Write(r.l1 + "/etc/conf", "v1\n");
  Write(r.l1 + "/etc/keep", "keep me\n");
  Write(r.l1 + "/usr/bin/tool", Random(20000, 1), 0755);
  SetX(r.l1 + "/usr/bin/tool", "user.color", "blue");
  SetX(r.l1 + "/usr/bin/tool", "user.empty", "");
  Write(r.l1 + "/usr/lib/libx.so", Random(5000, 2));
  Write(r.l1 + "/usr/share/doc/a.txt", "a\n");
  Write(r.l1 + "/usr/share/doc/b.txt", "b\n");
  Symlink("usr/bin", r.l1 + "/bin");
  Symlink("/etc/conf", r.l1 + "/etc/alt");
  Sparse(r.l1 + "/data/sparse_hot", 4 << 20, {0, 2 << 20});
  Sparse(r.l1 + "/data/sparse_cold", 8 << 20, {4096, 6 << 20});
  Write(r.l1 + "/data/removed_dir/f", "gone with its dir\n");
  Write(r.l1 + "/opt/dir_to_file/inner.txt", "hidden by a file above\n");
  Write(r.l1 + "/var/gone.txt", "whited out\n");
  Write(r.l1 + "/var/lib/app/old.db", "hidden by opaque\n");
  Write(r.l1 + "/var/lib/app/sub/x", "hidden too\n");
  Write(r.l1 + "/links/a", "linked cold\n");
  Link(r.l1 + "/links/a", r.l1 + "/links/b");
  Write(r.l1 + "/links/h1", "linked, hot through its second name\n");
  Link(r.l1 + "/links/h1", r.l1 + "/links/h2");
  Write(r.l1 + "/links/w1", "one name whited out above\n");
  Link(r.l1 + "/links/w1", r.l1 + "/links/w2");
  Write(r.l1 + "/empty", "");
  Write(r.l1 + "/empty_cold", "");
  Write(r.l1 + "/odd", "setuid, odd owner\n", 04751);
  Chown(r.l1 + "/odd", 1234, 5678);
  REQUIRE(::chmod((r.l1 + "/odd").c_str(), 04751) == 0);  // chown dropped setuid
  Write(r.l1 + "/odd_cold", "setgid, odd owner\n", 02711);
  Chown(r.l1 + "/odd_cold", 4321, 8765);
  REQUIRE(::chmod((r.l1 + "/odd_cold").c_str(), 02711) == 0);
  Mkdir(r.l1 + "/dev");
  REQUIRE(::mkfifo((r.l1 + "/dev/fifo0").c_str(), 0620) == 0);
  REQUIRE(::mknod((r.l1 + "/dev/nul").c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0);
  REQUIRE(::mknod((r.l1 + "/dev/sock").c_str(), S_IFSOCK | 0700, 0) == 0);
  Write(r.l1 + "/a/b/c/d/e/deep.txt", "deep\n");
  Mkdir(r.l1 + "/sticky", 01777);
  Chown(r.l1 + "/sticky", 0, 100);

  // L2: replaces, whiteouts, an opaque directory, its own hard links.
  Write(r.l2 + "/etc/conf", "v2, longer than v1\n", 0600);
  Chown(r.l2 + "/etc/conf", 1, 1);
  Whiteout(r.l2 + "/var/gone.txt");
  Mkdir(r.l2 + "/var/lib/app", 0700);
  SetX(r.l2 + "/var/lib/app", "trusted.overlay.opaque", "y");
  SetX(r.l2 + "/var/lib/app", "user.opaque_dir", "yes");
  Write(r.l2 + "/var/lib/app/new.db", Random(3000, 3));
  Write(r.l2 + "/usr/share/doc/c.txt", "c from l2\n");
  Write(r.l2 + "/links/c", "l2 link pair\n");
  Link(r.l2 + "/links/c", r.l2 + "/links/d");
  Whiteout(r.l2 + "/links/w2");

  // L3: a dir replaced by a file, a whited-out dir, a file replaced by a symlink.
  Write(r.l3 + "/opt/dir_to_file", "now a file\n");
  Whiteout(r.l3 + "/data/removed_dir");
  Symlink("libx.so.1", r.l3 + "/usr/lib/libx.so");
  Write(r.l3 + "/usr/lib/libx.so.1", Random(7000, 4), 0755);
  Write(r.l3 + "/a/b/c/x.txt", "x in l3\n");
  Write(r.l3 + "/var/lib/app/l3.db", "above the opaque dir\n");

  // L4 (top): changes a merged directory's attributes and adds files.
  Mkdir(r.l4 + "/etc", 0750);
  Chown(r.l4 + "/etc", 0, 42);
  SetX(r.l4 + "/etc", "user.layer", "4");
  Write(r.l4 + "/usr/bin/tool2", Random(100000, 5), 0555);
  Write(r.l4 + "/etc/new", "new in l4\n");
}

HotSet Hot() {
  return HotSet({"/etc/conf", "/usr/bin/tool", "/data/sparse_hot", "/links/h2", "/empty", "/odd",
                 "/usr/bin/tool2", "/var/lib/app/new.db",
                 "/nonexistent", "/bin/tool" /* through a symlink: not a file of the view */});
}

// Mount detection needs root; the rest of the tests too.
bool CanRun(const std::string& scratch) {
  if (::geteuid() != 0) {
    WARN("skipped: building a metadata layer and mounting overlays need root");
    return false;
  }
  absl::StatusOr<bool> ok = DataOnlyLowerLayersSupported(scratch);
  REQUIRE(ok.ok());
  if (!*ok) {
    struct utsname u;
    ::uname(&u);
    WARN("skipped: this kernel (" << u.release << ") does not mount data-only lower layers (needs >= 6.5)");
    return false;
  }
  return true;
}

TEST_CASE("Metadata layer over data-only layers shows the same tree as the plain overlay",
          "[hbcsa][promoter][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root");
    return;
  }
  Rig rig;
  if (!CanRun(rig.tier)) return;
  BuildLayers(rig);

  absl::StatusOr<BuildReport> report = BuildMetadataLayer(rig.Layers(), Hot(), rig.meta, {});
  INFO((report.ok() ? "" : report.status().ToString()));
  REQUIRE(report.ok());
  // Nothing but the layer itself is left next to it.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(rig.tier)) names.push_back(e.path().filename());
  std::sort(names.begin(), names.end());
  CHECK(names == std::vector<std::string>{"l1", "l2", "l3", "l4", "meta"});

  CHECK(report->hot_not_found == 2);
  CHECK(report->hot_files == 8);
  CHECK(report->hard_links == 3);  // b, h2, d (w2 is whited out)
  CHECK(report->fifos == 1);
  CHECK(report->sockets == 1);
  CHECK(report->devices == 1);
  CHECK(report->stubs > 10);
  CHECK(report->bytes_on_disk > 0);

  absl::StatusOr<ScopedMount> a = ScopedMount::Mount(
      "overlay", rig.a, "overlay", MS_RDONLY,
      absl::StrCat("lowerdir=", absl::StrJoin(rig.Layers(), ":")));
  REQUIRE(a.ok());
  absl::StatusOr<ScopedMount> b = ScopedMount::Mount(
      "overlay", rig.b, "overlay", MS_RDONLY, DataOnlyOverlayOptions(rig.meta, rig.Layers()));
  INFO((b.ok() ? "" : b.status().ToString()));
  REQUIRE(b.ok());

  const testing::TreeSnapshot ta = testing::SnapshotTree(rig.a);
  const testing::TreeSnapshot tb = testing::SnapshotTree(rig.b);
  const std::string diff = testing::DiffTrees(ta, tb);
  INFO(diff);
  CHECK(diff.empty());
  // The merge rules did what the layers ask (so A itself is what we think).
  CHECK(ta.contains("/var/lib/app/new.db"));
  CHECK(ta.contains("/var/lib/app/l3.db"));
  CHECK_FALSE(ta.contains("/var/lib/app/old.db"));
  CHECK_FALSE(ta.contains("/var/gone.txt"));
  CHECK_FALSE(ta.contains("/data/removed_dir"));
  CHECK(ta.at("/opt/dir_to_file").type == 'f');
  CHECK(ta.at("/usr/lib/libx.so").type == 'l');
  CHECK(ta.at("/etc").mode == 0750);
  CHECK(ta.at("/links/b").link_group == "/links/a");
  CHECK(ta.at("/links/h2").link_group == "/links/h1");
  CHECK(ta.at("/links/d").link_group == "/links/c");
  CHECK(ta.at("/odd").mode == 04751);
  CHECK(ta.at("/sticky").mode == 01777);

  // META: hot files hold their data, everything else is a stub without
  // data blocks; the sparse hot file kept its holes.
  const testing::TreeSnapshot tm = testing::SnapshotTree(rig.meta);
  for (const auto& [path, node] : tm) {
    if (node.type != 'f') continue;
    const bool hot = Hot().Contains(path) || path == "/links/h1";
    absl::StatusOr<std::optional<std::string>> redirect =
        GetXattr(rig.meta + path, "trusted.overlay.redirect");
    absl::StatusOr<std::optional<std::string>> metacopy =
        GetXattr(rig.meta + path, "trusted.overlay.metacopy");
    REQUIRE(redirect.ok());
    REQUIRE(metacopy.ok());
    INFO(path);
    if (hot) {
      CHECK(node.sha256 == ta.at(path).sha256);
      CHECK_FALSE(redirect->has_value());
      CHECK_FALSE(metacopy->has_value());
    } else {
      CHECK(node.blocks == 0);
      CHECK(node.size == ta.at(path).size);
      CHECK(metacopy->has_value());
      REQUIRE(redirect->has_value());
      // A link group's stub points at its first name; both names share it.
      CHECK(**redirect == (ta.at(path).link_group.empty() ? path : ta.at(path).link_group));
    }
  }
  CHECK(tm.at("/data/sparse_hot").blocks * 512 <= 2 * 4096);
  CHECK(tm.at("/data/sparse_hot").size == (4 << 20));
  // No overlay markers besides the stubs': META merges with nothing.
  CHECK_FALSE(GetXattr(rig.meta + "/var/lib/app", "trusted.overlay.opaque")->has_value());
  // L3's /var/lib/app (no xattrs) is the topmost, so the opaque L2 dir's
  // user xattr is not the view's; /etc's comes from L4.
  CHECK(tm.at("/var/lib/app").xattrs.empty());
  CHECK(tm.at("/etc").xattrs == std::vector<Xattr>{{"user.layer", "4"}});
  CHECK(ta.at("/usr/bin/tool").xattrs ==
        std::vector<Xattr>{{"user.color", "blue"}, {"user.empty", ""}});
  CHECK(ta.at("/links/w1").link_group.empty());  // w2 is whited out
  CHECK(report->hot_bytes == static_cast<int64_t>(
                                 3 + 20000 + 2 * 4096 + 36 + 18 + 100000 + 3000 + 19 - 3));

  CHECK(b->Unmount().ok());
  CHECK(a->Unmount().ok());
}

TEST_CASE("Metadata layer: an existing target is refused, a failed build leaves nothing",
          "[hbcsa][promoter][root]") {
  if (::geteuid() != 0) {
    WARN("skipped: needs root (trusted.* xattrs)");
    return;
  }
  TempDir dir;
  Write(dir / "l1/f", "data\n");
  fs::create_directories(dir / "out");
  absl::StatusOr<BuildReport> r = BuildMetadataLayer({dir / "l1"}, HotSet(), dir / "out", {});
  CHECK(absl::IsAlreadyExists(r.status()));

  r = BuildMetadataLayer({dir / "l1", dir / "missing"}, HotSet(), dir / "meta", {});
  CHECK_FALSE(r.ok());
  CHECK_FALSE(fs::exists(dir / "meta"));
  size_t entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir.path())) ++entries;
  CHECK(entries == 2);  // l1, out: no temp dir left

  r = BuildMetadataLayer({dir / "l1"}, HotSet({"/f"}), dir / "meta", {});
  REQUIRE(r.ok());
  CHECK(r->hot_files == 1);
  CHECK(r->stubs == 0);
  CHECK(r->entries() == 2);
}

}  // namespace
}  // namespace ndocker::hbcsa
