// Core value types of the snapshotter, independent of gRPC and storage.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/time/time.h"

namespace ndocker {

// Numbering follows containerd's snapshots.v1 Kind enum.
enum class Kind { kUnknown = 0, kView = 1, kActive = 2, kCommitted = 3 };

enum class Tier { kFast = 0, kSlow = 1 };

using Labels = std::map<std::string, std::string>;

// What containerd calls snapshots.Info.
struct SnapshotInfo {
  std::string name;
  std::string parent;
  Kind kind = Kind::kUnknown;
  absl::Time created;
  absl::Time updated;
  Labels labels;
};

struct Usage {
  int64_t size = 0;    // bytes: st_blocks * 512 over unique inodes
  int64_t inodes = 0;
};

// One entry of containerd's mount list (containerd.types.Mount without target,
// which containerd's proxy client drops).
struct Mount {
  std::string type;
  std::string source;
  std::vector<std::string> options;
  bool operator==(const Mount&) const = default;
};

const char* KindName(Kind kind);  // "active", "view", "committed", "unknown"
const char* TierName(Tier tier);  // "fast", "slow"

// The client's name in a key containerd's metadata store made
// ("<namespace>/<n>/<name>"): a committed layer's chainID, a container's id.
// A key without '/' is returned whole.
std::string ClientNameOfKey(const std::string& key);

}  // namespace ndocker
