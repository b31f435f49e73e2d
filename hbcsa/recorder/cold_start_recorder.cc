#include "hbcsa/recorder/cold_start_recorder.h"

#include "absl/strings/str_cat.h"
#include "snapshotter/log.h"

namespace ndocker::hbcsa {

std::string ColdStartRecorder::ContainerIdOfKey(const std::string& key) {
  const size_t slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

std::string ColdStartRecorder::ChainIdOfKey(const std::string& key) {
  const size_t at = key.rfind("sha256:");
  return at == std::string::npos ? "" : key.substr(at);
}

void ColdStartRecorder::RootfsPrepared(const ndocker::RootfsPrepared& rootfs) {
  Tracer* tracer = tracer_.load();
  if (tracer == nullptr || rootfs.lowers.empty()) return;
  if (auto it = rootfs.labels.find(kTraceLabel); it != rootfs.labels.end() && it->second == "false") {
    return;
  }
  if (rootfs.shared_lower != 0) {
    // It reads its hot files from the hot layer, not from the layers the
    // tracer watches: its trace would miss exactly the files that matter.
    spdlog::info("msg=\"cold-start trace skipped: the container runs on a hot layer\" container={} hot_layer={}",
                 Q(ContainerIdOfKey(rootfs.key)), rootfs.shared_lower);
    return;
  }
  RootfsChain chain;
  chain.upper_dir = rootfs.upper_dir;
  for (const LowerLayer& l : rootfs.lowers) chain.lowers.push_back({ChainIdOfKey(l.key), l.fs_dir});
  const std::string container = ContainerIdOfKey(rootfs.key);
  {
    absl::MutexLock lock(&tracing_mu_);
    tracing_.emplace(container, chain.lowers.front().id);  // an open trace keeps its image
  }
  tracer->WatchContainer(container, std::move(chain));
}

absl::flat_hash_set<std::string> ColdStartRecorder::TracingTops() const {
  absl::MutexLock lock(&tracing_mu_);
  absl::flat_hash_set<std::string> tops;
  for (const auto& [container, top] : tracing_) tops.insert(top);
  return tops;
}

void ColdStartRecorder::Removed(const std::string& key, Kind kind) {
  Tracer* tracer = tracer_.load();
  if (tracer == nullptr || kind != Kind::kActive) return;
  {
    absl::MutexLock lock(&tracing_mu_);
    tracing_.erase(ContainerIdOfKey(key));
  }
  tracer->ContainerGone(ContainerIdOfKey(key));
}

void ColdStartRecorder::OnTrace(const Trace& trace, const RootfsChain& chain) {
  {
    absl::MutexLock lock(&tracing_mu_);
    tracing_.erase(trace.container);
  }
  ProfileStore* store = store_.load();
  if (store == nullptr || chain.lowers.empty() || chain.lowers.front().id.empty()) return;
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
  auto p = store->Record(image, top, run, absl::Now());
  if (!p.ok()) {
    spdlog::warn("msg=\"could not record a cold-start trace\" container={} error={}", Q(trace.container),
                 Q(p.status().message()));
    return;
  }
  spdlog::info("msg=\"recorded cold-start trace\" container={} image={} files={} complete={} "
               "profile_version={} profile_files={} profile_bytes={} tracer_cpu_ms={:.2f}",
               Q(trace.container), image, trace.files.size(), trace.complete, p->version, p->files.size(),
               p->bytes(), absl::ToDoubleMilliseconds(trace.cpu));
  if (profile_recorded_ && !p->files.empty()) profile_recorded_(image);
}

}  // namespace ndocker::hbcsa
