// The daemon's cold-start tracer: ONE fanotify group, one FAN_MARK_FILESYSTEM
// mark (FAN_OPEN | FAN_OPEN_EXEC) per tier filesystem placed at start-up,
// before any container exists, so no container's first exec can be missed
// (DESIGN.md §6). An open through an overlay is reported on the real layer
// file: its directory handle and name name the layer and the rootfs path;
// the opener's cgroup names the container. Opens made through the tiers' own
// host mounts are ignored by the kernel (an ignore mark per mount).
//
// Threads: an event thread drains the group and feeds the TraceAssembler; a
// finisher thread reads each ended trace's file sizes and hands it to the
// TraceSink. A tracer failure is logged; it never fails a Prepare, a Mount or
// a container start.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
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
#include "hbcsa/tracer/container_watch.h"
#include "hbcsa/tracer/fanotify_group.h"
#include "hbcsa/tracer/layer_path.h"
#include "hbcsa/tracer/process_events.h"
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
  DirResolverStats dirs;
  uint64_t idle = 0;       // no trace open: dropped unresolved
  uint64_t own = 0;        // opens by this daemon (the mover's copies)
  uint64_t not_layer = 0;  // a tier file outside every snapshot's fs dir
  uint64_t traces = 0;
  bool process_events = false;  // forks are followed (a gone opener is named by its parent)
  ProcessEventStats forks;
  uint64_t by_parent = 0;  // openers gone before their cgroup was read, named by a parent
  absl::Duration loop_cpu;      // event thread, all events (host noise included)
  absl::Duration finisher_cpu;  // file sizes
};

// Container id from a cgroup path: its last component, without a
// "cri-containerd-" / "docker-" prefix and a ".scope" suffix.
std::string ContainerIdFromCgroupPath(const std::string& cgroup_path);
// The cgroup path of a process from /proc/<pid>/cgroup text: the v2 line
// ("0::") when not "/", else the first named v1 hierarchy that is not "/".
std::optional<std::string> CgroupPathFromProcText(const std::string& text);

// The real look-up: /proc/<pid>/cgroup, remembered briefly per pid (a
// process opens many files in a burst). A process already gone is named by
// its parent's cgroup when its fork was seen (ProcessEvents), walking up
// through parents gone too.
class ProcLookup : public TraceLookup {
 public:
  // A process's /proc/<pid>/cgroup text, "" when it is gone. A seam for tests.
  using CgroupReader = std::function<std::string(int32_t pid)>;
  static std::string ReadProcCgroup(int32_t pid);

  explicit ProcLookup(CgroupReader reader = ReadProcCgroup) : read_cgroup_(std::move(reader)) {}

  std::optional<std::string> ContainerOfPid(int32_t pid) override;
  void OnFork(const Fork& fork, absl::Time now);

  uint64_t by_parent() const { return by_parent_; }

 private:
  struct Known {
    std::optional<std::string> container;  // nullopt: the host
    absl::Time at;
  };
  std::optional<std::string> Resolve(int32_t pid, absl::Time now, int depth);
  void Remember(int32_t pid, std::optional<std::string> container, absl::Time now);

  CgroupReader read_cgroup_;
  std::unordered_map<int32_t, Known> pids_;
  struct Forked {
    int32_t parent;
    absl::Time at;
  };
  std::unordered_map<int32_t, Forked> parents_;
  uint64_t by_parent_ = 0;
};

class Tracer : public ContainerWatch {
 public:
  // Marks the filesystem of each tier root and starts the threads.
  static absl::StatusOr<std::unique_ptr<Tracer>> Start(const std::vector<std::string>& tier_roots,
                                                       const TracerOptions& options,
                                                       TraceSink* sink);
  ~Tracer() override;  // ends open traces (kShutdown) and delivers them

  void WatchContainer(const std::string& container, RootfsChain chain) override;
  void ContainerGone(const std::string& container) override;

  TracerStats stats();

 private:
  Tracer(FanotifyGroup group, std::optional<ProcessEvents> forks, const TracerOptions& options,
         TraceSink* sink, std::vector<std::string> given_roots, std::vector<std::string> tier_roots,
         DirResolver dirs);
  // `dir` with its tier root made canonical (events name canonical paths).
  std::string Canonical(const std::string& dir) const;
  void Feed(FanEvent& event, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forks queued so far: before a batch of opens is fed, its openers' forks.
  void DrainForks(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Loop();
  void FinishLoop();
  void Hand(std::vector<Trace> traces);

  FanotifyGroup group_;
  std::optional<ProcessEvents> forks_;  // only the event thread touches it
  std::vector<Fork> fork_batch_;
  TracerOptions options_;
  TraceSink* sink_;
  UniqueFd wake_;  // eventfd
  std::atomic<bool> stop_{false};

  const std::vector<std::string> tier_roots_;    // canonical
  const std::vector<std::string> given_roots_;   // as Start got them, same order
  const int32_t own_pid_;

  absl::Mutex mu_;
  ProcLookup lookup_ ABSL_GUARDED_BY(mu_);
  DirResolver dirs_ ABSL_GUARDED_BY(mu_);
  TraceAssembler assembler_ ABSL_GUARDED_BY(mu_);
  TracerStats stats_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, RootfsChain> chains_ ABSL_GUARDED_BY(mu_);  // for the sink
  std::deque<std::pair<Trace, RootfsChain>> finished_ ABSL_GUARDED_BY(mu_);
  bool finisher_stop_ ABSL_GUARDED_BY(mu_) = false;

  std::thread loop_;
  std::thread finisher_;
};

// Size of the regular file dir/rel, resolved beneath dir without following
// any symlink; nullopt if absent or not a regular file.
std::optional<int64_t> SizeInDir(const std::string& dir, const std::string& rel);

}  // namespace ndocker::hbcsa
