// Demotion by pressure: when the bytes counted on the fast tier (committed
// layers and HBCSA's hot layers) pass the high watermark of its budget, the
// least recently used committed layers go to the slow tier through the mover
// (throttled, idle I/O, safe under live mounts) until the count is under the
// low watermark. Only when no layer is left to move is the shed hook asked
// (HBCSA: retire the oldest hot layers; they go when no mount uses them).
// A layer pinned with the ndocker.tier label stays. Recency is per layer, so
// a base layer shared by a running image stays with it.
#pragma once

#include <functional>
#include <string>
#include <thread>
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

struct PressurePlan {
  std::vector<std::string> keys;  // to the slow tier, least recently used first
  int64_t freed = 0;              // their bytes
  int64_t excess_after = 0;       // bytes still above the low watermark after them
};

// Pure. `last_used`: when a container rootfs or view was last prepared over a
// layer (by id); a layer not in it counts from its creation. `moving`: keys
// with a migration in flight (neither chosen nor counted twice).
PressurePlan PlanPressure(const std::vector<SnapshotEntry>& entries,
                          const absl::flat_hash_map<uint64_t, absl::Time>& last_used,
                          const absl::flat_hash_set<std::string>& moving, int64_t counted, int64_t budget,
                          const Watermarks& marks);

struct PressureReport {
  bool over_high = false;
  int64_t counted_before = 0;
  int64_t counted_after = 0;
  std::vector<std::string> demoted;
  int64_t shed_bytes = 0;  // what the shed hook said it will free
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
  absl::Notification stop_;
  std::thread worker_;
};

}  // namespace ndocker
