#include "snapshotter/mover.h"

#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <map>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/fault_point.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/idle_io.h"
#include "snapshotter/log.h"
#include "snapshotter/mount_use.h"
#include "snapshotter/placement.h"
#include "snapshotter/status_macros.h"
#include "snapshotter/tree_copy.h"

namespace ndocker {
namespace {

bool Exists(const std::string& path) {
  struct stat st;
  return ::lstat(path.c_str(), &st) == 0;
}

// Ancestors of every active snapshot and view (their parent chains), by id:
// the mounts a retired copy may still serve come from these.
struct Holder {
  uint64_t id;
  std::set<uint64_t> chain;
};

}  // namespace

Mover::Mover(const Layout& layout, MetaStore& meta, IdAllocator& ids, FastLedger& ledger,
             MoverOptions options)
    : layout_(layout),
      meta_(meta),
      ids_(ids),
      ledger_(ledger),
      options_(options),
      throttle_(options.throttle_bytes_per_second) {}

Mover::~Mover() { Stop(); }

void Mover::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    queue_.clear();
  }
  if (worker_.joinable()) worker_.join();
}

void Mover::Start() {
  absl::MutexLock lock(&mu_);
  if (started_) return;
  started_ = true;
  worker_ = std::thread([this] { WorkerLoop(); });
}

bool Mover::MarkBusy(uint64_t id) {
  absl::MutexLock lock(&mu_);
  return busy_.insert(id).second;
}

void Mover::ClearBusy(uint64_t id) {
  absl::MutexLock lock(&mu_);
  busy_.erase(id);
  progress_.erase(id);
}

std::set<uint64_t> Mover::Busy() const {
  absl::MutexLock lock(&mu_);
  return busy_;
}

std::vector<MigrationProgress> Mover::InFlight() const {
  absl::MutexLock lock(&mu_);
  std::vector<MigrationProgress> out;
  for (const auto& [id, p] : progress_) out.push_back(p);
  for (const Job& j : queue_) out.push_back(MigrationProgress{0, j.key, j.to, "queued", 0});
  return out;
}

int64_t Mover::bytes_migrated() const {
  absl::MutexLock lock(&mu_);
  return bytes_migrated_;
}

int64_t Mover::bytes_demoted() const {
  absl::MutexLock lock(&mu_);
  return bytes_demoted_;
}

uint64_t Mover::NewGeneration(const SnapshotRecord& rec) const {
  uint64_t gen = rec.generation;
  for (const RetiredCopy& c : rec.retired) gen = std::max(gen, c.generation);
  // A copy that a crash left behind (and Cleanup could not delete) keeps its
  // name: never build over it.
  for (++gen; Exists(layout_.SnapshotDir(Tier::kFast, rec.id, gen)) ||
              Exists(layout_.SnapshotDir(Tier::kSlow, rec.id, gen));
       ++gen) {
  }
  return gen;
}

absl::StatusOr<std::string> Mover::MakeCopy(uint64_t id, uint64_t from_gen, Tier from,
                                            uint64_t new_gen, Tier to, bool background,
                                            const char* fault_copied, const char* fault_renamed) {
  const std::string src = layout_.FsDir(from, id, from_gen);
  auto staging = MakeTempDir(layout_.StagingDir(to), Layout::StagingName(id, new_gen));
  if (!staging.ok()) return staging.status();
  const std::string dst = layout_.SnapshotDir(to, id, new_gen);
  bool renamed = false;
  // Only ever a copy is thrown away.
  absl::Cleanup drop = [&] { (void)RemoveTree(renamed ? dst : *staging); };
  NDOCKER_RETURN_IF_ERROR(MakeDir(*staging + "/fs", 0755));
  CopyOptions copy;
  copy.sync = options_.sync;
  if (background) {
    copy.cancelled = [this] {
      absl::MutexLock lock(&mu_);
      return stopping_;
    };
  }
  copy.on_bytes = [&](int64_t n) {
    if (background) throttle_.Consume(n);
    absl::MutexLock lock(&mu_);
    bytes_migrated_ += n;
    if (to == Tier::kSlow) bytes_demoted_ += n;
    if (auto it = progress_.find(id); it != progress_.end()) it->second.bytes_copied += n;
  };
  NDOCKER_RETURN_IF_ERROR(CopyTree(src, *staging + "/fs", copy));
  FaultPoint(fault_copied);
  if (::rename(staging->c_str(), dst.c_str()) != 0) return LastErrnoStatus("rename copy into place", dst);
  renamed = true;
  if (options_.sync) {
    NDOCKER_RETURN_IF_ERROR(SyncPath(layout_.SnapshotsDir(to)));
    NDOCKER_RETURN_IF_ERROR(SyncPath(layout_.StagingDir(to)));
  }
  FaultPoint(fault_renamed);
  std::move(drop).Cancel();
  return dst;
}

