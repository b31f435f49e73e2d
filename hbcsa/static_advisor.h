// Static analysis as a placement input. A worker thread follows the pulls
// the content-fetch watcher sees: when an image's config is read it parses
// the config, and as each layer blob is complete it streams the blob's file
// list (libarchive, nothing extracted) and re-runs the analysis; the result
// is cached per chainID.
//
// Advise answers from that cache only (no I/O, a short lock): an unpack whose
// chainID was classified engine or application goes to the fast tier
// (rule static-engine / static-app, the evidence as the reason); anything
// else gets no opinion, so the next input (LASS) decides. The budget stays
// the core's: a layer that does not fit still goes to the slow tier.
#pragma once

#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hbcsa/image_config_facts.h"
#include "hbcsa/layer_files.h"
#include "hbcsa/static_analyzer.h"
#include "lass/pull_session.h"
#include "snapshotter/placement.h"

namespace ndocker::hbcsa {

// Stable rule names (see snapshotter/placement.h).
inline constexpr char kRuleStaticEngine[] = "static-engine";
inline constexpr char kRuleStaticApp[] = "static-app";

struct StaticAdvisorOptions {
  // Where the blobs are: containerd's content store
  // (<containerd root>/io.containerd.content.v1.content).
  std::string content_root;
  // The pulls to follow, newest first: lass::ContentTracker::Sessions().
  // Called from the worker only.
  std::function<std::vector<lass::PullSession>()> sessions;
  // How often the worker looks for new configs and complete blobs (an
  // Advise for an unknown chainID also wakes it).
  absl::Duration poll_interval = absl::Milliseconds(100);
  // false: no thread; the owner calls PollOnce() (tests).
  bool start_thread = true;
  // Nice value of the worker thread (0 = as the daemon): reading blobs costs
  // CPU (gzip, zstd) that containerd's own unpack also wants.
  int worker_nice = 0;
  size_t max_images = 256;  // analyses kept; the oldest image is forgotten first
  // An image whose other blobs never arrive (their snapshots existed, so
  // containerd did not fetch them) keeps its last analysis, but its file
  // lists are dropped after this long without a new blob; a blob arriving
  // later starts its analysis over.
  absl::Duration idle_forget = absl::Minutes(2);
  std::function<absl::Time()> clock = [] { return absl::Now(); };
  LayerReadLimits limits;
  // True when the image (manifest digest) has a cold-start profile: from then
  // on the trace, not the guess, says what is hot, and static analysis keeps
  // nothing fast (LASS decides). Called on the Prepare path: must be quick.
  std::function<bool(const std::string& manifest_digest)> has_trace;
};

// What static analysis says about one chainID, in one image.
struct ChainVerdict {
  std::string manifest_digest;
  size_t layer_index = 0;
  LayerClass layer_class = LayerClass::kUnknown;
  bool provisional = false;
  std::vector<Evidence> evidence;
  // The unpacked size on disk: from the file list when read, else the
  // compressed size times kUnreadUnpackRatio; 0 when unknown.
  int64_t expected_bytes = 0;
};

// Unpacked/compressed size assumed for a layer whose file list is not read.
inline constexpr int64_t kUnreadUnpackRatio = 2;  // as LASS assumes until it learns

class StaticAdvisor : public PlacementAdvisor {
 public:
  explicit StaticAdvisor(StaticAdvisorOptions options);
  ~StaticAdvisor() override;  // stops and joins the worker
  StaticAdvisor(const StaticAdvisor&) = delete;
  StaticAdvisor& operator=(const StaticAdvisor&) = delete;

  std::optional<Placement> Advise(const PlacementRequest& request) override;
  void Committed(const CommitReport& report) override;

  // The latest analysis of an image (for `ndockerctl plan`); nullopt when
  // none was made.
  std::optional<ImageAnalysis> Analysis(const std::string& manifest_digest) const;
  // The strongest verdict on a chainID over the images analysed.
  std::optional<ChainVerdict> Verdict(const std::string& chain_id) const;

  // One round of the worker's work on the caller's thread: new images,
  // configs and complete blobs are read and analysed. True if an analysis
  // changed. Blocking I/O: never on the RPC path.
  bool PollOnce();

 private:
  struct LayerWork {
    std::string digest;
    std::string chain_id;
    int64_t compressed_size = 0;
    bool blob_done = false;
    FileListState state = FileListState::kPending;
    std::shared_ptr<const LayerFileList> files;
    std::string error;
  };
  struct ImageWork {
    std::string manifest_digest;
    std::string config_digest;
    std::optional<ImageConfigFacts> facts;
    std::vector<LayerWork> layers;
    bool analysed_final = false;  // every layer read or failed, analysis published
    bool dirty = false;
    absl::Time last_change;
  };
  struct ImageResult {
    ImageAnalysis analysis;
    std::vector<std::string> chain_ids;
    std::vector<int64_t> compressed_sizes;
    absl::Time updated;
  };

  void Run();
  // Returns true when something changed.
  bool SyncSessions(const std::vector<lass::PullSession>& sessions) ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  bool ReadConfig(ImageWork& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  bool ReadLayers(ImageWork& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  std::shared_ptr<const LayerFileList> SharedList(const std::string& digest) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  void Publish(ImageWork& w) ABSL_EXCLUSIVE_LOCKS_REQUIRED(work_mu_);
  bool Stopping() const;

  const StaticAdvisorOptions options_;

  absl::Mutex work_mu_;  // one round at a time; held across I/O, never by Advise
  std::map<std::string, ImageWork> work_ ABSL_GUARDED_BY(work_mu_);  // by manifest

  mutable absl::Mutex mu_;  // results, the wake-up and stop flags: short holds only
  std::map<std::string, ImageResult> results_ ABSL_GUARDED_BY(mu_);  // by manifest
  // chainID -> manifests with a verdict on it
  std::multimap<std::string, std::string> chains_ ABSL_GUARDED_BY(mu_);
  bool wake_ ABSL_GUARDED_BY(mu_) = false;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;

  std::thread thread_;  // last: started after everything it uses exists
};

}  // namespace ndocker::hbcsa
