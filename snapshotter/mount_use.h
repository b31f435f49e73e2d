// Which mounts may still use a snapshot's directory: the guard in front of
// every delete of snapshot data (DESIGN §6 "The mover": a retired copy is
// deleted only when no mount can refer to it).
//
// mountinfo hides three of the ways our mounts refer to a snapshot:
//  - lowerdirs are handed out as <root>/l/<short id> symlinks, and overlay
//    shows the lowerdir string as it was given: through the link, not the
//    directory the link pointed at when the mount was made;
//  - containerd compacts long lowerdir lists: it chdir()s into their common
//    directory and mounts with relative names (lowerdir=a:b:c);
//  - a view with one parent is a bind mount of the parent's fs dir, which
//    mountinfo shows only as (device, root within that filesystem).
// Everything here errs on the side of "in use": a false "in use" only delays
// a delete, a false "free" breaks a running container.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "snapshotter/layout.h"
#include "snapshotter/mountinfo.h"

namespace ndocker {

class MountUse {
 public:
  // Reads mountinfo once; layout gives the links dir and tier roots.
  static absl::StatusOr<MountUse> Read(const Layout& layout,
                                       const std::string& mountinfo = "/proc/self/mountinfo");
  // The same from entries already read.
  static MountUse FromEntries(const Layout& layout, std::vector<MountInfoEntry> mounts);

  // A mount may use `dir` (absolute path of a snapshot copy dir): a mount
  // point at/below it; any mount whose (major:minor, root) lies at/below dir's
  // (device, path within its filesystem) -- bind mounts of it or below it; an
  // overlay whose upperdir/workdir/absolute lowerdir is at/below dir (both the
  // given path and realpath(dir) are compared).
  bool PathInUse(const std::string& dir) const;

  // Overlays naming snapshot `id` through its short link: an absolute
  // lowerdir <links dir>/<short> (also via realpath of the links dir) or a
  // relative lowerdir whose last component is the short id. One entry per
  // such overlay: the id of the overlay's own upper snapshot when its upperdir
  // is <tier root>/snapshots/<id>[-gen]/fs of one of our tiers; nullopt when
  // it has no upperdir or a foreign one.
  std::vector<std::optional<uint64_t>> LinkUsers(uint64_t id) const;

  // What an overlay's options name, parsed (exposed for tests and logs).
  struct Overlay {
    std::string mount_point;
    std::vector<std::string> upper;  // candidates; empty when there is no upperdir
    std::vector<std::string> work;
    // Every lower layer, data-only ones included; a path whose escaping is
    // ambiguous appears in each reading.
    std::vector<std::string> lowers;
  };
  const std::vector<Overlay>& overlays() const { return overlays_; }

 private:
  struct DirPlace {
    std::string major_minor;
    std::string fs_path;
  };

  std::vector<DirPlace> PlacesOf(const std::vector<std::string>& paths) const;
  std::optional<uint64_t> UpperSnapshotId(const Overlay& o) const;

  std::vector<MountInfoEntry> mounts_;
  std::vector<Overlay> overlays_;
  std::vector<std::string> links_dirs_;      // as configured and its realpath
  std::vector<std::string> snapshot_dirs_;   // <tier>/snapshots of each tier, both spellings
};

}  // namespace ndocker
