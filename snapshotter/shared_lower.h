// A shared read-only stack that stands in for a committed snapshot's whole
// chain in the mounts of new actives and views on it (HBCSA's hot layer: a
// metadata layer over the chain's layers as data-only lower layers, mounted
// once by the daemon). The core only records which stack a snapshot got and
// hands out its mount point as the single lowerdir; what the stack is, when
// it is mounted and when it goes belong to the provider.
//
// Why a mounted stack and not its layers in the snapshot's own overlay: the
// metadata layer needs metacopy=on and redirect_dir=on, and on a mount with
// an upperdir those make metadata-only copy-ups and directory renames write
// metacopy files and redirects into the upper. A committed upper with those
// would read wrong through a child's plain overlay. Over a mounted stack the
// snapshot's own overlay stays plain: its upper is an ordinary layer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "snapshotter/types.h"

namespace ndocker {

struct SharedLower {
  uint64_t id = 0;   // recorded in the snapshot (never 0)
  std::string path;  // mounted, absolute
};

class SharedLowerProvider {
 public:
  virtual ~SharedLowerProvider() = default;
  // For a new container rootfs (active, not an unpack) or view whose parent
  // is the committed snapshot `parent_id`: a mounted stack whose merged view
  // is exactly that chain's, or nothing (the chain is used). May mount.
  // A stack handed out stays pinned until Settled(id) (the core calls it
  // once the snapshot's record committed, or the Prepare failed), so it is
  // never taken away between the two.
  virtual std::optional<SharedLower> ForParent(uint64_t parent_id) = 0;
  virtual void Settled(uint64_t id) = 0;
  // The mount point of stack `id`, which a snapshot recorded, mounted again
  // when it is not (after a reboot). An error makes the core fall back to the
  // parent chain, whose merged view is the same.
  virtual absl::StatusOr<std::string> Path(uint64_t id) = 0;
  // After a Remove committed: `shared_lower` is the removed snapshot's (0
  // for none). Must not block.
  virtual void Removed(uint64_t snapshot_id, Kind kind, uint64_t shared_lower) = 0;
};

}  // namespace ndocker
