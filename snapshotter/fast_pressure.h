// Demotion by pressure: when the bytes counted on the fast tier (committed
// layers and HBCSA's hot layers) pass the high watermark of its budget, the
// least recently used committed layers go to the slow tier through the mover
// (throttled, idle I/O, safe under live mounts) until the count is under the
// low watermark. Only when no layer is left to move is the shed hook asked
// (HBCSA: retire the oldest hot layers; they go when no mount uses them).
// A layer pinned with the ndocker.tier label stays; a layer under an active
// snapshot (a running container, an unpack) counts as used now, so a base
// layer shared by a running image goes last. Bytes already on their way out
// (layers moving to slow, hot layers retired but still mounted) are not
// counted again, so a check never frees the same bytes twice.
#pragma once

#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "snapshotter/snapshotter.h"

namespace ndocker {

struct Watermarks {
  double high = 0.90;  // of the fast budget: start demoting above it
  double low = 0.75;   // demote down to it
};

struct PressureCandidate {
  std::string key;
  int64_t bytes = 0;
};

struct PressurePlan {
  int64_t effective = 0;  // counted, less the bytes already leaving
  int64_t to_free = 0;    // down to the low watermark; 0 when under the high one
  std::vector<PressureCandidate> candidates;  // every movable layer, least recently used first
};

// Pure. `last_used`: when a container rootfs or view was last prepared over a
// layer (by id); a layer not in it counts from its creation. `moving_to_slow`:
// keys with a migration to slow in flight (not chosen, their bytes already
// leaving); `leaving_bytes`: other bytes already leaving (retired hot layers).
PressurePlan PlanPressure(const std::vector<SnapshotEntry>& entries,
                          const absl::flat_hash_map<uint64_t, absl::Time>& last_used,
                          const absl::flat_hash_set<std::string>& moving_to_slow, int64_t counted,
                          int64_t leaving_bytes, int64_t budget, const Watermarks& marks);

struct PressureReport {
  bool over_high = false;
  int64_t counted_before = 0;
  int64_t counted_after = 0;
  std::vector<std::string> demoted;
  std::vector<std::string> failed;  // tried, could not move (skipped for a while)
  int64_t shed_bytes = 0;           // what the shed hook said it will free
};

class FastPressure {
 public:
  struct Wiring {
    Snapshotter* core = nullptr;
    Watermarks marks;
    absl::Duration interval = absl::Seconds(30);
    // Frees at least `excess` bytes if it can (asynchronously: it may wait
    // for mounts to go); returns the bytes it will free.
    std::function<int64_t(int64_t excess)> shed;
    // Bytes the shed hook already set going that still count (retired hot
    // layers a mount still uses).
    std::function<int64_t()> leaving;
    // A layer that failed to move is not tried again for this long.
    absl::Duration failed_backoff = absl::Minutes(10);
  };
  explicit FastPressure(Wiring wiring);
  ~FastPressure();  // Stop()
  FastPressure(const FastPressure&) = delete;
  FastPressure& operator=(const FastPressure&) = delete;

  // One check, demoting as needed (each move awaited). Without a budget:
  // nothing to do.
  absl::StatusOr<PressureReport> RunOnce();
  void Start();  // RunOnce every interval on a thread
  void Stop();

 private:
  void Loop();

  const Wiring wiring_;
  absl::Mutex run_mu_;  // one check at a time
  absl::flat_hash_map<std::string, absl::Time> failed_until_ ABSL_GUARDED_BY(run_mu_);
  absl::Notification stop_;
  std::thread worker_;
};

}  // namespace ndocker
