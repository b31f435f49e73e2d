#include "hbcsa/static_advisor.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "hbcsa/image_reader.h"
#include "lass/digest.h"
#include "snapshotter/log.h"
#include "spdlog/spdlog.h"

namespace ndocker::hbcsa {
namespace {

constexpr size_t kReasonEvidence = 2;  // evidence lines quoted in a placement reason

// A verdict is stronger by class, then final over provisional.
bool Stronger(const ChainVerdict& a, const ChainVerdict& b) {
  if (a.layer_class != b.layer_class) return a.layer_class > b.layer_class;
  return !a.provisional && b.provisional;
}

}  // namespace

StaticAdvisor::StaticAdvisor(StaticAdvisorOptions options) : options_(std::move(options)) {
  if (options_.start_thread && options_.sessions) thread_ = std::thread([this] { Run(); });
}

StaticAdvisor::~StaticAdvisor() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

bool StaticAdvisor::Stopping() const {
  absl::MutexLock lock(&mu_);
  return stop_;
}

void StaticAdvisor::Run() {
  if (options_.worker_nice != 0) {
    // Per thread on Linux: setpriority(PRIO_PROCESS, tid) nices this thread only.
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), options_.worker_nice) != 0) {
      spdlog::warn("msg=\"static analysis: cannot renice the worker\" nice={}", options_.worker_nice);
    }
  }
  while (true) {
    PollOnce();
    absl::MutexLock lock(&mu_);
    auto woken = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return wake_ || stop_; };
    mu_.AwaitWithTimeout(absl::Condition(&woken), options_.poll_interval);
    if (stop_) return;
    wake_ = false;
  }
}

std::optional<Placement> StaticAdvisor::Advise(const PlacementRequest& request) {
  if (request.unpack_chain_id.empty()) return std::nullopt;
  std::optional<ChainVerdict> v = Verdict(request.unpack_chain_id);
  if (!v) {
    // Perhaps a pull the worker has not looked at yet: look now, for the
    // layers above this one.
    absl::MutexLock lock(&mu_);
    wake_ = true;
    return std::nullopt;
  }
  if (!KeepFast(v->layer_class)) return std::nullopt;
  if (options_.has_trace && options_.has_trace(v->manifest_digest)) return std::nullopt;
  std::vector<std::string> why;
  for (const Evidence& e : v->evidence) {
    if (e.supports != v->layer_class) continue;
    why.push_back(e.text);
    if (why.size() == kReasonEvidence) break;
  }
  std::string reason = absl::StrCat("static analysis: layer ", v->layer_index, " of image ",
                                    lass::ShortDigest(v->manifest_digest), " is ", LayerClassName(v->layer_class),
                                    v->provisional ? " (from the history; file list not read yet)" : "",
                                    ", kept on the fast tier until a trace exists: ", absl::StrJoin(why, "; "));
  Placement p{Tier::kFast, v->layer_class == LayerClass::kEngine ? kRuleStaticEngine : kRuleStaticApp,
              std::move(reason)};
  p.expected_bytes = v->expected_bytes;
  return p;
}

void StaticAdvisor::Committed(const CommitReport& /*report*/) {}

std::optional<ImageAnalysis> StaticAdvisor::Analysis(const std::string& manifest_digest) const {
  absl::MutexLock lock(&mu_);
  auto it = results_.find(manifest_digest);
  if (it == results_.end()) return std::nullopt;
  return it->second.analysis;
}

std::optional<ChainVerdict> StaticAdvisor::Verdict(const std::string& chain_id) const {
  absl::MutexLock lock(&mu_);
  std::optional<ChainVerdict> best;
  auto [begin, end] = chains_.equal_range(chain_id);
  for (auto it = begin; it != end; ++it) {
    auto r = results_.find(it->second);
    if (r == results_.end()) continue;
    const std::vector<std::string>& chains = r->second.chain_ids;
    for (size_t i = 0; i < chains.size() && i < r->second.analysis.layers.size(); ++i) {
      if (chains[i] != chain_id) continue;
      const LayerAnalysis& la = r->second.analysis.layers[i];
      ChainVerdict v{it->second, i, la.layer_class, la.provisional, la.evidence, la.disk_bytes};
      if (v.expected_bytes == 0 && i < r->second.compressed_sizes.size()) {
        v.expected_bytes = r->second.compressed_sizes[i] * kUnreadUnpackRatio;
      }
      if (!best || Stronger(v, *best)) best = std::move(v);
      break;
    }
  }
  return best;
}

