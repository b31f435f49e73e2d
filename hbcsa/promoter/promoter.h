// Builds an image's hot layer from its current profile (issue 10, step 2):
// the layers' directories as they are now, the profile's files as the hot
// set, BuildMetadataLayer into the version's directory, under the
// HotLayerStore's crash-safe protocol.
//
// The layers are read where they live; the mover may move one meanwhile,
// and the reaper later deletes the copy the build was reading. So the chain
// is read again after the build: a layer whose copy changed means the build
// may have missed files, and it is thrown away (Aborted; the caller tries
// again). The layer's bytes are known only once it is built: they are
// reserved against the fast budget then, before it becomes ready (the build
// itself may pass the budget for its duration, never the filesystem: ENOSPC
// fails it). Nothing here mounts anything.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hbcsa/profiles/profile.h"
#include "hbcsa/promoter/hot_layer_store.h"

namespace ndocker::hbcsa {

// One layer of an image as the snapshotter has it now.
struct ChainLayer {
  HotLayerSource source;
  std::string fs_dir;  // its current copy's data directory
};

class Promoter {
 public:
  // The image's layers, top first, from its top layer's chainID; NotFound
  // when the snapshotter does not hold them all.
  using ChainReader = std::function<absl::StatusOr<std::vector<ChainLayer>>(const std::string& top_chain)>;

  // The fast budget: a hot layer's bytes are reserved when it is built
  // (ResourceExhausted when they do not fit: the build is thrown away) and
  // released when a version goes. Null: no budget.
  struct FastBudget {
    std::function<absl::Status(int64_t bytes)> reserve;
    std::function<void(int64_t bytes)> release;
  };

  Promoter(HotLayerStore& hot, ChainReader chain, BuildOptions options = {}, FastBudget budget = {})
      : hot_(hot), chain_(std::move(chain)), options_(options), budget_(std::move(budget)) {}

  // The image's hot layer from its profile: the ready version when it was
  // built from this profile version already, else a new version.
  absl::StatusOr<HotLayerRecord> Promote(const Profile& profile);

 private:
  HotLayerStore& hot_;
  ChainReader chain_;
  BuildOptions options_;
  FastBudget budget_;
};

}  // namespace ndocker::hbcsa
