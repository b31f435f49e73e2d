#include "hbcsa/plan_annotations.h"

#include <map>
#include <utility>

namespace ndocker::hbcsa {

namespace {
constexpr int kEvidenceShown = 4;
}

void AnnotatePlan(const StaticAdvisor* static_advisor, const Profile* profile,
                  ndocker::admin::v1::GetPlanResponse* plan) {
  std::optional<ImageAnalysis> analysis;
  if (static_advisor != nullptr) analysis = static_advisor->Analysis(plan->manifest());
  std::map<std::string, std::pair<int64_t, int64_t>> hot;  // chainID -> files, bytes
  if (profile != nullptr) {
    plan->set_profile_version(profile->version);
    plan->set_profile_runs(profile->runs);
    for (const HotFile& f : profile->files) {
      auto& [files, bytes] = hot[f.layer];
      ++files;
      bytes += f.size;
    }
  }
  for (auto& layer : *plan->mutable_layers()) {
    if (analysis && layer.index() >= 0 && static_cast<size_t>(layer.index()) < analysis->layers.size()) {
      const LayerAnalysis& a = analysis->layers[static_cast<size_t>(layer.index())];
      layer.set_layer_class(LayerClassName(a.layer_class));
      int shown = 0;
      for (const Evidence& e : a.evidence) {
        if (e.supports != a.layer_class) continue;
        layer.add_class_evidence(e.text);
        if (++shown == kEvidenceShown) break;
      }
    }
    if (auto it = hot.find(layer.chain_id()); it != hot.end()) {
      layer.set_hot_files(it->second.first);
      layer.set_hot_bytes(it->second.second);
    }
  }
}

}  // namespace ndocker::hbcsa
