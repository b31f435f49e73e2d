// Snapshot metadata in LMDB: the C original of the bbolt store that
// containerd's snapshots/storage uses. Every change is one transaction.
//
// Databases:
//   snapshots  key            -> SnapshotRecord (protobuf)
//   ids        be64(id)       -> key            (directory id -> key)
//   children   be64(parent id) be64(child id) -> "" (parent/child edges)
//   meta       "next_id"      -> be64; "m/<name>" -> store values (instance id)
//   aux        <space> NUL <key> -> bytes (other components' records)
// Edges use ids, which never change, so a Commit (key -> name) keeps them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "snapshotter/types.h"

struct MDB_env;
struct MDB_txn;

namespace ndocker {

// An older copy of a snapshot's data, kept while mounts made before its
// migration may still use it (see snapshotter/mover.h).
struct RetiredCopy {
  Tier tier = Tier::kSlow;
  uint64_t generation = 0;
  uint64_t watermark = 0;  // the next snapshot id when it was retired
  bool operator==(const RetiredCopy&) const = default;
};

struct SnapshotRecord {
  uint64_t id = 0;
  Kind kind = Kind::kUnknown;
  std::string parent;
  absl::Time created;
  absl::Time updated;
  Labels labels;
  Tier tier = Tier::kSlow;
  int64_t size = 0;    // stored at Commit
  int64_t inodes = 0;
  std::string placement_rule;    // see snapshotter/placement.h
  std::string placement_reason;
  uint64_t generation = 0;  // which copy is current (layout.h names its dir)
  std::vector<RetiredCopy> retired;
  uint64_t shared_lower = 0;  // see record.proto
};

// LMDB rejects longer keys; containerd keys are far shorter in practice.
inline constexpr size_t kMaxKeyBytes = 511;

class MetaTxn {
 public:
  absl::StatusOr<std::optional<SnapshotRecord>> Get(absl::string_view key) const;
  absl::StatusOr<std::optional<std::string>> KeyOfId(uint64_t id) const;
  absl::StatusOr<bool> HasChildren(uint64_t id) const;
  // Visits every record in key order until fn returns false.
  absl::Status ForEach(
      const std::function<bool(absl::string_view key, const SnapshotRecord&)>& fn) const;

  // Stores a record and its id and parent edges (the parent must exist).
  absl::Status Put(absl::string_view key, const SnapshotRecord& record);
  // Deletes a record and its id and parent edges; NotFound when absent.
  absl::Status Delete(absl::string_view key);
  // The id the next snapshot gets, as stored (1 for a new store). Ids are
  // handed out in memory (IdAllocator) and the stored value only ever grows.
  absl::StatusOr<uint64_t> StoredNextId() const;
  absl::Status RaiseNextId(uint64_t at_least);
  // Small named values of the store itself (e.g. the instance id that owns
  // the tiers); nullopt when absent.
  absl::StatusOr<std::optional<std::string>> GetMeta(absl::string_view name) const;
  absl::Status PutMeta(absl::string_view name, absl::string_view value);

  // Records of other components kept in the same store, so they share its
  // durability and its transactions (e.g. HBCSA's per-image profiles under
  // space "profiles"). Opaque bytes; the caller owns the format.
  absl::StatusOr<std::optional<std::string>> GetAux(absl::string_view space, absl::string_view key) const;
  absl::Status PutAux(absl::string_view space, absl::string_view key, absl::string_view value);
  // NotFound when absent.
  absl::Status DeleteAux(absl::string_view space, absl::string_view key);
  absl::Status ForEachAux(absl::string_view space,
                          const std::function<bool(absl::string_view key, absl::string_view value)>& fn) const;

 private:
  friend class MetaStore;
  MetaTxn(MDB_txn* txn, const unsigned* dbis) : txn_(txn), dbis_(dbis) {}
  MDB_txn* txn_;
  const unsigned* dbis_;
};

class MetaStore {
 public:
  static absl::StatusOr<std::unique_ptr<MetaStore>> Open(const std::string& dir);
  ~MetaStore();
  MetaStore(const MetaStore&) = delete;
  MetaStore& operator=(const MetaStore&) = delete;

  // A read transaction; several may run at once, also during a write.
  absl::Status View(const std::function<absl::Status(const MetaTxn&)>& fn) const;
  // A write transaction, committed (and synced) only when fn returns OK.
  // Writers are serialised by LMDB.
  absl::Status Update(const std::function<absl::Status(MetaTxn&)>& fn);

 private:
  MetaStore() = default;
  MDB_env* env_ = nullptr;
  unsigned dbis_[5] = {};
};

}  // namespace ndocker
