#include "snapshotter/snapshotter.h"

#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <set>
#include <tuple>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/disk_usage.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/fault_point.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/labels.h"
#include "snapshotter/log.h"
#include "snapshotter/mount_use.h"
#include "snapshotter/mounts.h"
#include "snapshotter/snapshot_filter.h"
#include "snapshotter/status_macros.h"

namespace ndocker {
namespace {

constexpr Tier kTiers[] = {Tier::kFast, Tier::kSlow};

absl::Status ValidateKey(const std::string& key) {
  if (key.empty()) return absl::InvalidArgumentError("snapshot key must not be empty");
  if (key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot key is ", key.size(), " bytes; at most ", kMaxKeyBytes, " allowed"));
  }
  if (key.find('\0') != std::string::npos) {
    return absl::InvalidArgumentError("snapshot key must not contain NUL");
  }
  return absl::OkStatus();
}

absl::Status NotExist(const std::string& key) {
  return absl::NotFoundError(absl::StrCat("snapshot ", key, " does not exist"));
}

SnapshotInfo ToInfo(const std::string& key, const SnapshotRecord& r) {
  return SnapshotInfo{key, r.parent, r.kind, r.created, r.updated, r.labels};
}

absl::StatusOr<SnapshotRecord> MustGet(const MetaTxn& txn, const std::string& key) {
  auto rec = txn.Get(key);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return NotExist(key);
  return **rec;
}

// Committed bytes on a tier; derived on demand so it can never drift.
absl::StatusOr<int64_t> CommittedBytes(const MetaTxn& txn, Tier tier) {
  int64_t total = 0;
  NDOCKER_RETURN_IF_ERROR(txn.ForEach([&](absl::string_view, const SnapshotRecord& r) {
    if (r.kind == Kind::kCommitted && r.tier == tier) total += r.size;
    return true;
  }));
  return total;
}

// Labels with empty values are never stored (bolt skips them too).
void DropEmptyValues(Labels& labels) {
  std::erase_if(labels, [](const auto& kv) { return kv.second.empty(); });
}

}  // namespace

Snapshotter::Snapshotter(SnapshotterOptions options, std::unique_ptr<MetaStore> meta,
                         uint64_t first_id)
    : options_(std::move(options)),
      layout_(options_.root, options_.fast_path, options_.slow_path),
      index_off_(::access("/sys/module/overlay/parameters/index", F_OK) == 0),
      meta_(std::move(meta)),
      ids_(first_id),
      ledger_(FastBudget(options_.fast_budget_bytes)),
      mover_(layout_, *meta_, ids_, ledger_,
             MoverOptions{.sync = options_.sync_migrations,
                          .throttle_bytes_per_second = options_.migrate_bytes_per_second,
                          .idle_io_priority = options_.migrate_idle_io_priority,
                          .reap_interval = options_.reap_interval}) {
  if (options_.flush_slow_commits) {
    slow_flusher_ = std::make_unique<TierFlusher>(layout_.TierRoot(Tier::kSlow));
  }
}

namespace {

// The first id to hand out: above the stored next id, every record and every
// id that a directory, staging copy or link on disk shows, so that no id a
// crash left a trace of is given again.
absl::StatusOr<uint64_t> FirstFreeId(const Layout& layout, MetaStore& meta) {
  uint64_t next = 1;
  NDOCKER_RETURN_IF_ERROR(meta.View([&](const MetaTxn& txn) -> absl::Status {
    auto stored = txn.StoredNextId();
    if (!stored.ok()) return stored.status();
    next = std::max(next, *stored);
    return txn.ForEach([&](absl::string_view, const SnapshotRecord& r) {
      next = std::max(next, r.id + 1);
      return true;
    });
  }));
  for (Tier t : kTiers) {
    auto names = ListDir(layout.SnapshotsDir(t));
    if (!names.ok()) return names.status();
    for (const std::string& n : *names) {
      if (auto p = Layout::ParseSnapshotDirName(n)) next = std::max(next, p->first + 1);
    }
    auto staged = ListDir(layout.StagingDir(t));
    if (!staged.ok()) return staged.status();
    for (const std::string& n : *staged) {
      if (auto p = Layout::ParseStagingName(n)) next = std::max(next, p->first + 1);
    }
  }
  auto links = ListDir(layout.LinksDir());
  if (!links.ok()) return links.status();
  for (const std::string& n : *links) {
    if (auto id = Layout::ParseShortId(n)) next = std::max(next, *id + 1);
  }
  return next;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Snapshotter>> Snapshotter::Open(SnapshotterOptions options) {
  if (options.root.empty() || options.root[0] != '/') {
    return absl::InvalidArgumentError("root must be an absolute path");
  }
  if (options.fast_path.empty()) options.fast_path = options.root + "/fast";
  if (options.slow_path.empty()) options.slow_path = options.root + "/slow";
  for (const std::string* p : {&options.fast_path, &options.slow_path}) {
    if ((*p)[0] != '/') return absl::InvalidArgumentError(absl::StrCat("tier path ", *p, " is not absolute"));
  }
  if (options.fast_path == options.slow_path) {
    return absl::InvalidArgumentError("the fast and slow tiers must be different directories");
  }
  Layout layout(options.root, options.fast_path, options.slow_path);
  NDOCKER_RETURN_IF_ERROR(MakeDirs(options.root, 0700));
  NDOCKER_RETURN_IF_ERROR(MakeDirs(layout.MetadataDir(), 0700));
  NDOCKER_RETURN_IF_ERROR(MakeDirs(layout.LinksDir(), 0700));
  for (Tier t : kTiers) {
    NDOCKER_RETURN_IF_ERROR(MakeDirs(layout.TierRoot(t), 0700));
    NDOCKER_RETURN_IF_ERROR(MakeDirs(layout.SnapshotsDir(t), 0700));
    NDOCKER_RETURN_IF_ERROR(MakeDirs(layout.StagingDir(t), 0700));
  }
  auto meta = MetaStore::Open(layout.MetadataDir());
  if (!meta.ok()) return meta.status();
  // Before anything on a tier is touched: is it ours?
  auto claims = ClaimTiers(layout, **meta, options.claim_tiers);
  if (!claims.ok()) return claims.status();
  auto first_id = FirstFreeId(layout, **meta);
  if (!first_id.ok()) return first_id.status();
  // Stored before Cleanup deletes the traces it was derived from.
  NDOCKER_RETURN_IF_ERROR((*meta)->Update([&](MetaTxn& txn) { return txn.RaiseNextId(*first_id); }));
  std::unique_ptr<Snapshotter> s(new Snapshotter(std::move(options), *std::move(meta), *first_id));
  for (const TierClaim& c : *claims) {
    if (c.adopted && s->options_.claim_tiers == ClaimMode::kAdopt) {
      NDOCKER_RETURN_IF_ERROR(s->AdoptUnknown(c.tier));
    }
  }
  NDOCKER_RETURN_IF_ERROR(s->meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto bytes = CommittedBytes(txn, Tier::kFast);
    if (!bytes.ok()) return bytes.status();
    s->ledger_.Reset(*bytes);
    return absl::OkStatus();
  }));
  NDOCKER_RETURN_IF_ERROR(s->RepairLinks());
  // Start-up never depends on cleaning: whatever cannot go now is logged.
  if (absl::Status st = s->Cleanup(); !st.ok()) {
    spdlog::warn("msg=\"start-up cleanup incomplete\" error={}", Q(st.message()));
  }
  s->mover_.Start();
  return s;
}

// Moves what no record knows out of the way of an adopted tier's Cleanup:
// into <tier>/lost+found/<unix time>/, for the operator to look at.
absl::Status Snapshotter::AdoptUnknown(Tier tier) {
  std::set<std::string> known;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view, const SnapshotRecord& r) {
      if (r.tier == tier) known.insert(Layout::SnapshotDirName(r.id, r.generation));
      for (const RetiredCopy& c : r.retired) {
        if (c.tier == tier) known.insert(Layout::SnapshotDirName(r.id, c.generation));
      }
      return true;
    });
  }));
  const std::string dest = absl::StrCat(layout_.TierRoot(tier), "/", kLostAndFound, "/",
                                        absl::ToUnixSeconds(absl::Now()));
  int moved = 0;
  for (const auto& [dir, sub] : {std::pair{layout_.SnapshotsDir(tier), "snapshots"},
                                 std::pair{layout_.StagingDir(tier), "staging"}}) {
    auto names = ListDir(dir);
    if (!names.ok()) return names.status();
    for (const std::string& n : *names) {
      if (std::string(sub) == "snapshots" && known.contains(n)) continue;
      NDOCKER_RETURN_IF_ERROR(MakeDirs(absl::StrCat(dest, "/", sub), 0700));
      const std::string from = absl::StrCat(dir, "/", n), to = absl::StrCat(dest, "/", sub, "/", n);
      if (::rename(from.c_str(), to.c_str()) != 0) return LastErrnoStatus("move into lost+found", from);
      ++moved;
    }
  }
  if (moved > 0) {
    spdlog::warn("msg=\"adopted tier: moved directories no snapshot knows\" tier={} count={} to={}",
                 TierName(tier), moved, Q(dest));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Mount>> Snapshotter::Prepare(const std::string& key,
                                                        const std::string& parent,
                                                        const Labels& labels) {
  return Create(Kind::kActive, key, parent, labels);
}

absl::StatusOr<std::vector<Mount>> Snapshotter::View(const std::string& key,
                                                     const std::string& parent,
                                                     const Labels& labels) {
  return Create(Kind::kView, key, parent, labels);
}

Placement Snapshotter::FitFastFilesystem(Placement choice, int64_t expected_bytes) const {
  if (choice.tier != Tier::kFast || expected_bytes <= 0) return choice;
  struct statvfs vfs;
  if (::statvfs(layout_.TierRoot(Tier::kFast).c_str(), &vfs) != 0) return choice;
  const int64_t free_bytes = static_cast<int64_t>(vfs.f_bavail) * static_cast<int64_t>(vfs.f_frsize);
  if (free_bytes - options_.fast_fs_reserve_bytes >= expected_bytes) return choice;
  return Placement{Tier::kSlow, rule::kFastFsFull,
                   absl::StrCat("wanted fast (", choice.rule, "), but the fast filesystem has ",
                                free_bytes, " bytes free for an expected ", expected_bytes,
                                " (reserve ", options_.fast_fs_reserve_bytes, ")"),
                   expected_bytes};
}

absl::StatusOr<std::vector<Mount>> Snapshotter::Create(Kind kind, const std::string& key,
                                                       const std::string& parent,
                                                       const Labels& labels) {
  NDOCKER_RETURN_IF_ERROR(ValidateKey(key));
  NDOCKER_RETURN_IF_ERROR(ValidateLabels(labels));
  auto requested = RequestedTier(labels);
  if (!requested.ok()) return requested.status();

  // Decided before any lock: an advisor answers from memory.
  PlacementRequest request{.key = key, .parent = parent, .labels = &labels, .kind = kind,
                           .unpack_chain_id = kind == Kind::kActive ? UnpackChainId(key, labels) : "",
                           .now = absl::Now()};
  Placement want;
  if (*requested) {
    want = {**requested, rule::kLabel, absl::StrCat("label ndocker.tier=", TierName(**requested))};
  } else if (auto advice = options_.advisor ? options_.advisor->Advise(request) : std::nullopt) {
    want = *std::move(advice);
  } else {
    want = DefaultPlacement(request, options_.default_tier, options_.container_tier);
    if (want.rule == rule::kContainerRootfs && want.tier == Tier::kFast) {
      want.expected_bytes = options_.container_expected_bytes;
    }
  }

  // Cheap checks first, so bad requests touch no disk.
  std::optional<SnapshotRecord> parent_rec;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) -> absl::Status {
    if (!parent.empty()) {
      auto p = txn.Get(parent);
      if (!p.ok()) return p.status();
      if (!p->has_value()) {
        return absl::NotFoundError(absl::StrCat("parent snapshot ", parent, " does not exist"));
      }
      if ((*p)->kind != Kind::kCommitted) {
        return absl::InvalidArgumentError(absl::StrCat("parent ", parent, " is not a committed snapshot"));
      }
      parent_rec = **p;
    }
    auto existing = txn.Get(key);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) return absl::AlreadyExistsError(absl::StrCat("snapshot ", key, " already exists"));
    return absl::OkStatus();
  }));
  const Placement choice =
      FitFastFilesystem(FitToBudget(want, ledger_.budget(), ledger_.committed()), want.expected_bytes);

  // A shared stack for a container rootfs or a view on an image's top layer
  // (asked before any lock: the provider may mount it).
  std::optional<SharedLower> stack;
  const bool rootfs_or_view =
      kind == Kind::kView || (kind == Kind::kActive && request.unpack_chain_id.empty());
  if (options_.shared_lowers && parent_rec && rootfs_or_view) {
    stack = options_.shared_lowers->ForParent(parent_rec->id);
  }
  absl::Cleanup settle = [&] {
    if (stack) options_.shared_lowers->Settled(stack->id);
  };

  // The directory is built outside the metadata's write lock (the slow tier
  // may be a disk), under an id no one else can ever get; Cleanup skips ids
  // being created. A crash before the record commits leaves garbage only.
  const uint64_t id = ids_.Allocate();
  {
    absl::MutexLock lock(&creating_mu_);
    creating_.insert(id);
  }
  const std::string dir = layout_.SnapshotDir(choice.tier, id, 0);
  const std::string link = layout_.LinkPath(id);
  bool committed = false;
  absl::Cleanup undo = [&] {
    if (!committed) {
      ::unlink(link.c_str());
      (void)RemoveTree(dir);
    }
    absl::MutexLock lock(&creating_mu_);
    creating_.erase(id);
  };
  const std::string fs = dir + "/fs";
  NDOCKER_RETURN_IF_ERROR(MakeDir(dir, 0700));
  NDOCKER_RETURN_IF_ERROR(MakeDir(fs, 0755));
  if (kind == Kind::kActive) NDOCKER_RETURN_IF_ERROR(MakeDir(dir + "/work", 0711));
  if (parent_rec) {
    // Like overlay: the new upper starts owned as the parent's root dir,
    // which matters for user-namespace-remapped images.
    const std::string pfs = layout_.FsDir(parent_rec->tier, parent_rec->id, parent_rec->generation);
    struct stat pst;
    if (::lstat(pfs.c_str(), &pst) != 0) return LastErrnoStatus("stat parent snapshot directory", pfs);
    if (::lchown(fs.c_str(), pst.st_uid, pst.st_gid) != 0) return LastErrnoStatus("chown snapshot directory", fs);
  }
  FaultPoint(fault::kPrepareAfterMkdir);
  NDOCKER_RETURN_IF_ERROR(ReplaceSymlink(fs, link));
  FaultPoint(fault::kPrepareAfterLink);

  std::vector<Mount> mounts;
  const bool observe = options_.observer && kind == Kind::kActive && request.unpack_chain_id.empty();
  // A container rootfs or a view uses its chain (fast-tier pressure demotes
  // the least recently used layers first); an unpack does not.
  const bool uses_chain = kind == Kind::kView || (kind == Kind::kActive && request.unpack_chain_id.empty());
  std::vector<uint64_t> chain_ids;
  ndocker::RootfsPrepared rootfs;
  NDOCKER_RETURN_IF_ERROR(meta_->Update([&](MetaTxn& txn) -> absl::Status {
    // Again under the write lock: the parent may have gone, the key come.
    if (!parent.empty()) {
      auto p = txn.Get(parent);
      if (!p.ok()) return p.status();
      if (!p->has_value() || (*p)->kind != Kind::kCommitted) {
        return absl::NotFoundError(absl::StrCat("parent snapshot ", parent, " does not exist"));
      }
    }
    auto existing = txn.Get(key);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) return absl::AlreadyExistsError(absl::StrCat("snapshot ", key, " already exists"));
    NDOCKER_RETURN_IF_ERROR(txn.RaiseNextId(id + 1));
    SnapshotRecord rec;
    rec.id = id;
    rec.kind = kind;
    rec.parent = parent;
    rec.created = rec.updated = absl::Now();
    rec.labels = labels;
    DropEmptyValues(rec.labels);
    rec.tier = choice.tier;
    rec.placement_rule = choice.rule;
    rec.placement_reason = choice.reason;
    if (stack) rec.shared_lower = stack->id;
    NDOCKER_RETURN_IF_ERROR(txn.Put(key, rec));
    if (stack) {
      mounts = MountsOverStack(rec, stack->path);
    } else {
      auto m = MountsFor(txn, rec);
      if (!m.ok()) return m.status();
      mounts = *std::move(m);
    }
    if (observe) {
      rootfs.key = key;
      rootfs.id = id;
      rootfs.upper_dir = fs;
      rootfs.labels = rec.labels;
      rootfs.shared_lower = rec.shared_lower;
    }
    if (uses_chain) {
      for (std::string p = parent; !p.empty();) {
        auto pr = txn.Get(p);
        if (!pr.ok()) return pr.status();
        if (!pr->has_value()) break;
        chain_ids.push_back((*pr)->id);
        if (observe) rootfs.lowers.push_back({p, layout_.FsDir((*pr)->tier, (*pr)->id, (*pr)->generation)});
        p = (*pr)->parent;
      }
    }
    return absl::OkStatus();
  }));
  committed = true;
  if (uses_chain) NoteUsed(chain_ids);
  if (observe) options_.observer->RootfsPrepared(rootfs);
  FaultPoint(fault::kPrepareAfterTxn);
  spdlog::info("msg=\"{} snapshot\" key={} parent={} id={} tier={} rule={} reason={} shared_lower={}",
               kind == Kind::kActive ? "prepared" : "viewed", Q(key), Q(parent), id,
               TierName(choice.tier), choice.rule, Q(choice.reason), stack ? stack->id : 0);
  return mounts;
}

