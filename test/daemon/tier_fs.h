// Real filesystems for the daemon tests' tiers, and cleaning up after them.
//
// By default (DaemonOptions::tier_fs == TierFs::kSeparate) each DaemonProcess
// puts its tiers on two filesystems of their own, mounted at the daemon's
// default tier paths <root>/fast and <root>/slow:
//   fast: a tmpfs of a fixed size (RAM/PMEM-like), 256 MiB unless a test says;
//   slow: an ext4 image (a sparse file <tmp>/slow-tier.img, mkfs.ext4 -m 0,
//         mounted -o loop; disk-like), 768 MiB unless a test says.
// So every move between the tiers crosses filesystems. TierFs::kSame (or the
// environment NDT_SAME_FS_TIERS=1, or not running as root) keeps both tiers
// as plain dirs on the temp dir's filesystem.
//
// Cleanup: the fixture's destructor unmounts (the loop device goes with the
// ext4 mount: autoclear; any loop device still backed by the image is
// detached) and removes everything. A SIGINT/SIGTERM/SIGHUP/SIGQUIT or a
// crash signal kills every daemon and lazily detaches every mount below every
// live fixture's temp dir (InstallEmergencyCleanup, from main). A run killed
// with SIGKILL (e.g. by ctest's timeout) is reaped by the next run of the
// daemon tests (ReapStaleDaemonDirs) or by test/integration/reap.sh DIR.
#pragma once

#include <dirent.h>
#include <fcntl.h>
#include <linux/loop.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace ndocker::daemon_test {

inline constexpr uint64_t kMiB = uint64_t{1} << 20;

enum class TierFs {
  kSeparate,  // fast on its own tmpfs, slow on its own loop-mounted ext4
  kSame,      // both plain dirs on the temp dir's filesystem
};

inline const char* TierFsName(TierFs t) { return t == TierFs::kSeparate ? "separate" : "same"; }

// ---------------------------------------------------------------------------
// Running a command

struct CommandResult {
  int status = -1;     // wait status
  std::string output;  // stdout and stderr, interleaved
  bool ok() const { return WIFEXITED(status) && WEXITSTATUS(status) == 0; }
  int exit_code() const { return WIFEXITED(status) ? WEXITSTATUS(status) : -1; }
};

// Runs argv[0] (looked up in PATH) with stdin from /dev/null; no shell.
inline CommandResult RunCommand(const std::vector<std::string>& argv) {
  CommandResult r;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
  std::vector<std::string> args = argv;
  std::vector<char*> cargv;
  for (std::string& a : args) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  int null_fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  pid_t pid = ::fork();
  if (pid < 0) {
    ::close(fds[0]);
    ::close(fds[1]);
    if (null_fd >= 0) ::close(null_fd);
    throw std::runtime_error("fork failed");
  }
  if (pid == 0) {
    if (null_fd >= 0) ::dup2(null_fd, 0);
    ::dup2(fds[1], 1);
    ::dup2(fds[1], 2);
    ::signal(SIGPIPE, SIG_DFL);
    ::execvp(cargv[0], cargv.data());
    ::_exit(127);
  }
  ::close(fds[1]);
  if (null_fd >= 0) ::close(null_fd);
  char buf[4096];
  while (true) {
    ssize_t n = ::read(fds[0], buf, sizeof(buf));
    if (n > 0) {
      r.output.append(buf, static_cast<size_t>(n));
    } else if (n < 0 && errno == EINTR) {
      continue;
    } else {
      break;
    }
  }
  ::close(fds[0]);
  while (::waitpid(pid, &r.status, 0) < 0 && errno == EINTR) {
  }
  return r;
}

