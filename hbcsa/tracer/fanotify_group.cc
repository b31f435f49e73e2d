#include "hbcsa/tracer/fanotify_group.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "snapshotter/errno_status.h"

#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

namespace ndocker::hbcsa {

absl::StatusOr<FanotifyGroup> FanotifyGroup::Create(const Options& options) {
  unsigned flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK;
  if (options.unlimited_queue) flags |= FAN_UNLIMITED_QUEUE;
  const int fd = ::fanotify_init(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus("fanotify_init");
  return FanotifyGroup(UniqueFd(fd));
}

absl::Status FanotifyGroup::MarkFilesystem(const std::string& path, uint64_t mask) {
  if (::fanotify_mark(fd_.get(), FAN_MARK_ADD | FAN_MARK_FILESYSTEM, mask, AT_FDCWD,
                      path.c_str()) != 0) {
    return LastErrnoStatus("fanotify_mark(FAN_MARK_FILESYSTEM)", path);
  }
  return absl::OkStatus();
}

absl::Status FanotifyGroup::UnmarkFilesystem(const std::string& path, uint64_t mask) {
  if (::fanotify_mark(fd_.get(), FAN_MARK_REMOVE | FAN_MARK_FILESYSTEM, mask, AT_FDCWD,
                      path.c_str()) != 0) {
    return LastErrnoStatus("fanotify_mark(FAN_MARK_REMOVE)", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> FanotifyGroup::Wait(absl::Duration timeout, int wake_fd) const {
  pollfd fds[2] = {{fd_.get(), POLLIN, 0}, {wake_fd, POLLIN, 0}};
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  const int n = ::poll(fds, wake_fd >= 0 ? 2 : 1, ms < 0 ? 0 : ms);
  if (n < 0) {
    if (errno == EINTR) return false;
    return LastErrnoStatus("poll(fanotify)");
  }
  return (fds[0].revents & POLLIN) != 0;
}

namespace {

// Fills dev, ino, size, regular and mnt_id from one statx of the event fd.
absl::Status StatEventFd(int fd, FanEvent* ev) {
  struct statx stx;
  if (::statx(fd, "", AT_EMPTY_PATH, STATX_TYPE | STATX_INO | STATX_SIZE | STATX_MNT_ID_UNIQUE,
              &stx) != 0) {
    return LastErrnoStatus("statx(event fd)");
  }
  ev->dev = makedev(stx.stx_dev_major, stx.stx_dev_minor);
  ev->ino = stx.stx_ino;
  ev->size = static_cast<int64_t>(stx.stx_size);
  ev->regular = S_ISREG(stx.stx_mode);
  if (stx.stx_mask & STATX_MNT_ID_UNIQUE) {
    ev->mnt_id = stx.stx_mnt_id;
    ev->mnt_id_unique = true;
  } else if (stx.stx_mask & STATX_MNT_ID) {
    ev->mnt_id = stx.stx_mnt_id;
  } else {
    absl::StatusOr<uint64_t> id = FdInfoMountId(fd);
    if (!id.ok()) return id.status();
    ev->mnt_id = *id;
  }
  return absl::OkStatus();
}

absl::Status ReadLinkFd(int fd, std::string* out) {
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  char buf[4096];
  const ssize_t n = ::readlink(proc, buf, sizeof buf);
  if (n < 0) return LastErrnoStatus("readlink(event fd)");
  if (static_cast<size_t>(n) == sizeof buf) return absl::OutOfRangeError("event path too long");
  out->assign(buf, static_cast<size_t>(n));
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<uint64_t> FdInfoMountId(int fd) {
  char proc[64];
  std::snprintf(proc, sizeof proc, "/proc/self/fdinfo/%d", fd);
  UniqueFd info(::open(proc, O_RDONLY | O_CLOEXEC));
  if (!info.valid()) return LastErrnoStatus("open(fdinfo)");
  char buf[512];
  const ssize_t n = ::read(info.get(), buf, sizeof buf - 1);
  if (n < 0) return LastErrnoStatus("read(fdinfo)");
  const absl::string_view text(buf, static_cast<size_t>(n));
  const size_t at = text.find("mnt_id:");
  if (at == absl::string_view::npos) return absl::InternalError("fdinfo has no mnt_id");
  absl::string_view rest = text.substr(at + 7);
  rest = rest.substr(0, rest.find('\n'));
  uint64_t id = 0;
  if (!absl::SimpleAtoi(rest, &id)) return absl::InternalError("fdinfo mnt_id is not a number");
  return id;
}

absl::StatusOr<size_t> FanotifyGroup::Read(std::vector<FanEvent>* out, const PreFilter& keep) {
  const ssize_t len = ::read(fd_.get(), buf_.data(), buf_.size());
  if (len < 0) {
    if (errno == EAGAIN || errno == EINTR) return size_t{0};
    return LastErrnoStatus("read(fanotify)");
  }
  size_t count = 0;
  ssize_t left = len;
  for (auto* md = reinterpret_cast<fanotify_event_metadata*>(buf_.data()); FAN_EVENT_OK(md, left);
       md = FAN_EVENT_NEXT(md, left)) {
    if (md->vers != FANOTIFY_METADATA_VERSION) {
      return absl::InternalError(absl::StrCat("fanotify metadata version ", md->vers));
    }
    ++count;
    ++stats_.events;
    if (md->mask & FAN_Q_OVERFLOW) {
      FanEvent ev;
      ev.overflow = true;
      out->push_back(std::move(ev));
      if (md->fd >= 0) ::close(md->fd);
      continue;
    }
    if (md->fd < 0) {  // FAN_NOFD without overflow: nothing to resolve
      ++stats_.errors;
      continue;
    }
    UniqueFd efd(md->fd);
    FanEvent ev;
    ev.pid = md->pid;
    ev.mask = md->mask;
    if (absl::Status st = StatEventFd(efd.get(), &ev); !st.ok()) {
      ++stats_.errors;
      continue;
    }
    if (keep && !keep(ev)) {
      ++stats_.skipped;
      continue;
    }
    if (absl::Status st = ReadLinkFd(efd.get(), &ev.path); !st.ok()) {
      ++stats_.errors;
      continue;
    }
    out->push_back(std::move(ev));
  }
  return count;
}

}  // namespace ndocker::hbcsa
