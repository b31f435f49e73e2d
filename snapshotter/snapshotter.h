// The snapshotter core: containerd's overlay snapshotter semantics (facts §2)
// over two tiers. Thread-safe; gRPC handlers call it directly.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "snapshotter/budget.h"
#include "snapshotter/filter.h"
#include "snapshotter/layout.h"
#include "snapshotter/metastore.h"
#include "snapshotter/placement.h"
#include "snapshotter/tier_flusher.h"
#include "snapshotter/types.h"

namespace ndocker {

struct SnapshotterOptions {
  std::string root;
  std::string fast_path;  // default <root>/fast
  std::string slow_path;  // default <root>/slow
  int64_t fast_budget_bytes = 0;  // 0 = unlimited
  Tier default_tier = Tier::kFast;
  // Container rootfs snapshots (active snapshots that are not unpacks).
  Tier container_tier = Tier::kSlow;
  // Start writing a slow-tier snapshot back (syncfs in the background) as
  // soon as it is committed, so it is durable while later layers still
  // download instead of at the pull's end. The config's "auto" decides
  // (ResolveFlush): the syncfs also forces out whatever else is dirty there.
  bool flush_slow_commits = false;
  // Consulted for every new snapshot without an ndocker.tier label (LASS).
  std::shared_ptr<PlacementAdvisor> advisor;
  // Sync copies made when a snapshot moves between tiers before switching.
  bool sync_migrations = true;
};

struct TierStats {
  Tier tier;
  std::string path;
  int64_t committed_bytes = 0;
  int64_t active_bytes = 0;  // live du of active snapshots on the tier
  int64_t snapshots = 0;
  int64_t budget_bytes = 0;  // fast only; 0 = unlimited
};

struct SnapshotEntry {
  std::string key;
  SnapshotRecord record;
};

class Snapshotter {
 public:
  // Creates the directories, repairs short links and removes what an
  // interrupted operation left behind.
  static absl::StatusOr<std::unique_ptr<Snapshotter>> Open(SnapshotterOptions options);

  absl::StatusOr<std::vector<Mount>> Prepare(const std::string& key, const std::string& parent,
                                             const Labels& labels);
  absl::StatusOr<std::vector<Mount>> View(const std::string& key, const std::string& parent,
                                          const Labels& labels);
  absl::StatusOr<std::vector<Mount>> Mounts(const std::string& key);
  absl::Status Commit(const std::string& name, const std::string& key, const Labels& labels);
  absl::Status Remove(const std::string& key);
  absl::StatusOr<SnapshotInfo> Stat(const std::string& key);
  // Only labels change (containerd's mask rules); see facts §2.3.
  absl::StatusOr<SnapshotInfo> Update(const SnapshotInfo& info,
                                      const std::vector<std::string>& paths);
  absl::StatusOr<Usage> GetUsage(const std::string& key);
  absl::Status Walk(const Filter& filter, const std::function<absl::Status(const SnapshotInfo&)>& fn);
  // Deletes every directory and link that no snapshot owns.
  absl::Status Cleanup();

  absl::StatusOr<std::vector<TierStats>> Stats();
  absl::StatusOr<std::vector<SnapshotEntry>> Entries();
  const Layout& layout() const { return layout_; }
  // Measured write-back rate of the slow tier (0 = not measured yet).
  double SlowFlushBytesPerSecond() const {
    return slow_flusher_ ? slow_flusher_->BytesPerSecond() : 0;
  }
  // Bytes committed on the slow tier and not yet written back.
  int64_t SlowFlushBacklogBytes() const { return slow_flusher_ ? slow_flusher_->PendingBytes() : 0; }

 private:
  Snapshotter(SnapshotterOptions options, std::unique_ptr<MetaStore> meta);

  absl::StatusOr<std::vector<Mount>> Create(Kind kind, const std::string& key,
                                            const std::string& parent, const Labels& labels);
  absl::StatusOr<std::vector<Mount>> MountsFor(const MetaTxn& txn, const SnapshotRecord& rec);
  absl::Status MoveFs(uint64_t id, Tier from, Tier to) ABSL_EXCLUSIVE_LOCKS_REQUIRED(placement_mu_);
  absl::Status RepairLinks();
  absl::Status CleanupLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(placement_mu_);

  const SnapshotterOptions options_;
  const Layout layout_;
  const FastBudget budget_;
  const bool index_off_;
  std::unique_ptr<MetaStore> meta_;
  // Bytes of committed snapshots on the fast tier: what the budget bounds.
  // Derived from the records at Open, then kept by Commit and Remove after
  // their transactions succeed, so Prepare and Commit stay O(1) however many
  // snapshots exist (a scan cost ~10 ms per call at 10,000 snapshots).
  std::atomic<int64_t> fast_committed_bytes_{0};
  // Serialises what must see a stable fast-tier total and staging area:
  // commits (budget check + move) and Cleanup.
  absl::Mutex placement_mu_;
  std::unique_ptr<TierFlusher> slow_flusher_;  // null unless flush_slow_commits
};

}  // namespace ndocker
