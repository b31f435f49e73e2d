// Tier directories on real, separate filesystems for the daemon tests, so that
// a move between the tiers is a cross-filesystem copy, not a rename:
//
//   TierFilesystems fs(TierFilesystems::kCross);   // fast: tmpfs, slow: loop ext4
//   DaemonOptions o;
//   o.extra_args = fs.DaemonArgs();                  // --fast-path ... --slow-path ...
//   DaemonProcess d(o);
//
// kSame puts both tier dirs on one loop ext4 (the same-filesystem case).
// Everything lives under a private temp dir; the destructor unmounts (the
// loop device goes with the mount: autoclear) and deletes it. Needs root.
// The tier dirs are subdirectories of the mount points, so ext4's lost+found
// is never inside a tier.
#pragma once

#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <string>
#include <vector>

#include "test/daemon/daemon_fixture.h"

namespace ndocker::daemon_test {

class TierFilesystems {
 public:
  enum Mode { kCross, kSame };

  explicit TierFilesystems(Mode mode, int fast_mib = 64, int slow_mib = 128) : mode_(mode) {
    const char* tmp = std::getenv("TMPDIR");
    std::string tmpl = std::string(tmp != nullptr && *tmp != '\0' ? tmp : "/tmp") + "/ndocker-tiers-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    base_ = tmpl;
    try {
      const std::string ext4_mnt = base_ + "/ext4";
      MountExt4(base_ + "/ext4.img", ext4_mnt, slow_mib);
      if (mode == kCross) {
        const std::string tmpfs_mnt = base_ + "/tmpfs";
        std::filesystem::create_directory(tmpfs_mnt);
        const std::string opts = "size=" + std::to_string(fast_mib) + "m,mode=0700";
        if (::mount("ndocker-test-fast", tmpfs_mnt.c_str(), "tmpfs", 0, opts.c_str()) != 0) {
          throw std::runtime_error("mount tmpfs on " + tmpfs_mnt + ": " + std::strerror(errno));
        }
        mounts_.push_back(tmpfs_mnt);
        fast_ = tmpfs_mnt + "/fast";
      } else {
        fast_ = ext4_mnt + "/fast";
      }
      slow_ = ext4_mnt + "/slow";
    } catch (...) {
      Cleanup();
      throw;
    }
  }
  ~TierFilesystems() { Cleanup(); }
  TierFilesystems(const TierFilesystems&) = delete;
  TierFilesystems& operator=(const TierFilesystems&) = delete;

  Mode mode() const { return mode_; }
  const char* mode_name() const { return mode_ == kCross ? "tmpfs->ext4" : "same ext4"; }
  // The tier paths (not created: the daemon makes them).
  const std::string& fast() const { return fast_; }
  const std::string& slow() const { return slow_; }
  std::vector<std::string> DaemonArgs() const { return {"--fast-path", fast_, "--slow-path", slow_}; }

 private:
  static void Run(const std::string& cmd) {
    const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    if (rc != 0) throw std::runtime_error("`" + cmd + "` failed (status " + std::to_string(rc) + ")");
  }

  void MountExt4(const std::string& image, const std::string& mnt, int mib) {
    Run("truncate -s " + std::to_string(mib) + "M '" + image + "'");
    // No lazy init: the kernel thread would write behind the tests' back.
    Run("mkfs.ext4 -q -F -E lazy_itable_init=0,lazy_journal_init=0 '" + image + "'");
    std::filesystem::create_directory(mnt);
    Run("mount -o loop '" + image + "' '" + mnt + "'");
    mounts_.push_back(mnt);
  }

  void Cleanup() noexcept {
    if (base_.empty()) return;
    // Whatever a test left mounted inside the tiers goes first.
    bool clean = UnmountAllUnder(base_);
    if (!clean) {
      std::fprintf(stderr, "tier filesystems: mounts remain under %s; leaving it in place\n", base_.c_str());
      return;
    }
    if (std::getenv("NDOCKER_KEEP_TEST_DIRS") != nullptr) {
      std::fprintf(stderr, "tier filesystems: kept %s (unmounted; ext4.img holds the slow tier)\n",
                   base_.c_str());
      return;
    }
    std::error_code ec;
    std::filesystem::remove_all(base_, ec);
    base_.clear();
  }

  Mode mode_;
  std::string base_, fast_, slow_;
  std::vector<std::string> mounts_;
};

}  // namespace ndocker::daemon_test
