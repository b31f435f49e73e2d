// Hot layer records, durable in the snapshotter's metadata store (space
// "hot", key = manifest digest), and their directories <fast>/hot/<id>.
//
// Crash safety is by order, never by a half-written name:
//   Begin   record a kBuilding version (with a fresh id)      — one txn
//   build   BuildMetadataLayer into a temp sibling, rename to DirOf(id)
//   Finish  kReady; the previous ready versions become kRetired — one txn
// A version goes record first, directory second (Abort, Drop). So after a
// kill -9 anywhere, Recover at start finds only: kBuilding versions (their
// directory, complete or not, is removed with them), and directories no
// version names (an interrupted build's temp sibling, a dropped version's
// leftover), which are removed. A ready version is never touched.
// Thread-safe (LMDB serialises writers).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hbcsa/promoter/hot_layer_record.h"
#include "hbcsa/promoter/metadata_layer.h"
#include "snapshotter/metastore.h"

namespace ndocker::hbcsa {

struct HotRecovery {
  std::vector<uint64_t> building_dropped;    // versions a crash left in kBuilding
  std::vector<std::string> orphans_removed;  // names under the hot dir no version owns
  int64_t kept_bytes = 0;                    // of the versions kept (ready and retired)
};

class HotLayerStore {
 public:
  // `hot_dir`: <fast tier>/hot (created when missing).
  HotLayerStore(MetaStore& meta, std::string hot_dir) : meta_(meta), hot_dir_(std::move(hot_dir)) {}

  const std::string& hot_dir() const { return hot_dir_; }
  std::string DirOf(uint64_t id) const;

  // Records the intent to build a version from `profile_version` before any
  // byte is written. FailedPrecondition while another version of the image
  // is being built (one build per image at a time).
  absl::StatusOr<HotLayerVersion> Begin(const std::string& image, const std::string& top_chain,
                                        uint64_t profile_version, std::vector<HotLayerSource> layers,
                                        absl::Time now);
  // The version's directory is complete at DirOf(id): it is ready, and the
  // image's older ready versions are retired. Returns the record.
  absl::StatusOr<HotLayerRecord> Finish(const std::string& image, uint64_t id, const BuildReport& report,
                                        int64_t bytes, absl::Time now);
  // A build that failed: its version, then its directory if any.
  absl::Status Abort(const std::string& image, uint64_t id);
  // A retired version no mount uses any more: its version, then its
  // directory. FailedPrecondition for a version that is not retired.
  absl::Status Drop(const std::string& image, uint64_t id);
  // The image is gone: its ready versions are retired (returned), so no new
  // mount gets them; each goes by Drop once no mount uses it.
  absl::StatusOr<std::vector<uint64_t>> RetireImage(const std::string& image);

  absl::StatusOr<std::optional<HotLayerRecord>> Get(const std::string& image) const;
  // Kept in memory between writes: it is read on every container Prepare
  // and Mounts (hbcsa/promoter/hot_stacks.h). Hence one store object per
  // metadata store: another one's writes would not invalidate it.
  absl::StatusOr<std::vector<HotLayerRecord>> List() const;

  // At start, before any build: see the file comment.
  absl::StatusOr<HotRecovery> Recover();

 private:
  absl::Status RemoveDir(uint64_t id) const;
  // Every write goes through here: it invalidates List's copy after the
  // transaction (a List that raced with it is read again next time).
  absl::Status Write(const std::function<absl::Status(MetaTxn&)>& fn);

  MetaStore& meta_;
  const std::string hot_dir_;
  std::atomic<uint64_t> writes_{1};
  mutable absl::Mutex list_mu_;
  mutable std::optional<std::vector<HotLayerRecord>> listed_ ABSL_GUARDED_BY(list_mu_);
  mutable uint64_t listed_at_ ABSL_GUARDED_BY(list_mu_) = 0;
};

}  // namespace ndocker::hbcsa