absl::Status Mover::Switch(uint64_t id, Tier to, uint64_t new_gen,
                           const std::function<absl::Status(MetaTxn&, uint64_t)>& txn,
                           const char* fault_switched, const char* fault_linked) {
  return ids_.WithAllocationHeld([&](uint64_t watermark) -> absl::Status {
    NDOCKER_RETURN_IF_ERROR(meta_.Update([&](MetaTxn& t) { return txn(t, watermark); }));
    FaultPoint(fault_switched);
    // The switch has taken effect: a failure from here on is logged, not
    // returned. Reap checks the link before it deletes an old copy.
    const std::string link = layout_.LinkPath(id);
    if (absl::Status st = ReplaceSymlink(layout_.FsDir(to, id, new_gen), link); !st.ok()) {
      spdlog::error("msg=\"could not retarget a short link after a switch\" id={} error={}", id,
                    Q(st.message()));
    } else if (options_.sync) {
      if (absl::Status synced = SyncPath(layout_.LinksDir()); !synced.ok()) {
        spdlog::warn("msg=\"could not sync the links dir\" error={}", Q(synced.message()));
      }
    }
    FaultPoint(fault_linked);
    return absl::OkStatus();
  });
}

absl::StatusOr<SnapshotRecord> Mover::CommittedRecord(const std::string& key) const {
  SnapshotRecord rec;
  NDOCKER_RETURN_IF_ERROR(meta_.View([&](const MetaTxn& txn) -> absl::Status {
    auto r = txn.Get(key);
    if (!r.ok()) return r.status();
    if (!r->has_value()) return absl::NotFoundError(absl::StrCat("snapshot ", key, " does not exist"));
    rec = **r;
    return absl::OkStatus();
  }));
  if (rec.kind != Kind::kCommitted) {
    return absl::FailedPreconditionError(
        absl::StrCat("snapshot ", key, " is ", KindName(rec.kind), "; only committed snapshots migrate"));
  }
  return rec;
}

absl::StatusOr<MigrationOutcome> Mover::Migrate(const std::string& key, Tier to, bool wait) {
  if (wait) return RunMigration(key, to, /*background=*/true);
  // Check now so that a bad request fails at once, not in the log.
  auto found = CommittedRecord(key);
  if (!found.ok()) return found.status();
  const SnapshotRecord& rec = *found;
  if (rec.tier == to) return MigrationOutcome{key, rec.tier, to, "already"};
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError(absl::StrCat("migrate ", key, ": the daemon is shutting down"));
  queue_.push_back(Job{key, to});
  return MigrationOutcome{key, rec.tier, to, "queued"};
}

