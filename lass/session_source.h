// The planner's view of the content-fetch watcher: copies of pull sessions,
// answered from memory. An interface so the advisor can be tested against a
// scripted source.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "lass/pull_session.h"

namespace ndocker::lass {

class SessionSource {
 public:
  virtual ~SessionSource() = default;
  // Sessions whose image has a layer with this chainID, newest first.
  virtual std::vector<PullSession> SessionsWithChain(const std::string& chain_id) const = 0;
  virtual std::optional<PullSession> SessionByManifest(const std::string& digest) const = 0;
  // The host platform's manifest of an index the watcher has read.
  virtual std::optional<std::string> ManifestForIndex(const std::string& digest) const = 0;
  virtual BandwidthEstimate Bandwidth() const = 0;
  virtual WatcherHealth Health() const = 0;
};

}  // namespace ndocker::lass
