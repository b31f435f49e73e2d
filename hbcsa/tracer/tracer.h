// The daemon's cold-start tracer: ONE fanotify group, one FAN_MARK_FILESYSTEM
// mark (FAN_OPEN | FAN_OPEN_EXEC) per tier filesystem placed at start-up,
// before any container exists, so no container's first exec can be missed
// (DESIGN.md §6). Events through an overlay carry the merged-view path and
// the real layer file's (dev, ino); the opener's cgroup names the container.
//
// Threads: an event thread drains the group and feeds the TraceAssembler; a
// finisher thread attributes each ended trace to layers (file look-ups in the
// chain's fs dirs) and hands it to the TraceSink. A tracer failure is logged;
// it never fails a Prepare, a Mount or a container start.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hbcsa/tracer/fanotify_group.h"
#include "hbcsa/tracer/trace_assembler.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::hbcsa {

class TraceSink {
 public:
  virtual ~TraceSink() = default;
  // A finished trace, files attributed to layers (snapshot ids of `chain`).
  // Called on the tracer's finisher thread.
  virtual void OnTrace(const Trace& trace, const RootfsChain& chain) = 0;
};

struct TracerOptions {
  AssemblerOptions assembler;
  uint64_t mask = 0;  // 0: FAN_OPEN | FAN_OPEN_EXEC
  bool unlimited_queue = false;
  absl::Duration tick = absl::Milliseconds(200);
};

struct TracerStats {
  FanReadStats read;
  AssemblerStats assembler;
  uint64_t traces = 0;
  absl::Duration loop_cpu;      // event thread, all events (host noise included)
  absl::Duration finisher_cpu;  // layer attribution
};

// Container id from a cgroup path: its last component, without a
// "cri-containerd-" / "docker-" prefix and a ".scope" suffix.
std::string ContainerIdFromCgroupPath(const std::string& cgroup_path);
// The cgroup path of a process from /proc/<pid>/cgroup text: the v2 line
// ("0::") when not "/", else the first named v1 hierarchy that is not "/".
std::optional<std::string> CgroupPathFromProcText(const std::string& text);

// The real look-ups: /proc/<pid>/cgroup, mountinfo (host mounts of the tier
// devices, rootfs mount points of watched containers found by upperdir).
class ProcLookup : public TraceLookup {
 public:
  explicit ProcLookup(std::vector<uint64_t> tier_devs) : tier_devs_(std::move(tier_devs)) {}
  bool IsHostMount(uint64_t mnt_id) override;
  std::optional<std::string> ContainerOfPid(int32_t pid) override;
  std::optional<std::pair<std::string, std::string>> ContainerOfHostPath(
      const std::string& path) override;

  std::vector<std::string> ContainersServing(const TraceEvent& event) override;

  void Watch(const std::string& container, const RootfsChain& chain);
  void Forget(const std::string& container);

 private:
  void Rescan();
  std::vector<uint64_t> tier_devs_;
  std::unordered_map<uint64_t, bool> host_;  // mount id -> is a host mount
  std::unordered_set<uint64_t> host_ids_;    // from the last scan
  absl::Time last_scan_ = absl::InfinitePast();
  std::map<std::string, RootfsChain> chain_of_;     // container -> its rootfs chain
  std::map<std::string, std::string> mountpoint_;   // container -> rootfs mount point
};

class Tracer {
 public:
  // Marks the filesystem of each tier root and starts the threads.
  // `lookup` null: ProcLookup on the tiers' devices.
  static absl::StatusOr<std::unique_ptr<Tracer>> Start(const std::vector<std::string>& tier_roots,
                                                       const TracerOptions& options,
                                                       TraceSink* sink);
  ~Tracer();  // ends open traces (kShutdown) and delivers them

  // A container rootfs was prepared (before it is mounted). `container` is
  // the container id (the last component of the snapshot key).
  void WatchContainer(const std::string& container, RootfsChain chain);
  // The container exited or its rootfs snapshot is removed.
  void ContainerGone(const std::string& container);

  TracerStats stats();

 private:
  Tracer(FanotifyGroup group, const TracerOptions& options, TraceSink* sink,
         std::vector<uint64_t> tier_devs);
  void Loop();
  void FinishLoop();
  void Hand(std::vector<Trace> traces);

  FanotifyGroup group_;
  TracerOptions options_;
  TraceSink* sink_;
  UniqueFd wake_;  // eventfd
  std::atomic<bool> stop_{false};

  absl::Mutex mu_;
  ProcLookup lookup_ ABSL_GUARDED_BY(mu_);
  TraceAssembler assembler_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RootfsChain> chains_ ABSL_GUARDED_BY(mu_);
  TracerStats stats_ ABSL_GUARDED_BY(mu_);
  std::deque<std::pair<Trace, RootfsChain>> finished_ ABSL_GUARDED_BY(mu_);
  bool finisher_stop_ ABSL_GUARDED_BY(mu_) = false;

  std::thread loop_;
  std::thread finisher_;
};

// (dev, ino) of dir/rel, resolved beneath dir without following symlinks.
std::optional<std::pair<uint64_t, uint64_t>> IdentifyInDir(const std::string& dir,
                                                           const std::string& rel);

}  // namespace ndocker::hbcsa
