#include "snapshotter/snapshotter.h"

#include <sys/stat.h>
#include <unistd.h>

#include <set>
#include <utility>

#include "absl/cleanup/cleanup.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/disk_usage.h"
#include "snapshotter/errno_status.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/labels.h"
#include "snapshotter/log.h"
#include "snapshotter/mountinfo.h"
#include "snapshotter/mounts.h"
#include "snapshotter/snapshot_filter.h"
#include "snapshotter/status_macros.h"
#include "snapshotter/tree_copy.h"

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

Snapshotter::Snapshotter(SnapshotterOptions options, std::unique_ptr<MetaStore> meta)
    : options_(std::move(options)),
      layout_(options_.root, options_.fast_path, options_.slow_path),
      budget_(options_.fast_budget_bytes),
      index_off_(::access("/sys/module/overlay/parameters/index", F_OK) == 0),
      meta_(std::move(meta)) {
  if (options_.flush_slow_commits) {
    slow_flusher_ = std::make_unique<TierFlusher>(layout_.TierRoot(Tier::kSlow));
  }
}

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
  std::unique_ptr<Snapshotter> s(new Snapshotter(std::move(options), *std::move(meta)));
  NDOCKER_RETURN_IF_ERROR(s->meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto bytes = CommittedBytes(txn, Tier::kFast);
    if (!bytes.ok()) return bytes.status();
    s->fast_committed_bytes_ = *bytes;
    return absl::OkStatus();
  }));
  NDOCKER_RETURN_IF_ERROR(s->RepairLinks());
  {
    absl::MutexLock lock(&s->placement_mu_);
    NDOCKER_RETURN_IF_ERROR(s->CleanupLocked());
  }
  return s;
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

absl::StatusOr<std::vector<Mount>> Snapshotter::Create(Kind kind, const std::string& key,
                                                       const std::string& parent,
                                                       const Labels& labels) {
  NDOCKER_RETURN_IF_ERROR(ValidateKey(key));
  NDOCKER_RETURN_IF_ERROR(ValidateLabels(labels));
  auto requested = RequestedTier(labels);
  if (!requested.ok()) return requested.status();

  // Decided before the transaction: an advisor answers from memory, and
  // only the budget check needs the lock-free counter at the last moment.
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
  }

  std::vector<Mount> mounts;
  std::string placed_dir, placed_link, temp_dir;
  Placement choice;
  absl::Status st = meta_->Update([&](MetaTxn& txn) -> absl::Status {
    std::optional<SnapshotRecord> parent_rec;
    if (!parent.empty()) {
      auto p = txn.Get(parent);
      if (!p.ok()) return p.status();
      if (!p->has_value()) {
        return absl::NotFoundError(absl::StrCat("parent snapshot ", parent, " does not exist"));
      }
      if ((*p)->kind != Kind::kCommitted) {
        return absl::InvalidArgumentError(
            absl::StrCat("parent ", parent, " is not a committed snapshot"));
      }
      parent_rec = **p;
    }
    auto existing = txn.Get(key);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      return absl::AlreadyExistsError(absl::StrCat("snapshot ", key, " already exists"));
    }
    choice = FitToBudget(want, budget_, fast_committed_bytes_.load());
    auto id = txn.NextId();
    if (!id.ok()) return id.status();

    // Build the directory under a temporary name and rename it into place,
    // so a crash never leaves a half-made snapshot dir under its id.
    auto tmp = MakeTempDir(layout_.SnapshotsDir(choice.tier), "new-");
    if (!tmp.ok()) return tmp.status();
    temp_dir = *tmp;
    const std::string fs = temp_dir + "/fs";
    NDOCKER_RETURN_IF_ERROR(MakeDir(fs, 0755));
    if (kind == Kind::kActive) NDOCKER_RETURN_IF_ERROR(MakeDir(temp_dir + "/work", 0711));
    if (parent_rec) {
      // Like overlay: the new upper starts owned as the parent's root dir,
      // which matters for user-namespace-remapped images.
      const std::string pfs = layout_.FsDir(parent_rec->tier, parent_rec->id);
      struct stat pst;
      if (::lstat(pfs.c_str(), &pst) != 0) return LastErrnoStatus("lstat", pfs);
      if (::lchown(fs.c_str(), pst.st_uid, pst.st_gid) != 0) return LastErrnoStatus("lchown", fs);
    }
    const std::string dir = layout_.SnapshotDir(choice.tier, *id);
    if (::rename(temp_dir.c_str(), dir.c_str()) != 0) return LastErrnoStatus("rename", dir);
    temp_dir.clear();
    placed_dir = dir;
    NDOCKER_RETURN_IF_ERROR(ReplaceSymlink(layout_.FsDir(choice.tier, *id), layout_.LinkPath(*id)));
    placed_link = layout_.LinkPath(*id);

    SnapshotRecord rec;
    rec.id = *id;
    rec.kind = kind;
    rec.parent = parent;
    rec.created = rec.updated = absl::Now();
    rec.labels = labels;
    DropEmptyValues(rec.labels);
    rec.tier = choice.tier;
    rec.placement_rule = choice.rule;
    rec.placement_reason = choice.reason;
    NDOCKER_RETURN_IF_ERROR(txn.Put(key, rec));
    auto m = MountsFor(txn, rec);
    if (!m.ok()) return m.status();
    mounts = *std::move(m);
    return absl::OkStatus();
  });
  if (!st.ok()) {
    if (!temp_dir.empty()) (void)RemoveAll(temp_dir);
    if (!placed_dir.empty()) (void)RemoveAll(placed_dir);
    if (!placed_link.empty()) ::unlink(placed_link.c_str());
    return st;
  }
  spdlog::info("msg=\"{} snapshot\" key={} parent={} tier={} rule={} reason={}",
               kind == Kind::kActive ? "prepared" : "viewed", Q(key), Q(parent),
               TierName(choice.tier), choice.rule, Q(choice.reason));
  return mounts;
}

