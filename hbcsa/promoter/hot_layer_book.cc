#include "hbcsa/promoter/hot_layer_book.h"

namespace ndocker::hbcsa {

absl::StatusOr<std::vector<std::string>> StoreHotLayerBook::ListJson() {
  absl::StatusOr<std::vector<HotLayerRecord>> all = store_.List();
  if (!all.ok()) return all.status();
  std::vector<std::string> out;
  for (const HotLayerRecord& r : *all) out.push_back(EncodeHotLayerRecord(r));
  return out;
}

absl::StatusOr<HotLayerBook::Totals> StoreHotLayerBook::Count() {
  absl::StatusOr<std::vector<HotLayerRecord>> all = store_.List();
  if (!all.ok()) return all.status();
  Totals t;
  for (const HotLayerRecord& r : *all) {
    for (const HotLayerVersion& v : r.versions) {
      if (v.state == HotState::kBuilding) continue;
      ++t.versions;
      t.bytes += v.bytes;
    }
  }
  return t;
}

absl::StatusOr<std::string> StoreHotLayerBook::PromoteJson(const std::string& image) {
  absl::StatusOr<Profile> profile = profiles_.Find(image);
  if (!profile.ok()) return profile.status();
  absl::StatusOr<HotLayerRecord> r = promoter_.Promote(*profile);
  if (!r.ok()) return r.status();
  if (promoted_) promoted_();
  return EncodeHotLayerRecord(*r);
}

}  // namespace ndocker::hbcsa
