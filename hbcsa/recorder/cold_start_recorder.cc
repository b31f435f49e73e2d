#include "hbcsa/recorder/cold_start_recorder.h"

#include "absl/strings/str_cat.h"
#include "snapshotter/log.h"

namespace ndocker::hbcsa {

void ColdStartRecorder::RootfsPrepared(const ndocker::RootfsPrepared& rootfs) {
  ContainerWatch* tracer = tracer_.load();
  if (tracer == nullptr || rootfs.lowers.empty()) return;
  if (auto it = rootfs.labels.find(kTraceLabel); it != rootfs.labels.end() && it->second == "false") {
    return;
  }
  RootfsChain chain;
  chain.upper_dir = rootfs.upper_dir;
  // Over a hot layer the image's layers are its data-only lower layers: an
  // open of a file the hot layer has no data for reaches the layer's own
  // file, which the tracer attributes as it does under a plain chain.
  for (const LowerLayer& l : rootfs.lowers) chain.lowers.push_back({ClientNameOfKey(l.key), l.fs_dir});
  if (chain.lowers.front().id.empty()) return;
  const std::string container = ClientNameOfKey(rootfs.key);
  {
    absl::MutexLock lock(&tracing_mu_);
    // An open trace keeps its image.
    tracing_.emplace(container, Watched{chain.lowers.front().id, rootfs.shared_lower != 0});
  }
  if (rootfs.shared_lower != 0) {
    spdlog::info("msg=\"tracing the hot layer's misses\" container={} hot_layer={}", Q(container),
                 rootfs.shared_lower);
  }
  tracer->WatchContainer(container, std::move(chain));
}

absl::flat_hash_set<std::string> ColdStartRecorder::TracingTops() const {
  absl::MutexLock lock(&tracing_mu_);
  absl::flat_hash_set<std::string> tops;
  for (const auto& [container, watched] : tracing_) {
    if (!watched.over_hot_layer && !watched.gone) tops.insert(watched.top);
  }
  return tops;
}

void ColdStartRecorder::Removed(const std::string& key, Kind kind) {
  ContainerWatch* tracer = tracer_.load();
  if (tracer == nullptr || kind != Kind::kActive) return;
  const std::string container = ClientNameOfKey(key);
  {
    // Kept until its OnTrace, which ContainerGone brings on the tracer's
    // finisher thread and which needs to know how it was watched.
    absl::MutexLock lock(&tracing_mu_);
    if (auto it = tracing_.find(container); it != tracing_.end()) it->second.gone = true;
  }
  tracer->ContainerGone(container);
}

void ColdStartRecorder::OnTrace(const Trace& trace, const RootfsChain& chain) {
  bool over_hot_layer = false;
  {
    absl::MutexLock lock(&tracing_mu_);
    if (auto it = tracing_.find(trace.container); it != tracing_.end()) {
      over_hot_layer = it->second.over_hot_layer;
      tracing_.erase(it);
    }
  }
  ProfileStore* store = store_.load();
  if (store == nullptr || chain.lowers.empty() || chain.lowers.front().id.empty()) return;
  if (over_hot_layer && (trace.files.empty() || trace.end_reason == TraceEnd::kNeverStarted)) {
    // The usual end over a hot layer: everything it read was hot (so no
    // event of its own started the trace).
    spdlog::info("msg=\"no hot layer misses\" container={} end={} host_reads={}", Q(trace.container),
                 TraceEndName(trace.end_reason), trace.files.size());
    return;
  }
  if (trace.end_reason == TraceEnd::kNeverStarted) {
    // Created, never started (or removed first): nothing about its start.
    spdlog::info("msg=\"cold-start trace dropped: the container never started\" container={} host_reads={}",
                 Q(trace.container), trace.files.size());
    return;
  }
  const std::string top = chain.lowers.front().id;
  std::string image = image_of_ ? image_of_(top) : "";
  if (image.empty()) image = top;
  TracedRun run;
  run.complete = trace.complete;
  for (const TraceFile& f : trace.files) run.files.push_back(HotFile{f.path, f.layer, f.size, 0});
  bool changed = false;
  auto p = store->Record(image, top, run, absl::Now(), &changed);
  if (!p.ok()) {
    spdlog::warn("msg=\"could not record a cold-start trace\" container={} error={}", Q(trace.container),
                 Q(p.status().message()));
    return;
  }
  spdlog::info("msg=\"recorded {}\" container={} image={} files={} complete={} "
               "profile_version={} profile_files={} profile_bytes={} tracer_cpu_ms={:.2f}",
               over_hot_layer ? "the hot layer's misses" : "cold-start trace", Q(trace.container), image,
               trace.files.size(), trace.complete, p->version, p->files.size(), p->bytes(),
               absl::ToDoubleMilliseconds(trace.cpu));
  if (profile_recorded_ && !p->files.empty() && (!over_hot_layer || changed)) profile_recorded_(image);
}

}  // namespace ndocker::hbcsa
