// Per-image hot-file profiles, durable in the snapshotter's metadata store
// (LMDB, space "profiles", key = manifest digest), so they survive restarts
// and share its transactions. Thread-safe (LMDB serialises writers).
#pragma once

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "hbcsa/profiles/profile.h"
#include "snapshotter/metastore.h"

namespace ndocker::hbcsa {

class ProfileStore {
 public:
  ProfileStore(MetaStore& meta, size_t max_files) : meta_(meta), max_files_(max_files) {}

  // Merges one traced run into the image's profile (creating it) and
  // returns the profile as stored. `changed`, when given: whether the merge
  // made a new version (always for a new profile), decided in the same
  // transaction.
  absl::StatusOr<Profile> Record(const std::string& image, const std::string& top_chain,
                                 const TracedRun& run, absl::Time now, bool* changed = nullptr);
  absl::StatusOr<std::optional<Profile>> Get(const std::string& image) const;
  // Whether the image has a profile, without parsing it (asked on the
  // Prepare path).
  absl::StatusOr<bool> Has(const std::string& image) const;
  absl::StatusOr<std::vector<Profile>> List() const;
  // Replaces (or creates) a profile from another node's export; its version
  // continues above the local one so a change is always visible.
  absl::StatusOr<Profile> Import(const Profile& incoming);
  absl::Status Remove(const std::string& image);

 private:
  MetaStore& meta_;
  const size_t max_files_;
};

}  // namespace ndocker::hbcsa