MountSpec Snapshotter::OwnMountSpec(const SnapshotRecord& rec) const {
  MountSpec spec;
  spec.kind = rec.kind;
  spec.fs = layout_.FsDir(rec.tier, rec.id, rec.generation);
  spec.work = layout_.WorkDir(rec.tier, rec.id, rec.generation);
  spec.index_off = index_off_;
  return spec;
}

absl::StatusOr<std::vector<Mount>> Snapshotter::MountsFor(const MetaTxn& txn,
                                                          const SnapshotRecord& rec) {
  MountSpec spec = OwnMountSpec(rec);
  std::string next = rec.parent;
  while (!next.empty()) {
    auto p = txn.Get(next);
    if (!p.ok()) return p.status();
    if (!p->has_value()) {
      return absl::DataLossError(absl::StrCat("metadata: parent ", next, " of a snapshot is missing"));
    }
    spec.parent_fs.push_back(layout_.FsDir((*p)->tier, (*p)->id, (*p)->generation));
    spec.parent_links.push_back(layout_.LinkPath((*p)->id));
    next = (*p)->parent;
  }
  return BuildMounts(spec);
}

std::vector<Mount> Snapshotter::MountsOverStack(const SnapshotRecord& rec, const std::string& stack) const {
  MountSpec spec = OwnMountSpec(rec);
  spec.parent_fs = {stack};
  spec.parent_links = {stack};
  return BuildMounts(spec);
}

