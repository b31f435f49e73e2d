// Overlay mounts of a metadata layer over data-only lower layers
// ("lowerdir=META::L1::L2", Linux >= 6.5): META is the only layer overlayfs
// merges; the others are looked up only by the absolute redirects of META's
// metacopy stubs, topmost data layer first.
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace ndocker::hbcsa {

// Mount options for `meta_dir` over `data_layers` (top first), read-only use
// (no upperdir): "lowerdir=META::L1::L2,metacopy=on,redirect_dir=on".
std::string DataOnlyOverlayOptions(const std::string& meta_dir,
                                   const std::vector<std::string>& data_layers);

// Whether this kernel mounts data-only lower layers and follows a metacopy
// stub's redirect into one: tried for real with a one-file metadata layer in
// a temp dir under `scratch_dir` (removed again). false: the kernel refused
// the options or served the wrong data; an error: the probe itself could not
// run (not root, scratch_dir without trusted xattrs...).
absl::StatusOr<bool> DataOnlyLowerLayersSupported(const std::string& scratch_dir);

// Whether `path` lies on an overlayfs. A hot layer's mount over layers on an
// overlayfs (a daemon in a container) would be nested twice, and a
// container's overlay on top of it once more: past the kernel's stacking
// limit of two, so the container's mount would fail.
absl::StatusOr<bool> OnOverlayfs(const std::string& path);

}  // namespace ndocker::hbcsa
