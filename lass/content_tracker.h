// The state machine behind the content-fetch watcher: it is told what appears
// in and disappears from containerd's content store (ingests, their growing
// data, committed and removed blobs, the JSON of small blobs) and keeps the
// pull sessions, layer states and bandwidth estimate the planner asks for.
//
// No I/O and no threads: the watcher thread feeds it, the planner queries it,
// and both only hold its mutex for in-memory work (log lines are written after
// the mutex is released). Time comes from `clock` so tests can drive it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lass/image_json.h"
#include "lass/pull_session.h"
#include "spdlog/spdlog.h"

namespace ndocker::lass {

struct ContentTrackerOptions {
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  Platform platform = HostPlatform();  // which manifest of an index is "ours"
  // A session whose layers are all done is dropped after this long without
  // progress.
  absl::Duration session_ttl = absl::Minutes(30);
  // A session with layers that never arrive (unpack found the snapshot and
  // skipped the fetch, or the pull was abandoned) is dropped after this long
  // with nothing downloading.
  absl::Duration incomplete_ttl = absl::Hours(2);
  size_t max_sessions = 256;
  size_t max_indexes = 1024;
  size_t max_unused_configs = 64;  // configs no session refers to (yet)
  // Bytes/s is measured over this sliding window; an ingest counts as active
  // while its data grew within it.
  absl::Duration bandwidth_window = absl::Seconds(2);
  // max_concurrent_seen is forgotten after this long with no active download.
  absl::Duration concurrency_memory = absl::Minutes(10);
};

class ContentTracker {
 public:
  explicit ContentTracker(ContentTrackerOptions options = {});

  // --- inputs (from the watcher) ---

  // An ingest folder's metadata became readable. `ingest_name` is the folder
  // name (64 hex); `ref` the content of its ref file; `total` 0 if unknown;
  // `started_at` InfinitePast if unknown.
  void IngestSeen(const std::string& ingest_name, const std::string& ref, int64_t total,
                  absl::Time started_at);
  // The size of the ingest's data file at `now`. Call it on every poll, also
  // when it did not change: unchanged samples are what let the rate fall.
  void IngestProgress(const std::string& ingest_name, int64_t offset, absl::Time now);
  // The ingest folder is gone (committed, aborted or expired).
  void IngestGone(const std::string& ingest_name);
  // blobs/sha256/<hex> exists with mtime `commit_time`. `json` holds the
  // bytes of a small blob that may be an index, manifest or config. Calling
  // it again for a present blob updates its commit time (containerd sets the
  // mtime just after the rename) and re-reads `json` if given.
  void BlobCommitted(const std::string& digest, absl::Time commit_time,
                     std::optional<std::string> json = std::nullopt);
  // The blob was deleted (content GC).
  void BlobRemoved(const std::string& digest);
  // Drops expired sessions; inputs do this too, so only call it when idle.
  void Prune();

  // --- queries (copies; never wait on I/O) ---

  // Sessions whose layers include `chain_id`, newest first. Empty until the
  // session's config has been read.
  std::vector<PullSession> SessionsWithChain(const std::string& chain_id) const;
  std::optional<PullSession> SessionByManifest(const std::string& digest) const;
  // The manifest an index (or a nested index) selects for our platform.
  std::optional<std::string> ManifestForIndex(const std::string& digest) const;
  std::optional<ImageConfig> ConfigByDigest(const std::string& digest) const;
  std::vector<PullSession> Sessions() const;  // newest first
  BandwidthEstimate Bandwidth() const;
  bool IsPresent(const std::string& digest) const;

 private:
  struct Ingest {
    std::string digest;  // empty if the ref names none
    int64_t total = 0;
    absl::Time started = absl::InfinitePast();
    int64_t offset = 0;
    bool offset_known = false;
    absl::Time last_growth = absl::InfinitePast();
  };
  struct Session {
    PullSession pull;
    bool manifest_removed = false;
  };
  struct IndexRecord {
    std::string target;  // manifest (or nested index) digest
    absl::Time seen;
  };
  struct ConfigRecord {
    ImageConfig config;
    absl::Time seen;
  };
  struct LogLine {
    spdlog::level::level_enum level;
    std::string text;
  };

  // Runs `f` under the mutex, then writes the log lines it queued.
  template <typename F>
  void Mutate(F&& f);
  void Log(spdlog::level::level_enum level, std::string text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void OnManifest(const std::string& digest, absl::Time commit_time, const ImageManifest& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnConfig(const std::string& digest, absl::Time commit_time, ImageConfig config)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void OnIndex(const std::string& digest, absl::Time commit_time, const ImageIndex& index)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void FillConfig(Session& s, const ImageConfig& config) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Sets a layer's state from what the store holds now: blob present → done,
  // an ingest → downloading, else waiting. `creating`: the session is new, so
  // a present blob counts as present_before if it predates the manifest.
  void ApplyStoreState(Session& s, LayerProgress& layer, bool creating)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ApplyStoreState for every layer, in every session, with this digest.
  void RefreshDigest(const std::string& digest) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  const Ingest* BestIngestFor(const std::string& digest) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void EvictIfFull() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void EndSession(std::map<std::string, Session>::iterator it, const char* reason)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void PruneLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool Expired(const Session& s, absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void PruneConfigs() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void AddBytes(int64_t delta, absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int ActiveDownloads(absl::Time now) const ABSL_SHARED_LOCKS_REQUIRED(mu_);

  const ContentTrackerOptions options_;
  mutable absl::Mutex mu_;
  std::map<std::string, Ingest> ingests_ ABSL_GUARDED_BY(mu_);      // by ingest folder name
  std::map<std::string, absl::Time> present_ ABSL_GUARDED_BY(mu_);  // digest → commit time
  std::map<std::string, Session> sessions_ ABSL_GUARDED_BY(mu_);    // by manifest digest
  std::map<std::string, IndexRecord> indexes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, ConfigRecord> configs_ ABSL_GUARDED_BY(mu_);
  std::vector<LogLine> pending_logs_ ABSL_GUARDED_BY(mu_);

  // Bandwidth: a running byte counter sampled at each progress report; the
  // rate is the counter's growth between the oldest sample in the window and
  // the last growth. A gap longer than the window starts a new series so idle
  // time between pulls does not dilute the next measurement.
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_byte_time_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Time series_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::deque<std::pair<absl::Time, int64_t>> samples_ ABSL_GUARDED_BY(mu_);
  double last_rate_ ABSL_GUARDED_BY(mu_) = 0;
  int max_concurrent_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time last_active_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace ndocker::lass
