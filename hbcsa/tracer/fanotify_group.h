// One fanotify notification group (RAII) and its event reader.
//
// fanotify groups are a scarce system-wide resource (128 per user by
// default): the daemon owns exactly one and puts one FAN_MARK_FILESYSTEM mark
// per tier filesystem on it. Events carry an open fd (no FAN_REPORT_FID), so
// each is resolved at once (statx, readlink) and the fd closed.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
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
  // readlink(/proc/self/fd/<event fd>): for an open through an overlay from
  // inside the container's mount namespace, the merged-view (rootfs-relative)
  // path; from the host, the path under the overlay's mount point.
  std::string path;
  uint64_t dev = 0;     // of the file that was opened (the real layer file)
  uint64_t ino = 0;
  int64_t size = 0;
  bool regular = false;
  // The mount the event fd refers to. A 64-bit never-reused id when the
  // kernel has STATX_MNT_ID_UNIQUE (≥ 6.8, mnt_id_unique = true), else the
  // reusable id of /proc/self/fdinfo and mountinfo.
  uint64_t mnt_id = 0;
  bool mnt_id_unique = false;
};

struct FanReadStats {
  uint64_t events = 0;      // events read (overflow included)
  uint64_t skipped = 0;     // dropped by the pre-filter (no readlink)
  uint64_t errors = 0;      // an event whose fd could not be resolved
};

class FanotifyGroup {
 public:
  struct Options {
    // FAN_UNLIMITED_QUEUE (needs CAP_SYS_ADMIN): no overflow, kernel memory
    // grows while the reader lags. Off: the queue holds
    // fs.fanotify.max_queued_events (16384) and overflow is reported.
    bool unlimited_queue = false;
  };

  // fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK [| FAN_UNLIMITED_QUEUE],
  //               O_RDONLY | O_LARGEFILE | O_CLOEXEC).
  static absl::StatusOr<FanotifyGroup> Create(const Options& options);
  static absl::StatusOr<FanotifyGroup> Create() { return Create(Options{}); }

  FanotifyGroup(FanotifyGroup&&) = default;
  FanotifyGroup& operator=(FanotifyGroup&&) = default;

  // FAN_MARK_ADD | FAN_MARK_FILESYSTEM on the filesystem holding `path`, e.g.
  // FAN_OPEN | FAN_OPEN_EXEC. Sees every open of that superblock through any
  // mount, overlays built on it included (their private clones of it).
  absl::Status MarkFilesystem(const std::string& path, uint64_t mask);
  absl::Status UnmarkFilesystem(const std::string& path, uint64_t mask);

  // Waits until events are ready or `timeout` passes (also returns when
  // `wake_fd` >= 0 becomes readable). True when the group has events.
  absl::StatusOr<bool> Wait(absl::Duration timeout, int wake_fd = -1) const;

  // Called after statx, before readlink: false drops the event cheaply (e.g.
  // an open through a host mount of a tier). `path` is empty at that point.
  using PreFilter = std::function<bool(const FanEvent&)>;

  // Reads what is queued (non-blocking) and appends resolved events to
  // `out`; every event fd is closed. Returns how many were read; 0 when
  // nothing is queued.
  absl::StatusOr<size_t> Read(std::vector<FanEvent>* out, const PreFilter& keep = nullptr);

  const FanReadStats& stats() const { return stats_; }
  int fd() const { return fd_.get(); }

 private:
  explicit FanotifyGroup(UniqueFd fd) : fd_(std::move(fd)), buf_(64 * 1024) {}
  UniqueFd fd_;
  std::vector<char> buf_;
  FanReadStats stats_;
};

// Reads "mnt_id:" from /proc/self/fdinfo/<fd> (the reusable mount id).
absl::StatusOr<uint64_t> FdInfoMountId(int fd);

}  // namespace ndocker::hbcsa
