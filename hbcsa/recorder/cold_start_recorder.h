// Records containers' cold starts into per-image hot-file profiles: told by
// the core (SnapshotObserver) when a container rootfs is prepared, it asks the
// tracer to watch that container; each finished trace (TraceSink) becomes one
// run of the image's profile. Opt-out per container with the label
// containerd.io/snapshot/ndocker.trace=false. Never fails a Prepare.
#pragma once

#include <atomic>
#include <functional>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"

#include "hbcsa/profiles/profile_store.h"
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
  // builder). Set before Attach.
  void OnProfileRecorded(std::function<void(const std::string& image)> fn) { profile_recorded_ = std::move(fn); }

  // Both exist only after this object (the core takes it as an option).
  void Attach(Tracer* tracer, ProfileStore* store) {
    store_.store(store);
    tracer_.store(tracer);
  }

  void RootfsPrepared(const ndocker::RootfsPrepared& rootfs) override;
  void Removed(const std::string& key, Kind kind) override;
  void OnTrace(const Trace& trace, const RootfsChain& chain) override;

  // The top layers (chainIDs) of the containers being traced now.
  absl::flat_hash_set<std::string> TracingTops() const;

  // "<namespace>/<n>/<client key>" -> "<client key>"'s last part, which is
  // the container id for ctr run and CRI (the cgroup names it too).
  static std::string ContainerIdOfKey(const std::string& key);
  // A committed layer key "<ns>/<n>/sha256:<chainID>" -> "sha256:<chainID>".
  static std::string ChainIdOfKey(const std::string& key);

 private:
  std::function<std::string(const std::string&)> image_of_;
  std::function<void(const std::string&)> profile_recorded_;
  std::atomic<Tracer*> tracer_{nullptr};
  std::atomic<ProfileStore*> store_{nullptr};
  mutable absl::Mutex tracing_mu_;
  // Container id -> top chainID while its trace is open. The tracer keeps
  // one trace per container id (a second watch of an id whose trace is open
  // is ignored), so the first OnTrace for the id ends it here too.
  absl::flat_hash_map<std::string, std::string> tracing_ ABSL_GUARDED_BY(tracing_mu_);
};

}  // namespace ndocker::hbcsa
