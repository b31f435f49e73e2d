// Records containers' cold starts into per-image hot-file profiles: told by
// the core (SnapshotObserver) when a container rootfs is prepared, it asks the
// tracer to watch that container; each finished trace (TraceSink) becomes one
// run of the image's profile. Opt-out per container with the label
// containerd.io/snapshot/ndocker.trace=false. Never fails a Prepare.
//
// A container over a hot layer is watched too: the hot files are read from
// the hot layer, which the tracer does not see, so its trace holds only the
// files the start read from the image's layers: the hot layer's misses (a
// first trace cut short, another command, a new code path). They join the
// profile, whose new version the builder turns into a new hot layer.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

#include "hbcsa/profiles/profile_store.h"
#include "hbcsa/tracer/container_watch.h"
#include "hbcsa/tracer/tracer.h"
#include "snapshotter/observer.h"

namespace ndocker::hbcsa {

inline constexpr char kTraceLabel[] = "containerd.io/snapshot/ndocker.trace";

class ColdStartRecorder : public SnapshotObserver, public TraceSink {
 public:
  // image_of: the manifest digest of the image whose top layer is this
  // chainID, "" when unknown (the profile is then keyed by the chainID).
  explicit ColdStartRecorder(std::function<std::string(const std::string& top_chain)> image_of)
      : image_of_(std::move(image_of)) {}

  // Told the image after each trace recorded into its profile (the hot layer
  // builder); after a trace over a hot layer only when it changed the
  // profile. Set before Attach.
  void OnProfileRecorded(std::function<void(const std::string& image)> fn) { profile_recorded_ = std::move(fn); }

  // Both exist only after this object (the core takes it as an option).
  void Attach(ContainerWatch* tracer, ProfileStore* store) {
    store_.store(store);
    tracer_.store(tracer);
  }

  void RootfsPrepared(const ndocker::RootfsPrepared& rootfs) override;
  void Removed(const std::string& key, Kind kind) override;
  void OnTrace(const Trace& trace, const RootfsChain& chain) override;

  // The top layers (chainIDs) of the containers whose cold start is being
  // traced now, for `ndockerctl images` ("tracing"); containers over a hot
  // layer are not: a trace of misses does not hold up the image's promotion.
  absl::flat_hash_set<std::string> TracingTops() const;

 private:
  struct Watched {
    std::string top;  // chainID of the image's top layer
    bool over_hot_layer = false;
    bool gone = false;  // its snapshot was removed; its trace is being finished
  };

  std::function<std::string(const std::string&)> image_of_;
  std::function<void(const std::string&)> profile_recorded_;
  std::atomic<ContainerWatch*> tracer_{nullptr};
  std::atomic<ProfileStore*> store_{nullptr};
  mutable absl::Mutex tracing_mu_;
  // Container id -> what it was watched as, until its OnTrace. The tracer
  // keeps one trace per container id (a second watch of an id whose trace
  // is open is ignored) and ends every trace it watches with one OnTrace.
  absl::flat_hash_map<std::string, Watched> tracing_ ABSL_GUARDED_BY(tracing_mu_);
};

}  // namespace ndocker::hbcsa
