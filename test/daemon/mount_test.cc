// Mounting what the daemon hands out: a 128-deep chain of layers spread over
// both tiers, with an overlay whiteout, mounted with ndocker::MountAll (the
// lowerdir option is longer than a page, so the compaction path is used).
// Needs root (mount(2), mknod(2)).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "test/daemon/daemon_fixture.h"

namespace ndocker::daemon_test {
namespace {

namespace fs = std::filesystem;
using Mounts = google::protobuf::RepeatedPtrField<PbMount>;

constexpr int kLayers = 128;
constexpr int kWhiteoutLayer = 64;
constexpr int kWhitedOut = 10;
// The lowerdir option must be longer than this (containerd compacts options
// longer than a page minus 512 bytes).
constexpr size_t kCompactionThreshold = 3584;

std::string LayerFile(int i) { return "layer-" + std::to_string(i); }
std::string LayerContent(int i) { return "content of layer " + std::to_string(i) + "\n"; }
const char* TierOf(int i) { return i % 2 == 0 ? "fast" : "slow"; }

bool IsWhiteout(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0 && S_ISCHR(st.st_mode) && st.st_rdev == makedev(0, 0);
}

// Checks what a mount of the full chain shows: every layer's file but the
// whited-out one, with the right content.
void CheckChainVisible(const std::string& target) {
  for (int i = 0; i < kLayers; ++i) {
    const std::string p = target + "/" + LayerFile(i);
    INFO("layer " << i << ": " << p);
    if (i == kWhitedOut) {
      struct stat st;
      CHECK(::lstat(p.c_str(), &st) != 0);
      CHECK(errno == ENOENT);
    } else {
      CHECK(ReadFile(p) == LayerContent(i));
    }
  }
  size_t entries = 0;
  for (const auto& e : fs::directory_iterator(target)) {
    (void)e;
    ++entries;
  }
  CHECK(entries == kLayers - 1);
}

class Chain {
 public:
  Chain() : d(Options()) {}

  static DaemonOptions Options() {
    DaemonOptions o;
    // Long enough that 128 lowerdirs of <root>/l/<id> exceed a page.
    o.root_name = "root-of-a-deliberately-long-path-so-overlay-options-outgrow-one-page";
    return o;
  }

  // Builds layer-0 .. layer-127; returns the committed fs dir of each layer.
  std::vector<std::string> Build() {
    SnapshotsClient& c = d.client();
    std::vector<std::string> fs_dirs;
    std::string parent;
    for (int i = 0; i < kLayers; ++i) {
      INFO("layer " << i);
      const std::string key = "default/" + std::to_string(2 * i + 1) + "/extract-" + std::to_string(i);
      const std::string name = "default/" + std::to_string(2 * i + 2) + "/layer-" + std::to_string(i);
      const LabelMap labels = {{kTierLabelKey, TierOf(i)}};
      Mounts m;
      REQUIRE_OK(c.Prepare(key, parent, labels, &m));
      REQUIRE(m.size() == 1);
      std::string dir;
      if (i == 0) {
        REQUIRE(m[0].type() == "bind");
        dir = m[0].source();
      } else {
        // Like containerd's applier: straight into the upperdir.
        REQUIRE(m[0].type() == "overlay");
        auto upper = MountOption(m[0], "upperdir");
        REQUIRE(upper.has_value());
        dir = *upper;
      }
      const std::string tier_root = d.tier_dir(TierOf(i)) + "/snapshots/";
      CHECK(dir.rfind(tier_root, 0) == 0);
      WriteFile(dir + "/" + LayerFile(i), LayerContent(i));
      if (i == kWhiteoutLayer) {
        const std::string wh = dir + "/" + LayerFile(kWhitedOut);
        REQUIRE(::mknod(wh.c_str(), S_IFCHR | 0, makedev(0, 0)) == 0);
      }
      REQUIRE_OK(c.Commit(name, key, labels));
      fs_dirs.push_back(dir);
      names.push_back(name);
      parent = name;
    }
    return fs_dirs;
  }

  DaemonProcess d;
  std::vector<std::string> names;
};

// The lowerdir entries of an overlay mount, nearest parent first.
std::vector<std::string> Lowerdirs(const PbMount& m) {
  auto lower = MountOption(m, "lowerdir");
  REQUIRE(lower.has_value());
  return absl::StrSplit(*lower, ':');
}

TEST_CASE_METHOD(Chain, "a 128-deep two-tier chain with a whiteout mounts with MountAll",
                 "[daemon][mount]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting needs root");
    return;
  }
  const std::vector<std::string> layer_fs = Build();
  REQUIRE(layer_fs.size() == static_cast<size_t>(kLayers));
  CHECK(IsWhiteout(layer_fs[kWhiteoutLayer] + "/" + LayerFile(kWhitedOut)));

  SnapshotsClient& c = d.client();
  Mounts top;
  REQUIRE_OK(c.Prepare("default/999/top", names.back(), {}, &top));
  REQUIRE(top.size() == 1);
  const PbMount& ov = top[0];
  CHECK(ov.type() == "overlay");
  auto upper = MountOption(ov, "upperdir");
  REQUIRE(upper.has_value());

  // Lowerdirs: all 128 layers, nearest first, each on the tier its label asked for.
  const std::vector<std::string> lowers = Lowerdirs(ov);
  REQUIRE(lowers.size() == static_cast<size_t>(kLayers));
  for (int j = 0; j < kLayers; ++j) {
    const int layer = kLayers - 1 - j;
    INFO("lowerdir " << j << " = " << lowers[j] << " (layer " << layer << ")");
    CHECK(fs::canonical(lowers[j]) == fs::canonical(layer_fs[layer]));
    CHECK(fs::canonical(lowers[j]).string().rfind(d.tier_dir(TierOf(layer)) + "/", 0) == 0);
  }

