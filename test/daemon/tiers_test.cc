// The tiers as the fixture builds them (tier_fs.h): two real filesystems by
// default, one filesystem on request; and the one move every build has had
// since the budget existed, a Commit over the fast budget, on both layouts
// (a copy across filesystems, a rename within one).
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <set>

#include <catch2/catch.hpp>

#include "absl/strings/str_split.h"
#include "test/daemon/daemon_fixture.h"

namespace ndocker::daemon_test {
namespace {

namespace fs = std::filesystem;
using Mounts = google::protobuf::RepeatedPtrField<PbMount>;

std::string RandomBytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(gen() & 0xff);
  return s;
}

std::vector<std::string> DirNames(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) out.push_back(e.path().filename().string());
  std::sort(out.begin(), out.end());
  return out;
}

// Fills an unpack target like containerd's applier would: a big incompressible
// file, small files, a subdir with its own mode and owner, a hardlink pair,
// relative and absolute symlinks, a user xattr and an overlay whiteout.
void FillLayer(const std::string& fs_dir, size_t big_bytes) {
  WriteFile(fs_dir + "/big.bin", RandomBytes(big_bytes, 42));
  REQUIRE(::mkdir((fs_dir + "/etc").c_str(), 0755) == 0);
  WriteFile(fs_dir + "/etc/conf", "key = value\n");
  REQUIRE(::mkdir((fs_dir + "/home").c_str(), 0750) == 0);
  REQUIRE(::chown((fs_dir + "/home").c_str(), 1000, 1000) == 0);
  WriteFile(fs_dir + "/home/profile", "owned by 1000\n");
  REQUIRE(::chown((fs_dir + "/home/profile").c_str(), 1000, 1000) == 0);
  WriteFile(fs_dir + "/etc/one", "hardlinked\n");
  REQUIRE(::link((fs_dir + "/etc/one").c_str(), (fs_dir + "/etc/two").c_str()) == 0);
  REQUIRE(::symlink("conf", (fs_dir + "/etc/conf.rel").c_str()) == 0);
  REQUIRE(::symlink("/etc/conf", (fs_dir + "/etc/conf.abs").c_str()) == 0);
  REQUIRE(::setxattr((fs_dir + "/etc/conf").c_str(), "user.ndocker", "x", 1, 0) == 0);
  REQUIRE(::mknod((fs_dir + "/etc/gone").c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
  REQUIRE(::chmod((fs_dir + "/big.bin").c_str(), 04755) == 0);
}

TEST_CASE("the fixture puts the tiers on a tmpfs and an ext4 image of the sizes asked for",
          "[daemon][tiers][fixture]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting needs root");
    return;
  }
  const char* same = std::getenv("NDT_SAME_FS_TIERS");
  if (same != nullptr && std::string(same) == "1") {
    WARN("skipped: NDT_SAME_FS_TIERS=1");
    return;
  }
  DaemonOptions o;
  o.fast_tier_bytes = 64 * kMiB;
  o.slow_tier_bytes = 128 * kMiB;
  std::string fast, slow, image;
  {
    DaemonProcess d(o);
    fast = d.fast_dir();
    slow = d.slow_dir();
    image = d.slow_image();
    CHECK(d.tier_fs() == TierFs::kSeparate);
    CHECK(FsTypeOf(fast) == "tmpfs");
    CHECK(FsTypeOf(slow) == "ext4");
    CHECK(DeviceOf(fast) != DeviceOf(slow));
    CHECK(DeviceOf(fast) != DeviceOf(d.root()));
    CHECK(DeviceOf(slow) != DeviceOf(d.root()));
    CHECK(TotalBytes(fast) == 64 * kMiB);
    CHECK(TotalBytes(slow) <= 128 * kMiB);
    CHECK(TotalBytes(slow) > 100 * kMiB);
    CHECK(LoopDevicesOf(image).size() == 1);
    // The daemon serves them: a snapshot on each tier lands on its filesystem.
    Mounts m;
    REQUIRE_OK(d.client().Prepare("on-fast", "", {{kTierLabelKey, "fast"}}, &m));
    CHECK(FsTypeOf(m[0].source()) == "tmpfs");
    REQUIRE_OK(d.client().Prepare("on-slow", "", {{kTierLabelKey, "slow"}}, &m));
    CHECK(FsTypeOf(m[0].source()) == "ext4");
  }
  // Destroyed: unmounted, the loop device detached, the dir gone.
  CHECK(MountPointsUnder(fast).empty());
  CHECK(MountPointsUnder(slow).empty());
  CHECK(LoopDevicesOf(image).empty());
  CHECK_FALSE(fs::exists(image));
}

