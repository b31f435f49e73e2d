#include "hbcsa/promoter/image_states.h"

#include <map>

#include "absl/container/flat_hash_map.h"
#include "hbcsa/promoter/image_chain.h"
#include "nlohmann/json.hpp"
#include "snapshotter/labels.h"

namespace ndocker::hbcsa {

namespace {

std::string StateOf(const ImageState& s, const ImageActivity& activity, bool demoting) {
  if (activity.tracing_tops.contains(s.top_chain)) return "tracing";
  if (demoting) return "demoting";  // the build may wait for it (after-trace)
  if (activity.promoting.contains(s.image)) return "promoting";
  if (s.hot_layer != 0) return s.layers_fast > s.pinned_fast ? "promoted" : "done";
  return "profiled";
}

}  // namespace

std::vector<ImageState> DescribeImages(const std::vector<Profile>& profiles,
                                       const std::vector<HotLayerRecord>& hot,
                                       const std::vector<SnapshotEntry>& entries, const ImageActivity& activity) {
  std::map<std::string, ImageState> by_image;  // sorted output
  for (const Profile& p : profiles) {
    ImageState& s = by_image[p.image];
    s.image = p.image;
    s.top_chain = p.top_chain;
    s.profile_version = p.version;
    s.profile_runs = p.runs;
  }
  for (const HotLayerRecord& r : hot) {
    ImageState& s = by_image[r.image];
    s.image = r.image;
    if (s.top_chain.empty()) s.top_chain = r.top_chain;
    if (const HotLayerVersion* v = r.Current()) {
      s.hot_layer = v->id;
      s.hot_bytes = v->bytes;
    }
  }
  absl::flat_hash_map<std::string, const SnapshotEntry*> committed_by_chain;
  absl::flat_hash_map<std::string, const SnapshotEntry*> by_key;
  for (const SnapshotEntry& e : entries) {
    by_key[e.key] = &e;
    if (e.record.kind == Kind::kCommitted) committed_by_chain[ClientNameOfKey(e.key)] = &e;
  }
  std::vector<ImageState> out;
  for (auto& [image, s] : by_image) {
    bool demoting = false;
    auto top = committed_by_chain.find(s.top_chain);
    const SnapshotEntry* e = top == committed_by_chain.end() ? nullptr : top->second;
    for (int depth = 0; e != nullptr && depth < 4096; ++depth) {
      const SnapshotRecord& r = e->record;
      ++s.layers;
      if (r.tier == Tier::kFast) {
        ++s.layers_fast;
        s.fast_bytes += r.size;
        if (r.labels.contains(kTierLabel)) ++s.pinned_fast;
      } else {
        s.slow_bytes += r.size;
      }
      if (activity.moving_to_slow.contains(e->key)) demoting = true;
      auto parent = by_key.find(r.parent);
      e = parent == by_key.end() ? nullptr : parent->second;
    }
    s.state = StateOf(s, activity, demoting);
    out.push_back(std::move(s));
  }
  return out;
}

std::string EncodeImageState(const ImageState& s) {
  return nlohmann::json{{"image", s.image},
                        {"top_chain", s.top_chain},
                        {"state", s.state},
                        {"layers", s.layers},
                        {"layers_fast", s.layers_fast},
                        {"pinned_fast", s.pinned_fast},
                        {"fast_bytes", s.fast_bytes},
                        {"slow_bytes", s.slow_bytes},
                        {"profile_version", s.profile_version},
                        {"profile_runs", s.profile_runs},
                        {"hot_layer", s.hot_layer},
                        {"hot_bytes", s.hot_bytes}}
      .dump();
}

}  // namespace ndocker::hbcsa
