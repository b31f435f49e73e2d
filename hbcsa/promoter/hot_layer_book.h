// The admin API's view of hot layers (ndockerctl promote, ndockerctl hot ls).
#pragma once

#include <functional>
#include <utility>

#include "hbcsa/profiles/profile_book.h"
#include "hbcsa/promoter/hot_layer_store.h"
#include "hbcsa/promoter/promoter.h"
#include "snapshotter/admin_service.h"

namespace ndocker::hbcsa {

class StoreHotLayerBook : public HotLayerBook {
 public:
  // `promoted` runs after each successful promotion (an older version may
  // have been retired by it).
  StoreHotLayerBook(HotLayerStore& store, Promoter& promoter, StoreProfileBook& profiles,
                    std::function<void()> promoted = {})
      : store_(store), promoter_(promoter), profiles_(profiles), promoted_(std::move(promoted)) {}

  absl::StatusOr<std::vector<std::string>> ListJson() override;
  absl::StatusOr<std::string> PromoteJson(const std::string& image) override;
  absl::StatusOr<Totals> Count() override;

 private:
  HotLayerStore& store_;
  Promoter& promoter_;
  StoreProfileBook& profiles_;
  std::function<void()> promoted_;
};

}  // namespace ndocker::hbcsa
