#include "snapshotter/mount_linux.h"

#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "snapshotter/errno_status.h"

namespace ndocker {
namespace {

struct Flags {
  unsigned long flags = 0;
  std::vector<std::string> data;
};

// Splits fstab-style options into mount(2) flags and filesystem data.
Flags ParseOptions(const std::vector<std::string>& options) {
  Flags f;
  for (const std::string& o : options) {
    if (o == "ro") f.flags |= MS_RDONLY;
    else if (o == "rw") f.flags &= ~static_cast<unsigned long>(MS_RDONLY);
    else if (o == "bind") f.flags |= MS_BIND;
    else if (o == "rbind") f.flags |= MS_BIND | MS_REC;
    else if (o == "nosuid") f.flags |= MS_NOSUID;
    else if (o == "nodev") f.flags |= MS_NODEV;
    else if (o == "noexec") f.flags |= MS_NOEXEC;
    else f.data.push_back(o);
  }
  return f;
}

std::string CommonDir(const std::vector<std::string>& paths) {
  if (paths.empty()) return "";
  std::string prefix = paths[0];
  for (const std::string& p : paths) {
    size_t i = 0;
    while (i < prefix.size() && i < p.size() && prefix[i] == p[i]) ++i;
    prefix.resize(i);
  }
  size_t slash = prefix.rfind('/');
  if (slash == std::string::npos || slash == 0) return "";
  return prefix.substr(0, slash);
}

}  // namespace

CompactedOptions CompactLowerdirs(const std::vector<std::string>& options, size_t page_size) {
  CompactedOptions out{"", options};
  if (absl::StrJoin(options, ",").size() < page_size - 512) return out;
  for (std::string& o : out.options) {
    if (!absl::StartsWith(o, "lowerdir=")) continue;
    std::vector<std::string> dirs = absl::StrSplit(o.substr(9), ':');
    std::string common = CommonDir(dirs);
    if (common.empty()) return {"", options};
    for (std::string& d : dirs) d = d.substr(common.size() + 1);
    o = absl::StrCat("lowerdir=", absl::StrJoin(dirs, ":"));
    out.dir = common;
  }
  return out;
}

absl::Status MountAll(const std::vector<Mount>& mounts, const std::string& target) {
  for (const Mount& m : mounts) {
    CompactedOptions c = CompactLowerdirs(m.options, static_cast<size_t>(::getpagesize()));
    Flags f = ParseOptions(c.options);
    const std::string data = absl::StrJoin(f.data, ",");
    const bool bind = (f.flags & MS_BIND) != 0;
    const char* type = bind ? nullptr : m.type.c_str();
    const unsigned long first = bind ? f.flags & ~static_cast<unsigned long>(MS_RDONLY) : f.flags;
    if (c.dir.empty()) {
      if (::mount(m.source.c_str(), target.c_str(), type, first, data.c_str()) != 0) {
        return LastErrnoStatus(absl::StrCat("mount ", m.type), target);
      }
    } else {
      // chdir is process-wide: do it in a child that only mounts and exits.
      pid_t pid = ::fork();
      if (pid < 0) return LastErrnoStatus("fork");
      if (pid == 0) {
        if (::chdir(c.dir.c_str()) != 0) ::_exit(100);
        ::_exit(::mount(m.source.c_str(), target.c_str(), type, first, data.c_str()) == 0 ? 0 : errno);
      }
      int wstatus = 0;
      if (::waitpid(pid, &wstatus, 0) != pid) return LastErrnoStatus("waitpid");
      if (!WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0) {
        return ErrnoStatus(WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : EIO,
                           absl::StrCat("mount ", m.type, " (compacted lowerdir)"), target);
      }
    }
    // A read-only bind takes a remount (the kernel ignores MS_RDONLY on bind).
    if (bind && (f.flags & MS_RDONLY) != 0 &&
        ::mount(nullptr, target.c_str(), nullptr, f.flags | MS_REMOUNT, nullptr) != 0) {
      absl::Status st = LastErrnoStatus("remount ro", target);
      ::umount2(target.c_str(), MNT_DETACH);
      return st;
    }
  }
  return absl::OkStatus();
}

absl::Status Unmount(const std::string& target, bool lazy) {
  if (::umount2(target.c_str(), 0) == 0) return absl::OkStatus();
  if (lazy && errno == EBUSY && ::umount2(target.c_str(), MNT_DETACH) == 0) return absl::OkStatus();
  return LastErrnoStatus("umount", target);
}

}  // namespace ndocker
