// Hot layers as the shared lower of new containers (snapshotter/shared_lower.h):
// each ready hot layer version is mounted once, read-only, at
// <root>/hot-mounts/<id> as "lowerdir=<fast>/hot/<id>::<layer links...>"
// with metacopy=on,redirect_dir=on (its layers are data-only lower layers,
// named through the core's short links so that the mover's link-aware rule
// sees this mount as a user of each of them). A container on the image's top
// layer then gets a plain overlay with that mount point as its only lowerdir.
//
// A ready version is mounted ahead of its containers (at the reap after it
// becomes ready, and at start), so that a container's start never pays the
// mount's look-ups of the layer roots on a cold slow tier. Its mount stays,
// unless it pins an old copy the mover retired (a demotion): then it is
// taken down when no snapshot record, pending Prepare or mount uses it, and
// made again over the new copies once the old ones are gone.
// A version goes when it is retired (a newer one is ready, or the image's
// top layer was removed), no snapshot record names it, no mount uses its
// mount point, and it was not just handed out to a Prepare that has not
// committed yet (ForParent to Settled): unmounted, record dropped, directory removed, its bytes
// released from the fast budget. That runs in the background after removals
// and promotions, and at start, where the versions snapshots use are also
// mounted again (a reboot unmounts them).
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hbcsa/promoter/hot_layer_store.h"
#include "snapshotter/mountinfo.h"
#include "snapshotter/shared_lower.h"

namespace ndocker::hbcsa {

struct HotStacksOptions {
  std::string mount_dir;  // <root>/hot-mounts
  // The path a data-only layer is named by: the core's short link of a
  // committed snapshot (Layout::LinkPath).
  std::function<std::string(uint64_t snapshot_id)> layer_path;
  // The background reaper also runs this often without an event.
  absl::Duration reap_interval = absl::Seconds(30);
};

// What the core's records say, read for each reap.
struct StackUse {
  absl::flat_hash_set<uint64_t> versions;  // named by snapshots (SnapshotRecord::shared_lower)
  // Committed snapshots with old copies the mover retired, which a mounted
  // stack naming them keeps from being deleted.
  absl::flat_hash_set<uint64_t> layers_with_retired_copies;
};

struct HotStackWiring {
  HotLayerStore* store = nullptr;
  std::function<absl::StatusOr<StackUse>()> in_use;
  std::function<void(int64_t bytes)> release_fast_bytes;
  // After a reap dropped versions or unmounted unused ones.
  std::function<void()> stacks_dropped;
  // false (a kernel without data-only lower layers): nothing is handed out
  // and nothing is mounted; versions are still reaped.
  bool mount_stacks = true;
};

struct HotReapReport {
  std::vector<uint64_t> dropped;
  std::vector<uint64_t> unmounted;  // ready, unused, and holding retired layer copies
  std::vector<uint64_t> kept_in_use;  // retired, still used by a record or a mount
  std::vector<uint64_t> mounted_ahead;  // ready, mounted before a container asks
};

class HotStacks : public SharedLowerProvider {
 public:
  explicit HotStacks(HotStacksOptions options);
  ~HotStacks() override;
  HotStacks(const HotStacks&) = delete;
  HotStacks& operator=(const HotStacks&) = delete;

  // After the core is open; until then nothing is handed out.
  void Attach(HotStackWiring wiring);
  // Starts the background reaper (Removed and ReapSoon only queue work).
  void StartReaper();
  // Waits for a reap under way; idempotent (the destructor calls it).
  void StopReaper();

  std::optional<SharedLower> ForParent(uint64_t parent_id) override;
  void Settled(uint64_t id) override;
  absl::StatusOr<std::string> Path(uint64_t id) override;
  void Removed(uint64_t snapshot_id, Kind kind, uint64_t shared_lower) override;

  std::string MountPointOf(uint64_t id) const;
  // At start: mounts the versions snapshot records name, removes mount
  // points no version owns, then reaps.
  absl::StatusOr<HotReapReport> Reconcile();
  absl::StatusOr<HotReapReport> Reap();
  void ReapSoon();

 private:
  HotStackWiring Wiring();
  absl::StatusOr<std::string> EnsureMounted(const HotStackWiring& w, const HotLayerVersion& v)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mount_mu_);
  absl::StatusOr<bool> IsMounted(const std::string& mount_point) const;
  absl::Status Unmount(uint64_t id);
  absl::Status RetireImagesOnTop(uint64_t top_snapshot_id);
  void ReaperLoop();

  const HotStacksOptions options_;
  absl::Mutex wiring_mu_;
  HotStackWiring wiring_ ABSL_GUARDED_BY(wiring_mu_);

  absl::Mutex mount_mu_;  // one mount/unmount decision at a time
  // Versions handed out to Prepares that have not committed yet.
  absl::flat_hash_map<uint64_t, int> pending_ ABSL_GUARDED_BY(mount_mu_);

  absl::Mutex work_mu_;
  std::deque<uint64_t> removed_tops_ ABSL_GUARDED_BY(work_mu_);
  bool reap_wanted_ ABSL_GUARDED_BY(work_mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(work_mu_) = false;
  std::thread reaper_;
};

// Whether a mount other than the stack itself uses the stack mounted at
// `mount_point`: an overlay naming it (or below it) as a layer, a bind mount
// of it (same device), a mount below it. Exposed for tests.
bool StackInUse(const std::vector<MountInfoEntry>& mounts, const std::string& mount_point);

}  // namespace ndocker::hbcsa