inline std::string JoinArgs(const std::vector<std::string>& argv) {
  std::string s;
  for (const std::string& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

inline void RunOrThrow(const std::vector<std::string>& argv) {
  CommandResult r = RunCommand(argv);
  if (!r.ok()) {
    throw std::runtime_error(JoinArgs(argv) + " failed (status " + std::to_string(r.status) + "): " + r.output);
  }
}

// ---------------------------------------------------------------------------
// Filesystem facts

// "tmpfs", "ext4" (ext2/3/4 share a magic), "overlay", or the magic in hex.
inline std::string FsTypeOf(const std::string& path) {
  struct statfs s;
  if (::statfs(path.c_str(), &s) != 0) return std::string("statfs failed: ") + std::strerror(errno);
  switch (static_cast<unsigned long>(s.f_type)) {
    case 0x01021994UL: return "tmpfs";
    case 0xEF53UL: return "ext4";
    case 0x794c7630UL: return "overlay";
    case 0x9123683EUL: return "btrfs";
    case 0x58465342UL: return "xfs";
    default: {
      char hex[32];
      std::snprintf(hex, sizeof(hex), "0x%lx", static_cast<unsigned long>(s.f_type));
      return hex;
    }
  }
}

inline dev_t DeviceOf(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) throw std::runtime_error("stat " + path + ": " + std::strerror(errno));
  return st.st_dev;
}

// Free bytes on the filesystem of path (reserved blocks included: the daemon runs as root).
inline uint64_t FreeBytes(const std::string& path) {
  struct statfs s;
  if (::statfs(path.c_str(), &s) != 0) throw std::runtime_error("statfs " + path + ": " + std::strerror(errno));
  return static_cast<uint64_t>(s.f_bfree) * static_cast<uint64_t>(s.f_bsize);
}

inline uint64_t TotalBytes(const std::string& path) {
  struct statfs s;
  if (::statfs(path.c_str(), &s) != 0) throw std::runtime_error("statfs " + path + ": " + std::strerror(errno));
  return static_cast<uint64_t>(s.f_blocks) * static_cast<uint64_t>(s.f_bsize);
}

// /dev/loopN devices whose backing file is `image` (also when it was deleted).
inline std::vector<std::string> LoopDevicesOf(const std::string& image) {
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator("/sys/block", ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("loop", 0) != 0) continue;
    std::ifstream in(e.path() / "loop" / "backing_file");
    std::string backing;
    if (!std::getline(in, backing)) continue;
    if (backing == image || backing == image + " (deleted)") out.push_back("/dev/" + name);
  }
  return out;
}

// LOOP_CLR_FD on every loop device still backed by `image`. True when none is left.
inline bool DetachLoopDevicesOf(const std::string& image) {
  for (const std::string& dev : LoopDevicesOf(image)) {
    int fd = ::open(dev.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) continue;
    ::ioctl(fd, LOOP_CLR_FD, 0);
    ::close(fd);
  }
  return LoopDevicesOf(image).empty();
}

// ---------------------------------------------------------------------------
// Making the tier filesystems

inline void MountTmpfs(const std::string& dir, uint64_t bytes) {
  std::filesystem::create_directories(dir);
  const std::string opts = "size=" + std::to_string(bytes) + ",mode=0700";
  if (::mount("tmpfs", dir.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    throw std::runtime_error("mount -t tmpfs -o " + opts + " " + dir + ": " + std::strerror(errno));
  }
}

// A sparse file of `bytes`, mkfs.ext4 (no reserved blocks, so that free
// space is what a root daemon can use), mounted -o loop (autoclear) on dir.
inline void MountExt4Image(const std::string& image, const std::string& dir, uint64_t bytes) {
  std::filesystem::create_directories(dir);
  {
    int fd = ::open(image.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) throw std::runtime_error("create " + image + ": " + std::strerror(errno));
    const int rc = ::ftruncate(fd, static_cast<off_t>(bytes));
    const int err = errno;
    ::close(fd);
    if (rc != 0) throw std::runtime_error("truncate " + image + ": " + std::strerror(err));
  }
  RunOrThrow({"mkfs.ext4", "-q", "-F", "-m", "0", "-L", "ndt-slow", image});
  RunOrThrow({"mount", "-t", "ext4", "-o", "loop", image, dir});
  if (::chmod(dir.c_str(), 0700) != 0) throw std::runtime_error("chmod " + dir + ": " + std::strerror(errno));
}

// ---------------------------------------------------------------------------
// Mount points

inline std::string DecodeMountinfoPath(const std::string& mp) {
  std::string decoded;
  for (size_t i = 0; i < mp.size(); ++i) {
    if (mp[i] == '\\' && i + 3 < mp.size()) {
      decoded += static_cast<char>(std::stoi(mp.substr(i + 1, 3), nullptr, 8));
      i += 3;
    } else {
      decoded += mp[i];
    }
  }
  return decoded;
}

// Mount points at or below `prefix` in this mount namespace (decoded).
inline std::vector<std::string> MountPointsUnder(const std::string& prefix) {
  std::vector<std::string> out;
  std::ifstream in("/proc/self/mountinfo");
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string id, parent, devno, root, mp;
    fields >> id >> parent >> devno >> root >> mp;
    const std::string decoded = DecodeMountinfoPath(mp);
    if (decoded == prefix || decoded.rfind(prefix + "/", 0) == 0) out.push_back(decoded);
  }
  return out;
}