absl::StatusOr<std::vector<Mount>> Snapshotter::Mounts(const std::string& key) {
  SnapshotRecord rec;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto r = MustGet(txn, key);
    if (!r.ok()) return r.status();
    if (r->kind == Kind::kCommitted) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot get mounts of committed snapshot ", key));
    }
    rec = *std::move(r);
    return absl::OkStatus();
  }));
  if (rec.shared_lower != 0 && options_.shared_lowers) {
    absl::StatusOr<std::string> stack = options_.shared_lowers->Path(rec.shared_lower);
    if (stack.ok()) return MountsOverStack(rec, *stack);
    // The chain's merged view is the stack's: slower, never wrong.
    spdlog::warn("msg=\"shared lower not available; mounting the parent chain\" key={} shared_lower={} error={}",
                 Q(key), rec.shared_lower, Q(stack.status().message()));
  }
  std::vector<Mount> mounts;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto m = MountsFor(txn, rec);
    if (!m.ok()) return m.status();
    mounts = *std::move(m);
    return absl::OkStatus();
  }));
  return mounts;
}

namespace {

// The record an active snapshot becomes at Commit.
SnapshotRecord Committed(const SnapshotRecord& active, const Labels& labels, const Usage& usage,
                         const Placement& choice) {
  SnapshotRecord c = active;
  c.kind = Kind::kCommitted;
  c.created = c.updated = absl::Now();
  c.labels = labels;
  DropEmptyValues(c.labels);
  c.size = usage.size;
  c.inodes = usage.inodes;
  c.tier = choice.tier;
  c.placement_rule = choice.rule;
  c.placement_reason = choice.reason;
  c.shared_lower = 0;  // a committed upper is an ordinary layer over its parent chain
  return c;
}

// Commit's checks inside its transaction: the active is still the one read
// before the slow part, and the name is free.
absl::StatusOr<SnapshotRecord> StillActive(MetaTxn& txn, const std::string& key,
                                           const std::string& name, const SnapshotRecord& rec) {
  auto cur = MustGet(txn, key);
  if (!cur.ok()) return cur.status();
  if (cur->id != rec.id || cur->kind != Kind::kActive || cur->generation != rec.generation) {
    return absl::FailedPreconditionError(absl::StrCat("snapshot ", key, " changed during commit"));
  }
  auto existing = txn.Get(name);
  if (!existing.ok()) return existing.status();
  if (existing->has_value()) return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
  return *cur;
}

}  // namespace

