#include "hbcsa/promoter/hot_layer_book.h"

#include "absl/strings/str_cat.h"
#include "hbcsa/promoter/image_states.h"

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

absl::StatusOr<HotLayerBook::Promotion> StoreHotLayerBook::Promote(const std::string& image,
                                                                   const PromoteOptions& options) {
  absl::StatusOr<Profile> profile = profiles_.Find(image);
  if (!profile.ok()) return profile.status();
  absl::StatusOr<HotLayerRecord> r = promoter_.Promote(*profile);
  if (!r.ok()) return r.status();
  Promotion out;
  out.hot_json = EncodeHotLayerRecord(*r);
  const HotLayerVersion* ready = r->Current();
  if (ready == nullptr) {
    out.layers_kept_why = "no ready hot layer version";
  } else if (options.keep_layers) {
    out.layers_kept_why = "asked to keep them (--keep-layers)";
  } else if (!wiring_.demote) {
    out.layers_kept_why = wiring_.no_demotion_why;
  } else {
    absl::StatusOr<DemotionPlan> plan = wiring_.demote(*ready, options.wait);
    if (!plan.ok()) {
      return absl::Status(plan.status().code(), absl::StrCat("hot layer ", ready->id,
                                                             " is ready; demoting its layers failed: ",
                                                             plan.status().message()));
    }
    out.demoted = std::move(plan->keys);
    out.pinned_fast = std::move(plan->pinned_keys);
  }
  // After the demotion: with `wait`, its old copies may go now (a stack that
  // pins them is taken down and mounted again over the new ones).
  if (wiring_.promoted) wiring_.promoted();
  return out;
}

absl::StatusOr<std::vector<std::string>> StoreHotLayerBook::ImagesJson() {
  absl::StatusOr<std::vector<Profile>> profiles = profiles_.List();
  if (!profiles.ok()) return profiles.status();
  absl::StatusOr<std::vector<HotLayerRecord>> hot = store_.List();
  if (!hot.ok()) return hot.status();
  std::vector<SnapshotEntry> entries;
  ImageActivity activity;
  if (wiring_.core != nullptr) {
    absl::StatusOr<std::vector<SnapshotEntry>> e = wiring_.core->Entries();
    if (!e.ok()) return e.status();
    entries = *std::move(e);
    for (const MigrationProgress& m : wiring_.core->Health().migrations) {
      if (m.to == Tier::kSlow) activity.moving_to_slow.insert(m.key);
    }
  }
  if (wiring_.tracing_tops) activity.tracing_tops = wiring_.tracing_tops();
  if (wiring_.promoting) {
    for (const Profile& p : *profiles) {
      if (wiring_.promoting(p.image)) activity.promoting.insert(p.image);
    }
  }
  std::vector<std::string> out;
  for (const ImageState& s : DescribeImages(*profiles, *hot, entries, activity)) out.push_back(EncodeImageState(s));
  return out;
}

}  // namespace ndocker::hbcsa