// Unmounts every mount at or below `prefix`, deepest first: a plain umount
// (synchronous: a loop device with autoclear is free afterwards), detached
// lazily only when busy. True when none is left.
inline bool UnmountAllUnder(const std::string& prefix) {
  for (int round = 0; round < 8; ++round) {
    std::vector<std::string> mps = MountPointsUnder(prefix);
    if (mps.empty()) return true;
    std::sort(mps.begin(), mps.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const std::string& mp : mps) {
      if (::umount2(mp.c_str(), 0) != 0 && errno != EINVAL && errno != ENOENT) {
        ::umount2(mp.c_str(), MNT_DETACH);
      }
    }
  }
  return MountPointsUnder(prefix).empty();
}

// remove_all, after clearing immutable/append-only flags (a test may leave a
// `chattr +i` file) when the first attempt fails.
inline bool RemoveTree(const std::string& dir) {
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  if (!ec && !std::filesystem::exists(std::filesystem::symlink_status(dir))) return true;
  (void)RunCommand({"chattr", "-R", "-f", "-i", "-a", dir});
  ec.clear();
  std::filesystem::remove_all(dir, ec);
  return !ec && !std::filesystem::exists(std::filesystem::symlink_status(dir));
}

// ---------------------------------------------------------------------------
// Cleanup on signals (no destructor runs then)

struct EmergencySlot {
  std::atomic<bool> used{false};
  std::atomic<pid_t> daemon{-1};
  char base[512] = {};
};
inline EmergencySlot g_emergency_slots[64];

// Registers a fixture's temp dir; returns the slot (or -1 when full).
inline int EmergencyRegister(const std::string& base) {
  if (base.size() + 1 > sizeof(EmergencySlot::base)) return -1;
  for (int i = 0; i < 64; ++i) {
    EmergencySlot& s = g_emergency_slots[i];
    if (s.used.load()) continue;
    std::memset(s.base, 0, sizeof(s.base));
    std::memcpy(s.base, base.data(), base.size());
    s.daemon.store(-1);
    s.used.store(true);
    return i;
  }
  return -1;
}
inline void EmergencySetDaemon(int slot, pid_t pid) {
  if (slot >= 0) g_emergency_slots[slot].daemon.store(pid);
}
inline void EmergencyRelease(int slot) {
  if (slot >= 0) g_emergency_slots[slot].used.store(false);
}

// Async-signal-safe: reads mountinfo with read(2) into a static buffer and
// detaches (MNT_DETACH) every mount point below `base`, longest path first.
inline void EmergencyDetachUnder(const char* base) {
  static char buf[1 << 20];
  static const char* mps[512];
  static size_t lens[512];
  static char paths[512][600];
  const size_t blen = std::strlen(base);
  for (int round = 0; round < 4; ++round) {
    int fd = ::open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    size_t used = 0;
    while (used < sizeof(buf) - 1) {
      ssize_t n = ::read(fd, buf + used, sizeof(buf) - 1 - used);
      if (n <= 0) break;
      used += static_cast<size_t>(n);
    }
    ::close(fd);
    buf[used] = '\0';
    size_t count = 0;
    char* line = buf;
    while (*line != '\0' && count < 512) {
      char* end = std::strchr(line, '\n');
      if (end != nullptr) *end = '\0';
      // field 5 (1-based) is the mount point
      char* p = line;
      for (int f = 0; f < 4 && p != nullptr; ++f) {
        p = std::strchr(p, ' ');
        if (p != nullptr) ++p;
      }
      if (p != nullptr) {
        char* q = std::strchr(p, ' ');
        size_t len = q != nullptr ? static_cast<size_t>(q - p) : std::strlen(p);
        if (len < sizeof(paths[0]) && len >= blen && std::strncmp(p, base, blen) == 0 &&
            (len == blen || p[blen] == '/')) {
          std::memcpy(paths[count], p, len);
          paths[count][len] = '\0';
          mps[count] = paths[count];
          lens[count] = len;
          ++count;
        }
      }
      if (end == nullptr) break;
      line = end + 1;
    }
    if (count == 0) return;
    // longest first (insertion sort: no allocation)
    for (size_t i = 1; i < count; ++i) {
      for (size_t j = i; j > 0 && lens[j] > lens[j - 1]; --j) {
        std::swap(lens[j], lens[j - 1]);
        std::swap(mps[j], mps[j - 1]);
      }
    }
    for (size_t i = 0; i < count; ++i) ::umount2(mps[i], MNT_DETACH);
  }
}

