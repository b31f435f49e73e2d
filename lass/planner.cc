#include "lass/planner.h"

#include <algorithm>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "lass/digest.h"

namespace ndocker::lass {
namespace {

std::string Seconds(double s) { return absl::StrFormat("+%.2fs", s); }

}  // namespace

const char* PolicyName(Policy policy) { return policy == Policy::kLdl ? "ldl" : "predict"; }

std::vector<double> PredictDownloadEnds(const PullSession& session, size_t from, double bandwidth,
                                        int concurrency) {
  const size_t n = session.layers.size();
  std::vector<double> end(n, -1);
  std::vector<double> remaining(n, 0);
  std::vector<size_t> running, queued;
  for (size_t j = from; j < n; ++j) {
    const LayerProgress& l = session.layers[j];
    if (l.state == BlobState::kDone) continue;
    remaining[j] = static_cast<double>(std::max<int64_t>(
        l.state == BlobState::kDownloading ? l.size - l.offset : l.size, 0));
    (l.state == BlobState::kDownloading ? running : queued).push_back(j);
  }
  const size_t slots = std::max<size_t>(std::max(concurrency, 1), running.size());
  const double rate = bandwidth > 0 ? bandwidth : 1.0;
  size_t next_queued = 0;
  auto fill = [&] {
    while (running.size() < slots && next_queued < queued.size()) running.push_back(queued[next_queued++]);
  };
  fill();
  double now = 0;
  while (!running.empty()) {
    // Processor sharing: every running download gets rate / |running|.
    const double share = rate / static_cast<double>(running.size());
    double first = std::numeric_limits<double>::infinity();
    for (size_t j : running) first = std::min(first, remaining[j] / share);
    now += first;
    std::vector<size_t> still;
    for (size_t j : running) {
      remaining[j] -= first * share;
      if (remaining[j] <= 1e-6 * std::max(1.0, static_cast<double>(session.layers[j].size))) {
        end[j] = now;
      } else {
        still.push_back(j);
      }
    }
    running = std::move(still);
    fill();
  }
  return end;
}

LayerDecision Decide(const PullSession& session, size_t index, const PlannerInputs& in) {
  LayerDecision d;
  const std::vector<double> ends = PredictDownloadEnds(session, index, in.bandwidth, in.concurrency);
  d.times_known = in.bandwidth > 0;
  d.this_end_s = ends[index];
  const double this_end = std::max(d.this_end_s, 0.0);
  for (size_t j = index; j < ends.size(); ++j) {
    if (ends[j] > d.last_end_s) {
      d.last_end_s = ends[j];
      d.last_index = static_cast<int>(j);
    }
  }
  const LayerProgress& self = session.layers[index];
  const std::string where =
      absl::StrCat("layer ", index, " of ", session.layers.size(), " (", ShortDigest(self.digest),
                   ", ", self.size, " B) of image ", ShortDigest(session.manifest_digest));

  // Nothing of this image is left to download: everything from here on is on
  // the critical path, whatever the policy.
  if (d.last_index < 0) {
    d.placement = {Tier::kFast, rule::kNoDownloads,
                   absl::StrCat(where, ": nothing of the image is left to download")};
    return d;
  }
  const bool later_exists = d.last_index != static_cast<int>(index) && d.last_end_s > this_end;
  const std::string last_layer = absl::StrCat("layer ", d.last_index, " (",
                                              ShortDigest(session.layers[d.last_index].digest), ")");
  // Without a bandwidth the simulated times only order the downloads.
  const std::string last =
      d.times_known ? absl::StrCat(last_layer, " ends ", Seconds(d.last_end_s), ", this one ",
                                   Seconds(this_end))
                    : absl::StrCat(last_layer,
                                   " finishes later (order from sizes and progress; no bandwidth "
                                   "measured yet)");

  if (in.policy == Policy::kLdl || !d.times_known) {
    const bool predict = in.policy == Policy::kPredict;
    const std::string prefix =
        predict ? "no bandwidth measured yet, so the ldl order decides: " : "";
    if (later_exists) {
      d.placement = {Tier::kSlow, predict ? rule::kPredictOverlaps : rule::kLdlBelow,
                     absl::StrCat(prefix, where, ": below the last-downloading layer; ", last)};
    } else {
      d.placement = {Tier::kFast, predict ? rule::kPredictCritical : rule::kLdlLast,
                     absl::StrCat(prefix, where, ": the last-downloading layer",
                                  d.times_known ? absl::StrCat(" (ends ", Seconds(this_end), ")")
                                                : std::string(" (order from sizes and progress)"))};
    }
    return d;
  }

  // predict: would this layer, stored on the slow tier, be durable before
  // the pull would end anyway? containerd applies layers one after another,
  // each once its blob is complete and the one below is committed; applying
  // costs the same on either tier (the page cache takes the writes), and the
  // slow tier's write-back runs in the background after the commit (queued
  // behind what it already has to write). The pull ends with the last apply.
  auto unpacked = [&](size_t j) { return static_cast<double>(session.layers[j].size) * in.unpack_ratio; };
  const double commit_self = this_end + unpacked(index) / in.apply_rate;
  double commit = commit_self;
  for (size_t j = index + 1; j < session.layers.size(); ++j) {
    commit = std::max(commit, std::max(ends[j], 0.0)) + unpacked(j) / in.apply_rate;
  }
  const double pull_end = commit;
  const double durable_on_slow =
      commit_self + (in.slow_backlog_bytes + unpacked(index)) / in.slow_store_rate;
  d.pull_end_s = pull_end;
  d.slow_durable_s = durable_on_slow;
  const std::string inputs = absl::StrFormat(
      "on slow it would be durable at +%.2fs (est. %.0f B unpacked, applied at %.0f MB/s, written "
      "back at %.0f MB/s behind %.0f B queued); the pull ends at +%.2fs (last download: %s, at "
      "%.1f MB/s)",
      durable_on_slow, unpacked(index), in.apply_rate / 1e6, in.slow_store_rate / 1e6,
      in.slow_backlog_bytes, pull_end, last, in.bandwidth / 1e6);
  if (durable_on_slow + in.margin_s <= pull_end) {
    d.placement = {Tier::kSlow, rule::kPredictOverlaps, absl::StrCat(where, ": ", inputs)};
  } else {
    d.placement = {Tier::kFast, rule::kPredictCritical, absl::StrCat(where, ": ", inputs)};
  }
  return d;
}

}  // namespace ndocker::lass
