// A hot-file profile: for one image (its manifest digest, with the top
// layer's chainID), the files its cold starts read — path inside the rootfs,
// the layer that served it, size, in how many traced runs it was seen, and
// the order of first access — merged over runs. Pure data and merge rules;
// ProfileStore keeps them durable.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace ndocker::hbcsa {

struct HotFile {
  std::string path;    // absolute inside the container's rootfs: "/usr/bin/python3"
  std::string layer;   // chainID of the layer that served it
  int64_t size = 0;
  int runs = 0;        // traced runs that read it
  bool operator==(const HotFile&) const = default;
};

// One traced cold start, as the tracer hands it over (files in first-access order).
struct TracedRun {
  std::vector<HotFile> files;  // runs is ignored
  bool complete = true;        // false: the trace overflowed or was cut short
};

struct Profile {
  std::string image;      // manifest digest
  std::string top_chain;  // chainID of the image's top layer
  // Grows by one whenever the set of files (or where one is served from)
  // changes: a new version is what a new hot layer is built from.
  uint64_t version = 0;
  int runs = 0;              // traced runs merged
  int incomplete_runs = 0;
  absl::Time updated = absl::InfinitePast();
  std::vector<HotFile> files;  // first-access order of the run that first saw each

  int64_t bytes() const;
};

// Merges a run into `profile`: union of the files (a file seen again counts
// one more run; one first seen now is appended in its order), at most
// `max_files` files (the rest are dropped, latest first, and counted in the
// return value). The version grows when the file set or a file's layer or
// size changed.
int MergeRun(Profile& profile, const TracedRun& run, absl::Time now, size_t max_files);

// JSON, for the store, `ndockerctl profile show --json` and export/import
// between nodes. Parsing checks every field and refuses what it cannot trust
// (InvalidArgument, saying what is wrong).
std::string ToJson(const Profile& p);
absl::StatusOr<Profile> ProfileFromJson(const std::string& text);

}  // namespace ndocker::hbcsa