  // The options really are too long for one mount(2) page, so MountAll has
  // to compact them.
  const std::vector<std::string> options(ov.options().begin(), ov.options().end());
  const std::string joined = absl::StrJoin(options, ",");
  INFO("options are " << joined.size() << " bytes");
  REQUIRE(joined.size() > kCompactionThreshold);
  const CompactedOptions compacted = CompactLowerdirs(options, static_cast<size_t>(::getpagesize()));
  CHECK(compacted.dir == d.root() + "/l");
  CHECK(absl::StrJoin(compacted.options, ",").size() < static_cast<size_t>(::getpagesize()));

  const std::string target = d.base() + "/mnt-active";
  REQUIRE(fs::create_directory(target));
  {
    ScopedMount mnt(ToCore(top), target);
    INFO("MountAll: " << mnt.status().ToString());
    REQUIRE(mnt.mounted());
    CheckChainVisible(target);

    // A new file lands in the upperdir only.
    WriteFile(target + "/written", "written through the overlay\n");
    CHECK(ReadFile(*upper + "/written") == "written through the overlay\n");
    CHECK_FALSE(fs::exists(layer_fs.back() + "/written"));
    // Changing a lower file copies it up; the layer itself is untouched.
    WriteFile(target + "/" + LayerFile(5), "changed\n");
    CHECK(ReadFile(*upper + "/" + LayerFile(5)) == "changed\n");
    CHECK(ReadFile(layer_fs[5] + "/" + LayerFile(5)) == LayerContent(5));
    // Deleting a lower file leaves a whiteout in the upperdir.
    REQUIRE(fs::remove(target + "/" + LayerFile(3)));
    CHECK(IsWhiteout(*upper + "/" + LayerFile(3)));
    CHECK(ReadFile(layer_fs[3] + "/" + LayerFile(3)) == LayerContent(3));

    absl::Status st = mnt.Unmount();
    INFO("Unmount: " << st.ToString());
    CHECK(st.ok());
  }
  CHECK(MountPointsUnder(target).empty());
  CHECK(fs::is_empty(target));

  // The daemon reports the active's own writes.
  pb::UsageResponse usage;
  REQUIRE_OK(c.Usage("default/999/top", &usage));
  CHECK(usage.inodes() == 4);  // upperdir, written, layer-5, layer-3 whiteout

  // Mounts gives the same list, also after a crash and restart.
  d.Restart(/*hard=*/true);
  Mounts again;
  REQUIRE_OK(d.client().Mounts("default/999/top", &again));
  CHECK(MountsString(again) == MountsString(top));
}

TEST_CASE_METHOD(Chain, "a view on a 128-deep chain mounts read-only", "[daemon][mount]") {
  if (::geteuid() != 0) {
    WARN("skipped: mounting needs root");
    return;
  }
  const std::vector<std::string> layer_fs = Build();
  Mounts view;
  REQUIRE_OK(d.client().View("default/999/view", names.back(), {}, &view));
  REQUIRE(view.size() == 1);
  CHECK(view[0].type() == "overlay");
  CHECK_FALSE(MountOption(view[0], "upperdir").has_value());
  CHECK_FALSE(MountOption(view[0], "workdir").has_value());
  CHECK(Lowerdirs(view[0]).size() == static_cast<size_t>(kLayers));
  const std::vector<std::string> options(view[0].options().begin(), view[0].options().end());
  REQUIRE(absl::StrJoin(options, ",").size() > kCompactionThreshold);

  const std::string target = d.base() + "/mnt-view";
  REQUIRE(fs::create_directory(target));
  {
    ScopedMount mnt(ToCore(view), target);
    INFO("MountAll: " << mnt.status().ToString());
    REQUIRE(mnt.mounted());
    CheckChainVisible(target);

    const std::string p = target + "/new-file";
    errno = 0;
    int fd = ::open(p.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    const int open_errno = errno;
    if (fd >= 0) ::close(fd);
    CHECK(fd < 0);
    CHECK(open_errno == EROFS);
    errno = 0;
    CHECK(::mkdir((target + "/new-dir").c_str(), 0755) != 0);
    CHECK(errno == EROFS);
    errno = 0;
    CHECK(::unlink((target + "/" + LayerFile(0)).c_str()) != 0);
    CHECK(errno == EROFS);

    absl::Status st = mnt.Unmount();
    INFO("Unmount: " << st.ToString());
    CHECK(st.ok());
  }
  CHECK(MountPointsUnder(target).empty());
  // Nothing reached the layers.
  CHECK_FALSE(fs::exists(layer_fs.back() + "/new-file"));
  CHECK(ReadFile(layer_fs[0] + "/" + LayerFile(0)) == LayerContent(0));

  // A one-parent view is a read-only bind.
  Mounts bind;
  REQUIRE_OK(d.client().View("default/1000/view-one", names.front(), {}, &bind));
  REQUIRE(bind.size() == 1);
  CHECK(bind[0].type() == "bind");
  const std::string bind_target = d.base() + "/mnt-bind";
  REQUIRE(fs::create_directory(bind_target));
  ScopedMount bmnt(ToCore(bind), bind_target);
  INFO("MountAll: " << bmnt.status().ToString());
  REQUIRE(bmnt.mounted());
  CHECK(ReadFile(bind_target + "/" + LayerFile(0)) == LayerContent(0));
  errno = 0;
  CHECK(::mkdir((bind_target + "/new-dir").c_str(), 0755) != 0);
  CHECK(errno == EROFS);
  CHECK(bmnt.Unmount().ok());
}

}  // namespace
}  // namespace ndocker::daemon_test
