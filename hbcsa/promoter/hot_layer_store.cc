#include "hbcsa/promoter/hot_layer_store.h"

#include <set>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "snapshotter/fs_ops.h"
#include "snapshotter/log.h"

namespace ndocker::hbcsa {

namespace {

constexpr char kSpace[] = "hot";
constexpr char kIdSpace[] = "hot-ids";
constexpr char kNextId[] = "next";

absl::StatusOr<std::optional<HotLayerRecord>> Load(const MetaTxn& txn, const std::string& image) {
  absl::StatusOr<std::optional<std::string>> bytes = txn.GetAux(kSpace, image);
  if (!bytes.ok()) return bytes.status();
  if (!*bytes) return std::optional<HotLayerRecord>();
  absl::StatusOr<HotLayerRecord> r = DecodeHotLayerRecord(**bytes);
  if (!r.ok()) return r.status();
  return std::optional<HotLayerRecord>(*std::move(r));
}

absl::StatusOr<std::vector<HotLayerRecord>> LoadAll(const MetaTxn& txn) {
  std::vector<HotLayerRecord> out;
  absl::Status bad;
  absl::Status each = txn.ForEachAux(kSpace, [&](absl::string_view, absl::string_view value) {
    absl::StatusOr<HotLayerRecord> r = DecodeHotLayerRecord(std::string(value));
    if (!r.ok()) {
      bad = r.status();
      return false;
    }
    out.push_back(*std::move(r));
    return true;
  });
  if (!each.ok()) return each;
  if (!bad.ok()) return bad;
  return out;
}

absl::Status Save(MetaTxn& txn, const HotLayerRecord& r) {
  if (r.versions.empty()) {
    absl::Status s = txn.DeleteAux(kSpace, r.image);
    return absl::IsNotFound(s) ? absl::OkStatus() : s;
  }
  return txn.PutAux(kSpace, r.image, EncodeHotLayerRecord(r));
}

// Ids are the decimal directory names: canonical only, so "007" or "7.tmp"
// is never taken for version 7.
std::optional<uint64_t> ParseDirName(const std::string& name) {
  uint64_t id = 0;
  if (name.empty() || name[0] == '0' || !absl::SimpleAtoi(name, &id) || absl::StrCat(id) != name) {
    return std::nullopt;
  }
  return id;
}

}  // namespace

std::string HotLayerStore::DirOf(uint64_t id) const { return absl::StrCat(hot_dir_, "/", id); }

absl::StatusOr<HotLayerVersion> HotLayerStore::Begin(const std::string& image, const std::string& top_chain,
                                                     uint64_t profile_version,
                                                     std::vector<HotLayerSource> layers, absl::Time now) {
  if (absl::Status s = MakeDirs(hot_dir_, 0700); !s.ok()) return s;
  HotLayerVersion version;
  absl::Status s = Write([&](MetaTxn& txn) -> absl::Status {
    absl::StatusOr<std::optional<HotLayerRecord>> loaded = Load(txn, image);
    if (!loaded.ok()) return loaded.status();
    HotLayerRecord r = loaded->value_or(HotLayerRecord{image, top_chain, {}});
    for (const HotLayerVersion& v : r.versions) {
      if (v.state == HotState::kBuilding) {
        return absl::FailedPreconditionError(
            absl::StrCat("hot layer ", v.id, " of image ", image, " is being built"));
      }
    }
    absl::StatusOr<std::optional<std::string>> next = txn.GetAux(kIdSpace, kNextId);
    if (!next.ok()) return next.status();
    uint64_t id = 1;
    if (*next && !absl::SimpleAtoi(**next, &id)) return absl::DataLossError("hot layer ids: bad counter");
    if (absl::Status put = txn.PutAux(kIdSpace, kNextId, absl::StrCat(id + 1)); !put.ok()) return put;
    r.top_chain = top_chain;
    version = HotLayerVersion{};
    version.id = id;
    version.profile_version = profile_version;
    version.state = HotState::kBuilding;
    version.started = now;
    version.layers = std::move(layers);
    r.versions.push_back(version);
    return Save(txn, r);
  });
  if (!s.ok()) return s;
  return version;
}

absl::StatusOr<HotLayerRecord> HotLayerStore::Finish(const std::string& image, uint64_t id,
                                                     const BuildReport& report, int64_t bytes,
                                                     absl::Time now) {
  HotLayerRecord out;
  absl::Status s = Write([&](MetaTxn& txn) -> absl::Status {
    absl::StatusOr<std::optional<HotLayerRecord>> loaded = Load(txn, image);
    if (!loaded.ok()) return loaded.status();
    HotLayerVersion* v = *loaded ? (*loaded)->Find(id) : nullptr;
    if (v == nullptr || v->state != HotState::kBuilding) {
      return absl::FailedPreconditionError(
          absl::StrCat("hot layer ", id, " of image ", image, " is not being built"));
    }
    for (HotLayerVersion& other : (*loaded)->versions) {
      if (other.state == HotState::kReady) other.state = HotState::kRetired;
    }
    v->state = HotState::kReady;
    v->finished = now;
    v->bytes = bytes;
    v->entries = report.entries();
    v->hot_files = report.hot_files;
    v->hot_bytes = report.hot_bytes;
    out = **loaded;
    return Save(txn, out);
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status HotLayerStore::RemoveDir(uint64_t id) const {
  // RemoveTree never crosses into a mount: a version still mounted somewhere
  // (a bug: the caller checks) loses nothing under the mount.
  return RemoveTree(DirOf(id));
}

absl::Status HotLayerStore::Abort(const std::string& image, uint64_t id) {
  absl::Status s = Write([&](MetaTxn& txn) -> absl::Status {
    absl::StatusOr<std::optional<HotLayerRecord>> loaded = Load(txn, image);
    if (!loaded.ok()) return loaded.status();
    if (!*loaded) return absl::OkStatus();
    std::erase_if((*loaded)->versions,
                  [&](const HotLayerVersion& v) { return v.id == id && v.state == HotState::kBuilding; });
    return Save(txn, **loaded);
  });
  if (!s.ok()) return s;
  return RemoveDir(id);
}

absl::Status HotLayerStore::Drop(const std::string& image, uint64_t id) {
  absl::Status s = Write([&](MetaTxn& txn) -> absl::Status {
    absl::StatusOr<std::optional<HotLayerRecord>> loaded = Load(txn, image);
    if (!loaded.ok()) return loaded.status();
    HotLayerVersion* v = *loaded ? (*loaded)->Find(id) : nullptr;
    if (v == nullptr) return absl::NotFoundError(absl::StrCat("hot layer ", id, " of image ", image));
    if (v->state != HotState::kRetired) {
      return absl::FailedPreconditionError(absl::StrCat("hot layer ", id, " of image ", image, " is ",
                                                        HotStateName(v->state), ", not retired"));
    }
    std::erase_if((*loaded)->versions, [&](const HotLayerVersion& x) { return x.id == id; });
    return Save(txn, **loaded);
  });
  if (!s.ok()) return s;
  return RemoveDir(id);
}

absl::StatusOr<std::vector<uint64_t>> HotLayerStore::RetireImage(const std::string& image) {
  std::vector<uint64_t> retired;
  absl::Status s = Write([&](MetaTxn& txn) -> absl::Status {
    absl::StatusOr<std::optional<HotLayerRecord>> loaded = Load(txn, image);
    if (!loaded.ok()) return loaded.status();
    if (!*loaded) return absl::OkStatus();
    for (HotLayerVersion& v : (*loaded)->versions) {
      if (v.state != HotState::kReady) continue;
      v.state = HotState::kRetired;
      retired.push_back(v.id);
    }
    return Save(txn, **loaded);
  });
  if (!s.ok()) return s;
  return retired;
}

absl::StatusOr<std::optional<HotLayerRecord>> HotLayerStore::Get(const std::string& image) const {
  std::optional<HotLayerRecord> out;
  absl::Status s = meta_.View([&](const MetaTxn& txn) -> absl::Status {
    absl::StatusOr<std::optional<HotLayerRecord>> loaded = Load(txn, image);
    if (!loaded.ok()) return loaded.status();
    out = *std::move(loaded);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return out;
}

absl::Status HotLayerStore::Write(const std::function<absl::Status(MetaTxn&)>& fn) {
  absl::Status s = meta_.Update(fn);
  writes_.fetch_add(1);
  return s;
}

absl::StatusOr<std::vector<HotLayerRecord>> HotLayerStore::List() const {
  const uint64_t at = writes_.load();
  {
    absl::MutexLock lock(&list_mu_);
    if (listed_ && listed_at_ == at) return *listed_;
  }
  std::vector<HotLayerRecord> out;
  absl::Status s = meta_.View([&](const MetaTxn& txn) -> absl::Status {
    absl::StatusOr<std::vector<HotLayerRecord>> all = LoadAll(txn);
    if (!all.ok()) return all.status();
    out = *std::move(all);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  absl::MutexLock lock(&list_mu_);
  listed_ = out;
  listed_at_ = at;
  return out;
}

absl::StatusOr<HotRecovery> HotLayerStore::Recover() {
  HotRecovery report;
  std::set<uint64_t> kept;
  absl::Status s = Write([&](MetaTxn& txn) -> absl::Status {
    absl::StatusOr<std::vector<HotLayerRecord>> records = LoadAll(txn);
    if (!records.ok()) return records.status();
    for (HotLayerRecord& r : *records) {
      const size_t before = r.versions.size();
      std::erase_if(r.versions, [&](const HotLayerVersion& v) {
        if (v.state != HotState::kBuilding) return false;
        report.building_dropped.push_back(v.id);
        return true;
      });
      for (const HotLayerVersion& v : r.versions) {
        kept.insert(v.id);
        report.kept_bytes += v.bytes;
      }
      if (r.versions.size() != before) {
        if (absl::Status saved = Save(txn, r); !saved.ok()) return saved;
      }
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  absl::StatusOr<std::vector<std::string>> names = ListDir(hot_dir_);
  if (!names.ok()) return names.status();
  for (const std::string& name : *names) {
    std::optional<uint64_t> id = ParseDirName(name);
    if (id && kept.count(*id)) continue;
    const std::string path = absl::StrCat(hot_dir_, "/", name);
    if (absl::Status r = RemoveTree(path); !r.ok()) return r;
    spdlog::info("msg=\"hot layer leftover removed\" path={}", Q(path));
    report.orphans_removed.push_back(name);
  }
  return report;
}

}  // namespace ndocker::hbcsa