absl::StatusOr<std::vector<Mount>> Snapshotter::MountsFor(const MetaTxn& txn,
                                                          const SnapshotRecord& rec) {
  MountSpec spec;
  spec.kind = rec.kind;
  spec.fs = layout_.FsDir(rec.tier, rec.id);
  spec.work = layout_.WorkDir(rec.tier, rec.id);
  spec.index_off = index_off_;
  std::string next = rec.parent;
  while (!next.empty()) {
    auto p = txn.Get(next);
    if (!p.ok()) return p.status();
    if (!p->has_value()) {
      return absl::DataLossError(absl::StrCat("metadata: parent ", next, " of a snapshot is missing"));
    }
    spec.parent_fs.push_back(layout_.FsDir((*p)->tier, (*p)->id));
    spec.parent_links.push_back(layout_.LinkPath((*p)->id));
    next = (*p)->parent;
  }
  return BuildMounts(spec);
}

absl::StatusOr<std::vector<Mount>> Snapshotter::Mounts(const std::string& key) {
  std::vector<Mount> mounts;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) -> absl::Status {
    auto rec = MustGet(txn, key);
    if (!rec.ok()) return rec.status();
    if (rec->kind == Kind::kCommitted) {
      return absl::FailedPreconditionError(
          absl::StrCat("cannot get mounts of committed snapshot ", key));
    }
    auto m = MountsFor(txn, *rec);
    if (!m.ok()) return m.status();
    mounts = *std::move(m);
    return absl::OkStatus();
  }));
  return mounts;
}

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
  auto usage = DiskUsage(layout_.FsDir(rec.tier, rec.id));
  if (!usage.ok()) return usage.status();

  // Commits are serialised here so that two of them cannot both fit into the
  // last free fast bytes.
  absl::MutexLock lock(&placement_mu_);
  const Tier from = rec.tier;
  const Placement choice =
      MoveAtCommit(from, usage->size, budget_, fast_committed_bytes_.load())
          .value_or(Placement{from, rec.placement_rule, rec.placement_reason});
  if (choice.tier != from) {
    // Nothing can use an active snapshot as a lower layer, so it may move.
    NDOCKER_RETURN_IF_ERROR(MoveFs(rec.id, from, choice.tier));
  }
  absl::Status st = meta_->Update([&](MetaTxn& txn) -> absl::Status {
    auto cur = MustGet(txn, key);
    if (!cur.ok()) return cur.status();
    if (cur->id != rec.id || cur->kind != Kind::kActive) {
      return absl::FailedPreconditionError(absl::StrCat("snapshot ", key, " changed during commit"));
    }
    auto existing = txn.Get(name);
    if (!existing.ok()) return existing.status();
    if (existing->has_value()) {
      return absl::AlreadyExistsError(absl::StrCat("snapshot ", name, " already exists"));
    }
    NDOCKER_RETURN_IF_ERROR(txn.Delete(key));
    SnapshotRecord committed = *cur;
    committed.kind = Kind::kCommitted;
    committed.created = committed.updated = absl::Now();
    committed.labels = labels;
    DropEmptyValues(committed.labels);
    committed.size = usage->size;
    committed.inodes = usage->inodes;
    committed.tier = choice.tier;
    committed.placement_rule = choice.rule;
    committed.placement_reason = choice.reason;
    return txn.Put(name, committed);
  });
  if (st.ok()) {
    if (choice.tier == Tier::kFast) fast_committed_bytes_ += usage->size;
    if (choice.tier == Tier::kSlow && slow_flusher_) slow_flusher_->Request(usage->size);
    if (options_.advisor) {
      options_.advisor->Committed(CommitReport{.key = key, .name = name, .tier = choice.tier,
                                               .rule = choice.rule, .reason = choice.reason,
                                               .size = usage->size, .prepared = rec.created,
                                               .committed = absl::Now()});
    }
  }
  if (choice.tier == from) {
    if (st.ok()) {
      spdlog::info("msg=\"committed snapshot\" key={} name={} tier={} size={} rule={}", Q(key),
                   Q(name), TierName(from), usage->size, choice.rule);
    }
    return st;
  }
  const std::string old_dir = layout_.SnapshotDir(from, rec.id);
  const std::string new_dir = layout_.SnapshotDir(choice.tier, rec.id);
  if (!st.ok()) {
    // The snapshot stays active on its old tier. A rename on one filesystem
    // moved the data itself, so it goes back before the new dir is dropped.
    const std::string old_fs = layout_.FsDir(from, rec.id);
    if (::access(old_fs.c_str(), F_OK) != 0 &&
        ::rename(layout_.FsDir(choice.tier, rec.id).c_str(), old_fs.c_str()) != 0) {
      spdlog::error("msg=\"commit failed and the moved data could not be put back\" key={} path={}",
                    Q(key), Q(new_dir));
      return st;
    }
    (void)RemoveAll(new_dir);
    return st;
  }
  NDOCKER_RETURN_IF_ERROR(ReplaceSymlink(layout_.FsDir(choice.tier, rec.id), layout_.LinkPath(rec.id)));
  // The old copy goes now unless a mount still refers to it (then Cleanup
  // removes it once that mount is gone).
  auto mounts = ReadMountInfo();
  if (mounts.ok() && !DirInUse(*mounts, old_dir)) NDOCKER_RETURN_IF_ERROR(RemoveAll(old_dir));
  spdlog::info("msg=\"committed snapshot\" key={} name={} tier={} size={} rule={} reason={}",
               Q(key), Q(name), TierName(choice.tier), usage->size, choice.rule, Q(choice.reason));
  return absl::OkStatus();
}