absl::Status Snapshotter::Commit(const std::string& name, const std::string& key,
                                 const Labels& labels) {
  NDOCKER_RETURN_IF_ERROR(ValidateKey(name));
  NDOCKER_RETURN_IF_ERROR(ValidateLabels(labels));
  SnapshotRecord rec;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto r = MustGet(txn, key);
    if (!r.ok()) return r.status();
    auto existing = txn.Get(name);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
    }
    if (r->kind != Kind::kActive) {
      return absl::FailedPreconditionError(absl::StrCat(
          "snapshot ", key, " is ", KindName(r->kind), ", only active snapshots can be committed"));
    }
    rec = *r;
    return absl::OkStatus();
  }));
  // The caller owns the active snapshot, so its size is stable from here on.
  auto usage = DiskUsage(layout_.FsDir(rec.tier, rec.id, rec.generation));
  if (!usage.ok()) return usage.status();

  // The budget is reserved at once, so two commits can never both take the
  // last free fast bytes; no lock is held for the slow part.
  const Tier from = rec.tier;
  Placement choice{from, rec.placement_rule, rec.placement_reason};
  bool reserved = false;
  if (from == Tier::kFast) {
    reserved = ledger_.TryReserve(usage->size);
    if (!reserved) {
      choice = MoveAtCommit(from, usage->size, ledger_.budget(), ledger_.committed()).value_or(choice);
      if (choice.tier == Tier::kFast) {
        // Raced with another commit for the last bytes: it goes slow.
        choice = Placement{Tier::kSlow, rule::kBudgetCommit,
                           absl::StrCat(usage->size, " bytes do not fit the fast budget")};
      }
    }
  }
  absl::Cleanup unreserve = [&] {
    if (reserved) ledger_.Release(usage->size);
  };
  if (choice.tier != from) return CommitMoving(name, key, labels, rec, *usage, choice);

  NDOCKER_RETURN_IF_ERROR(meta_->Update([&](MetaTxn& txn) -> absl::Status {
    auto cur = StillActive(txn, key, name, rec);
    if (!cur.ok()) return cur.status();
    NDOCKER_RETURN_IF_ERROR(txn.Delete(key));
    return txn.Put(name, Committed(*cur, labels, *usage, choice));
  }));
  std::move(unreserve).Cancel();
  ReportDone(key, name, rec, *usage, choice);
  return absl::OkStatus();
}

