#include "lass/plan_book.h"

#include <algorithm>

namespace ndocker::lass {

ImagePlan& PlanBook::PlanFor(const PullSession& session, const std::string& policy) {
  auto [it, inserted] = plans_.try_emplace(session.manifest_digest);
  ImagePlan& plan = it->second;
  if (inserted) {
    order_.push_back(session.manifest_digest);
    while (order_.size() > max_images_) {
      // An unpack that never committed (it failed and was removed) would
      // otherwise keep its pending entry forever.
      std::erase_if(pending_, [&](const auto& kv) { return kv.second.first == order_.front(); });
      plans_.erase(order_.front());
      order_.pop_front();
    }
  }
  plan.manifest_digest = session.manifest_digest;
  plan.config_digest = session.config_digest;
  if (!policy.empty()) plan.policy = policy;
  if (plan.layers.size() < session.layers.size()) plan.layers.resize(session.layers.size());
  for (size_t i = 0; i < session.layers.size(); ++i) plan.layers[i].download = session.layers[i];
  return plan;
}

void PlanBook::Decided(const PullSession& session, size_t index, const std::string& policy,
                       const std::string& key, const Placement& placement, absl::Time now) {
  absl::MutexLock lock(&mu_);
  ImagePlan& plan = PlanFor(session, policy);
  if (index >= plan.layers.size()) return;
  LayerRecord& layer = plan.layers[index];
  layer.snapshot_key = key;
  layer.placement = placement;
  layer.unpack_start = now;
  layer.unpack_end = absl::InfinitePast();
  layer.unpacked_size = 0;
  pending_.emplace(key, std::make_pair(session.manifest_digest, index));
}

std::vector<std::pair<std::string, size_t>> PlanBook::Committed(const CommitReport& report) {
  absl::MutexLock lock(&mu_);
  std::vector<std::pair<std::string, size_t>> where;
  auto [begin, end] = pending_.equal_range(report.key);
  for (auto it = begin; it != end; ++it) {
    auto plan = plans_.find(it->second.first);
    if (plan == plans_.end() || it->second.second >= plan->second.layers.size()) continue;
    LayerRecord& layer = plan->second.layers[it->second.second];
    layer.unpack_end = report.committed;
    layer.unpacked_size = report.size;
    layer.placement = Placement{report.tier, report.rule, report.reason};
    where.push_back(it->second);
  }
  pending_.erase(begin, end);
  return where;
}

void PlanBook::Refresh(const PullSession& session) {
  absl::MutexLock lock(&mu_);
  if (plans_.contains(session.manifest_digest)) PlanFor(session, "");
}

std::optional<ImagePlan> PlanBook::Get(const std::string& manifest_digest) const {
  absl::MutexLock lock(&mu_);
  auto it = plans_.find(manifest_digest);
  if (it == plans_.end()) return std::nullopt;
  return it->second;
}

}  // namespace ndocker::lass
