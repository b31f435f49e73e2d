// What the core tells observers (HBCSA's tracer) about snapshots, without
// knowing who listens: the core stays free of their words. Called on the RPC
// path after the change committed; implementations must not block.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "snapshotter/types.h"

namespace ndocker {

struct LowerLayer {
  std::string key;     // the committed snapshot's key
  std::string fs_dir;  // its current data directory
};

// A container's rootfs: an active snapshot that is not an unpack, prepared
// and about to be mounted.
struct RootfsPrepared {
  std::string key;
  uint64_t id = 0;
  std::string upper_dir;           // exactly as in the mount's upperdir=
  std::vector<LowerLayer> lowers;  // top first
  Labels labels;
  uint64_t shared_lower = 0;  // mounted over a shared stack (shared_lower.h), not `lowers`
};

class SnapshotObserver {
 public:
  virtual ~SnapshotObserver() = default;
  virtual void RootfsPrepared(const ndocker::RootfsPrepared& rootfs) = 0;
  virtual void Removed(const std::string& key, Kind kind) = 0;
};

}  // namespace ndocker