// A Commit whose data must go to the other tier (the fast budget has no room
// for it). Nothing can use an active snapshot as a lower layer, but the
// mover's discipline applies all the same: copy, switch, retire the old dir.
absl::Status Snapshotter::CommitMoving(const std::string& name, const std::string& key,
                                       const Labels& labels, const SnapshotRecord& rec,
                                       const Usage& usage, const Placement& choice) {
  if (!mover_.MarkBusy(rec.id)) {
    return absl::FailedPreconditionError(absl::StrCat("snapshot ", key, " is being committed"));
  }
  absl::Cleanup unbusy = [&] { mover_.ClearBusy(rec.id); };
  const uint64_t new_gen = mover_.NewGeneration(rec);
  auto copy = mover_.MakeCopy(rec.id, rec.generation, rec.tier, new_gen, choice.tier,
                              /*background=*/false, fault::kCommitAfterCopy, fault::kCommitAfterRename);
  if (!copy.ok()) return copy.status();
  absl::Status st = mover_.Switch(
      rec.id, choice.tier, new_gen,
      [&](MetaTxn& txn, uint64_t watermark) -> absl::Status {
        auto cur = StillActive(txn, key, name, rec);
        if (!cur.ok()) return cur.status();
        NDOCKER_RETURN_IF_ERROR(txn.Delete(key));
        SnapshotRecord c = Committed(*cur, labels, usage, choice);
        c.generation = new_gen;
        c.retired.push_back(RetiredCopy{rec.tier, rec.generation, watermark});
        return txn.Put(name, c);
      },
      fault::kCommitAfterTxn, fault::kCommitAfterLink);
  if (!st.ok()) {
    (void)RemoveTree(*copy);
    return st;
  }
  std::move(unbusy).Invoke();
  ReportDone(key, name, rec, usage, choice);
  // The active's old directory goes now unless its own mount is still up.
  if (auto left = mover_.Reap(); !left.ok()) {
    spdlog::warn("msg=\"reaping after a commit failed\" error={}", Q(left.status().message()));
  }
  return absl::OkStatus();
}