TEST_CASE("TierFs::kSame keeps both tiers on the temp dir's filesystem", "[daemon][tiers][fixture]") {
  DaemonOptions o;
  o.tier_fs = TierFs::kSame;
  DaemonProcess d(o);
  CHECK(d.tier_fs() == TierFs::kSame);
  CHECK(d.slow_image().empty());
  CHECK(MountPointsUnder(d.base()).empty());
  CHECK(DeviceOf(d.fast_dir()) == DeviceOf(d.slow_dir()));
  CHECK(DeviceOf(d.fast_dir()) == DeviceOf(d.base()));
}

// A Commit whose snapshot does not fit the fast budget moves it to the slow
// tier (rule budget-commit): across filesystems a copy, on one filesystem a
// rename. Either way the committed layer is byte-identical on the slow tier,
// new mounts resolve to it, nothing is left on the fast tier or in staging,
// and that survives a kill -9.
TEST_CASE("a commit over the fast budget moves the layer to the slow tier intact", "[daemon][tiers]") {
  const TierFs layout = GENERATE(TierFs::kSeparate, TierFs::kSame);
  if (layout == TierFs::kSeparate && ::geteuid() != 0) {
    WARN("skipped: separate tier filesystems need root");
    return;
  }
  INFO("tier layout: " << TierFsName(layout));
  DaemonOptions o;
  o.tier_fs = layout;
  o.extra_args = {"--fast-budget", "1MiB"};
  DaemonProcess d(o);
  if (layout == TierFs::kSeparate && d.tier_fs() != TierFs::kSeparate) {
    WARN("skipped: NDT_SAME_FS_TIERS=1");
    return;
  }
  SnapshotsClient& c = d.client();
  const LabelMap fast = {{kTierLabelKey, "fast"}};

  Mounts m;
  REQUIRE_OK(c.Prepare("default/1/extract-big", "", fast, &m));
  REQUIRE(m.size() == 1);
  REQUIRE(m[0].type() == "bind");
  const std::string active_fs = m[0].source();
  REQUIRE(active_fs.rfind(d.fast_dir() + "/snapshots/", 0) == 0);
  FillLayer(active_fs, 3 * kMiB);
  const auto before = ContentTree(active_fs);
  REQUIRE_OK(c.Commit("default/2/big", "default/1/extract-big", fast));

  // Where the layer is now, as a new mount sees it.
  auto check_on_slow = [&](const std::string& when) {
    INFO(when);
    Mounts view;
    REQUIRE_OK(c.View("view-" + when, "default/2/big", {}, &view));
    REQUIRE(view.size() == 1);
    REQUIRE(view[0].type() == "bind");
    const std::string src = fs::canonical(view[0].source()).string();
    CHECK(src.rfind(fs::canonical(d.slow_dir()).string() + "/snapshots/", 0) == 0);
    if (layout == TierFs::kSeparate) CHECK(FsTypeOf(src) == "ext4");
    CHECK(DiffMaps(before, ContentTree(src)) == "");
    // A child's lowerdir (a short link) resolves to the same directory.
    Mounts child;
    REQUIRE_OK(c.Prepare("child-" + when, "default/2/big", {}, &child));
    REQUIRE(child[0].type() == "overlay");
    auto lower = MountOption(child[0], "lowerdir");
    REQUIRE(lower.has_value());
    CHECK(fs::canonical(*lower).string() == src);
    REQUIRE_OK(c.Remove("child-" + when));
    REQUIRE_OK(c.Remove("view-" + when));
    REQUIRE_OK(c.Cleanup());
    // Nothing of the layer is left on the fast tier, nothing in staging.
    CHECK(DirNames(d.fast_dir() + "/snapshots").empty());
    CHECK(DirNames(d.fast_dir() + "/staging").empty());
    CHECK(DirNames(d.slow_dir() + "/staging").empty());
  };
  check_on_slow("after-commit");
  pb::Info info;
  REQUIRE_OK(c.Stat("default/2/big", &info));
  CHECK(info.kind() == pb::COMMITTED);

  d.Restart(/*hard=*/true);
  check_on_slow("after-kill-9");
}

}  // namespace
}  // namespace ndocker::daemon_test