inline void EmergencyHandler(int sig) {
  for (EmergencySlot& s : g_emergency_slots) {
    if (!s.used.load()) continue;
    const pid_t pid = s.daemon.load();
    if (pid > 0) ::kill(pid, SIGKILL);
  }
  for (EmergencySlot& s : g_emergency_slots) {
    if (s.used.load()) EmergencyDetachUnder(s.base);
  }
  const char msg[] = "daemon tests: signal caught; daemons killed, mounts detached (temp dirs are reaped by the next run)\n";
  (void)!::write(2, msg, sizeof(msg) - 1);
  ::signal(sig, SIG_DFL);
  ::raise(sig);
}

// The parent dir of the fixtures' temp dirs.
inline std::string DaemonTestTmpParent() {
  const char* tmp = std::getenv("TMPDIR");
  return tmp != nullptr && *tmp != '\0' ? tmp : "/tmp";
}

// "<pid> <starttime>" of a live process (starttime from /proc/<pid>/stat),
// or "" (none, or a zombie).
inline std::string ProcessIdentity(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return "";
  const size_t close = stat.rfind(')');
  if (close == std::string::npos) return "";
  std::istringstream rest(stat.substr(close + 2));
  std::string field;
  if (stat.compare(close + 2, 1, "Z") == 0) return "";  // a zombie is gone
  // fields after the comm: state(3) ... starttime(22)
  for (int i = 3; i <= 22; ++i) {
    if (!(rest >> field)) return "";
  }
  return std::to_string(pid) + " " + field;
}

inline constexpr char kOwnerFile[] = ".ndocker-daemon-test-owner";

// Cleans up after fixtures of test processes that died without cleaning up
// (their temp dir holds kOwnerFile naming a process that no longer exists).
inline void ReapStaleDaemonDirs() {
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(DaemonTestTmpParent(), ec)) {
    const std::string dir = e.path().string();
    if (e.path().filename().string().rfind("ndocker-daemon-", 0) != 0) continue;
    std::ifstream in(dir + "/" + kOwnerFile);
    std::string owner;
    if (!std::getline(in, owner)) continue;  // not ours (or an older fixture)
    const pid_t pid = static_cast<pid_t>(std::atol(owner.c_str()));
    if (pid > 0 && ProcessIdentity(pid) == owner) continue;  // still running
    std::fprintf(stderr, "daemon tests: reaping %s (left by pid %d)\n", dir.c_str(), pid);
    if (!UnmountAllUnder(dir)) {
      std::fprintf(stderr, "daemon tests: mounts remain under %s; leaving it\n", dir.c_str());
      continue;
    }
    DetachLoopDevicesOf(dir + "/slow-tier.img");
    RemoveTree(dir);
  }
}

// Call once from main, before the tests run (Catch restores the handlers it
// finds when it installs its own, so these must come first).
inline void InstallEmergencyCleanup() {
  ReapStaleDaemonDirs();
  struct sigaction sa {};
  sa.sa_handler = EmergencyHandler;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;
  for (int sig : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGSEGV, SIGABRT, SIGBUS, SIGFPE, SIGILL}) {
    ::sigaction(sig, &sa, nullptr);
  }
}

}  // namespace ndocker::daemon_test
