// The snapshotter core: containerd's overlay snapshotter semantics (facts §2)
// over two tiers. Thread-safe; gRPC handlers call it directly.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "snapshotter/budget.h"
#include "snapshotter/filter.h"
#include "snapshotter/layout.h"
#include "snapshotter/fast_ledger.h"
#include "snapshotter/id_allocator.h"
#include "snapshotter/metastore.h"
#include "snapshotter/mounts.h"
#include "snapshotter/mover.h"
#include "snapshotter/observer.h"
#include "snapshotter/placement.h"
#include "snapshotter/shared_lower.h"
#include "snapshotter/tier_owner.h"
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
  // Told about container rootfs snapshots and removals (HBCSA's tracer).
  std::shared_ptr<SnapshotObserver> observer;
  // Shared read-only stacks for new container rootfs and views (HBCSA's hot
  // layers); none: every mount uses its parent chain.
  std::shared_ptr<SharedLowerProvider> shared_lowers;
  // Sync copies made when a snapshot moves between tiers before switching.
  bool sync_migrations = true;
  // What to do with tiers this root's metadata does not own (tier_owner.h).
  ClaimMode claim_tiers = ClaimMode::kRefuse;
  // Background migrations (ndockerctl migrate, HBCSA's demoter).
  double migrate_bytes_per_second = 0;  // 0 = unlimited
  bool migrate_idle_io_priority = true;
  absl::Duration reap_interval = absl::Seconds(30);
  // A new fast-tier snapshot whose expected size (from the advisor) would
  // leave less than this free on the fast filesystem goes to the slow tier.
  int64_t fast_fs_reserve_bytes = 16 << 20;
  // A container rootfs on the fast tier is expected to write this much: it
  // goes to slow when the fast filesystem lacks the room (FitFastFilesystem).
  int64_t container_expected_bytes = 64 << 20;
};

struct TierStats {
  Tier tier;
  std::string path;
  int64_t committed_bytes = 0;
  int64_t active_bytes = 0;  // live du of active snapshots on the tier
  int64_t snapshots = 0;
  int64_t budget_bytes = 0;  // fast only; 0 = unlimited
  int64_t retired_copies = 0;  // old copies kept for mounts made before a migration
  int64_t retired_bytes = 0;
};

// The state of the whole store, beyond the tiers.
struct StoreHealth {
  // Records whose current copy was not found at start (reported, not repaired).
  std::vector<std::string> missing;
  std::vector<MigrationProgress> migrations;
  int64_t bytes_migrated = 0;
  int64_t bytes_demoted = 0;  // of bytes_migrated: copied to the slow tier
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
  // Deletes every directory and link that no snapshot owns and no mount may
  // use, and every retired copy nothing can use any more. Never stops at
  // one undeletable entry: it is logged and skipped.
  absl::Status Cleanup();
  // Moves committed snapshots to a tier (mover.h). `name` is a key, or a
  // chainID matching every committed snapshot whose key ends in "/<chainID>".
  absl::StatusOr<std::vector<MigrationOutcome>> Migrate(const std::string& name, Tier to, bool wait);
  // Daemon shutdown, before the threads that wait on migrations are joined:
  // background copies stop, new migrations are refused (Mover::Stop).
  void StopMigrations() { mover_.Stop(); }

  absl::StatusOr<std::vector<TierStats>> Stats();
  absl::StatusOr<std::vector<SnapshotEntry>> Entries();
  StoreHealth Health();
  // Fast-tier bytes that other components keep there (HBCSA's hot layers)
  // count against the fast budget like committed snapshots: reserved before
  // they are kept (false: they do not fit), released when they go, and
  // added at start for what is already there.
  bool ReserveFastBytes(int64_t bytes) { return ledger_.TryReserve(bytes); }
  void ReleaseFastBytes(int64_t bytes) { ledger_.Release(bytes); }
  void AddFastBytes(int64_t bytes) { ledger_.Add(bytes); }
  int64_t FastBytesCounted() const { return ledger_.committed(); }
  int64_t FastBudgetBytes() const { return options_.fast_budget_bytes; }
  // When a container rootfs or a view was last prepared over each committed
  // snapshot (by id), since the daemon started.
  absl::flat_hash_map<uint64_t, absl::Time> LastUsed() const;
  // The metadata store, for components that keep their records in it.
  MetaStore& store() { return *meta_; }
  const Layout& layout() const { return layout_; }
  // Measured write-back rate of the slow tier (0 = not measured yet).
  double SlowFlushBytesPerSecond() const {
    return slow_flusher_ ? slow_flusher_->BytesPerSecond() : 0;
  }
  // Bytes committed on the slow tier and not yet written back.
  int64_t SlowFlushBacklogBytes() const { return slow_flusher_ ? slow_flusher_->PendingBytes() : 0; }

 private:
  Snapshotter(SnapshotterOptions options, std::unique_ptr<MetaStore> meta, uint64_t first_id);
  void NoteUsed(const std::vector<uint64_t>& ids);

  absl::StatusOr<std::vector<Mount>> Create(Kind kind, const std::string& key,
                                            const std::string& parent, const Labels& labels);
  // The snapshot's own dirs in a mount spec; parents are the callers'.
  MountSpec OwnMountSpec(const SnapshotRecord& rec) const;
  // Over the parent chain (a recorded shared lower is not looked at).
  absl::StatusOr<std::vector<Mount>> MountsFor(const MetaTxn& txn, const SnapshotRecord& rec);
  // Over the shared stack mounted at `stack`.
  std::vector<Mount> MountsOverStack(const SnapshotRecord& rec, const std::string& stack) const;
  absl::Status CommitMoving(const std::string& name, const std::string& key, const Labels& labels,
                            const SnapshotRecord& rec, const Usage& usage, const Placement& choice);
  Placement FitFastFilesystem(Placement choice, int64_t expected_bytes) const;
  absl::Status RepairLinks();
  absl::Status AdoptUnknown(Tier tier);
  void ReportDone(const std::string& key, const std::string& name, const SnapshotRecord& rec,
                  const Usage& usage, const Placement& choice);

  const SnapshotterOptions options_;
  const Layout layout_;
  const bool index_off_;
  std::unique_ptr<MetaStore> meta_;
  IdAllocator ids_;
  // Bytes of committed snapshots on the fast tier: what the budget bounds.
  FastLedger ledger_;
  mutable absl::Mutex used_mu_;
  absl::flat_hash_map<uint64_t, absl::Time> last_used_ ABSL_GUARDED_BY(used_mu_);
  Mover mover_;
  // Ids of snapshots whose directory exists before their record commits:
  // Cleanup leaves them alone.
  absl::Mutex creating_mu_;
  std::set<uint64_t> creating_ ABSL_GUARDED_BY(creating_mu_);
  // One Cleanup at a time.
  absl::Mutex cleanup_mu_;
  std::vector<std::string> missing_;  // set at Open
  std::unique_ptr<TierFlusher> slow_flusher_;  // null unless flush_slow_commits
};

}  // namespace ndocker
