// One fanotify notification group (RAII) and its event reader.
//
// fanotify groups are a scarce system-wide resource (128 per user by
// default): the daemon owns exactly one and puts one FAN_MARK_FILESYSTEM mark
// per tier filesystem on it.
//
// The group reports file handles (FAN_REPORT_DFID_NAME), never open fds: an
// fd-reporting event holds a reference to the mount it came through from the
// moment it is queued until the reader closes the fd, so a plain umount of a
// bind mount of a snapshot (a view, a scratch layer) could fail with EBUSY
// whenever a read happened just before it. A handle pins nothing; the
// event names the real (lower) file's parent directory and its name, which
// is also what says which layer served the open.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {

struct FanEvent {
  bool overflow = false;  // FAN_Q_OVERFLOW: events were lost; nothing else is set
  int32_t pid = 0;
  uint64_t mask = 0;
  uint64_t fsid = 0;       // of the filesystem the file is on (the tier's)
  std::string dir_handle;  // handle_type + f_handle of the parent directory
  std::string name;        // the file's name in that directory
};

struct FanReadStats {
  uint64_t events = 0;     // events read (overflow included)
  uint64_t malformed = 0;  // an event without a parent directory and name
};

class FanotifyGroup {
 public:
  struct Options {
    // FAN_UNLIMITED_QUEUE (needs CAP_SYS_ADMIN): no overflow, kernel memory
    // grows while the reader lags. Off: the queue holds
    // fs.fanotify.max_queued_events (16384) and overflow is reported.
    bool unlimited_queue = false;
  };

  // fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK |
  //               FAN_REPORT_DFID_NAME [| FAN_UNLIMITED_QUEUE], O_RDONLY).
  static absl::StatusOr<FanotifyGroup> Create(const Options& options);
  static absl::StatusOr<FanotifyGroup> Create() { return Create(Options{}); }

  FanotifyGroup(FanotifyGroup&&) = default;
  FanotifyGroup& operator=(FanotifyGroup&&) = default;

  // FAN_MARK_ADD | FAN_MARK_FILESYSTEM on the filesystem holding `path`, e.g.
  // FAN_OPEN | FAN_OPEN_EXEC. Sees every open of that superblock through any
  // mount, overlays built on it included (their private clones of it).
  absl::Status MarkFilesystem(const std::string& path, uint64_t mask);
  absl::Status UnmarkFilesystem(const std::string& path, uint64_t mask);
  // An ignore mask on the mount holding `path`: opens made through that very
  // mount (a host process reading a tier directly) are dropped by the kernel.
  // Overlays use private clones of their layers' mounts, so opens through
  // them still come.
  absl::Status IgnoreMount(const std::string& path, uint64_t mask);

  // Waits until events are ready or `timeout` passes (also returns when
  // one of `other_fds` (>= 0) becomes readable). True when the group has events.
  absl::StatusOr<bool> Wait(absl::Duration timeout, std::initializer_list<int> other_fds = {}) const;

  // Reads what is queued (non-blocking) and appends the events to `out`.
  // Returns how many were read; 0 when nothing is queued.
  absl::StatusOr<size_t> Read(std::vector<FanEvent>* out);

  const FanReadStats& stats() const { return stats_; }
  int fd() const { return fd_.get(); }

 private:
  explicit FanotifyGroup(UniqueFd fd) : fd_(std::move(fd)), buf_(64 * 1024) {}
  UniqueFd fd_;
  std::vector<char> buf_;
  FanReadStats stats_;
};

// The fsid fanotify reports for the filesystem holding `path` (statfs).
absl::StatusOr<uint64_t> FilesystemId(const std::string& path);

}  // namespace ndocker::hbcsa
