// Follows containerd's local content store
// (<containerd root>/io.containerd.content.v1.content) with inotify and feeds
// a ContentTracker: ingests appearing and growing (polled sizes of their data
// files), blobs committed (renamed into blobs/sha256) or removed by GC, and
// the JSON of new small blobs. One background thread; queries go to the
// tracker and never wait for it.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <optional>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "lass/content_tracker.h"
#include "lass/pull_session.h"
#include "snapshotter/unique_fd.h"

namespace ndocker::lass {

struct ContentWatcherOptions {
  std::string content_root;  // absolute
  // How often the data files of live ingests are sized.
  absl::Duration poll_interval = absl::Milliseconds(50);
  // Idle tick: retry a missing or unreadable store, re-list ingest/ in case
  // an event was missed, expire sessions.
  absl::Duration rescan_interval = absl::Seconds(1);
  // On a scan (start, store reappearing, event overflow), blobs committed
  // this recently are read as possible manifests/configs, so a pull that was
  // in progress when the daemon restarted is picked up.
  absl::Duration startup_window = absl::Minutes(15);
  // Timestamps handed to the tracker; also becomes the tracker's clock.
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  ContentTrackerOptions tracker;
};

class ContentWatcher {
 public:
  // Fails only when the watcher itself cannot run (relative path, no
  // inotify); a missing or unreadable store is reported by Health().
  static absl::StatusOr<std::unique_ptr<ContentWatcher>> Start(ContentWatcherOptions options);
  ~ContentWatcher();  // stops and joins the thread
  ContentWatcher(const ContentWatcher&) = delete;
  ContentWatcher& operator=(const ContentWatcher&) = delete;

  const ContentTracker& tracker() const { return tracker_; }
  WatcherHealth Health() const;

 private:
  enum Role { kAnchor, kRoot, kIngest, kBlobs, kSha, kRoles };
  struct IngestWatch {
    bool reported = false;  // IngestSeen sent
    absl::Time first_seen;
    absl::Time next_poll;
    absl::Time last_change;
    int64_t last_offset = -1;
  };
  struct KnownBlob {
    absl::Time mtime;
    bool json_pending = false;  // may be JSON but could not be read whole yet
  };

  ContentWatcher(ContentWatcherOptions options, UniqueFd inotify, UniqueFd wake);
  void Run();

  // Watches: (re)establishes every watch it can, scanning what it newly
  // watches. Safe to call any time.
  void Setup();
  bool FullySetUp() const;
  bool AddWatch(Role role, const std::string& path, uint32_t mask);
  void DropWatch(Role role);
  void WatchAnchor();
  std::string PathOf(Role role) const;

  void ReadEvents();
  void OnEvent(int wd, uint32_t mask, const std::string& name);
  void LoseWatch(Role role);

  // Scans: bring known blobs and ingests in line with the directories.
  // False (and health set) when the directory exists but cannot be listed.
  // The 64-hex names in a role's directory; nullopt (and health marked
  // unreadable) when it cannot be listed. A missing directory is empty.
  std::optional<std::set<std::string>> ListOrMarkUnreadable(Role role);
  bool ReconcileBlobs(bool from_scan);
  bool ReconcileIngests();
  void ForgetAll();
  void OnBlob(const std::string& hex, bool from_scan);
  void OnBlobGone(const std::string& hex);
  void OnIngest(const std::string& name);
  void OnIngestGone(const std::string& name);
  void PollIngests(absl::Time now);
  void TryReportIngest(const std::string& name, IngestWatch& w, absl::Time now);

  void SetHealth(bool readable, std::string detail);

  const ContentWatcherOptions options_;
  ContentTracker tracker_;
  UniqueFd inotify_;
  UniqueFd wake_;  // eventfd: the destructor writes it to stop Run()

  // Owned by the thread.
  int wd_[kRoles] = {-1, -1, -1, -1, -1};
  std::string anchor_path_;
  bool need_setup_ = true;
  std::string setup_error_;  // first failure of the current Setup(); empty if none
  std::map<std::string, KnownBlob> blobs_;      // by hex
  std::map<std::string, IngestWatch> ingests_;  // by folder name

  mutable absl::Mutex health_mu_;
  WatcherHealth health_ ABSL_GUARDED_BY(health_mu_);

  std::thread thread_;  // last: started after everything it uses exists
};

}  // namespace ndocker::lass
