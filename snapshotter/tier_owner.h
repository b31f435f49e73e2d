// Tiers have an owner. Each tier root holds ndocker-tier.json naming the
// instance id of the metadata that owns it (kept in that metadata too) and
// its role (fast or slow). A daemon whose metadata does not own a populated
// tier refuses to start instead of treating that tier's layers as garbage:
// a second instance with a new --root, or a root whose metadata was lost,
// would otherwise delete every layer, the lower layers of running
// containers included.
#pragma once

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "snapshotter/layout.h"
#include "snapshotter/metastore.h"

namespace ndocker {

enum class ClaimMode {
  kRefuse,  // default: start only on tiers this metadata owns (or empty ones)
  kAdopt,   // take a foreign or unowned tier; move what no record knows to lost+found
  kWipe,    // take it; what no record knows is garbage for Cleanup
};

absl::Status ParseClaimMode(const std::string& text, ClaimMode* mode);

struct TierClaim {
  Tier tier;
  bool adopted = false;  // ownership was taken from another (or no) owner
};

// Checks both tiers against the metadata's instance id, claiming empty ones
// (and, once, the tiers of a store made before ownership existed). Returns
// FailedPrecondition, saying which tier, whose it is and which flag would
// take it, when one belongs to someone else.
absl::StatusOr<std::vector<TierClaim>> ClaimTiers(const Layout& layout, MetaStore& meta, ClaimMode mode);

// The file's name in each tier root.
inline constexpr char kTierOwnerFile[] = "ndocker-tier.json";
// Where adopted tiers keep what no record knows: never cleaned.
inline constexpr char kLostAndFound[] = "lost+found";

}  // namespace ndocker
