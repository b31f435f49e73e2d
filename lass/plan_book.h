// Every placement decision LASS made, per image, with what it knew: the
// record behind `ndockerctl plan`. Bounded: the oldest images are forgotten
// first (the decision itself also lives on in each snapshot's record).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lass/pull_session.h"
#include "snapshotter/placement.h"

namespace ndocker::lass {

struct LayerRecord {
  LayerProgress download;  // as last seen (sizes, digests, download times)
  std::string snapshot_key;
  std::optional<Placement> placement;  // set at Prepare, updated at Commit
  absl::Time unpack_start = absl::InfinitePast();
  absl::Time unpack_end = absl::InfinitePast();
  int64_t unpacked_size = 0;
};

struct ImagePlan {
  std::string manifest_digest;
  std::string config_digest;
  std::string policy;
  std::vector<LayerRecord> layers;
};

class PlanBook {
 public:
  explicit PlanBook(size_t max_images = 256) : max_images_(max_images) {}

  // The decision for layer `index` of `session`'s image, made at `now` for
  // the unpack snapshot `key`.
  void Decided(const PullSession& session, size_t index, const std::string& policy,
               const std::string& key, const Placement& placement, absl::Time now);
  // The unpack `key` was committed. Returns the images and layer indexes it
  // belonged to (empty when LASS did not place it).
  std::vector<std::pair<std::string, size_t>> Committed(const CommitReport& report);
  // Refreshes download progress from a live session.
  void Refresh(const PullSession& session);
  std::optional<ImagePlan> Get(const std::string& manifest_digest) const;

 private:
  ImagePlan& PlanFor(const PullSession& session, const std::string& policy)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const size_t max_images_;
  mutable absl::Mutex mu_;
  std::map<std::string, ImagePlan> plans_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);  // oldest first
  // Unpack key -> (manifest, layer index) until its commit.
  std::multimap<std::string, std::pair<std::string, size_t>> pending_ ABSL_GUARDED_BY(mu_);
};

}  // namespace ndocker::lass
