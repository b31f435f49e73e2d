#include "snapshotter/metastore.h"

#include <lmdb.h>

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "ndocker/store/v1/record.pb.h"
#include "snapshotter/timestamp.h"

namespace ndocker {
namespace {

enum Db { kSnapshots = 0, kIds = 1, kChildren = 2, kMeta = 3, kAux = 4 };
constexpr const char* kDbNames[] = {"snapshots", "ids", "children", "meta", "aux"};
constexpr int kDbCount = 5;
constexpr size_t kMapSize = size_t{4} << 30;  // address space only; the file grows as needed

absl::Status MdbError(int rc, absl::string_view what) {
  return absl::InternalError(absl::StrCat("metadata ", what, ": ", mdb_strerror(rc)));
}

MDB_val Val(absl::string_view s) { return MDB_val{s.size(), const_cast<char*>(s.data())}; }
absl::string_view View(const MDB_val& v) { return {static_cast<const char*>(v.mv_data), v.mv_size}; }

std::array<char, 8> Be64(uint64_t v) {
  std::array<char, 8> out;
  for (int i = 7; i >= 0; --i, v >>= 8) out[i] = static_cast<char>(v & 0xff);
  return out;
}
uint64_t FromBe64(absl::string_view s) {
  uint64_t v = 0;
  for (unsigned char c : s.substr(0, 8)) v = (v << 8) | c;
  return v;
}
std::string EdgeKey(uint64_t parent, uint64_t child) {
  auto p = Be64(parent), c = Be64(child);
  std::string k(p.data(), p.size());
  k.append(c.data(), c.size());
  return k;
}

std::string Encode(const SnapshotRecord& r) {
  ndocker::store::v1::SnapshotRecord pb;
  pb.set_id(r.id);
  pb.set_kind(static_cast<ndocker::store::v1::Kind>(r.kind));
  pb.set_parent(r.parent);
  int64_t s;
  int32_t n;
  SplitTime(r.created, &s, &n);
  pb.set_created_seconds(s);
  pb.set_created_nanos(n);
  SplitTime(r.updated, &s, &n);
  pb.set_updated_seconds(s);
  pb.set_updated_nanos(n);
  pb.mutable_labels()->insert(r.labels.begin(), r.labels.end());
  pb.set_tier(r.tier == Tier::kFast ? ndocker::store::v1::TIER_FAST : ndocker::store::v1::TIER_SLOW);
  pb.set_size(r.size);
  pb.set_inodes(r.inodes);
  pb.set_placement_rule(r.placement_rule);
  pb.set_placement_reason(r.placement_reason);
  pb.set_generation(r.generation);
  for (const RetiredCopy& c : r.retired) {
    auto* rc = pb.add_retired();
    rc->set_tier(c.tier == Tier::kFast ? ndocker::store::v1::TIER_FAST : ndocker::store::v1::TIER_SLOW);
    rc->set_generation(c.generation);
    rc->set_watermark(c.watermark);
  }
  pb.set_shared_lower(r.shared_lower);
  return pb.SerializeAsString();
}

absl::StatusOr<SnapshotRecord> Decode(absl::string_view bytes) {
  ndocker::store::v1::SnapshotRecord pb;
  if (!pb.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::DataLossError("metadata: corrupt snapshot record");
  }
  SnapshotRecord r;
  r.id = pb.id();
  r.kind = static_cast<Kind>(pb.kind());
  r.parent = pb.parent();
  r.created = JoinTime(pb.created_seconds(), pb.created_nanos());
  r.updated = JoinTime(pb.updated_seconds(), pb.updated_nanos());
  r.labels = Labels(pb.labels().begin(), pb.labels().end());
  r.tier = pb.tier() == ndocker::store::v1::TIER_FAST ? Tier::kFast : Tier::kSlow;
  r.size = pb.size();
  r.inodes = pb.inodes();
  r.placement_rule = pb.placement_rule();
  r.placement_reason = pb.placement_reason();
  r.generation = pb.generation();
  for (const auto& rc : pb.retired()) {
    r.retired.push_back(RetiredCopy{
        rc.tier() == ndocker::store::v1::TIER_FAST ? Tier::kFast : Tier::kSlow, rc.generation(),
        rc.watermark()});
  }
  r.shared_lower = pb.shared_lower();
  return r;
}

// Closes an LMDB cursor on scope exit.
struct CursorCloser {
  MDB_cursor* c;
  ~CursorCloser() { mdb_cursor_close(c); }
};

}  // namespace

absl::StatusOr<std::optional<SnapshotRecord>> MetaTxn::Get(absl::string_view key) const {
  if (key.empty() || key.size() > kMaxKeyBytes) return std::nullopt;
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, dbis_[kSnapshots], &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != 0) return MdbError(rc, "get");
  auto rec = Decode(View(v));
  if (!rec.ok()) return rec.status();
  return std::optional<SnapshotRecord>(*std::move(rec));
}

