// The mover: puts a committed snapshot's data on the other tier while
// containers run from it, safely under kill -9 and power loss.
//
// Each copy of a snapshot's data is a *generation* with a directory of its
// own (layout.h); committed data never changes, so every generation of an id
// holds the same bytes. A migration
//   1. copies the current generation into <to>/staging/ outside every global
//      lock (throttled, at idle I/O priority), syncs it, renames it into
//      <to>/snapshots/ and syncs that directory: a complete, durable copy
//      that nothing refers to yet (a crash here leaves garbage, never a loss);
//   2. switches, holding back id allocation: one LMDB transaction makes the
//      new generation current and appends the old one to the record's
//      retired copies with a watermark (the next snapshot id), then the
//      l/<id> link is retargeted. New mounts resolve the link and see the new
//      copy; a snapshot allocated later can only be mounted on the new copy;
//   3. reaps: a retired copy is deleted only when no active snapshot or view
//      below its watermark has the snapshot in its parent chain and no mount
//      in /proc/self/mountinfo can use it (by path, by bind root, or through
//      the link from an overlay whose upper snapshot is below the watermark or
//      unknown). The record forgets the copy first, then it is deleted, so a
//      crash mid-delete leaves garbage for Cleanup, never a dangling record.
// The old copy is never changed while it might be a live overlay's lower layer.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "snapshotter/fast_ledger.h"
#include "snapshotter/id_allocator.h"
#include "snapshotter/layout.h"
#include "snapshotter/metastore.h"
#include "snapshotter/throttle.h"

namespace ndocker {

struct MoverOptions {
  bool sync = true;                       // fsync copies before the switch
  double throttle_bytes_per_second = 0;   // background migrations; 0 = unlimited
  bool idle_io_priority = true;           // background migrations run at idle I/O class
  absl::Duration reap_interval = absl::Seconds(30);
};

// What a migration of one snapshot did, for ndockerctl.
struct MigrationOutcome {
  std::string key;
  Tier from = Tier::kFast;
  Tier to = Tier::kFast;
  std::string state;  // "migrated", "already", "queued"
};

// A migration waiting or running, for ndockerctl ls/status.
struct MigrationProgress {
  uint64_t id = 0;
  std::string key;
  Tier to = Tier::kFast;
  std::string state;  // "queued", "copying"
  int64_t bytes_copied = 0;
};

class Mover {
 public:
  Mover(const Layout& layout, MetaStore& meta, IdAllocator& ids, FastLedger& ledger,
        MoverOptions options);
  ~Mover();
  Mover(const Mover&) = delete;
  Mover& operator=(const Mover&) = delete;

  // Starts the background worker (queued migrations, periodic reaping).
  void Start();
  // Daemon shutdown: migrations still queued are dropped, background copies
  // in flight stop at their next block (their staging copy is removed; the
  // snapshot stays where it was) and new ones are refused (Unavailable), so
  // a throttled demotion never holds up the exit. The move at Commit is not
  // a background copy and finishes.
  void Stop();

  // Moves the committed snapshot `key` to tier `to`. With wait, returns when
  // it is done (switched; the old copy goes when nothing can use it); else
  // it is queued. NotFound, FailedPrecondition (not committed, already
  // moving), ResourceExhausted (fast budget or a full target filesystem:
  // the snapshot stays where it was, intact).
  absl::StatusOr<MigrationOutcome> Migrate(const std::string& key, Tier to, bool wait);

  // --- used by the core for the move at Commit (an active snapshot that does
  // not fit the fast budget); the caller marks the id busy around both calls.
  // A new, unused generation number for snapshot `rec` on tier `to`.
  uint64_t NewGeneration(const SnapshotRecord& rec) const;
  // Step 1 above; returns the new copy's directory. `fault_*` name the crash
  // test points after the copy and after the rename.
  absl::StatusOr<std::string> MakeCopy(uint64_t id, uint64_t from_gen, Tier from, uint64_t new_gen,
                                       Tier to, bool background, const char* fault_copied,
                                       const char* fault_renamed);
  // Step 2: runs `txn` (given the watermark) in one LMDB transaction with id
  // allocation held back, then retargets the link to <to, new_gen>.
  absl::Status Switch(uint64_t id, Tier to, uint64_t new_gen,
                      const std::function<absl::Status(MetaTxn&, uint64_t watermark)>& txn,
                      const char* fault_switched, const char* fault_linked);
  // Claims `id` for a copy in flight; false when one is already running.
  bool MarkBusy(uint64_t id);
  void ClearBusy(uint64_t id);
  // Ids with a copy in flight: Cleanup leaves their staging and new dirs.
  std::set<uint64_t> Busy() const;

  // Step 3 for every retired copy. Returns how many retired copies remain.
  absl::StatusOr<int> Reap();

  std::vector<MigrationProgress> InFlight() const;
  int64_t bytes_migrated() const;
  int64_t bytes_demoted() const;  // of bytes_migrated: copied to the slow tier

 private:
  struct Job {
    std::string key;
    Tier to;
  };
  // The record of `key`: NotFound, or FailedPrecondition unless committed.
  absl::StatusOr<SnapshotRecord> CommittedRecord(const std::string& key) const;
  absl::StatusOr<MigrationOutcome> RunMigration(const std::string& key, Tier to, bool background);
  void WorkerLoop();

  const Layout& layout_;
  MetaStore& meta_;
  IdAllocator& ids_;
  FastLedger& ledger_;
  const MoverOptions options_;
  Throttle throttle_;

  mutable absl::Mutex mu_;
  std::set<uint64_t> busy_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, MigrationProgress> progress_ ABSL_GUARDED_BY(mu_);
  std::deque<Job> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  int64_t bytes_migrated_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t bytes_demoted_ ABSL_GUARDED_BY(mu_) = 0;
  // Serialises reaping (background, after a migration, Cleanup).
  absl::Mutex reap_mu_;
  std::thread worker_;
};

}  // namespace ndocker