bool StaticAdvisor::PollOnce() {
  absl::MutexLock work_lock(&work_mu_);
  const std::vector<lass::PullSession> sessions =
      options_.sessions ? options_.sessions() : std::vector<lass::PullSession>();
  SyncSessions(sessions);
  bool changed = false;
  for (auto& [manifest, w] : work_) {
    if (Stopping()) break;
    if (!w.facts && !ReadConfig(w)) continue;
    ReadLayers(w);
    if (w.dirty) {
      Publish(w);
      w.last_change = options_.clock();
      changed = true;
    }
  }
  const absl::Time now = options_.clock();
  for (auto it = work_.begin(); it != work_.end();) {
    ImageWork& w = it->second;
    const bool idle = w.facts.has_value() && now - w.last_change >= options_.idle_forget;
    if (idle && !w.analysed_final) {
      spdlog::info("msg=\"static analysis: some layers never arrived; keeping the partial analysis\" manifest={}",
                   w.manifest_digest);
    }
    it = w.analysed_final || idle ? work_.erase(it) : std::next(it);
  }
  return changed;
}

bool StaticAdvisor::SyncSessions(const std::vector<lass::PullSession>& sessions) {
  std::set<std::string> live;
  bool changed = false;
  for (const lass::PullSession& s : sessions) {
    if (!s.config_read || s.config_digest.empty() || s.layers.empty()) continue;
    live.insert(s.manifest_digest);
    auto it = work_.find(s.manifest_digest);
    if (it == work_.end()) {
      {
        // Analysed before, and no blob has arrived since that it lacked.
        absl::MutexLock lock(&mu_);
        auto r = results_.find(s.manifest_digest);
        if (r != results_.end() && r->second.analysis.layers.size() == s.layers.size()) {
          bool news = false;
          for (size_t i = 0; i < s.layers.size() && !news; ++i) {
            news = s.layers[i].state == lass::BlobState::kDone &&
                   r->second.analysis.layers[i].files == FileListState::kPending;
          }
          if (!news) continue;
        }
      }
      ImageWork w;
      w.manifest_digest = s.manifest_digest;
      w.config_digest = s.config_digest;
      w.last_change = options_.clock();
      it = work_.emplace(s.manifest_digest, std::move(w)).first;
      changed = true;
    }
    ImageWork& w = it->second;
    if (w.layers.size() != s.layers.size()) {
      w.layers.assign(s.layers.size(), LayerWork{});
      w.dirty = true;
    }
    for (size_t i = 0; i < s.layers.size(); ++i) {
      LayerWork& l = w.layers[i];
      if (l.digest != s.layers[i].digest || l.chain_id != s.layers[i].chain_id) {
        l = LayerWork{};
        l.digest = s.layers[i].digest;
        l.chain_id = s.layers[i].chain_id;
        w.dirty = true;
      }
      l.compressed_size = s.layers[i].size;
      l.blob_done = s.layers[i].state == lass::BlobState::kDone;
    }
  }
  // A pull the watcher forgot (expired, or layers that never came because
  // their snapshots existed): its last analysis stays, its work goes.
  for (auto it = work_.begin(); it != work_.end();) {
    it = live.count(it->first) == 0 ? work_.erase(it) : std::next(it);
  }
  return changed;
}

bool StaticAdvisor::ReadConfig(ImageWork& w) {
  auto facts = ReadConfigFacts(options_.content_root, w.config_digest);
  if (!facts.ok()) {
    if (absl::IsNotFound(facts.status()) || absl::IsUnavailable(facts.status())) return false;  // later
    spdlog::warn("msg=\"static analysis: unusable image config\" manifest={} config={} error={}", w.manifest_digest,
                 w.config_digest, Q(facts.status().message()));
    ImageConfigFacts none;
    none.history_note = absl::StrCat("config unusable: ", facts.status().message());
    w.facts = std::move(none);
  } else {
    w.facts = *std::move(facts);
  }
  w.dirty = true;
  return true;
}

