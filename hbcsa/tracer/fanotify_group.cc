#include "hbcsa/tracer/fanotify_group.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/fanotify.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <iterator>

#include "absl/strings/str_cat.h"
#include "snapshotter/errno_status.h"

namespace ndocker::hbcsa {

namespace {

uint64_t PackFsid(const int32_t val[2]) {
  return static_cast<uint64_t>(static_cast<uint32_t>(val[0])) |
         (static_cast<uint64_t>(static_cast<uint32_t>(val[1])) << 32);
}

// Fills fsid, dir_handle and name from the DFID_NAME record of the event at
// `event` (records are not 8-byte aligned: a name's length decides where the
// next event starts, so everything is copied out, never cast in place).
bool ParseInfo(const char* event, const fanotify_event_metadata& md, FanEvent* ev) {
  const char* p = event + md.metadata_len;
  const char* end = event + md.event_len;
  while (p + sizeof(fanotify_event_info_header) <= end) {
    fanotify_event_info_header hdr;
    std::memcpy(&hdr, p, sizeof hdr);
    if (hdr.len < sizeof hdr || p + hdr.len > end) return false;
    if (hdr.info_type == FAN_EVENT_INFO_TYPE_DFID_NAME) {
      fanotify_event_info_fid fid;
      if (hdr.len < sizeof fid + sizeof(file_handle)) return false;
      std::memcpy(&fid, p, sizeof fid);
      ev->fsid = PackFsid(fid.fsid.val);
      const char* fh = p + sizeof fid;
      file_handle head;
      std::memcpy(&head, fh, sizeof head);
      const size_t handle_len = sizeof head + head.handle_bytes;
      if (sizeof fid + handle_len >= hdr.len) return false;
      ev->dir_handle.assign(fh, handle_len);
      const char* name = fh + handle_len;
      ev->name.assign(name, strnlen(name, static_cast<size_t>(p + hdr.len - name)));
      return !ev->name.empty();
    }
    p += hdr.len;
  }
  return false;
}

}  // namespace

absl::StatusOr<FanotifyGroup> FanotifyGroup::Create(const Options& options) {
  unsigned flags = FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK | FAN_REPORT_DFID_NAME;
  if (options.unlimited_queue) flags |= FAN_UNLIMITED_QUEUE;
  const int fd = ::fanotify_init(flags, O_RDONLY | O_LARGEFILE | O_CLOEXEC);
  if (fd < 0) return LastErrnoStatus("fanotify_init(FAN_REPORT_DFID_NAME)");
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

absl::Status FanotifyGroup::IgnoreMount(const std::string& path, uint64_t mask) {
  // SURV_MODIFY: an ignore mask is otherwise cleared by the first write.
  if (::fanotify_mark(fd_.get(),
                      FAN_MARK_ADD | FAN_MARK_MOUNT | FAN_MARK_IGNORED_MASK |
                          FAN_MARK_IGNORED_SURV_MODIFY,
                      mask, AT_FDCWD, path.c_str()) != 0) {
    return LastErrnoStatus("fanotify_mark(FAN_MARK_MOUNT ignore)", path);
  }
  return absl::OkStatus();
}

absl::StatusOr<bool> FanotifyGroup::Wait(absl::Duration timeout, std::initializer_list<int> other_fds) const {
  pollfd fds[4] = {{fd_.get(), POLLIN, 0}, {}, {}, {}};
  nfds_t count = 1;
  for (int fd : other_fds) {
    if (fd >= 0 && count < std::size(fds)) fds[count++] = pollfd{fd, POLLIN, 0};
  }
  const int ms = static_cast<int>(absl::ToInt64Milliseconds(timeout));
  const int n = ::poll(fds, count, ms < 0 ? 0 : ms);
  if (n < 0) {
    if (errno == EINTR) return false;
    return LastErrnoStatus("poll(fanotify)");
  }
  return (fds[0].revents & POLLIN) != 0;
}

absl::StatusOr<size_t> FanotifyGroup::Read(std::vector<FanEvent>* out) {
  const ssize_t len = ::read(fd_.get(), buf_.data(), buf_.size());
  if (len < 0) {
    if (errno == EAGAIN || errno == EINTR) return size_t{0};
    return LastErrnoStatus("read(fanotify)");
  }
  size_t count = 0;
  const size_t total = static_cast<size_t>(len);
  for (size_t off = 0; off + sizeof(fanotify_event_metadata) <= total;) {
    fanotify_event_metadata md;
    std::memcpy(&md, buf_.data() + off, sizeof md);
    if (md.event_len < sizeof md || off + md.event_len > total) break;
    if (md.vers != FANOTIFY_METADATA_VERSION) {
      return absl::InternalError(absl::StrCat("fanotify metadata version ", md.vers));
    }
    const char* event = buf_.data() + off;
    off += md.event_len;
    ++count;
    ++stats_.events;
    FanEvent ev;
    if (md.mask & FAN_Q_OVERFLOW) {
      ev.overflow = true;
      out->push_back(std::move(ev));
      continue;
    }
    ev.pid = md.pid;
    ev.mask = md.mask;
    if (!ParseInfo(event, md, &ev)) {
      ++stats_.malformed;
      continue;
    }
    out->push_back(std::move(ev));
  }
  return count;
}

absl::StatusOr<uint64_t> FilesystemId(const std::string& path) {
  struct statfs sfs;
  if (::statfs(path.c_str(), &sfs) != 0) return LastErrnoStatus("statfs", path);
  int32_t val[2];
  std::memcpy(val, &sfs.f_fsid, sizeof val);
  return PackFsid(val);
}

}  // namespace ndocker::hbcsa