absl::Status Snapshotter::MoveFs(uint64_t id, Tier from, Tier to) {
  const std::string src = layout_.FsDir(from, id);
  const std::string dst_dir = layout_.SnapshotDir(to, id);
  auto staging = MakeTempDir(layout_.StagingDir(to), absl::StrCat(id, "-"));
  if (!staging.ok()) return staging.status();
  const std::string staged_fs = *staging + "/fs";
  bool renamed = false;
  // On failure the data goes back where it was; only a copy is thrown away.
  absl::Cleanup drop_staging = [&] {
    if (renamed) ::rename(staged_fs.c_str(), src.c_str());
    (void)RemoveAll(*staging);
  };
  auto same = SameFilesystem(src, layout_.StagingDir(to));
  if (!same.ok()) return same.status();
  if (*same) {
    // One filesystem (e.g. both tiers on one disk in tests): a rename moves it.
    if (::rename(src.c_str(), staged_fs.c_str()) != 0) return LastErrnoStatus("rename", src);
    renamed = true;
  } else {
    NDOCKER_RETURN_IF_ERROR(MakeDir(staged_fs, 0755));
    NDOCKER_RETURN_IF_ERROR(CopyTree(src, staged_fs, options_.sync_migrations));
  }
  if (::rename(staging->c_str(), dst_dir.c_str()) != 0) return LastErrnoStatus("rename", dst_dir);
  std::move(drop_staging).Cancel();
  return absl::OkStatus();
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
    fast_committed_bytes_ -= removed.size;
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
  if (rec.kind == Kind::kActive) return DiskUsage(layout_.FsDir(rec.tier, rec.id));
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
  absl::MutexLock lock(&placement_mu_);
  return CleanupLocked();
}

