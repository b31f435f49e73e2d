// The admin API's view of hot layers (ndockerctl promote, ndockerctl hot ls).
#pragma once

#include <functional>
#include <utility>

#include "hbcsa/profiles/profile_book.h"
#include "hbcsa/promoter/demoter.h"
#include "hbcsa/promoter/hot_layer_store.h"
#include "hbcsa/promoter/promoter.h"
#include "snapshotter/admin_service.h"

namespace ndocker::hbcsa {

class StoreHotLayerBook : public HotLayerBook {
 public:
  struct Wiring {
    // Demotes the layers of a ready version (null: never; ndocker's
    // [hbcsa] demote = false).
    std::function<absl::StatusOr<DemotionPlan>(const HotLayerVersion&, bool wait)> demote;
    std::string no_demotion_why;  // why demote is null, for the answer
    // Runs after each successful promotion and its demotion (an older
    // version may have been retired, layer copies switched).
    std::function<void()> promoted;
    // For ImagesJson: the store, the containers being traced (their top
    // chainIDs), the images whose build is queued or running.
    Snapshotter* core = nullptr;
    std::function<absl::flat_hash_set<std::string>()> tracing_tops;
    std::function<bool(const std::string& image)> promoting;
  };
  StoreHotLayerBook(HotLayerStore& store, Promoter& promoter, StoreProfileBook& profiles, Wiring wiring)
      : store_(store), promoter_(promoter), profiles_(profiles), wiring_(std::move(wiring)) {}

  absl::StatusOr<std::vector<std::string>> ListJson() override;
  absl::StatusOr<Promotion> Promote(const std::string& image, const PromoteOptions& options) override;
  absl::StatusOr<Totals> Count() override;
  absl::StatusOr<std::vector<std::string>> ImagesJson() override;

 private:
  HotLayerStore& store_;
  Promoter& promoter_;
  StoreProfileBook& profiles_;
  Wiring wiring_;
};

}  // namespace ndocker::hbcsa
