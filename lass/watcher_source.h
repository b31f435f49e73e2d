// The content-fetch watcher as the planner's SessionSource.
#pragma once

#include <memory>

#include "lass/content_watcher.h"
#include "lass/session_source.h"

namespace ndocker::lass {

class WatcherSource final : public SessionSource {
 public:
  explicit WatcherSource(std::unique_ptr<ContentWatcher> watcher) : watcher_(std::move(watcher)) {}

  std::vector<PullSession> SessionsWithChain(const std::string& chain_id) const override {
    return watcher_->tracker().SessionsWithChain(chain_id);
  }
  std::optional<PullSession> SessionByManifest(const std::string& digest) const override {
    return watcher_->tracker().SessionByManifest(digest);
  }
  std::optional<std::string> ManifestForIndex(const std::string& digest) const override {
    return watcher_->tracker().ManifestForIndex(digest);
  }
  BandwidthEstimate Bandwidth() const override { return watcher_->tracker().Bandwidth(); }
  WatcherHealth Health() const override { return watcher_->Health(); }

 private:
  std::unique_ptr<ContentWatcher> watcher_;
};

}  // namespace ndocker::lass
