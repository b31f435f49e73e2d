// What the daemon knows about an image's hot layers (issue 10): one record
// per image (manifest digest), a version per build from a profile version.
// A version's directory is <fast>/hot/<id>; the record says whether it is
// being built (a crash's leftover when seen at start), ready (new mounts of
// the image use the newest one) or retired (kept while a mount made before
// a newer one may use it). Encoded as JSON in the metadata store.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "snapshotter/types.h"

namespace ndocker::hbcsa {

// A layer the hot layer's metacopy stubs take their data from: the snapshot
// (and its copy, the mover's generation) that was current at the build.
struct HotLayerSource {
  std::string chain_id;
  uint64_t snapshot_id = 0;
  uint64_t generation = 0;
  Tier tier = Tier::kSlow;
  bool operator==(const HotLayerSource&) const = default;
};

enum class HotState { kBuilding, kReady, kRetired };
const char* HotStateName(HotState state);  // "building", "ready", "retired"

struct HotLayerVersion {
  uint64_t id = 0;  // names its directory; never reused
  uint64_t profile_version = 0;
  HotState state = HotState::kBuilding;
  absl::Time started = absl::InfinitePast();
  absl::Time finished = absl::InfinitePast();  // ready since
  int64_t bytes = 0;  // on the fast tier
  int64_t entries = 0;
  int64_t hot_files = 0;
  int64_t hot_bytes = 0;
  std::vector<HotLayerSource> layers;  // top first
  bool operator==(const HotLayerVersion&) const = default;
};

struct HotLayerRecord {
  std::string image;      // manifest digest
  std::string top_chain;  // the image's top layer (chainID)
  std::vector<HotLayerVersion> versions;  // oldest first

  // The newest ready version: what a new mount of the image gets.
  const HotLayerVersion* Current() const;
  HotLayerVersion* Find(uint64_t id);
  bool operator==(const HotLayerRecord&) const = default;
};

std::string EncodeHotLayerRecord(const HotLayerRecord& record);
absl::StatusOr<HotLayerRecord> DecodeHotLayerRecord(const std::string& bytes);

}  // namespace ndocker::hbcsa
