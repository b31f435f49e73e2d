// Measurement (hidden; root): what a metadata layer costs per entry of the
// merged view on each candidate format for the fast tier. Run by hand with
//   NDOCKER_PROMOTER_BENCH_LAYERS=/l/6:/l/5:...:/l/1 (top first)
//   [NDOCKER_PROMOTER_BENCH_HOT=file with one rootfs path per line]
//   ndocker_unit_tests '[promoter_bench]' -s
// (test/bench/oci-layers-to-dirs.sh turns an OCI layout into such dirs).
// Formats: tmpfs; ext4 on a loop device with 256- and 512-byte inodes (the
// stubs' two overlay xattrs fit in a 512-byte inode, so they need no xattr
// block); EROFS (mkfs.erofs of the tmpfs build, when erofs-utils is there).
// The tmpfs and EROFS layers are also mounted over the layers as data-only
// lower layers and compared path by path with the plain overlay.
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "hbcsa/promoter/data_only_layers.h"
#include "hbcsa/promoter/metadata_layer.h"
#include "hbcsa/promoter/scoped_mount.h"
#include "test/unit/temp_dir.h"
#include "test/unit/tree_snapshot.h"

namespace ndocker::hbcsa {
namespace {

namespace fs = std::filesystem;
using ndocker::testing::TempDir;

int Run(const std::string& cmd) {
  const int rc = std::system(cmd.c_str());
  return WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

// A filesystem image mounted with `mount -o loop` (the loop device goes
// with the mount: autoclear), unmounted on destruction.
struct LoopMount {
  std::string target;
  LoopMount(const std::string& image, const std::string& dir, const std::string& type,
            const std::string& opts) {
    fs::create_directories(dir);
    REQUIRE(Run(absl::StrCat("mount -t ", type, " -o loop,", opts, " ", image, " ", dir)) == 0);
    target = dir;
  }
  ~LoopMount() {
    if (!target.empty()) ::umount2(target.c_str(), MNT_DETACH);
  }
  LoopMount(const LoopMount&) = delete;
  LoopMount& operator=(const LoopMount&) = delete;
};

int64_t UsedBytes(const std::string& path) {
  struct statvfs s;
  REQUIRE(::statvfs(path.c_str(), &s) == 0);
  return static_cast<int64_t>(s.f_blocks - s.f_bfree) * static_cast<int64_t>(s.f_frsize);
}

int64_t FileBytes(const std::string& path) {
  struct stat st;
  REQUIRE(::stat(path.c_str(), &st) == 0);
  return static_cast<int64_t>(st.st_size);
}

HotSet HotFromEnv() {
  HotSet hot;
  if (const char* f = std::getenv("NDOCKER_PROMOTER_BENCH_HOT")) {
    std::ifstream in(f);
    for (std::string line; std::getline(in, line);) {
      if (!line.empty()) hot.Add(line);
    }
  }
  return hot;
}

struct Row {
  std::string format;
  int64_t bytes = 0;      // what the format costs on its device
  std::string how;        // how `bytes` was measured
  double seconds = 0;
};

BuildReport Build(const std::vector<std::string>& layers, const HotSet& hot, const std::string& out,
                  double& seconds) {
  const auto t0 = std::chrono::steady_clock::now();
  absl::StatusOr<BuildReport> r = BuildMetadataLayer(layers, hot, out, {});
  seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO((r.ok() ? "" : r.status().ToString()));
  REQUIRE(r.ok());
  return *r;
}

// Mounts META over the layers and the plain overlay, and compares them.
void CheckSameTree(const std::string& meta, const std::vector<std::string>& layers,
                   const std::string& scratch, const char* label) {
  const std::string a = scratch + "/a", b = scratch + "/b";
  fs::create_directories(a);
  fs::create_directories(b);
  absl::StatusOr<ScopedMount> ma = ScopedMount::Mount(
      "overlay", a, "overlay", MS_RDONLY, absl::StrCat("lowerdir=", absl::StrJoin(layers, ":")));
  REQUIRE(ma.ok());
  absl::StatusOr<ScopedMount> mb =
      ScopedMount::Mount("overlay", b, "overlay", MS_RDONLY, DataOnlyOverlayOptions(meta, layers));
  REQUIRE(mb.ok());
  const auto t0 = std::chrono::steady_clock::now();
  const testing::TreeSnapshot ta = testing::SnapshotTree(a);
  const testing::TreeSnapshot tb = testing::SnapshotTree(b);
  const std::string diff = testing::DiffTrees(ta, tb);
  std::printf("  %s: plain overlay vs META over data-only layers: %zu paths, %s (%.1f s)\n", label,
              ta.size(), diff.empty() ? "identical" : "DIFFERENT",
              std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  INFO(diff);
  CHECK(diff.empty());
}

TEST_CASE("Metadata layer bytes per entry by format", "[.][promoter_bench]") {
  const char* env = std::getenv("NDOCKER_PROMOTER_BENCH_LAYERS");
  if (::geteuid() != 0 || env == nullptr) {
    WARN("skipped: needs root and NDOCKER_PROMOTER_BENCH_LAYERS=dir:dir (top first)");
    return;
  }
  const std::vector<std::string> layers = absl::StrSplit(env, ':', absl::SkipEmpty());
  const HotSet hot = HotFromEnv();
  TempDir dir;
  const std::string tmpfs_dir = dir / "tmpfs";
  fs::create_directories(tmpfs_dir);
  absl::StatusOr<ScopedMount> tmpfs =
      ScopedMount::Mount("tmpfs", tmpfs_dir, "tmpfs", 0, "size=4g,mode=0755");
  REQUIRE(tmpfs.ok());
  absl::StatusOr<bool> supported = DataOnlyLowerLayersSupported(tmpfs_dir);
  REQUIRE(supported.ok());

  std::vector<Row> rows;
  double secs = 0;
  const BuildReport report = Build(layers, hot, tmpfs_dir + "/meta", secs);
  rows.push_back({"tmpfs", report.bytes_on_disk, "sum st_blocks*512 (tmpfs inodes are RAM, uncounted)", secs});
  std::printf("merged view of %zu layers: %lld entries: %lld dirs, %lld files (%lld hard links), "
              "%lld symlinks, %lld devices, %lld fifos, %lld sockets; %lld stubs, %lld hot files "
              "(%lld bytes, %lld hot paths not found)\n",
              layers.size(), (long long)report.entries(), (long long)report.directories,
              (long long)report.regular_files, (long long)report.hard_links,
              (long long)report.symlinks, (long long)report.devices, (long long)report.fifos,
              (long long)report.sockets, (long long)report.stubs, (long long)report.hot_files,
              (long long)report.hot_bytes, (long long)report.hot_not_found);
  const int64_t inodes = report.entries() - report.hard_links;

  for (int inode_size : {256, 512}) {
    const std::string image = dir / absl::StrCat("ext4-", inode_size, ".img");
    const std::string mnt = dir / absl::StrCat("ext4-", inode_size);
    REQUIRE(Run(absl::StrCat("truncate -s 4G ", image, " && mkfs.ext4 -q -F -I ", inode_size,
                             " ", image)) == 0);
    LoopMount m(image, mnt, "ext4", "rw");
    const int64_t before = UsedBytes(mnt);
    const BuildReport r = Build(layers, hot, mnt + "/meta", secs);
    const int64_t used = UsedBytes(mnt) - before;
    rows.push_back({absl::StrCat("ext4 -I ", inode_size, " (blocks)"), r.bytes_on_disk,
                    "sum st_blocks*512", secs});
    rows.push_back({absl::StrCat("ext4 -I ", inode_size, " (blocks+inodes)"),
                    r.bytes_on_disk + inodes * inode_size,
                    absl::StrCat("st_blocks + ", inodes, " inodes x ", inode_size, " B"), secs});
    rows.push_back({absl::StrCat("ext4 -I ", inode_size, " (df)"), used,
                    "statvfs used blocks after - before (no inode tables)", secs});
  }

  const std::string meta = tmpfs_dir + "/meta";
  if (*supported) {
    CheckSameTree(meta, layers, tmpfs_dir, "tmpfs META");
  } else {
    WARN("no data-only lower layers on this kernel: trees not compared");
  }

  if (Run("command -v mkfs.erofs >/dev/null") == 0) {
    // Without chunks mkfs.erofs stores the stubs' holes as zeros; with
    // chunk-based files a hole is a null chunk, and bigger chunks mean
    // fewer chunk indexes per stub.
    for (const char* extra : {"", " --chunksize=4096", " --chunksize=1048576", " --chunksize=1073741824"}) {
      const std::string image = dir / "meta.erofs";
      fs::remove(image);
      const auto t0 = std::chrono::steady_clock::now();
      REQUIRE(Run(absl::StrCat("mkfs.erofs --quiet", extra, " ", image, " ", meta, " >/dev/null")) == 0);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      rows.push_back({absl::StrCat("erofs", extra), FileBytes(image), "image file size", s});
      if (*supported) {
        LoopMount m(image, dir / "erofs", "erofs", "ro");
        CheckSameTree(dir / "erofs", layers, tmpfs_dir, absl::StrCat("erofs", extra).c_str());
      }
    }
  } else {
    WARN("mkfs.erofs not found (apt-get install erofs-utils): EROFS not measured");
  }

  std::printf("\n%-28s %14s %12s %8s  %s\n", "format", "bytes", "B/entry", "build s", "measured as");
  for (const Row& r : rows) {
    std::printf("%-28s %14lld %12.1f %8.2f  %s\n", r.format.c_str(), (long long)r.bytes,
                static_cast<double>(r.bytes) / static_cast<double>(report.entries()), r.seconds,
                r.how.c_str());
  }
  std::fflush(stdout);
}

}  // namespace
}  // namespace ndocker::hbcsa