std::shared_ptr<const LayerFileList> StaticAdvisor::SharedList(const std::string& digest) const {
  for (const auto& [manifest, w] : work_) {
    for (const LayerWork& l : w.layers) {
      if (l.digest == digest && l.state == FileListState::kRead && l.files) return l.files;
    }
  }
  return nullptr;
}

bool StaticAdvisor::ReadLayers(ImageWork& w) {
  bool read_any = false;
  for (LayerWork& l : w.layers) {
    if (l.state != FileListState::kPending || !l.blob_done) continue;
    if (Stopping()) return read_any;
    if (auto shared = SharedList(l.digest)) {
      l.files = std::move(shared);
      l.state = FileListState::kRead;
    } else {
      const absl::Time start = absl::Now();
      auto files = ReadLayerBlob(options_.content_root, l.digest, options_.limits);
      if (files.ok()) {
        spdlog::debug("msg=\"static analysis: layer listed\" digest={} entries={} bytes={} took={}", l.digest,
                      files->entries.size(), files->regular_bytes, absl::FormatDuration(absl::Now() - start));
        l.files = std::make_shared<const LayerFileList>(*std::move(files));
        l.state = FileListState::kRead;
      } else {
        spdlog::warn("msg=\"static analysis: layer unreadable\" manifest={} digest={} error={}", w.manifest_digest,
                     l.digest, Q(files.status().message()));
        l.state = FileListState::kUnreadable;
        l.error = std::string(files.status().message());
      }
    }
    read_any = true;
    w.dirty = true;
  }
  return read_any;
}

void StaticAdvisor::Publish(ImageWork& w) {
  std::vector<LayerInput> inputs;
  std::vector<std::string> chain_ids;
  std::vector<int64_t> sizes;
  bool all_done = true;
  for (const LayerWork& l : w.layers) {
    LayerInput in;
    in.digest = l.digest;
    in.chain_id = l.chain_id;
    in.state = l.state;
    in.files = l.files.get();
    in.error = l.error;
    all_done = all_done && l.state != FileListState::kPending;
    inputs.push_back(std::move(in));
    chain_ids.push_back(l.chain_id);
    sizes.push_back(l.compressed_size);
  }
  ImageAnalysis analysis = AnalyzeImage(*w.facts, inputs);
  w.dirty = false;
  w.analysed_final = all_done;

  if (all_done) {
    std::vector<std::string> classes;
    for (const LayerAnalysis& la : analysis.layers) classes.push_back(LayerClassName(la.layer_class));
    spdlog::info("msg=\"static analysis\" manifest={} layers={}", w.manifest_digest,
                 Q(absl::StrJoin(classes, ",")));
    for (size_t i = 0; i < analysis.layers.size(); ++i) {
      const LayerAnalysis& la = analysis.layers[i];
      spdlog::debug("msg=\"static analysis: layer\" manifest={} index={} chain={} class={} evidence={}",
                    w.manifest_digest, i, chain_ids[i], LayerClassName(la.layer_class),
                    Q(la.evidence.empty() ? "" : la.evidence.front().text));
    }
  }

  absl::MutexLock lock(&mu_);
  auto old = results_.find(w.manifest_digest);
  if (old != results_.end()) {
    for (const std::string& c : old->second.chain_ids) {
      auto [b, e] = chains_.equal_range(c);
      for (auto it = b; it != e;) it = it->second == w.manifest_digest ? chains_.erase(it) : std::next(it);
    }
  }
  std::set<std::string> added;
  for (const std::string& c : chain_ids) {
    if (!c.empty() && added.insert(c).second) chains_.emplace(c, w.manifest_digest);
  }
  results_[w.manifest_digest] = ImageResult{std::move(analysis), std::move(chain_ids), std::move(sizes), absl::Now()};
  while (results_.size() > options_.max_images) {
    auto oldest = std::min_element(results_.begin(), results_.end(), [](const auto& a, const auto& b) {
      return a.second.updated < b.second.updated;
    });
    for (const std::string& c : oldest->second.chain_ids) {
      auto [b, e] = chains_.equal_range(c);
      for (auto it = b; it != e;) it = it->second == oldest->first ? chains_.erase(it) : std::next(it);
    }
    results_.erase(oldest);
  }
}

}  // namespace ndocker::hbcsa
