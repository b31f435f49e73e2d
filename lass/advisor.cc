#include "lass/advisor.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "snapshotter/log.h"

namespace ndocker::lass {
namespace {

constexpr double kLearnWeight = 0.3;
// Commits smaller or quicker than this say more about overheads than rates.
constexpr int64_t kMinLearnBytes = 1 << 20;
constexpr absl::Duration kMinLearnTime = absl::Milliseconds(20);

std::optional<size_t> LayerIndex(const PullSession& session, const std::string& chain_id) {
  for (size_t i = 0; i < session.layers.size(); ++i) {
    if (session.layers[i].chain_id == chain_id) return i;
  }
  return std::nullopt;
}

int64_t UnixNanos(absl::Time t) {
  return t == absl::InfinitePast() || t == absl::InfiniteFuture() ? 0 : absl::ToUnixNanos(t);
}

}  // namespace

Advisor::Advisor(AdvisorOptions options, std::shared_ptr<const SessionSource> source)
    : options_(std::move(options)), source_(std::move(source)) {}

PlannerInputs Advisor::CurrentInputs() const {
  PlannerInputs in;
  in.policy = options_.policy;
  in.concurrency = options_.max_concurrent_downloads;
  if (source_) {
    const BandwidthEstimate bw = source_->Bandwidth();
    in.bandwidth = bw.bytes_per_second;
    in.concurrency = std::max(in.concurrency, bw.max_concurrent_seen);
  }
  const double measured = options_.measured_slow_rate ? options_.measured_slow_rate() : 0;
  in.slow_store_rate = measured > 0 ? measured : options_.slow_store_rate;
  if (options_.slow_backlog_bytes) in.slow_backlog_bytes = options_.slow_backlog_bytes();
  absl::MutexLock lock(&mu_);
  in.unpack_ratio = unpack_ratio_;
  in.apply_rate = apply_rate_;
  return in;
}

std::optional<Placement> Advisor::Advise(const PlacementRequest& request) {
  if (request.unpack_chain_id.empty()) return std::nullopt;
  const std::string& chain = request.unpack_chain_id;
  if (!source_) {
    return Placement{options_.default_tier, rule::kWatcherOff,
                     absl::StrCat("the content-fetch watcher is off (lass.enabled = false): default tier ",
                                  TierName(options_.default_tier))};
  }
  const WatcherHealth health = source_->Health();
  if (!health.store_readable) {
    return Placement{options_.default_tier, rule::kStoreUnreadable,
                     absl::StrCat("containerd's content store cannot be followed (", health.detail,
                                  "): default tier ", TierName(options_.default_tier))};
  }

  std::vector<PullSession> sessions = SessionsFor(request);
  const PlannerInputs inputs = CurrentInputs();
  std::optional<LayerDecision> chosen;
  std::vector<std::pair<const PullSession*, size_t>> places;
  for (const PullSession& s : sessions) {
    auto index = LayerIndex(s, chain);
    if (!index) continue;
    places.emplace_back(&s, *index);
    LayerDecision d = Decide(s, *index, inputs);
    // A layer shared by several pulls in flight is on the critical path if
    // it is on any one's.
    if (!chosen || (chosen->placement.tier == Tier::kSlow && d.placement.tier == Tier::kFast)) {
      chosen = std::move(d);
    }
  }
  if (!chosen) {
    return Placement{Tier::kFast, rule::kNoSession,
                     absl::StrCat("no pull of layer ", chain,
                                  " seen in the content store: everything left is on the critical path")};
  }
  if (places.size() > 1) {
    chosen->placement.reason += absl::StrCat(" (layer shared by ", places.size(), " pulls in flight)");
  }
  // How much the unpack will write: the core keeps it off a fast filesystem
  // that cannot hold it (an ENOSPC would fail the pull).
  for (const auto& [session, index] : places) {
    const double bytes = static_cast<double>(session->layers[index].size) * std::max(1.0, inputs.unpack_ratio);
    chosen->placement.expected_bytes = std::max(chosen->placement.expected_bytes, static_cast<int64_t>(bytes));
  }
  for (const auto& [session, index] : places) {
    book_.Decided(*session, index, PolicyName(options_.policy), request.key, chosen->placement,
                  request.now);
  }
  return chosen->placement;
}

void Advisor::Committed(const CommitReport& report) {
  const auto where = book_.Committed(report);
  if (where.empty() || !source_) return;
  // Learn how big layers get unpacked and how fast containerd applies them.
  auto session = source_->SessionByManifest(where.front().first);
  if (!session || where.front().second >= session->layers.size()) return;
  book_.Refresh(*session);
  const LayerProgress& layer = session->layers[where.front().second];
  absl::MutexLock lock(&mu_);
  if (layer.size > 0 && report.size >= kMinLearnBytes) {
    const double ratio = static_cast<double>(report.size) / static_cast<double>(layer.size);
    unpack_ratio_ = (1 - kLearnWeight) * unpack_ratio_ + kLearnWeight * ratio;
  }
  const absl::Time start = std::max(report.prepared, layer.download_end);
  const absl::Duration took = report.committed - start;
  if (report.size >= kMinLearnBytes && took >= kMinLearnTime) {
    const double rate = static_cast<double>(report.size) / absl::ToDoubleSeconds(took);
    apply_rate_ = (1 - kLearnWeight) * apply_rate_ + kLearnWeight * rate;
  }
}

std::vector<PullSession> Advisor::SessionsFor(const PlacementRequest& request) const {
  std::vector<PullSession> sessions;
  if (request.labels != nullptr) {
    if (auto it = request.labels->find(kCriManifestDigestLabel); it != request.labels->end()) {
      if (auto s = source_->SessionByManifest(it->second)) sessions.push_back(*std::move(s));
    }
  }
  if (sessions.empty()) sessions = source_->SessionsWithChain(request.unpack_chain_id);
  return sessions;
}

void Advisor::DecidedElsewhere(const PlacementRequest& request, const Placement& placement) {
  // Static analysis (or another input) placed this unpack: the plan shows it
  // and the commit teaches the unpack ratio and apply rate all the same.
  if (request.unpack_chain_id.empty() || !source_) return;
  for (const PullSession& s : SessionsFor(request)) {
    if (auto index = LayerIndex(s, request.unpack_chain_id)) {
      book_.Decided(s, *index, PolicyName(options_.policy), request.key, placement, request.now);
    }
  }
}

absl::StatusOr<ndocker::admin::v1::GetPlanResponse> Advisor::Plan(const std::string& digest) const {
  std::string manifest = digest;
  std::optional<ImagePlan> plan = book_.Get(manifest);
  if (!plan && source_) {
    if (auto m = source_->ManifestForIndex(digest)) {
      manifest = *m;
      plan = book_.Get(manifest);
    }
  }
  std::optional<PullSession> live = source_ ? source_->SessionByManifest(manifest) : std::nullopt;
  if (!plan && !live) {
    return absl::NotFoundError(absl::StrCat("no pull of ", digest,
                                            " is known (not placed by LASS since the daemon started)"));
  }
  ndocker::admin::v1::GetPlanResponse resp;
  resp.set_manifest(manifest);
  resp.set_policy(plan ? plan->policy : PolicyName(options_.policy));
  resp.set_live(live.has_value());
  if (source_) resp.set_bandwidth_bytes_per_second(source_->Bandwidth().bytes_per_second);
  const size_t n = std::max(plan ? plan->layers.size() : 0, live ? live->layers.size() : 0);
  resp.set_config(live ? live->config_digest : plan->config_digest);
  for (size_t i = 0; i < n; ++i) {
    const LayerRecord* rec = plan && i < plan->layers.size() ? &plan->layers[i] : nullptr;
    const LayerProgress& dl = live && i < live->layers.size() ? live->layers[i] : rec->download;
    auto* l = resp.add_layers();
    l->set_index(static_cast<int32_t>(i));
    l->set_digest(dl.digest);
    l->set_chain_id(dl.chain_id);
    l->set_compressed_size(dl.size);
    l->set_download_start_unix_nano(UnixNanos(dl.download_start));
    l->set_download_end_unix_nano(UnixNanos(dl.download_end));
    l->set_state(BlobStateName(dl.state));
    l->set_downloaded_bytes(dl.state == BlobState::kDone ? dl.size : dl.offset);
    if (rec == nullptr) continue;
    l->set_unpacked_size(rec->unpacked_size);
    l->set_unpack_start_unix_nano(UnixNanos(rec->unpack_start));
    l->set_unpack_end_unix_nano(UnixNanos(rec->unpack_end));
    l->set_snapshot_key(rec->snapshot_key);
    if (rec->placement) {
      l->set_tier(TierName(rec->placement->tier));
      l->set_rule(rec->placement->rule);
      l->set_reason(rec->placement->reason);
    }
  }
  return resp;
}

}  // namespace ndocker::lass