absl::Status Snapshotter::CleanupLocked() {
  std::vector<std::string> doomed;
  // Listing under the write lock: no Prepare is between mkdtemp and its
  // commit, so every dir without a record is garbage. Deleting comes after.
  NDOCKER_RETURN_IF_ERROR(meta_->Update([&](MetaTxn& txn) -> absl::Status {
    std::set<std::pair<Tier, uint64_t>> live;
    std::set<uint64_t> live_ids;
    NDOCKER_RETURN_IF_ERROR(txn.ForEach([&](absl::string_view, const SnapshotRecord& r) {
      live.emplace(r.tier, r.id);
      live_ids.insert(r.id);
      return true;
    }));
    for (Tier t : kTiers) {
      auto names = ListDir(layout_.SnapshotsDir(t));
      if (!names.ok()) return names.status();
      for (const std::string& n : *names) {
        auto id = Layout::ParseId(n);
        if (!id || !live.contains({t, *id})) doomed.push_back(layout_.SnapshotsDir(t) + "/" + n);
      }
      auto staged = ListDir(layout_.StagingDir(t));
      if (!staged.ok()) return staged.status();
      for (const std::string& n : *staged) doomed.push_back(layout_.StagingDir(t) + "/" + n);
    }
    auto links = ListDir(layout_.LinksDir());
    if (!links.ok()) return links.status();
    for (const std::string& n : *links) {
      auto id = Layout::ParseShortId(n);
      if (!id || !live_ids.contains(*id)) doomed.push_back(layout_.LinksDir() + "/" + n);
    }
    return absl::OkStatus();
  }));
  if (doomed.empty()) return absl::OkStatus();
  auto mounts = ReadMountInfo();
  if (!mounts.ok()) return mounts.status();
  for (const std::string& path : doomed) {
    if (DirInUse(*mounts, path)) {
      spdlog::warn("msg=\"cleanup skipped a directory a mount still uses\" path={}", Q(path));
      continue;
    }
    NDOCKER_RETURN_IF_ERROR(RemoveAll(path));
    spdlog::debug("msg=\"cleanup removed\" path={}", Q(path));
  }
  return absl::OkStatus();
}

absl::Status Snapshotter::RepairLinks() {
  std::vector<std::pair<uint64_t, Tier>> records;
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view, const SnapshotRecord& r) {
      records.emplace_back(r.id, r.tier);
      return true;
    });
  }));
  for (const auto& [id, tier] : records) {
    const std::string want = layout_.FsDir(tier, id);
    const std::string link = layout_.LinkPath(id);
    char buf[4096];
    ssize_t n = ::readlink(link.c_str(), buf, sizeof(buf));
    if (n >= 0 && absl::string_view(buf, static_cast<size_t>(n)) == want) continue;
    // A crash between a tier move's metadata switch and its link update.
    NDOCKER_RETURN_IF_ERROR(ReplaceSymlink(want, link));
    spdlog::info("msg=\"repaired short link\" id={} tier={}", id, TierName(tier));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<TierStats>> Snapshotter::Stats() {
  std::vector<TierStats> stats;
  std::vector<std::pair<Tier, uint64_t>> actives;
  for (Tier t : kTiers) {
    TierStats s;
    s.tier = t;
    s.path = layout_.TierRoot(t);
    s.budget_bytes = t == Tier::kFast ? budget_.limit() : 0;
    stats.push_back(s);
  }
  NDOCKER_RETURN_IF_ERROR(meta_->View([&](const MetaTxn& txn) {
    return txn.ForEach([&](absl::string_view, const SnapshotRecord& r) {
      TierStats& s = stats[r.tier == Tier::kFast ? 0 : 1];
      s.snapshots += 1;
      if (r.kind == Kind::kCommitted) s.committed_bytes += r.size;
      if (r.kind == Kind::kActive) actives.emplace_back(r.tier, r.id);
      return true;
    });
  }));
  for (const auto& [tier, id] : actives) {
    auto u = DiskUsage(layout_.FsDir(tier, id));
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

}  // namespace ndocker
