#include "hbcsa/profiles/profile_store.h"

#include "absl/strings/str_cat.h"
#include "snapshotter/status_macros.h"

namespace ndocker::hbcsa {
namespace {

constexpr char kSpace[] = "profiles";

absl::StatusOr<std::optional<Profile>> Load(const MetaTxn& txn, const std::string& image) {
  auto raw = txn.GetAux(kSpace, image);
  if (!raw.ok()) return raw.status();
  if (!raw->has_value()) return std::nullopt;
  auto p = ProfileFromJson(**raw);
  if (!p.ok()) return absl::DataLossError(absl::StrCat("stored profile of ", image, ": ", p.status().message()));
  return std::optional<Profile>(*std::move(p));
}

}  // namespace

absl::StatusOr<Profile> ProfileStore::Record(const std::string& image, const std::string& top_chain,
                                             const TracedRun& run, absl::Time now, bool* changed) {
  Profile out;
  NDOCKER_RETURN_IF_ERROR(meta_.Update([&](MetaTxn& txn) -> absl::Status {
    auto have = Load(txn, image);
    if (!have.ok()) return have.status();
    Profile p = have->value_or(Profile{});
    const bool existed = have->has_value();
    const uint64_t before = p.version;
    p.image = image;
    if (!top_chain.empty()) p.top_chain = top_chain;
    MergeRun(p, run, now, max_files_);
    if (changed != nullptr) *changed = !existed || p.version != before;
    out = p;
    return txn.PutAux(kSpace, image, ToJson(p));
  }));
  return out;
}

absl::StatusOr<std::optional<Profile>> ProfileStore::Get(const std::string& image) const {
  std::optional<Profile> out;
  NDOCKER_RETURN_IF_ERROR(meta_.View([&](const MetaTxn& txn) -> absl::Status {
    auto p = Load(txn, image);
    if (!p.ok()) return p.status();
    out = *std::move(p);
    return absl::OkStatus();
  }));
  return out;
}

absl::StatusOr<bool> ProfileStore::Has(const std::string& image) const {
  bool found = false;
  NDOCKER_RETURN_IF_ERROR(meta_.View([&](const MetaTxn& txn) -> absl::Status {
    auto raw = txn.GetAux(kSpace, image);
    if (!raw.ok()) return raw.status();
    found = raw->has_value();
    return absl::OkStatus();
  }));
  return found;
}

absl::StatusOr<std::vector<Profile>> ProfileStore::List() const {
  std::vector<Profile> out;
  absl::Status bad = absl::OkStatus();
  NDOCKER_RETURN_IF_ERROR(meta_.View([&](const MetaTxn& txn) {
    return txn.ForEachAux(kSpace, [&](absl::string_view key, absl::string_view value) {
      auto p = ProfileFromJson(std::string(value));
      if (!p.ok()) {
        bad = absl::DataLossError(absl::StrCat("stored profile of ", key, ": ", p.status().message()));
        return false;
      }
      out.push_back(*std::move(p));
      return true;
    });
  }));
  if (!bad.ok()) return bad;
  return out;
}

absl::StatusOr<Profile> ProfileStore::Import(const Profile& incoming) {
  Profile out = incoming;
  NDOCKER_RETURN_IF_ERROR(meta_.Update([&](MetaTxn& txn) -> absl::Status {
    auto have = Load(txn, incoming.image);
    if (!have.ok()) return have.status();
    if (*have) out.version = std::max(incoming.version, (*have)->version + 1);
    if (out.version == 0) out.version = 1;
    if (out.files.size() > max_files_) out.files.resize(max_files_);
    return txn.PutAux(kSpace, out.image, ToJson(out));
  }));
  return out;
}

absl::Status ProfileStore::Remove(const std::string& image) {
  return meta_.Update([&](MetaTxn& txn) -> absl::Status {
    absl::Status st = txn.DeleteAux(kSpace, image);
    if (absl::IsNotFound(st)) return absl::NotFoundError(absl::StrCat("no profile of ", image));
    return st;
  });
}

}  // namespace ndocker::hbcsa