void Snapshotter::ReportDone(const std::string& key, const std::string& name, const SnapshotRecord& rec,
                             const Usage& usage, const Placement& choice) {
  if (choice.tier == Tier::kSlow && slow_flusher_) slow_flusher_->Request(usage.size);
  if (options_.advisor) {
    options_.advisor->Committed(CommitReport{.key = key, .name = name, .tier = choice.tier,
                                             .rule = choice.rule, .reason = choice.reason,
                                             .size = usage.size, .prepared = rec.created,
                                             .committed = absl::Now()});
  }
  spdlog::info("msg=\"committed snapshot\" key={} name={} id={} tier={} size={} rule={} reason={}",
               Q(key), Q(name), rec.id, TierName(choice.tier), usage.size, choice.rule, Q(choice.reason));
}

absl::Status Snapshotter::Remove(const std::string& key) {
  SnapshotRecord removed;
  NDOCKER_RETURN_IF_ERROR(meta_->Update([&](MetaTxn& txn) -> absl::Status {
    auto rec = MustGet(txn, key);
    if (!rec.ok()) return rec.status();
    auto children = txn.HasChildren(rec->id);
    if (!children.ok()) return children.status();
    if (*children) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot remove snapshot ", key, ": it has children"));
    }
    removed = *rec;
    return txn.Delete(key);
  }));
  if (removed.kind == Kind::kCommitted && removed.tier == Tier::kFast) {
    ledger_.Release(removed.size);
  }
  if (options_.observer) options_.observer->Removed(key, removed.kind);
  if (options_.shared_lowers) options_.shared_lowers->Removed(removed.id, removed.kind, removed.shared_lower);
  {
    absl::MutexLock lock(&used_mu_);
    last_used_.erase(removed.id);
  }
  // Like containerd's overlay plugin (asynchronous remove): the data goes at
  // the Cleanup that containerd's GC runs right after its Removes.
  spdlog::info("msg=\"removed snapshot\" key={} id={} tier={}", Q(key), removed.id,
               TierName(removed.tier));
  return absl::OkStatus();
}

absl::StatusOr<SnapshotInfo> Snapshotter::Stat(const std::string& key) {
  SnapshotInfo info;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto rec = MustGet(txn, key);
    if (!rec.ok()) return rec.status();
    info = ToInfo(key, *rec);
    return absl::OkStatus();
  }));
  return info;
}

absl::StatusOr<SnapshotInfo> Snapshotter::Update(const SnapshotInfo& info,
                                                 const std::vector<std::string>& paths) {
  SnapshotInfo out;
  NDOCKER_RETURN_IF_ERROR(meta_->Update([&](MetaTxn& txn) -> absl::Status {
    auto rec = MustGet(txn, info.name);
    if (!rec.ok()) return rec.status();
    if (paths.empty()) {
      rec->labels = info.labels;
    }
    for (const std::string& path : paths) {
      if (path == "labels") {
        rec->labels = info.labels;
      } else if (absl::StartsWith(path, "labels.")) {
        const std::string label = path.substr(7);
        auto it = info.labels.find(label);
        // An absent or empty value deletes the label (containerd's mask rule).
        if (it == info.labels.end() || it->second.empty()) {
          rec->labels.erase(label);
        } else {
          rec->labels[label] = it->second;
        }
      } else {
        return absl::InvalidArgumentError(
            absl::StrCat("cannot update ", path, " field on snapshot ", info.name));
      }
    }
    DropEmptyValues(rec->labels);
    NDOCKER_RETURN_IF_ERROR(ValidateLabels(rec->labels));
    rec->updated = absl::Now();
    NDOCKER_RETURN_IF_ERROR(txn.Put(info.name, *rec));
    out = ToInfo(info.name, *rec);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<Usage> Snapshotter::GetUsage(const std::string& key) {
  SnapshotRecord rec;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto r = MustGet(txn, key);
    if (!r.ok()) return r.status();
    rec = *r;
    return absl::OkStatus();
  }));
  if (rec.kind == Kind::kActive) return DiskUsage(layout_.FsDir(rec.tier, rec.id, rec.generation));
  return Usage{rec.size, rec.inodes};
}

absl::Status Snapshotter::Walk(const Filter& filter,
                               const std::function<absl::Status(const SnapshotInfo&)>& fn) {
  std::vector<SnapshotInfo> matched;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view key, const SnapshotRecord& r) {
      SnapshotInfo info = ToInfo(std::string(key), r);
      if (filter.Match(SnapshotFieldLookup(info))) matched.push_back(std::move(info));
      return true;
    });
  }));
  // Callbacks run outside the read transaction: a slow client must not pin
  // LMDB pages.
  for (const SnapshotInfo& info : matched) NDOCKER_RETURN_IF_ERROR(fn(info));
  return absl::OkStatus();
}

