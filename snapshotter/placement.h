// Where a new snapshot goes, and why. The core asks, in order: the operator's
// ndocker.tier label, then a PlacementAdvisor (LASS), then the defaults below;
// the fast budget has the last word (budget.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "snapshotter/types.h"

namespace ndocker {

// Stable rule names: tests, `ndockerctl ls --json` and log searches match on
// them, so they never change meaning. The reason next to them is for people.
namespace rule {
inline constexpr char kLabel[] = "label";                  // ndocker.tier label
inline constexpr char kDefault[] = "default";              // default tier
inline constexpr char kContainerRootfs[] = "container-rootfs";
inline constexpr char kBudgetFull[] = "budget-full";       // fast wanted, no room at Prepare
inline constexpr char kBudgetCommit[] = "budget-commit";   // moved to slow at Commit
inline constexpr char kFastFsFull[] = "fast-fs-full";      // fast filesystem lacks room for it
inline constexpr char kMigrated[] = "migrated";            // moved later by the mover
inline constexpr char kLdlBelow[] = "ldl-below";           // a later layer downloads longer
inline constexpr char kLdlLast[] = "ldl-last";             // the last-downloading layer
inline constexpr char kNoDownloads[] = "no-downloads";     // nothing else left to download
inline constexpr char kPredictOverlaps[] = "predict-overlaps";  // slow store ends in time
inline constexpr char kPredictCritical[] = "predict-critical";  // slow store would end late
inline constexpr char kNoSession[] = "no-session";         // no pull known for the layer
inline constexpr char kWatcherOff[] = "watcher-off";
inline constexpr char kStoreUnreadable[] = "store-unreadable";
}  // namespace rule

struct Placement {
  Tier tier = Tier::kFast;
  std::string rule;
  std::string reason;
  // The advisor's estimate of the snapshot's size on disk (0 = unknown): a
  // fast tier whose filesystem cannot hold it is not chosen, so a nearly full
  // device never fails an unpack with ENOSPC.
  int64_t expected_bytes = 0;
};

// What the core knows about a new snapshot when it asks where to put it.
struct PlacementRequest {
  std::string key;
  std::string parent;
  const Labels* labels = nullptr;
  Kind kind = Kind::kActive;
  // The chainID the snapshot will hold when this is an unpack Prepare (the
  // containerd.io/snapshot.ref label, else the "extract-… <chainID>" key);
  // empty otherwise.
  std::string unpack_chain_id;
  absl::Time now;
};

// Told to the advisor after a commit, so it can learn store speeds and
// complete its per-image plan.
struct CommitReport {
  std::string key;
  std::string name;
  Tier tier = Tier::kFast;
  std::string rule;
  std::string reason;
  int64_t size = 0;       // bytes on disk (du)
  absl::Time prepared;    // the active snapshot's creation
  absl::Time committed;
};

class PlacementAdvisor {
 public:
  virtual ~PlacementAdvisor() = default;
  // nullopt: no opinion, the core's defaults apply. Called on the RPC path:
  // must answer from memory, never wait for I/O.
  virtual std::optional<Placement> Advise(const PlacementRequest& request) = 0;
  virtual void Committed(const CommitReport& report) = 0;
  // Another input decided this request (an advisor that keeps a record of
  // every layer of a pull, to show it and to learn from its commit, records
  // it too). Same rules as Advise: from memory only.
  virtual void DecidedElsewhere(const PlacementRequest& /*request*/, const Placement& /*placement*/) {}
};

// The chainID an unpack Prepare stores (see PlacementRequest), or "".
std::string UnpackChainId(const std::string& key, const Labels& labels);

// The core's own choice when neither a label nor an advisor decides: unpacked
// layers and views on the default tier, container rootfs snapshots (any other
// active snapshot) on the container tier.
Placement DefaultPlacement(const PlacementRequest& request, Tier default_tier, Tier container_tier);

}  // namespace ndocker
