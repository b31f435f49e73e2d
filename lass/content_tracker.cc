#include "lass/content_tracker.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "lass/digest.h"
#include "lass/ingest_ref.h"
#include "snapshotter/log.h"

namespace ndocker::lass {
namespace {

// A rate needs at least this much of the window behind it; two polls 50 ms
// apart would turn one TCP burst into a wild estimate.
constexpr absl::Duration kMinRateSpan = absl::Milliseconds(250);

std::string Seconds(absl::Duration d) { return absl::StrCat(absl::ToDoubleSeconds(d)); }

bool AllDone(const PullSession& s) {
  return std::all_of(s.layers.begin(), s.layers.end(),
                     [](const LayerProgress& l) { return l.state == BlobState::kDone; });
}

bool AnyDownloading(const PullSession& s) {
  return std::any_of(s.layers.begin(), s.layers.end(),
                     [](const LayerProgress& l) { return l.state == BlobState::kDownloading; });
}

std::vector<PullSession> NewestFirst(std::vector<PullSession> v) {
  std::sort(v.begin(), v.end(), [](const PullSession& a, const PullSession& b) {
    if (a.started != b.started) return a.started > b.started;
    return a.manifest_digest < b.manifest_digest;
  });
  return v;
}

}  // namespace

ContentTracker::ContentTracker(ContentTrackerOptions options) : options_(std::move(options)) {}

template <typename F>
void ContentTracker::Mutate(F&& f) {
  std::vector<LogLine> logs;
  {
    absl::MutexLock lock(&mu_);
    f();
    logs.swap(pending_logs_);
  }
  // Outside the mutex: a slow stderr must not stall the planner's queries.
  for (const LogLine& line : logs) spdlog::log(line.level, "{}", line.text);
}

void ContentTracker::Log(spdlog::level::level_enum level, std::string text) {
  if (spdlog::should_log(level)) pending_logs_.push_back(LogLine{level, std::move(text)});
}

// --- inputs ---

void ContentTracker::IngestSeen(const std::string& ingest_name, const std::string& ref,
                                int64_t total, absl::Time started_at) {
  Mutate([&] {
    absl::Time now = options_.clock();
    PruneLocked(now);
    Ingest& in = ingests_[ingest_name];
    std::optional<IngestRef> parsed = ParseIngestRef(ref);
    in.digest = parsed ? parsed->digest : "";
    in.total = std::max<int64_t>(total, 0);
    // Without startedat the first sighting is the best bound we have.
    in.started = started_at == absl::InfinitePast() ? now : started_at;
    if (!in.digest.empty()) RefreshDigest(in.digest);
  });
}

void ContentTracker::IngestProgress(const std::string& ingest_name, int64_t offset,
                                    absl::Time now) {
  Mutate([&] {
    PruneLocked(now);
    auto it = ingests_.find(ingest_name);
    if (it == ingests_.end()) return;  // metadata not read yet: no ref, no digest
    Ingest& in = it->second;
    int64_t delta = 0;
    if (!in.offset_known) {
      // Bytes written before the first sample count only for a download that
      // started inside the window; an old ingest found at startup would
      // otherwise look like a burst of its whole size.
      if (in.started >= now - options_.bandwidth_window) delta = offset;
      in.offset_known = true;
    } else {
      delta = offset - in.offset;
    }
    bool grew = offset > in.offset;
    in.offset = offset;
    if (grew) in.last_growth = now;
    AddBytes(std::max<int64_t>(delta, 0), now);
    if (in.digest.empty()) return;
    for (auto& [_, s] : sessions_) {
      for (LayerProgress& l : s.pull.layers) {
        if (l.digest != in.digest || l.state == BlobState::kDone) continue;
        ApplyStoreState(s, l, /*creating=*/false);
        if (grew) s.pull.updated = std::max(s.pull.updated, now);
      }
    }
  });
}

void ContentTracker::IngestGone(const std::string& ingest_name) {
  Mutate([&] {
    PruneLocked(options_.clock());
    auto it = ingests_.find(ingest_name);
    if (it == ingests_.end()) return;
    std::string digest = it->second.digest;
    ingests_.erase(it);
    // Committed: the blob is already present and the layer stays done.
    // Aborted: the layer falls back to waiting (or to another ingest of the
    // same blob, e.g. a second namespace pulling it).
    if (!digest.empty()) RefreshDigest(digest);
  });
}

void ContentTracker::BlobCommitted(const std::string& digest, absl::Time commit_time,
                                   std::optional<std::string> json) {
  if (!IsSha256Digest(digest)) return;
  Mutate([&] {
    absl::Time now = options_.clock();
    PruneLocked(now);
    present_[digest] = commit_time;
    // The final chunk usually lands between two polls; count it so short
    // downloads are not missing from the rate.
    for (auto& [_, in] : ingests_) {
      if (in.digest == digest && in.offset_known && in.total > in.offset) {
        AddBytes(in.total - in.offset, now);
        in.offset = in.total;
        in.last_growth = now;
      }
    }
    for (auto& [_, s] : sessions_) {
      for (LayerProgress& l : s.pull.layers) {
        if (l.digest != digest) continue;
        bool was_done = l.state == BlobState::kDone;
        ApplyStoreState(s, l, /*creating=*/false);
        if (!l.present_before) s.pull.updated = std::max(s.pull.updated, commit_time);
        if (!was_done) {
          Log(spdlog::level::debug,
              absl::StrCat("msg=\"layer download done\" manifest=", s.pull.manifest_digest,
                           " layer=", digest, " size=", l.size, " duration=",
                           l.download_start == absl::InfinitePast()
                               ? std::string("unknown")
                               : Seconds(l.download_end - l.download_start)));
        }
      }
    }
    if (!json) return;
    switch (DetectImageJsonKind(*json)) {
      case ImageJsonKind::kManifest: {
        auto m = ParseImageManifest(*json);
        if (m.ok()) {
          OnManifest(digest, commit_time, *m);
        } else {
          Log(spdlog::level::warn, absl::StrCat("msg=\"unreadable manifest blob\" digest=", digest,
                                                " error=", Q(m.status().ToString())));
        }
        break;
      }
      case ImageJsonKind::kConfig: {
        auto c = ParseImageConfig(*json);
        if (c.ok()) {
          OnConfig(digest, commit_time, *std::move(c));
        } else {
          Log(spdlog::level::warn, absl::StrCat("msg=\"unreadable image config blob\" digest=",
                                                digest, " error=", Q(c.status().ToString())));
        }
        break;
      }
      case ImageJsonKind::kIndex: {
        auto i = ParseImageIndex(*json);
        if (i.ok()) {
          OnIndex(digest, commit_time, *i);
        } else {
          Log(spdlog::level::warn, absl::StrCat("msg=\"unreadable image index blob\" digest=",
                                                digest, " error=", Q(i.status().ToString())));
        }
        break;
      }
      case ImageJsonKind::kUnknown:
        break;  // some other JSON (attestation, artifact): not ours to track
    }
  });
}

void ContentTracker::BlobRemoved(const std::string& digest) {
  Mutate([&] {
    PruneLocked(options_.clock());
    if (present_.erase(digest) == 0) return;
    RefreshDigest(digest);
    auto it = sessions_.find(digest);
    if (it != sessions_.end()) {
      it->second.manifest_removed = true;
      if (!AnyDownloading(it->second.pull)) EndSession(it, "manifest removed");
    }
    configs_.erase(digest);  // sessions keep their filled-in diff_ids
    indexes_.erase(digest);
  });
}

void ContentTracker::Prune() {
  Mutate([&] { PruneLocked(options_.clock()); });
}

// --- JSON documents ---

void ContentTracker::OnManifest(const std::string& digest, absl::Time commit_time,
                                const ImageManifest& m) {
  auto it = sessions_.find(digest);
  if (it != sessions_.end()) {
    // Seen again (re-pulled after GC, or re-read after a rescan): renew it.
    it->second.manifest_removed = false;
    it->second.pull.updated = std::max(it->second.pull.updated, commit_time);
    return;
  }
  EvictIfFull();
  Session s;
  s.pull.manifest_digest = digest;
  s.pull.config_digest = m.config.digest;
  s.pull.started = commit_time;
  s.pull.updated = commit_time;
  for (const Descriptor& d : m.layers) {
    LayerProgress l;
    l.digest = d.digest;
    l.media_type = d.media_type;
    l.size = d.size;
    s.pull.layers.push_back(std::move(l));
  }
  for (LayerProgress& l : s.pull.layers) ApplyStoreState(s, l, /*creating=*/true);
  for (const auto& [index, rec] : indexes_) {
    if (rec.target == digest) s.pull.index_digests.push_back(index);
  }
  auto config = configs_.find(m.config.digest);
  if (config != configs_.end()) FillConfig(s, config->second.config);
  int done = 0;
  for (const LayerProgress& l : s.pull.layers) done += l.state == BlobState::kDone;
  Log(spdlog::level::info,
      absl::StrCat("msg=\"pull session started\" manifest=", digest, " config=", m.config.digest,
                   " layers=", s.pull.layers.size(), " layers_present=", done));
  sessions_.emplace(digest, std::move(s));
}

void ContentTracker::OnConfig(const std::string& digest, absl::Time commit_time,
                              ImageConfig config) {
  for (auto& [_, s] : sessions_) {
    if (s.pull.config_digest == digest && !s.pull.config_read) FillConfig(s, config);
  }
  configs_[digest] = ConfigRecord{std::move(config), commit_time};
  PruneConfigs();
}

void ContentTracker::OnIndex(const std::string& digest, absl::Time commit_time,
                             const ImageIndex& index) {
  std::optional<Descriptor> chosen = SelectManifest(index, options_.platform);
  if (!chosen) {
    Log(spdlog::level::debug, absl::StrCat("msg=\"image index has no manifest for this platform\" "
                                           "index=", digest, " os=", options_.platform.os,
                                           " arch=", options_.platform.architecture));
    return;
  }
  indexes_[digest] = IndexRecord{chosen->digest, commit_time};
  auto it = sessions_.find(chosen->digest);
  if (it != sessions_.end()) {
    auto& idx = it->second.pull.index_digests;
    if (std::find(idx.begin(), idx.end(), digest) == idx.end()) idx.push_back(digest);
  }
  while (indexes_.size() > options_.max_indexes) {
    auto oldest = std::min_element(indexes_.begin(), indexes_.end(), [](const auto& a, const auto& b) {
      return a.second.seen < b.second.seen;
    });
    indexes_.erase(oldest);
  }
}

void ContentTracker::FillConfig(Session& s, const ImageConfig& config) {
  if (config.diff_ids.size() != s.pull.layers.size()) {
    Log(spdlog::level::warn,
        absl::StrCat("msg=\"image config does not match its manifest\" manifest=",
                     s.pull.manifest_digest, " layers=", s.pull.layers.size(),
                     " diff_ids=", config.diff_ids.size()));
    return;
  }
  auto chain = ChainIds(config.diff_ids);
  if (!chain.ok()) {
    Log(spdlog::level::warn, absl::StrCat("msg=\"cannot compute chain IDs\" manifest=",
                                          s.pull.manifest_digest, " error=",
                                          Q(chain.status().ToString())));
    return;
  }
  for (size_t i = 0; i < s.pull.layers.size(); ++i) {
    s.pull.layers[i].diff_id = config.diff_ids[i];
    s.pull.layers[i].chain_id = (*chain)[i];
  }
  s.pull.config_read = true;
}

// --- layer state ---

const ContentTracker::Ingest* ContentTracker::BestIngestFor(const std::string& digest) const {
  const Ingest* best = nullptr;
  for (const auto& [_, in] : ingests_) {
    if (in.digest == digest && (!best || in.offset > best->offset)) best = &in;
  }
  return best;
}

void ContentTracker::ApplyStoreState(Session& s, LayerProgress& l, bool creating) {
  auto present = present_.find(l.digest);
  if (present != present_.end()) {
    if (l.state != BlobState::kDone) {
      // Committed before the manifest: another image (or an earlier pull of
      // this one) brought it; it was not part of this download.
      l.present_before = creating && present->second < s.pull.started;
    }
    l.state = BlobState::kDone;
    l.offset = l.size;
    l.download_end = present->second;
    return;
  }
  l.present_before = false;
  l.download_end = absl::InfinitePast();
  if (const Ingest* in = BestIngestFor(l.digest)) {
    l.state = BlobState::kDownloading;
    l.offset = in->offset;
    l.download_start = in->started;
    return;
  }
  l.state = BlobState::kWaiting;
  l.offset = 0;
  l.download_start = absl::InfinitePast();
}

void ContentTracker::RefreshDigest(const std::string& digest) {
  for (auto& [_, s] : sessions_) {
    for (LayerProgress& l : s.pull.layers) {
      if (l.digest == digest) ApplyStoreState(s, l, /*creating=*/false);
    }
  }
}

// --- session lifetime ---

bool ContentTracker::Expired(const Session& s, absl::Time now) const {
  if (AnyDownloading(s.pull)) return false;
  if (s.manifest_removed) return true;
  absl::Duration ttl = AllDone(s.pull) ? options_.session_ttl : options_.incomplete_ttl;
  return now - s.pull.updated > ttl;
}

void ContentTracker::EndSession(std::map<std::string, Session>::iterator it, const char* reason) {
  const PullSession& p = it->second.pull;
  int done = 0;
  for (const LayerProgress& l : p.layers) done += l.state == BlobState::kDone;
  Log(spdlog::level::info,
      absl::StrCat("msg=\"pull session ended\" manifest=", p.manifest_digest, " reason=", Q(reason),
                   " layers=", p.layers.size(), " layers_done=", done,
                   " last_progress_after=", Seconds(p.updated - p.started)));
  sessions_.erase(it);
}

void ContentTracker::PruneLocked(absl::Time now) {
  for (auto it = sessions_.begin(); it != sessions_.end();) {
    auto next = std::next(it);
    if (Expired(it->second, now)) {
      EndSession(it, it->second.manifest_removed ? "manifest removed" : "expired");
    }
    it = next;
  }
  PruneConfigs();
  if (ActiveDownloads(now) == 0 && now - last_active_ > options_.concurrency_memory) {
    max_concurrent_ = 0;
  }
}

void ContentTracker::EvictIfFull() {
  while (!sessions_.empty() && sessions_.size() >= options_.max_sessions) {
    // Oldest idle session first; only when every one is downloading, the
    // oldest of all.
    auto victim = sessions_.end();
    for (bool idle_only : {true, false}) {
      for (auto it = sessions_.begin(); it != sessions_.end(); ++it) {
        if (idle_only && AnyDownloading(it->second.pull)) continue;
        if (victim == sessions_.end() || it->second.pull.updated < victim->second.pull.updated) {
          victim = it;
        }
      }
      if (victim != sessions_.end()) break;
    }
    EndSession(victim, "evicted (too many sessions)");
  }
}

void ContentTracker::PruneConfigs() {
  auto used = [&](const std::string& digest) {
    return std::any_of(sessions_.begin(), sessions_.end(),
                       [&](const auto& kv) { return kv.second.pull.config_digest == digest; });
  };
  std::vector<std::map<std::string, ConfigRecord>::iterator> unused;
  for (auto it = configs_.begin(); it != configs_.end(); ++it) {
    if (!used(it->first)) unused.push_back(it);
  }
  if (unused.size() <= options_.max_unused_configs) return;
  std::sort(unused.begin(), unused.end(),
            [](const auto& a, const auto& b) { return a->second.seen < b->second.seen; });
  for (size_t i = 0; i < unused.size() - options_.max_unused_configs; ++i) configs_.erase(unused[i]);
}

// --- bandwidth ---

void ContentTracker::AddBytes(int64_t delta, absl::Time now) {
  const absl::Duration window = options_.bandwidth_window;
  if (!samples_.empty() && now - samples_.back().first > window) {
    samples_.clear();  // idle gap: a new series
  }
  if (samples_.empty()) series_start_ = now;
  total_bytes_ += delta;
  if (delta > 0) last_byte_time_ = now;
  if (!samples_.empty() && samples_.back().first >= now) {
    samples_.back().second = total_bytes_;  // same instant (or a clock step back)
  } else {
    samples_.emplace_back(now, total_bytes_);
  }
  // Keep one sample at or before the window start so the window is covered.
  while (samples_.size() >= 2 && samples_[1].first <= now - window) samples_.pop_front();
  // The rate runs from the oldest sample to the last growth, so a stall at
  // the end of the window (or a stale ingest) does not drag it down; once
  // less than half a window of growth is left in view the last estimate
  // stands, since a few bursts over a short span would overshoot.
  const auto& [front_time, front_total] = samples_.front();
  absl::Duration span = last_byte_time_ - front_time;
  bool enough = span >= kMinRateSpan && (span >= window / 2 || front_time == series_start_);
  if (enough && total_bytes_ > front_total) {
    last_rate_ = static_cast<double>(total_bytes_ - front_total) / absl::ToDoubleSeconds(span);
  }
  int active = ActiveDownloads(now);
  if (active > 0) last_active_ = now;
  max_concurrent_ = std::max(max_concurrent_, active);
}

int ContentTracker::ActiveDownloads(absl::Time now) const {
  int n = 0;
  for (const auto& [_, in] : ingests_) n += in.last_growth >= now - options_.bandwidth_window;
  return n;
}

// --- queries ---

std::vector<PullSession> ContentTracker::SessionsWithChain(const std::string& chain_id) const {
  absl::MutexLock lock(&mu_);
  absl::Time now = options_.clock();
  std::vector<PullSession> out;
  for (const auto& [_, s] : sessions_) {
    if (Expired(s, now)) continue;
    for (const LayerProgress& l : s.pull.layers) {
      if (l.chain_id == chain_id) {
        out.push_back(s.pull);
        break;
      }
    }
  }
  return NewestFirst(std::move(out));
}

std::optional<PullSession> ContentTracker::SessionByManifest(const std::string& digest) const {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(digest);
  if (it == sessions_.end() || Expired(it->second, options_.clock())) return std::nullopt;
  return it->second.pull;
}

std::optional<std::string> ContentTracker::ManifestForIndex(const std::string& digest) const {
  absl::MutexLock lock(&mu_);
  std::string current = digest;
  // An index may name another index (nested platforms); a few hops is plenty
  // and also stops a cycle made of crafted blobs.
  for (int hop = 0; hop < 4; ++hop) {
    auto it = indexes_.find(current);
    if (it == indexes_.end()) return hop == 0 ? std::nullopt : std::optional<std::string>(current);
    current = it->second.target;
  }
  return indexes_.count(current) ? std::nullopt : std::optional<std::string>(current);
}

std::optional<ImageConfig> ContentTracker::ConfigByDigest(const std::string& digest) const {
  absl::MutexLock lock(&mu_);
  auto it = configs_.find(digest);
  if (it == configs_.end()) return std::nullopt;
  return it->second.config;
}

std::vector<PullSession> ContentTracker::Sessions() const {
  absl::MutexLock lock(&mu_);
  absl::Time now = options_.clock();
  std::vector<PullSession> out;
  for (const auto& [_, s] : sessions_) {
    if (!Expired(s, now)) out.push_back(s.pull);
  }
  return NewestFirst(std::move(out));
}

BandwidthEstimate ContentTracker::Bandwidth() const {
  absl::MutexLock lock(&mu_);
  absl::Time now = options_.clock();
  BandwidthEstimate b;
  b.bytes_per_second = last_rate_;
  b.active_downloads = ActiveDownloads(now);
  bool remembered = b.active_downloads > 0 || now - last_active_ <= options_.concurrency_memory;
  b.max_concurrent_seen = remembered ? max_concurrent_ : 0;
  return b;
}

bool ContentTracker::IsPresent(const std::string& digest) const {
  absl::MutexLock lock(&mu_);
  return present_.count(digest) > 0;
}

}  // namespace ndocker::lass
