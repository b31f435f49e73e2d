// The admin API's view of the profile store (ndockerctl profile …): JSON in
// and out, and an image named by an index digest resolved to its manifest.
#pragma once

#include <functional>
#include <string>

#include "hbcsa/profiles/profile_store.h"
#include "snapshotter/admin_service.h"

namespace ndocker::hbcsa {

class StoreProfileBook : public ProfileBook {
 public:
  // manifest_of: the manifest digest an index digest names on this host ("" if unknown).
  StoreProfileBook(ProfileStore& store, std::function<std::string(const std::string&)> manifest_of)
      : store_(store), manifest_of_(std::move(manifest_of)) {}

  absl::StatusOr<std::vector<std::string>> ListJson() override;
  absl::StatusOr<std::string> GetJson(const std::string& image) override;
  absl::StatusOr<std::string> ImportJson(const std::string& json) override;
  absl::Status Remove(const std::string& image) override;
  // The profile an image name (digest, index digest, top chainID) names.
  absl::StatusOr<Profile> Find(const std::string& image);
  absl::StatusOr<std::vector<Profile>> List() { return store_.List(); }

 private:
  ProfileStore& store_;
  std::function<std::string(const std::string&)> manifest_of_;
};

}  // namespace ndocker::hbcsa
