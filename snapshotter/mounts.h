// The mount list for a snapshot, built exactly as containerd's overlay
// snapshotter builds it (facts §2.2). Pure: no I/O.
#pragma once

#include <string>
#include <vector>

#include "snapshotter/types.h"

namespace ndocker {

struct MountSpec {
  Kind kind = Kind::kActive;
  std::string fs;    // the snapshot's own fs dir
  std::string work;  // its work dir (actives only)
  // Parents, nearest first: their real fs dirs (for a bind) and the short
  // links used as lowerdirs.
  std::vector<std::string> parent_fs;
  std::vector<std::string> parent_links;
  bool index_off = false;  // add "index=off" (the kernel has the parameter)
};

std::vector<Mount> BuildMounts(const MountSpec& spec);

}  // namespace ndocker