absl::StatusOr<std::optional<std::string>> MetaTxn::KeyOfId(uint64_t id) const {
  auto idk = Be64(id);
  MDB_val k{idk.size(), idk.data()}, v;
  int rc = mdb_get(txn_, dbis_[kIds], &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != 0) return MdbError(rc, "get id");
  return std::optional<std::string>(std::string(View(v)));
}

absl::StatusOr<bool> MetaTxn::HasChildren(uint64_t id) const {
  MDB_cursor* cur;
  if (int rc = mdb_cursor_open(txn_, dbis_[kChildren], &cur); rc != 0) return MdbError(rc, "cursor");
  CursorCloser closer{cur};
  auto prefix = Be64(id);
  MDB_val k{prefix.size(), prefix.data()}, v;
  int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
  if (rc == MDB_NOTFOUND) return false;
  if (rc != 0) return MdbError(rc, "children");
  return View(k).substr(0, 8) == absl::string_view(prefix.data(), prefix.size());
}

absl::Status MetaTxn::ForEach(
    const std::function<bool(absl::string_view, const SnapshotRecord&)>& fn) const {
  MDB_cursor* cur;
  if (int rc = mdb_cursor_open(txn_, dbis_[kSnapshots], &cur); rc != 0) return MdbError(rc, "cursor");
  CursorCloser closer{cur};
  MDB_val k, v;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc != MDB_NOTFOUND;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (rc != 0) return MdbError(rc, "iterate");
    auto rec = Decode(View(v));
    if (!rec.ok()) return rec.status();
    if (!fn(View(k), *rec)) break;
  }
  return absl::OkStatus();
}

absl::Status MetaTxn::Put(absl::string_view key, const SnapshotRecord& record) {
  if (key.empty() || key.size() > kMaxKeyBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("snapshot key must be 1 to ", kMaxKeyBytes, " bytes"));
  }
  // Check the parent before writing anything: a failed Put changes nothing.
  std::optional<SnapshotRecord> parent;
  if (!record.parent.empty()) {
    auto p = Get(record.parent);
    if (!p.ok()) return p.status();
    if (!p->has_value()) {
      return absl::NotFoundError(absl::StrCat("parent snapshot ", record.parent, " does not exist"));
    }
    parent = **p;
  }
  std::string bytes = Encode(record);
  MDB_val k = Val(key), v = Val(bytes);
  if (int rc = mdb_put(txn_, dbis_[kSnapshots], &k, &v, 0); rc != 0) return MdbError(rc, "put");
  auto idk = Be64(record.id);
  MDB_val ik{idk.size(), idk.data()}, iv = Val(key);
  if (int rc = mdb_put(txn_, dbis_[kIds], &ik, &iv, 0); rc != 0) return MdbError(rc, "put id");
  if (parent) {
    std::string edge = EdgeKey(parent->id, record.id);
    MDB_val ek = Val(edge), ev{0, nullptr};
    if (int rc = mdb_put(txn_, dbis_[kChildren], &ek, &ev, 0); rc != 0) return MdbError(rc, "put edge");
  }
  return absl::OkStatus();
}