absl::Status Snapshotter::Cleanup() {
  absl::MutexLock cleanup_lock(&cleanup_mu_);
  // Retired copies first: those whose mounts are gone become plain garbage.
  if (auto left = mover_.Reap(); !left.ok()) {
    spdlog::warn("msg=\"cleanup: reaping retired copies failed\" error={}", Q(left.status().message()));
  }
  // Listed before the in-flight sets and the records are read: a directory
  // listed here either belongs to an id still being created or migrated (in
  // those sets), or its record committed before the read below, or it is
  // garbage. Nothing is held while deleting.
  struct Entry {
    std::string path;
    std::optional<uint64_t> id;
    bool staging = false;
    std::optional<std::pair<Tier, uint64_t>> copy;  // (tier, generation) for snapshot dirs
  };
  std::vector<Entry> entries;
  for (Tier t : kTiers) {
    auto names = ListDir(layout_.SnapshotsDir(t));
    if (!names.ok()) return names.status();
    for (const std::string& n : *names) {
      Entry e{absl::StrCat(layout_.SnapshotsDir(t), "/", n), std::nullopt, false, std::nullopt};
      if (auto p = Layout::ParseSnapshotDirName(n)) {
        e.id = p->first;
        e.copy = std::pair{t, p->second};
      }
      entries.push_back(std::move(e));
    }
    auto staged = ListDir(layout_.StagingDir(t));
    if (!staged.ok()) return staged.status();
    for (const std::string& n : *staged) {
      Entry e{absl::StrCat(layout_.StagingDir(t), "/", n), std::nullopt, true, std::nullopt};
      if (auto p = Layout::ParseStagingName(n)) e.id = p->first;
      entries.push_back(std::move(e));
    }
  }
  struct LinkEntry {
    std::string path;
    std::optional<uint64_t> id;
    bool temp;  // "<short>.tmp<pid>": a link being replaced (ReplaceSymlink)
  };
  std::vector<LinkEntry> links;
  auto link_names = ListDir(layout_.LinksDir());
  if (!link_names.ok()) return link_names.status();
  for (const std::string& n : *link_names) {
    const size_t dot = n.find('.');
    links.push_back(LinkEntry{absl::StrCat(layout_.LinksDir(), "/", n),
                              Layout::ParseShortId(absl::string_view(n).substr(0, dot)),
                              dot != std::string::npos});
  }
  FaultPoint(fault::kCleanupAfterList);
  std::set<uint64_t> busy = mover_.Busy();
  {
    absl::MutexLock lock(&creating_mu_);
    busy.insert(creating_.begin(), creating_.end());
  }
  std::set<std::tuple<Tier, uint64_t, uint64_t>> live;  // tier, id, generation
  std::set<uint64_t> live_ids;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view, const SnapshotRecord& r) {
      live.emplace(r.tier, r.id, r.generation);
      for (const RetiredCopy& c : r.retired) live.emplace(c.tier, r.id, c.generation);
      live_ids.insert(r.id);
      return true;
    });
  }));
  std::vector<Entry> doomed;
  for (Entry& e : entries) {
    if (e.id && busy.contains(*e.id)) continue;
    if (e.copy && live.contains({e.copy->first, *e.id, e.copy->second})) continue;
    doomed.push_back(std::move(e));
  }
  for (const LinkEntry& l : links) {
    // A temp link of an id in flight is about to be renamed over the link.
    if (l.id && (busy.contains(*l.id) || (!l.temp && live_ids.contains(*l.id)))) continue;
    doomed.push_back(Entry{l.path, l.id, l.temp, std::nullopt});
  }
  if (doomed.empty()) return absl::OkStatus();
  // Without the mount table nothing can be proven unused: delete nothing.
  auto mounts = MountUse::Read(layout_);
  if (!mounts.ok()) return mounts.status();
  int failed = 0;
  for (const Entry& e : doomed) {
    // A snapshot removed while an overlay still names it through its link:
    // its data and link stay until that mount is gone.
    // (A stray copy of a live snapshot was never behind the link while a
    // mount could resolve it, so only its path counts.)
    const bool removed_snapshot = !e.staging && e.id && !live_ids.contains(*e.id);
    if (mounts->PathInUse(e.path) || (removed_snapshot && !mounts->LinkUsers(*e.id).empty())) {
      spdlog::warn("msg=\"cleanup skipped what a mount may still use\" path={}", Q(e.path));
      continue;
    }
    if (absl::Status st = RemoveTree(e.path, [] { FaultPoint(fault::kCleanupMidDelete); }); !st.ok()) {
      ++failed;
      spdlog::warn("msg=\"cleanup could not remove\" path={} error={}", Q(e.path), Q(st.message()));
      continue;
    }
    spdlog::debug("msg=\"cleanup removed\" path={}", Q(e.path));
  }
  if (failed > 0) spdlog::warn("msg=\"cleanup left entries it could not remove\" count={}", failed);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<MigrationOutcome>> Snapshotter::Migrate(const std::string& name, Tier to,
                                                                   bool wait) {
  std::vector<std::string> keys;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto exact = txn.Get(name);
    if (!exact.ok()) return exact.status();
    if (exact->has_value()) {
      keys.push_back(name);
      return absl::OkStatus();
    }
    const std::string suffix = absl::StrCat("/", name);
    return txn.ForEach([&](absl::string_view key, const SnapshotRecord& r) {
      if (r.kind == Kind::kCommitted && absl::EndsWith(key, suffix)) keys.emplace_back(key);
      return true;
    });
  }));
  if (keys.empty()) return absl::NotFoundError(absl::StrCat("snapshot ", name, " does not exist"));
  std::vector<MigrationOutcome> out;
  for (const std::string& key : keys) {
    auto done = mover_.Migrate(key, to, wait);
    if (!done.ok()) return done.status();
    out.push_back(*std::move(done));
  }
  return out;
}

