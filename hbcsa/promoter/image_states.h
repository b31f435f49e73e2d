// `ndockerctl images`: per image HBCSA knows of (it has a profile or a hot
// layer), where its bytes are and how far it got: tracing -> promoting ->
// demoting -> done.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "hbcsa/profiles/profile.h"
#include "hbcsa/promoter/hot_layer_record.h"
#include "snapshotter/snapshotter.h"

namespace ndocker::hbcsa {

struct ImageState {
  std::string image;      // manifest digest (or the top chainID when unknown)
  std::string top_chain;
  int layers = 0;         // committed layers of its chain found in the store
  int layers_fast = 0;
  int64_t fast_bytes = 0;  // its layers' committed bytes per tier (hot layer apart)
  int64_t slow_bytes = 0;
  int pinned_fast = 0;     // on fast by the ndocker.tier label
  uint64_t profile_version = 0;
  int profile_runs = 0;
  uint64_t hot_layer = 0;  // the ready version's id, 0 if none
  int64_t hot_bytes = 0;
  // tracing: a container of it is traced now; demoting: a layer of it is
  // moving to slow; promoting: its hot layer is queued or building; done: a
  // ready hot layer and no layer left on fast but pinned ones; promoted: a
  // ready hot layer, layers kept on fast (demotion off or asked to keep);
  // profiled: a profile, no hot layer yet.
  std::string state;
};

struct ImageActivity {
  absl::flat_hash_set<std::string> tracing_tops;   // top chainIDs being traced
  absl::flat_hash_set<std::string> promoting;      // images queued or building
  absl::flat_hash_set<std::string> moving_to_slow;  // snapshot keys in migration to slow
};

// Pure: one state per image named by a profile or a hot layer record.
std::vector<ImageState> DescribeImages(const std::vector<Profile>& profiles,
                                       const std::vector<HotLayerRecord>& hot,
                                       const std::vector<SnapshotEntry>& entries, const ImageActivity& activity);

std::string EncodeImageState(const ImageState& s);  // JSON

}  // namespace ndocker::hbcsa
