// Label names the snapshotter understands, and containerd's label limits.
#pragma once

#include <optional>
#include "absl/strings/string_view.h"

#include "absl/status/statusor.h"
#include "snapshotter/types.h"

namespace ndocker {

// Picks the tier of a new snapshot (operator override; wins over placement).
inline constexpr char kTierLabel[] = "containerd.io/snapshot/ndocker.tier";
// The chainID of the layer an unpack Prepare stores (CRI, nerdctl, remote path).
inline constexpr char kSnapshotRefLabel[] = "containerd.io/snapshot.ref";

// containerd's labels.Validate: key and value together at most 4096 bytes.
inline constexpr size_t kMaxLabelBytes = 4096;

// InvalidArgument, with containerd's wording, when a label is too large.
absl::Status ValidateLabels(const Labels& labels);

// The tier asked for by kTierLabel: nullopt when absent, InvalidArgument when
// the value is neither "fast" nor "slow".
absl::StatusOr<std::optional<Tier>> RequestedTier(const Labels& labels);

absl::StatusOr<Tier> ParseTier(absl::string_view name);

}  // namespace ndocker