absl::StatusOr<MigrationOutcome> Mover::RunMigration(const std::string& key, Tier to, bool background) {
  auto found = CommittedRecord(key);
  if (!found.ok()) return found.status();
  const SnapshotRecord rec = *std::move(found);
  const Tier from = rec.tier;
  if (from == to) return MigrationOutcome{key, from, to, "already"};
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return absl::UnavailableError(absl::StrCat("migrate ", key, ": the daemon is shutting down"));
  }
  if (!MarkBusy(rec.id)) {
    return absl::FailedPreconditionError(absl::StrCat("snapshot ", key, " is already being migrated"));
  }
  absl::Cleanup unbusy = [&] { ClearBusy(rec.id); };
  {
    absl::MutexLock lock(&mu_);
    progress_[rec.id] = MigrationProgress{rec.id, key, to, "copying", 0};
  }
  bool reserved = false;
  if (to == Tier::kFast) {
    if (!ledger_.TryReserve(rec.size)) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "snapshot ", key, " (", rec.size, " bytes) does not fit the fast tier's budget (",
          ledger_.committed(), " of ", ledger_.budget().limit(), " bytes committed)"));
    }
    reserved = true;
  }
  absl::Cleanup unreserve = [&] {
    if (reserved) ledger_.Release(rec.size);
  };
  const uint64_t new_gen = NewGeneration(rec);
  const absl::Time start = absl::Now();
  absl::StatusOr<std::string> copy;
  {
    ScopedIdleIo idle(background && options_.idle_io_priority);
    copy = MakeCopy(rec.id, rec.generation, from, new_gen, to, background, fault::kMigrateAfterCopy,
                    fault::kMigrateAfterRename);
  }
  if (!copy.ok()) {
    return absl::Status(copy.status().code(),
                        absl::StrCat("migrate ", key, " to ", TierName(to), ": ", copy.status().message()));
  }
  absl::Status st = Switch(
      rec.id, to, new_gen,
      [&](MetaTxn& txn, uint64_t watermark) -> absl::Status {
        auto cur = txn.Get(key);
        if (!cur.ok()) return cur.status();
        if (!cur->has_value() || (*cur)->id != rec.id) {
          return absl::NotFoundError(absl::StrCat("snapshot ", key, " was removed during its migration"));
        }
        SnapshotRecord next = **cur;
        if (next.generation != rec.generation || next.tier != from) {
          return absl::AbortedError(absl::StrCat("snapshot ", key, " moved during its migration"));
        }
        next.retired.push_back(RetiredCopy{from, rec.generation, watermark});
        next.tier = to;
        next.generation = new_gen;
        // Where it is now, and why: the first placement stays in the reason
        // (once, however often it moves).
        static constexpr char kFirst[] = "; placed first by ";
        std::string first = absl::StrCat(kFirst, next.placement_rule, ": ", next.placement_reason);
        if (next.placement_rule == rule::kMigrated) {
          const size_t at = next.placement_reason.find(kFirst);
          first = at == std::string::npos ? "" : next.placement_reason.substr(at);
        }
        next.placement_reason = absl::StrCat("migrated ", TierName(from), " -> ", TierName(to), " at ",
                                             absl::FormatTime(absl::RFC3339_sec, absl::Now(), absl::UTCTimeZone()),
                                             first);
        next.placement_rule = rule::kMigrated;
        return txn.Put(key, next);
      },
      fault::kMigrateAfterTxn, fault::kMigrateAfterLink);
  if (!st.ok()) {
    (void)RemoveTree(*copy);
    return st;
  }
  reserved = false;  // the fast bytes are now committed there
  if (from == Tier::kFast) ledger_.Release(rec.size);
  spdlog::info("msg=\"migrated snapshot\" key={} id={} from={} to={} generation={} size={} seconds={:.3f}",
               Q(key), rec.id, TierName(from), TierName(to), new_gen, rec.size,
               absl::ToDoubleSeconds(absl::Now() - start));
  std::move(unbusy).Invoke();
  if (auto left = Reap(); !left.ok()) {
    spdlog::warn("msg=\"reaping after a migration failed\" error={}", Q(left.status().message()));
  }
  return MigrationOutcome{key, from, to, "migrated"};
}

