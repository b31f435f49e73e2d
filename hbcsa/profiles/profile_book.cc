#include "hbcsa/profiles/profile_book.h"

#include "absl/strings/str_cat.h"

namespace ndocker::hbcsa {

absl::StatusOr<Profile> StoreProfileBook::Find(const std::string& image) {
  auto p = store_.Get(image);
  if (!p.ok()) return p.status();
  if (p->has_value()) return **p;
  if (manifest_of_) {
    if (const std::string m = manifest_of_(image); !m.empty()) {
      auto q = store_.Get(m);
      if (!q.ok()) return q.status();
      if (q->has_value()) return **q;
    }
  }
  // Profiles of images whose manifest was not seen are keyed by the top chainID.
  auto all = store_.List();
  if (!all.ok()) return all.status();
  for (const Profile& candidate : *all) {
    if (candidate.top_chain == image) return candidate;
  }
  return absl::NotFoundError(absl::StrCat("no profile of ", image, " (no traced cold start yet)"));
}

absl::StatusOr<std::vector<std::string>> StoreProfileBook::ListJson() {
  auto all = store_.List();
  if (!all.ok()) return all.status();
  std::vector<std::string> out;
  for (const Profile& p : *all) out.push_back(ToJson(p));
  return out;
}

absl::StatusOr<std::string> StoreProfileBook::GetJson(const std::string& image) {
  auto p = Find(image);
  if (!p.ok()) return p.status();
  return ToJson(*p);
}

absl::StatusOr<std::string> StoreProfileBook::ImportJson(const std::string& json) {
  auto p = ProfileFromJson(json);
  if (!p.ok()) return p.status();
  auto stored = store_.Import(*p);
  if (!stored.ok()) return stored.status();
  return ToJson(*stored);
}

absl::Status StoreProfileBook::Remove(const std::string& image) {
  auto p = Find(image);
  if (!p.ok()) return p.status();
  return store_.Remove(p->image);
}

}  // namespace ndocker::hbcsa