absl::Status Snapshotter::RepairLinks() {
  std::vector<std::tuple<std::string, uint64_t, Tier, uint64_t>> records;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view key, const SnapshotRecord& r) {
      records.emplace_back(std::string(key), r.id, r.tier, r.generation);
      return true;
    });
  }));
  for (const auto& [key, id, tier, gen] : records) {
    const std::string want = layout_.FsDir(tier, id, gen);
    struct stat st;
    if (::lstat(want.c_str(), &st) != 0) {
      // Never "repaired" into a dangling link: reported, and left for the
      // operator (ndockerctl status lists it).
      missing_.push_back(key);
      spdlog::error("msg=\"snapshot data is missing\" key={} id={} tier={} generation={} path={}",
                    Q(key), id, TierName(tier), gen, Q(want));
      continue;
    }
    const std::string link = layout_.LinkPath(id);
    char buf[4096];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
    if (n >= 0 && absl::string_view(buf, static_cast<size_t>(n)) == want) continue;
    // A crash between a switch and its link update, or before Prepare's txn.
    NDOCKER_RETURN_IF_ERROR(ReplaceSymlink(want, link));
    spdlog::info("msg=\"repaired short link\" id={} tier={} generation={}", id, TierName(tier), gen);
  }
  return absl::OkStatus();
}

StoreHealth Snapshotter::Health() {
  return StoreHealth{missing_, mover_.InFlight(), mover_.bytes_migrated(), mover_.bytes_demoted()};
}

absl::StatusOr<std::vector<TierStats>> Snapshotter::Stats() {
  std::vector<TierStats> stats;
  std::vector<std::pair<Tier, uint64_t>> actives;
  for (Tier t : kTiers) {
    TierStats s;
    s.tier = t;
    s.path = layout_.TierRoot(t);
    s.budget_bytes = t == Tier::kFast ? ledger_.budget().limit() : 0;
    stats.push_back(s);
  }
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view, const SnapshotRecord& r) {
      TierStats& s = stats[r.tier == Tier::kFast ? 0 : 1];
      s.snapshots += 1;
      if (r.kind == Kind::kCommitted) s.committed_bytes += r.size;
      if (r.kind == Kind::kActive) actives.emplace_back(r.tier, r.id);
      for (const RetiredCopy& c : r.retired) {
        TierStats& old = stats[c.tier == Tier::kFast ? 0 : 1];
        old.retired_copies += 1;
        old.retired_bytes += r.size;
      }
      return true;
    });
  }));
  for (const auto& [tier, id] : actives) {
    auto u = DiskUsage(layout_.FsDir(tier, id, 0));
    if (u.ok()) stats[tier == Tier::kFast ? 0 : 1].active_bytes += u->size;
  }
  return stats;
}

absl::StatusOr<std::vector<SnapshotEntry>> Snapshotter::Entries() {
  std::vector<SnapshotEntry> out;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view key, const SnapshotRecord& r) {
      out.push_back({std::string(key), r});
      return true;
    });
  }));
  return out;
}

void Snapshotter::NoteUsed(const std::vector<uint64_t>& ids) {
  const absl::Time now = absl::Now();
  absl::MutexLock lock(&used_mu_);
  for (uint64_t id : ids) last_used_[id] = now;
}

absl::flat_hash_map<uint64_t, absl::Time> Snapshotter::LastUsed() const {
  absl::MutexLock lock(&used_mu_);
  return last_used_;
}

}  // namespace ndocker
