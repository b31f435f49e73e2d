// LASS as the core's PlacementAdvisor: at each unpack Prepare it finds the
// layer's pull in the watcher's sessions and asks the planner for a tier.
// Answers from memory only (the watcher's copies), so it never slows an RPC.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "lass/plan_book.h"
#include "lass/planner.h"
#include "lass/session_source.h"
#include "ndocker/admin/v1/admin.pb.h"
#include "snapshotter/placement.h"

namespace ndocker::lass {

// containerd's CRI annotation naming the manifest of the layer being unpacked.
inline constexpr char kCriManifestDigestLabel[] = "containerd.io/snapshot/cri.manifest-digest";

struct AdvisorOptions {
  Policy policy = Policy::kLdl;
  Tier default_tier = Tier::kFast;  // for watcher-off and store-unreadable
  int max_concurrent_downloads = 3;
  double slow_store_rate = 150.0 * (1 << 20);  // until measured
  // The slow tier's measured write-back rate (0 = not yet), e.g. from the core.
  std::function<double()> measured_slow_rate;
  // Bytes queued for the slow tier's write-back, e.g. from the core.
  std::function<double()> slow_backlog_bytes;
  std::function<absl::Time()> clock = [] { return absl::Now(); };
};

class Advisor : public PlacementAdvisor {
 public:
  // source == nullptr: the watcher is off (lass.enabled = false); unpacks get
  // the default tier with rule watcher-off.
  Advisor(AdvisorOptions options, std::shared_ptr<const SessionSource> source);

  std::optional<Placement> Advise(const PlacementRequest& request) override;
  void Committed(const CommitReport& report) override;
  void DecidedElsewhere(const PlacementRequest& request, const Placement& placement) override;

  // For ndockerctl plan: NotFound when no pull of that digest was placed.
  absl::StatusOr<ndocker::admin::v1::GetPlanResponse> Plan(const std::string& digest) const;

  // What the planner currently assumes (learned from commits).
  PlannerInputs CurrentInputs() const;

 private:
  // The pulls this unpack belongs to: the CRI manifest label's, else every
  // pull whose chain holds it.
  std::vector<PullSession> SessionsFor(const PlacementRequest& request) const;
  const AdvisorOptions options_;
  const std::shared_ptr<const SessionSource> source_;
  PlanBook book_;
  mutable absl::Mutex mu_;
  double unpack_ratio_ ABSL_GUARDED_BY(mu_) = 2.0;
  double apply_rate_ ABSL_GUARDED_BY(mu_) = 100e6;
};

}  // namespace ndocker::lass