absl::StatusOr<int> Mover::Reap() {
  absl::MutexLock reap_lock(&reap_mu_);
  struct Candidate {
    std::string key;
    uint64_t id;
    Tier tier;  // current
    uint64_t generation;
    RetiredCopy copy;
  };
  std::vector<Candidate> candidates;
  std::vector<Holder> holders;
  NDOCKER_RETURN_IF_ERROR(meta_.View([&](const MetaTxn& txn) -> absl::Status {
    std::map<std::string, std::pair<uint64_t, std::string>> parents;  // key -> (id, parent key)
    std::vector<std::pair<uint64_t, std::string>> mounted;           // actives and views
    NDOCKER_RETURN_IF_ERROR(txn.ForEach([&](absl::string_view key, const SnapshotRecord& r) {
      parents[std::string(key)] = {r.id, r.parent};
      if (r.kind != Kind::kCommitted) mounted.emplace_back(r.id, r.parent);
      for (const RetiredCopy& c : r.retired) {
        candidates.push_back({std::string(key), r.id, r.tier, r.generation, c});
      }
      return true;
    }));
    for (const auto& [id, parent] : mounted) {
      Holder h{id, {}};
      for (std::string p = parent; !p.empty();) {
        auto it = parents.find(p);
        if (it == parents.end()) break;
        h.chain.insert(it->second.first);
        p = it->second.second;
      }
      holders.push_back(std::move(h));
    }
    return absl::OkStatus();
  }));
  if (candidates.empty()) return 0;
  auto mounts = MountUse::Read(layout_);
  if (!mounts.ok()) return mounts.status();
  int remaining = 0;
  for (const Candidate& c : candidates) {
    const std::string dir = layout_.SnapshotDir(c.copy.tier, c.id, c.copy.generation);
    const bool held = std::any_of(holders.begin(), holders.end(), [&](const Holder& h) {
      return h.id < c.copy.watermark && h.chain.contains(c.id);
    });
    bool in_use = held || mounts->PathInUse(dir);
    for (const std::optional<uint64_t>& upper : mounts->LinkUsers(c.id)) {
      if (!upper || *upper < c.copy.watermark) in_use = true;
    }
    // The link must already point at the current copy, or mounts made
    // through it since the switch use this one.
    const std::string want = layout_.FsDir(c.tier, c.id, c.generation);
    char buf[4096];
    const ssize_t n = ::readlink(layout_.LinkPath(c.id).c_str(), buf, sizeof(buf));
    const bool link_ok = n >= 0 && absl::string_view(buf, static_cast<size_t>(n)) == want;
    if (!link_ok) {
      in_use = true;
      if (ReplaceSymlink(want, layout_.LinkPath(c.id)).ok()) {
        // Mounts made while it was wrong carry ids up to now.
        const uint64_t now = ids_.Peek();
        (void)meta_.Update([&](MetaTxn& txn) -> absl::Status {
          auto cur = txn.Get(c.key);
          if (!cur.ok() || !cur->has_value()) return absl::OkStatus();
          SnapshotRecord r = **cur;
          for (RetiredCopy& rc : r.retired) {
            if (rc == c.copy) rc.watermark = std::max(rc.watermark, now);
          }
          return txn.Put(c.key, r);
        });
      }
    }
    if (in_use) {
      ++remaining;
      continue;
    }
    // Forget it first: a crash while deleting leaves garbage, not a record
    // that points at half a directory.
    bool forgotten = false;
    absl::Status st = meta_.Update([&](MetaTxn& txn) -> absl::Status {
      auto cur = txn.Get(c.key);
      if (!cur.ok()) return cur.status();
      if (!cur->has_value() || (*cur)->id != c.id) return absl::OkStatus();
      SnapshotRecord r = **cur;
      auto it = std::find(r.retired.begin(), r.retired.end(), c.copy);
      if (it == r.retired.end()) return absl::OkStatus();
      r.retired.erase(it);
      forgotten = true;
      return txn.Put(c.key, r);
    });
    if (!st.ok()) {
      spdlog::warn("msg=\"could not forget a retired copy\" id={} error={}", c.id, Q(st.message()));
      ++remaining;
      continue;
    }
    if (!forgotten) continue;
    FaultPoint(fault::kReapAfterTxn);
    if (absl::Status rm = RemoveTree(dir, [] { FaultPoint(fault::kReapMidDelete); }); !rm.ok()) {
      spdlog::warn("msg=\"could not delete a retired copy; Cleanup will retry\" id={} generation={} error={}",
                   c.id, c.copy.generation, Q(rm.message()));
      continue;
    }
    spdlog::info("msg=\"deleted retired copy\" key={} id={} tier={} generation={}", Q(c.key), c.id,
                 TierName(c.copy.tier), c.copy.generation);
  }
  return remaining;
}

void Mover::WorkerLoop() {
  absl::Time next_reap = absl::Now() + options_.reap_interval;
  for (;;) {
    std::optional<Job> job;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_ || !queue_.empty(); };
      mu_.AwaitWithDeadline(absl::Condition(&ready), next_reap);
      if (stopping_) return;
      if (!queue_.empty()) {
        job = queue_.front();
        queue_.pop_front();
      }
    }
    if (job) {
      auto done = RunMigration(job->key, job->to, /*background=*/true);
      if (!done.ok()) {
        spdlog::warn("msg=\"queued migration failed\" key={} to={} error={}", Q(job->key),
                     TierName(job->to), Q(done.status().message()));
      }
      continue;
    }
    if (absl::Now() >= next_reap) {
      if (auto left = Reap(); !left.ok()) {
        spdlog::warn("msg=\"periodic reap failed\" error={}", Q(left.status().message()));
      }
      next_reap = absl::Now() + options_.reap_interval;
    }
  }
}

}  // namespace ndocker