absl::Status MetaTxn::Delete(absl::string_view key) {
  auto rec = Get(key);
  if (!rec.ok()) return rec.status();
  if (!rec->has_value()) return absl::NotFoundError(absl::StrCat("snapshot ", key, " does not exist"));
  MDB_val k = Val(key);
  if (int rc = mdb_del(txn_, dbis_[kSnapshots], &k, nullptr); rc != 0) return MdbError(rc, "delete");
  auto idk = Be64((*rec)->id);
  MDB_val ik{idk.size(), idk.data()};
  if (int rc = mdb_del(txn_, dbis_[kIds], &ik, nullptr); rc != 0 && rc != MDB_NOTFOUND) {
    return MdbError(rc, "delete id");
  }
  if (!(*rec)->parent.empty()) {
    auto parent = Get((*rec)->parent);
    if (!parent.ok()) return parent.status();
    if (parent->has_value()) {
      std::string edge = EdgeKey((*parent)->id, (*rec)->id);
      MDB_val ek = Val(edge);
      if (int rc = mdb_del(txn_, dbis_[kChildren], &ek, nullptr); rc != 0 && rc != MDB_NOTFOUND) {
        return MdbError(rc, "delete edge");
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<uint64_t> MetaTxn::StoredNextId() const {
  MDB_val k = Val("next_id"), v;
  int rc = mdb_get(txn_, dbis_[kMeta], &k, &v);
  if (rc == MDB_NOTFOUND) return uint64_t{1};
  if (rc != 0) return MdbError(rc, "get next_id");
  return FromBe64(View(v));
}

absl::Status MetaTxn::RaiseNextId(uint64_t at_least) {
  auto stored = StoredNextId();
  if (!stored.ok()) return stored.status();
  if (*stored >= at_least) return absl::OkStatus();
  auto bytes = Be64(at_least);
  MDB_val k = Val("next_id"), nv{bytes.size(), bytes.data()};
  if (int rc = mdb_put(txn_, dbis_[kMeta], &k, &nv, 0); rc != 0) return MdbError(rc, "put next_id");
  return absl::OkStatus();
}

absl::StatusOr<std::optional<std::string>> MetaTxn::GetMeta(absl::string_view name) const {
  const std::string key = absl::StrCat("m/", name);
  MDB_val k = Val(key), v;
  int rc = mdb_get(txn_, dbis_[kMeta], &k, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != 0) return MdbError(rc, "get meta");
  return std::optional<std::string>(std::string(View(v)));
}

absl::Status MetaTxn::PutMeta(absl::string_view name, absl::string_view value) {
  const std::string key = absl::StrCat("m/", name);
  MDB_val k = Val(key), v = Val(value);
  if (int rc = mdb_put(txn_, dbis_[kMeta], &k, &v, 0); rc != 0) return MdbError(rc, "put meta");
  return absl::OkStatus();
}

namespace {
std::string AuxKey(absl::string_view space, absl::string_view key) {
  std::string k(space);
  k.push_back('\0');
  k.append(key.data(), key.size());
  return k;
}
}  // namespace

absl::StatusOr<std::optional<std::string>> MetaTxn::GetAux(absl::string_view space,
                                                           absl::string_view key) const {
  const std::string k = AuxKey(space, key);
  if (k.size() > kMaxKeyBytes) return std::nullopt;
  MDB_val mk = Val(k), v;
  int rc = mdb_get(txn_, dbis_[kAux], &mk, &v);
  if (rc == MDB_NOTFOUND) return std::nullopt;
  if (rc != 0) return MdbError(rc, "get aux");
  return std::optional<std::string>(std::string(View(v)));
}

absl::Status MetaTxn::PutAux(absl::string_view space, absl::string_view key, absl::string_view value) {
  const std::string k = AuxKey(space, key);
  if (k.size() > kMaxKeyBytes) return absl::InvalidArgumentError("metadata: aux key too long");
  MDB_val mk = Val(k), v = Val(value);
  if (int rc = mdb_put(txn_, dbis_[kAux], &mk, &v, 0); rc != 0) return MdbError(rc, "put aux");
  return absl::OkStatus();
}

absl::Status MetaTxn::DeleteAux(absl::string_view space, absl::string_view key) {
  const std::string k = AuxKey(space, key);
  MDB_val mk = Val(k);
  int rc = mdb_del(txn_, dbis_[kAux], &mk, nullptr);
  if (rc == MDB_NOTFOUND) return absl::NotFoundError(absl::StrCat(space, " ", key, " does not exist"));
  if (rc != 0) return MdbError(rc, "delete aux");
  return absl::OkStatus();
}

absl::Status MetaTxn::ForEachAux(
    absl::string_view space, const std::function<bool(absl::string_view, absl::string_view)>& fn) const {
  MDB_cursor* cur;
  if (int rc = mdb_cursor_open(txn_, dbis_[kAux], &cur); rc != 0) return MdbError(rc, "cursor");
  CursorCloser closer{cur};
  const std::string prefix = AuxKey(space, "");
  MDB_val k = Val(prefix), v;
  for (int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE); rc != MDB_NOTFOUND;
       rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
    if (rc != 0) return MdbError(rc, "iterate aux");
    const absl::string_view key = View(k);
    if (key.substr(0, prefix.size()) != prefix) break;
    if (!fn(key.substr(prefix.size()), View(v))) break;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<MetaStore>> MetaStore::Open(const std::string& dir) {
  std::unique_ptr<MetaStore> store(new MetaStore());
  if (int rc = mdb_env_create(&store->env_); rc != 0) return MdbError(rc, "env create");
  if (int rc = mdb_env_set_maxdbs(store->env_, kDbCount); rc != 0) return MdbError(rc, "set maxdbs");
  if (int rc = mdb_env_set_mapsize(store->env_, kMapSize); rc != 0) return MdbError(rc, "set mapsize");
  // MDB_NOTLS: read transactions are not bound to a thread (gRPC thread pool).
  if (int rc = mdb_env_open(store->env_, dir.c_str(), MDB_NOTLS, 0600); rc != 0) {
    return MdbError(rc, absl::StrCat("open ", dir));
  }
  MDB_txn* txn;
  if (int rc = mdb_txn_begin(store->env_, nullptr, 0, &txn); rc != 0) return MdbError(rc, "begin");
  for (int i = 0; i < kDbCount; ++i) {
    if (int rc = mdb_dbi_open(txn, kDbNames[i], MDB_CREATE, &store->dbis_[i]); rc != 0) {
      mdb_txn_abort(txn);
      return MdbError(rc, absl::StrCat("open db ", kDbNames[i]));
    }
  }
  if (int rc = mdb_txn_commit(txn); rc != 0) return MdbError(rc, "commit");
  return store;
}

MetaStore::~MetaStore() {
  if (env_ != nullptr) mdb_env_close(env_);
}

absl::Status MetaStore::View(const std::function<absl::Status(const MetaTxn&)>& fn) const {
  MDB_txn* txn;
  if (int rc = mdb_txn_begin(env_, nullptr, MDB_RDONLY, &txn); rc != 0) return MdbError(rc, "begin read");
  absl::Status st = fn(MetaTxn(txn, dbis_));
  mdb_txn_abort(txn);
  return st;
}

absl::Status MetaStore::Update(const std::function<absl::Status(MetaTxn&)>& fn) {
  MDB_txn* txn;
  if (int rc = mdb_txn_begin(env_, nullptr, 0, &txn); rc != 0) return MdbError(rc, "begin write");
  MetaTxn t(txn, dbis_);
  absl::Status st = fn(t);
  if (!st.ok()) {
    mdb_txn_abort(txn);
    return st;
  }
  if (int rc = mdb_txn_commit(txn); rc != 0) return MdbError(rc, "commit");
  return absl::OkStatus();
}

}  // namespace ndocker
